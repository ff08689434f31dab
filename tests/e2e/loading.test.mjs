// The package entry with no init step, in headless Chromium against the real
// server: connect() loads the wasm on first use and keeps the listeners added
// meanwhile; a wasm that cannot be loaded gives state `failed` and a `load` error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, devToken, waitFor } from '../lib/server.mjs';
import { collectErrors } from '../lib/browser.mjs';
import { serverAndBrowser, contextFor } from '../lib/harness.mjs';

const env = serverAndBrowser();

/** A page of the server's origin (a static file, so nothing else on it loads the SDK), closed with the test. */
async function blankPage(t) {
  const context = await contextFor(env.browser, t);
  const page = await context.newPage();
  const wasmRequests = [];
  page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmRequests.push(r.url()); });
  return { context, page, wasmRequests };
}

test('connect() with no init(): importing loads nothing, the first connect loads the wasm, early listeners get events', async (t) => {
  const { page, wasmRequests } = await blankPage(t);
  const errors = collectErrors(page);
  await page.goto(`${env.server.url}/pkg/package.json`);
  const token = await devToken(env.server.url, 'loader', ['load']);
  await page.evaluate(async () => { window.mod = await import('/pkg/index.js'); });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(wasmRequests, [], 'importing the package fetches no wasm');
  const before = await page.evaluate(async (token) => {
    const mod = window.mod;
    const m = mod.connect('/api/v1/events/load', { token, decoder: 'channel', shareAcrossTabs: false });
    window.m = m;
    window.got = [];
    window.states = [];
    m.onState((s) => window.states.push(s));
    // Registered before the wasm has loaded: kept and handed over.
    m.on('tick', (msg, info) => window.got.push({ id: info.id, n: msg.object.n }));
    return { state: m.state, role: m.tabRole, sameObject: mod.connect('/api/v1/events/load', { token }) === m };
  }, token);
  assert.deepEqual(before, { state: 'connecting', role: 'idle', sameObject: true });
  await waitFor(() => page.evaluate(() => window.m.state === 'open'), { what: 'open after the lazy load' });
  assert.equal(wasmRequests.length, 1, `one wasm request: ${wasmRequests}`);
  const ids = [];
  for (let n = 1; n <= 3; n++) {
    const r = await api(env.server.url, 'POST', '/api/v1/events/load', { body: { type: 'tick', object: { n } }, token });
    ids.push(String(r.id));
  }
  await waitFor(() => page.evaluate(() => window.got.length === 3), { what: 'three ticks' });
  assert.deepEqual(await page.evaluate(() => window.got), ids.map((id, i) => ({ id, n: i + 1 })));
  const after = await page.evaluate((token) => ({
    states: window.states,
    sameObject: window.mod.connect('/api/v1/events/load', { token }) === window.m,
    lastEventId: window.m.lastEventId,
    decoder: window.m.decoder,
  }), token);
  assert.equal(after.states[0], 'closed');
  assert.equal(after.states.at(-1), 'open');
  assert.equal(after.states.filter((s, i) => s === after.states[i - 1]).length, 0, `no repeated state: ${after.states}`);
  assert.equal(after.sameObject, true, 'the same manager object after the load');
  assert.equal(after.lastEventId, ids[2]);
  assert.equal(after.decoder, 'channel');
  // init() still works after the fact, for code that preloads.
  assert.equal(await page.evaluate(async () => (await window.mod.default()) === undefined), true);
  await page.evaluate(() => window.m.close());
  await waitFor(async () => (await api(env.server.url, 'GET', '/api/stats')).connections.total === 0, { what: 'closed' });
  assert.deepEqual(errors, []);
});

test('init() preloads: a connect after it is the wasm manager at once and throws on invalid options', async (t) => {
  const { page } = await blankPage(t);
  await page.goto(`${env.server.url}/pkg/package.json`);
  const r = await page.evaluate(async () => {
    const mod = await import('/pkg/index.js');
    await mod.default();
    const m = mod.connect('/api/team-answers/sse/');
    let thrown = null;
    try { mod.connect('/api/other', { decoder: 'nope' }); } catch (e) { thrown = e.message; }
    return { state: m.state, decoder: m.decoder, thrown, supported: mod.isSupported(), sharing: mod.isTabSharingSupported() };
  });
  assert.equal(r.state, 'closed');
  assert.equal(r.decoder, 'auto', 'never guessed from the URL');
  assert.match(r.thrown ?? '', /tidings: invalid options/);
  assert.equal(r.supported, true);
  assert.equal(r.sharing, true);
});

test('a wasm that cannot be loaded (404): state failed and an onError of kind load with the reason; a later connect retries', async (t) => {
  const { context, page } = await blankPage(t);
  let refused = 0;
  await context.route('**/tidings_bg.wasm', (route) => { refused += 1; return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not here' }); });
  await page.goto(`${env.server.url}/pkg/package.json`);
  const r = await page.evaluate(async () => {
    const mod = await import('/pkg/index.js');
    const m = mod.connect('/api/team-answers/sse/', { decoder: 'team-answers' });
    const states = [];
    const errors = [];
    m.onState((s) => states.push(s));
    m.onError((e) => errors.push(e));
    m.on('create', () => {});
    await new Promise((resolve) => { m.onState((s) => { if (s === 'failed') resolve(); }); });
    const late = [];
    m.onError((e) => late.push(e.kind)); // a listener added after the failure hears of it at once
    return { states, errors, late, state: m.state };
  });
  assert.equal(r.state, 'failed');
  assert.deepEqual(r.states, ['closed', 'connecting', 'failed']);
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0].kind, 'load');
  assert.match(r.errors[0].message, /tidings: the SDK's wasm could not be loaded: .+/);
  t.diagnostic(`load error: ${r.errors[0].message}`);
  assert.deepEqual(r.late, ['load']);
  assert.equal(refused, 1);
  // The wasm is back: the next connect loads it and works.
  await context.unroute('**/tidings_bg.wasm');
  const state = await page.evaluate(async () => {
    const mod = await import('/pkg/index.js');
    const m = mod.connect('/api/team-answers/sse/', { decoder: 'team-answers' });
    m.on('create', () => {});
    await new Promise((resolve) => { m.onState((s) => { if (s === 'open') resolve(); }); });
    const state = m.state;
    m.close();
    return state;
  });
  assert.equal(state, 'open');
});
