//! The running part of a manager: it feeds browser inputs (transport reports,
//! timers, `online`/`visibilitychange`, tab sharing) to the sans-IO
//! [`Connection`] and [`crate::tabs::TabCore`], carries out their actions and
//! delivers their outputs to the listeners.
//!
//! Every input enters through [`Inner::input`] (transports, tagged with their
//! generation) or [`Inner::tab_input`] (tab sharing); both then run
//! [`Inner::drive`], the one loop that drains the core's queues.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use wasm_bindgen::prelude::*;

use super::input::{Handle, Input, Sink};
use super::listeners::{Decoding, ErrorCb, EventCb, Kind, Listeners, StateCb};
use super::mux;
use super::platform::{self, now};
use super::storage;
use super::tabs::{TabInput, TabSink, Tabs};
use super::timer::Timeout;
use super::transport::{PollRequest, SseTransport};
use crate::backoff::XorShiftJitter;
use crate::connection::{Action, Connection, ErrorInfo, ErrorKind, Output, State};
use crate::dispatch::ListenerId;
use crate::messages::Decoder;
use crate::options::Options;
use crate::protocol::Protocol;
use crate::tabs::TabOutput;

/// How many rounds [`Inner::drive`] (and the tab flush) run before yielding
/// to the browser. Each round drains the core's queues, and new work only
/// comes from listeners reacting to what they are given (calling `on`, `off`
/// or `close`), so only a listener that keeps reacting to its own effects
/// reaches it. Then the rest runs after a yield (a zero timer), reported on
/// the console: nothing stays queued, and the page is not frozen.
const ROUNDS: usize = 10_000;

/// The mutable part of a manager, borrowed only between calls out.
struct St {
    conn: Connection<XorShiftJitter>,
    sse: Option<SseTransport>,
    sse_generation: u64,
    poll: Option<PollRequest>,
    poll_generation: u64,
    timer: Option<Timeout>,
    /// When `timer` fires.
    timer_at: Option<std::time::Duration>,
    /// `online` and `visibilitychange`, while the connection runs.
    wake: Vec<EventListener>,
    closed: bool,
}

/// One manager: what every [`super::Manager`] handle and the JS object share.
pub(crate) struct Inner {
    /// The registry key (see [`Options::identity`]).
    pub(crate) key: String,
    /// The position kept in `sessionStorage` (under a hash of `key`).
    saved: storage::Saver,
    /// Whether the position is kept in `sessionStorage`: `persistLastEventId`,
    /// and the identity is known up front (not with `getToken`, whose user is
    /// only known at connect time: two users' `getToken` managers of one URL
    /// have the same key, so neither reads or writes a stored position).
    persist: bool,
    /// Whether the stream speaks Tidings (decoding follows it).
    tidings: Cell<bool>,
    /// The last event id seen, kept across events without one (WHATWG's
    /// `lastEventId`), for `EventInfo.lastEventId`.
    last_seen: RefCell<Option<String>>,
    /// The absolute stream URL.
    pub(crate) url: String,
    options: Rc<Options>,
    /// The decoder in use.
    pub(crate) decoder: Decoder,
    st: RefCell<St>,
    pub(crate) listeners: Listeners,
    driving: Cell<bool>,
    /// The JS `Manager` object handed out by `connect()` (one per manager so
    /// the singleton is the same JS object). Cleared by `close()`.
    pub(crate) js_handle: RefCell<Option<JsValue>>,
    tabs: Tabs,
    /// The page's shared connection became available while this manager's own
    /// connection had not shown a position yet: it moves over at the first id.
    switch_pending: Cell<bool>,
    /// The rest of a drive loop (`[0]`) or tab flush (`[1]`) that hit
    /// [`ROUNDS`], after a yield; a newer one replaces the older.
    yielded: RefCell<[Option<Timeout>; 2]>,
    /// The JS string of the data of the event being handed over
    /// ([`Input::SseEventJs`]) and whether it is the only copy (`lazy`):
    /// set for that one input, taken by its [`Output::Event`] in
    /// [`Inner::drive`], cleared when the input is done.
    arrived: RefCell<Option<(JsValue, bool)>>,
    /// The buffers of an [`Inner::drive`] round, empty between rounds.
    round: Cell<(Vec<Action>, Vec<Output>)>,
}

fn connection(options: &Options, resume: Option<String>) -> Connection<XorShiftJitter> {
    Connection::new(
        options.config(),
        XorShiftJitter::new(platform::random_u64()),
        resume,
    )
}

impl Inner {
    /// A manager for the stream at `url` (absolute), registered as `key`; it
    /// touches no browser API until the first listener.
    pub(crate) fn new(key: String, url: String, options: Options) -> Inner {
        let saved = storage::Saver::new(&key);
        let persist = options.persist_last_event_id && options.get_token.is_none();
        let resume = if persist { saved.load() } else { None };
        Inner {
            key,
            saved,
            persist,
            tidings: Cell::new(options.protocol == Protocol::Tidings),
            last_seen: RefCell::new(resume.clone()),
            decoder: options.decoder_in_use(),
            st: RefCell::new(St {
                conn: connection(&options, resume),
                sse: None,
                sse_generation: 0,
                poll: None,
                poll_generation: 0,
                timer: None,
                timer_at: None,
                wake: Vec::new(),
                closed: false,
            }),
            listeners: Listeners::default(),
            tabs: Tabs::new(&url, &options),
            url,
            options: Rc::new(options),
            driving: Cell::new(false),
            js_handle: RefCell::new(None),
            switch_pending: Cell::new(false),
            yielded: RefCell::new([None, None]),
            arrived: RefCell::new(None),
            round: Cell::new((Vec::new(), Vec::new())),
        }
    }

    // ---- listeners ---------------------------------------------------------

    /// Adds an event listener; the first one starts the connection (or joins
    /// the tabs sharing it). A closed manager takes none (id 0).
    pub(crate) fn add_listener(self: &Rc<Self>, ty: &str, cb: EventCb) -> ListenerId {
        if self.st.borrow().closed {
            return ListenerId(0);
        }
        let (id, first) = self.listeners.add_event(ty, cb);
        if let Some(sse) = self.st.borrow_mut().sse.as_mut() {
            sse.ensure_name(ty);
        }
        self.tabs.add_name(ty);
        self.tabs_flush();
        if first {
            self.start();
        }
        id
    }

    /// Adds a state listener and calls it at once with the state shown. A
    /// closed manager only makes that call and keeps no listener (id 0).
    pub(crate) fn add_state_listener(&self, cb: StateCb) -> ListenerId {
        if self.st.borrow().closed {
            super::listeners::call_state(&cb, self.shown_state());
            return ListenerId(0);
        }
        self.listeners.add_state(cb, || self.shown_state())
    }

    /// Adds an error listener. A closed manager takes none (id 0).
    pub(crate) fn add_error_listener(&self, cb: ErrorCb) -> ListenerId {
        if self.st.borrow().closed {
            return ListenerId(0);
        }
        self.listeners.add_error(cb)
    }

    /// Removes a listener; the last event listener stops the connection.
    pub(crate) fn remove(self: &Rc<Self>, kind: Kind, id: ListenerId) {
        if self.listeners.remove(kind, id) {
            self.stop_connection();
            // After the socket closed: then the lock may pass to another tab.
            self.tabs_stop();
        }
    }

    /// The state shown: the leader's while following, else the connection's.
    pub(crate) fn shown_state(&self) -> State {
        self.tabs.shown_state(self.st.borrow().conn.state())
    }

    /// The position shown: the tab core's while sharing, else the connection's.
    pub(crate) fn shown_last_event_id(&self) -> Option<String> {
        self.tabs
            .shown_last_event_id(self.st.borrow().conn.last_event_id())
    }

    /// Events dropped as duplicates: by the connection, and as a follower.
    pub(crate) fn duplicates(&self) -> u64 {
        self.st.borrow().conn.duplicates() + self.tabs.duplicates()
    }

    /// Whether the stream speaks Tidings (announced, or `protocol: 'tidings'`).
    pub(crate) fn speaks_tidings(&self) -> bool {
        self.tidings.get()
    }

    /// `solo`, `idle`, `follower` or `leader`.
    pub(crate) fn tab_role(&self) -> &'static str {
        self.tabs.role_name()
    }

    // ---- running -----------------------------------------------------------

    fn listening(&self) -> bool {
        !self.st.borrow().closed && self.listeners.has_events()
    }

    fn start(self: &Rc<Self>) {
        // Sharing across tabs: follow until the lock is granted.
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

    fn stop_connection(self: &Rc<Self>) {
        {
            let mut st = self.st.borrow_mut();
            st.conn.stop();
            st.wake.clear();
        }
        self.drive();
        self.saved.flush();
    }

    /// Closes for good: every listener goes, the connection closes, the tab
    /// leaves, and the JS object is let go.
    pub(crate) fn close(self: &Rc<Self>) {
        {
            let mut st = self.st.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
            st.conn.close();
            st.wake.clear();
        }
        self.listeners.clear_events();
        self.drive();
        self.tabs_stop();
        self.listeners.clear_rest();
        self.saved.flush();
        {
            let mut st = self.st.borrow_mut();
            st.timer = None;
            st.timer_at = None;
        }
        self.js_handle.borrow_mut().take();
    }

    /// `online` on the global object and `visibilitychange` on the document:
    /// retry at once. Owned by the manager while it is running.
    fn wake_listeners(self: &Rc<Self>) -> Vec<EventListener> {
        let mut v = Vec::new();
        if let Some(target) = platform::global_target() {
            let weak = Rc::downgrade(self);
            v.push(EventListener::new(&target, "online", move |_| {
                if let Some(inner) = weak.upgrade() {
                    inner.wake();
                }
            }));
        }
        if let Some(doc) = platform::document() {
            let weak = Rc::downgrade(self);
            let d2 = doc.clone();
            v.push(EventListener::new(&doc, "visibilitychange", move |_| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_visibility(platform::is_visible(&d2));
                }
            }));
        }
        v
    }

    fn wake(self: &Rc<Self>) {
        self.st.borrow_mut().conn.handle_wake(now());
        self.drive();
    }

    /// `visibilitychange`: with `pauseWhenHidden`, close while hidden and
    /// resume after the last id when visible; visible also retries at once.
    /// While sharing, the tab leaves and rejoins instead (see `TabInput::Visibility`).
    fn on_visibility(self: &Rc<Self>, visible: bool) {
        if self.options.pause_when_hidden && !self.tabs.is_shared() {
            if !self.listening() {
                return;
            }
            {
                let mut st = self.st.borrow_mut();
                if visible {
                    st.conn.start(now());
                } else {
                    st.conn.stop();
                }
            }
            self.drive();
        }
        if visible {
            self.wake();
        }
    }

    fn on_timeout(self: &Rc<Self>) {
        {
            let mut st = self.st.borrow_mut();
            st.timer = None;
            st.timer_at = None;
            st.conn.handle_timeout(now());
        }
        self.drive();
    }

    // ---- transports --------------------------------------------------------

    /// A handle for the transport of `generation`.
    fn handle(self: &Rc<Self>, generation: u64) -> Handle {
        let sink: Weak<dyn Sink> = Rc::downgrade(self) as Weak<Self>;
        Handle::new(sink, generation)
    }

    /// Test hook: acts as if the SSE transport failed now.
    pub(crate) fn fail_sse(self: &Rc<Self>) {
        let generation = {
            let st = self.st.borrow();
            if st.sse.is_none() {
                return;
            }
            st.sse_generation
        };
        self.input(generation, Input::SseError);
    }

    /// Every transport report enters here; one from a replaced transport
    /// (another generation) is dropped.
    fn input(self: &Rc<Self>, generation: u64, input: Input) -> bool {
        let mut learned = false;
        let mut had_id = false;
        {
            let mut st = self.st.borrow_mut();
            let current = if input.is_poll() {
                st.poll_generation
            } else {
                st.sse_generation
            };
            if generation != current {
                return false;
            }
            // The hello (which the core reads) and an event that would not be
            // the first output of the drive below go on with their data in wasm.
            let input = match input {
                Input::SseEventJs { ref ev, .. }
                    if self.driving.get() || st.conn.has_output() || ev.event == "tidings" =>
                {
                    input.plain()
                }
                input => input,
            };
            match input {
                Input::Token {
                    token: Ok(token),
                    last_event_id,
                } => {
                    drop(st);
                    self.open_sse(generation, last_event_id.as_deref(), token.as_deref());
                    return true;
                }
                // One error each, from the core's outputs: relayed to the other
                // tabs like every transport error.
                Input::Token { token: Err(e), .. } => {
                    st.conn
                        .handle_sse_open_failed(now(), ErrorInfo::new(ErrorKind::Auth, e));
                }
                Input::SseOpenFailed(message) => {
                    st.conn
                        .handle_sse_open_failed(now(), ErrorInfo::new(ErrorKind::Network, message));
                }
                Input::RetryHint(ms) => {
                    st.conn.handle_retry_hint(ms);
                    return true;
                }
                Input::RetryAfter { delay, .. } => {
                    st.conn.handle_retry_after(now(), delay);
                    return true;
                }
                Input::SseOpen => st.conn.handle_sse_open(now()),
                Input::SseEvent(ev) => {
                    had_id = ev.id.as_deref().is_some_and(|id| !id.is_empty());
                    if ev.event == "tidings"
                        && !st.sse.as_ref().is_some_and(SseTransport::is_shared)
                    {
                        learned = mux::learn(&self.url, &ev);
                    }
                    st.conn.handle_sse_event(ev, now());
                }
                // Only when nothing else is queued and no drive runs is the
                // event's output the first the next drive finds (see `plain`
                // above for the other cases).
                Input::SseEventJs { ev, js, lazy } => {
                    had_id = ev.id.as_deref().is_some_and(|id| !id.is_empty());
                    *self.arrived.borrow_mut() = Some((js, lazy));
                    st.conn.handle_sse_event(ev, now());
                }
                Input::SseError => {
                    // Stop the browser's own retry at once; the core schedules ours.
                    if let Some(sse) = st.sse.as_ref() {
                        sse.close();
                    }
                    st.conn.handle_sse_error(now(), "EventSource error");
                }
                Input::StreamFailed(reason) => st.conn.handle_sse_error(now(), &reason),
                Input::StreamEnded => st.conn.handle_sse_end(now()),
                Input::StreamFatal(error) => st.conn.handle_sse_fatal(error),
                Input::StreamRejected { status, body } => {
                    st.conn.handle_sse_rejected(now(), status, body);
                }
                Input::Poll(result) => {
                    st.poll = None;
                    match result {
                        Ok(r) => st.conn.handle_poll_response(now(), r),
                        Err(e) => st.conn.handle_poll_error(now(), e),
                    }
                }
            }
        }
        self.drive();
        self.arrived.borrow_mut().take();
        if learned {
            // The origin multiplexes: every manager that may share moves over.
            for inner in registry::all() {
                inner.offer_mux();
            }
        }
        if had_id && self.switch_pending.get() {
            self.switch_to_mux();
        }
        true
    }

    /// Moves this manager's own SSE connection onto the page's shared one when
    /// it may share: at once, or at its first id when it is open without a
    /// position yet (the greeting's head id, so nothing published meanwhile is
    /// missed).
    fn offer_mux(self: &Rc<Self>) {
        let (own, open, placed) = {
            let st = self.st.borrow();
            let own = !st.closed
                && st
                    .sse
                    .as_ref()
                    .is_some_and(|t| !t.is_shared() && !matches!(t, SseTransport::Opening));
            (
                own,
                st.conn.state() == State::Open,
                st.conn.last_event_id().is_some(),
            )
        };
        if !own || mux::endpoint_for(&self.url, &self.options).is_none() {
            return;
        }
        if open && !placed {
            self.switch_pending.set(true);
        } else {
            self.switch_to_mux();
        }
    }

    /// Closes the own connection, then joins the shared one at its position.
    /// Closing first is what keeps this possible: with more streams than the
    /// browser's connections per origin (about 6 on HTTP/1.1), keeping the own
    /// connections open until the shared one carries them leaves the shared
    /// request waiting for a socket that only they can free (tried: a page of
    /// 11 streams did not get them all open in 10 s). The replay from the
    /// position loses nothing.
    fn switch_to_mux(self: &Rc<Self>) {
        self.switch_pending.set(false);
        let (generation, last) = {
            let mut st = self.st.borrow_mut();
            if st.closed || st.sse.as_ref().is_none_or(SseTransport::is_shared) {
                return;
            }
            st.sse_generation += 1;
            st.sse = None;
            (
                st.sse_generation,
                st.conn.last_event_id().map(str::to_owned),
            )
        };
        self.open_sse(generation, last.as_deref(), self.options.token.as_deref());
    }

    /// Opens the SSE transport of `generation` with `token`.
    fn open_sse(
        self: &Rc<Self>,
        generation: u64,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) {
        let mut names = self.listeners.event_types();
        names.extend(self.decoder.event_names().iter().map(|s| (*s).to_owned()));
        let t = SseTransport::open(
            self.handle(generation),
            &self.url,
            &self.options,
            &names,
            last_event_id,
            token,
        );
        self.st.borrow_mut().sse = Some(t);
    }

    /// Runs the core's actions and delivers its outputs until both are empty,
    /// then arms the timer. Re-entrant calls (a listener calling `on`, `off`
    /// or `close`) leave their work to the running loop, keeping order.
    fn drive(self: &Rc<Self>) {
        if self.driving.replace(true) {
            return;
        }
        // Bounded: each round drains the queues; new work only comes from listeners.
        let mut settled = false;
        for _ in 0..ROUNDS {
            // The round's buffers are kept between drives (no two allocations
            // per event); only this loop takes them, and it does not nest.
            let (mut actions, mut outputs) = self.round.take();
            {
                let mut st = self.st.borrow_mut();
                while let Some(x) = st.conn.poll_action() {
                    actions.push(x);
                }
                while let Some(x) = st.conn.poll() {
                    outputs.push(x);
                }
            }
            if actions.is_empty() && outputs.is_empty() {
                self.round.set((actions, outputs));
                settled = true;
                break;
            }
            for a in actions.drain(..) {
                self.perform(a);
            }
            for mut o in outputs.drain(..) {
                let arrived = match &mut o {
                    Output::Event(ev) => self.arrived.borrow_mut().take().map(|(js, lazy)| {
                        // The relay to other tabs carries the text.
                        if lazy && self.tabs.relays_events() {
                            ev.data = js.as_string().unwrap_or_default();
                            return (js, false);
                        }
                        (js, lazy)
                    }),
                    _ => None,
                };
                // Leader: to the other tabs first.
                if self.tabs_relay(&o) {
                    self.emit(o, arrived);
                }
            }
            // A burst's (a poll response's) buffer is not kept.
            if outputs.capacity() > 64 {
                outputs = Vec::new();
            }
            self.round.set((actions, outputs));
        }
        self.driving.set(false);
        if !settled {
            self.continue_later(0, "the connection", Inner::drive);
        }
        self.rearm();
    }

    /// A loop hit [`ROUNDS`]: says so on the console and runs `rest` after a
    /// yield to the browser.
    fn continue_later(self: &Rc<Self>, slot: usize, what: &str, rest: fn(&Rc<Inner>)) {
        web_sys::console::error_1(
            &[
                "tidings: listeners of ",
                &self.url,
                " kept ",
                what,
                " busy for 10000 rounds in a row (a listener reacting to its own effect?); the rest runs after a yield",
            ]
            .concat()
            .into(),
        );
        let weak = Rc::downgrade(self);
        self.yielded.borrow_mut()[slot] = Some(Timeout::new(0, move || {
            if let Some(inner) = weak.upgrade() {
                rest(&inner);
            }
        }));
    }

    fn perform(self: &Rc<Self>, action: Action) {
        let mut st = self.st.borrow_mut();
        match action {
            Action::OpenSse { last_event_id } => {
                st.sse_generation += 1;
                // Replacing the old transport drops (closes) it first.
                st.sse = None;
                let generation = st.sse_generation;
                if self.options.get_token.is_some() {
                    st.sse = Some(SseTransport::ask_token(
                        self.handle(generation),
                        &self.options,
                        last_event_id,
                    ));
                } else {
                    drop(st);
                    let token = self.options.token.as_deref();
                    self.open_sse(generation, last_event_id.as_deref(), token);
                }
            }
            Action::CloseSse => {
                st.sse_generation += 1;
                st.sse = None;
            }
            Action::Poll { last_event_id } => {
                st.poll_generation += 1;
                let timeout =
                    u32::try_from(self.options.poll_timeout_ms.max(1)).unwrap_or(u32::MAX);
                st.poll = Some(PollRequest::start(
                    self.handle(st.poll_generation),
                    &self.url,
                    &self.options,
                    last_event_id,
                    timeout,
                ));
            }
            Action::CancelPoll => {
                st.poll_generation += 1;
                st.poll = None; // Drop aborts the fetch.
            }
        }
    }

    /// Arms the timer for the core's next deadline. A timer already armed
    /// for that deadline or an earlier one stays: every event moves the
    /// watchdog's deadline on, and a new `setTimeout` per event would cost
    /// more than the event. Firing early is harmless: the core acts only on
    /// deadlines that passed, and the timer is armed again.
    fn rearm(self: &Rc<Self>) {
        let mut st = self.st.borrow_mut();
        let Some(at) = st.conn.poll_timeout() else {
            st.timer = None;
            st.timer_at = None;
            return;
        };
        if st.timer.is_some() && st.timer_at.is_some_and(|armed| armed <= at) {
            return;
        }
        let delay = at.saturating_sub(now()).as_millis().min(u32::MAX as u128) as u32;
        let weak = Rc::downgrade(self);
        st.timer_at = Some(at);
        st.timer = Some(Timeout::new(delay, move || {
            if let Some(inner) = weak.upgrade() {
                inner.on_timeout();
            }
        }));
    }

    /// Delivers one output; `arrived`: an event's data as the JS string it
    /// arrived as (`lazy`: only there).
    fn emit(&self, output: Output, arrived: Option<(JsValue, bool)>) {
        match output {
            Output::State(s) => self.listeners.emit_state(s),
            Output::Error(e) => self.listeners.emit_error(&e),
            Output::Event(ev) => {
                if self.persist {
                    self.saved.note(ev.id.as_deref());
                }
                // An event with an id of its own is its last id; only one
                // without needs the stored one (a copy, rare: heartbeats).
                let earlier = match ev.id.as_deref() {
                    Some("") => {
                        *self.last_seen.borrow_mut() = None;
                        None
                    }
                    Some(id) => {
                        match &mut *self.last_seen.borrow_mut() {
                            Some(s) => {
                                s.clear();
                                s.push_str(id);
                            }
                            slot => *slot = Some(id.to_owned()),
                        }
                        None
                    }
                    None => self.last_seen.borrow().clone(),
                };
                let decoding = Decoding {
                    decoder: self.decoder,
                    decode: self.options.decode.as_ref(),
                    tidings: self.tidings.get(),
                };
                self.listeners
                    .deliver(&decoding, ev, earlier.as_deref(), arrived);
            }
            Output::Protocol(tidings) => self.tidings.set(tidings),
        }
    }

    // ---- sharing across tabs -----------------------------------------------

    fn tab_sink(self: &Rc<Self>) -> Weak<dyn TabSink> {
        Rc::downgrade(self) as Weak<Self>
    }

    /// First listener: with sharing on, join as a follower and ask for the
    /// lock (the connection starts when it is granted). Returns false when
    /// this manager runs solo (the caller starts its connection).
    fn tabs_start(self: &Rc<Self>) -> bool {
        let names = self.listeners.event_types();
        // Where this tab was (kept in sessionStorage across a reload): a
        // follower behind the leader fetches what it missed.
        let resume = self.st.borrow().conn.last_event_id().map(str::to_owned);
        let joined = self.tabs.join(
            self.tab_sink(),
            &names,
            resume.as_deref(),
            self.options.pause_when_hidden,
        );
        if joined {
            self.tabs_flush();
        }
        joined
    }

    /// Leaves (last listener gone, `close()`, `pagehide`). The caller has
    /// already stopped its connection, so the socket closes before the lock
    /// passes on (never two connections at the server).
    fn tabs_stop(self: &Rc<Self>) {
        if self.tabs.leave() {
            self.tabs_flush(); // posts `leave` while the channel is open
            self.tabs.unlink();
        }
    }

    /// Leader: relays what the connection produced (before local delivery).
    /// Returns whether to deliver it locally (not a repeat of the state shown).
    fn tabs_relay(self: &Rc<Self>, output: &Output) -> bool {
        if !self.tabs.is_leader() {
            return true;
        }
        let local = self.tabs.local(output);
        self.tabs_flush();
        // Every new transport reports `open`: it also listens for the names
        // followers asked for (the transport itself only knows ours).
        if *output == Output::State(State::Open) {
            let names = self.tabs.peer_names();
            if let Some(sse) = self.st.borrow_mut().sse.as_mut() {
                for n in &names {
                    sse.ensure_name(n);
                }
            }
        }
        local
    }

    /// Posts what the tab core wants posted, then does its local outputs. No
    /// borrow is held while listeners run (they may call on/off/close).
    fn tabs_flush(self: &Rc<Self>) {
        for _ in 0..ROUNDS {
            let Some((failed, outputs)) = self.tabs.exchange() else {
                return;
            };
            if let Some(e) = failed {
                self.listeners.emit_error(&ErrorInfo::new(
                    ErrorKind::Protocol,
                    ["tab relay post failed: ", &e].concat(),
                ));
            }
            for o in outputs {
                match o {
                    TabOutput::Deliver(o) => self.emit(o, None),
                    TabOutput::ListenFor(name) => {
                        if let Some(sse) = self.st.borrow_mut().sse.as_mut() {
                            sse.ensure_name(&name);
                        }
                    }
                    TabOutput::CatchUp(after) => {
                        self.tabs
                            .start_catch_up(self.tab_sink(), &self.url, &self.options, &after);
                    }
                }
            }
        }
        self.continue_later(1, "tab sharing", Inner::tabs_flush);
    }

    /// Every tab-sharing input enters here.
    fn on_tab_input(self: &Rc<Self>, input: TabInput) {
        match input {
            TabInput::LockGranted => {
                let Some(resume) = self.tabs.lock_granted() else {
                    self.tabs_flush();
                    return;
                };
                self.tabs_flush();
                {
                    let mut st = self.st.borrow_mut();
                    if st.closed {
                        return;
                    }
                    // A fresh state machine, so no leftover timers.
                    st.conn = connection(&self.options, resume);
                }
                self.start_connection();
            }
            TabInput::Relay(msg) => {
                self.tabs.relay(msg);
                self.tabs_flush();
            }
            TabInput::BadRelay(e, raw) => {
                let mut info = ErrorInfo::new(ErrorKind::Protocol, e.to_string());
                info.raw = raw;
                self.listeners.emit_error(&info);
            }
            TabInput::CatchUp { number, result } => {
                self.tabs.catch_up_done(number, result);
                self.tabs_flush();
            }
            // Leave at once (closing our connection first), so the next tab
            // takes over without waiting for the browser to notice.
            TabInput::PageHide => self.suspend(),
            TabInput::PageShow => {
                if self.listening() && self.tabs.is_idle() {
                    self.start();
                }
            }
            // With `pauseWhenHidden`: a hidden tab leaves (a hidden leader
            // hands the connection to a visible tab), a visible one joins again.
            TabInput::Visibility(false) => self.suspend(),
            TabInput::Visibility(true) => {
                if self.tabs.is_idle() && self.listening() {
                    self.start();
                }
            }
        }
    }

    fn suspend(self: &Rc<Self>) {
        if !self.tabs.is_active() {
            return;
        }
        self.stop_connection();
        self.tabs_stop();
    }
}

impl Sink for Inner {
    fn input(self: Rc<Self>, generation: u64, input: Input) -> bool {
        Inner::input(&self, generation, input)
    }
}

impl TabSink for Inner {
    fn tab_input(self: Rc<Self>, input: TabInput) {
        self.on_tab_input(input);
    }
}

/// The page's managers, one per stream URL and identity: the Rust API finds and
/// adds them here, and a manager that learns its origin multiplexes offers the
/// shared connection to every other.
pub(crate) mod registry {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::Inner;

    thread_local! {
        /// A page has a handful of managers: a `Vec` searched by key is
        /// smaller in the wasm than a hash map (no hasher, no table code).
        static REGISTRY: RefCell<Vec<Rc<Inner>>> = const { RefCell::new(Vec::new()) };
    }

    /// The manager registered under `key`, or a new one made by `make` (given the key).
    pub(crate) fn get_or_insert_with(key: String, make: impl FnOnce(String) -> Inner) -> Rc<Inner> {
        let found = REGISTRY.with(|r| r.borrow().iter().find(|i| i.key == key).cloned());
        if let Some(inner) = found {
            return inner;
        }
        let inner = Rc::new(make(key));
        REGISTRY.with(|r| r.borrow_mut().push(inner.clone()));
        inner
    }

    /// Removes `inner` if it is still the manager registered under its key.
    pub(crate) fn remove(inner: &Rc<Inner>) {
        REGISTRY.with(|r| r.borrow_mut().retain(|i| !Rc::ptr_eq(i, inner)));
    }

    /// Every manager of the page.
    pub(crate) fn all() -> Vec<Rc<Inner>> {
        REGISTRY.with(|r| r.borrow().clone())
    }
}
