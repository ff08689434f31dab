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

// Runs `attach(manager)` (which returns an unsubscribe function) while the
// component is mounted and `url`/`options`/`deps` stay the same. init() is
// async: under StrictMode the first mount is cleaned up before it resolves,
// so `cancelled` is already set and nothing is attached twice.
function useManager(url, options, attach, deps) {
  const key = optionsKey(options);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const attachRef = useRef(attach);
  attachRef.current = attach;
  useEffect(() => {
    if (!url) return undefined;
    let cancelled = false;
    let off = null;
    ensureInit().then(() => {
      if (!cancelled) off = attachRef.current(connect(url, optionsRef.current ?? {}));
    });
    return () => {
      cancelled = true;
      if (off) off();
    };
  }, [url, key, ...deps]);
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
  useManager(url, options, (manager) => manager.on(type, (message, info) => handlerRef.current?.(message, info)), [type]);
}

/**
 * The connection state of the stream at `url`: 'idle' until the SDK is loaded,
 * then 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'.
 * Observing the state does not open the connection; listeners do.
 */
export function useTidingsState(url, options) {
  const [state, setState] = useState('idle');
  useManager(url, options, (manager) => manager.onState((s) => setState(s)), []);
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
