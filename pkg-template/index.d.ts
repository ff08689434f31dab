// Types of `tidings`. The message and option types are generated from the
// Rust crate (tidings.d.ts); this file adds the event maps that type each
// stream's listeners, and the manager handed out by `connect()`.
import type {
  ConnectionState as WasmConnectionState,
  ConnectOptions,
  Decoder,
  EndNotice,
  EventInfo,
  Heartbeat,
  InitInput,
  Notification,
  NotificationDeleted,
  NotificationsConnected,
  ResetNotice,
  SyncInitInput,
  TeamAnswerMessage,
  TidingsError,
  UnreadCount,
  VideoProgress,
  WsMessage,
} from './tidings.js';

export type {
  BackoffOptions, ConnectOptions, Decoder, EndNotice, EventInfo, Heartbeat, InitInput, Notification,
  NotificationDeleted, NotificationsConnected, ResetNotice, SyncInitInput, TeamAnswer, TeamAnswerMessage,
  TidingsError, Transport, UnreadCount, VideoProgress, WsMessage, WSMessage, WSMessageType,
} from './tidings.js';

/**
 * The manager's state: `'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'`,
 * or `'failed'` when the SDK's wasm could not be loaded (see `onError`, kind `load`).
 */
export type ConnectionState = WasmConnectionState | 'failed';

/** This tab's part in sharing a connection across tabs. */
export type TabRole = 'leader' | 'follower' | 'idle' | 'solo';

/** Events of the Tidings protocol, on every stream. */
export interface ProtocolEvents {
  /** The server no longer has this client's position: refetch state over REST. */
  reset: ResetNotice;
  /** A finite stream finished; the manager is closed and does not reconnect. */
  end: EndNotice;
}

/** Any stream (`decoder` `'json'`, `'auto'` or none): payloads are not checked, so they are `unknown`. */
export interface AnyEvents extends ProtocolEvents {
  [type: string]: unknown;
}

/** `decoder: 'text'`: every payload is the raw string. */
export interface TextEvents {
  [type: string]: string;
}

type TeamAnswerOf<T extends TeamAnswerMessage['type']> = Extract<TeamAnswerMessage, { type: T }>;

/** `/api/team-answers/sse/` (`decoder: 'team-answers'`): unnamed events tagged by `type`. */
export interface TeamAnswerEvents extends ProtocolEvents {
  /** Every message but heartbeats. */
  message: Exclude<TeamAnswerMessage, { type: 'heartbeat' }>;
  connected: TeamAnswerOf<'connected'>;
  create: TeamAnswerOf<'create'>;
  delete: TeamAnswerOf<'delete'>;
  error: TeamAnswerOf<'error'>;
  heartbeat: TeamAnswerOf<'heartbeat'> | Heartbeat;
}

/** `/api/notifications/stream` (`decoder: 'notifications'`): named events. */
export interface NotificationEvents extends ProtocolEvents {
  connected: NotificationsConnected;
  unread_count: UnreadCount;
  new_notification: Notification;
  notification_deleted: NotificationDeleted;
  heartbeat: Heartbeat;
}

/** `/api/video-progress/{job_id}` (`decoder: 'video-progress'`): named events, then `end`. */
export interface VideoProgressEvents extends ProtocolEvents {
  progress: VideoProgress;
  completed: VideoProgress;
  error: VideoProgress;
  timeout: VideoProgress;
  heartbeat: Heartbeat;
}

/** The message types of seed 003's WSMessageTypeEnum. */
export type ChannelMessageType = 'task' | 'data' | 'file' | 'entity' | 'scene' | 'render_progress' | 'render_result';

/**
 * `/api/v1/events/{channel}` (`decoder: 'channel'`): `WSMessage {type, object}`,
 * also delivered by its `type`. Other names stay open (a type outside the enum,
 * or a named event of the server's own) and are `unknown`.
 */
export type ChannelEvents = ProtocolEvents & {
  message: WsMessage;
  /** The named greeting (`{type: 'connected', channel, timestamp}`, not checked). */
  connected: unknown;
  heartbeat: Heartbeat;
} & { [T in ChannelMessageType]: WsMessage & { type: T } } & { [type: string]: unknown };

/** The decoders of the seed streams, each with its own event map. */
export type SeedDecoder = 'team-answers' | 'notifications' | 'video-progress' | 'channel';

/** The event map a seed decoder gives (`AnyEvents` for the others). */
export type EventsForDecoder<D> =
  [D] extends ['team-answers'] ? TeamAnswerEvents
  : [D] extends ['notifications'] ? NotificationEvents
  : [D] extends ['video-progress'] ? VideoProgressEvents
  : [D] extends ['channel'] ? ChannelEvents
  : [D] extends ['text'] ? TextEvents
  : AnyEvents;

/**
 * The map of a stream with the app's own `decode` function: every event,
 * `reset` and `end` included, carries what `decode` returns.
 */
export interface DecodedEvents<T> {
  [type: string]: T;
}

/** The event map `connect` gives: `E` when given, else the `decode` function's (`T`), else the decoder's (`D`). */
export type EventsFor<E, D, T> = [E] extends [never] ? ([T] extends [never] ? EventsForDecoder<D> : DecodedEvents<T>) : E;

/** `connect`'s options, with `decoder` and `decode` picking the event map. */
export type TypedOptions<D extends Decoder | undefined, T> = ConnectOptions & {
  decoder?: D;
  decode?: (data: string, event: string) => T;
};

/** What `on` accepts for a map: its names, and `'*'` for every event. */
export type EventName<E> = (keyof E & string) | '*';

/** What a `'*'` listener receives: any message of the map but heartbeats. */
export type AnyMessage<E> = E[Exclude<keyof E, 'heartbeat'>];

/** The message a listener for `K` receives. */
export type MessageOf<E, K> = K extends '*' ? AnyMessage<E> : K extends keyof E ? E[K] : never;

/** A listener for events `K` of the map `E`. */
export type Listener<E = AnyEvents, K extends EventName<E> = EventName<E>> = (message: MessageOf<E, K>, info: EventInfo) => void;

/**
 * A stream manager: one per absolute URL and token per page. `E` maps event
 * names to their messages (inferred from `decoder`, or given: `connect<MyEvents>(url)`).
 */
export interface Manager<E = AnyEvents> {
  /**
   * Listens for events of `type`: an SSE event name (`message` for unnamed
   * events), a payload `type` of unnamed events (`create`, `task`, …), or
   * `'*'` for every event. The first listener opens the connection (loading
   * the wasm if needed); when the last one unsubscribes it closes. Returns
   * the unsubscribe function.
   */
  on<K extends EventName<E>>(type: K, listener: (message: MessageOf<E, K>, info: EventInfo) => void): () => void;
  /** Listens for state changes; called at once with the current state. Does not open the connection. */
  onState(listener: (state: ConnectionState) => void): () => void;
  /**
   * Listens for errors `{kind, message, raw?, status?}`; the stream goes on.
   * A manager whose wasm could not be loaded (state `failed`) calls the
   * listener at once with its `load` error.
   */
  onError(listener: (error: TidingsError) => void): () => void;
  /** The current state (`closed` also before the first listener). */
  readonly state: ConnectionState;
  /** The id of the last event received (the resume position), or null. */
  readonly lastEventId: string | null;
  /**
   * Events dropped as duplicates so far. Only a server that speaks Tidings has
   * ids that can repeat; every drop is counted here, none is silent.
   */
  readonly duplicates: number;
  /** Whether the stream speaks the Tidings protocol (the server announced it, or `protocol: 'tidings'`). */
  readonly speaksTidings: boolean;
  /** `'leader'`, `'follower'`, `'idle'` (no listeners, or not loaded yet) or `'solo'`. */
  readonly tabRole: TabRole;
  /** The absolute stream URL. */
  readonly url: string;
  /** The decoder in use: `options.decoder`, else `'auto'` (never guessed from the URL). */
  readonly decoder: Decoder | null;
  /** Closes for good, drops every listener, removes the manager from the registry. */
  close(): void;
}

/**
 * The manager for `url` (relative URLs resolve against the page) and
 * `options.token`: the same object for the same absolute URL and token; the
 * options of the first call win. Loads the wasm on first use (listeners
 * added meanwhile are kept). The event map comes from `options.decoder`
 * (`'team-answers'`, `'notifications'`, `'video-progress'`, `'channel'`), or
 * from `options.decode` (every event carries what it returns), or is given:
 * `connect<MyEvents>(url, options)`. Throws on an invalid URL, and
 * on invalid options once the wasm is loaded (before that, a manager with
 * invalid options ends in state `failed` with a `load` error).
 */
export function connect<E = never, D extends Decoder | undefined = Decoder | undefined, T = never>(
  url: string,
  options?: TypedOptions<D, T>,
): Manager<EventsFor<E, D, T>>;

/**
 * Loads the wasm ahead of the first `connect` (optional: `connect` loads it
 * on first use). `input`: where the wasm is (default: `tidings_bg.wasm` next
 * to the module), its bytes, a `Response` or a compiled module. Idempotent;
 * after a failed load the next call tries again.
 */
export default function init(input?: InitInput | Promise<InitInput> | { module_or_path: InitInput | Promise<InitInput> }): Promise<void>;

/** Instantiates the wasm synchronously from its bytes or a compiled `WebAssembly.Module`. */
export function initSync(module: SyncInitInput | { module: SyncInitInput }): void;

/** Whether this environment has what the default transport needs (`EventSource`). */
export function isSupported(): boolean;

/** Whether tabs can share one connection here (Web Locks and BroadcastChannel). */
export function isTabSharingSupported(): boolean;
