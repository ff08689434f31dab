// examples/next under `next dev` (Turbopack, the default dev bundler) with the packed package:
// the page compiles on first request and receives events, in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api } from '../lib/server.mjs';
import { launchBrowser, collectErrors, screenshot } from '../lib/browser.mjs';
import { npmServe, freePort, tidingsTarball } from '../lib/examples.mjs';

let server;
let browser;
let next;
let nextUrl;

before(async () => {
  tidingsTarball('next');
  server = await startServer();
  const port = await freePort();
  nextUrl = `http://127.0.0.1:${port}`;
  // The page talks to the API origin directly (CORS in --dev), as in the `next build` test.
  next = await npmServe('next', ['next', 'dev', '-H', '127.0.0.1', '-p', String(port)], /Ready in/i, {
    env: { TIDINGS_API: server.url, NEXT_PUBLIC_TIDINGS_API: server.url, NEXT_TELEMETRY_DISABLED: '1' },
    timeoutMs: 120_000,
  });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await next?.stop();
  await server?.stop();
});

test('next dev (Turbopack) compiles the page and it receives team answers live', async () => {
  assert.match(next.log(), /Turbopack/, 'next dev runs Turbopack');
  const page = await browser.newPage();
  const errors = collectErrors(page);
  // The first request compiles the page (slow on a busy 2-core box).
  await page.goto(`${nextUrl}/`, { timeout: 180_000 });
  await page.waitForSelector('[data-testid="state"]:text("open")', { timeout: 60_000 });
  const text = `next dev answer ${Date.now()}`;
  await api(server.url, 'POST', '/api/team-answers/', {
    body: { video_name: 'v.mp4', frame_index: 4, url: 'http://127.0.0.1/f.jpg', qa: text },
  });
  await page.waitForSelector(`[data-testid="answers"] li:text("${text}")`, { timeout: 10_000 });
  await screenshot(page, 'next-dev');
  assert.deepEqual(errors, []);
  await page.close();
});
