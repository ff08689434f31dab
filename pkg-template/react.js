// React bindings for Tidings: `import { useTidings } from 'tidings/react'`.
// SSR-safe: nothing here touches `window` until an effect runs in the browser.
import { createContext, createElement, useContext, useEffect, useRef, useState } from 'react';
import init, { connect } from './index.js';

/** Loads the wasm ahead of the first hook (optional: the hooks load it on first use). */
export function ensureInit() {
  return init();
}

// Development builds warn about options that lose to the first caller's.
// Bundlers replace `process.env.NODE_ENV`; unbundled ESM has no `process`.
const dev = (() => {
  try {
    return process.env.NODE_ENV !== 'production';
  } catch {
    return true;
  }
})();

const ConnectContext = createContext(null);

/**
 * Makes the hooks below it use `connect` instead of the SDK's (a fake from
 * `tidings/testing` in tests, so components render without a server).
 */
export function TidingsProvider({ connect: connectFn, children }) {
  return createElement(ConnectContext.Provider, { value: connectFn ?? null }, children);
}

// Functions are told apart by identity (a new getToken closure is a change).
const functionIds = new WeakMap();
let nextFunctionId = 1;
function functionId(f) {
  if (!functionIds.has(f)) functionIds.set(f, nextFunctionId++);
  return functionIds.get(f);
}

// '' for no options. `identity`: functions by identity; else all functions
// are equal, so an inline closure does not resubscribe on every render.
function optionsKey(options, identity) {
  if (!options || Object.keys(options).length === 0) return '';
  return JSON.stringify(options, (_k, v) => (typeof v === 'function' ? (identity ? `fn#${functionId(v)}` : 'fn') : v));
}

// The options each manager was first used with from a hook (first options win).
const firstOptions = new WeakMap();

function checkOptions(manager, url, options) {
  if (!dev) return;
  const key = optionsKey(options, true);
  const first = firstOptions.get(manager);
  if (!first) {
    firstOptions.set(manager, { key, warned: false });
    return;
  }
  if (key === '' || key === first.key || first.warned) return;
  first.warned = true;
  console.warn(
    `tidings/react: ${url} is already in use with other options; the first options win and these are ignored. `
    + 'Pass the same options everywhere, and keep functions such as getToken stable (useCallback, or defined outside the component).',
  );
}

// Runs `attach(manager)` (which returns an unsubscribe function) while the
// component is mounted and `url`, the options' values and `deps` stay the same.
function useManager(url, options, attach, deps) {
  const connectFn = useContext(ConnectContext) ?? connect;
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const attachRef = useRef(attach);
  attachRef.current = attach;
  const managerRef = useRef(null);
  const key = optionsKey(options, false);
  useEffect(() => {
    if (!url) return undefined;
    const manager = connectFn(url, optionsRef.current);
    checkOptions(manager, url, optionsRef.current);
    managerRef.current = manager;
    const off = attachRef.current(manager);
    return () => {
      managerRef.current = null;
      off();
    };
  }, [url, key, connectFn, ...deps]);
  // A changed function (say, a new getToken closure) does not resubscribe: warn instead.
  useEffect(() => {
    if (managerRef.current) checkOptions(managerRef.current, url, options);
  });
}

/**
 * Subscribes `handler(message, info)` to events of `type` on the stream at `url`
 * for the lifetime of the component. Pass `url = null` to stay unsubscribed.
 * The manager is shared: several components (and StrictMode's double mount)
 * use one connection. The newest `handler` is always called; changing it does
 * not resubscribe.
 */
export function useTidings(url, type, handler, options) {
  const handlerRef = useRef(handler);
  useEffect(() => { handlerRef.current = handler; });
  useManager(url, options, (manager) => manager.on(type, (message, info) => handlerRef.current?.(message, info)), [type]);
}

const IDLE = { state: 'idle', error: null };

/**
 * `{state, error}` of the stream at `url`: state 'idle' until subscribed, then
 * the manager's state ('failed' when the wasm could not load); error is the
 * last `onError` value since (null if none). Does not open the connection.
 */
export function useTidingsStatus(url, options) {
  const [status, setStatus] = useState(IDLE);
  useManager(url, options, (manager) => {
    setStatus({ state: manager.state, error: null });
    const offState = manager.onState((state) => setStatus((s) => (s.state === state ? s : { ...s, state })));
    const offError = manager.onError((error) => setStatus((s) => ({ ...s, error })));
    return () => {
      offState();
      offError();
    };
  }, []);
  return status;
}

/** The connection state of the stream at `url` (see `useTidingsStatus`). */
export function useTidingsState(url, options) {
  return useTidingsStatus(url, options).state;
}

const NO_EVENTS = [];

/**
 * The most recent `limit` messages of `type` on `url` (newest last), kept in
 * component state and started afresh when `url` or `type` changes; `onReset`
 * (optional) runs when the server reports a gap so the app can refetch.
 */
export function useTidingsEvents(url, type, { limit = 50, onReset, ...options } = {}) {
  const [store, setStore] = useState({ stream: null, events: NO_EVENTS });
  const limitRef = useRef(limit);
  limitRef.current = limit;
  const stream = url ? `${url}\n${type}` : null;
  useManager(url, options, (manager) => manager.on(type, (message, info) => {
    setStore((prev) => ({
      stream,
      events: [...(prev.stream === stream ? prev.events : []), { message, info }].slice(-limitRef.current),
    }));
  }), [type]);
  useTidings(onReset ? url : null, 'reset', (message, info) => onReset?.(message, info), options);
  return store.stream === stream ? store.events : NO_EVENTS;
}
