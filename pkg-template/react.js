// React bindings for Tidings: `import { useTidings } from 'tidings/react'`.
// SSR-safe: nothing here touches `window` until an effect runs in the browser.
import { useEffect, useRef, useState } from 'react';
import init, { connect } from './tidings.js';

let ready = null;
/** Loads the wasm once per page; later calls return the same promise. */
export function ensureInit() {
  if (ready === null) ready = init();
  return ready;
}

// Options are compared by value (functions such as getToken by identity),
// so an inline `{ token }` object does not resubscribe on every render.
function optionsKey(options) {
  if (!options) return '';
  return JSON.stringify(options, (_k, v) => (typeof v === 'function' ? `fn:${v.name}` : v));
}

/**
 * Subscribes `handler(message, info)` to events of `type` on the stream at `url`
 * for the lifetime of the component. Pass `url = null` to stay unsubscribed.
 * The manager is shared: several components (and StrictMode's double mount)
 * use one connection. The newest `handler` is always called; changing it does
 * not resubscribe. Returns nothing; see `useTidingsState` for the state.
 */
export function useTidings(url, type, handler, options) {
  const handlerRef = useRef(handler);
  useEffect(() => { handlerRef.current = handler; });
  const key = optionsKey(options);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  useEffect(() => {
    if (!url) return undefined;
    let cancelled = false;
    let off = null;
    // init() is async: under StrictMode the first mount is cleaned up before
    // it resolves, so `cancelled` is already set and no listener is added.
    ensureInit().then(() => {
      if (cancelled) return;
      const manager = connect(url, optionsRef.current ?? {});
      off = manager.on(type, (message, info) => handlerRef.current?.(message, info));
    });
    return () => {
      cancelled = true;
      if (off) off();
    };
  }, [url, type, key]);
}

/**
 * The connection state of the stream at `url`: 'idle' until the SDK is loaded,
 * then 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'.
 * Observing the state does not open the connection; listeners do.
 */
export function useTidingsState(url, options) {
  const [state, setState] = useState('idle');
  const key = optionsKey(options);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  useEffect(() => {
    if (!url) return undefined;
    let cancelled = false;
    let off = null;
    ensureInit().then(() => {
      if (cancelled) return;
      off = connect(url, optionsRef.current ?? {}).onState((s) => setState(s));
    });
    return () => {
      cancelled = true;
      if (off) off();
    };
  }, [url, key]);
  return state;
}

/**
 * The most recent `limit` messages of `type` on `url` (newest last), kept in
 * component state; `onReset` (optional) runs when the server reports a gap so
 * the app can refetch. A convenience over `useTidings`.
 */
export function useTidingsEvents(url, type, { limit = 50, onReset, ...options } = {}) {
  const [events, setEvents] = useState([]);
  useTidings(url, type, (message, info) => {
    setEvents((prev) => [...prev, { message, info }].slice(-limit));
  }, options);
  useTidings(onReset ? url : null, 'reset', (message, info) => onReset?.(message, info), options);
  return events;
}
