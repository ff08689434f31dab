// Memory per idle stream over HTTP/2 (TLS, served by hyper) beside the plain stream hub,
// in one run: for each setup a fresh tidings-server, its VmRSS before and after N idle
// SSE streams, then one event to all (time until every request has it). Setups:
//   plain        N HTTP/1.1 connections to /api/v1/events/test (the stream hub)
//   h2:S         N streams to /api/v1/events/test over N/S TLS connections, S each
//   plain-mux:S  N/S HTTP/1.1 connections, each one /api/mux request for S channels
//   h2-mux:S     N/S TLS connections, each one /api/mux request for S channels (HTTP/2)
// (a multiplexed request carries `test`, where the probe goes, and S-1 other channels).
// Loopback only; every server and socket it opens is closed on every exit path; the whole
// run stops itself after RUN_SECS.
//
//   node bench/h2.mjs                 # N=10000, SETUPS="plain h2:1 h2:8 h2:100 plain-mux:8 h2-mux:8"
//   N=2000 SETUPS="plain h2:100" node bench/h2.mjs
//
// Environment: N (streams per setup), SETUPS, SETTLE_SECS (idle time before the loaded
// RSS sample, 3), RUN_SECS (600), TIDINGS_SERVER_BIN (use a release build).
import http2 from 'node:http2';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startServer } from '../lib/server.mjs';
import { selfSigned, h2Client } from '../lib/tls.mjs';

const N = Number(process.env.N ?? 10_000);
const SETUPS = (process.env.SETUPS ?? 'plain h2:1 h2:8 h2:100 plain-mux:8 h2-mux:8').split(/\s+/).filter(Boolean);
const SETTLE_SECS = Number(process.env.SETTLE_SECS ?? 3);
const RUN_SECS = Number(process.env.RUN_SECS ?? 600);
const PATH = '/api/v1/events/test';

const stopAt = setTimeout(() => { console.error(`stopped after RUN_SECS=${RUN_SECS}`); process.exit(1); }, RUN_SECS * 1000);
stopAt.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssKib = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** Runs `task` over `items` with at most `width` at a time. */
async function pool(items, width, task) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await task(items[next++]);
  }));
}

/** Watches a stream's bytes for the probe; keeps only a short tail. */
function watcher(onProbe) {
  let tail = '';
  let probe = null;
  return {
    arm(p) { probe = p; if (tail.includes(p)) onProbe(); },
    data(chunk) {
      tail = (tail + chunk).slice(-512);
      if (probe && tail.includes(probe)) { probe = null; onProbe(); }
    },
  };
}

/** `count` idle HTTP/1.1 SSE connections (the hub serves plain streams once their head is answered). */
async function openPlain(base, { path, token, count }, onProbe) {
  const { port } = new URL(base);
  const sockets = [];
  const watchers = [];
  const auth = token ? `Authorization: Bearer ${token}\r\n` : '';
  await pool(Array.from({ length: count }, (_, i) => i), 200, () => new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const w = watcher(onProbe);
    let answered = false;
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n${auth}\r\n`));
    s.on('data', (c) => {
      w.data(c);
      if (!answered && c.includes('\r\n\r\n')) {
        answered = true;
        if (c.startsWith('HTTP/1.1 200')) resolve(); else reject(new Error(c.slice(0, 200)));
      }
    });
    s.on('error', (e) => { if (!answered) reject(e); });
    sockets.push(s);
    watchers.push(w);
  }));
  return { watchers, close: () => { for (const s of sockets) s.destroy(); } };
}

/** `count` idle SSE requests over HTTP/2, `perConn` per TLS connection. */
async function openH2(base, pem, { path, token, count, perConn }, onProbe) {
  const conns = Math.ceil(count / perConn);
  const sessions = [];
  const watchers = [];
  await pool(Array.from({ length: conns }, (_, i) => i), 100, async (c) => {
    const session = http2.connect(base, { ca: pem });
    session.on('error', () => {});
    sessions.push(session);
    const streams = Math.min(perConn, count - c * perConn);
    await Promise.all(Array.from({ length: streams }, () => new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) });
      const w = watcher(onProbe);
      req.setEncoding('latin1');
      req.on('response', (h) => (h[':status'] === 200 ? resolve() : reject(new Error(`status ${h[':status']}`))));
      req.on('data', (chunk) => w.data(chunk));
      req.on('error', reject);
      watchers.push(w);
    })));
  });
  return { watchers, close: () => { for (const s of sessions) s.destroy(); } };
}

async function measure(setup, certs) {
  const [kind, per] = setup.split(':');
  const tls = kind.startsWith('h2');
  const mux = kind.endsWith('-mux') ? Number(per) : 1;
  const perConn = kind === 'h2' ? Number(per) : 1;
  const count = Math.ceil(N / mux);
  const path = mux > 1
    ? `/api/mux?streams=${[PATH, ...Array.from({ length: mux - 1 }, (_, k) => `/api/v1/events/bench.${k + 1}`)].join(',')}`
    : PATH;
  const limits = ['--max-streams', String(N + 100), '--max-streams-per-address', String(N + 100),
    '--max-connections-per-user', String(N + 100), '--heartbeat-secs', '30'];
  const server = await startServer({ args: [...limits, ...(tls ? ['--tls-cert', certs.cert, '--tls-key', certs.key] : [])], staticDir: '' });
  const api = tls ? h2Client(server.url, certs.pem) : null;
  const call = async (method, path, body, token) => {
    if (api) return api.request(method, path, { body, token });
    const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const r = await fetch(server.url + path, { method, headers, body: body && JSON.stringify(body) });
    if (!r.ok) throw new Error(`${method} ${path} → ${r.status}`);
    return r.json();
  };
  let open = null;
  try {
    const { token } = await call('POST', '/api/auth/dev-token', { user_id: 'bench', channels: ['test', 'bench.*'] });
    await call('GET', '/api/stats');
    await sleep(500);
    const before = rssKib(server.proc.pid);
    let got = 0;
    let allGot;
    const everyone = new Promise((r) => { allGot = r; });
    const onProbe = () => { if (++got === count) allGot(); };
    const t0 = performance.now();
    const what = { path, token: mux > 1 ? token : null, count, perConn };
    open = tls ? await openH2(server.url, certs.pem, what, onProbe) : await openPlain(server.url, what, onProbe);
    const connectSecs = (performance.now() - t0) / 1000;
    const stats = await call('GET', '/api/stats');
    await sleep(SETTLE_SECS * 1000);
    const after = rssKib(server.proc.pid);
    const probe = `probe-${Date.now()}`;
    for (const w of open.watchers) w.arm(probe);
    const p0 = performance.now();
    await call('POST', PATH, { type: 'probe', object: probe }, token);
    const timeout = sleep(30_000).then(() => 'timeout');
    const outcome = await Promise.race([everyone.then(() => 'all'), timeout]);
    const fanoutMs = performance.now() - p0;
    return {
      setup, streams: count * mux, requests: count, connections: Math.ceil(count / perConn), held: stats.connections.total,
      rssBeforeMiB: before / 1024, rssAfterMiB: after / 1024, kibPerStream: (after - before) / N,
      kibPerConnection: (after - before) / Math.ceil(count / perConn),
      connectSecs, fanoutMs: outcome === 'all' ? fanoutMs : null, delivered: got,
    };
  } finally {
    open?.close();
    await api?.close();
    await server.stop();
  }
}

const certs = selfSigned();
const rows = [];
try {
  for (const setup of SETUPS) {
    if (setup !== 'plain' && !/^(h2|plain-mux|h2-mux):\d+$/.test(setup)) throw new Error(`unknown setup ${setup} (plain | h2:S | plain-mux:S | h2-mux:S)`);
    const load = loadavg()[0].toFixed(1);
    const r = await measure(setup, certs);
    r.load = load;
    rows.push(r);
    console.log(JSON.stringify(r));
    await sleep(2000);
  }
} finally {
  certs.remove();
}
const names = {
  plain: () => 'plain HTTP/1.1 (stream hub), 1 stream per connection',
  h2: (s) => `HTTP/2 over TLS, ${s} stream${s === '1' ? '' : 's'} per connection`,
  'plain-mux': (s) => `plain HTTP/1.1, one /api/mux request of ${s} streams per connection`,
  'h2-mux': (s) => `HTTP/2 over TLS, one /api/mux request of ${s} streams per connection`,
};
console.log(`\n| setup | streams | connections | server RSS before → after, MiB | KiB / stream | KiB / connection | connect all, s | one event to all, ms | delivered | load avg |`);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const [kind, per] = r.setup.split(':');
  const fanout = r.fanoutMs === null ? 'timed out' : r.fanoutMs.toFixed(0);
  console.log(`| ${names[kind](per)} | ${r.streams.toLocaleString('en')} | ${r.connections.toLocaleString('en')} | ${r.rssBeforeMiB.toFixed(1)} → ${r.rssAfterMiB.toFixed(1)} | **${r.kibPerStream.toFixed(2)}** | ${r.kibPerConnection.toFixed(1)} | ${r.connectSecs.toFixed(1)} | ${fanout} | ${r.delivered}/${r.requests} | ${r.load} |`);
}
