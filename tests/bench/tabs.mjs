// Multi-tab sharing benchmark: real headless Chromium, real server.
//
//   cd tests && node bench/tabs.mjs            (after scripts/build-pkg.sh + scripts/build-site.sh
//                                               and a server build; TIDINGS_SERVER_BIN / TIDINGS_SITE_DIR
//                                               as for the e2e tests)
//   env: FAILOVERS (default 15), EVENTS (default 500), TABS (default 4)
//
// Prints two numbers (p50/p99/max, ms):
// - failover: from closing the leader tab (page.close() called) to the first
//   event delivered by the new leader, while a publisher posts an event every
//   10 ms (so up to ~10 ms of each figure is waiting for the next event);
// - follower extra latency: for each of EVENTS events (one every 10 ms), the
//   time a follower delivered it minus the time the leader delivered it
//   (BroadcastChannel hop + JSON relay + the follower's decode), over every
//   follower. Times are performance.timeOrigin + performance.now() in each
//   page (one machine, one clock; the pages' time origins agree to well under
//   a millisecond, so a sub-ms figure can come out slightly negative).
import { startServer, api, devToken, waitFor } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

const FAILOVERS = Number(process.env.FAILOVERS ?? 15);
const EVENTS = Number(process.env.EVENTS ?? 500);
const TABS = Number(process.env.TABS ?? 4);
const CHANNEL = '/api/v1/events/test';

const server = await startServer();
const browser = await launchBrowser();
const token = await devToken(server.url, 'bench', ['test']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const publish = async (n) => String((await api(server.url, 'POST', CHANNEL, { body: { type: 'tick', object: { n } }, token })).id);

function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const fmt = (v) => v.toFixed(2);
const summary = (name, v) => `${name}: n=${v.length} p50=${fmt(pct(v, 50))} ms p99=${fmt(pct(v, 99))} ms max=${fmt(Math.max(...v))} ms`;

async function openTab(context) {
  const page = await context.newPage();
  await page.goto(`${server.url}/pkg/package.json`);
  await page.evaluate(async (url) => {
    const mod = await import('/pkg/tidings.js');
    await mod.default();
    window.got = [];
    const m = mod.connect(url);
    window.m = m;
    m.on('tick', (_msg, info) => window.got.push({ id: info.id, at: performance.timeOrigin + performance.now(), leader: m.tabRole === 'leader' }));
  }, CHANNEL);
  return page;
}
const role = (p) => p.evaluate(() => window.m.tabRole);
const allOpen = async (pages) => (await Promise.all(pages.map((p) => p.evaluate(() => window.m.state)))).every((s) => s === 'open');

try {
  const context = await browser.newContext();
  await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));
  const pages = [];
  for (let i = 0; i < TABS; i++) pages.push(await openTab(context));
  await waitFor(() => allOpen(pages), { what: 'tabs open' });

  // Follower extra latency.
  for (let n = 0; n < EVENTS; n++) {
    await publish(n);
    await sleep(10);
  }
  await waitFor(async () => (await Promise.all(pages.map((p) => p.evaluate(() => window.got.length)))).every((l) => l >= EVENTS), { what: 'all delivered', timeoutMs: 20_000 });
  const got = await Promise.all(pages.map((p) => p.evaluate(() => window.got)));
  const roles = await Promise.all(pages.map(role));
  const li = roles.indexOf('leader');
  const leaderAt = new Map(got[li].map((g) => [g.id, g.at]));
  const extra = [];
  got.forEach((g, i) => {
    if (i === li) return;
    for (const e of g) if (leaderAt.has(e.id)) extra.push(e.at - leaderAt.get(e.id));
  });

  // Failover.
  let running = true;
  const publisher = (async () => {
    let n = 0;
    while (running) {
      await publish(n++);
      await sleep(10);
    }
  })();
  const failover = [];
  for (let k = 0; k < FAILOVERS; k++) {
    const rs = await Promise.all(pages.map(role));
    const i = rs.indexOf('leader');
    const leader = pages.splice(i, 1)[0];
    const closedAt = Date.now();
    await leader.close();
    const first = await waitFor(async () => {
      const ats = await Promise.all(pages.map((p) => p.evaluate((t) => window.got.find((g) => g.leader && g.at > t)?.at, closedAt)));
      const hits = ats.filter((a) => a !== undefined);
      return hits.length ? Math.min(...hits) : null;
    }, { what: 'new leader delivers', timeoutMs: 15_000, intervalMs: 20 });
    failover.push(first - closedAt);
    pages.push(await openTab(context));
    await waitFor(() => allOpen(pages), { what: 'tabs open' });
    await sleep(200);
  }
  running = false;
  await publisher;

  console.log(`tabs=${TABS} (1 leader + ${TABS - 1} followers), Chromium headless, tidings-server debug build, 127.0.0.1`);
  console.log(summary('failover (leader closed -> first event from the new leader)', failover));
  console.log(summary('follower extra latency over the leader', extra));
} finally {
  await browser.close();
  await server.stop();
}
