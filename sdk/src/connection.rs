//! The connection state machine, sans-IO (quinn-proto style).
//!
//! [`Connection`] decides *when* to open the SSE transport, when to back off,
//! when to fall back to polling and when to probe SSE again; it tracks the
//! last event id and drops duplicates across reconnects and polling. It never
//! touches the network or a clock: the shell feeds it `handle_*(…, now)`
//! inputs and carries out what `poll_action()` asks, delivers what `poll()`
//! yields, and calls `handle_timeout(now)` at `poll_timeout()`.
//!
//! `now` is a monotonic [`Duration`] since any fixed origin (the browser shell
//! uses `performance.now()`), because `std::time::Instant` does not exist on
//! `wasm32-unknown-unknown`.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::{BackoffOptions, Jitter};
use crate::messages::PollResponse;
use crate::options::Poll;
use crate::parser::SseEvent;
use crate::position::Position;
use crate::protocol::{Hello, Protocol};

/// Connection state, as reported to `onState` listeners. Serialized as its
/// JS name ([`State::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Opening the first SSE connection.
    Connecting,
    /// SSE connected.
    Open,
    /// SSE failed; waiting for (or making) the next attempt.
    Reconnecting,
    /// SSE kept failing; fetching the polling form on an interval, probing SSE now and then.
    Polling,
    /// No connection: no listeners yet, the last one left, `end` received, or `close()`d.
    Closed,
}

impl State {
    /// The JS name: `connecting`, `open`, `reconnecting`, `polling`, `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Open => "open",
            State::Reconnecting => "reconnecting",
            State::Polling => "polling",
            State::Closed => "closed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an error reported to `onError` listeners. Serialized as its
/// JS name ([`ErrorKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ErrorKind {
    /// An event's data did not decode; carries the raw text.
    Decode,
    /// The polling request got a non-success HTTP status.
    Http,
    /// The transport failed (SSE error, fetch rejected).
    Network,
    /// 401/403 from the polling form.
    Auth,
    /// A response that breaks the protocol (e.g. an unparsable polling body).
    Protocol,
}

impl ErrorKind {
    /// The JS name: `decode`, `http`, `network`, `auth`, `protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Decode => "decode",
            ErrorKind::Http => "http",
            ErrorKind::Network => "network",
            ErrorKind::Auth => "auth",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// An error for `onError` listeners. Errors never stop the stream by themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human-readable reason.
    pub message: String,
    /// The raw event data (decode errors) or response body.
    pub raw: Option<String>,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
}

impl ErrorInfo {
    /// An error without raw text or status.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorInfo {
            kind,
            message: message.into(),
            raw: None,
            status: None,
        }
    }
}

/// Timing settings of the state machine. [`Config::default`] holds the
/// defaults of every option; [`crate::ConnectOptions`] takes them from here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// Reconnect backoff and the attempts before polling.
    pub(crate) backoff: BackoffOptions,
    /// Pause between polling requests. Default 3 s.
    pub(crate) poll_interval: Duration,
    /// While polling, how often to try SSE again. Default 30 s.
    pub(crate) retry_sse_every: Duration,
    /// An SSE connection that stayed open this long (or delivered any event)
    /// counts as a success, resetting the attempt counter. Default 5 s; this
    /// stops a server that accepts and drops at once from looping forever.
    pub(crate) stable_after: Duration,
    /// Skip SSE and poll from the start.
    pub(crate) force_polling: bool,
    /// Heartbeat watchdog: an SSE connection that delivers no event (a
    /// heartbeat counts) for this long is treated as dead and replaced, resuming
    /// after the last id. Default: [`Watchdog::Default`].
    pub(crate) heartbeat_timeout: Watchdog,
    /// Which protocol the server speaks. Default `auto` (learnt from its hello).
    pub(crate) protocol: Protocol,
    /// Where the polling fallback comes from. Default `auto` (the Tidings form
    /// for a Tidings server, else none).
    pub(crate) poll: Poll,
    /// Timeout of one polling request. Default 10 s.
    pub(crate) poll_timeout: Duration,
    /// A stream the server ends normally is over (no reconnect). Default false.
    pub(crate) finite: bool,
}

/// The heartbeat watchdog setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watchdog {
    /// [`Watchdog::TIDINGS`] for a server that speaks Tidings (its heartbeats
    /// are guaranteed), off for any other (it may be silent for hours).
    Default,
    /// No watchdog.
    Off,
    /// This long without an event or heartbeat.
    After(Duration),
}

impl Watchdog {
    /// The default for Tidings servers: 1.5 × their 30 s heartbeat.
    pub(crate) const TIDINGS: Duration = Duration::from_secs(45);
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff: BackoffOptions::default(),
            poll_interval: Duration::from_millis(3000),
            retry_sse_every: Duration::from_millis(30_000),
            stable_after: Duration::from_secs(5),
            force_polling: false,
            heartbeat_timeout: Watchdog::Default,
            protocol: Protocol::Auto,
            poll: Poll::Auto,
            poll_timeout: Duration::from_secs(10),
            finite: false,
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Open the SSE transport, resuming after `last_event_id`; replaces any open one.
    OpenSse {
        /// The position to resume from (`?lastEventId=`).
        last_event_id: Option<String>,
    },
    /// Close the SSE transport.
    CloseSse,
    /// Fetch the polling form once and report with `handle_poll_response` / `handle_poll_error`.
    Poll {
        /// The position (`lastEventId=`).
        last_event_id: Option<String>,
    },
    /// Abort the polling request in flight, if any.
    CancelPoll,
}

/// What the shell must deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// The state changed.
    State(State),
    /// A new (not duplicate) event to decode and dispatch.
    Event(SseEvent),
    /// An error for `onError` listeners.
    Error(ErrorInfo),
    /// Whether the stream now speaks Tidings (the hello was seen, or a new
    /// connection started without it); decoding and tab followers follow it.
    Protocol(bool),
}

/// The longest `Retry-After` honoured: a larger one (a misconfigured
/// server, a far-off date) is cut to this, so a client never goes silent for days.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// The sans-IO connection core. See the module docs.
#[derive(Debug)]
pub(crate) struct Connection<J> {
    config: Config,
    jitter: J,
    state: State,
    running: bool,
    ended: bool,
    attempt: u32,
    sse_active: bool,
    sse_opened_at: Option<Duration>,
    got_event: bool,
    probing: bool,
    reconnect_at: Option<Duration>,
    poll_at: Option<Duration>,
    poll_in_flight: bool,
    poll_failures: u32,
    probe_at: Option<Duration>,
    position: Position,
    watchdog_at: Option<Duration>,
    auth_retried: bool,
    /// The server announced the Tidings protocol on the current (or last) connection.
    announced: bool,
    /// Its hello offered the polling form.
    offers_poll: bool,
    /// A new SSE connection whose first event tells whether the server is Tidings.
    awaiting_hello: bool,
    /// A new SSE connection whose first event with an id has not come yet.
    first_id_pending: bool,
    /// Events dropped as duplicates (Tidings servers only).
    duplicates: u64,
    /// The server's `Retry-After`: no reconnect, probe or poll before then.
    not_before: Option<Duration>,
    actions: VecDeque<Action>,
    outputs: VecDeque<Output>,
}

impl<J: Jitter> Connection<J> {
    /// A stopped connection (state `closed`) that resumes after `last_event_id`.
    pub(crate) fn new(config: Config, jitter: J, last_event_id: Option<String>) -> Self {
        Connection {
            config,
            jitter,
            state: State::Closed,
            running: false,
            ended: false,
            attempt: 0,
            sse_active: false,
            sse_opened_at: None,
            got_event: false,
            probing: false,
            reconnect_at: None,
            poll_at: None,
            poll_in_flight: false,
            poll_failures: 0,
            probe_at: None,
            position: Position::new(last_event_id.as_deref()),
            watchdog_at: None,
            auth_retried: false,
            announced: false,
            offers_poll: false,
            awaiting_hello: false,
            first_id_pending: false,
            duplicates: 0,
            not_before: None,
            actions: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    // ---- getters -------------------------------------------------------

    /// The current state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The id of the last event delivered (the resume position).
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.position.id()
    }

    /// Whether the Tidings behaviours are on: `protocol: 'tidings'`, or `auto`
    /// and the server announced the protocol.
    pub(crate) fn speaks_tidings(&self) -> bool {
        match self.config.protocol {
            Protocol::Tidings => true,
            Protocol::Plain => false,
            Protocol::Auto => self.announced,
        }
    }

    /// Events dropped as duplicates so far.
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Whether the stream is over for good (`end` received or `close()`).
    #[cfg(test)]
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// Failed SSE attempts in a row.
    #[cfg(test)]
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    // ---- commands from the application ---------------------------------

    /// Starts connecting (first listener added). No-op when running or ended.
    pub(crate) fn start(&mut self, now: Duration) {
        if self.running || self.ended {
            return;
        }
        self.running = true;
        self.attempt = 0;
        if self.config.force_polling {
            self.enter_polling(now);
        } else {
            self.set_state(State::Connecting);
            self.open_sse(now);
        }
    }

    /// Stops the connection (last listener left). It can be started again.
    pub(crate) fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        self.teardown();
        self.set_state(State::Closed);
    }

    /// Closes for good: stops and never starts again.
    pub(crate) fn close(&mut self) {
        self.ended = true;
        self.stop();
    }

    // ---- inputs ----------------------------------------------------------

    /// The SSE transport opened (HTTP 200 `text/event-stream`).
    pub(crate) fn handle_sse_open(&mut self, now: Duration) {
        if !self.sse_active {
            return;
        }
        self.sse_opened_at = Some(now);
        self.got_event = false;
        self.auth_retried = false;
        self.awaiting_hello = self.config.protocol != Protocol::Plain;
        self.first_id_pending = true;
        self.arm_watchdog(now);
        if self.probing {
            // Back from polling. Until this connection proves stable, one more
            // failure returns straight to polling.
            self.probing = false;
            self.attempt = self.config.backoff.max_attempts;
            self.stop_polling();
        }
        self.reconnect_at = None;
        self.set_state(State::Open);
    }

    /// An event arrived on the SSE transport. The protocol hello is taken
    /// here (never delivered); the first event of a connection that is not a
    /// hello means the server does not (or no longer does) speak Tidings.
    pub(crate) fn handle_sse_event(&mut self, event: SseEvent, now: Duration) {
        if !self.sse_active {
            return;
        }
        if self.config.protocol != Protocol::Plain {
            let hello = Hello::from_event(&event);
            if let Some(h) = &hello {
                self.offers_poll = h.offers("poll");
            }
            let hello = hello.is_some();
            if hello || std::mem::take(&mut self.awaiting_hello) {
                self.awaiting_hello = false;
                self.set_announced(hello);
            }
            if hello {
                // Not a sign of a working stream by itself (a server may greet and drop).
                self.arm_watchdog(now);
                return;
            }
        }
        self.arm_watchdog(now);
        self.got_event = true;
        self.attempt = 0;
        let may_rewind = self.first_id_pending;
        if event.id.as_deref().is_some_and(|id| !id.is_empty()) {
            self.first_id_pending = false;
        }
        self.process_event(event, may_rewind);
    }

    /// The `fetch` stream ended normally (the server finished the response).
    /// A `finite` stream is then over: `closed`, no reconnect. Otherwise it is
    /// a drop like any other and the stream reconnects after the last id.
    pub(crate) fn handle_sse_end(&mut self, now: Duration) {
        if !self.sse_active {
            return;
        }
        if self.config.finite {
            self.finish();
        } else {
            self.sse_failed(
                now,
                ErrorKind::Network,
                "the server closed the stream",
                None,
            );
        }
    }

    /// The stream request was refused for good (`onOpen` rejected the
    /// response, or a request that is not a plain `GET` got a 4xx or a wrong
    /// content type): the error, state `closed`, no retry.
    pub(crate) fn handle_sse_fatal(&mut self, error: ErrorInfo) {
        if !self.sse_active {
            return;
        }
        self.refuse(error);
    }

    /// The server's `retry:` hint (ms): the new backoff base.
    pub(crate) fn handle_retry_hint(&mut self, ms: u64) {
        if ms > 0 {
            self.config.backoff.initial_ms = ms;
        }
    }

    /// The server answered `Retry-After` (a 429 or 503 of the stream or the
    /// polling form; `delay` from `now`, at most [`MAX_RETRY_AFTER`]): no
    /// reconnect, SSE probe or poll before then, whatever the backoff says.
    /// Call it before reporting the failure it came with.
    pub(crate) fn handle_retry_after(&mut self, now: Duration, delay: Duration) {
        let at = now + delay.min(MAX_RETRY_AFTER);
        self.not_before = Some(self.not_before.map_or(at, |t| t.max(at)));
    }

    /// `at`, or the server's `Retry-After` when that is later.
    fn not_before(&self, at: Duration) -> Duration {
        self.not_before.map_or(at, |t| t.max(at))
    }

    /// The SSE transport failed or was closed by the server. The shell has
    /// already stopped the browser's own retry; the core decides what is next.
    pub(crate) fn handle_sse_error(&mut self, now: Duration, reason: &str) {
        self.sse_failed(now, ErrorKind::Network, reason, None);
    }

    /// The SSE transport could not be opened at all (the `EventSource`
    /// constructor threw, `getToken` failed): `error` is reported once, as
    /// the failure of this attempt, and the usual backoff follows.
    pub(crate) fn handle_sse_open_failed(&mut self, now: Duration, error: ErrorInfo) {
        let reason = error.message.clone();
        self.sse_failed(now, error.kind, &reason, Some(error));
    }

    /// The SSE request got an HTTP answer other than a `200` event stream
    /// (only the fetch transport can see it; `body` is the response text).
    ///
    /// - `401`: the token was rejected. The first time in a row the stream is
    ///   reopened at once (the shell asks `getToken` again before it); a second
    ///   401 in a row backs off like any failure.
    /// - `403`: access is refused for good: an `auth` error, state `closed`,
    ///   no retry (restart with new credentials: `close()` and connect again).
    /// - anything else (`204`, `429`, `5xx`, …): an `http` error and the usual
    ///   backoff, then polling, so a failing server sees no storm.
    pub(crate) fn handle_sse_rejected(&mut self, now: Duration, status: u16, body: Option<String>) {
        if !self.sse_active {
            return;
        }
        let mut error = ErrorInfo::new(
            if status == 401 || status == 403 {
                ErrorKind::Auth
            } else {
                ErrorKind::Http
            },
            [
                "stream request got HTTP ",
                &crate::json::uint_text(u64::from(status)),
            ]
            .concat(),
        );
        error.status = Some(status);
        error.raw = body.filter(|b| !b.is_empty());
        match status {
            403 => self.refuse(error),
            401 if !self.auth_retried => {
                self.auth_retried = true;
                self.sse_active = false;
                self.watchdog_at = None;
                self.actions.push_back(Action::CloseSse);
                self.outputs.push_back(Output::Error(error));
                if self.state == State::Polling {
                    self.probing = false;
                    self.probe_at = Some(now + self.config.retry_sse_every);
                } else {
                    self.set_state(State::Reconnecting);
                    self.open_sse(now);
                }
            }
            _ => {
                let reason = error.message.clone();
                self.sse_failed(now, error.kind, &reason, Some(error));
            }
        }
    }

    fn sse_failed(
        &mut self,
        now: Duration,
        kind: ErrorKind,
        reason: &str,
        error: Option<ErrorInfo>,
    ) {
        if !self.sse_active {
            return;
        }
        self.sse_active = false;
        self.watchdog_at = None;
        self.actions.push_back(Action::CloseSse);
        if self.state == State::Polling {
            // A failed probe: keep polling, probe again later.
            self.probing = false;
            self.probe_at = Some(self.not_before(now + self.config.retry_sse_every));
            return;
        }
        let stable = self.got_event
            || self
                .sse_opened_at
                .is_some_and(|t| now.saturating_sub(t) >= self.config.stable_after);
        if stable {
            self.attempt = 0;
        }
        self.sse_opened_at = None;
        self.attempt = self.attempt.saturating_add(1);
        let polling = self.polling_allowed();
        let mut error = error.unwrap_or_else(|| ErrorInfo::new(kind, reason));
        error.message = if polling && self.config.backoff.max_attempts < u32::MAX {
            [
                reason,
                " (attempt ",
                &crate::json::uint_text(u64::from(self.attempt)),
                " of ",
                &crate::json::uint_text(u64::from(self.config.backoff.max_attempts)),
                ")",
            ]
            .concat()
        } else {
            [
                reason,
                " (attempt ",
                &crate::json::uint_text(u64::from(self.attempt)),
                ")",
            ]
            .concat()
        };
        self.outputs.push_back(Output::Error(error));
        if polling && self.attempt > self.config.backoff.max_attempts {
            self.enter_polling(now);
        } else {
            let delay = self.config.backoff.delay(self.attempt, &mut self.jitter);
            self.reconnect_at = Some(self.not_before(now + delay));
            self.set_state(State::Reconnecting);
        }
    }

    /// The polling request succeeded.
    pub(crate) fn handle_poll_response(&mut self, now: Duration, response: PollResponse) {
        if !self.poll_in_flight {
            return;
        }
        self.poll_in_flight = false;
        self.poll_failures = 0;
        self.auth_retried = false;
        if let Some(ms) = response.retry_ms {
            self.handle_retry_hint(ms);
        }
        for e in response.events {
            if self.ended {
                return;
            }
            self.process_event(e.into(), false);
        }
        if let Some(head) = response.last_event_id.filter(|s| !s.is_empty()) {
            if self.speaks_tidings() {
                self.position.advance_to(&head);
            } else {
                // An opaque position: the poll function's word is the position.
                self.position.track(Some(&head));
            }
        }
        if response.end && !self.ended {
            if self.speaks_tidings() {
                self.process_event(SseEvent::new("end", "{}", None), false);
            } else {
                self.finish();
            }
            return;
        }
        if self.state == State::Polling {
            self.poll_at = Some(now + self.config.poll_interval);
        }
    }

    /// The polling request failed (network, HTTP status or bad body).
    pub(crate) fn handle_poll_error(&mut self, now: Duration, error: ErrorInfo) {
        if !self.poll_in_flight {
            return;
        }
        self.poll_in_flight = false;
        match error.status {
            Some(403) => return self.refuse(error),
            Some(401) if !self.auth_retried => {
                // Ask for a fresh token and poll again at once, once.
                self.auth_retried = true;
                self.outputs.push_back(Output::Error(error));
                if self.state == State::Polling {
                    self.send_poll();
                }
                return;
            }
            _ => {}
        }
        self.poll_failures += 1;
        self.outputs.push_back(Output::Error(error));
        if self.state == State::Polling {
            // Back off on repeated failures, between the interval and the backoff max.
            let ceiling = self.config.backoff.ceiling(self.poll_failures);
            let wait = self.config.poll_interval.max(ceiling);
            self.poll_at = Some(self.not_before(now + wait));
        }
    }

    /// The browser came back `online`, or the page became visible: retry now.
    pub(crate) fn handle_wake(&mut self, now: Duration) {
        // The server's `Retry-After` wins over an eager retry.
        if !self.running || self.ended || self.not_before.is_some_and(|t| t > now) {
            return;
        }
        match self.state {
            State::Reconnecting if !self.sse_active => {
                self.reconnect_at = None;
                self.open_sse(now);
            }
            State::Polling if !self.sse_active => {
                self.probe_at = None;
                self.probe(now);
            }
            _ => {}
        }
    }

    /// A deadline from `poll_timeout()` passed.
    pub(crate) fn handle_timeout(&mut self, now: Duration) {
        if !self.running || self.ended {
            return;
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.open_sse(now);
        }
        if self.poll_at.is_some_and(|t| t <= now) && !self.poll_in_flight {
            self.poll_at = None;
            self.send_poll();
        }
        if self.probe_at.is_some_and(|t| t <= now) {
            self.probe_at = None;
            if !self.sse_active {
                self.probe(now);
            }
        }
        if self.sse_active && self.watchdog_at.is_some_and(|t| t <= now) {
            let ms = crate::json::uint_text(
                u64::try_from(self.watchdog_timeout().unwrap_or_default().as_millis())
                    .unwrap_or(u64::MAX),
            );
            self.sse_failed(
                now,
                ErrorKind::Network,
                &["no event or heartbeat for ", &ms, " ms (watchdog)"].concat(),
                None,
            );
        }
    }

    // ---- outputs ---------------------------------------------------------

    /// The next deadline at which `handle_timeout` must be called.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        let poll_at = if self.poll_in_flight {
            None
        } else {
            self.poll_at
        };
        let watchdog_at = if self.sse_active {
            self.watchdog_at
        } else {
            None
        };
        [self.reconnect_at, poll_at, self.probe_at, watchdog_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing the shell must do.
    #[must_use]
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event, state change or error to deliver.
    #[must_use]
    pub(crate) fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Whether anything waits for [`Connection::poll`].
    // Used by the browser shell (wasm) and the tests.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    // ---- internals -------------------------------------------------------

    fn set_state(&mut self, s: State) {
        if self.state != s {
            self.state = s;
            self.outputs.push_back(Output::State(s));
        }
    }

    fn open_sse(&mut self, now: Duration) {
        self.sse_active = true;
        self.sse_opened_at = None;
        self.got_event = false;
        // Also bounds a connect that hangs before any byte arrives.
        self.arm_watchdog(now);
        self.actions.push_back(Action::OpenSse {
            last_event_id: self.position.id().map(str::to_owned),
        });
    }

    fn probe(&mut self, now: Duration) {
        self.probing = true;
        self.open_sse(now);
    }

    fn enter_polling(&mut self, now: Duration) {
        self.set_state(State::Polling);
        self.reconnect_at = None;
        self.probing = false;
        self.poll_failures = 0;
        self.probe_at = if self.config.force_polling {
            None
        } else {
            Some(self.not_before(now + self.config.retry_sse_every))
        };
        if !self.poll_in_flight {
            match self.not_before.filter(|t| *t > now) {
                Some(t) => self.poll_at = Some(t),
                None => self.send_poll(),
            }
        }
    }

    fn send_poll(&mut self) {
        self.poll_in_flight = true;
        self.actions.push_back(Action::Poll {
            last_event_id: self.position.id().map(str::to_owned),
        });
    }

    fn stop_polling(&mut self) {
        if self.poll_in_flight {
            self.poll_in_flight = false;
            self.actions.push_back(Action::CancelPoll);
        }
        self.poll_at = None;
        self.probe_at = None;
    }

    /// Whether a polling fallback exists: `poll` set, or the Tidings form of a
    /// Tidings server (also what `forcePolling` uses when `poll` is not set).
    fn polling_allowed(&self) -> bool {
        match self.config.poll {
            Poll::Off => false,
            Poll::Tidings | Poll::Function => true,
            Poll::Auto => match self.config.protocol {
                Protocol::Tidings => true,
                Protocol::Plain => self.config.force_polling,
                Protocol::Auto => self.config.force_polling || (self.announced && self.offers_poll),
            },
        }
    }

    /// The watchdog's timeout for the server as known now.
    fn watchdog_timeout(&self) -> Option<Duration> {
        match self.config.heartbeat_timeout {
            Watchdog::Off => None,
            Watchdog::After(d) => Some(d).filter(|d| !d.is_zero()),
            Watchdog::Default => self.speaks_tidings().then_some(Watchdog::TIDINGS),
        }
    }

    fn arm_watchdog(&mut self, now: Duration) {
        self.watchdog_at = self.watchdog_timeout().map(|t| now + t);
    }

    /// Records whether the server announced Tidings; tells the shell when
    /// that changes what the stream speaks.
    fn set_announced(&mut self, announced: bool) {
        let before = self.speaks_tidings();
        self.announced = announced;
        if self.speaks_tidings() != before {
            self.outputs
                .push_back(Output::Protocol(self.speaks_tidings()));
        }
    }

    /// The stream is over (a finite stream ended, `end`): closed for good.
    fn finish(&mut self) {
        self.ended = true;
        self.running = false;
        self.teardown();
        self.set_state(State::Closed);
    }

    /// A refusal (403): an `auth` error and state `closed`, no retry.
    fn refuse(&mut self, error: ErrorInfo) {
        self.outputs.push_back(Output::Error(error));
        self.running = false;
        self.teardown();
        self.set_state(State::Closed);
    }

    fn teardown(&mut self) {
        self.watchdog_at = None;
        if self.sse_active {
            self.sse_active = false;
            self.actions.push_back(Action::CloseSse);
        }
        self.stop_polling();
        self.reconnect_at = None;
        self.probing = false;
        self.sse_opened_at = None;
    }

    /// Last-id tracking and de-duplication, then delivery.
    ///
    /// Only a Tidings server promises increasing numeric ids, so only then is
    /// an id at or below the position a duplicate (dropped and counted) and
    /// `end` final. Even then, when the first id of a new connection
    /// (`may_rewind`) is below the position, the server has lost its
    /// numbering (restarted without its log): the event is new, it is
    /// delivered, the position moves back, and an error says so.
    fn process_event(&mut self, event: SseEvent, may_rewind: bool) {
        let tidings = self.speaks_tidings();
        if tidings
            && self
                .position
                .is_duplicate(event.id.as_deref(), &event.event)
        {
            let below = match (
                event.id.as_deref().and_then(|i| i.parse::<u64>().ok()),
                self.position.num(),
            ) {
                (Some(n), Some(last)) => n < last,
                _ => false,
            };
            if !(may_rewind && below) {
                self.duplicates += 1;
                return; // delivered already
            }
            self.outputs.push_back(Output::Error(ErrorInfo::new(
                ErrorKind::Protocol,
                [
                    "event ids went backwards (last delivered ",
                    self.position.id().unwrap_or(""),
                    ", the new connection starts at ",
                    event.id.as_deref().unwrap_or(""),
                    "): delivering from there",
                ]
                .concat(),
            )));
        }
        self.position.track(event.id.as_deref());
        let is_end = tidings && event.event == "end";
        self.outputs.push_back(Output::Event(event));
        if is_end {
            self.finish();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
