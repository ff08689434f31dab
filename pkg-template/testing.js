// A fake `connect` for app tests: managers that deliver what the test emits,
// with no wasm and no server. Use it with `<TidingsProvider connect={fake.connect}>`
// from `tidings/react`, or pass `fake.connect` wherever the app takes one.

/** A fake of the SDK's managers, one per URL and token. */
export function createFakeTidings() {
  const managers = new Map();
  const keyOf = (url, options) => `${url}\n${options?.token ?? ''}`;
  function connect(url, options) {
    const key = keyOf(url, options);
    let m = managers.get(key);
    if (!m) {
      m = new FakeManager(url, options?.decoder ?? null, () => managers.delete(key));
      managers.set(key, m);
    }
    return m;
  }
  return { connect, manager: connect };
}

class FakeManager {
  #listeners = [];
  #stateListeners = new Set();
  #errorListeners = new Set();
  #state = 'closed';
  #forget;

  constructor(url, decoder, forget) {
    this.url = url;
    this.decoder = decoder;
    this.lastEventId = null;
    this.tabRole = 'idle';
    this.#forget = forget;
  }

  get state() { return this.#state; }

  /** The number of event listeners (of `type`, or of every type). */
  listenerCount(type) {
    return this.#listeners.filter((l) => type === undefined || l.type === type).length;
  }

  on(type, listener) {
    const entry = { type, listener };
    this.#listeners.push(entry);
    if (this.#listeners.length === 1) { this.tabRole = 'solo'; this.setState('open'); }
    return () => {
      const before = this.#listeners.length;
      this.#listeners = this.#listeners.filter((l) => l !== entry);
      if (before > 0 && this.#listeners.length === 0) { this.tabRole = 'idle'; this.setState('closed'); }
    };
  }

  onState(listener) {
    this.#stateListeners.add(listener);
    listener(this.#state);
    return () => this.#stateListeners.delete(listener);
  }

  onError(listener) {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Delivers `message` to the listeners of `type` and of `'*'` (not for `heartbeat`). */
  emit(type, message, info = {}) {
    const id = info.id ?? null;
    if (id !== null) this.lastEventId = id;
    const event = info.event ?? type;
    const raw = info.raw ?? (typeof message === 'string' ? message : JSON.stringify(message));
    for (const l of [...this.#listeners]) {
      if (l.type === type || (l.type === '*' && type !== 'heartbeat')) {
        l.listener(message, { id, type: l.type === '*' ? type : l.type, event, raw });
      }
    }
  }

  /** Sets the state and tells the state listeners. */
  setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    for (const f of [...this.#stateListeners]) f(state);
  }

  /** Reports `error` to the error listeners. */
  error(error) {
    for (const f of [...this.#errorListeners]) f(error);
  }

  /** Acts like a wasm that could not load: state 'failed' and a `load` error. */
  fail(message = 'tidings: the SDK\'s wasm could not be loaded') {
    this.error({ kind: 'load', message });
    this.setState('failed');
  }

  close() {
    this.#listeners = [];
    this.setState('closed');
    this.#stateListeners.clear();
    this.#errorListeners.clear();
    this.#forget();
  }
}
