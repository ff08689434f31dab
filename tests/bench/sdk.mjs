// SDK benchmark: the npm package (pkg/) in headless Chromium against a real
// tidings-server on loopback. Prints numbers; never passes or fails on them.
//
//   bash scripts/bench-sdk.sh          (builds pkg/ and the server, prints the sizes, runs this)
//   cd tests && node bench/sdk.mjs     (after scripts/build-pkg.sh and a server build)
//   env: EVENTS (default 3000), RUNS (3), RATE (200 events/s), LATENCY_SECS (10), FEED (20000),
//        TIDINGS_BENCH_ROOT (a directory whose pkg/ is benchmarked; default the repository)
//
// Every figure is printed next to what an app would write instead, measured in
// the same run and the same browser:
// 1. end to end: EVENTS events published to a fresh channel, then replayed from
//    id 0 into a typed Tidings listener (`decoder: 'channel'`, every other
//    option at its default, so tab sharing and the stored position are on) and
//    into a plain `EventSource` + `JSON.parse` + `switch` in the same page;
//    events/s from connect to the last event, alternating, best of RUNS each;
//    also apart: connect -> first event (startup: tab election, the request,
//    the hello) and events/s from the first event to the last (throughput).
//    The same with `persistLastEventId: false` and `shareAcrossTabs: false`
//    tells where the time goes.
// 2. a follower tab: a leader tab and a follower tab on one stream get a burst
//    of EVENTS events (the stream is stalled with the server's dev hook while
//    they are published, then released): events/s in each tab.
// 3. decode + dispatch with no server: FEED events from an in-page stream (the
//    `fetch` option hands the SDK a Response the page generates) into a typed
//    listener, vs `JSON.parse` + `switch` over the same data strings.
// 4. latency: RATE events/s for LATENCY_SECS with a timestamp in the payload,
//    publish (node) → listener, p50/p99/max: the Tidings leader tab and a plain
//    EventSource + JSON.parse in the same page, and a follower tab (its latency,
//    and its extra latency over the leader for the same event). Node's and the
//    pages' clocks are performance.timeOrigin + performance.now() on one machine.
import { startServer, api, devToken, waitFor, repoRoot } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

const N = Number(process.env.EVENTS ?? 3000);
const RUNS = Number(process.env.RUNS ?? 3);
const RATE = Number(process.env.RATE ?? 200);
const SECS = Number(process.env.LATENCY_SECS ?? 10);
const FEED = Number(process.env.FEED ?? 20000);

const fmt = (v, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : String(v));
function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const lat = (v) => `p50 ${fmt(pct(v, 50), 2)} / p99 ${fmt(pct(v, 99), 2)} / max ${fmt(Math.max(...v), 2)} ms (n=${v.length})`;
const best = (v) => Math.max(...v);
const clock = () => performance.timeOrigin + performance.now();

const server = await startServer({
  staticDir: process.env.TIDINGS_BENCH_ROOT ?? repoRoot, // serves <root>/pkg/ at /pkg/
  args: ['--replay-log-size', String(Math.max(20000, 2 * N)), '--subscriber-queue', String(Math.max(8192, 2 * N))],
});
const browser = await launchBrowser();
let failed = false;
try {
  const token = await devToken(server.url, 'bench', ['bench.*']);
  const fresh = () => `bench.${Math.floor(Math.random() * 1e9)}`;
  const publish = (channel, body) => api(server.url, 'POST', `/api/v1/events/${channel}`, { body, token });
  const task = (i) => ({ type: 'task', object: { id: i, status: 'running', progress: i % 100, name: `task number ${i}`, tags: ['a', 'b'] } });
  async function publishMany(channel, n) {
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < n) await publish(channel, task(next++));
    }));
  }

  const context = await browser.newContext();
  await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));
  async function openPage() {
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`pageerror: ${e.message}`));
    await page.goto(`${server.url}/pkg/package.json`);
    await page.evaluate(async () => {
      window.tidings = await import('/pkg/index.js');
      await window.tidings.default(); // load the wasm before anything is timed
    });
    return page;
  }
  const page = await openPage();

  // 1. End to end.
  const channel = fresh();
  const url = `${server.url}/api/v1/events/${channel}`;
  let t = clock();
  await publishMany(channel, N);
  console.log(`bench: published ${N} events in ${fmt(clock() - t)} ms`);
  const plainRun = (run) => page.evaluate(({ url, token, n, run }) => new Promise((resolve) => {
    let c = 0;
    let first = 0;
    const t0 = performance.now();
    const es = new EventSource(`${url}?lastEventId=0&run=plain${run}&token=${token}`);
    es.onmessage = (e) => {
      const v = JSON.parse(e.data);
      switch (v.type) {
        case 'task':
          if (v.object && ++c === 1) first = performance.now();
          if (v.object && c === n) {
            es.close();
            const t = performance.now();
            resolve({ rate: n / ((t - t0) / 1000), first: first - t0, steady: (n - 1) / ((t - first) / 1000) });
          }
          break;
        default:
      }
    };
    setTimeout(() => { es.close(); resolve({ rate: 0, first: 0, steady: 0 }); }, 60_000);
  }), { url, token, n: N, run });
  const sdkRun = (run, options) => page.evaluate(({ url, token, n, run, options }) => new Promise((resolve) => {
    let c = 0;
    let first = 0;
    const t0 = performance.now();
    const m = window.tidings.connect(`${url}?lastEventId=0&run=${run}`, { token, decoder: 'channel', ...options });
    m.on('task', (msg) => {
      if (msg.object && ++c === 1) first = performance.now();
      if (msg.object && c === n) {
        m.close();
        const t = performance.now();
        resolve({ rate: n / ((t - t0) / 1000), first: first - t0, steady: (n - 1) / ((t - first) / 1000) });
      }
    });
    setTimeout(() => { m.close(); resolve({ rate: 0, first: 0, steady: 0 }); }, 60_000);
  }), { url, token, n: N, run, options });
  const variants = [
    ['defaults', {}],
    ['persistLastEventId: false', { persistLastEventId: false }],
    ['shareAcrossTabs: false', { shareAcrossTabs: false }],
    ['both off', { persistLastEventId: false, shareAcrossTabs: false }],
  ];
  const plain = [];
  const sdk = new Map(variants.map(([name]) => [name, []]));
  for (let r = 0; r < RUNS; r++) {
    plain.push(await plainRun(r));
    for (const [name, options] of variants) sdk.get(name).push(await sdkRun(`${name.replace(/\W/g, '')}${r}`, options));
  }
  const rates = (v, k) => v.map((x) => x[k]);
  const p = best(rates(plain, 'rate'));
  const ps = best(rates(plain, 'steady'));
  const pf = Math.min(...rates(plain, 'first'));
  for (const [name] of variants) {
    const runs = sdk.get(name);
    const s = best(rates(runs, 'rate'));
    console.log(`bench: end to end, replay of ${N} events: tidings typed listener (${name}) ${fmt(s)} ev/s vs EventSource + JSON.parse ${fmt(p)} ev/s: ratio ${fmt(s / p, 2)} (runs ${rates(runs, 'rate').map((x) => fmt(x)).join(', ')}; plain ${rates(plain, 'rate').map((x) => fmt(x)).join(', ')})`);
    const ss = best(rates(runs, 'steady'));
    const sf = Math.min(...rates(runs, 'first'));
    console.log(`bench:   connect -> first event ${fmt(sf, 1)} ms vs ${fmt(pf, 1)} ms (best; runs ${rates(runs, 'first').map((x) => fmt(x, 1)).join(', ')}; plain ${rates(plain, 'first').map((x) => fmt(x, 1)).join(', ')}); first -> last event ${fmt(ss)} vs ${fmt(ps)} ev/s: ratio ${fmt(ss / ps, 2)}`);
  }

  // 2. A follower tab: a burst released by the stall hook.
  {
    const ch = fresh();
    const u = `${server.url}/api/v1/events/${ch}`;
    const follower = await openPage();
    const listen = (pg) => pg.evaluate(({ u, token }) => {
      window.burst = [];
      window.m = window.tidings.connect(u, { token, decoder: 'channel' });
      window.m.on('task', () => window.burst.push(performance.now()));
    }, { u, token });
    await listen(page);
    await waitFor(() => page.evaluate(() => window.m.state === 'open' && window.m.tabRole === 'leader'), { what: 'leader open' });
    await listen(follower);
    await waitFor(() => follower.evaluate(() => window.m.state === 'open' && window.m.tabRole === 'follower'), { what: 'follower open' });
    await api(server.url, 'POST', '/api/dev/stall', { body: { stream: `channel/${ch}`, secs: 120 } });
    await publishMany(ch, N);
    await api(server.url, 'POST', '/api/dev/stall', { body: { stream: `channel/${ch}`, secs: 0 } });
    const rate = async (pg) => {
      await waitFor(() => pg.evaluate((n) => window.burst.length >= n, N), { what: 'burst delivered', timeoutMs: 60_000 });
      return pg.evaluate(() => (window.burst.length - 1) / ((window.burst.at(-1) - window.burst[0]) / 1000));
    };
    const [lr, fr] = [await rate(page), await rate(follower)];
    console.log(`bench: a burst of ${N} events (defaults): leader tab ${fmt(lr)} ev/s, follower tab ${fmt(fr)} ev/s (first to last event in each tab)`);
    await page.evaluate(() => window.m.close());
    await follower.evaluate(() => window.m.close());
    await follower.close();
  }

  // 3. Decode + dispatch, in-page feed.
  {
    const [s, j] = await page.evaluate(async ({ n, runs }) => {
      const data = Array.from({ length: n }, (_, i) => JSON.stringify({ type: 'task', object: { id: i, status: 'running', progress: i % 100, name: `task number ${i}`, tags: ['a', 'b'] } }));
      const text = new TextEncoder().encode(data.map((d, i) => `id: ${i + 1}\ndata: ${d}\n\n`).join(''));
      const feed = () => new Response(new ReadableStream({
        start(c) {
          for (let o = 0; o < text.length; o += 65536) c.enqueue(text.subarray(o, o + 65536));
          c.close();
        },
      }), { headers: { 'content-type': 'text/event-stream' } });
      const sdk = [];
      const plain = [];
      for (let r = 0; r < runs; r++) {
        sdk.push(await new Promise((resolve) => {
          let c = 0;
          const t0 = performance.now();
          const m = window.tidings.connect(`${location.origin}/feed/${r}`, { fetch: async () => feed(), finite: true, decoder: 'channel', persistLastEventId: false });
          m.on('task', (msg) => {
            if (msg.object && ++c === n) { const dt = performance.now() - t0; m.close(); resolve(n / (dt / 1000)); }
          });
        }));
        let c = 0;
        const t0 = performance.now();
        for (const d of data) {
          const v = JSON.parse(d);
          switch (v.type) {
            case 'task': if (v.object) c++; break;
            default:
          }
        }
        plain.push(c / ((performance.now() - t0) / 1000));
      }
      return [Math.max(...sdk), Math.max(...plain)];
    }, { n: FEED, runs: RUNS });
    console.log(`bench: decode + dispatch, ${FEED} events from an in-page stream: tidings typed listener ${fmt(s)} ev/s (${fmt(1e6 / s, 2)} µs/ev, SSE parsing included) vs JSON.parse + switch ${fmt(j)} ev/s (${fmt(1e6 / j, 2)} µs/ev): ratio ${fmt(s / j, 2)}`);
  }

  // 4. Latency at RATE events/s.
  {
    const ch = fresh();
    const u = `${server.url}/api/v1/events/${ch}`;
    const follower = await openPage();
    await page.evaluate(({ u, token }) => {
      const now = () => performance.timeOrigin + performance.now();
      window.lat = { sdk: new Map(), plain: new Map() };
      window.m = window.tidings.connect(u, { token, decoder: 'channel' });
      window.m.on('tick', (msg) => window.lat.sdk.set(msg.object.n, now() - msg.object.t));
      window.es = new EventSource(`${u}?token=${token}`);
      window.es.onmessage = (e) => {
        const v = JSON.parse(e.data);
        if (v.type === 'tick') window.lat.plain.set(v.object.n, now() - v.object.t);
      };
    }, { u, token });
    await waitFor(() => page.evaluate(() => window.m.state === 'open' && window.m.tabRole === 'leader' && window.es.readyState === 1), { what: 'leader open' });
    await follower.evaluate(({ u, token }) => {
      const now = () => performance.timeOrigin + performance.now();
      window.lat = { sdk: new Map() };
      window.m = window.tidings.connect(u, { token, decoder: 'channel' });
      window.m.on('tick', (msg) => window.lat.sdk.set(msg.object.n, now() - msg.object.t));
    }, { u, token });
    await waitFor(() => follower.evaluate(() => window.m.state === 'open' && window.m.tabRole === 'follower'), { what: 'follower open' });
    const total = Math.round(RATE * SECS);
    const t0 = clock();
    const pending = [];
    for (let n = 0; n < total; n++) {
      const at = t0 + (n * 1000) / RATE;
      const wait = at - clock();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(publish(ch, { type: 'tick', object: { n, t: clock() } }));
      if (pending.length >= 64) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const get = (pg, which) => pg.evaluate((w) => [...window.lat[w].entries()], which);
    await waitFor(async () => (await get(follower, 'sdk')).length >= total && (await get(page, 'sdk')).length >= total && (await get(page, 'plain')).length >= total, { what: 'latency events', timeoutMs: 30_000 });
    const leader = new Map(await get(page, 'sdk'));
    const plain = new Map(await get(page, 'plain'));
    const foll = new Map(await get(follower, 'sdk'));
    const extra = [...foll.entries()].filter(([n]) => leader.has(n)).map(([n, v]) => v - leader.get(n));
    console.log(`bench: latency at ${RATE} events/s for ${SECS} s, publish -> listener: tidings leader tab ${lat([...leader.values()])}; EventSource + JSON.parse in the same page ${lat([...plain.values()])}`);
    console.log(`bench: latency, follower tab: ${lat([...foll.values()])}; extra over the leader for the same event ${lat(extra)}`);
    await page.evaluate(() => { window.m.close(); window.es.close(); });
    await follower.evaluate(() => window.m.close());
  }
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close().catch(() => {});
  await server.stop();
}
process.exit(failed ? 1 : 0);
