import { useCallback, useEffect, useState } from 'react';
import { useTidings, useTidingsState, useTidingsStatus } from 'tidings/react';

async function api(method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

const user = new URLSearchParams(location.search).get('user') ?? 'alice';

export function App() {
  const [token, setToken] = useState(null);
  useEffect(() => {
    api('POST', '/api/auth/dev-token', { user_id: user }).then((r) => setToken(r.token));
  }, []);
  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 720, margin: '2rem auto' }}>
      <h1>Tidings + React</h1>
      <TeamAnswers />
      {token && <Notifications token={token} />}
    </main>
  );
}

const teamAnswers = { decoder: 'team-answers' };

function TeamAnswers() {
  const url = '/api/team-answers/sse/';
  const { state, error } = useTidingsStatus(url, teamAnswers);
  const [answers, setAnswers] = useState([]);
  const [text, setText] = useState('');
  const refetch = useCallback(() => api('GET', '/api/team-answers/').then(setAnswers), []);
  useEffect(() => { refetch(); }, [refetch]);
  useTidings(url, 'create', (msg) =>
    setAnswers((prev) => (prev.some((a) => a.id === msg.data.id) ? prev : [msg.data, ...prev])), teamAnswers);
  useTidings(url, 'delete', (msg) => {
    const gone = new Set(msg.data);
    setAnswers((prev) => prev.filter((a) => !gone.has(a.id)));
  }, teamAnswers);
  useTidings(url, 'reset', refetch, teamAnswers);
  const add = (e) => {
    e.preventDefault();
    api('POST', '/api/team-answers/', { video_name: 'video.mp4', frame_index: 1, url: 'http://127.0.0.1/f.jpg', qa: text })
      .then(() => setText(''));
  };
  return (
    <section>
      <h2>Team answers <small data-testid="ta-state">{state}</small></h2>
      {error && <p role="alert" data-testid="ta-error">{error.kind}: {error.message}</p>}
      <form onSubmit={add}>
        <input data-testid="ta-input" value={text} onChange={(e) => setText(e.target.value)} placeholder="Answer" required />
        <button data-testid="ta-add">Add</button>
      </form>
      <ul data-testid="ta-list">{answers.map((a) => <li key={a.id}>{a.qa}</li>)}</ul>
    </section>
  );
}

function Notifications({ token }) {
  const url = '/api/notifications/stream';
  const options = { token };
  const state = useTidingsState(url, options);
  const [unread, setUnread] = useState(0);
  const [items, setItems] = useState([]);
  useTidings(url, 'unread_count', (msg) => setUnread(msg.count), options);
  useTidings(url, 'new_notification', (n) => setItems((prev) => [n, ...prev]), options);
  useTidings(url, 'notification_deleted', (msg) => setItems((prev) => prev.filter((n) => n.id !== msg.id)), options);
  const trigger = () =>
    api('POST', '/api/notifications/trigger/', { user_id: user, title: 'Hello', message: 'from React', type: 'info' }, token);
  return (
    <section>
      <h2>Notifications <small data-testid="nt-state">{state}</small></h2>
      <p>🔔 <span data-testid="nt-unread">{unread}</span> unread</p>
      <button data-testid="nt-trigger" onClick={trigger}>Trigger</button>
      <button onClick={() => api('POST', '/api/notifications/read-all/', undefined, token)}>Mark all read</button>
      <ul data-testid="nt-list">{items.map((n) => <li key={n.id}>{n.title}: {n.message}</li>)}</ul>
    </section>
  );
}
