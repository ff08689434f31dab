// The Tidings live demo: one panel per seed system, all driven by the SDK.
// Served by `tidings-server --dev --static-dir …` with the npm package at /pkg/.
import { connect } from './pkg/index.js';

const $ = (sel) => document.querySelector(sel);

/** Calls the REST API; throws with the server's JSON error message on failure. */
async function api(method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json?.error ?? text}`);
  return json;
}

/** Shows a manager's connection state on a badge. */
function showState(el, manager) {
  return manager.onState((state) => { el.textContent = state; el.dataset.state = state; });
}

function showError(err) {
  const li = document.createElement('li');
  li.textContent = typeof err === 'string' ? err : `${err.kind ?? 'error'}: ${err.message}${err.raw ? ` (raw: ${err.raw.slice(0, 80)})` : ''}`;
  $('#errors').prepend(li);
}

function item(text, buttons = []) {
  const li = document.createElement('li');
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span, ...buttons);
  return li;
}

/** Milliseconds over which the events-per-second figure is averaged. */
const RATE_WINDOW_MS = 5000;
/** Events the channel's auto-publish sends before it stops by itself (a minute at 5/s). */
const AUTO_PUBLISH_MAX = 300;
/** Lines kept in a panel's event log. */
const LOG_LINES = 100;

function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/**
 * The live strip of a panel: this tab's role (`m.tabRole`), events per second,
 * the last id, a "cut connection" button (the server's `--dev` fault hook
 * `POST /api/dev/drop` closes every connection of `streamKey`), and a log of
 * events with their ids and of state changes, so a cut shows as
 * `reconnecting` → `open, resumed after #id`. Returns a function that removes it.
 */
function liveView(prefix, manager, streamKey) {
  const root = $(`#${prefix}-live`);
  const role = el('span', { id: `${prefix}-role`, className: 'badge role', title: 'this tab\'s role for the stream' });
  const rate = el('b', { id: `${prefix}-rate`, textContent: '0.0' });
  const last = el('b', { id: `${prefix}-last`, textContent: '–' });
  const cut = el('button', { id: `${prefix}-cut`, type: 'button', className: 'secondary cut', textContent: 'Cut connection', title: `POST /api/dev/drop {"stream": "${streamKey}"}` });
  const log = el('ol', { id: `${prefix}-events`, className: 'events' });
  root.replaceChildren(el('div', { className: 'live-bar' }, [role, el('span', {}, [rate, ' ev/s']), el('span', {}, ['last id ', last]), cut]), log);

  const line = (text, attrs = {}) => {
    const li = el('li', { textContent: `${new Date().toLocaleTimeString()} ${text}` });
    Object.assign(li.dataset, attrs);
    log.prepend(li);
    while (log.childElementCount > LOG_LINES) log.lastElementChild.remove();
  };
  const arrivals = [];
  let lastId = null;
  let wasOpen = false;
  const offs = [
    manager.on('*', (_msg, info) => {
      if (info.id == null) return; // greetings and heartbeats belong to one connection, not to the stream
      lastId = info.id;
      last.textContent = `#${info.id}`;
      arrivals.push(performance.now());
      line(`#${info.id} ${info.type}`, { id: info.id, type: info.type });
    }),
    manager.onState((state) => {
      if (state === 'open' && wasOpen === false && lastId !== null) line(`open, resumed after #${lastId}`, { state });
      else if (state !== 'connecting' || lastId !== null) line(state, { state });
      wasOpen = state === 'open';
    }),
  ];
  const onCut = () => api('POST', '/api/dev/drop', { stream: streamKey })
    .then((r) => line(`cut: the server dropped ${r.dropped} connection(s)`, { cut: '1' }), showError);
  cut.addEventListener('click', onCut);
  const tick = () => {
    const now = performance.now();
    while (arrivals.length && arrivals[0] < now - RATE_WINDOW_MS) arrivals.shift();
    rate.textContent = (arrivals.length / (RATE_WINDOW_MS / 1000)).toFixed(1);
    const r = manager.tabRole;
    if (role.dataset.role !== r) { role.dataset.role = r; role.textContent = r; }
  };
  tick();
  const timer = setInterval(tick, 500);
  return () => {
    clearInterval(timer);
    cut.removeEventListener('click', onCut);
    offs.forEach((off) => off());
  };
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary';
  b.textContent = label;
  b.addEventListener('click', () => onClick().catch(showError));
  return b;
}

// ---- Team answers (seed 000): unnamed events with {type: create|delete, data}.
function teamAnswers() {
  const url = '/api/team-answers/sse/';
  const answers = new Map();
  const render = () => {
    const list = $('#ta-list');
    list.replaceChildren(...[...answers.values()].sort((a, b) => b.id - a.id).map((a) =>
      item(`#${a.id} ${a.qa ?? ''} (${a.video_name})`,
        [button('delete', () => api('DELETE', `/api/team-answers/${a.id}/`))])));
    list.dataset.count = String(answers.size);
  };
  const refetch = async () => {
    answers.clear();
    for (const a of await api('GET', '/api/team-answers/')) answers.set(a.id, a);
    render();
  };
  const m = connect(url);
  showState($('#ta-state'), m);
  liveView('ta', m, 'team-answers');
  m.onError(showError);
  m.on('create', (msg) => { answers.set(msg.data.id, msg.data); render(); });
  m.on('delete', (msg) => { for (const id of msg.data) answers.delete(id); render(); });
  m.on('reset', () => refetch().catch(showError));
  $('#ta-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const qa = $('#ta-qa').value.trim();
    api('POST', '/api/team-answers/', {
      video_name: $('#ta-video').value.trim() || 'video.mp4', frame_index: Math.floor(Math.random() * 1000),
      url: 'http://127.0.0.1/frame.jpg', qa, query_index: 1, round: 'prelims',
    }).then(() => { $('#ta-qa').value = ''; }, showError);
  });
  $('#ta-clear').addEventListener('click', () => api('DELETE', '/api/team-answers/delete-all/').catch(showError));
  return refetch();
}

// ---- Notifications (seeds 001/004): named events, per-user stream, token required.
function notifications(token) {
  const url = '/api/notifications/stream';
  const items = new Map();
  const setUnread = (count) => { const el = $('#nt-unread'); el.textContent = String(count); el.dataset.count = String(count); };
  const render = () => {
    $('#nt-list').replaceChildren(...[...items.values()].sort((a, b) => b.id - a.id).map((n) => {
      const li = item(`[${n.type}] ${n.title}: ${n.message}`, [
        ...(n.read ? [] : [button('read', () => api('POST', `/api/notifications/${n.id}/read/`, undefined, token).then(() => { n.read = true; render(); }))]),
        button('×', () => api('DELETE', `/api/notifications/${n.id}/`, undefined, token)),
      ]);
      if (!n.read) li.classList.add('unread');
      return li;
    }));
  };
  const refetch = async () => {
    const { notifications: list, unread_count: unread } = await api('GET', '/api/notifications/', undefined, token);
    items.clear();
    for (const n of list) items.set(n.id, n);
    setUnread(unread);
    render();
  };
  const m = connect(url, { token });
  showState($('#nt-state'), m);
  liveView('nt', m, `notifications/${currentUser}`);
  m.onError(showError);
  m.on('unread_count', (msg) => setUnread(msg.count));
  m.on('new_notification', (n) => { items.set(n.id, n); render(); });
  m.on('notification_deleted', (msg) => { items.delete(msg.id); render(); });
  m.on('reset', () => refetch().catch(showError));
  $('#nt-form').addEventListener('submit', (e) => {
    e.preventDefault();
    api('POST', '/api/notifications/trigger/', {
      user_id: currentUser, title: $('#nt-title').value, message: `sent at ${new Date().toLocaleTimeString()}`, type: $('#nt-type').value,
    }, token).catch(showError);
  });
  $('#nt-read-all').addEventListener('click', () =>
    api('POST', '/api/notifications/read-all/', undefined, token).then(refetch).catch(showError));
  return refetch();
}

// ---- Video progress (seed 002): a finite stream per job; ends after completion.
function video() {
  let offs = [];
  const setProgress = (percent, step) => {
    $('#vp-bar').style.width = `${percent}%`;
    $('#vp-percent').textContent = String(percent);
    $('#vp-step').textContent = step;
  };
  $('#vp-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    offs.forEach((off) => off());
    setProgress(0, 'queued');
    $('#vp-result').textContent = '';
    try {
      const job = await api('POST', '/api/chat/create-video', { prompt: $('#vp-prompt').value });
      const m = connect(job.progress_url);
      offs = [
        showState($('#vp-state'), m),
        liveView('vp', m, `video/${job.job_id}`),
        m.onError(showError),
        m.on('progress', (p) => setProgress(p.percent, `${p.step_index}/${p.total_steps} ${p.message}`)),
        m.on('completed', (c) => { setProgress(100, c.message); $('#vp-result').textContent = `Video: ${c.video_url}`; }),
        m.on('error', (err) => { $('#vp-result').textContent = `Failed: ${err.message}`; }),
        m.on('timeout', (t) => { $('#vp-result').textContent = `Timed out: ${t.message}`; }),
      ];
    } catch (err) { showError(err); }
  });
}

// ---- Project channel (seed 003): WSMessage {type, object}; publishing needs the channel in the token.
function channel(token) {
  const name = 'project.1';
  const url = `/api/v1/events/${name}`;
  const log = (text) => {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    $('#ch-log').prepend(li);
  };
  const m = connect(url, { token });
  showState($('#ch-state'), m);
  liveView('ch', m, `channel/${name}`);
  m.onError(showError);
  m.on('message', (msg, info) => log(`#${info.id} ${msg.type}: ${JSON.stringify(msg.object)}`));
  m.on('reset', () => log('reset: the server no longer had our position; state should be refetched'));
  const publish = () => api('POST', url, { type: $('#ch-type').value, object: { name: $('#ch-text').value } }, token);
  $('#ch-form').addEventListener('submit', (e) => {
    e.preventDefault();
    publish().catch(showError);
  });
  // A steady flow to watch a cut connection recover: 5 events per second, for a minute at most.
  let auto = null;
  const stopAuto = () => { clearInterval(auto); auto = null; $('#ch-auto').checked = false; };
  $('#ch-auto').addEventListener('change', (e) => {
    if (!e.target.checked) { stopAuto(); return; }
    let left = AUTO_PUBLISH_MAX;
    auto = setInterval(() => {
      if (left-- <= 0) { stopAuto(); return; }
      publish().catch((err) => { stopAuto(); showError(err); });
    }, 200);
  });
}

/**
 * One token per user for every tab, as a real app keeps its session: tabs
 * share a connection only when their credentials are equal. Kept in
 * localStorage until a minute before it expires, then a new one is minted.
 */
async function sessionToken(user) {
  const key = `tidings-demo-token:${user}`;
  try {
    const saved = JSON.parse(localStorage.getItem(key) ?? 'null');
    if (saved && saved.expires_at * 1000 > Date.now() + 60_000) return saved.token;
  } catch { /* unreadable: mint a new one */ }
  const fresh = await api('POST', '/api/auth/dev-token', { user_id: user, channels: ['project.*', 'file.*'] });
  localStorage.setItem(key, JSON.stringify({ token: fresh.token, expires_at: fresh.expires_at }));
  return fresh.token;
}

const params = new URLSearchParams(location.search);
const currentUser = params.get('user') ?? 'alice';

async function main() {
  $('#user').textContent = currentUser;
  $('#switch-user').href = `?user=${currentUser === 'alice' ? 'bob' : 'alice'}`;
  const token = await sessionToken(currentUser);
  await Promise.all([teamAnswers(), notifications(token)]);
  video();
  channel(token);
  $('#boot').textContent = 'SDK ready';
  $('#boot').dataset.state = 'ready';
}

main().catch((err) => {
  $('#boot').textContent = `failed to start: ${err.message}`;
  $('#boot').dataset.state = 'error';
  showError(err);
});
