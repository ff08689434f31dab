// The React hooks and the test helper, checked with `tsc --strict` like usage.ts.
import { useCallback, useState } from 'react';
import type { NotificationEvents, TeamAnswer } from 'tidings';
import {
  TidingsProvider,
  ensureInit,
  useTidings,
  useTidingsEvents,
  useTidingsState,
  useTidingsStatus,
  type TidingsHookState,
} from 'tidings/react';
import { createFakeTidings } from 'tidings/testing';

const url = '/api/team-answers/sse/';
const teamAnswers = { decoder: 'team-answers' } as const;

export function Answers() {
  const [answers, setAnswers] = useState<TeamAnswer[]>([]);
  const state: TidingsHookState = useTidingsState(url, teamAnswers);
  const { error } = useTidingsStatus(url, teamAnswers);
  useTidings(url, 'create', (msg) => setAnswers((prev) => [msg.data, ...prev]), teamAnswers);
  useTidings(url, 'delete', (msg) => {
    const gone = new Set(msg.data);
    setAnswers((prev) => prev.filter((a) => !gone.has(a.id)));
  }, teamAnswers);
  useTidings(url, 'reset', (msg) => console.log(msg.reason), teamAnswers);
  // @ts-expect-error a misspelled field through the hook
  useTidings(url, 'create', (msg) => msg.data.nope, teamAnswers);
  // @ts-expect-error an event name the team answers stream does not have
  useTidings(url, 'craete', () => {}, teamAnswers);
  if (state === 'failed') return <p>Could not load: {error?.kind === 'load' ? error.message : ''}</p>;
  return <ul>{answers.map((a) => <li key={a.id}>{a.qa}</li>)}</ul>;
}

export function Bell({ token }: { token: string }) {
  const options = { token, decoder: 'notifications' as const };
  const latest = useTidingsEvents('/api/notifications/stream', 'new_notification', { ...options, limit: 5 });
  const titles: string[] = latest.map((e) => e.message.title);
  const ids: Array<string | null> = latest.map((e) => e.info.id);
  const refetch = useCallback(() => {}, []);
  useTidingsEvents('/api/notifications/stream', 'unread_count', { ...options, onReset: (r) => { console.log(r.head); refetch(); } });
  // @ts-expect-error `count` is a number
  useTidings('/api/notifications/stream', 'unread_count', (m) => m.count.trim(), options);
  return <p>{titles.join(', ')} {ids.length}</p>;
}

// The app's own decode function types the hook's messages.
interface Price { symbol: string; cents: number }
const priceOptions = { decode: (data: string): Price => JSON.parse(data) as Price };
export function Ticker() {
  const ticks = useTidingsEvents('/prices', 'tick', priceOptions);
  const cents: number[] = ticks.map((t) => t.message.cents);
  useTidings('/prices', 'tick', (p) => console.log(p.symbol), priceOptions);
  // @ts-expect-error a field the decode function does not return
  useTidings('/prices', 'tick', (p) => p.price, priceOptions);
  return <p>{cents.join(' ')}</p>;
}

// The message type given explicitly (no decoder): the generic form.
interface Chat { from: string; text: string }
export function ChatLog() {
  useTidings<Chat>('/chat', 'said', (m) => console.log(m.from, m.text));
  const said = useTidingsEvents<Chat>('/chat', 'said');
  return <p>{said.map((e) => e.message.text).join(' ')}</p>;
}

// Tests inject a fake manager through the provider.
export function renderWithFake() {
  const fake = createFakeTidings();
  const bell = fake.manager<NotificationEvents>('/api/notifications/stream', { token: 't' });
  bell.emit('unread_count', { count: 3 }, { id: '7' });
  bell.setState('open');
  bell.fail();
  // @ts-expect-error the fake checks payloads against the map too
  bell.emit('unread_count', { count: 'three' });
  void ensureInit();
  return (
    <TidingsProvider connect={fake.connect}>
      <Answers />
      <Bell token="t" />
    </TidingsProvider>
  );
}
