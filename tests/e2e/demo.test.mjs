// The live demo page (examples/vanilla) in real headless Chromium against the real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from '../lib/server.mjs';
import { launchBrowser, collectErrors, screenshot } from '../lib/browser.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openDemo(context, user = 'alice') {
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${server.url}/?user=${user}`);
  await page.waitForSelector('#boot[data-state="ready"]', { timeout: 15_000 });
  await page.waitForSelector('#ta-state[data-state="open"]');
  await page.waitForSelector('#nt-state[data-state="open"]');
  return { page, errors };
}

test('a team answer created in one page appears in a second page without reload', async () => {
  // Two tabs of one profile: they share one connection per stream (leader tab +
  // BroadcastChannel), so 6 HTTP/1.1 connections per origin are not used up.
  const context = await browser.newContext();
  // The page keeps one token per user in localStorage, as an app keeps its
  // session: connections are shared per URL and token.
  const a = await openDemo(context);
  const b = await openDemo(context);
  const stats = async () => (await (await fetch(`${server.url}/api/stats`)).json()).connections.by_stream;
  await waitFor(async () => {
    const s = await stats();
    return s['team-answers'] === 1 && s['notifications/alice'] === 1 && s['channel/project.1'] === 1;
  }, { what: 'one connection per stream for both tabs' });
  const text = `answer ${Date.now()}`;
  await a.page.fill('#ta-qa', text);
  await a.page.click('#ta-add');
  await b.page.waitForSelector(`#ta-list li:has-text("${text}")`, { timeout: 5000 });
  await a.page.waitForSelector(`#ta-list li:has-text("${text}")`, { timeout: 5000 });
  // Deleting in page B removes it from page A.
  await b.page.click(`#ta-list li:has-text("${text}") button`);
  await a.page.waitForSelector(`#ta-list li:has-text("${text}")`, { state: 'detached', timeout: 5000 });
  assert.deepEqual([...a.errors, ...b.errors], []);
  const s = await stats();
  assert.equal(s['team-answers'], 1);
  await context.close();
});

test('triggering a notification raises the unread count; mark all read clears it', async () => {
  const context = await browser.newContext();
  const { page, errors } = await openDemo(context, 'carol');
  const before = Number(await page.textContent('#nt-unread'));
  await page.click('#nt-trigger');
  await waitFor(async () => Number(await page.textContent('#nt-unread')) === before + 1, { what: 'unread +1' });
  await page.waitForSelector('#nt-list li.unread');
  await page.click('#nt-read-all');
  await waitFor(async () => Number(await page.textContent('#nt-unread')) === 0, { what: 'unread 0' });
  assert.deepEqual(errors, []);
  await context.close();
});

test('a video job drives the progress bar to 100 %', async () => {
  const context = await browser.newContext();
  const { page, errors } = await openDemo(context);
  await page.click('#vp-start');
  await waitFor(async () => (await page.textContent('#vp-percent')) === '100', { timeoutMs: 15_000, what: 'progress 100 %' });
  assert.match(await page.textContent('#vp-result'), /Video: \/videos\/.+\.mp4/);
  await page.waitForSelector('#vp-state[data-state="closed"]');
  // A channel event published from the page shows in its log with its id.
  await page.click('#ch-publish');
  await page.waitForSelector('#ch-log li:has-text("task")', { timeout: 5000 });
  await screenshot(page, 'demo');
  assert.deepEqual(errors, []);
  await context.close();
});

test('stopping the server shows reconnecting; restarting it reopens and delivers what was missed', async () => {
  const context = await browser.newContext();
  const { page } = await openDemo(context);
  const addr = new URL(server.url).host;
  const dataDir = server.dataDir;
  await server.kill('SIGTERM');
  await page.waitForSelector('#ta-state:not([data-state="open"])', { timeout: 10_000 });
  const shown = await page.getAttribute('#ta-state', 'data-state');
  assert.ok(['reconnecting', 'connecting', 'polling'].includes(shown), `state while down: ${shown}`);
  await screenshot(page, 'demo-server-down');
  const old = server;
  server = await startServer({ addr, dataDir });
  server.stop = async () => { await server.kill(); await old.stop(); };
  // Created while the page is still reconnecting: must arrive through the replay log.
  const res = await fetch(`${server.url}/api/team-answers/`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ video_name: 'v.mp4', frame_index: 1, url: 'http://127.0.0.1/f.jpg', qa: 'made while reconnecting' }),
  });
  assert.equal(res.status, 201);
  await page.waitForSelector('#ta-state[data-state="open"]', { timeout: 40_000 });
  await page.waitForSelector('#ta-list li:has-text("made while reconnecting")', { timeout: 10_000 });
  await context.close();
});
