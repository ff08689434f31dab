// The package entry: `connect()` with no init step. The wasm loads on first
// use; until it has, each manager is a thin stand-in that keeps its listeners
// and hands them to the wasm manager once that exists. Importing this module
// touches no browser global (SSR-safe); only connect() and init() do.
import wasmInit, { initSync as wasmInitSync, connect as wasmConnect } from './tidings.js';

let loading = null; // the load in flight or done (null: not started, or failed)
let loaded = false;
const waiting = new Map(); // stand-ins created before the wasm loaded, by registry key
const byHandle = new WeakMap(); // wasm manager -> its Manager

/** Loads the wasm (default: `tidings_bg.wasm` next to the glue). Idempotent; optional. */
export default function init(input) {
  if (loading === null) {
    const arg = input === undefined || (typeof input === 'object' && input !== null && 'module_or_path' in input)
      ? input : { module_or_path: input };
    loading = wasmInit(arg).then(
      () => { loaded = true; attachWaiting(); },
      (e) => {
        loading = null; // the next connect() or init() tries again
        failWaiting(`tidings: the SDK's wasm could not be loaded: ${e?.message ?? e}`);
        throw e;
      },
    );
  }
  return loading;
}

/** Instantiates the wasm synchronously from bytes or a compiled `WebAssembly.Module`. */
export function initSync(module) {
  wasmInitSync(typeof module === 'object' && module !== null && 'module' in module ? module : { module });
  loaded = true;
  loading = Promise.resolve();
  attachWaiting();
}

function attachWaiting() {
  for (const m of waiting.values()) m._attach();
  waiting.clear();
}

function failWaiting(reason) {
  for (const m of waiting.values()) m._fail(reason);
  waiting.clear();
}

/** The manager for `url` and `options.token`: the same object for the same absolute URL and token. */
export function connect(url, options) {
  if (loaded) return managerOf(wasmConnect(url, options ?? undefined));
  let href;
  try {
    href = new URL(url, globalThis.location?.href).href;
  } catch {
    throw new Error(`tidings: invalid URL ${JSON.stringify(String(url))}`);
  }
  const key = identityKey(href, options);
  let m = waiting.get(key);
  if (!m) {
    m = new Manager(href, options);
    waiting.set(key, m);
    init().catch(() => {}); // reported to the manager's onError as kind 'load'
  }
  return m;
}

// What makes two managers different streams, as the wasm registry decides:
// the URL, the token, the headers, the method and the body.
function identityKey(href, options) {
  const headers = Object.entries(options?.headers ?? {})
    .map(([k, v]) => [k.toLowerCase(), String(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const body = options?.body === undefined ? null : options.body;
  return JSON.stringify([href, options?.token ?? '', headers, (options?.method ?? 'GET').toUpperCase(), body]);
}

function managerOf(handle) {
  let m = byHandle.get(handle);
  if (!m) {
    m = new Manager(handle.url, undefined);
    byHandle.set(handle, m);
    m._forward(handle);
  }
  return m;
}

/** Whether this environment has what the default transport needs (`EventSource`). */
export function isSupported() {
  return typeof globalThis.EventSource === 'function';
}

/** Whether tabs can share one connection here (Web Locks and BroadcastChannel). */
export function isTabSharingSupported() {
  return typeof globalThis.navigator?.locks?.request === 'function' && typeof globalThis.BroadcastChannel === 'function';
}

/** A stream manager; see index.d.ts. Forwards to the wasm manager once it exists. */
class Manager {
  #url;
  #options;
  #wasm = null;
  #queued = []; // {type, listener, off} registered before the wasm loaded
  #stateListeners = new Set();
  #errorListeners = new Set();
  #shown = null; // the state last told to state listeners
  #failure = null; // the load error, once failed
  #closed = false;

  constructor(url, options) {
    this.#url = url;
    this.#options = options;
  }

  // Called once the wasm has loaded: from here on the wasm manager does the work.
  _attach() {
    if (this.#closed) return;
    let handle;
    try {
      handle = wasmConnect(this.#url, this.#options ?? undefined);
    } catch (e) {
      this._fail(e?.message ?? String(e)); // options the wasm rejected
      return;
    }
    byHandle.set(handle, this);
    this._forward(handle);
  }

  _forward(target) {
    for (const q of this.#queued) q.off = target.on(q.type, q.listener);
    this.#queued = [];
    this.#wasm = target;
    target.onState(() => this.#showState());
    target.onError((e) => { for (const f of [...this.#errorListeners]) f(e); });
  }

  _fail(reason) {
    this.#failure = { kind: 'load', message: reason };
    this.#queued = [];
    for (const f of [...this.#errorListeners]) f(this.#failure);
    this.#showState();
  }

  #showState() {
    const s = this.state;
    if (s === this.#shown) return;
    this.#shown = s;
    for (const f of [...this.#stateListeners]) f(s);
  }

  on(type, listener) {
    if (this.#wasm) return this.#wasm.on(type, listener);
    if (this.#failure || this.#closed) return () => {};
    const q = { type, listener, off: null };
    this.#queued.push(q);
    this.#showState();
    return () => {
      if (q.off) q.off();
      else {
        this.#queued = this.#queued.filter((x) => x !== q);
        this.#showState();
      }
    };
  }

  onState(listener) {
    if (this.#closed) { listener(this.state); return () => {}; }
    this.#stateListeners.add(listener);
    listener(this.state);
    return () => this.#stateListeners.delete(listener);
  }

  onError(listener) {
    if (this.#closed) return () => {};
    this.#errorListeners.add(listener);
    if (this.#failure) listener(this.#failure);
    return () => this.#errorListeners.delete(listener);
  }

  get state() {
    if (this.#wasm) return this.#wasm.state;
    if (this.#failure) return 'failed';
    return this.#queued.length > 0 ? 'connecting' : 'closed';
  }

  get lastEventId() { return this.#wasm?.lastEventId ?? null; }
  get duplicates() { return this.#wasm?.duplicates ?? 0; }
  get speaksTidings() { return this.#wasm?.speaksTidings ?? this.#options?.protocol === 'tidings'; }
  get tabRole() { return this.#wasm?.tabRole ?? 'idle'; }
  get url() { return this.#wasm?.url ?? this.#url; }
  get decoder() { return this.#wasm?.decoder ?? this.#options?.decoder ?? 'auto'; }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#queued = [];
    if (this.#wasm) this.#wasm.close();
    else for (const [k, m] of waiting) if (m === this) waiting.delete(k);
    if (this.#wasm === null) this.#showState();
    this.#stateListeners.clear();
    this.#errorListeners.clear();
  }
}
