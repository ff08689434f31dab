// examples/react (StrictMode) with the packed package, no optimizeDeps setting and no plugin:
// `vite build` served by the real server, and `vite` (dev server proxying /api to it), in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from '../lib/server.mjs';
import { launchBrowser, collectErrors, screenshot } from '../lib/browser.mjs';
import { npmRun, npmServe, freePort, exampleDir, stats, tidingsTarball } from '../lib/examples.mjs';
import { join } from 'node:path';

let server;
let browser;

before(async () => {
  tidingsTarball('react');
  npmRun('react', 'build');
  server = await startServer({ staticDir: join(exampleDir('react'), 'dist') });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Checks the app at `origin`: one connection per stream despite StrictMode, and events arrive. */
async function checkApp(origin, user, shot, { loadMs = 15_000 } = {}) {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(`${origin}/?user=${user}`);
  await page.waitForSelector('[data-testid="ta-state"]:text("open")', { timeout: loadMs });
  await page.waitForSelector('[data-testid="nt-state"]:text("open")', { timeout: 15_000 });
  // One connection per stream once the page settles. A stream that started on its own
  // connection moves onto the shared one and closes its own when the shared one carries
  // it; the server counts both until it sees the own one close. A second connection
  // that stays (or shows up later) is the failure: the shape must come within 10 s and
  // then hold.
  const shaped = (c) => c.by_stream['team-answers'] === 1 && c.by_stream[`notifications/${user}`] === 1 && c.total === 2;
  let seen;
  await waitFor(async () => shaped(seen = (await stats(server.url)).connections), { what: 'one connection per stream', timeoutMs: 10_000 })
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(seen)}`); });
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 100));
    seen = (await stats(server.url)).connections;
    assert.ok(shaped(seen), `one connection per stream, ${i * 100 + 100} ms after it settled: ${JSON.stringify(seen)}`);
  }

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
  await screenshot(page, shot);
  assert.deepEqual(errors, []);
  await page.close();
  await waitFor(async () => (await stats(server.url)).connections.total === 0, { what: 'connections closed after unmount' });
}

test('vite build: StrictMode double mount still opens exactly one connection per stream', async () => {
  await checkApp(server.url, 'rita', 'react');
});

test('vite dev: the same app, the package pre-bundled by the dev server, receives events', async () => {
  const port = await freePort();
  const dev = await npmServe('react', ['vite', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], /ready in|Local:/i,
    { env: { TIDINGS_API: server.url }, timeoutMs: 60_000 });
  try {
    await checkApp(`http://127.0.0.1:${port}`, 'vera', 'react-dev', { loadMs: 60_000 });
  } finally {
    await dev.stop();
  }
});

test('a wasm that cannot be loaded shows state failed and the load error in the app', async () => {
  const context = await browser.newContext();
  try {
    await context.route('**/*.wasm', (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'gone' }));
    const page = await context.newPage();
    await page.goto(`${server.url}/?user=wasmless`);
    await page.waitForSelector('[data-testid="ta-state"]:text("failed")', { timeout: 15_000 });
    assert.match(await page.textContent('[data-testid="ta-error"]'), /^load: tidings: the SDK's wasm could not be loaded: .*404/);
    await page.waitForSelector('[data-testid="nt-state"]:text("failed")', { timeout: 15_000 });
  } finally {
    await context.close();
  }
});
