// Real usages of the package's types, checked with `tsc --strict`. Every
// `@ts-expect-error` line must fail to compile (tsc reports an unused one), so
// this file proves that the types reject the mistakes, not only that they accept code.
import init, {
  connect,
  initSync,
  isSupported,
  isTabSharingSupported,
  type AnyEvents,
  type ConnectionState,
  type DecodedEvents,
  type EventInfo,
  type Manager,
  type NotificationEvents,
  type TeamAnswer,
  type TeamAnswerEvents,
  type TidingsError,
  type VideoProgressEvents,
} from 'tidings';

/** Compile-time equality of two types. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function assertType<T extends true>(): T | void {}

// Team answers: the map is inferred from `decoder`, with no type argument.
const answers = connect('/api/team-answers/sse/', { decoder: 'team-answers' });
assertType<Equal<typeof answers, Manager<TeamAnswerEvents>>>();
answers.on('create', (msg, info) => {
  const answer: TeamAnswer = msg.data;
  const id: string | null = info.id;
  console.log(answer.video_name, answer.frame_index, msg.timestamp, id, info.type, info.event, info.raw);
});
answers.on('delete', (msg) => msg.data.map((n) => n + 1));
answers.on('connected', (msg) => msg.message?.toUpperCase());
answers.on('message', (msg) => {
  if (msg.type === 'create') console.log(msg.data.url);
  // @ts-expect-error heartbeats never reach `message` listeners
  if (msg.type === 'heartbeat') console.log(msg);
});
// @ts-expect-error a misspelled field of a seed message
answers.on('create', (msg) => msg.data.nope);
// @ts-expect-error a misspelled field one level up
answers.on('create', (msg) => msg.dta);
// @ts-expect-error an event name the team answers stream does not have
answers.on('craete', () => {});
// @ts-expect-error a listener whose message parameter has the wrong type
answers.on('create', (msg: string) => msg);
// @ts-expect-error a listener that wants a third argument
answers.on('create', (_msg, _info, _extra: number) => {});

// The protocol's events and the wildcard, on every map.
answers.on('reset', (msg) => console.log(msg.reason, msg.head, msg.last_event_id));
answers.on('end', (msg) => console.log(msg.reason));
answers.on('*', (msg, info) => {
  if ('type' in msg && msg.type === 'delete') console.log(msg.data.length, info.type);
});
answers.on('heartbeat', (msg) => console.log(msg.timestamp));

// Notifications: named events.
const bell = connect('/api/notifications/stream', { token: 'jwt', decoder: 'notifications' });
assertType<Equal<typeof bell, Manager<NotificationEvents>>>();
bell.on('unread_count', ({ count }) => count.toFixed());
bell.on('new_notification', (n) => `${n.title}: ${n.message} (${n.read ? 'read' : 'unread'})`);
bell.on('notification_deleted', ({ id, unread_count }) => [id, unread_count]);
// @ts-expect-error `create` belongs to team answers, not notifications
bell.on('create', () => {});
// @ts-expect-error count is a number
bell.on('unread_count', (m) => m.count.toUpperCase());

// Video progress: finite, `end` last.
const video = connect('/api/video-progress/job-1', { decoder: 'video-progress' });
assertType<Equal<typeof video, Manager<VideoProgressEvents>>>();
video.on('progress', (p) => p.percent?.toFixed(1));
video.on('completed', (p) => p.video_url);
video.on('end', (e) => e.reason);
// @ts-expect-error video progress has no `create`
video.on('create', () => {});

// Channels: WSMessage by type; names outside the enum stay open and unknown.
const channel = connect('/api/v1/events/project.1', { decoder: 'channel', transport: 'fetch', getToken: async () => 'jwt' });
channel.on('task', (msg) => {
  const t: 'task' = msg.type;
  return [t, msg.object];
});
channel.on('message', (msg) => msg.object);
channel.on('new_kind', (msg: unknown) => msg);
// @ts-expect-error an unknown name's payload is unknown, not any
channel.on('new_kind', (msg) => msg.object);

// Any other stream: payloads are unknown (never any); reset and end stay typed.
const other = connect('https://example.com/stream', { decoder: 'json' });
assertType<Equal<typeof other, Manager<AnyEvents>>>();
other.on('anything', (msg) => (typeof msg === 'string' ? msg.length : 0));
other.on('reset', (msg) => msg.reason);
// @ts-expect-error unknown payloads must be narrowed first
other.on('anything', (msg) => msg.length);
const plain = connect('/api/team-answers/sse/');
assertType<Equal<typeof plain, Manager<AnyEvents>>>();
const text = connect('/log', { decoder: 'text' });
text.on('line', (s) => s.toUpperCase());

// A map given by the app.
interface ChatEvents {
  said: { from: string; text: string };
  joined: { who: string };
}
const chat = connect<ChatEvents>('/chat', { transport: 'fetch' });
chat.on('said', (m) => `${m.from}: ${m.text}`);
chat.on('*', (m) => ('who' in m ? m.who : m.from));
// @ts-expect-error not in ChatEvents
chat.on('left', () => {});
// @ts-expect-error a misspelled option is caught with a type argument too
connect<ChatEvents>('/chat', { tokn: 'x' });
// @ts-expect-error a misspelled option is caught when the map is inferred
connect('/chat', { decoder: 'json', tokn: 'x' });
// @ts-expect-error not a decoder
connect('/chat', { decoder: 'xml' });

// The app's own decoder (a zod schema's `parse`, say): what it returns types every listener.
interface Price { symbol: string; cents: number }
const parsePrice = (data: string): Price => JSON.parse(data) as Price;
const prices = connect('/prices', { decode: parsePrice });
assertType<Equal<typeof prices, Manager<DecodedEvents<Price>>>>();
prices.on('tick', (p) => p.cents.toFixed(0));
prices.on('*', (p) => p.symbol.toLowerCase());
const inline = connect('/prices', { decode: (data, event) => ({ event, size: data.length }) });
inline.on('tick', (m) => m.size + m.event.length);
// @ts-expect-error a field the decode function does not return
prices.on('tick', (p) => p.price);
// @ts-expect-error a listener that expects another type than decode returns
prices.on('tick', (p: string) => p);
// @ts-expect-error decode takes (data: string, event: string)
connect('/prices', { decode: (data: number) => data });

// State, errors and the rest of the manager.
const off = answers.onState((s: ConnectionState) => {
  if (s === 'failed') console.log('the wasm could not load');
});
off();
answers.onError((e: TidingsError) => {
  if (e.kind === 'load' || e.kind === 'auth') console.log(e.message, e.status, e.raw);
  // @ts-expect-error not an error kind
  if (e.kind === 'timeout') console.log(e);
});
const last: string | null = answers.lastEventId;
const role: 'leader' | 'follower' | 'idle' | 'solo' = answers.tabRole;
console.log(last, role, answers.url, answers.decoder, isSupported(), isTabSharingSupported());
answers.close();
// @ts-expect-error state is read-only
answers.state = 'open';

// init() stays for preloading, with any of its inputs.
await init();
await init('/static/tidings_bg.wasm');
await init({ module_or_path: new URL('https://cdn.example.com/tidings_bg.wasm') });
initSync(new Uint8Array(0));
const info: EventInfo = { id: null, lastEventId: null, type: 'create', event: 'message', raw: '{}' };
console.log(info);

// No public type is `any`, at any depth the check reaches (4 levels: fields,
// listener parameters, return types). The platform's and React's own types
// (init's Response input, Promise's rejection reason, ReactElement) are left out: their `any`s are not the package's.
type HasAny<T, D extends unknown[] = []> =
  D['length'] extends 4 ? false
  : 0 extends 1 & T ? true
  : T extends (...args: infer A) => infer R ? HasAny<R, [...D, 0]> | HasAny<A[number], [...D, 0]>
  : T extends object ? { [K in keyof T]-?: HasAny<T[K], [...D, 0]> }[keyof T]
  : false;
type ContainsAny<T> = true extends HasAny<T> ? true : false;
type Public = [
  typeof connect, Awaited<ReturnType<typeof init>>, typeof initSync, typeof isSupported, typeof isTabSharingSupported,
  Manager<TeamAnswerEvents>, Manager<NotificationEvents>, Manager<VideoProgressEvents>, Manager<AnyEvents>,
  TeamAnswerEvents, NotificationEvents, VideoProgressEvents, AnyEvents, EventInfo, TidingsError, ConnectionState,
  import('tidings').ChannelEvents, import('tidings').TextEvents, import('tidings').ConnectOptions,
  import('tidings').BackoffOptions, import('tidings').WSMessage,
  typeof import('tidings/react').useTidings, typeof import('tidings/react').useTidingsEvents,
  typeof import('tidings/react').useTidingsStatus, typeof import('tidings/react').useTidingsState,
  Parameters<typeof import('tidings/react').TidingsProvider>[0]['connect'], typeof import('tidings/react').ensureInit,
  import('tidings/testing').FakeTidings, import('tidings/testing').FakeManager<TeamAnswerEvents>,
];
type EachContainsAny<T extends unknown[]> = { [I in keyof T]: ContainsAny<T[I]> }[number];
assertType<Equal<EachContainsAny<Public>, false>>();
// The check itself bites: a type with `any` inside is found.
assertType<Equal<ContainsAny<{ a: { b: (x: string) => any } }>, true>>();

// Any backend: protocol, poll (false | 'tidings' | a function), decode, resume, POST streams.
const anyBackend = connect('/events', {
  protocol: 'auto',
  resumeParam: 'lastEventID',
  pollTimeoutMs: 5000,
  poll: async ({ lastEventId, signal }) => {
    void signal;
    return { events: [{ id: lastEventId ?? 'a', event: 'item', data: { n: 1 } }], lastEventId: 'b', end: false };
  },
  decode: (data: string, event: string) => ({ data, event }),
});
const dups: number = anyBackend.duplicates;
const speaks: boolean = anyBackend.speaksTidings;
console.log(dups, speaks);
connect('/events', { poll: false });
connect('/events', { poll: 'tidings', protocol: 'tidings' });
connect('/chat', { method: 'POST', body: { prompt: 'x' }, finite: true, onOpen: (res: Response) => { void res.status; } });
// @ts-expect-error poll is false, 'tidings' or a function
connect('/events', { poll: true });
