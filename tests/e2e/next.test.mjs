// examples/next with the packed package: `next build` passes (the server render
// never touches window) and the built page receives events; `next dev`
// (Turbopack, the default dev bundler) compiles the page on first request and
// it receives events too. The page talks to the API origin directly (CORS in
// --dev), so no proxy sits in the SSE path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api } from '../lib/server.mjs';
import { launchBrowser, collectErrors, screenshot } from '../lib/browser.mjs';
import { npmRun, npmServe, freePort, tidingsTarball } from '../lib/examples.mjs';

let server;
let browser;
let env;

before(async () => {
  tidingsTarball('next');
  server = await startServer();
  env = { TIDINGS_API: server.url, NEXT_PUBLIC_TIDINGS_API: server.url, NEXT_TELEMETRY_DISABLED: '1' };
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Runs `next <command>` on a free port until `body(url, next)` settles. */
async function withNext(command, ready, body) {
  const port = await freePort();
  const next = await npmServe('next', ['next', command, '-H', '127.0.0.1', '-p', String(port)], ready, { env, timeoutMs: 120_000 });
  try {
    await body(`http://127.0.0.1:${port}`, next);
  } finally {
    await next.stop();
  }
}

/** Loads the page, waits for the stream to open, creates an answer, and waits for it in the list. */
async function receivesAnswers(url, shot, { loadMs }) {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(`${url}/`, { timeout: loadMs });
  await page.waitForSelector('[data-testid="state"]:text("open")', { timeout: loadMs });
  const text = `${shot} answer ${Date.now()}`;
  await api(server.url, 'POST', '/api/team-answers/', {
    body: { video_name: 'v.mp4', frame_index: 3, url: 'http://127.0.0.1/f.jpg', qa: text },
  });
  await page.waitForSelector(`[data-testid="answers"] li:text("${text}")`, { timeout: 10_000 });
  await screenshot(page, shot);
  assert.deepEqual(errors, []);
  await page.close();
}

test('next build: the server-rendered page has its markup without the SDK, and the page receives team answers live', async () => {
  npmRun('next', 'build', { env, timeoutMs: 400_000 });
  await withNext('start', /Ready|started server/i, async (url) => {
    const html = await (await fetch(`${url}/`)).text();
    assert.match(html, /Tidings in Next\.js/);
    assert.match(html, /data-testid="state">idle</);
    await receivesAnswers(url, 'next', { loadMs: 20_000 });
  });
});

test('next dev (Turbopack) compiles the page and it receives team answers live', async () => {
  await withNext('dev', /Ready in/i, async (url, next) => {
    assert.match(next.log(), /Turbopack/, 'next dev runs Turbopack');
    // The first request compiles the page (slow on a busy 2-core box).
    await receivesAnswers(url, 'next-dev', { loadMs: 180_000 });
  });
});
