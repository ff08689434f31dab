// Types for `tidings/testing`: a fake `connect` for app tests.
import type { AnyEvents, ConnectionState, ConnectOptions, Decoder, EventInfo, Manager, TidingsError, connect } from './index.js';

/** A manager that delivers what the test emits. */
export interface FakeManager<E = AnyEvents> extends Manager<E> {
  /** Delivers `message` to the listeners of `type` and of `'*'` (not for `heartbeat`). */
  emit<K extends keyof E & string>(type: K, message: E[K], info?: Partial<EventInfo>): void;
  /** Sets the state and tells the state listeners. */
  setState(state: ConnectionState): void;
  /** Reports `error` to the error listeners. */
  error(error: TidingsError): void;
  /** Acts like a wasm that could not load: state 'failed' and a `load` error. */
  fail(message?: string): void;
  /** The number of event listeners (of `type`, or of every type). */
  listenerCount(type?: string): number;
}

/** What `createFakeTidings` returns. */
export interface FakeTidings {
  /** A drop-in for the SDK's `connect` (for `<TidingsProvider connect={…}>`). */
  connect: typeof connect;
  /** The fake manager for `url` (and `options.token`): the one the app's `connect` gets. */
  manager<E = AnyEvents>(url: string, options?: ConnectOptions & { decoder?: Decoder }): FakeManager<E>;
}

/** A fake of the SDK's managers, one per URL and token; no wasm, no server. */
export function createFakeTidings(): FakeTidings;
