// Adversarial inputs against the real server: each gets a clear
// error, a control client keeps receiving throughout, memory returns to baseline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, devToken } from '../lib/server.mjs';
import { openSse, signJwt, DEV_SECRET, stuckClient, rssKiB } from '../lib/sse.mjs';

const PER_USER_LIMIT = 8;
let server;
let control;      // control client on channel project.ctl
let publisher;    // token allowed to publish there
let published = 0;

async function publish(n = 1, size = 64) {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${server.url}/api/v1/events/project.ctl`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${publisher}` },
      body: JSON.stringify({ type: 'data', object: { seq: ++published, pad: 'x'.repeat(size) } }),
    });
    assert.equal(res.status, 200, await res.text());
  }
}

/** Sends a request and checks it failed cleanly: the expected status and a JSON {error} body. */
async function expectError(path, init, statuses) {
  const res = await fetch(server.url + path, init);
  const body = await res.text();
  assert.ok(statuses.includes(res.status), `${init?.method ?? 'GET'} ${path.slice(0, 80)} → ${res.status} ${body.slice(0, 200)}`);
  assert.equal(typeof JSON.parse(body).error, 'string', body);
  return JSON.parse(body).error;
}

before(async () => {
  server = await startServer({ args: ['--max-connections-per-user', String(PER_USER_LIMIT), '--subscriber-queue', '16', '--max-body-bytes', '65536', '--replay-log-size', '100', '--write-stall-secs', '2'] });
  publisher = await devToken(server.url, 'ctl', ['project.ctl']);
  control = await openSse(`${server.url}/api/v1/events/project.ctl?token=${publisher}`);
  assert.equal(control.status, 200);
  await waitFor(() => control.events.some((e) => e.event === 'heartbeat') || true);
});
after(async () => {
  control?.close();
  await server?.stop();
});

test('malformed, wrong-type and oversize bodies get 4xx with a message naming the problem', async () => {
  const post = (body, type = 'application/json') => ({ method: 'POST', headers: { 'content-type': type }, body });
  const msg = await expectError('/api/team-answers/', post('{"video_name": '), [400, 422]);
  assert.match(msg, /json|expected|EOF/i);
  assert.match(await expectError('/api/team-answers/', post('{"frame_index": 1, "url": "u"}'), [422]), /video_name/);
  assert.match(await expectError('/api/team-answers/', post('{"video_name": "v", "frame_index": "x", "url": "u"}'), [422]), /frame_index/);
  await expectError('/api/team-answers/', post('video_name=v', 'application/x-www-form-urlencoded'), [415, 422]);
  await expectError('/api/notifications/trigger/', post('[1,2,3]'), [422]);
  await expectError('/api/chat/create-video', post(JSON.stringify({ prompt: 'x'.repeat(200_000) })), [413]);
  await expectError('/api/chat/create-video', post('null'), [422]);
  await publish(1);
});

test('ids and channel names with control characters or huge lengths are refused', async () => {
  await expectError('/api/team-answers/%01/', { method: 'DELETE' }, [400, 404, 422]);
  await expectError('/api/team-answers/999999999/', { method: 'DELETE' }, [404]);
  await expectError('/api/v1/events/te%00st', {}, [400, 422]);
  await expectError('/api/v1/events/bad%0Aname', {}, [400, 422]);
  await expectError(`/api/v1/events/${'p'.repeat(5000)}`, {}, [400, 414, 422, 431]);
  await expectError('/api/video-progress/%1B%5B31m', {}, [400, 404, 422]);
  await publish(1);
});

test('Last-Event-ID garbage becomes a reset event, never a 500', async () => {
  for (const bad of ['abc', '-1', '1e9', '99999999999999999999999', '%01%02', 'x'.repeat(5000)]) {
    const s = await openSse(`${server.url}/api/team-answers/sse/?lastEventId=${bad}`);
    assert.equal(s.status, 200, `lastEventId=${bad.slice(0, 20)}: ${s.body}`);
    const reset = await waitFor(() => s.events.find((e) => e.event === 'reset'), { what: `reset for ${bad.slice(0, 20)}` });
    assert.match(JSON.parse(reset.data).reason, /invalid_id|ahead|gap/);
    s.close();
  }
  const viaHeader = await openSse(`${server.url}/api/team-answers/sse/`, { headers: { 'last-event-id': 'garbage' } });
  await waitFor(() => viaHeader.events.find((e) => e.event === 'reset'), { what: 'reset via header' });
  viaHeader.close();
});

test('forged, expired and wrong-algorithm tokens get 401; foreign channels 403', async () => {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'mallory', channels: ['*'], exp: now + 3600 };
  const cases = {
    'wrong secret': signJwt(claims, 'not-the-secret'),
    expired: signJwt({ ...claims, exp: now - 3600 }, DEV_SECRET),
    'alg none': `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`,
    'RS256 header (key confusion)': signJwt(claims, DEV_SECRET, { alg: 'RS256', typ: 'JWT' }),
    HS512: signJwt(claims, DEV_SECRET, { alg: 'HS512', typ: 'JWT' }),
    garbage: 'not.a.jwt',
    'no sub': signJwt({ exp: now + 3600 }, DEV_SECRET),
  };
  for (const [name, token] of Object.entries(cases)) {
    const msg = await expectError(`/api/notifications/stream?token=${encodeURIComponent(token)}`, {}, [401]);
    assert.ok(!msg.includes(token), `${name}: the error must not echo the token`);
    await expectError('/api/v1/events/project.ctl', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{"type":"data","object":{}}' }, [401]);
  }
  await expectError('/api/notifications/stream', {}, [401]);
  // A valid token for alice, limited to project.1, on another project: 403 on read and on publish.
  const alice = await devToken(server.url, 'alice', ['project.1']);
  await expectError(`/api/v1/events/project.2?token=${alice}`, {}, [403]);
  await expectError('/api/v1/events/project.ctl', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}` }, body: '{"type":"data","object":{}}' }, [403]);
  // Alice's token only ever opens alice's notifications: bob's events never reach it.
  const bob = await devToken(server.url, 'bob');
  const aliceStream = await openSse(`${server.url}/api/notifications/stream?token=${alice}`);
  await fetch(`${server.url}/api/notifications/trigger/`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bob}` }, body: JSON.stringify({ user_id: 'bob', title: 'secret', message: 'for bob', type: 'info' }) });
  await publish(1);
  await waitFor(() => control.events.filter((e) => e.id).length >= published, { what: 'control caught up' });
  assert.ok(!aliceStream.events.some((e) => e.data.includes('for bob')), 'cross-user delivery');
  aliceStream.close();
});

test('a connection flood past the per-user limit gets 429 and frees up afterwards', async () => {
  const token = await devToken(server.url, 'flooder');
  const held = [];
  for (let i = 0; i < PER_USER_LIMIT; i++) {
    const s = await openSse(`${server.url}/api/notifications/stream?token=${token}`);
    assert.equal(s.status, 200, `connection ${i + 1}`);
    held.push(s);
  }
  for (let i = 0; i < 20; i++) await expectError(`/api/notifications/stream?token=${token}`, {}, [429]);
  held.forEach((s) => s.close());
  await waitFor(async () => (await (await fetch(`${server.url}/api/stats`)).json()).connections.by_user?.flooder === undefined
    || (await (await fetch(`${server.url}/api/stats`)).json()).connections.by_user.flooder === 0, { what: 'flood connections released' });
  const again = await openSse(`${server.url}/api/notifications/stream?token=${token}`);
  assert.equal(again.status, 200);
  again.close();
});

/** 50 clients that never read, ~15 MiB of team answers pushed at each, then they leave. Returns peak RSS. */
async function stuckReaderAttack() {
  const lagBefore = await laggedCount();
  const stuck = [];
  // Anonymous stream (team answers), so the per-user limit does not apply.
  for (let i = 0; i < 50; i++) stuck.push(stuckClient(server.url, '/api/team-answers/sse/'));
  await waitFor(async () => (await (await fetch(`${server.url}/api/stats`)).json()).connections.total >= 51, { what: 'stuck clients connected' });
  // Far past the socket buffers and the bounded queue, interleaved with events for the control client.
  for (let i = 0; i < 256; i++) {
    const res = await fetch(`${server.url}/api/team-answers/`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_name: 'v.mp4', frame_index: i, url: 'http://127.0.0.1/f.jpg', qa: 'q'.repeat(60 * 1024) }),
    });
    assert.equal(res.status, 201);
    if (i % 8 === 0) await publish(1);
  }
  const peak = await rssKiB(server.proc.pid);
  // Their subscriptions were closed for lag (bounded queue), counted in /metrics.
  assert.ok(await laggedCount() - lagBefore >= 50, `subscribers closed for lag: ${await laggedCount() - lagBefore}`);
  // The server itself closes them once their writes stall (--write-stall-secs 2): no descriptor is held for a dead reader.
  await waitFor(async () => (await (await fetch(`${server.url}/api/stats`)).json()).connections.total === 1,
    { timeoutMs: 15_000, what: 'server closed the stuck readers' });
  stuck.forEach((sock) => sock.destroy());
  await fetch(`${server.url}/api/team-answers/delete-all/`, { method: 'DELETE' });
  return peak;
}

async function laggedCount() {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^tidings_subscribers_lagged_total\s+(\d+)/m.exec(metrics)?.[1] ?? NaN);
}

test('clients that never read are closed by the server, the control client keeps up, memory returns to baseline', async () => {
  await publish(20);
  const idle = await rssKiB(server.proc.pid);
  // Round 1 warms the replay log, SQLite's cache and the allocator's arenas up to their working size.
  const peak1 = await stuckReaderAttack();
  await new Promise((r) => setTimeout(r, 500));
  const baseline = await rssKiB(server.proc.pid);
  // Round 2 must leave nothing behind: memory comes back to the level round 1 left.
  const peak2 = await stuckReaderAttack();
  await new Promise((r) => setTimeout(r, 500));
  const afterKiB = await rssKiB(server.proc.pid);
  console.log(`# memory (KiB): idle ${idle}, peak ${peak1}, after round 1 ${baseline}, peak ${peak2}, after round 2 ${afterKiB}`);
  assert.ok(afterKiB < baseline + 8 * 1024, `RSS did not return to baseline: ${baseline} → ${afterKiB} KiB`);
  assert.ok(peak2 < baseline + 32 * 1024, `RSS grew ${peak2 - baseline} KiB with 50 stuck clients`);
  // The control client received every event, in order, exactly once, throughout.
  await waitFor(() => control.events.filter((e) => e.id).length >= published, { timeoutMs: 20_000, what: 'control received all' });
  const seqs = control.events.filter((e) => e.event === 'message' && e.id).map((e) => JSON.parse(e.data).object.seq);
  assert.deepEqual(seqs, Array.from({ length: published }, (_, i) => i + 1));
  const ids = control.events.filter((e) => e.id).map((e) => Number(e.id));
  assert.ok(ids.every((id, i) => i === 0 || id === ids[i - 1] + 1), 'consecutive ids');
});
