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

/** The test page: imports the package, preloads the wasm, and exposes it as `window.tidings`. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>tidings in ${ENGINE}</title><link rel="icon" href="data:,">
<script type="module">
import * as tidings from '/pkg/tidings.js';
window.errs = [];
window.addEventListener('error', (e) => window.errs.push('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => window.errs.push('rejection: ' + e.reason));
try { await tidings.default(); window.tidings = tidings; window.ready = 'ok'; } catch (e) { window.ready = 'failed: ' + e; }
</script>`;

let site;
let server;
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
});
after(async () => {
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

/** A browser session for one test, quit when the test ends (passed or not). */
async function session(t) {
  const s = await launchEngine(ENGINE);
  t.after(() => s.quit());
  return s.driver;
}

/**
 * A tab of the test page: the session's first window, or a new tab. Every
 * call switches the driver to the tab it acts on.
 */
async function openTab(driver, { first = false } = {}) {
  if (!first) await driver.switchTo().newWindow('tab');
  const handle = await driver.getWindowHandle();
  await driver.get(`${server.url}/`);
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

for (const transport of TRANSPORTS) {
  test(`${ENGINE}: the ${transport} transport delivers live events`, async (t) => {
    const driver = await session(t);
    const channel = freshChannel();
    const tab = await openTab(driver, { first: true });
    await subscribe(tab, channel, { transport });
    await waitOpen(tab);
    await waitConnections(channel.key, 1);
    const published = [];
    for (let n = 0; n < 3; n++) published.push(await publish(channel, n));
    await waitGot(tab, published, `${transport} events`);
    assert.deepEqual(await errors(tab), []);
  });

  test(`${ENGINE}, ${transport}: two tabs share one connection; the other tab keeps receiving after the leader closes`, async (t) => {
    const driver = await session(t);
    const channel = freshChannel();
    const a = await openTab(driver, { first: true });
    const support = await subscribe(a, channel, { transport });
    await waitOpen(a);
    const b = await openTab(driver);
    await subscribe(b, channel, { transport });
    await waitOpen(b);
    const roles = [await role(a), await role(b)];
    if (support.sharing) {
      await waitFor(async () => (await role(a)) === 'leader', { what: 'the first tab leads' });
      assert.equal(await role(b), 'follower');
      await waitConnections(channel.key, 1);
    } else {
      // The engine lacks Web Locks or BroadcastChannel: the SDK gives each tab its own connection.
      t.diagnostic(`${ENGINE} has no tab sharing (Web Locks: ${support.locks}, BroadcastChannel: ${support.broadcastChannel}): checking the per-tab fallback`);
      assert.deepEqual(roles, ['solo', 'solo']);
      await waitConnections(channel.key, 2);
    }
    const published = [];
    for (let n = 0; n < 5; n++) published.push(await publish(channel, n));
    await waitGot(a, published, 'leader tab before the close');
    await waitGot(b, published, 'second tab before the close');
    assert.deepEqual(await errors(a), []);

    await driver.switchTo().window(a.handle);
    await driver.close();
    for (let n = 5; n < 15; n++) {
      published.push(await publish(channel, n));
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitGot(b, published, 'remaining tab after the leader closed');
    if (support.sharing) assert.equal(await role(b), 'leader');
    await waitConnections(channel.key, 1);
    assert.deepEqual(await errors(b), []);
  });

  test(`${ENGINE}, ${transport}: a reload resumes after the last id, losing nothing`, async (t) => {
    const driver = await session(t);
    const channel = freshChannel();
    const tab = await openTab(driver, { first: true });
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
