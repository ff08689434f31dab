// HTTP/2 over TLS in real headless Chromium against the real server started with
// --tls-cert/--tls-key (a self-signed certificate made at test time, trusted by its
// SPKI hash): a page served over https follows 8 channels and the 3 other seed streams,
// every stream gets every event, a REST call answers at once, and the page's requests
// went over h2, with the SDK's multiplexing and without it (every stream its own
// request: 11 streams on the one HTTP/2 connection, which HTTP/1.1's ~6 sockets per
// origin could not carry).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from '../lib/server.mjs';
import { launchBrowser, collectErrors, recordIds } from '../lib/browser.mjs';
import { contextFor } from '../lib/harness.mjs';
import { selfSigned, h2Client } from '../lib/tls.mjs';

const env = { certs: undefined, server: undefined, browser: undefined, api: undefined };

before(async () => {
  env.certs = selfSigned();
  env.server = await startServer({ args: ['--tls-cert', env.certs.cert, '--tls-key', env.certs.key] });
  assert.match(env.server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  env.api = h2Client(env.server.url, env.certs.pem);
  env.browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${env.certs.spki}`]);
});
after(async () => {
  await env.browser?.close();
  await env.api?.close();
  await env.server?.stop();
  env.certs?.remove();
});

const api = (method, path, opts) => env.api.request(method, path, opts);

/** A page of the server's https origin with one manager per URL, recording every event id per URL. */
async function open(t, urls, options) {
  const context = await contextFor(env.browser, t);
  const page = await context.newPage();
  const errors = collectErrors(page);
  const nav = await page.goto(`${env.server.url}/pkg/package.json`);
  assert.equal(nav.status(), 200);
  await recordIds(page, urls, options);
  // Open, or closed for the video job's stream once the job has ended.
  await waitFor(async () => (await page.evaluate(() => Object.values(window.ms).every((m) => ['open', 'closed'].includes(m.state)))),
    { what: 'every stream open', timeoutMs: 15_000 });
  return { page, errors };
}

/** Publishes one event to each stream of the set; resolves with the ids each must get. */
async function publishToAll({ channels, user, token, job }) {
  const want = {};
  for (const [i, c] of channels.entries()) {
    const r = await api('POST', c, { body: { type: 'task', object: { n: i } }, token });
    want[c] = [String(r.id)];
  }
  await api('POST', '/api/team-answers/', { body: { video_name: 'h2.mp4', frame_index: 1, url: 'http://x/f.jpg' } });
  await api('POST', '/api/notifications/trigger/', { body: { user_id: user, title: 't', message: 'm', type: 'info' } });
  await api('POST', '/api/team-answers/', { body: { video_name: 'h2.mp4', frame_index: 2, url: 'http://x/g.jpg' } });
  return want;
}

/** Every stream got exactly its events: one per channel, two answers, a notification and its count, the whole job. */
async function everyStreamGotEverything(tab, { channels, want, answers, bell, video }) {
  let g;
  await waitFor(async () => {
    g = await tab.page.evaluate(() => window.got);
    return channels.every((c) => g[c].length >= 1) && g[answers].length >= 2 && g[bell].length >= 2 && g[video].length >= 7;
  }, { what: 'every stream got its events', timeoutMs: 15_000 })
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(g)}`); });
  // Anything late (a duplicate) would land within this pause.
  await new Promise((r) => setTimeout(r, 300));
  g = await tab.page.evaluate(() => window.got);
  for (const c of channels) assert.deepEqual(g[c], want[c], `${c}: exactly its event`);
  assert.equal(g[answers].length, 2, JSON.stringify(g));
  assert.equal(g[bell].length, 2, JSON.stringify(g));
  const v = g[video].map(Number);
  assert.equal(v.length, 7, JSON.stringify(g));
  assert.deepEqual(v, [...v].sort((a, b) => a - b));
  assert.equal(new Set(v).size, v.length);
}

/** A REST call from the page: its time, and the protocol of every request the page made. */
async function restAndProtocols(tab) {
  return tab.page.evaluate(async () => {
    const t0 = performance.now();
    const r = await fetch('/api/team-answers/');
    await r.json();
    const took = performance.now() - t0;
    const resources = performance.getEntriesByType('resource').map((e) => ({ name: new URL(e.name).pathname, protocol: e.nextHopProtocol }));
    const navigation = performance.getEntriesByType('navigation')[0].nextHopProtocol;
    return { took, resources, navigation };
  });
}

function assertH2({ took, resources, navigation }) {
  assert.ok(took < 1000, `REST call took ${took} ms`);
  assert.equal(navigation, 'h2');
  // Requests still open or cut short (a stream moved to the multiplexed connection) have
  // no protocol yet; every one that has says h2.
  for (const r of resources) assert.ok(['h2', ''].includes(r.protocol), JSON.stringify(r));
  for (const want of ['/pkg/tidings.js', '/pkg/tidings_bg.wasm', '/api/team-answers/']) {
    assert.ok(resources.some((r) => r.name === want && r.protocol === 'h2'), `${want} over h2: ${JSON.stringify(resources)}`);
  }
}

async function streamSet(tag, suffix) {
  const user = `h2${tag}${Date.now()}`;
  const { token } = await api('POST', '/api/auth/dev-token', { body: { user_id: user, channels: [`${tag}.*`] } });
  const job = await api('POST', '/api/chat/create-video', { body: { prompt: 'p', steps: 3, step_ms: 500 } });
  const channels = Array.from({ length: 8 }, (_, i) => `/api/v1/events/${tag}.${i}${suffix}`);
  const answers = `/api/team-answers/sse/${suffix}`;
  const bell = `/api/notifications/stream${suffix}`;
  const video = `${job.progress_url}${suffix}`;
  return { user, token, channels, answers, bell, video, urls: [...channels, answers, bell, video] };
}

test('over HTTP/2, 8 channels and 3 seed streams on the SDK\'s multiplexed connection get every event; REST answers at once; requests go over h2', async (t) => {
  const set = await streamSet('hmux', '');
  const tab = await open(t, set.urls, { token: set.token });
  // The SDK still multiplexes: one stream request for the page.
  let seen;
  await waitFor(async () => (seen = (await api('GET', '/api/stats')).connections).total === 1, { what: 'one multiplexed stream', timeoutMs: 15_000 })
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(seen)}`); });
  assertH2(await restAndProtocols(tab));
  const want = await publishToAll(set);
  await everyStreamGotEverything(tab, { ...set, want });
  assert.deepEqual(tab.errors, []);
});

test('over HTTP/2, 11 streams each on its own request share one connection; every stream gets every event; REST answers at once', async (t) => {
  // A query string keeps a manager off the multiplexed connection: each stream is its
  // own request (the fetch transport, whose '*' listener sees named events too), so
  // each is one HTTP/2 stream on the page's one connection.
  const set = await streamSet('hsolo', '?via=h2');
  const tab = await open(t, set.urls, { token: set.token, transport: 'fetch' });
  let stats;
  // Each stream its own request: the user's 9 (channels, notifications) and team answers
  // counted one by one (the short video job's stream may have ended already).
  await waitFor(async () => {
    stats = await api('GET', '/api/stats');
    return stats.connections.by_user[set.user] === 9 && stats.connections.total >= 10;
  }, { what: 'every stream its own request', timeoutMs: 15_000 })
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(stats)}`); });
  // Sockets: the page's one connection and this test's API client (a TLS
  // connection counts as a socket for its whole life).
  assert.ok(stats.caps.open_sockets <= 2, JSON.stringify(stats.caps));
  assertH2(await restAndProtocols(tab));
  const want = await publishToAll(set);
  await everyStreamGotEverything(tab, { ...set, want });
  assert.deepEqual(tab.errors, []);
});
