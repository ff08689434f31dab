// The live demo page (examples/vanilla) in real headless Chromium against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, api, devToken } from '../lib/server.mjs';
import { collectErrors, screenshot } from '../lib/browser.mjs';
import { serverAndBrowser } from '../lib/harness.mjs';

const env = serverAndBrowser();

async function openDemo(context, user = 'alice') {
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${env.server.url}/?user=${user}`);
  await page.waitForSelector('#boot[data-state="ready"]', { timeout: 15_000 });
  await page.waitForSelector('#ta-state[data-state="open"]');
  await page.waitForSelector('#nt-state[data-state="open"]');
  return { page, errors };
}

test('a team answer created in one page appears in a second page without reload', async () => {
  // Two tabs of one profile: they share one connection per stream (leader tab +
  // BroadcastChannel), so 6 HTTP/1.1 connections per origin are not used up.
  const context = await env.browser.newContext();
  // The page keeps one token per user in localStorage, as an app keeps its
  // session: connections are shared per URL and token.
  const a = await openDemo(context);
  const b = await openDemo(context);
  const stats = async () => (await (await fetch(`${env.server.url}/api/stats`)).json()).connections.by_stream;
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
  const context = await env.browser.newContext();
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
  const context = await env.browser.newContext();
  const { page, errors } = await openDemo(context);
  await page.click('#vp-start');
  await waitFor(async () => (await page.textContent('#vp-percent')) === '100', { timeoutMs: 15_000, what: 'progress 100 %' });
  assert.match(await page.textContent('#vp-result'), /Video: \/videos\/.+\.mp4/);
  await page.waitForSelector('#vp-state[data-state="closed"]');
  // A channel event published from the page shows in its log with its id.
  await page.click('#ch-publish');
  await page.waitForSelector('#ch-log li:has-text("task")', { timeout: 5000 });
  // The 5/s box publishes by itself until it is unticked.
  const tasks = () => page.locator('#ch-events li[data-type="task"]').count();
  await page.check('#ch-auto');
  await waitFor(async () => (await tasks()) >= 6, { what: 'auto-published events', timeoutMs: 10_000 });
  await page.uncheck('#ch-auto');
  await new Promise((r) => setTimeout(r, 400)); // a request in flight may still land
  const stopped = await tasks();
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await tasks(), stopped, 'no more events once unticked');
  await screenshot(page, 'demo');
  assert.deepEqual(errors, []);
  await context.close();
});

test('cut connection: the stream drops, reconnects and resumes after its last id with no event lost', async () => {
  const context = await env.browser.newContext();
  const { page, errors } = await openDemo(context, 'dora');
  await page.waitForSelector('#ch-state[data-state="open"]');
  await page.waitForSelector('#ch-role[data-role="leader"]');
  // Something in every panel, for the screenshot.
  await page.fill('#ta-qa', 'first answer');
  await page.click('#ta-add');
  await page.click('#nt-trigger');
  await page.click('#vp-start');
  const token = await devToken(env.server.url, 'publisher', ['project.*']);
  const published = [];
  const publishing = (async () => {
    for (let n = 0; n < 30; n++) {
      const r = await api(env.server.url, 'POST', '/api/v1/events/project.1', { body: { type: 'render_progress', object: { progress: n } }, token });
      published.push(String(r.id));
      await new Promise((r) => setTimeout(r, 60));
    }
  })();
  // Late in the run, so the screenshot shows the cut and the resume next to the newest events.
  await waitFor(() => published.length >= 24, { what: '24 events published' });
  await page.click('#ch-cut');
  await publishing;
  const logged = () => page.$$eval('#ch-events li[data-id]', (lis) => lis.map((li) => li.dataset.id).reverse());
  // Before the published events the log holds the stream's greeting (its id is the head position then).
  const ours = async () => (await logged()).filter((id) => Number(id) >= Number(published[0]));
  await waitFor(async () => (await ours()).length >= published.length, { what: 'every published event in the log', timeoutMs: 15_000 });
  assert.deepEqual(await ours(), published, 'every event once, in order, across the cut');
  const all = await logged();
  assert.equal(new Set(all).size, all.length, `no id twice: ${all}`);
  const lines = await page.$$eval('#ch-events li', (lis) => lis.map((li) => li.textContent).reverse());
  const at = (re) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/cut: the server dropped 1 connection/) >= 0, lines.join('\n'));
  const down = at(/ (re)?connecting$/);
  assert.ok(down >= 0, `a reconnecting line: ${lines.join('\n')}`);
  const resumed = lines.slice(down).map((l) => /open, resumed after #(\d+)/.exec(l)).find(Boolean);
  assert.ok(resumed && published.includes(resumed[1]), `an "open, resumed after #id" line after it: ${lines.join('\n')}`);
  assert.ok(Number(await page.textContent('#ch-rate')) > 0);
  await page.waitForSelector('#ch-state[data-state="open"]');
  await waitFor(async () => (await page.textContent('#vp-percent')) === '100', { timeoutMs: 15_000, what: 'video done' });
  await screenshot(page, 'demo-showcase');
  assert.deepEqual(errors, []);
  await context.close();
});

test('stopping the server shows reconnecting; restarting it reopens and delivers what was missed', async () => {
  const context = await env.browser.newContext();
  const { page } = await openDemo(context);
  const addr = new URL(env.server.url).host;
  const dataDir = env.server.dataDir;
  await env.server.kill('SIGTERM');
  await page.waitForSelector('#ta-state:not([data-state="open"])', { timeout: 10_000 });
  const shown = await page.getAttribute('#ta-state', 'data-state');
  assert.ok(['reconnecting', 'connecting', 'polling'].includes(shown), `state while down: ${shown}`);
  await screenshot(page, 'demo-server-down');
  const old = env.server;
  env.server = await startServer({ addr, dataDir });
  env.server.stop = async () => { await env.server.kill(); await old.stop(); };
  // Created while the page is still reconnecting: must arrive through the replay log.
  const res = await fetch(`${env.server.url}/api/team-answers/`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ video_name: 'v.mp4', frame_index: 1, url: 'http://127.0.0.1/f.jpg', qa: 'made while reconnecting' }),
  });
  assert.equal(res.status, 201);
  await page.waitForSelector('#ta-state[data-state="open"]', { timeout: 40_000 });
  await page.waitForSelector('#ta-list li:has-text("made while reconnecting")', { timeout: 10_000 });
  await context.close();
});
