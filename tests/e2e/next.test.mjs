// examples/next (the packed package): `next build` passes (the server render never touches window) and the built page receives events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { launchBrowser, collectErrors, screenshot } from '../lib/browser.mjs';
import { npmRun, npmServe, freePort, tidingsTarball } from '../lib/examples.mjs';

let server;
let browser;
let next;
let nextUrl;

before(async () => {
  tidingsTarball('next');
  server = await startServer();
  // The page talks to the API origin directly (CORS in --dev), so no proxy sits in the SSE path.
  npmRun('next', 'build', { env: { TIDINGS_API: server.url, NEXT_PUBLIC_TIDINGS_API: server.url, NEXT_TELEMETRY_DISABLED: '1' }, timeoutMs: 400_000 });
  const port = await freePort();
  nextUrl = `http://127.0.0.1:${port}`;
  next = await npmServe('next', ['next', 'start', '-H', '127.0.0.1', '-p', String(port)], /Ready|started server/i,
    { env: { TIDINGS_API: server.url, NEXT_TELEMETRY_DISABLED: '1' } });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await next?.stop();
  await server?.stop();
});

test('the server-rendered page contains its markup without running the SDK', async () => {
  const html = await (await fetch(`${nextUrl}/`)).text();
  assert.match(html, /Tidings in Next\.js/);
  assert.match(html, /data-testid="state">idle</);
});

test('the built Next page receives team answers live', async () => {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(`${nextUrl}/`);
  await page.waitForSelector('[data-testid="state"]:text("open")', { timeout: 20_000 });
  const text = `next answer ${Date.now()}`;
  const res = await fetch(`${server.url}/api/team-answers/`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ video_name: 'v.mp4', frame_index: 3, url: 'http://127.0.0.1/f.jpg', qa: text }),
  });
  assert.equal(res.status, 201);
  await page.waitForSelector(`[data-testid="answers"] li:text("${text}")`, { timeout: 10_000 });
  await screenshot(page, 'next');
  assert.deepEqual(errors, []);
  await page.close();
});
