import { sseParser } from '../lib/sse.mjs';

// The soak's subscribers: SDK tabs in headless Chromium and resilient Node SSE
// clients. Each records, per stream, the sequence numbers it delivered.

/** Which sequence number an event of a soak stream carries (null: not a soak event). */
export function seqOf(stream, message) {
  if (stream === 'channel') return message?.object?.seq ?? null;
  if (stream === 'answers') return message?.type === 'create' ? message.data.frame_index : null;
  if (stream === 'notes') {
    const m = /^soak-(\d+)$/.exec(message?.title ?? '');
    return m ? Number(m[1]) : null;
  }
  return null;
}

/** The page every soak tab runs: connects the SDK to each stream, records into sessionStorage (survives reloads). */
export const TAB_PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>soak tab</title>
<script type="module">
import init, { connect } from '/pkg/tidings.js';
const seqOf = ${seqOf.toString()};
const cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const got = JSON.parse(sessionStorage.getItem('soak-got') ?? '{}');
const resets = JSON.parse(sessionStorage.getItem('soak-resets') ?? '0');
window.__soak = { got, resets, errors: [], states: {}, opened: performance.now() };
await init();
for (const s of cfg.streams) {
  const m = connect(s.url, cfg.options);
  m.onState((st) => { window.__soak.states[s.name] = st; });
  m.onError((e) => { if (e.kind === 'decode') window.__soak.errors.push(e.message); });
  m.on(s.type, (msg) => {
    const seq = seqOf(s.name, msg);
    if (seq === null) return;
    (got[s.name] ??= []).push(seq);
    sessionStorage.setItem('soak-got', JSON.stringify(got));
  });
  m.on('reset', () => { window.__soak.resets += 1; sessionStorage.setItem('soak-resets', JSON.stringify(window.__soak.resets)); });
}
window.__soak.ready = true;
</script>`;

/**
 * A tab whose user changes mid-run, in the same tab (same sessionStorage): it
 * follows the first user's notifications, then `window.__switch(options)` closes
 * that manager and connects the same URL as the second user. Records per phase
 * the numbers and the `user_id` of every notification, and every `reset`.
 */
export const SWITCH_PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>soak user switch</title>
<script type="module">
import init, { connect } from '/pkg/tidings.js';
const seqOf = ${seqOf.toString()};
const cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
window.__soak = { phases: [], resets: 0 };
await init();
let current = null;
function follow(options) {
  const phase = { got: [], users: [] };
  window.__soak.phases.push(phase);
  const m = connect(cfg.url, options);
  m.on('new_notification', (msg) => {
    const seq = seqOf('notes', msg);
    if (seq === null) return;
    phase.got.push(seq);
    phase.users.push(msg.user_id);
  });
  m.on('reset', () => { window.__soak.resets += 1; });
  return m;
}
current = follow(cfg.first);
window.__switch = (options) => { current.close(); current = follow(options); };
window.__soak.ready = true;
</script>`;

/**
 * A Node SSE client that never gives up: reconnects with Last-Event-ID after
 * any error, and after `watchdogMs` without bytes (a stalled connection).
 */
export function resilientClient(name, url, stream, { headers = {}, watchdogMs = 3000 } = {}) {
  const state = { name, kind: 'node', got: { [stream]: [] }, resets: 0, lastId: null, stopped: false, connects: 0 };
  const run = async () => {
    while (!state.stopped) {
      const controller = new AbortController();
      let watchdog;
      const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => controller.abort(), watchdogMs); };
      try {
        kick();
        const h = { accept: 'text/event-stream', ...headers };
        if (state.lastId !== null) h['last-event-id'] = state.lastId;
        const res = await fetch(url, { headers: h, signal: controller.signal });
        if (res.status !== 200 || !res.body) throw new Error(`status ${res.status}`);
        state.connects += 1;
        const decoder = new TextDecoder();
        const feed = sseParser((ev) => {
          if (ev.id !== null) state.lastId = ev.id;
          if (ev.event === 'reset') state.resets += 1;
          else if (ev.data !== null && ev.event === 'message') {
            const seq = seqOf(stream, JSON.parse(ev.data));
            if (seq !== null) state.got[stream].push(seq);
          }
        });
        for await (const chunk of res.body) {
          kick();
          feed(decoder.decode(chunk, { stream: true }));
        }
      } catch { /* cut, refused, stalled: reconnect */ }
      clearTimeout(watchdog);
      if (!state.stopped) await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
    }
  };
  state.done = run();
  state.stop = async () => { state.stopped = true; };
  return state;
}
