// The fetch transport's hooks in headless Chromium against the real server:
// an injected `fetch` carries every stream request, `onOpen` sees the response
// before it is read, and an `onOpen` that throws or rejects refuses the stream
// for good (state `closed`, one `http` error, no retry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, devToken, waitFor } from '../lib/server.mjs';
import { collectErrors } from '../lib/browser.mjs';
import { serverAndBrowser, contextFor } from '../lib/harness.mjs';

const env = serverAndBrowser();

/** A page of the server's origin with the package imported as `window.mod`, closed with the test. */
async function packagePage(t) {
  const context = await contextFor(env.browser, t);
  const page = await context.newPage();
  await page.goto(`${env.server.url}/pkg/package.json`);
  await page.evaluate(async () => { window.mod = await import('/pkg/index.js'); });
  return page;
}

test('an injected fetch carries the stream and onOpen sees the response before events flow', async (t) => {
  const page = await packagePage(t);
  const errors = collectErrors(page);
  const token = await devToken(env.server.url, 'hooks', ['hooks']);
  await page.evaluate((token) => {
    window.fetched = [];
    window.opened = [];
    window.got = [];
    const m = window.mod.connect('/api/v1/events/hooks', {
      token,
      decoder: 'channel',
      shareAcrossTabs: false,
      fetch: (request) => { window.fetched.push({ url: request.url, auth: request.headers.get('authorization') }); return fetch(request); },
      onOpen: (response) => { window.opened.push({ status: response.status, type: response.headers.get('content-type'), events: window.got.length }); },
    });
    window.m = m;
    m.on('task', (msg, info) => window.got.push({ id: info.id, n: msg.object.n }));
  }, token);
  await waitFor(() => page.evaluate(() => window.m.state === 'open'), { what: 'open through the injected fetch' });
  const ids = [];
  for (let n = 1; n <= 3; n++) ids.push(String((await api(env.server.url, 'POST', '/api/v1/events/hooks', { body: { type: 'task', object: { n } }, token })).id));
  await waitFor(() => page.evaluate(() => window.got.length === 3), { what: 'three tasks' });
  const seen = await page.evaluate(() => ({ fetched: window.fetched, opened: window.opened, got: window.got }));
  assert.deepEqual(seen.got, ids.map((id, i) => ({ id, n: i + 1 })));
  assert.equal(seen.fetched.length, 1, `one stream request: ${JSON.stringify(seen.fetched)}`);
  assert.match(seen.fetched[0].url, /\/api\/v1\/events\/hooks/);
  assert.equal(seen.fetched[0].auth, `Bearer ${token}`);
  assert.equal(seen.opened.length, 1);
  assert.equal(seen.opened[0].status, 200);
  assert.match(seen.opened[0].type, /^text\/event-stream/);
  assert.equal(seen.opened[0].events, 0, 'onOpen runs before any event is delivered');
  assert.deepEqual(errors, []);
});

for (const how of ['throws', 'rejects']) {
  test(`an onOpen that ${how} refuses the stream for good: closed, one http error, no retry`, async (t) => {
    const page = await packagePage(t);
    const token = await devToken(env.server.url, 'hooks', ['refused']);
    await page.evaluate(({ token, how }) => {
      window.fetched = 0;
      window.errors = [];
      window.states = [];
      window.got = [];
      const m = window.mod.connect('/api/v1/events/refused', {
        token,
        shareAcrossTabs: false,
        fetch: (request) => { window.fetched += 1; return fetch(request); },
        onOpen: how === 'throws'
          ? () => { throw new Error('not the stream we want'); }
          : async () => { throw new Error('not the stream we want'); },
      });
      window.m = m;
      m.onState((s) => window.states.push(s));
      m.onError((e) => window.errors.push(e));
      m.on('*', (msg) => window.got.push(msg));
    }, { token, how });
    await waitFor(() => page.evaluate(() => window.m.state === 'closed' && window.errors.length > 0), { what: 'closed after the refusal' });
    await api(env.server.url, 'POST', '/api/v1/events/refused', { body: { type: 'task', object: { n: 1 } }, token });
    // Long enough for the shortest backoff to have retried several times.
    await new Promise((r) => setTimeout(r, 1500));
    const seen = await page.evaluate(() => ({ fetched: window.fetched, errors: window.errors, states: window.states, got: window.got, state: window.m.state }));
    assert.equal(seen.state, 'closed');
    assert.equal(seen.fetched, 1, 'refused for good: no second request');
    assert.equal(seen.errors.length, 1, JSON.stringify(seen.errors));
    assert.equal(seen.errors[0].kind, 'http');
    assert.equal(seen.errors[0].status, 200);
    assert.match(seen.errors[0].message, /onOpen refused the response: .*not the stream we want/);
    assert.deepEqual(seen.got, [], 'nothing of a refused stream is delivered');
    assert.ok(!seen.states.includes('reconnecting'), `states: ${seen.states}`);
  });
}
