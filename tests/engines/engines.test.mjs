// The SDK in another engine than Chromium: Firefox ESR (geckodriver) or WebKit
// (WebKitWebDriver + MiniBrowser, under xvfb-run), picked by ENGINE=firefox|webkit,
// driven by selenium-webdriver against the real server. Covers both transports,
// two tabs sharing one connection with leader failover, and resume across a reload.
// Where an engine lacks Web Locks or BroadcastChannel, the tab test checks the
// SDK's fallback instead (each tab its own connection) and says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, cpSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, api, devToken, waitFor, siteDir } from '../lib/server.mjs';
import { launchEngine } from '../lib/engines.mjs';

const ENGINE = process.env.ENGINE ?? 'firefox';
const TRANSPORTS = ['eventsource', 'fetch'];

/** The test page: imports the package entry as an app does (no init step) and exposes it as `window.tidings`. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>tidings in ${ENGINE}</title><link rel="icon" href="data:,">
<script>
// ?no-sharing: the page as an engine without Web Locks and BroadcastChannel sees it.
if (new URLSearchParams(location.search).has('no-sharing')) { delete Navigator.prototype.locks; delete globalThis.BroadcastChannel; }
</script>
<script type="module">
import * as tidings from '/pkg/index.js';
window.errs = [];
window.addEventListener('error', (e) => window.errs.push('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => window.errs.push('rejection: ' + e.reason));
window.tidings = tidings;
window.ready = 'ok';
</script>`;

let site;
let server;
let browser;
let home;
let pubToken;
let viewerToken;
let nextChannel = 0;

before(async () => {
  site = mkdtempSync(join(tmpdir(), `tidings-${ENGINE}-`));
  cpSync(join(siteDir(), 'pkg'), join(site, 'pkg'), { recursive: true });
  writeFileSync(join(site, 'index.html'), PAGE);
  server = await startServer({ staticDir: site });
  pubToken = await devToken(server.url, 'publisher', ['engine.*']);
  viewerToken = await devToken(server.url, 'viewer', ['engine.*']);
  // One browser for the file (a start costs seconds); each test works in tabs of its own.
  browser = await launchEngine(ENGINE);
  home = await browser.driver.getWindowHandle();
});
after(async () => {
  await browser?.quit();
  await server?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

/** A channel no other test uses, its stream URL and its key in /api/stats. */
function freshChannel() {
  const name = `engine.${ENGINE}.${process.pid}.${nextChannel++}`;
  return { url: `/api/v1/events/${name}`, key: `channel/${name}` };
}
async function publish(channel, n) {
  return String((await api(server.url, 'POST', channel.url, { body: { type: 'tick', object: { n } }, token: pubToken })).id);
}
async function connections(key) {
  return (await api(server.url, 'GET', '/api/stats')).connections.by_stream[key] ?? 0;
}

/** The browser for one test: the tabs it opens are closed when it ends (passed or not). */
function session(t) {
  const { driver } = browser;
  t.after(async () => {
    for (const handle of await driver.getAllWindowHandles()) {
      if (handle === home) continue;
      await driver.switchTo().window(handle);
      await driver.close();
    }
    await driver.switchTo().window(home);
  });
  return driver;
}

/** A new tab of the test page (`query` is its query string). Every call on it switches the driver to it first. */
async function openTab(driver, query = '') {
  await driver.switchTo().newWindow('tab');
  const handle = await driver.getWindowHandle();
  await driver.get(`${server.url}/${query}`);
  const tab = {
    handle,
    run: async (fn, ...args) => {
      await driver.switchTo().window(handle);
      return driver.executeScript(`return (${fn}).apply(null, arguments)`, ...args);
    },
  };
  await waitForTab(tab);
  return tab;
}
async function waitForTab(tab) {
  const ready = await waitFor(() => tab.run(() => window.ready ?? null), { what: 'the package loaded', timeoutMs: 20_000 });
  assert.equal(ready, 'ok', `${ENGINE}: ${ready}`);
}

/** Subscribes the tab to `tick` on `channel.url`; events land in `window.got`. Returns what the engine supports. */
function subscribe(tab, channel, options) {
  return tab.run((url, options) => {
    const m = window.tidings.connect(url, options);
    window.m = m;
    window.got = [];
    window.states = [];
    m.on('tick', (_msg, info) => window.got.push(info.id));
    m.onState((s) => window.states.push(s));
    m.onError((e) => window.errs.push(`${e.kind}: ${e.message}`));
    return {
      sharing: window.tidings.isTabSharingSupported(),
      locks: typeof navigator.locks?.request === 'function',
      broadcastChannel: typeof BroadcastChannel === 'function',
    };
  }, channel.url, { token: viewerToken, ...options });
}
const got = (tab) => tab.run(() => window.got);
const role = (tab) => tab.run(() => window.m.tabRole);
const state = (tab) => tab.run(() => window.m.state);
const errors = (tab) => tab.run(() => window.errs);
async function waitOpen(tab) {
  await waitFor(async () => (await state(tab)) === 'open', { what: `${ENGINE} tab open`, timeoutMs: 15_000 })
    .catch(async (e) => { throw new Error(`${e.message}; states ${await tab.run(() => window.states)}; errors ${await errors(tab)}`); });
}
async function waitGot(tab, expected, what) {
  await waitFor(async () => (await got(tab)).length >= expected.length, { what, timeoutMs: 15_000 })
    .catch(async (e) => { throw new Error(`${e.message}; got ${await got(tab)}; errors ${await errors(tab)}`); });
  assert.deepEqual(await got(tab), expected, `${what}: every event once, in order`);
}
async function waitConnections(key, n) {
  let seen;
  await waitFor(async () => (seen = await connections(key)) === n, { what: `${n} connection(s) for ${key}`, timeoutMs: 10_000 })
    .catch((e) => { throw new Error(`${e.message}; saw ${seen}`); });
}

/**
 * Two tabs subscribe to one stream, the first closes mid-stream, the other
 * delivers every event once, in order. With tab sharing (Web Locks +
 * BroadcastChannel) they hold one connection and the second takes over as
 * leader; without it (`noSharing`, or an engine lacking either API) each tab
 * holds its own connection, the SDK's fallback.
 */
async function leaderFailover(t, transport, { noSharing = false } = {}) {
  const driver = session(t);
  const channel = freshChannel();
  const query = noSharing ? '?no-sharing' : '';
  const a = await openTab(driver, query);
  const support = await subscribe(a, channel, { transport });
  await waitOpen(a);
  const b = await openTab(driver, query);
  await subscribe(b, channel, { transport });
  await waitOpen(b);
  const roles = [await role(a), await role(b)];
  t.diagnostic(`${ENGINE}: Web Locks ${support.locks}, BroadcastChannel ${support.broadcastChannel}, tab sharing ${support.sharing}; roles ${roles}`);
  if (noSharing) assert.equal(support.sharing, false);
  if (support.sharing) {
    await waitFor(async () => (await role(a)) === 'leader', { what: 'the first tab leads' });
    assert.equal(await role(b), 'follower');
    await waitConnections(channel.key, 1);
  } else {
    if (!noSharing) t.diagnostic(`${ENGINE} cannot share tabs: checking the SDK's fallback, a connection per tab`);
    assert.deepEqual(roles, ['solo', 'solo']);
    await waitConnections(channel.key, 2);
  }
  const published = [];
  for (let n = 0; n < 5; n++) published.push(await publish(channel, n));
  await waitGot(a, published, 'first tab before the close');
  await waitGot(b, published, 'second tab before the close');
  assert.deepEqual(await errors(a), []);

  await driver.switchTo().window(a.handle);
  await driver.close();
  for (let n = 5; n < 15; n++) {
    published.push(await publish(channel, n));
    await new Promise((r) => setTimeout(r, 50));
  }
  await waitGot(b, published, 'remaining tab after the first closed');
  assert.equal(await role(b), support.sharing ? 'leader' : 'solo');
  await waitConnections(channel.key, 1);
  assert.deepEqual(await errors(b), []);
}

test(`${ENGINE}: without Web Locks and BroadcastChannel each tab keeps a connection of its own`, async (t) => {
  await leaderFailover(t, 'eventsource', { noSharing: true });
});

for (const transport of TRANSPORTS) {
  test(`${ENGINE}: the ${transport} transport delivers live events`, async (t) => {
    const driver = session(t);
    const channel = freshChannel();
    const tab = await openTab(driver);
    await subscribe(tab, channel, { transport });
    await waitOpen(tab);
    await waitConnections(channel.key, 1);
    const published = [];
    for (let n = 0; n < 3; n++) published.push(await publish(channel, n));
    await waitGot(tab, published, `${transport} events`);
    assert.deepEqual(await errors(tab), []);
  });

  test(`${ENGINE}, ${transport}: two tabs share one connection; the other tab keeps receiving after the leader closes`, async (t) => {
    await leaderFailover(t, transport);
  });

  test(`${ENGINE}, ${transport}: a reload resumes after the last id, losing nothing`, async (t) => {
    const driver = session(t);
    const channel = freshChannel();
    const tab = await openTab(driver);
    await subscribe(tab, channel, { transport });
    await waitOpen(tab);
    const before = [];
    for (let n = 0; n < 3; n++) before.push(await publish(channel, n));
    await waitGot(tab, before, 'before the reload');
    await driver.navigate().refresh();
    await waitForTab(tab);
    // Published while the page was gone: the resumed stream replays them first.
    const missed = [await publish(channel, 3), await publish(channel, 4)];
    await subscribe(tab, channel, { transport });
    await waitOpen(tab);
    const live = await publish(channel, 5);
    await waitGot(tab, [...missed, live], 'after the reload');
    assert.deepEqual(await errors(tab), []);
  });
}
