/* tslint:disable */
/* eslint-disable */

/** Connection state reported by `Manager.state` and `onState`. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed';
/** An event listener: `message` is the decoded payload (see `Message`). */
export type Listener<M = unknown> = (message: M, info: EventInfo) => void;
/**
 * The manager for `url` (relative URLs resolve against the page) and
 * `options.token`: the same object for the same absolute URL and token.
 * Touches no browser API until the first listener is added. Throws on an
 * invalid URL or options.
 */
export function connect(url: string, options?: ConnectOptions): Manager;



/** One event a `poll` function returns; `data` that is not a string stands for its JSON text. */
export interface PolledEvent { id?: string | number; event?: string; data: unknown }
/** What a `poll` function resolves to. `lastEventId` becomes the position; `end: true` closes the stream. */
export interface PollAnswer { events: PolledEvent[]; lastEventId?: string | null; end?: boolean }
/** A `poll` function: any backend's endpoint as the polling fallback. Called with the position and a signal aborted on timeout or when SSE is back. */
export type PollFunction = (request: { lastEventId: string | null; signal: AbortSignal }) => Promise<PollAnswer> | PollAnswer;
export interface ConnectOptions {
    /** The app's own decoder: `(data, event) => T` (e.g. a zod schema's `parse`). A throw is a `decode` error; the stream goes on. */
    decode?: (data: string, event: string) => unknown;
    /** Used instead of the global `fetch` for the stream (`fetch` transport) and polling requests. */
    fetch?: (request: Request) => Promise<Response>;
    /** Called with the stream's response before it is read; throwing or rejecting refuses it for good (state `closed`, no retry). */
    onOpen?: (response: Response) => unknown | Promise<unknown>;
}



/** The project channels' own name for `WsMessage`. */
export type WSMessage = WsMessage;
/** The project channels' message types (`WSMessageTypeEnum`); other strings pass through unchanged. */
export type WSMessageType = "task" | "data" | "file" | "entity" | "scene" | "render_progress" | "render_result" | (string & {});



export interface ConnectOptions {
    /**
     * Called before every (re)connect and every poll for a fresh token, which
     * then replaces `token`. A 401 calls it once more at once before backing
     * off; a 403 stops with state `closed` and an `auth` error. Throwing or
     * rejecting counts as a failed attempt (backoff). Default: none.
     */
    getToken?: () => Promise<string> | string;
}


/**
 * A decoded event payload. Serialises to exactly the payload\'s JSON shape
 * (untagged); JS listeners receive that shape as `message`.
 */
export type Message = TeamAnswerMessage | NotificationMessage | VideoProgress | WsMessage | Heartbeat | ResetNotice | EndNotice | unknown | string | unknown;

/**
 * Backoff settings. Defaults: 1 s doubling to 30 s, 5 attempts (what the
 * hand-written clients it replaces used).
 *
 * ```
 * let quick = tidings::BackoffOptions::default().initial_ms(200).max_ms(1000);
 * assert_eq!((quick.initial_ms, quick.max_ms, quick.max_attempts), (200, 1000, 5));
 * ```
 */
export interface BackoffOptions {
    /**
     * Ceiling of the first delay, in ms. Default `1000`. A server `retry:`
     * hint (or the polling response\'s `retry_ms`) replaces it.
     */
    initialMs?: number;
    /**
     * Largest ceiling, in ms. Default `30000`.
     */
    maxMs?: number;
    /**
     * Growth of the ceiling per attempt. Default `2`.
     */
    factor?: number;
    /**
     * Failed reconnect attempts before switching to polling. Default `5`.
     */
    maxAttempts?: number;
}

/**
 * Options of `connect(url, options)`. Every field is optional; the defaults
 * are given per field. Managers are shared per (absolute URL, token): the
 * options of the first `connect` win.
 *
 * Rust code starts from the defaults and sets what it needs with the builder
 * methods (named like the fields):
 *
 * ```
 * use tidings::{ConnectOptions, Transport};
 *
 * let options = ConnectOptions::default()
 *     .token(\"eyJhbGciOi...\")
 *     .transport(Transport::Fetch)
 *     .header(\"X-Trace\", \"on\")
 *     .heartbeat_timeout_ms(20_000);
 * assert_eq!(options.transport, Transport::Fetch);
 * assert_eq!(options.poll_interval_ms, 3000); // untouched: the default
 * ```
 */
export interface ConnectOptions {
    /**
     * Bearer token (JWT). Sent as `?token=` on the SSE URL (EventSource
     * cannot set headers) and as `Authorization: Bearer` when polling.
     * Part of the singleton key, so different users never share a manager.
     * Default: none.
     */
    token?: string;
    /**
     * Extra request headers (`fetch` transport and polling only; EventSource
     * cannot send headers). `Authorization` here wins over `token`. Default `{}`.
     */
    headers?: Record<string, string>;
    /**
     * Reconnect backoff: `{initialMs: 1000, maxMs: 30000, factor: 2, maxAttempts: 5}`
     * (exponential with full jitter; after `maxAttempts` failures, polling).
     */
    backoff?: BackoffOptions;
    /**
     * Pause between polling requests in polling mode, in ms. Default `3000`.
     */
    pollIntervalMs?: number;
    /**
     * While polling, how often to try SSE again, in ms. Default `30000`.
     */
    retrySseEveryMs?: number;
    /**
     * Send cookies with the SSE and polling requests (CORS credentials:
     * `withCredentials` on EventSource, `credentials: \'include\'` on fetch). Default `false`.
     */
    withCredentials?: boolean;
    /**
     * How `data` is decoded: `auto` (default: JSON when it parses, else the
     * raw string), `json`, `text`, or a seed stream\'s typed decoder by name
     * (`team-answers`, `notifications`, `video-progress`, `channel`). Never
     * guessed from the URL.
     */
    decoder?: Decoder;
    /**
     * Which protocol the server speaks: `auto` (default: Tidings once the
     * server announces it, plain SSE otherwise), `tidings` or `plain`.
     */
    protocol?: Protocol;
    /**
     * The polling fallback: `false` (never), `\'tidings\'` (the Tidings form)
     * or a function (JS). Default: the Tidings form when the server speaks
     * Tidings, else no polling.
     */
    poll?: false | 'tidings' | PollFunction;
    /**
     * Timeout of every polling request (and of a `poll` function), in ms. Default `10000`.
     */
    pollTimeoutMs?: number;
    /**
     * The query parameter that carries the resume position on the
     * `EventSource` URL. Default `lastEventId` (Mercure uses `lastEventID`).
     * The `fetch` transport sends the standard `Last-Event-ID` header instead.
     */
    resumeParam?: string;
    /**
     * The HTTP method of the stream request (`fetch` transport). Default `GET`.
     */
    method?: string;
    /**
     * The request body of the stream request (`fetch` transport): a string as
     * is, anything else as JSON. Default: none.
     */
    body?: string | unknown;
    /**
     * The stream is finite: when the server ends the response normally the
     * manager is `closed` and does not reconnect (a broken response still
     * reconnects). Implies the `fetch` transport, the only one that tells the
     * two apart. Default `false`.
     */
    finite?: boolean;
    /**
     * Share one connection per stream URL and token across the tabs of this
     * origin (a leader tab elected with Web Locks relays over
     * BroadcastChannel; without them, or with `false`, each tab has its own
     * connection). Default `true`.
     */
    shareAcrossTabs?: boolean;
    /**
     * `eventsource` (default: works everywhere, token in the query string) or
     * `fetch` (headers, statuses, `retry:`; see [`Transport`]). A `method`
     * other than `GET`, a `body`, `fetch` or `onOpen` imply `fetch`.
     */
    transport?: Transport;
    /**
     * Heartbeat watchdog, in ms: when no event or heartbeat arrives for this
     * long, the connection is treated as dead and reopened after the last id.
     * `0` disables it. Default: `45000` (1.5 × the 30 s heartbeat) for servers
     * that announce the Tidings protocol, whose heartbeats are guaranteed;
     * off for other servers, which may be silent for hours.
     */
    heartbeatTimeoutMs?: number;
    /**
     * Keep the last event id per stream (URL, token, headers, method, body) in
     * `sessionStorage`, so a page reload resumes where it stopped, losing
     * nothing. Default `true`. Ignored with `get_token`: the user is only
     * known at connect time, so a stored position could be another user\'s.
     */
    persistLastEventId?: boolean;
    /**
     * Close the connection while the page is hidden and resume (after the
     * last id) when it is visible again. Default `false`.
     */
    pauseWhenHidden?: boolean;
    /**
     * Skip SSE and use the polling form from the start (diagnostics, tests,
     * networks that break streaming). Default `false`.
     */
    forcePolling?: boolean;
}

/**
 * The second argument of every event listener (TypeScript type only; built
 * with `Reflect` for speed).
 */
export interface EventInfo {
    /**
     * This event\'s own SSE id, or null when it had none (greeting, heartbeat).
     */
    id: string | null;
    /**
     * The last event id seen on the stream, this event\'s or an earlier one\'s
     * (what `MessageEvent.lastEventId` means), or null before any.
     */
    lastEventId: string | null;
    /**
     * The type the listener registered for (for `*`: the payload `type` of an
     * unnamed event, else the SSE event name).
     */
    type: string;
    /**
     * The SSE event name (`message` for unnamed events).
     */
    event: string;
    /**
     * The raw `data` text.
     */
    raw: string;
}

/**
 * What `onError` listeners receive (TypeScript type only).
 */
export interface TidingsError {
    /**
     * `decode` | `http` | `network` | `auth` | `protocol`, or `load` when the
     * package\'s JS entry could not load the wasm.
     */
    kind: 'decode' | 'http' | 'network' | 'auth' | 'protocol' | 'load';
    /**
     * Human-readable reason.
     */
    message: string;
    /**
     * The raw event data (decode errors) or response body.
     */
    raw?: string;
    /**
     * The HTTP status, when there was one.
     */
    status?: number;
}

/**
 * Which decoder turns a stream\'s `data` into a [`Message`].
 */
export type Decoder = "team-answers" | "notifications" | "video-progress" | "channel" | "json" | "text" | "auto";

/**
 * Which protocol to assume for a stream.
 */
export type Protocol = "auto" | "tidings" | "plain";

/**
 * Which transport carries the stream.
 */
export type Transport = "eventsource" | "fetch";

/**
 *r" A heartbeat of any stream (named `heartbeat` event).
 */
export interface Heartbeat {
    /**
     *r" The video job (video progress streams only).
     */
    job_id?: string;
    /**
     *r" RFC 3339 time.
     */
    timestamp?: string;
}

/**
 *r" A notification record.
 */
export interface Notification {
    /**
     *r" Notification id.
     */
    id: number;
    /**
     *r" Recipient (the token's `sub`).
     */
    user_id: string;
    /**
     *r" Title.
     */
    title: string;
    /**
     *r" Body text.
     */
    message: string;
    /**
     *r" Kind, e.g. `info`.
     */
    type: string;
    /**
     *r" Whether it has been read.
     */
    read: boolean;
    /**
     *r" RFC 3339 creation time.
     */
    created_at: string;
}

/**
 *r" A notifications stream message, keyed by SSE event name.
 */
export type NotificationMessage = Notification | UnreadCount | NotificationDeleted | NotificationsConnected;

/**
 *r" A project channel message `WSMessage {type, object}` on `/api/v1/events/{channel}`.
 */
export interface WsMessage {
    /**
     *r" The message type; unknown types are kept as their string.
     */
    type: WSMessageType;
    /**
     *r" The payload: an object or a string (`null` when absent).
     */
    object?: Record<string, unknown> | string | null;
}

/**
 *r" A team answer record.
 */
export interface TeamAnswer {
    /**
     *r" Database id.
     */
    id: number;
    /**
     *r" Video file name.
     */
    video_name: string;
    /**
     *r" Frame number in the video.
     */
    frame_index: number;
    /**
     *r" Frame image URL.
     */
    url: string;
    /**
     *r" Question and answer text.
     */
    qa?: string;
    /**
     *r" Query number.
     */
    query_index?: number;
    /**
     *r" Competition round.
     */
    round?: string;
    /**
     *r" RFC 3339 creation time.
     */
    created_at: string;
    /**
     *r" RFC 3339 update time.
     */
    updated_at: string;
}

/**
 *r" A team answers stream message, tagged by `type`.
 */
export type TeamAnswerMessage = { type: "connected"; message?: string; timestamp?: string } | { type: "create"; data: TeamAnswer; timestamp?: string } | { type: "delete"; data: number[]; timestamp?: string } | { type: "heartbeat"; timestamp?: string } | { type: "error"; message?: string; timestamp?: string };

/**
 *r" A video job progress event, the data of the named events
 *r" `progress`, `completed`, `error` and `timeout`.
 */
export interface VideoProgress {
    /**
     *r" `progress`, `completed`, `error` or `timeout` (same as the event name).
     */
    type: string;
    /**
     *r" The job.
     */
    job_id: string;
    /**
     *r" `running`, `completed`, `error` or `timeout`.
     */
    status: string;
    /**
     *r" Current step name.
     */
    step?: string;
    /**
     *r" Step number (1-based).
     */
    step_index?: number;
    /**
     *r" Number of steps.
     */
    total_steps?: number;
    /**
     *r" Percent done, 0–100.
     */
    percent?: number;
    /**
     *r" Human-readable text.
     */
    message?: string;
    /**
     *r" RFC 3339 start of the current step.
     */
    step_started_at?: string;
    /**
     *r" How long the finished step took.
     */
    step_duration_ms?: number;
    /**
     *r" The finished video (on `completed`).
     */
    video_url?: string;
    /**
     *r" Total job time (on `completed`).
     */
    duration_ms?: number;
    /**
     *r" RFC 3339 time.
     */
    timestamp?: string;
}

/**
 *r" The `end` event of a finite stream: no reconnect follows.
 */
export interface EndNotice {
    /**
     *r" `completed`, `error` or `timeout`.
     */
    reason?: string;
}

/**
 *r" The server's `reset` event: the client's position fell out of the replay
 *r" log (or was invalid); refetch state over REST and carry on.
 */
export interface ResetNotice {
    /**
     *r" `gap`, `invalid_id`, `ahead` or `lagged`.
     */
    reason?: string;
    /**
     *r" The position the client sent.
     */
    last_event_id?: string;
    /**
     *r" The stream head the server continues from.
     */
    head?: string;
}

/**
 *r" `connected` greeting of the notifications stream.
 */
export interface NotificationsConnected {
    /**
     *r" Human-readable text.
     */
    message?: string;
    /**
     *r" The authenticated user.
     */
    user_id?: string;
    /**
     *r" RFC 3339 time.
     */
    timestamp?: string;
}

/**
 *r" `notification_deleted`.
 */
export interface NotificationDeleted {
    /**
     *r" The deleted notification.
     */
    id: number;
    /**
     *r" The new unread count, when the server includes it.
     */
    unread_count?: number;
}

/**
 *r" `unread_count`: the user's unread count changed (also sent at connect).
 */
export interface UnreadCount {
    /**
     *r" Unread notifications.
     */
    count: number;
}


/**
 * A stream manager (one per absolute URL and token per page). Get it from
 * `connect()`; the same URL and token always give the same object.
 */
export class Manager {
    private constructor();
    free(): void;
    /**
     * Closes the connection for good, drops every listener and removes the
     * manager from the registry (a later `connect` makes a new one).
     */
    close(): void;
    /**
     * Removes an error listener by id (what the function returned by `onError` calls).
     */
    offError(id: number): void;
    /**
     * Removes a state listener by id (what the function returned by `onState` calls).
     */
    offState(id: number): void;
    /**
     * Removes an event listener by id (what the function returned by `on` calls).
     */
    off(id: number): void;
    /**
     * Listens for errors: `{kind, message, raw?, status?}`. Decode failures
     * carry the raw text; the stream goes on. Returns the unsubscribe function.
     */
    onError(listener: (error: TidingsError) => void): () => void;
    /**
     * Listens for state changes; called at once with the current state.
     * Does not open the connection. Returns the unsubscribe function.
     */
    onState(listener: (state: ConnectionState) => void): () => void;
    /**
     * Listens for events of `type`: an SSE event name (`message` for unnamed
     * events), a payload `type` of unnamed events (`create`, `task`, …), or
     * `'*'` for every event. The first listener opens the connection; when
     * the last one unsubscribes it closes. Returns the unsubscribe function.
     */
    on(type: string, listener: Listener): () => void;
    /**
     * The decoder in use.
     */
    readonly decoder: Decoder;
    /**
     * Events dropped as duplicates so far (only ever the repeated numeric ids
     * of a server that speaks Tidings; every drop is counted here).
     */
    readonly duplicates: number;
    /**
     * The id of the last event received (the resume position), or null.
     */
    readonly lastEventId: string | undefined;
    /**
     * Whether the stream speaks the Tidings protocol (the server announced
     * it, or `protocol: 'tidings'`); any other server is spoken to as plain SSE.
     */
    readonly speaksTidings: boolean;
    /**
     * `'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'`.
     */
    readonly state: ConnectionState;
    /**
     * This tab's part in sharing the connection across tabs: `'leader'`
     * (holds it), `'follower'` (gets the leader's relays), `'idle'` (no
     * listeners) or `'solo'` (own connection: `shareAcrossTabs: false`, or no
     * Web Locks / BroadcastChannel).
     */
    readonly tabRole: 'leader' | 'follower' | 'idle' | 'solo';
    /**
     * The absolute stream URL.
     */
    readonly url: string;
}

/**
 * Whether this environment has what the default transport needs (`EventSource`).
 */
export function isSupported(): boolean;

/**
 * Whether tabs can share one connection here (Web Locks and
 * BroadcastChannel). Without them every tab opens its own connection.
 */
export function isTabSharingSupported(): boolean;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_manager_free: (a: number, b: number) => void;
    readonly connect: (a: number, b: number, c: number) => [number, number, number];
    readonly isSupported: () => number;
    readonly isTabSharingSupported: () => number;
    readonly manager_close: (a: number) => void;
    readonly manager_decoder: (a: number) => [number, number];
    readonly manager_duplicates: (a: number) => number;
    readonly manager_lastEventId: (a: number) => [number, number];
    readonly manager_off: (a: number, b: number) => void;
    readonly manager_offError: (a: number, b: number) => void;
    readonly manager_offState: (a: number, b: number) => void;
    readonly manager_on: (a: number, b: number, c: number, d: any) => any;
    readonly manager_onError: (a: number, b: any) => any;
    readonly manager_onState: (a: number, b: any) => any;
    readonly manager_speaksTidings: (a: number) => number;
    readonly manager_state: (a: number) => [number, number];
    readonly manager_tabRole: (a: number) => [number, number];
    readonly manager_url: (a: number) => [number, number];
    readonly __wbindgen_export: (a: number, b: number) => number;
    readonly __wbindgen_export2: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_export3: (a: number, b: number, c: number) => void;
    readonly __wbindgen_export4: (a: number) => void;
    readonly __wbindgen_export5: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_export6: (a: number, b: number) => void;
    readonly __wbindgen_export7: (a: number, b: number) => void;
    readonly __wbindgen_export8: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
