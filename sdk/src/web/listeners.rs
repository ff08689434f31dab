//! The listeners of one manager (Rust closures or JS functions) and calling
//! them: events are decoded once and dispatched by the rule of
//! [`crate::dispatch`]; JS listeners get plain JS values built at the boundary.
//!
//! The registry is borrowed only between calls, never while a listener runs,
//! so a listener may call `on`, `off` or `close`; a listener removed by an
//! earlier one of the same event is skipped.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::json::{js_name, parse_js};
use super::platform::error_text;
use crate::connection::{ErrorInfo, ErrorKind, State};
use crate::dispatch::{Dispatcher, ListenerId};
use crate::messages::{DecodeError, Decoder, Message};
use crate::options::DecodeFn;
use crate::parser::SseEvent;
use crate::shape::check;

/// One event as a Rust listener receives it.
#[derive(Debug, Clone)]
pub struct Event {
    /// This event's own SSE id, or `None` when it had none (greeting, heartbeat).
    pub id: Option<String>,
    /// The last event id seen on the stream, this event's or an earlier one's
    /// (what `MessageEvent.lastEventId` means in the WHATWG spec).
    pub last_event_id: Option<String>,
    /// The SSE event name (`message` for unnamed events).
    pub event: String,
    /// The type this listener matched (its registered type; for `*`, the
    /// payload `type` of an unnamed event, else the event name).
    pub ty: String,
    /// The raw `data` text.
    pub raw: String,
    /// The decoded message.
    pub message: Rc<Message>,
}

/// A listener: a Rust closure or a JS function.
pub(crate) enum Cb<F: ?Sized> {
    Rust(Rc<F>),
    Js(js_sys::Function),
}

impl<F: ?Sized> Clone for Cb<F> {
    fn clone(&self) -> Self {
        match self {
            Cb::Rust(f) => Cb::Rust(f.clone()),
            Cb::Js(f) => Cb::Js(f.clone()),
        }
    }
}

pub(crate) type EventCb = Cb<dyn Fn(&Event)>;
pub(crate) type StateCb = Cb<dyn Fn(State)>;
pub(crate) type ErrorCb = Cb<dyn Fn(&ErrorInfo)>;

/// Which registry a listener id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event,
    State,
    Error,
}

#[derive(Default)]
struct Registry {
    events: Dispatcher<EventCb>,
    states: Dispatcher<StateCb>,
    errors: Dispatcher<ErrorCb>,
}

/// How events are decoded: the app's `decode`, else the `decoder`; `tidings`
/// says whether `reset` and `end` are the protocol's.
pub(crate) struct Decoding<'a> {
    pub(crate) decoder: Decoder,
    pub(crate) decode: Option<&'a DecodeFn>,
    pub(crate) tidings: bool,
}

/// The typed decoder for Rust listeners ([`decode_event`]); handed over by
/// the Rust API when it adds a listener, so a build that only serves JS
/// listeners (the npm package) links none of it.
pub(crate) type TypedDecode = fn(Decoder, &str, &str, bool) -> Result<Message, DecodeError>;

/// One event, decoded once for all its listeners.
struct Decoded {
    /// What JS listeners get: the parsed payload, the raw text, or the app
    /// decoder's value.
    js: JsValue,
    /// What Rust listeners get (only once a Rust listener was added).
    rust: Option<Rc<Message>>,
    /// The payload's `type` (dispatch rule).
    payload_type: Option<String>,
    /// Keep-alive only (reaches `heartbeat` listeners only).
    keepalive: bool,
}

impl Decoding<'_> {
    fn decode(
        &self,
        ev: &SseEvent,
        raw: &JsValue,
        typed: Option<TypedDecode>,
    ) -> Result<Decoded, String> {
        if let Some(f) = self.decode {
            let c = f.call(&ev.data, &ev.event)?;
            let js = c.get::<JsValue>().cloned().unwrap_or(JsValue::NULL);
            let m = Message::Custom(c);
            return Ok(Decoded {
                js,
                payload_type: m.payload_type().map(str::to_owned),
                keepalive: m.is_keepalive(&ev.event),
                rust: Some(Rc::new(m)),
            });
        }
        if let Some(typed) = typed {
            let m = typed(self.decoder, &ev.event, &ev.data, self.tidings)
                .map_err(|e| e.to_string())?;
            return Ok(Decoded {
                js: message_to_js(&m, raw),
                payload_type: m.payload_type().map(str::to_owned),
                keepalive: m.is_keepalive(&ev.event),
                rust: Some(Rc::new(m)),
            });
        }
        let c = check::<JsValue>(self.decoder, &ev.event, self.tidings, || {
            parse_js(raw).map_err(|e| error_text(&e))
        })
        .map_err(|e| e.to_string())?;
        Ok(Decoded {
            keepalive: c.is_keepalive(&ev.event),
            js: c.value.unwrap_or_else(|| raw.clone()),
            payload_type: c.payload_type,
            rust: None,
        })
    }
}

/// Every listener of one manager.
#[derive(Default)]
pub(crate) struct Listeners(RefCell<Registry>, Cell<Option<TypedDecode>>);

impl Listeners {
    /// Registers an event listener; also says whether it is the first one
    /// (which opens the connection).
    pub(crate) fn add_event(&self, ty: &str, cb: EventCb) -> (ListenerId, bool) {
        let mut r = self.0.borrow_mut();
        let first = r.events.is_empty();
        (r.events.add(ty, cb), first)
    }

    /// From now on events are also decoded into [`Message`]s (a Rust listener is added).
    pub(crate) fn decode_typed(&self, f: TypedDecode) {
        self.1.set(Some(f));
    }

    /// Registers a state listener and calls it at once with `current`.
    pub(crate) fn add_state(&self, cb: StateCb, current: impl FnOnce() -> State) -> ListenerId {
        let id = self.0.borrow_mut().states.add("*", cb.clone());
        call_state(&cb, current());
        id
    }

    /// Registers an error listener.
    pub(crate) fn add_error(&self, cb: ErrorCb) -> ListenerId {
        self.0.borrow_mut().errors.add("*", cb)
    }

    /// Removes a registration; true when it was the last event listener
    /// (which closes the connection).
    pub(crate) fn remove(&self, kind: Kind, id: ListenerId) -> bool {
        let mut r = self.0.borrow_mut();
        match kind {
            Kind::Event => r.events.remove(id) && r.events.is_empty(),
            Kind::State => {
                r.states.remove(id);
                false
            }
            Kind::Error => {
                r.errors.remove(id);
                false
            }
        }
    }

    /// Whether any event listener is registered.
    pub(crate) fn has_events(&self) -> bool {
        !self.0.borrow().events.is_empty()
    }

    /// The distinct event listener types (the `EventSource` listens for these names).
    pub(crate) fn event_types(&self) -> Vec<String> {
        self.0.borrow().events.types()
    }

    /// Drops every event listener.
    pub(crate) fn clear_events(&self) {
        self.0.borrow_mut().events.clear();
    }

    /// Drops the state and error listeners.
    pub(crate) fn clear_rest(&self) {
        let mut r = self.0.borrow_mut();
        r.states.clear();
        r.errors.clear();
    }

    /// Tells every state listener.
    pub(crate) fn emit_state(&self, s: State) {
        let targets = self.0.borrow().states.targets("*", None, false);
        for t in targets {
            if self.0.borrow().states.contains(t.id) {
                call_state(&t.listener, s);
            }
        }
    }

    /// Tells every error listener.
    pub(crate) fn emit_error(&self, e: &ErrorInfo) {
        let targets = self.0.borrow().errors.targets("*", None, false);
        let js = OnceCell::new();
        for t in targets {
            if !self.0.borrow().errors.contains(t.id) {
                continue;
            }
            match &t.listener {
                Cb::Rust(f) => f(e),
                Cb::Js(f) => report(f.call1(&JsValue::NULL, js.get_or_init(|| error_to_js(e)))),
            }
        }
    }

    /// Decodes once and dispatches. A failed decode goes to error listeners
    /// with the raw text; the stream goes on. `last_event_id`: the stream's
    /// last id as of this event (WHATWG `lastEventId`).
    pub(crate) fn deliver(&self, decoding: &Decoding, ev: SseEvent, last_event_id: Option<&str>) {
        let raw = JsValue::from_str(&ev.data);
        let decoded = match decoding.decode(&ev, &raw, self.1.get()) {
            Ok(d) => d,
            Err(e) => {
                let message = ["`", &ev.event, "` event: ", &e].concat();
                let mut info = ErrorInfo::new(ErrorKind::Decode, message);
                info.raw = Some(ev.data);
                self.emit_error(&info);
                return;
            }
        };
        let targets = self.0.borrow().events.targets(
            &ev.event,
            decoded.payload_type.as_deref(),
            decoded.keepalive,
        );
        let id = ev.id.filter(|s| !s.is_empty());
        let js = OnceCell::new();
        for t in targets {
            if !self.0.borrow().events.contains(t.id) {
                continue;
            }
            match &t.listener {
                Cb::Rust(f) => {
                    let Some(message) = &decoded.rust else {
                        continue;
                    };
                    f(&Event {
                        id: id.clone(),
                        last_event_id: last_event_id.map(str::to_owned),
                        event: ev.event.clone(),
                        ty: t.matched,
                        raw: ev.data.clone(),
                        message: message.clone(),
                    })
                }
                Cb::Js(f) => {
                    let js = js.get_or_init(|| {
                        JsEvent::new(&raw, &ev.event, id.as_deref(), last_event_id)
                    });
                    report(f.call2(&JsValue::NULL, &decoded.js, &js.info(&t.matched)));
                }
            }
        }
    }
}

/// The property names of `EventInfo`, made once: every string handed from
/// wasm to JS is a copy and a UTF-8 decode, the dearest part of an event.
struct InfoKeys {
    id: JsValue,
    last_event_id: JsValue,
    ty: JsValue,
    event: JsValue,
    raw: JsValue,
}

thread_local! {
    static KEYS: InfoKeys = InfoKeys {
        id: JsValue::from_str("id"),
        last_event_id: JsValue::from_str("lastEventId"),
        ty: JsValue::from_str("type"),
        event: JsValue::from_str("event"),
        raw: JsValue::from_str("raw"),
    };
}

/// One event's JS values, made once for all its JS listeners: the payload
/// and what `EventInfo` holds besides the matched type.
struct JsEvent {
    id: JsValue,
    last_event_id: JsValue,
    event: JsValue,
    raw: JsValue,
}

impl JsEvent {
    fn new(raw: &JsValue, event: &str, id: Option<&str>, last_event_id: Option<&str>) -> JsEvent {
        let id_js = id.map_or(JsValue::NULL, JsValue::from_str);
        let last_event_id = match last_event_id {
            Some(l) if Some(l) == id => id_js.clone(),
            l => l.map_or(JsValue::NULL, JsValue::from_str),
        };
        JsEvent {
            id: id_js,
            last_event_id,
            event: js_name(event),
            raw: raw.clone(),
        }
    }

    /// The second argument of a JS event listener (`EventInfo`).
    fn info(&self, matched: &str) -> JsValue {
        let o = js_sys::Object::new();
        KEYS.with(|k| {
            let _ = js_sys::Reflect::set(&o, &k.id, &self.id);
            let _ = js_sys::Reflect::set(&o, &k.last_event_id, &self.last_event_id);
            let _ = js_sys::Reflect::set(&o, &k.ty, &js_name(matched));
            let _ = js_sys::Reflect::set(&o, &k.event, &self.event);
            let _ = js_sys::Reflect::set(&o, &k.raw, &self.raw);
        });
        o.into()
    }
}

/// Calls a state listener once with `s`.
pub(crate) fn call_state(cb: &StateCb, s: State) {
    match cb {
        Cb::Rust(f) => f(s),
        Cb::Js(f) => report(f.call1(&JsValue::NULL, &JsValue::from_str(s.as_str()))),
    }
}

/// A JS listener threw: report it on the console and carry on delivering.
fn report(r: Result<JsValue, JsValue>) {
    if let Err(e) = r {
        web_sys::console::error_2(&"tidings: listener threw".into(), &e);
    }
}

fn set(o: &js_sys::Object, k: &str, v: &JsValue) {
    let _ = js_sys::Reflect::set(o, &JsValue::from_str(k), v);
}

/// The JS value of a decoded message. Decoding validated `raw` against the
/// stream's type, so the browser's `JSON.parse` of the original text is that
/// typed object (extra fields the server adds pass through); no re-serialising
/// in wasm, which keeps the hand-off fast and the binary small.
fn message_to_js(m: &Message, raw: &JsValue) -> JsValue {
    match m {
        // The raw text (the `text` decoder, or `auto` on non-JSON data).
        Message::Text(_) => raw.clone(),
        // The app's own decoder: what its JS function returned, as is.
        Message::Custom(c) => c.get::<JsValue>().cloned().unwrap_or(JsValue::NULL),
        _ => parse_js(raw).unwrap_or(JsValue::NULL),
    }
}

/// What a JS error listener gets (`TidingsError`).
fn error_to_js(e: &ErrorInfo) -> JsValue {
    let o = js_sys::Object::new();
    set(&o, "kind", &JsValue::from_str(e.kind.as_str()));
    set(&o, "message", &JsValue::from_str(&e.message));
    if let Some(raw) = &e.raw {
        set(&o, "raw", &JsValue::from_str(raw));
    }
    if let Some(s) = e.status {
        set(&o, "status", &JsValue::from(s));
    }
    o.into()
}
