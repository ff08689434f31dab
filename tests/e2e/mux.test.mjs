// Many streams, one connection, in real headless Chromium against the real
// server: a page with 8 channel managers and the 3 other seed streams holds
// one connection; every stream gets every event; a REST call answers at once;
// a second tab (a tab-sharing follower) gets all of it too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, devToken, waitFor } from '../lib/server.mjs';
import { collectErrors, recordIds } from '../lib/browser.mjs';
import { serverAndBrowser, contextFor } from '../lib/harness.mjs';

const env = serverAndBrowser();

const stats = async () => (await api(env.server.url, 'GET', '/api/stats')).connections;

/** A page of the server's origin with one manager per URL, recording every event with an id per URL. */
async function page(context, urls, token) {
  const p = await context.newPage();
  const errors = collectErrors(p);
  await p.goto(`${env.server.url}/pkg/package.json`);
  await recordIds(p, urls, { token });
  return { page: p, errors };
}
const got = (t) => t.page.evaluate(() => window.got);
const states = (t) => t.page.evaluate(() => Object.values(window.ms).map((m) => m.state));
const roles = (t) => t.page.evaluate(() => Object.values(window.ms).map((m) => m.tabRole));

test('8 channels and 3 seed streams on one connection; a follower tab gets all of it; REST answers at once', async (t) => {
  const user = `mux${Date.now()}`;
  const token = await devToken(env.server.url, user, ['dash.*']);
  const job = await api(env.server.url, 'POST', '/api/chat/create-video', { body: { prompt: 'p', steps: 3, step_ms: 1500 } });
  const channels = Array.from({ length: 8 }, (_, i) => `/api/v1/events/dash.${i}`);
  const urls = [...channels, '/api/team-answers/sse/', '/api/notifications/stream', job.progress_url];
  const context = await contextFor(env.browser, t);
  const leader = await page(context, urls, token);
  await waitFor(async () => (await states(leader)).slice(0, 10).every((s) => s === 'open'), { what: 'every stream open in the first tab' });
  const follower = await page(context, urls, token);
  await waitFor(async () => (await roles(follower)).slice(0, 10).every((r) => r === 'follower'), { what: 'the second tab follows' });
  let seen;
  // One connection carrying the user's 9 streams (8 channels and the notifications; team
  // answers are anonymous). `total` alone can read 1 for a moment while the shared connection
  // is replaced and a manager still on its own connection waits for its first id to move over.
  await waitFor(async () => { seen = await stats(); return seen.total === 1 && seen.by_user[user] === 9; },
    { what: 'one connection with every stream', timeoutMs: 15_000 })
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(seen)}`); });

  // A REST call from the follower page answers at once.
  const took = await follower.page.evaluate(async () => {
    const t0 = performance.now();
    const r = await fetch('/api/team-answers/');
    await r.json();
    return performance.now() - t0;
  });
  assert.ok(took < 1000, `REST call took ${took} ms`);

  const want = {};
  for (const [i, c] of channels.entries()) {
    const r = await api(env.server.url, 'POST', c, { body: { type: 'task', object: { n: i } }, token });
    want[c] = [String(r.id)];
  }
  const answer = await api(env.server.url, 'POST', '/api/team-answers/', { body: { video_name: 'v.mp4', frame_index: 1, url: 'http://x/f.jpg', qa: 'Q' } });
  await api(env.server.url, 'POST', '/api/notifications/trigger/', { body: { user_id: user, title: 't', message: 'm', type: 'info' } });
  // The follower joined while the video job ran: it starts at the leader's
  // position (live), so it gets the job's later events, ending with the same one.
  let finalVideo;
  for (const tab of [leader, follower]) {
    let g;
    await waitFor(async () => {
      g = await got(tab);
      return channels.every((c) => g[c].length >= 1)
        && g['/api/team-answers/sse/'].length >= 1
        && g['/api/notifications/stream'].length >= 2
        && g[job.progress_url].length >= (tab === leader ? 7 : 1)
        && (tab === leader || g[job.progress_url].at(-1) === finalVideo);
    }, { what: 'every stream got its events', timeoutMs: 15_000 })
      .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(g)}`); });
    for (const c of channels) assert.deepEqual(g[c], want[c], `${c}: exactly its event`);
    assert.equal(g['/api/team-answers/sse/'].length, 1, JSON.stringify(g));
    assert.ok(answer, 'team answer created');
    // new_notification then unread_count, each once
    assert.deepEqual(g['/api/notifications/stream'].length, 2, JSON.stringify(g));
    // 3 steps: 2 progress events each, then completed: 7 ids, in order, none twice
    const v = g[job.progress_url].map(Number);
    assert.deepEqual(v, [...v].sort((a, b) => a - b));
    assert.equal(new Set(v).size, v.length);
    if (tab === leader) {
      assert.equal(v.length, 7, JSON.stringify(g));
      finalVideo = g[job.progress_url].at(-1);
    }
  }
  // The finished video stream left the set: one reconnect, still one connection.
  await waitFor(async () => (await stats()).total === 1, { what: 'still one connection' });
  assert.deepEqual([...leader.errors, ...follower.errors], []);
});
