// The React hooks of the package (tidings/react) with a fake manager injected
// by <TidingsProvider>, rendered by React Testing Library in jsdom: no server,
// no wasm. What runs against the real server is in e2e/react.test.mjs.
import { closeDom } from '../lib/dom.mjs';
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createElement as h, useCallback, useState } from 'react';
import { render, screen, act, cleanup } from '@testing-library/react';
import { TidingsProvider, useTidings, useTidingsEvents, useTidingsStatus } from 'tidings/react';
import { createFakeTidings } from 'tidings/testing';

afterEach(cleanup);
after(closeDom);

/** Renders `element` under a provider of a fresh fake; returns the fake. */
function renderWithFake(element) {
  const fake = createFakeTidings();
  const view = render(h(TidingsProvider, { connect: fake.connect }, element));
  return { fake, view };
}

/** Collects console.warn calls while `fn` runs. */
async function warnings(fn) {
  const seen = [];
  const original = console.warn;
  console.warn = (...args) => seen.push(args.join(' '));
  try {
    await fn();
  } finally {
    console.warn = original;
  }
  return seen;
}

function Answers({ url }) {
  const { state, error } = useTidingsStatus(url);
  const [answers, setAnswers] = useState([]);
  useTidings(url, 'create', (msg, info) => setAnswers((prev) => [...prev, `${info.id}:${msg.data.qa}`]));
  return h('div', null,
    h('p', { 'data-testid': 'state' }, state),
    h('p', { 'data-testid': 'error' }, error ? `${error.kind}: ${error.message}` : 'none'),
    h('ul', null, answers.map((a) => h('li', { key: a }, a))));
}

test('a fake manager drives a component: state, events with ids, unsubscribe on unmount', async () => {
  const { fake, view } = renderWithFake(h(Answers, { url: '/api/team-answers/sse/' }));
  const m = fake.manager('/api/team-answers/sse/');
  assert.equal(screen.getByTestId('state').textContent, 'open');
  assert.equal(m.listenerCount('create'), 1);
  act(() => m.emit('create', { type: 'create', data: { qa: 'first' } }, { id: '1' }));
  act(() => m.emit('create', { type: 'create', data: { qa: 'second' } }, { id: '2' }));
  assert.deepEqual(screen.getAllByRole('listitem').map((li) => li.textContent), ['1:first', '2:second']);
  act(() => m.setState('reconnecting'));
  assert.equal(screen.getByTestId('state').textContent, 'reconnecting');
  view.unmount();
  assert.equal(m.listenerCount(), 0);
});

test('a failed load shows state failed and the load error', () => {
  const { fake } = renderWithFake(h(Answers, { url: '/s' }));
  act(() => fake.manager('/s').fail('tidings: the SDK\'s wasm could not be loaded: 404'));
  assert.equal(screen.getByTestId('state').textContent, 'failed');
  assert.equal(screen.getByTestId('error').textContent, 'load: tidings: the SDK\'s wasm could not be loaded: 404');
});

test('the status hook keeps the last error while the stream goes on', () => {
  const { fake } = renderWithFake(h(Answers, { url: '/s' }));
  const m = fake.manager('/s');
  act(() => m.error({ kind: 'decode', message: 'unexpected shape', raw: '{' }));
  act(() => m.emit('create', { type: 'create', data: { qa: 'after' } }, { id: '3' }));
  assert.equal(screen.getByTestId('error').textContent, 'decode: unexpected shape');
  assert.equal(screen.getByTestId('state').textContent, 'open');
  assert.deepEqual(screen.getAllByRole('listitem').map((li) => li.textContent), ['3:after']);
});

function Feed({ url }) {
  const events = useTidingsEvents(url, 'tick', { limit: 3 });
  return h('ol', null, events.map((e) => h('li', { key: e.info.id }, `${e.info.id}=${e.message.n}`)));
}

test('useTidingsEvents keeps the last `limit` events and starts afresh when the URL changes', () => {
  const { fake, view } = renderWithFake(h(Feed, { url: '/a' }));
  const a = fake.manager('/a');
  for (let n = 1; n <= 4; n++) act(() => a.emit('tick', { n }, { id: `a${n}` }));
  assert.deepEqual(screen.getAllByRole('listitem').map((li) => li.textContent), ['a2=2', 'a3=3', 'a4=4']);
  view.rerender(h(TidingsProvider, { connect: fake.connect }, h(Feed, { url: '/b' })));
  assert.equal(screen.queryAllByRole('listitem').length, 0, 'the list of /a is gone');
  assert.equal(a.listenerCount(), 0, '/a is unsubscribed');
  act(() => fake.manager('/b').emit('tick', { n: 9 }, { id: 'b1' }));
  assert.deepEqual(screen.getAllByRole('listitem').map((li) => li.textContent), ['b1=9']);
});

function WithToken({ getToken }) {
  const { state } = useTidingsStatus('/s', { getToken, transport: 'fetch' });
  return h('p', null, state);
}

test('a new getToken closure is noticed by identity: a warning, and no resubscribe', async () => {
  const stable = () => 'tok';
  let fake;
  let view;
  const quiet = await warnings(() => {
    ({ fake, view } = renderWithFake(h(WithToken, { getToken: stable })));
    view.rerender(h(TidingsProvider, { connect: fake.connect }, h(WithToken, { getToken: stable })));
  });
  assert.deepEqual(quiet, [], 'the same function is the same options');
  const m = fake.manager('/s');
  let subscriptions = 0;
  const onState = m.onState.bind(m);
  m.onState = (f) => { subscriptions += 1; return onState(f); };
  const warned = await warnings(() => {
    view.rerender(h(TidingsProvider, { connect: fake.connect }, h(WithToken, { getToken: () => 'other' })));
  });
  assert.equal(warned.length, 1, warned.join('\n'));
  assert.match(warned[0], /\/s is already in use with other options; the first options win/);
  assert.equal(subscriptions, 0, 'a changed function does not resubscribe');
});

function TwoCallers() {
  useTidings('/s', 'a', () => {}, { decoder: 'json' });
  useTidings('/s', 'b', () => {}, { decoder: 'text' });
  useTidings('/s', 'c', () => {});
  return null;
}

test('a second caller with different options gets a development warning (the first options win)', async () => {
  const warned = await warnings(() => { renderWithFake(h(TwoCallers)); });
  assert.equal(warned.length, 1, warned.join('\n'));
  assert.match(warned[0], /the first options win/);
});

test('an inline options object with equal values neither warns nor resubscribes', async () => {
  function Inline({ n }) {
    const [count, setCount] = useState(0);
    const onTick = useCallback(() => setCount((c) => c + 1), []);
    useTidings('/s', 'tick', onTick, { decoder: 'json', headers: { 'x-n': '1' } });
    return h('p', { 'data-testid': 'count' }, `${n}:${count}`);
  }
  let fake;
  let view;
  const warned = await warnings(() => {
    ({ fake, view } = renderWithFake(h(Inline, { n: 1 })));
    view.rerender(h(TidingsProvider, { connect: fake.connect }, h(Inline, { n: 2 })));
  });
  assert.deepEqual(warned, []);
  const m = fake.manager('/s');
  assert.equal(m.listenerCount('tick'), 1);
  act(() => m.emit('tick', {}, { id: '1' }));
  assert.equal(screen.getByTestId('count').textContent, '2:1');
});
