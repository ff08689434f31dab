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

use crate::backoff::{BackoffOptions, Jitter};
use crate::messages::PollResponse;
use crate::parser::SseEvent;
use crate::position::Position;

/// Connection state, as reported to `onState` listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The kind of an error reported to `onError` listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorInfo {
            kind,
            message: message.into(),
            raw: None,
            status: None,
        }
    }
}

/// Timing settings of the state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Reconnect backoff and the attempts before polling.
    pub backoff: BackoffOptions,
    /// Pause between polling requests. Default 3 s.
    pub poll_interval: Duration,
    /// While polling, how often to try SSE again. Default 30 s.
    pub retry_sse_every: Duration,
    /// An SSE connection that stayed open this long (or delivered any event)
    /// counts as a success, resetting the attempt counter. Default 5 s; this
    /// stops a server that accepts and drops at once from looping forever.
    pub stable_after: Duration,
    /// Skip SSE and poll from the start.
    pub force_polling: bool,
    /// Heartbeat watchdog: an SSE connection that delivers no event (a
    /// heartbeat counts) for this long is treated as dead and replaced, resuming
    /// after the last id. `None` disables it. Default 45 s (1.5 × the server's
    /// 30 s heartbeat).
    pub heartbeat_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff: BackoffOptions::default(),
            poll_interval: Duration::from_millis(3000),
            retry_sse_every: Duration::from_millis(30_000),
            stable_after: Duration::from_secs(5),
            force_polling: false,
            heartbeat_timeout: Some(Duration::from_secs(45)),
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
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
pub enum Output {
    /// The state changed.
    State(State),
    /// A new (not duplicate) event to decode and dispatch.
    Event(SseEvent),
    /// An error for `onError` listeners.
    Error(ErrorInfo),
}

/// The sans-IO connection core. See the module docs.
#[derive(Debug)]
pub struct Connection<J> {
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
    actions: VecDeque<Action>,
    outputs: VecDeque<Output>,
}

impl<J: Jitter> Connection<J> {
    /// A stopped connection (state `closed`) that resumes after `last_event_id`.
    pub fn new(config: Config, jitter: J, last_event_id: Option<String>) -> Self {
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
            actions: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    // ---- getters -------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The id of the last event delivered (the resume position).
    pub fn last_event_id(&self) -> Option<&str> {
        self.position.id()
    }

    /// Whether the stream is over for good (`end` received or `close()`).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Failed SSE attempts in a row.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The settings in force (the backoff base may come from the server).
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- commands from the application ---------------------------------

    /// Starts connecting (first listener added). No-op when running or ended.
    pub fn start(&mut self, now: Duration) {
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
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        self.teardown();
        self.set_state(State::Closed);
    }

    /// Closes for good: stops and never starts again.
    pub fn close(&mut self) {
        self.ended = true;
        self.stop();
    }

    // ---- inputs ----------------------------------------------------------

    /// The SSE transport opened (HTTP 200 `text/event-stream`).
    pub fn handle_sse_open(&mut self, now: Duration) {
        if !self.sse_active {
            return;
        }
        self.sse_opened_at = Some(now);
        self.got_event = false;
        self.auth_retried = false;
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

    /// An event arrived on the SSE transport.
    pub fn handle_sse_event(&mut self, event: SseEvent, now: Duration) {
        if !self.sse_active {
            return;
        }
        self.arm_watchdog(now);
        self.got_event = true;
        self.attempt = 0;
        self.process_event(event);
    }

    /// The server's `retry:` hint (ms): the new backoff base.
    pub fn handle_retry_hint(&mut self, ms: u64) {
        if ms > 0 {
            self.config.backoff.initial_ms = ms;
        }
    }

    /// The SSE transport failed or was closed by the server. The shell has
    /// already stopped the browser's own retry; the core decides what is next.
    pub fn handle_sse_error(&mut self, now: Duration, reason: &str) {
        self.sse_failed(now, ErrorKind::Network, reason, None);
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
    pub fn handle_sse_rejected(&mut self, now: Duration, status: u16, body: Option<String>) {
        if !self.sse_active {
            return;
        }
        let mut error = ErrorInfo::new(
            if status == 401 || status == 403 {
                ErrorKind::Auth
            } else {
                ErrorKind::Http
            },
            format!("stream request got HTTP {status}"),
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
            self.probe_at = Some(now + self.config.retry_sse_every);
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
        self.attempt += 1;
        let mut error = error.unwrap_or_else(|| ErrorInfo::new(kind, reason));
        error.message = format!(
            "{reason} (attempt {} of {})",
            self.attempt, self.config.backoff.max_attempts
        );
        self.outputs.push_back(Output::Error(error));
        if self.attempt > self.config.backoff.max_attempts {
            self.enter_polling(now);
        } else {
            let delay = self.config.backoff.delay(self.attempt, &mut self.jitter);
            self.reconnect_at = Some(now + delay);
            self.set_state(State::Reconnecting);
        }
    }

    /// The polling request succeeded.
    pub fn handle_poll_response(&mut self, now: Duration, response: PollResponse) {
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
            self.process_event(e.into());
        }
        if let Some(head) = response.last_event_id.filter(|s| !s.is_empty()) {
            self.position.advance_to(&head);
        }
        if response.end && !self.ended {
            self.process_event(SseEvent::new("end", "{}", None));
            return;
        }
        if self.state == State::Polling {
            self.poll_at = Some(now + self.config.poll_interval);
        }
    }

    /// The polling request failed (network, HTTP status or bad body).
    pub fn handle_poll_error(&mut self, now: Duration, error: ErrorInfo) {
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
            self.poll_at = Some(now + wait);
        }
    }

    /// The browser came back `online`, or the page became visible: retry now.
    pub fn handle_wake(&mut self, now: Duration) {
        if !self.running || self.ended {
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
    pub fn handle_timeout(&mut self, now: Duration) {
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
            let ms = self
                .config
                .heartbeat_timeout
                .unwrap_or_default()
                .as_millis();
            self.sse_failed(
                now,
                ErrorKind::Network,
                &format!("no event or heartbeat for {ms} ms (watchdog)"),
                None,
            );
        }
    }

    // ---- outputs ---------------------------------------------------------

    /// The next deadline at which `handle_timeout` must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
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
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event, state change or error to deliver.
    #[must_use]
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
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
            Some(now + self.config.retry_sse_every)
        };
        if !self.poll_in_flight {
            self.send_poll();
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

    fn arm_watchdog(&mut self, now: Duration) {
        self.watchdog_at = self
            .config
            .heartbeat_timeout
            .filter(|t| !t.is_zero())
            .map(|t| now + t);
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
    fn process_event(&mut self, event: SseEvent) {
        if self
            .position
            .is_duplicate(event.id.as_deref(), &event.event)
        {
            return; // already delivered
        }
        self.position.track(event.id.as_deref());
        let is_end = event.event == "end";
        self.outputs.push_back(Output::Event(event));
        if is_end {
            self.ended = true;
            self.running = false;
            self.teardown();
            self.set_state(State::Closed);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
    use super::*;
    use crate::backoff::{FixedJitter, NoJitter};
    use crate::messages::PollEvent;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A fake clock driving a connection, collecting everything it emits.
    struct Harness {
        conn: Connection<NoJitter>,
        now: Duration,
        actions: Vec<Action>,
        states: Vec<State>,
        events: Vec<SseEvent>,
        errors: Vec<ErrorInfo>,
    }

    impl Harness {
        fn new(config: Config) -> Self {
            Self::with_last(config, None)
        }
        fn with_last(config: Config, last: Option<&str>) -> Self {
            Harness {
                conn: Connection::new(config, NoJitter, last.map(str::to_owned)),
                now: Duration::ZERO,
                actions: vec![],
                states: vec![],
                events: vec![],
                errors: vec![],
            }
        }
        fn drain(&mut self) {
            while let Some(a) = self.conn.poll_action() {
                self.actions.push(a);
            }
            while let Some(o) = self.conn.poll() {
                match o {
                    Output::State(s) => self.states.push(s),
                    Output::Event(e) => self.events.push(e),
                    Output::Error(e) => self.errors.push(e),
                }
            }
        }
        fn take_actions(&mut self) -> Vec<Action> {
            self.drain();
            std::mem::take(&mut self.actions)
        }
        /// Advances the fake clock to the next deadline (bounded).
        fn fire(&mut self) -> Duration {
            let t = self.conn.poll_timeout().expect("a deadline");
            assert!(t >= self.now);
            self.now = t;
            self.conn.handle_timeout(t);
            self.drain();
            t
        }
        fn sse_event(&mut self, name: &str, id: Option<&str>) {
            self.conn
                .handle_sse_event(SseEvent::new(name, "{}", id), self.now);
            self.drain();
        }
        fn ids(&self) -> Vec<Option<&str>> {
            self.events.iter().map(|e| e.id.as_deref()).collect()
        }
    }

    fn open(last: Option<&str>) -> Action {
        Action::OpenSse {
            last_event_id: last.map(str::to_owned),
        }
    }

    #[test]
    fn connect_open_and_receive() {
        let mut h = Harness::new(quiet());
        assert_eq!(h.conn.state(), State::Closed);
        h.conn.start(h.now);
        assert_eq!(h.take_actions(), vec![open(None)]);
        h.conn.handle_sse_open(h.now);
        h.sse_event("message", Some("1"));
        h.sse_event("heartbeat", None);
        assert_eq!(h.states, vec![State::Connecting, State::Open]);
        assert_eq!(h.ids(), vec![Some("1"), None]);
        assert_eq!(h.conn.last_event_id(), Some("1"));
        assert_eq!(h.conn.poll_timeout(), None);
    }

    #[test]
    fn backoff_schedule_then_polling() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.drain();
        let mut delays = vec![];
        for _ in 0..5 {
            let before = h.now;
            h.conn.handle_sse_error(h.now, "EventSource error");
            h.drain();
            assert_eq!(h.conn.state(), State::Reconnecting);
            let t = h.fire();
            delays.push((t - before).as_millis() as u64);
        }
        assert_eq!(delays, vec![1000, 2000, 4000, 8000, 16000]);
        assert_eq!(h.errors.len(), 5);
        h.take_actions();
        h.conn.handle_sse_error(h.now, "EventSource error");
        h.drain();
        assert_eq!(h.conn.state(), State::Polling);
        let acts = h.take_actions();
        assert_eq!(
            acts.iter()
                .filter(|a| matches!(a, Action::OpenSse { .. }))
                .count(),
            0
        );
        assert!(acts.contains(&Action::Poll {
            last_event_id: None
        }));
        assert_eq!(
            h.states,
            vec![State::Connecting, State::Reconnecting, State::Polling]
        );
    }

    #[test]
    fn jitter_is_injected() {
        let mut c = Connection::new(Config::default(), FixedJitter(0.25), None);
        c.start(Duration::ZERO);
        c.handle_sse_error(Duration::ZERO, "x");
        assert_eq!(c.poll_timeout(), Some(ms(250)));
    }

    #[test]
    fn retry_hint_becomes_base() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_retry_hint(200);
        h.conn.handle_sse_error(h.now, "x");
        assert_eq!(h.conn.poll_timeout(), Some(ms(200)));
    }

    #[test]
    fn reconnect_resumes_and_dedups() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        h.sse_event("message", Some("1"));
        h.sse_event("message", Some("2"));
        h.conn.handle_sse_error(h.now, "dropped");
        h.drain();
        h.actions.clear();
        // The event counted as success: attempt 1 again, base delay.
        assert_eq!(h.conn.poll_timeout(), Some(ms(1000)));
        h.fire();
        assert_eq!(h.take_actions(), vec![open(Some("2"))]);
        h.conn.handle_sse_open(h.now);
        // The server replays 2 (duplicate) then 3.
        h.sse_event("message", Some("2"));
        h.sse_event("message", Some("3"));
        h.sse_event("message", None);
        assert_eq!(h.ids(), vec![Some("1"), Some("2"), Some("3"), None]);
        assert_eq!(h.states.last(), Some(&State::Open));
    }

    #[test]
    fn reset_moves_position_even_backwards() {
        let mut h = Harness::with_last(Config::default(), Some("500"));
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        h.sse_event("reset", Some("40"));
        h.sse_event("message", Some("41"));
        assert_eq!(h.ids(), vec![Some("40"), Some("41")]);
        assert_eq!(h.conn.last_event_id(), Some("41"));
    }

    #[test]
    fn non_numeric_ids_pass_and_are_resumed_from() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        h.sse_event("message", Some("abc"));
        h.sse_event("message", Some("abc"));
        h.sse_event("message", Some(""));
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.conn.last_event_id(), Some("abc"));
    }

    #[test]
    fn quick_drops_without_events_are_failures() {
        // A server that accepts and closes at once must not loop at the base delay forever.
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        for n in 1..=5 {
            h.conn.handle_sse_open(h.now);
            h.now += ms(10);
            h.conn.handle_sse_error(h.now, "closed");
            assert_eq!(h.conn.attempts(), n);
            h.fire();
        }
        h.conn.handle_sse_open(h.now);
        h.conn.handle_sse_error(h.now, "closed");
        assert_eq!(h.conn.state(), State::Polling);
    }

    #[test]
    fn long_lived_connection_resets_attempts() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_sse_error(h.now, "x");
        h.fire();
        h.conn.handle_sse_error(h.now, "x");
        h.fire();
        assert_eq!(h.conn.attempts(), 2);
        h.conn.handle_sse_open(h.now);
        h.now += ms(6000);
        h.conn.handle_sse_error(h.now, "x");
        assert_eq!(h.conn.attempts(), 1);
    }

    fn poll_resp(ids: &[&str], last: &str) -> PollResponse {
        PollResponse {
            events: ids
                .iter()
                .map(|i| PollEvent {
                    id: Some((*i).into()),
                    event: "message".into(),
                    data: "{}".into(),
                })
                .collect(),
            last_event_id: Some(last.into()),
            end: false,
            retry_ms: Some(1000),
        }
    }

    fn into_polling(h: &mut Harness) {
        h.conn.start(h.now);
        for _ in 0..6 {
            h.conn.handle_sse_error(h.now, "x");
            if h.conn.state() == State::Polling {
                break;
            }
            h.fire();
        }
        assert_eq!(h.conn.state(), State::Polling);
        h.drain();
        h.actions.clear();
    }

    #[test]
    fn polling_delivers_dedups_and_adopts_head() {
        let mut h = Harness::new(Config::default());
        into_polling(&mut h);
        h.conn.handle_poll_response(h.now, poll_resp(&[], "7"));
        assert_eq!(h.conn.last_event_id(), Some("7"));
        assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(3000)));
        let t = h.fire();
        assert_eq!(
            h.take_actions(),
            vec![Action::Poll {
                last_event_id: Some("7".into())
            }]
        );
        h.conn
            .handle_poll_response(t, poll_resp(&["7", "8", "9"], "9"));
        h.drain();
        assert_eq!(h.ids(), vec![Some("8"), Some("9")]);
        // A stale response (nothing in flight) is ignored.
        h.conn.handle_poll_response(t, poll_resp(&["10"], "10"));
        h.drain();
        assert_eq!(h.events.len(), 2);
    }

    #[test]
    fn polling_errors_back_off_and_report() {
        let mut h = Harness::new(Config {
            retry_sse_every: Duration::from_secs(1000),
            ..Config::default()
        });
        into_polling(&mut h);
        let mut err = ErrorInfo::new(ErrorKind::Http, "HTTP 500");
        err.status = Some(500);
        h.conn.handle_poll_error(h.now, err.clone());
        h.drain();
        assert_eq!(h.errors.last(), Some(&err));
        assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(3000)));
        for _ in 0..4 {
            h.fire();
            h.conn.handle_poll_error(h.now, err.clone());
        }
        // 5 failures: ceiling(5) = 16 s > interval.
        assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(16000)));
        assert_eq!(h.conn.state(), State::Polling);
    }

    #[test]
    fn polling_probes_sse_and_goes_back() {
        let mut h = Harness::new(quiet());
        into_polling(&mut h);
        let entered = h.now;
        h.conn.handle_poll_response(h.now, poll_resp(&["1"], "1"));
        // Run the clock until the probe (polls every 3 s meanwhile; bounded loop).
        let mut probe = None;
        for _ in 0..20 {
            h.fire();
            for a in h.take_actions() {
                match a {
                    Action::Poll { .. } => h.conn.handle_poll_response(h.now, poll_resp(&[], "1")),
                    Action::OpenSse { last_event_id } => probe = Some(last_event_id),
                    _ => {}
                }
            }
            if probe.is_some() {
                break;
            }
        }
        assert_eq!(probe, Some(Some("1".into())));
        assert_eq!(h.now - entered, ms(30000));
        // The probe fails: still polling, next probe in 30 s.
        h.conn.handle_sse_error(h.now, "x");
        assert_eq!(h.conn.state(), State::Polling);
        assert_eq!(h.take_actions(), vec![Action::CloseSse]);
        // Wake (online) probes at once and this one works.
        h.conn.handle_wake(h.now);
        assert_eq!(h.take_actions(), vec![open(Some("1"))]);
        h.conn.handle_sse_open(h.now);
        h.drain();
        assert_eq!(h.conn.state(), State::Open);
        // Polling stopped: no more deadlines.
        assert_eq!(h.conn.poll_timeout(), None);
        // Unproven: a quick failure goes straight back to polling.
        h.conn.handle_sse_error(h.now, "x");
        assert_eq!(h.conn.state(), State::Polling);
    }

    #[test]
    fn probe_open_cancels_poll_in_flight() {
        let mut h = Harness::new(Config::default());
        into_polling(&mut h); // a poll is in flight
        h.conn.handle_wake(h.now);
        h.conn.handle_sse_open(h.now);
        assert_eq!(h.take_actions(), vec![open(None), Action::CancelPoll]);
        // A late poll response is ignored.
        h.conn.handle_poll_response(h.now, poll_resp(&["5"], "5"));
        h.drain();
        assert!(h.events.is_empty());
    }

    #[test]
    fn wake_retries_immediately() {
        let mut h = Harness::new(quiet());
        h.conn.start(h.now);
        h.conn.handle_sse_error(h.now, "x");
        h.drain();
        h.actions.clear();
        h.conn.handle_wake(h.now);
        assert_eq!(h.take_actions(), vec![open(None)]);
        assert_eq!(h.conn.poll_timeout(), None);
        // While open or connecting, wake does nothing.
        h.conn.handle_wake(h.now);
        assert_eq!(h.take_actions(), vec![]);
    }

    #[test]
    fn end_closes_for_good() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        h.sse_event("completed", Some("9"));
        h.sse_event("end", None);
        assert_eq!(h.conn.state(), State::Closed);
        assert!(h.conn.is_ended());
        assert!(h.take_actions().contains(&Action::CloseSse));
        // The transport's close error after `end` changes nothing; no reconnect.
        h.conn.handle_sse_error(h.now, "closed");
        h.conn.handle_wake(h.now);
        h.conn.start(h.now);
        assert_eq!(h.take_actions(), vec![]);
        assert_eq!(h.conn.poll_timeout(), None);
        assert_eq!(h.events.last().map(|e| e.event.as_str()), Some("end"));
    }

    #[test]
    fn end_from_polling() {
        let mut h = Harness::new(Config::default());
        into_polling(&mut h);
        let mut r = poll_resp(&["3"], "3");
        r.end = true;
        h.conn.handle_poll_response(h.now, r);
        h.drain();
        assert_eq!(h.conn.state(), State::Closed);
        assert_eq!(
            h.events
                .iter()
                .map(|e| e.event.as_str())
                .collect::<Vec<_>>(),
            vec!["message", "end"]
        );
        assert_eq!(h.conn.poll_timeout(), None);
    }

    #[test]
    fn stop_and_restart_keeps_position() {
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        h.sse_event("message", Some("4"));
        h.actions.clear();
        h.conn.stop();
        assert_eq!(h.take_actions(), vec![Action::CloseSse]);
        assert_eq!(h.conn.state(), State::Closed);
        // Late events of the closed transport are ignored.
        h.sse_event("message", Some("5"));
        assert_eq!(h.events.len(), 1);
        h.conn.start(h.now);
        assert_eq!(h.take_actions(), vec![open(Some("4"))]);
        h.conn.close();
        h.conn.start(h.now);
        assert_eq!(h.take_actions(), vec![Action::CloseSse]);
        assert_eq!(h.conn.state(), State::Closed);
    }

    #[test]
    fn force_polling_never_opens_sse() {
        let mut h = Harness::new(Config {
            force_polling: true,
            ..Config::default()
        });
        h.conn.start(h.now);
        assert_eq!(
            h.take_actions(),
            vec![Action::Poll {
                last_event_id: None
            }]
        );
        h.conn.handle_poll_response(h.now, poll_resp(&[], "0"));
        for _ in 0..20 {
            h.fire();
            for a in h.take_actions() {
                assert!(matches!(a, Action::Poll { .. }));
                h.conn.handle_poll_response(h.now, poll_resp(&[], "0"));
            }
        }
        assert_eq!(h.conn.state(), State::Polling);
    }

    fn quiet() -> Config {
        Config {
            heartbeat_timeout: None,
            ..Config::default()
        }
    }

    #[test]
    fn watchdog_replaces_a_silent_connection_with_the_last_id() {
        let mut h = Harness::new(Config {
            heartbeat_timeout: Some(ms(1500)),
            ..Config::default()
        });
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        h.sse_event("message", Some("7"));
        // Heartbeats (no id) keep it alive.
        for _ in 0..5 {
            h.now += ms(1000);
            h.sse_event("heartbeat", None);
        }
        assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(1500)));
        h.take_actions();
        // Silence: the deadline fires exactly 1.5 s after the last heartbeat.
        let last = h.now;
        let t = h.fire();
        assert_eq!(t - last, ms(1500));
        assert_eq!(h.conn.state(), State::Reconnecting);
        assert_eq!(h.take_actions(), vec![Action::CloseSse]);
        assert!(h
            .errors
            .last()
            .is_some_and(|e| e.message.contains("watchdog") && e.kind == ErrorKind::Network));
        // The connection had delivered events: attempt 1, base delay, resume after 7.
        assert_eq!(h.conn.attempts(), 1);
        h.fire();
        assert_eq!(h.take_actions(), vec![open(Some("7"))]);
    }

    #[test]
    fn watchdog_bounds_a_hanging_connect_and_can_be_disabled() {
        let mut h = Harness::new(Config {
            heartbeat_timeout: Some(ms(2000)),
            ..Config::default()
        });
        h.conn.start(h.now);
        assert_eq!(h.conn.poll_timeout(), Some(ms(2000)));
        h.fire();
        assert_eq!(h.conn.state(), State::Reconnecting);
        let mut h = Harness::new(quiet());
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        assert_eq!(h.conn.poll_timeout(), None);
        // Default: 45 s.
        let mut h = Harness::new(Config::default());
        h.conn.start(h.now);
        h.conn.handle_sse_open(h.now);
        assert_eq!(h.conn.poll_timeout(), Some(ms(45_000)));
        // No watchdog while polling or stopped.
        h.conn.stop();
        assert_eq!(h.conn.poll_timeout(), None);
    }

    #[test]
    fn a_401_reopens_at_once_then_backs_off() {
        let mut h = Harness::new(quiet());
        h.conn.start(h.now);
        h.take_actions();
        h.conn
            .handle_sse_rejected(h.now, 401, Some("{\"error\":\"expired\"}".into()));
        // Closed and reopened at once (the shell asks getToken again before opening).
        assert_eq!(h.take_actions(), vec![Action::CloseSse, open(None)]);
        assert_eq!(
            h.errors.last().map(|e| (e.kind, e.status)),
            Some((ErrorKind::Auth, Some(401)))
        );
        assert_eq!(h.conn.attempts(), 0);
        // A second 401 in a row backs off like any failure.
        h.conn.handle_sse_rejected(h.now, 401, None);
        assert_eq!(h.take_actions(), vec![Action::CloseSse]);
        assert_eq!(h.conn.state(), State::Reconnecting);
        assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(1000)));
        h.fire();
        // Success clears the flag: a later 401 again gets one immediate retry.
        h.conn.handle_sse_open(h.now);
        h.take_actions();
        h.conn.handle_sse_error(h.now, "dropped");
        h.fire();
        h.take_actions();
        h.conn.handle_sse_rejected(h.now, 401, None);
        assert_eq!(h.take_actions(), vec![Action::CloseSse, open(None)]);
    }

    #[test]
    fn a_403_closes_with_an_auth_error_and_no_retry() {
        let mut h = Harness::new(quiet());
        h.conn.start(h.now);
        h.take_actions();
        h.conn
            .handle_sse_rejected(h.now, 403, Some("{\"error\":\"forbidden\"}".into()));
        assert_eq!(h.take_actions(), vec![Action::CloseSse]);
        assert_eq!(h.conn.state(), State::Closed);
        let e = h.errors.last().unwrap();
        assert_eq!(
            (e.kind, e.status, e.raw.as_deref()),
            (
                ErrorKind::Auth,
                Some(403),
                Some("{\"error\":\"forbidden\"}")
            )
        );
        assert_eq!(h.conn.poll_timeout(), None);
        h.conn.handle_wake(h.now);
        assert_eq!(h.take_actions(), vec![]);
    }

    #[test]
    fn http_failures_back_off_without_a_storm() {
        // 503 and 204 five times: 5 delayed attempts, then polling; never an
        // immediate retry.
        let mut h = Harness::new(quiet());
        h.conn.start(h.now);
        h.take_actions();
        let mut opens = 1;
        for (i, status) in [503, 204, 500, 503, 204].into_iter().enumerate() {
            h.conn.handle_sse_rejected(h.now, status, None);
            h.drain();
            assert_eq!(
                h.errors.last().map(|e| (e.kind, e.status)),
                Some((ErrorKind::Http, Some(status)))
            );
            assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(1000 << i)));
            h.fire();
            opens += h
                .take_actions()
                .iter()
                .filter(|a| matches!(a, Action::OpenSse { .. }))
                .count();
        }
        assert_eq!(opens, 6);
        h.conn.handle_sse_rejected(h.now, 503, None);
        assert_eq!(h.conn.state(), State::Polling);
    }

    #[test]
    fn polling_401_retries_once_and_403_stops() {
        let mut h = Harness::new(Config {
            heartbeat_timeout: None,
            retry_sse_every: Duration::from_secs(1000),
            ..Config::default()
        });
        into_polling(&mut h);
        let mut e401 = ErrorInfo::new(ErrorKind::Auth, "HTTP 401");
        e401.status = Some(401);
        h.conn.handle_poll_error(h.now, e401.clone());
        assert_eq!(
            h.take_actions(),
            vec![Action::Poll {
                last_event_id: None
            }]
        );
        h.conn.handle_poll_error(h.now, e401);
        assert_eq!(h.take_actions(), vec![]);
        assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(3000)));
        h.fire();
        let mut e403 = ErrorInfo::new(ErrorKind::Auth, "HTTP 403");
        e403.status = Some(403);
        h.conn.handle_poll_error(h.now, e403);
        assert_eq!(h.conn.state(), State::Closed);
        assert_eq!(h.conn.poll_timeout(), None);
    }

    #[test]
    fn state_names() {
        let names: Vec<&str> = [
            State::Connecting,
            State::Open,
            State::Reconnecting,
            State::Polling,
            State::Closed,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(
            names,
            ["connecting", "open", "reconnecting", "polling", "closed"]
        );
        assert_eq!(ErrorKind::Decode.as_str(), "decode");
    }
}
