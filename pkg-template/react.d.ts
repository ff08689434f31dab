// Types for `tidings/react`. The hooks are typed like `connect`: the event map
// comes from `options.decoder` or `options.decode`, so `type` and the handler's message are checked.
import type { ReactElement, ReactNode } from 'react';
import type {
  ConnectionState,
  ConnectOptions,
  Decoder,
  EventInfo,
  EventName,
  EventsFor,
  MessageOf,
  ResetNotice,
  SeedDecoder,
  TidingsError,
  TypedOptions,
  connect,
} from './index.js';

/** Connection state as seen by React: 'idle' until the hook has subscribed. */
export type TidingsHookState = 'idle' | ConnectionState;

/** What `useTidingsStatus` returns. */
export interface TidingsStatus {
  /** 'idle' until subscribed, then the manager's state ('failed': the wasm could not load). */
  state: TidingsHookState;
  /** The last error reported since subscribing (`{kind: 'load', …}` for a failed load), or null. */
  error: TidingsError | null;
}

/** Options of the hooks: `connect`'s, with `decoder` or `decode` picking the event map. */
export type HookOptions<D extends Decoder | undefined = Decoder | undefined, T = never> = TypedOptions<D, T>;

/** Options of `useTidingsEvents`. */
export type EventsHookOptions<D extends Decoder | undefined = Decoder | undefined, T = never> = HookOptions<D, T> & {
  /** How many messages to keep (newest last). Default 50. */
  limit?: number;
  /** Runs on the server's `reset` (it lost this client's position): refetch state. */
  onReset?: (message: ResetNotice, info: EventInfo) => void;
};

/** One entry of `useTidingsEvents`. */
export interface TidingsEvent<M> {
  message: M;
  info: EventInfo;
}

/** Loads the wasm ahead of the first hook (optional: the hooks load it on first use). */
export function ensureInit(): Promise<void>;

/** Makes the hooks below it use `connect` (a fake from `tidings/testing` in tests). */
export function TidingsProvider(props: { connect?: typeof connect; children?: ReactNode }): ReactElement;

/**
 * Subscribes `handler` to `type` events of the stream at `url` while mounted;
 * `url = null` unsubscribes. `type` and the message are checked against the
 * event map of `options.decoder`, or typed by what `options.decode` returns.
 */
export function useTidings<
  D extends Decoder | undefined = Decoder | undefined,
  T = never,
  K extends EventName<EventsFor<never, D, T>> = EventName<EventsFor<never, D, T>>,
>(
  url: string | null,
  type: K,
  handler: (message: MessageOf<EventsFor<never, D, T>, K>, info: EventInfo) => void,
  options?: HookOptions<D, T>,
): void;
/**
 * The same with the message type given: `useTidings<MyMessage>(url, type, handler)`
 * (streams without a seed decoder; a seed decoder types the message itself).
 */
export function useTidings<M>(
  url: string | null,
  type: string,
  handler: (message: M, info: EventInfo) => void,
  options?: ConnectOptions & { decoder?: Exclude<Decoder, SeedDecoder> },
): void;

/** `{state, error}` of the stream at `url`; does not open the connection. */
export function useTidingsStatus(url: string | null, options?: ConnectOptions): TidingsStatus;

/** The connection state of the stream at `url`; does not open the connection. */
export function useTidingsState(url: string | null, options?: ConnectOptions): TidingsHookState;

/**
 * The last `limit` (default 50) messages of `type`, newest last, started
 * afresh when `url` or `type` changes; `onReset` runs on a server gap reset.
 */
export function useTidingsEvents<
  D extends Decoder | undefined = Decoder | undefined,
  T = never,
  K extends EventName<EventsFor<never, D, T>> = EventName<EventsFor<never, D, T>>,
>(
  url: string | null,
  type: K,
  options?: EventsHookOptions<D, T>,
): Array<TidingsEvent<MessageOf<EventsFor<never, D, T>, K>>>;
/** The same with the message type given: `useTidingsEvents<MyMessage>(url, type)`. */
export function useTidingsEvents<M>(
  url: string | null,
  type: string,
  options?: EventsHookOptions<Exclude<Decoder, SeedDecoder> | undefined>,
): Array<TidingsEvent<M>>;
