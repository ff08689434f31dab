// examples/react (Vite build, StrictMode) served by the real server, in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from '../lib/server.mjs';
import { launchBrowser, collectErrors, screenshot } from '../lib/browser.mjs';
import { npmRun, exampleDir, stats } from '../lib/examples.mjs';
import { join } from 'node:path';

let server;
let browser;

before(async () => {
  npmRun('react', 'build');
  server = await startServer({ staticDir: join(exampleDir('react'), 'dist') });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('StrictMode double mount still opens exactly one connection per stream', async () => {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(`${server.url}/?user=rita`);
  await page.waitForSelector('[data-testid="ta-state"]:text("open")', { timeout: 15_000 });
  await page.waitForSelector('[data-testid="nt-state"]:text("open")', { timeout: 15_000 });
  // Let any stray second connection show up before counting.
  await new Promise((r) => setTimeout(r, 500));
  const s = await stats(server.url);
  assert.equal(s.connections.by_stream['team-answers'], 1, JSON.stringify(s.connections));
  assert.equal(s.connections.by_stream['notifications/rita'], 1, JSON.stringify(s.connections));
  assert.equal(s.connections.total, 2);

  const text = `react answer ${Date.now()}`;
  await page.fill('[data-testid="ta-input"]', text);
  await page.click('[data-testid="ta-add"]');
  await page.waitForSelector(`[data-testid="ta-list"] li:text("${text}")`, { timeout: 5000 });
  // Exactly once, despite two mounts.
  assert.equal(await page.locator(`[data-testid="ta-list"] li:text("${text}")`).count(), 1);

  const before = Number(await page.textContent('[data-testid="nt-unread"]'));
  await page.click('[data-testid="nt-trigger"]');
  await waitFor(async () => Number(await page.textContent('[data-testid="nt-unread"]')) === before + 1, { what: 'unread +1' });
  assert.equal(await page.locator('[data-testid="nt-list"] li').count(), 1);
  await screenshot(page, 'react');
  assert.deepEqual(errors, []);
  await page.close();
  await waitFor(async () => (await stats(server.url)).connections.total === 0, { what: 'connections closed after unmount' });
});
