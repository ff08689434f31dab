//! The listeners of one manager (Rust closures or JS functions) and calling
//! them: events are decoded once and dispatched by the rule of
//! [`crate::dispatch`]; JS listeners get plain JS values built at the boundary.
//!
//! The registry is borrowed only between calls, never while a listener runs,
//! so a listener may call `on`, `off` or `close`; a listener removed by an
//! earlier one of the same event is skipped.

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::json::{js_name, parse_js};
use super::platform::error_text;
use crate::connection::{ErrorInfo, ErrorKind, State};
use crate::dispatch::{Dispatcher, ListenerId};
use crate::messages::{decode_event, Decoder, Message};
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

/// A listener: a Rust closure or a JS function (in an `Rc`: each event's
/// targets hold a clone, and an `Rc` clones without a call out of wasm).
pub(crate) enum Cb<F: ?Sized> {
    Rust(Rc<F>),
    Js(Rc<js_sys::Function>),
}

impl<F: ?Sized> Clone for Cb<F> {
    fn clone(&self) -> Self {
        match self {
            Cb::Rust(f) => Cb::Rust(f.clone()),
            Cb::Js(f) => Cb::Js(f.clone()),
        }
    }
}

pub(crate) type EventCb = Cb<dyn Fn(&Delivery)>;

/// One event for one Rust listener, as [`Listeners::deliver`] has it; the
/// Rust API's wrapper ([`Delivery::event`]) makes the [`Event`]. Code that
/// owns a [`Message`] (its drop) is linked only by that wrapper, which the
/// npm package never makes.
pub(crate) struct Delivery<'a> {
    id: &'a Option<String>,
    last_event_id: Option<&'a str>,
    event: &'a str,
    ty: &'a str,
    raw: &'a str,
    message: &'a Option<Rc<dyn Any>>,
}

impl Delivery<'_> {
    /// The [`Event`] for the listener; `None` without a decoded [`Message`].
    pub(crate) fn event(&self) -> Option<Event> {
        let message = self.message.clone()?.downcast().ok()?;
        Some(Event {
            id: self.id.clone(),
            last_event_id: self.last_event_id.map(str::to_owned),
            event: self.event.to_owned(),
            ty: self.ty.to_owned(),
            raw: self.raw.to_owned(),
            message,
        })
    }
}
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

/// The decoding for Rust listeners ([`decode_for_rust`]); handed over by the
/// Rust API when it adds a listener, so a build that only serves JS
/// listeners (the npm package) links none of it: no typed decoders, no
/// [`Message`].
pub(crate) type TypedDecode = fn(&Decoding, &SseEvent, &JsValue) -> Result<Decoded, String>;

/// Decodes for Rust and JS listeners alike: the app's `decode` into a
/// [`Message::Custom`], else the typed decoder ([`decode_event`]).
pub(crate) fn decode_for_rust(
    d: &Decoding,
    ev: &SseEvent,
    raw: &JsValue,
) -> Result<Decoded, String> {
    let m = match d.decode {
        Some(f) => Message::Custom(f.call(&ev.data, &ev.event)?),
        None => {
            decode_event(d.decoder, &ev.event, &ev.data, d.tidings).map_err(|e| e.to_string())?
        }
    };
    Ok(Decoded {
        js: message_to_js(&m, raw),
        payload_type: m.payload_type().map(str::to_owned),
        keepalive: m.is_keepalive(&ev.event),
        rust: Some(Rc::new(m)),
    })
}

/// One event, decoded once for all its listeners.
pub(crate) struct Decoded {
    /// What JS listeners get: the parsed payload, the raw text, or the app
    /// decoder's value.
    js: JsValue,
    /// What Rust listeners get (only once a Rust listener was added): a
    /// [`Message`], kept as `Any` so the package links no code of it.
    rust: Option<Rc<dyn Any>>,
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
        if let Some(typed) = typed {
            return typed(self, ev, raw);
        }
        if let Some(f) = self.decode {
            // As `Message::Custom` routes it (a custom value is no typed heartbeat).
            let c = f.call(&ev.data, &ev.event)?;
            let payload_type = c.payload_type().map(str::to_owned);
            return Ok(Decoded {
                js: c.get::<JsValue>().cloned().unwrap_or(JsValue::NULL),
                keepalive: ev.event == "heartbeat"
                    || (ev.event == "message" && payload_type.as_deref() == Some("heartbeat")),
                payload_type,
                rust: None,
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
    /// with the raw text; the stream goes on. `earlier`: the stream's last id
    /// before this event, for an event without an id of its own (WHATWG
    /// `lastEventId`: an event's own id is its last id).
    ///
    /// `arrived`: the data as the JS string it arrived as (listeners get that
    /// very string); with `lazy` true it is only there, and is copied into
    /// `ev.data` when the text is needed in wasm (a decode error, the app's
    /// `decode`, a Rust listener).
    pub(crate) fn deliver(
        &self,
        decoding: &Decoding,
        mut ev: SseEvent,
        earlier: Option<&str>,
        arrived: Option<(JsValue, bool)>,
    ) {
        let (raw, mut lazy) = match arrived {
            Some((js, lazy)) => (js, lazy),
            None => (JsValue::from_str(&ev.data), false),
        };
        let typed = self.1.get();
        if lazy && (typed.is_some() || decoding.decode.is_some()) {
            ev.data = raw.as_string().unwrap_or_default();
            lazy = false;
        }
        let decoded = match decoding.decode(&ev, &raw, typed) {
            Ok(d) => d,
            Err(e) => {
                let message = ["`", &ev.event, "` event: ", &e].concat();
                let mut info = ErrorInfo::new(ErrorKind::Decode, message);
                info.raw = Some(if lazy {
                    raw.as_string().unwrap_or_default()
                } else {
                    ev.data
                });
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
        let last_event_id = if id.is_some() { id.as_deref() } else { earlier };
        let js = OnceCell::new();
        for t in targets {
            if !self.0.borrow().events.contains(t.id) {
                continue;
            }
            match &t.listener {
                Cb::Rust(f) => f(&Delivery {
                    raw: {
                        if std::mem::take(&mut lazy) {
                            ev.data = raw.as_string().unwrap_or_default();
                        }
                        &ev.data
                    },
                    id: &id,
                    last_event_id,
                    event: &ev.event,
                    ty: t.matched,
                    message: &decoded.rust,
                }),
                Cb::Js(f) => js
                    .get_or_init(|| JsEvent::new(&ev.event, id.as_deref(), last_event_id))
                    .call(f, &decoded.js, t.matched, &raw),
            }
        }
    }
}

#[wasm_bindgen(
    inline_js = "export function deliver(f, msg, id, idn, last, lastn, type, event, raw) {
  if (idn >= 0) id = String(idn);
  if (lastn === -2) last = id; else if (lastn >= 0) last = String(lastn);
  f(msg, { id, lastEventId: last, type, event, raw });
}
export function error(kind, message, raw, status) {
  const e = { kind, message };
  if (raw !== undefined) e.raw = raw;
  if (status !== undefined) e.status = status;
  return e;
}"
)]
extern "C" {
    /// Calls the JS listener `f` with the payload and its `EventInfo`, built
    /// in JS in one call: an object literal there costs a fraction of five
    /// `Reflect.set`s from wasm. An id that is a plain decimal number crosses
    /// as a number (`idn`, else -1) and becomes a string in JS, which spares
    /// a UTF-8 decode per event; `lastn` is -2 when the last id is the id.
    #[wasm_bindgen(catch)]
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        f: &js_sys::Function,
        msg: &JsValue,
        id: &JsValue,
        idn: f64,
        last: &JsValue,
        lastn: f64,
        ty: &JsValue,
        event: &JsValue,
        raw: &JsValue,
    ) -> Result<(), JsValue>;

    /// A `TidingsError` object (`raw` and `status` only when defined).
    fn error(kind: &str, message: &str, raw: &JsValue, status: &JsValue) -> JsValue;
}

/// `s` as a number when it is a plain decimal integer JS prints back as the
/// same text (no sign, no leading zero, at most 15 digits); else -1.
fn decimal(s: &str) -> f64 {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 15 || (b[0] == b'0' && b.len() > 1) {
        return -1.0;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return -1.0;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    n as f64
}

/// One event's JS values besides the payload and the matched type, made once
/// for all its JS listeners.
struct JsEvent {
    id: JsValue,
    idn: f64,
    last: JsValue,
    lastn: f64,
    event: JsValue,
}

impl JsEvent {
    fn new(event: &str, id: Option<&str>, last_event_id: Option<&str>) -> JsEvent {
        let (id_js, idn) = js_id(id);
        let (last, lastn) = match last_event_id {
            Some(l) if Some(l) == id => (JsValue::UNDEFINED, -2.0),
            l => js_id(l),
        };
        JsEvent {
            id: id_js,
            idn,
            last,
            lastn,
            event: js_name(event),
        }
    }

    /// Calls one JS listener.
    fn call(&self, f: &js_sys::Function, msg: &JsValue, matched: &str, raw: &JsValue) {
        report(deliver(
            f,
            msg,
            &self.id,
            self.idn,
            &self.last,
            self.lastn,
            &js_name(matched),
            &self.event,
            raw,
        ));
    }
}

/// An id for [`deliver`]: a number when it is one, else the string (or `null`).
fn js_id(id: Option<&str>) -> (JsValue, f64) {
    match id {
        None => (JsValue::NULL, -1.0),
        Some(s) => match decimal(s) {
            n if n >= 0.0 => (JsValue::UNDEFINED, n),
            _ => (JsValue::from_str(s), -1.0),
        },
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
fn report<T>(r: Result<T, JsValue>) {
    if let Err(e) = r {
        web_sys::console::error_2(&"tidings: listener threw".into(), &e);
    }
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
    error(
        e.kind.as_str(),
        &e.message,
        &e.raw
            .as_deref()
            .map_or(JsValue::UNDEFINED, JsValue::from_str),
        &e.status.map_or(JsValue::UNDEFINED, JsValue::from),
    )
}
