// Types for `tidings/react`. The message and option types come from the
// generated bindings of the Rust crate (tidings.d.ts).
import type { ConnectOptions } from './tidings.js';

/** Metadata delivered with each event. */
export interface EventInfo {
  /** The SSE id, or null for per-connection events (greeting, heartbeat). */
  id: string | null;
  /** The event type the listener was registered for. */
  type: string;
  /** The raw `data` text of the event. */
  raw: string;
}

/** Connection state as seen by React: 'idle' until the wasm has loaded. */
export type TidingsHookState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed';

/** Loads the wasm once per page. */
export function ensureInit(): Promise<unknown>;

/** Subscribes `handler` to `type` events of the stream at `url` while mounted; `url = null` unsubscribes. */
export function useTidings<M = unknown>(
  url: string | null,
  type: string,
  handler: (message: M, info: EventInfo) => void,
  options?: ConnectOptions,
): void;

/** The connection state of the stream at `url`. */
export function useTidingsState(url: string | null, options?: ConnectOptions): TidingsHookState;

/** The last `limit` (default 50) messages of `type`, newest last; `onReset` runs on a server gap reset. */
export function useTidingsEvents<M = unknown>(
  url: string | null,
  type: string,
  options?: ConnectOptions & { limit?: number; onReset?: (message: unknown, info: EventInfo) => void },
): Array<{ message: M; info: EventInfo }>;
