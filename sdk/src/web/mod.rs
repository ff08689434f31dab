//! The browser shell: turns web events into `handle_*` calls on the sans-IO
//! [`Connection`](crate::connection::Connection) and its outputs into web calls.
//!
//! Ownership (gloo style): every `Closure` belongs to the value it serves and
//! is dropped with it. The EventSource, its listeners, the polling request's
//! `AbortController`, the single timer and the `online`/`visibilitychange`
//! listeners all live in the manager's state; replacing or dropping them
//! closes/removes/aborts. Nothing is `forget()`-ed on a reconnect path.

mod fetch;
pub mod js;
mod storage;
mod tabs;
mod token;
mod transport;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::backoff::XorShiftJitter;
use crate::connection::{Action, Connection, ErrorInfo, ErrorKind, Output, State};
use crate::dispatch::{Dispatcher, ListenerId};
use crate::messages::{decode, Decoder, Message};
use crate::options::Options;
use crate::parser::SseEvent;

use transport::{PollRequest, SseTransport};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Monotonic time for the core.
fn now() -> Duration {
    Duration::from_secs_f64(performance_now().max(0.0) / 1000.0)
}

/// One event as a Rust listener receives it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The SSE id, or `None` for per-connection events (greeting, heartbeat).
    pub id: Option<String>,
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

/// Why `Manager::connect` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be resolved against the page.
    InvalidUrl(String),
    /// The JS options object did not match `ConnectOptions`.
    InvalidOptions(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(u) => write!(f, "tidings: invalid URL {u:?}"),
            Error::InvalidOptions(e) => write!(f, "tidings: invalid options: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A listener: a Rust closure or a JS function.
enum Cb<F: ?Sized> {
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

type EventCb = Cb<dyn Fn(&Event)>;
type StateCb = Cb<dyn Fn(State)>;
type ErrorCb = Cb<dyn Fn(&ErrorInfo)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Event,
    State,
    Error,
}

struct St {
    conn: Connection<XorShiftJitter>,
    listeners: Dispatcher<EventCb>,
    state_listeners: Dispatcher<StateCb>,
    error_listeners: Dispatcher<ErrorCb>,
    sse: Option<SseTransport>,
    sse_generation: u64,
    poll: Option<PollRequest>,
    poll_generation: u64,
    timer: Option<Timeout>,
    wake: Vec<EventListener>,
    closed: bool,
}

pub(crate) struct Inner {
    key: String,
    url: String,
    options: Options,
    decoder: Decoder,
    st: RefCell<St>,
    driving: Cell<bool>,
    /// The JS `Manager` object handed out by `connect()` (one per manager so
    /// the singleton is the same JS object). Cleared by `close()`.
    js_handle: RefCell<Option<JsValue>>,
    /// Sharing the connection across tabs (issue 4): see `tabs.rs`.
    tabs: tabs::Tabs,
}

thread_local! {
    static REGISTRY: RefCell<HashMap<String, Rc<Inner>>> = RefCell::new(HashMap::new());
}

/// Resolves `url` against the global `location` (window or worker).
fn absolute_url(url: &str) -> Result<String, Error> {
    let base = js_sys::Reflect::get(&js_sys::global(), &"location".into())
        .ok()
        .filter(|l| l.is_object())
        .and_then(|l| js_sys::Reflect::get(&l, &"href".into()).ok())
        .and_then(|h| h.as_string());
    let parsed = match base {
        Some(b) => web_sys::Url::new_with_base(url, &b),
        None => web_sys::Url::new(url),
    };
    parsed
        .map(|u| u.href())
        .map_err(|_| Error::InvalidUrl(url.to_owned()))
}

/// A stream manager: one per (absolute URL, token) per page. Cloning gives
/// another handle to the same manager.
#[derive(Clone)]
pub struct Manager {
    inner: Rc<Inner>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.inner.url)
            .field("state", &self.state())
            .finish()
    }
}

/// A Rust listener registration; dropping it unsubscribes (gloo style).
#[must_use = "dropping a Subscription unsubscribes at once; call .forget() to keep it"]
#[derive(Debug)]
pub struct Subscription {
    inner: Weak<Inner>,
    kind: Kind,
    id: ListenerId,
}

impl Subscription {
    /// Keeps the listener for the manager's lifetime.
    pub fn forget(self) {
        let _ = std::mem::ManuallyDrop::new(self);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.remove(self.kind, self.id);
        }
    }
}

impl Manager {
    /// The manager for `url` (relative URLs resolve against the page) and
    /// `options.token`: the existing one if any (its options win), else a
    /// new one. The connection opens with the first `on` listener.
    pub fn connect(url: &str, options: Options) -> Result<Manager, Error> {
        let url = absolute_url(url)?;
        let key = format!("{url}\n{}", options.token.as_deref().unwrap_or(""));
        if let Some(inner) = REGISTRY.with(|r| r.borrow().get(&key).cloned()) {
            return Ok(Manager { inner });
        }
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        let resume = if options.persist_last_event_id {
            storage::load(&url)
        } else {
            None
        };
        let inner = Rc::new(Inner {
            key: key.clone(),
            decoder: options.decoder_for(&url),
            st: RefCell::new(St {
                conn: Connection::new(options.config(), XorShiftJitter::new(seed), resume),
                listeners: Dispatcher::new(),
                state_listeners: Dispatcher::new(),
                error_listeners: Dispatcher::new(),
                sse: None,
                sse_generation: 0,
                poll: None,
                poll_generation: 0,
                timer: None,
                wake: Vec::new(),
                closed: false,
            }),
            tabs: tabs::Tabs::new(&url, &options),
            url,
            options,
            driving: Cell::new(false),
            js_handle: RefCell::new(None),
        });
        REGISTRY.with(|r| r.borrow_mut().insert(key, inner.clone()));
        Ok(Manager { inner })
    }

    /// Like [`Manager::connect`] with default options.
    pub fn connect_url(url: &str) -> Result<Manager, Error> {
        Self::connect(url, Options::default())
    }

    /// Listens for events of `ty` (an SSE event name, a payload `type`, or `*`).
    pub fn on(&self, ty: &str, f: impl Fn(&Event) + 'static) -> Subscription {
        let id = self.inner.add_listener(ty, Cb::Rust(Rc::new(f)));
        Subscription {
            inner: Rc::downgrade(&self.inner),
            kind: Kind::Event,
            id,
        }
    }

    /// Listens for state changes; `f` runs at once with the current state.
    pub fn on_state(&self, f: impl Fn(State) + 'static) -> Subscription {
        let id = self.inner.add_state_listener(Cb::Rust(Rc::new(f)));
        Subscription {
            inner: Rc::downgrade(&self.inner),
            kind: Kind::State,
            id,
        }
    }

    /// Listens for errors (decode failures carry the raw text and the reason).
    pub fn on_error(&self, f: impl Fn(&ErrorInfo) + 'static) -> Subscription {
        let id = self
            .inner
            .st
            .borrow_mut()
            .error_listeners
            .add("*", Cb::Rust(Rc::new(f)));
        Subscription {
            inner: Rc::downgrade(&self.inner),
            kind: Kind::Error,
            id,
        }
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.inner.shown_state()
    }

    /// The id of the last event received (the resume position).
    pub fn last_event_id(&self) -> Option<String> {
        self.inner.shown_last_event_id()
    }

    /// The absolute stream URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The decoder in use.
    pub fn decoder(&self) -> Decoder {
        self.inner.decoder
    }

    /// Closes the connection for good, drops every listener and removes the
    /// manager from the registry (a later `connect` makes a new one).
    pub fn close(&self) {
        self.inner.close();
    }

    /// Test hook: acts as if the SSE transport failed now (the browser shell
    /// then closes it and reconnects by the backoff policy). No-op without an
    /// SSE transport.
    #[doc(hidden)]
    pub fn debug_fail_sse(&self) {
        let generation = {
            let st = self.inner.st.borrow();
            if st.sse.is_none() {
                return;
            }
            st.sse_generation
        };
        self.inner.on_sse_error(generation);
    }

    /// Whether two handles are the same manager.
    pub fn ptr_eq(&self, other: &Manager) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Inner {
    fn add_listener(self: &Rc<Self>, ty: &str, cb: EventCb) -> ListenerId {
        let (id, first) = {
            let mut st = self.st.borrow_mut();
            if st.closed {
                return ListenerId(0);
            }
            let first = st.listeners.is_empty();
            let id = st.listeners.add(ty, cb);
            if let Some(sse) = st.sse.as_mut() {
                sse.ensure_name(ty);
            }
            (id, first)
        };
        self.tabs_add_name(ty);
        if first {
            self.start();
        }
        id
    }

    fn add_state_listener(self: &Rc<Self>, cb: StateCb) -> ListenerId {
        let id = {
            let mut st = self.st.borrow_mut();
            st.state_listeners.add("*", cb.clone())
        };
        let state = self.shown_state();
        call_state(&cb, state);
        id
    }

    fn remove(self: &Rc<Self>, kind: Kind, id: ListenerId) {
        let now_empty = {
            let mut st = self.st.borrow_mut();
            match kind {
                Kind::Event => st.listeners.remove(id) && st.listeners.is_empty(),
                Kind::State => {
                    st.state_listeners.remove(id);
                    false
                }
                Kind::Error => {
                    st.error_listeners.remove(id);
                    false
                }
            }
        };
        if now_empty {
            self.stop_connection();
            // After the socket closed: then the lock may pass to another tab.
            self.tabs_stop();
        }
    }

    fn stop_connection(self: &Rc<Self>) {
        {
            let mut st = self.st.borrow_mut();
            st.conn.stop();
            st.wake.clear();
        }
        self.drive();
    }

    fn start(self: &Rc<Self>) {
        // Sharing across tabs: follow until the lock is granted (tabs.rs).
        if self.tabs_start() {
            return;
        }
        self.start_connection();
    }

    fn start_connection(self: &Rc<Self>) {
        {
            let mut st = self.st.borrow_mut();
            st.conn.start(now());
            st.wake = self.wake_listeners();
        }
        self.drive();
    }

    fn close(self: &Rc<Self>) {
        REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            if r.get(&self.key).is_some_and(|i| Rc::ptr_eq(i, self)) {
                r.remove(&self.key);
            }
        });
        {
            let mut st = self.st.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
            st.conn.close();
            st.listeners.clear();
            st.wake.clear();
        }
        self.drive();
        self.tabs_stop();
        let mut st = self.st.borrow_mut();
        st.state_listeners.clear();
        st.error_listeners.clear();
        st.timer = None;
        drop(st);
        self.js_handle.borrow_mut().take();
    }

    /// `online` on the global object and `visibilitychange` → visible on the
    /// document: retry at once. Owned by the manager while it is running.
    fn wake_listeners(self: &Rc<Self>) -> Vec<EventListener> {
        let mut v = Vec::new();
        let global = js_sys::global();
        if let Some(target) = global.dyn_ref::<web_sys::EventTarget>() {
            let weak = Rc::downgrade(self);
            v.push(EventListener::new(target, "online", move |_| {
                if let Some(inner) = weak.upgrade() {
                    inner.wake();
                }
            }));
        }
        let doc = js_sys::Reflect::get(&global, &"document".into())
            .ok()
            .filter(|d| d.is_object());
        if let Some(doc) = doc.and_then(|d| d.dyn_into::<web_sys::Document>().ok()) {
            let weak = Rc::downgrade(self);
            let d2 = doc.clone();
            v.push(EventListener::new(&doc, "visibilitychange", move |_| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_visibility(d2.visibility_state() == web_sys::VisibilityState::Visible);
                }
            }));
        }
        v
    }

    fn wake(self: &Rc<Self>) {
        self.st.borrow_mut().conn.handle_wake(now());
        self.drive();
    }

    fn on_timeout(self: &Rc<Self>) {
        {
            let mut st = self.st.borrow_mut();
            st.timer = None;
            st.conn.handle_timeout(now());
        }
        self.drive();
    }

    pub(crate) fn on_sse_open(self: &Rc<Self>, generation: u64) {
        {
            let mut st = self.st.borrow_mut();
            if st.sse_generation != generation {
                return;
            }
            st.conn.handle_sse_open(now());
        }
        self.drive();
    }

    pub(crate) fn on_sse_event(self: &Rc<Self>, generation: u64, event: SseEvent) {
        {
            let mut st = self.st.borrow_mut();
            if st.sse_generation != generation {
                return;
            }
            st.conn.handle_sse_event(event, now());
        }
        self.drive();
    }

    pub(crate) fn on_sse_error(self: &Rc<Self>, generation: u64) {
        {
            let mut st = self.st.borrow_mut();
            if st.sse_generation != generation {
                return;
            }
            // Stop the browser's own retry at once; the core schedules ours.
            if let Some(sse) = st.sse.as_ref() {
                sse.close();
            }
            st.conn.handle_sse_error(now(), "EventSource error");
        }
        self.drive();
    }

    pub(crate) fn on_poll_result(
        self: &Rc<Self>,
        generation: u64,
        result: Result<crate::messages::PollResponse, ErrorInfo>,
    ) {
        {
            let mut st = self.st.borrow_mut();
            if st.poll_generation != generation {
                return;
            }
            st.poll = None;
            match result {
                Ok(r) => st.conn.handle_poll_response(now(), r),
                Err(e) => st.conn.handle_poll_error(now(), e),
            }
        }
        self.drive();
    }

    /// Runs the core's actions and delivers its outputs until both are empty,
    /// then arms the timer. Re-entrant calls (a listener calling `on`, `off`
    /// or `close`) just leave their work to the running loop, keeping order.
    fn drive(self: &Rc<Self>) {
        if self.driving.replace(true) {
            return;
        }
        // Bounded: each round drains the queues; new work only comes from listeners.
        for _ in 0..10_000 {
            let (actions, outputs) = {
                let mut st = self.st.borrow_mut();
                let mut a = Vec::new();
                while let Some(x) = st.conn.poll_action() {
                    a.push(x);
                }
                let mut o = Vec::new();
                while let Some(x) = st.conn.poll() {
                    o.push(x);
                }
                (a, o)
            };
            if actions.is_empty() && outputs.is_empty() {
                break;
            }
            for a in actions {
                self.perform(a);
            }
            for o in outputs {
                // Leader: to the other tabs first (tabs.rs).
                if self.tabs_relay(&o) {
                    self.emit(o);
                }
            }
        }
        self.driving.set(false);
        self.rearm();
    }

    fn perform(self: &Rc<Self>, action: Action) {
        let mut st = self.st.borrow_mut();
        match action {
            Action::OpenSse { last_event_id } => {
                st.sse_generation += 1;
                // Replacing the old transport drops (closes) it first.
                st.sse = None;
                let generation = st.sse_generation;
                drop(st);
                self.open_sse(generation, last_event_id);
            }
            Action::CloseSse => {
                st.sse_generation += 1;
                st.sse = None;
            }
            Action::Poll { last_event_id } => {
                st.poll_generation += 1;
                let url = crate::url::poll_url(&self.url, last_event_id.as_deref());
                st.poll = Some(PollRequest::start(
                    &url,
                    &self.options,
                    Rc::downgrade(self),
                    st.poll_generation,
                ));
            }
            Action::CancelPoll => {
                st.poll_generation += 1;
                st.poll = None; // Drop aborts the fetch.
            }
        }
    }

    fn rearm(self: &Rc<Self>) {
        let mut st = self.st.borrow_mut();
        st.timer = st.conn.poll_timeout().map(|at| {
            let delay = at.saturating_sub(now()).as_millis().min(u32::MAX as u128) as u32;
            let weak = Rc::downgrade(self);
            Timeout::new(delay, move || {
                if let Some(inner) = weak.upgrade() {
                    inner.on_timeout();
                }
            })
        });
    }

    fn emit(self: &Rc<Self>, output: Output) {
        match output {
            Output::State(s) => {
                let targets = self.st.borrow().state_listeners.targets("*", None, false);
                for t in targets {
                    if self.st.borrow().state_listeners.contains(t.id) {
                        call_state(&t.listener, s);
                    }
                }
            }
            Output::Error(e) => self.emit_error(&e),
            Output::Event(ev) => {
                if self.options.persist_last_event_id {
                    storage::remember(&self.url, ev.id.as_deref());
                }
                self.deliver(ev);
            }
        }
    }

    fn emit_error(&self, e: &ErrorInfo) {
        let targets = self.st.borrow().error_listeners.targets("*", None, false);
        let js = OnceCell::new();
        for t in targets {
            if !self.st.borrow().error_listeners.contains(t.id) {
                continue;
            }
            match &t.listener {
                Cb::Rust(f) => f(e),
                Cb::Js(f) => report(f.call1(&JsValue::NULL, js.get_or_init(|| js::error_to_js(e)))),
            }
        }
    }

    /// Decodes once and dispatches (see [`crate::dispatch`]). A failed decode
    /// goes to error listeners with the raw text; the stream goes on.
    fn deliver(&self, ev: SseEvent) {
        let message = match decode(self.decoder, &ev.event, &ev.data) {
            Ok(m) => Rc::new(m),
            Err(e) => {
                let mut info =
                    ErrorInfo::new(ErrorKind::Decode, format!("`{}` event: {e}", ev.event));
                info.raw = Some(ev.data);
                self.emit_error(&info);
                return;
            }
        };
        let targets = self.st.borrow().listeners.targets(
            &ev.event,
            message.payload_type(),
            message.is_heartbeat(),
        );
        let id = ev.id.filter(|s| !s.is_empty());
        let js_message = OnceCell::new();
        for t in targets {
            if !self.st.borrow().listeners.contains(t.id) {
                continue; // removed by an earlier listener of this event
            }
            match &t.listener {
                Cb::Rust(f) => f(&Event {
                    id: id.clone(),
                    event: ev.event.clone(),
                    ty: t.matched,
                    raw: ev.data.clone(),
                    message: message.clone(),
                }),
                Cb::Js(f) => {
                    let m = js_message.get_or_init(|| js::message_to_js(&message, &ev.data));
                    let info = js::info(id.as_deref(), &t.matched, &ev.event, &ev.data);
                    report(f.call2(&JsValue::NULL, m, &info));
                }
            }
        }
    }
}

/// Event names the EventSource listens for besides the registered types:
/// the stream's own names plus the protocol's `reset`, `end` and `heartbeat`.
fn base_names(decoder: Decoder) -> &'static [&'static str] {
    match decoder {
        Decoder::Notifications => &[
            "message",
            "reset",
            "end",
            "heartbeat",
            "connected",
            "unread_count",
            "new_notification",
            "notification_deleted",
        ],
        Decoder::VideoProgress => &[
            "message",
            "reset",
            "end",
            "heartbeat",
            "progress",
            "completed",
            "timeout",
        ],
        // `connected`: the greeting of channels, carrying the head id on a fresh connection.
        _ => &["message", "reset", "end", "heartbeat", "connected"],
    }
}

fn call_state(cb: &StateCb, s: State) {
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
