//! The JS API exported through wasm-bindgen: `connect()`, `isSupported()` and class `Manager`.
//!
//! Listener values are copied into owned JS objects at once; nothing here
//! throws at the wasm boundary except `connect` on a bad URL or bad options.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::rc::Rc;

use super::listeners::{Cb, Kind};
use super::manager::{tab_sharing_supported, Manager};
use super::platform::{error_text, noop};
use super::token;
use crate::dispatch::ListenerId;
use crate::messages::Custom;
use crate::options::{DecodeFn, Options, Poll};

/// The second argument of every event listener (TypeScript type only; built
/// with `Reflect` for speed).
#[allow(dead_code)]
#[derive(Serialize, tsify_next::Tsify)]
pub struct EventInfo {
    /// This event's own SSE id, or null when it had none (greeting, heartbeat).
    #[tsify(type = "string | null")]
    pub id: Option<String>,
    /// The last event id seen on the stream, this event's or an earlier one's
    /// (what `MessageEvent.lastEventId` means), or null before any.
    #[serde(rename = "lastEventId")]
    #[tsify(type = "string | null")]
    pub last_event_id: Option<String>,
    /// The type the listener registered for (for `*`: the payload `type` of an
    /// unnamed event, else the SSE event name).
    #[serde(rename = "type")]
    pub ty: String,
    /// The SSE event name (`message` for unnamed events).
    pub event: String,
    /// The raw `data` text.
    pub raw: String,
}

/// What `onError` listeners receive (TypeScript type only).
#[allow(dead_code)]
#[derive(Serialize, tsify_next::Tsify)]
pub struct TidingsError {
    /// `decode` | `http` | `network` | `auth` | `protocol`, or `load` when the
    /// package's JS entry could not load the wasm.
    #[tsify(type = "'decode' | 'http' | 'network' | 'auth' | 'protocol' | 'load'")]
    pub kind: String,
    /// Human-readable reason.
    pub message: String,
    /// The raw event data (decode errors) or response body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The HTTP status, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[wasm_bindgen(typescript_custom_section)]
const TS_HOOKS: &'static str = r#"
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
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_EXTRA: &'static str = r#"
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
"#;

/// A stream manager (one per absolute URL and token per page). Get it from
/// `connect()`; the same URL and token always give the same object.
#[wasm_bindgen(js_name = Manager)]
pub struct JsManager {
    m: Manager,
}

impl JsManager {
    /// `this.<method>.bind(this, id)`: an unsubscribe function with no Rust closure.
    fn unsubscriber(&self, method: &str, id: ListenerId) -> js_sys::Function {
        let handle = self.m.inner().js_handle.borrow().clone();
        match handle {
            Some(h) if id.0 != 0 => js_sys::Reflect::get(&h, &method.into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .map(|f| -> js_sys::Function {
                    JsValue::from(f.bind1(&h, &JsValue::from(id.0 as f64))).unchecked_into()
                })
                .unwrap_or_else(noop),
            _ => noop(),
        }
    }
}

#[wasm_bindgen(js_class = Manager)]
impl JsManager {
    /// Listens for events of `type`: an SSE event name (`message` for unnamed
    /// events), a payload `type` of unnamed events (`create`, `task`, …), or
    /// `'*'` for every event. The first listener opens the connection; when
    /// the last one unsubscribes it closes. Returns the unsubscribe function.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        r#type: &str,
        #[wasm_bindgen(unchecked_param_type = "Listener")] listener: js_sys::Function,
    ) -> js_sys::Function {
        let id = self
            .m
            .inner()
            .add_listener(r#type, Cb::Js(Rc::new(listener)));
        self.unsubscriber("off", id)
    }

    /// Listens for state changes; called at once with the current state.
    /// Does not open the connection. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onState, unchecked_return_type = "() => void")]
    pub fn on_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(state: ConnectionState) => void")]
        listener: js_sys::Function,
    ) -> js_sys::Function {
        let id = self.m.inner().add_state_listener(Cb::Js(Rc::new(listener)));
        self.unsubscriber("offState", id)
    }

    /// Listens for errors: `{kind, message, raw?, status?}`. Decode failures
    /// carry the raw text; the stream goes on. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onError, unchecked_return_type = "() => void")]
    pub fn on_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(error: TidingsError) => void")]
        listener: js_sys::Function,
    ) -> js_sys::Function {
        let id = self.m.inner().add_error_listener(Cb::Js(Rc::new(listener)));
        self.unsubscriber("offError", id)
    }

    /// Removes an event listener by id (what the function returned by `on` calls).
    pub fn off(&self, id: f64) {
        self.m.inner().remove(Kind::Event, ListenerId(id as u64));
    }

    /// Removes a state listener by id (what the function returned by `onState` calls).
    #[wasm_bindgen(js_name = offState)]
    pub fn off_state(&self, id: f64) {
        self.m.inner().remove(Kind::State, ListenerId(id as u64));
    }

    /// Removes an error listener by id (what the function returned by `onError` calls).
    #[wasm_bindgen(js_name = offError)]
    pub fn off_error(&self, id: f64) {
        self.m.inner().remove(Kind::Error, ListenerId(id as u64));
    }

    /// `'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'`.
    #[wasm_bindgen(getter, unchecked_return_type = "ConnectionState")]
    pub fn state(&self) -> String {
        self.m.state().as_str().to_owned()
    }

    /// The id of the last event received (the resume position), or null.
    #[wasm_bindgen(getter, js_name = lastEventId)]
    pub fn last_event_id(&self) -> Option<String> {
        self.m.last_event_id()
    }

    /// Events dropped as duplicates so far (only ever the repeated numeric ids
    /// of a server that speaks Tidings; every drop is counted here).
    #[wasm_bindgen(getter)]
    pub fn duplicates(&self) -> f64 {
        self.m.duplicates() as f64
    }

    /// Whether the stream speaks the Tidings protocol (the server announced
    /// it, or `protocol: 'tidings'`); any other server is spoken to as plain SSE.
    #[wasm_bindgen(getter, js_name = speaksTidings)]
    pub fn speaks_tidings(&self) -> bool {
        self.m.speaks_tidings()
    }

    /// This tab's part in sharing the connection across tabs: `'leader'`
    /// (holds it), `'follower'` (gets the leader's relays), `'idle'` (no
    /// listeners) or `'solo'` (own connection: `shareAcrossTabs: false`, or no
    /// Web Locks / BroadcastChannel).
    #[wasm_bindgen(getter, js_name = tabRole, unchecked_return_type = "'leader' | 'follower' | 'idle' | 'solo'")]
    pub fn tab_role(&self) -> String {
        self.m.tab_role().to_owned()
    }

    /// The absolute stream URL.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.m.url().to_owned()
    }

    /// The decoder in use.
    #[wasm_bindgen(getter, unchecked_return_type = "Decoder")]
    pub fn decoder(&self) -> String {
        self.m.decoder().as_str().to_owned()
    }

    /// Closes the connection for good, drops every listener and removes the
    /// manager from the registry (a later `connect` makes a new one).
    pub fn close(&self) {
        self.m.close();
    }
}

/// The manager for `url` (relative URLs resolve against the page) and
/// `options.token`: the same object for the same absolute URL and token.
/// Touches no browser API until the first listener is added. Throws on an
/// invalid URL or options.
#[wasm_bindgen(skip_typescript)]
pub fn connect(
    url: &str,
    #[wasm_bindgen(unchecked_param_type = "ConnectOptions")] options: Option<JsValue>,
) -> Result<JsValue, JsError> {
    let options = options.unwrap_or(JsValue::UNDEFINED);
    let options = if options.is_undefined() || options.is_null() {
        Options::default()
    } else {
        let mut o = Options::from_doc(&options)
            .map_err(|e| JsError::new(&["tidings: invalid options: ", &e].concat()))?;
        o.get_token = token::from_js(&options);
        read_hooks(&options, &mut o)?;
        o
    };
    let m = Manager::open(url, options).map_err(|e| JsError::new(&e.to_string()))?;
    let inner = m.inner().clone();
    let existing = inner.js_handle.borrow().clone();
    if let Some(h) = existing {
        return Ok(h);
    }
    let h = JsValue::from(JsManager { m });
    *inner.js_handle.borrow_mut() = Some(h.clone());
    Ok(h)
}

/// Whether this environment has what the default transport needs (`EventSource`).
#[wasm_bindgen(js_name = isSupported)]
pub fn is_supported() -> bool {
    js_sys::Reflect::has(&super::platform::global(), &"EventSource".into()).unwrap_or(false)
}

/// Whether tabs can share one connection here (Web Locks and
/// BroadcastChannel). Without them every tab opens its own connection.
#[wasm_bindgen(js_name = isTabSharingSupported)]
pub fn is_tab_sharing_supported() -> bool {
    tab_sharing_supported()
}

/// The function-valued options of a JS options object (JSON leaves them out):
/// `poll`, `decode`, `fetch` and `onOpen`. Any other non-function value
/// there is an error, never ignored.
fn read_hooks(js: &JsValue, o: &mut Options) -> Result<(), JsError> {
    let function = |name: &str| -> Result<Option<js_sys::Function>, JsError> {
        let v = js_sys::Reflect::get(js, &name.into()).unwrap_or(JsValue::UNDEFINED);
        if v.is_function() {
            return Ok(Some(v.unchecked_into()));
        }
        Ok(None)
    };
    if let Some(f) = function("poll")? {
        o.poll = Poll::Function;
        o.js.poll = Some(f);
    }
    for name in ["decode", "fetch", "onOpen"] {
        let v = js_sys::Reflect::get(js, &name.into()).unwrap_or(JsValue::UNDEFINED);
        if !v.is_undefined() && !v.is_null() && !v.is_function() {
            return Err(JsError::new(
                &["tidings: invalid options: ", name, " must be a function"].concat(),
            ));
        }
    }
    if let Some(f) = function("decode")? {
        o.decode = Some(DecodeFn::raw(move |data, event| {
            let value = f
                .call2(
                    &JsValue::NULL,
                    &JsValue::from_str(data),
                    &JsValue::from_str(event),
                )
                .map_err(|e| ["decode threw: ", &error_text(&e)].concat())?;
            let ty = js_sys::Reflect::get(&value, &"type".into())
                .ok()
                .and_then(|t| t.as_string());
            Ok(Custom::new(Rc::new(value), ty))
        }));
    }
    o.js.fetch = function("fetch")?;
    o.js.on_open = function("onOpen")?;
    Ok(())
}
