// Fault soak: "nothing lost, nobody let in", randomised and reproducible.
//
//   node tests/soak/soak.mjs [--seed N] [--secs S] [--tabs-per-user T] [--node-clients C]
//
// Drives two real tidings-server instances on one real redis-server as their
// bus (behind a loopback TCP proxy this harness controls, which sends each new
// stream connection to the next instance, so every reconnect switches instance), SDK tabs in headless Chromium (two users, several tabs each, so
// tabs share a connection and leaders fail over), and resilient Node SSE
// clients, while a publisher emits numbered events on three streams (a
// channel, team answers, each user's notifications). Faults, chosen by a
// seeded PRNG: SIGKILL of either instance + restart on the same data; Redis SIGKILL +
// restart; proxy cut / stall /
// trickle; the SSE endpoint refusing (503) so clients fall back to polling;
// a leader tab closed and a new tab opened; a tab reloaded. At the end every
// subscriber's sequence is compared with what was published to it: lost,
// duplicated, out-of-order and cross-user counts must all be 0. Prints the
// seed, the fault log, recovery times p50/p99 and a JSON summary line; exits
// 1 on any violation. Loopback only; bounded by --secs plus a 60 s drain.
import { mkdtempSync, writeFileSync, cpSync, rmSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, devToken, repoRoot } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { startProxy } from '../lib/proxy.mjs';
import { SWITCH_PAGE, TAB_PAGE, resilientClient } from './clients.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const seed = Number(args.seed ?? process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const secs = Number(args.secs ?? process.env.SOAK_SECS ?? 45);
const tabsPerUser = Number(args['tabs-per-user'] ?? 2);
const nodeClients = Number(args['node-clients'] ?? 12);

// mulberry32: small, seedable, good enough to pick faults reproducibly.
let prng = seed >>> 0;
const rand = () => { prng = (prng + 0x6d2b79f5) >>> 0; let t = prng; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const log = (msg) => console.log(`[soak +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

console.log(`soak: seed ${seed}, ${secs} s, ${tabsPerUser} tabs per user × 2 users, ${nodeClients} Node clients${'no-redis' in args ? ', no Redis' : ''} (reproduce: --seed ${seed})`);

// A site with the npm package and the tab page.
const site = mkdtempSync(join(tmpdir(), 'tidings-soak-site-'));
cpSync(join(repoRoot, 'pkg'), join(site, 'pkg'), { recursive: true });
writeFileSync(join(site, 'soak.html'), TAB_PAGE);
writeFileSync(join(site, 'switch.html'), SWITCH_PAGE);

const dataDir = mkdtempSync(join(tmpdir(), 'tidings-soak-data-'));
const serverArgs = ['--heartbeat-secs', '1', '--replay-log-size', '5000', '--write-stall-secs', '5'];

// A real redis-server as the server's bus (ids, replay log, fan-out), with an
// append-only file synced on every write, as a deployment that must not lose
// acknowledged events would run it. `--no-redis` (or no redis-server) skips it.
const redisBin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
const useRedis = !('no-redis' in args) && redisBin !== undefined;
let redis = null;
const redisDir = mkdtempSync(join(tmpdir(), 'tidings-soak-redis-'));
// A free port from the OS, not from the seed: two runs of the same seed may overlap.
const redisPort = await new Promise((ok, fail) => {
  const probe = createServer().once('error', fail).listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => ok(port)); });
});
async function startRedis() {
  const proc = spawn(redisBin, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
    '--appendfsync', 'always', '--dir', redisDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`redis-server did not start:\n${out}`)), 10_000);
    proc.stdout.on('data', (c) => { out += c; if (/Ready to accept connections/.test(out)) { clearTimeout(timer); ok(); } });
    proc.on('exit', (code) => { clearTimeout(timer); fail(new Error(`redis-server exited (${code}):\n${out}`)); });
  });
  return proc;
}
if (useRedis) {
  redis = await startRedis();
  serverArgs.push('--redis-url', `redis://127.0.0.1:${redisPort}`);
}
let server = await startServer({ dataDir, staticDir: site, args: serverArgs });
const addr = new URL(server.url).host;
// With Redis, a second instance on the same Redis (its own SQLite file): the proxy sends
// each new stream connection to the next instance, so every reconnect switches instance.
const dataDirB = mkdtempSync(join(tmpdir(), 'tidings-soak-data-b-'));
let serverB = useRedis ? await startServer({ dataDir: dataDirB, staticDir: site, args: serverArgs }) : null;
const addrB = serverB ? new URL(serverB.url).host : null;
const instances = () => [server, serverB].filter(Boolean);
// Whatever way this process ends (a violation, a thrown error, a signal), the servers and
// Redis it started end with it.
function killChildren() {
  for (const s of instances()) { try { s.proc.kill('SIGKILL'); } catch { /* gone */ } }
  try { redis?.kill('SIGKILL'); } catch { /* gone */ }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
process.on('uncaughtException', (e) => { console.error(e); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(e); process.exit(1); });
const proxy = await startProxy(addrB ? [addr, addrB] : addr);
const users = ['soak-a', 'soak-b'];
const tokens = Object.fromEntries(await Promise.all(users.map(async (u) => [u, await devToken(server.url, u, ['project.soak'])])));
const publisher = await devToken(server.url, 'soak-publisher', ['project.soak']);

// Streams go through the proxy (faults apply); pages and REST go to the server directly.
const streamsFor = (user) => [
  { name: 'channel', url: `${proxy.url}/api/v1/events/project.soak`, type: 'message' },
  { name: 'answers', url: `${proxy.url}/api/team-answers/sse/`, type: 'create' },
  { name: 'notes', url: `${proxy.url}/api/notifications/stream`, type: 'new_notification', user },
];
const sdkOptions = (user) => ({
  token: tokens[user],
  backoff: { initialMs: 100, maxMs: 1000, factor: 2, maxAttempts: 4 },
  pollIntervalMs: 500, retrySseEveryMs: 3000, heartbeatTimeoutMs: 3000,
});

// ---- subscribers
const browser = await launchBrowser();
const contexts = Object.fromEntries(await Promise.all(users.map(async (u) => [u, await browser.newContext()])));
const tabs = []; // {user, page, openedAtSeq, closed, final}
let published = { channel: 0, answers: 0, notes: { 'soak-a': 0, 'soak-b': 0 } };

async function openTab(user) {
  const page = await contexts[user].newPage();
  const cfg = { streams: streamsFor(user), options: sdkOptions(user) };
  await page.goto(`${server.url}/soak.html#${encodeURIComponent(JSON.stringify(cfg))}`);
  await page.waitForFunction(() => window.__soak?.ready, null, { timeout: 20_000 });
  const tab = { user, page, kind: 'tab', name: `tab-${user}-${tabs.length}`, openedAt: { channel: published.channel, answers: published.answers, notes: published.notes[user] }, closed: false };
  tabs.push(tab);
  return tab;
}
for (const u of users) for (let i = 0; i < tabsPerUser; i++) await openTab(u);
// One tab whose user changes mid-run (soak-a signs out, soak-b signs in, same tab):
// soak-b must never resume from soak-a's position, never see soak-a's notifications
// and get no reset (judged per phase below).
const switcher = { page: await browser.newPage(), switchedAt: null };
{
  const cfg = { url: streamsFor('soak-a')[2].url, first: sdkOptions('soak-a') };
  await switcher.page.goto(`${server.url}/switch.html#${encodeURIComponent(JSON.stringify(cfg))}`);
  await switcher.page.waitForFunction(() => window.__soak?.ready, null, { timeout: 20_000 });
  switcher.openedAt = published.notes['soak-a'];
}
const nodes = [];
for (let i = 0; i < nodeClients; i++) {
  const c = resilientClient(`node-${i}`, `${proxy.url}/api/v1/events/project.soak`, 'channel', { headers: { authorization: `Bearer ${publisher}` } });
  c.openedAt = { channel: 0 };
  nodes.push(c);
}
await sleep(1500);

// ---- publisher: every 100 ms the next number on each stream, exactly once.
// Every POST carries an Idempotency-Key naming its stream and number. A failed POST
// may still have been stored (Redis or the server killed after the write, before the
// answer), so the number is sent again with the same key until it is answered: the
// server answers a stored one with its first answer and publishes nothing twice.
const runId = `soak-${seed}-${process.pid}-${Date.now()}`;
const retries = { sent: 0, replayed: 0 };
async function post(path, body, token, key) {
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': key }, body: JSON.stringify(body), signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`${path} ${res.status}`);
  return res.headers.get('idempotent-replayed') === 'true';
}
const publishers = [
  { key: 'channel', stream: 'channel', token: publisher, path: '/api/v1/events/project.soak',
    body: (n) => ({ type: 'data', object: { seq: n } }) },
  { key: 'answers', stream: 'answers', token: publisher, path: '/api/team-answers/',
    body: (n) => ({ video_name: 'soak.mp4', frame_index: n, url: 'http://127.0.0.1/f.jpg', qa: 'soak' }) },
  ...users.map((u) => ({ key: u, stream: 'notes', token: tokens[u], path: '/api/notifications/trigger/',
    body: (n) => ({ user_id: u, title: `soak-${n}`, message: 'soak', type: 'info' }) })),
];
const count = (p) => (p.stream === 'notes' ? published.notes[p.key] : published[p.key]);
const advance = (p) => { if (p.stream === 'notes') published.notes[p.key] += 1; else published[p.key] += 1; };
async function publishNext(p) {
  const n = count(p) + 1;
  if (p.uncertain) retries.sent += 1;
  try {
    const replayed = await post(p.path, p.body(n), publisher, `${runId}-${p.key}-${n}`);
    if (replayed) { retries.replayed += 1; log(`${p.key} #${n} had been stored despite the failed POST (replayed)`); }
    p.uncertain = false;
    advance(p);
  } catch (e) { p.uncertain = true; throw e; }
}
let publishing = true;
const publisherDone = (async () => {
  while (publishing) {
    for (const r of await Promise.allSettled(publishers.map(publishNext))) if (r.status === 'rejected' && process.env.SOAK_DEBUG) log(`publish failed (will retry with its key): ${r.reason?.message ?? r.reason}`);
    await sleep(100);
  }
})();

// ---- recovery: time until every live subscriber has what was published when the fault ended.
async function receivedCount(sub, stream) {
  if (sub.kind === 'node') return sub.got[stream]?.length ?? 0;
  if (sub.closed) return Infinity;
  try { return await sub.page.evaluate((s) => (window.__soak?.got[s] ?? []).length, stream); } catch { return 0; }
}
async function caughtUp(target) {
  for (const n of nodes) if ((n.got.channel.at(-1) ?? 0) < target.channel) return false;
  for (const t of tabs.filter((x) => !x.closed)) {
    const got = await t.page.evaluate(() => window.__soak?.got ?? {}).catch(() => ({}));
    if ((got.channel?.at(-1) ?? 0) < target.channel || (got.answers?.at(-1) ?? 0) < target.answers || (got.notes?.at(-1) ?? 0) < target.notes[t.user]) return false;
  }
  const phases = await switcher.page.evaluate(() => window.__soak.phases).catch(() => []);
  const watching = switcher.switchedAt === null ? 'soak-a' : 'soak-b';
  if ((phases.at(-1)?.got.at(-1) ?? 0) < target.notes[watching]) return false;
  return true;
}
const recoveries = [];
async function measureRecovery(fault) {
  await sleep(150); // let the publisher land at least one event after the fault ended
  const target = { channel: published.channel, answers: published.answers, notes: { ...published.notes } };
  const start = Date.now();
  while (Date.now() - start < 30_000) {
    if (await caughtUp(target)) { recoveries.push(Date.now() - start); return; }
    await sleep(100);
  }
  log(`!! not recovered 30 s after ${fault}`);
  recoveries.push(30_000);
}

// ---- faults
const faults = {
  async kill() {
    // Either instance (the first one also takes the publisher's REST calls).
    if (serverB && rand() < 0.5) {
      await serverB.kill('SIGKILL');
      await sleep(300 + rand() * 1500);
      serverB = await startServer({ dataDir: dataDirB, staticDir: site, addr: addrB, args: serverArgs });
      return;
    }
    await server.kill('SIGKILL');
    await sleep(300 + rand() * 1500);
    server = await startServer({ dataDir, staticDir: site, addr, args: serverArgs });
  },
  async cut() { proxy.cut(); },
  async stall() { proxy.setMode('stall'); await sleep(2000 + rand() * 3000); proxy.setMode('pass'); },
  async trickle() { proxy.setMode('trickle'); await sleep(2000 + rand() * 2000); proxy.setMode('pass'); },
  async refuse() {
    const stream = pick(['channel/project.soak', 'team-answers']);
    for (const s of instances()) await fetch(`${s.url}/api/dev/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream, status: 503, count: 40 }) });
    await sleep(4000 + rand() * 2000);
    // Disarm what is left: a drop makes everyone reconnect and use up the remaining failures quickly.
  },
  async leader() {
    const user = pick(users);
    const open = tabs.filter((t) => !t.closed && t.user === user);
    if (open.length > 1) {
      const t = open[0]; // the oldest tab is most likely the leader
      t.final = await t.page.evaluate(() => window.__soak.got).catch(() => null);
      t.closed = true;
      await t.page.close();
    }
    await openTab(user);
  },
  async redis() {
    if (!redis) return;
    redis.kill('SIGKILL');
    await new Promise((r) => redis.on('exit', r));
    await sleep(500 + rand() * 1500);
    redis = await startRedis();
  },
  async reload() {
    const t = pick(tabs.filter((x) => !x.closed));
    await t.page.reload();
    await t.page.waitForFunction(() => window.__soak?.ready, null, { timeout: 20_000 });
  },
};
const faultLog = [];
const kinds = Object.keys(faults).map((k) => [rand(), k]).sort((a, b) => a[0] - b[0]).map(([, k]) => k);
const deadline = t0 + secs * 1000;
// Runs until the deadline and until every kind has run once: a slow recovery must not
// leave a kind out (bounded: each fault and its recovery take at most about 40 s).
while (Date.now() < deadline - 3000 || faultLog.length < kinds.length) {
  await sleep(1000 + rand() * 2000);
  // Every kind once (in a seeded order) before choosing freely, so even a short run covers them all.
  const name = faultLog.length < kinds.length ? kinds[faultLog.length] : pick(kinds);
  log(`fault: ${name} (published so far ${JSON.stringify(published)})`);
  const started = Date.now();
  try { await faults[name](); } catch (e) { log(`fault ${name} raised: ${e.message}`); }
  faultLog.push({ name, at: started - t0, took: Date.now() - started });
  await measureRecovery(name);
  if (switcher.switchedAt === null && Date.now() > t0 + secs * 500) {
    switcher.switchedAt = published.notes['soak-b'];
    log(`user switch: soak-a → soak-b in one tab at soak-b #${switcher.switchedAt}`);
    await switcher.page.evaluate((options) => window.__switch(options), sdkOptions('soak-b'));
  }
}
publishing = false;
await publisherDone;
proxy.setMode('pass');
// A POST that failed as publishing stopped may still have been stored: send it again
// with its key (retrying while the server or Redis comes back), so the count every
// subscriber is judged against is what the server really holds.
for (const p of publishers.filter((x) => x.uncertain)) {
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      await publishNext(p);
      break;
    } catch (e) {
      if (Date.now() > until) throw new Error(`cannot publish ${p.key} #${count(p) + 1}: ${e.message}`);
      await sleep(250);
    }
  }
}
log(`publishing stopped: ${JSON.stringify(published)}`);

// ---- drain: wait (bounded) for everyone to catch up with the final numbers.
const finalTarget = { channel: published.channel, answers: published.answers, notes: { ...published.notes } };
const drainStart = Date.now();
while (Date.now() - drainStart < 60_000 && !(await caughtUp(finalTarget))) await sleep(250);

// ---- verdict
function judge(name, user, stream, got, from, to) {
  const seen = new Set();
  let dup = 0;
  let ooo = 0;
  const dups = [];
  got.forEach((s, i) => { if (seen.has(s)) { dup += 1; dups.push(s); } seen.add(s); if (i > 0 && s < got[i - 1]) ooo += 1; });
  // Expected: everything published after the subscriber opened, up to `to`.
  const first = from + 1;
  const missing = [];
  for (let s = first; s <= to; s++) if (!seen.has(s)) missing.push(s);
  return { name, user, stream, received: got.length, expected: Math.max(0, to - from), lost: missing.length, dup, ooo, missing: missing.slice(0, 10), duplicated: dups.slice(0, 10) };
}
const rows = [];
for (const t of tabs) {
  const got = t.closed ? (t.final ?? {}) : await t.page.evaluate(() => window.__soak.got);
  for (const stream of ['channel', 'answers', 'notes']) {
    const seqs = got[stream] ?? [];
    const to = t.closed ? (seqs.at(-1) ?? t.openedAt[stream]) : stream === 'notes' ? published.notes[t.user] : published[stream];
    // A tab opened mid-run may legitimately start a little before or after its open-time count.
    const from = t.openedAt[stream] === 0 ? 0 : Math.max(0, (seqs[0] ?? 1) - 1);
    rows.push(judge(t.name, t.user, stream, seqs, from, to));
  }
  // Nobody let in: a tab of user A never shows B's notification numbers beyond B's own sequence.
}
for (const n of nodes) rows.push(judge(n.name, 'publisher', 'channel', n.got.channel, 0, published.channel));
// The switching tab: soak-a's phase from its first number to its last, soak-b's from its
// first number (it starts live, with no stored position of its own) to the end. It must
// start within 5 s of publishing (50 numbers) after the switch: a position taken over
// from soak-a would show as a late start, a reset, or losses.
const phases = await switcher.page.evaluate(() => window.__soak.phases);
let switchViolations = 0;
if (switcher.switchedAt === null || phases.length !== 2) switchViolations += 1;
for (const [i, user] of ['soak-a', 'soak-b'].entries()) {
  const seqs = phases[i]?.got ?? [];
  const from = i === 0 ? (switcher.openedAt === 0 ? 0 : Math.max(0, (seqs[0] ?? 1) - 1)) : Math.max(0, (seqs[0] ?? 1) - 1);
  const to = i === 0 ? (seqs.at(-1) ?? from) : published.notes['soak-b'];
  rows.push(judge(`switch-${user}`, user, 'notes', seqs, from, to));
  if ((phases[i]?.users ?? []).some((u) => u !== user)) switchViolations += 1;
}
if (phases[1] && ((phases[1].got[0] ?? Infinity) > switcher.switchedAt + 50)) {
  log(`!! the switched tab started late: first soak-b #${phases[1].got[0]}, switched at #${switcher.switchedAt}`);
  switchViolations += 1;
}
// Cross-user: each user's notification stream only ever carries that user's triggers. The
// numbers alone cannot tell, so ask the server for each user's list and compare counts.
let crossUser = 0;
for (const u of users) {
  const list = await (await fetch(`${server.url}/api/notifications/`, { headers: { authorization: `Bearer ${tokens[u]}` } })).json();
  if (list.notifications.some((n) => n.user_id !== u)) crossUser += 1;
  for (const t of tabs.filter((x) => x.user === u && !x.closed)) {
    const notes = (await t.page.evaluate(() => window.__soak.got.notes ?? [])).length;
    if (notes > published.notes[u]) crossUser += 1;
  }
}
const resets = nodes.reduce((a, n) => a + n.resets, 0) + (await Promise.all(tabs.filter((t) => !t.closed).map((t) => t.page.evaluate(() => window.__soak.resets)))).reduce((a, b) => a + b, 0)
  + (await switcher.page.evaluate(() => window.__soak.resets));
const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : 0; };
const summary = {
  seed, secs, redis: useRedis, instances: instances().length, faults: faultLog.length, fault_kinds: faultLog.reduce((a, f) => ({ ...a, [f.name]: (a[f.name] ?? 0) + 1 }), {}),
  published, publish_retries: retries.sent, publish_retries_replayed: retries.replayed, subscribers: rows.length, lost: sum('lost'), duplicated: sum('dup'), out_of_order: sum('ooo'), cross_user: crossUser, user_switch_violations: switchViolations, resets,
  recovery_ms: { p50: pct(recoveries, 50), p99: pct(recoveries, 99), max: Math.max(0, ...recoveries) },
};
const bad = rows.filter((r) => r.lost || r.dup || r.ooo);
for (const r of bad) console.log(`  VIOLATION ${JSON.stringify(r)}`);
console.log(`soak: seed ${seed}: ${summary.faults} faults ${JSON.stringify(summary.fault_kinds)}; published ${JSON.stringify(published)} (${retries.sent} retries with Idempotency-Key, ${retries.replayed} answered from the first attempt); `
  + `${rows.length} subscriber-streams: lost ${summary.lost}, duplicated ${summary.duplicated}, out of order ${summary.out_of_order}, cross-user ${crossUser}, user-switch violations ${switchViolations}, resets ${resets}; `
  + `recovery p50 ${summary.recovery_ms.p50} ms, p99 ${summary.recovery_ms.p99} ms, max ${summary.recovery_ms.max} ms`);
console.log(`SOAK_SUMMARY ${JSON.stringify(summary)}`);

await Promise.all(nodes.map((n) => n.stop()));
await browser.close();
await proxy.close();
await server.stop();
if (serverB) await serverB.stop();
if (redis) redis.kill('SIGKILL');
rmSync(dataDir, { recursive: true, force: true });
rmSync(dataDirB, { recursive: true, force: true });
rmSync(redisDir, { recursive: true, force: true });
rmSync(site, { recursive: true, force: true });
process.exit(bad.length || crossUser || switchViolations ? 1 : 0);
