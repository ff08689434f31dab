//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
use crate::backoff::{FixedJitter, NoJitter};
use crate::messages::PollEvent;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The settings of a stream known to speak Tidings (`protocol: 'tidings'`).
fn tidings() -> Config {
    Config {
        protocol: Protocol::Tidings,
        ..Config::default()
    }
}

/// A fake clock driving a connection, collecting everything it emits.
struct Harness {
    conn: Connection<NoJitter>,
    now: Duration,
    actions: Vec<Action>,
    states: Vec<State>,
    events: Vec<SseEvent>,
    errors: Vec<ErrorInfo>,
    protocols: Vec<bool>,
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
            protocols: vec![],
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
                Output::Protocol(p) => self.protocols.push(p),
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
fn has_output_says_whether_poll_has_something() {
    let mut h = Harness::new(quiet());
    assert!(!h.conn.has_output());
    h.conn.start(h.now);
    assert!(h.conn.has_output(), "connecting");
    h.drain();
    assert!(!h.conn.has_output());
    h.conn.handle_sse_open(h.now);
    h.drain();
    h.conn
        .handle_sse_event(SseEvent::new("message", "{}", Some("1")), h.now);
    assert!(h.conn.has_output(), "the event");
    h.drain();
    assert!(!h.conn.has_output());
    assert_eq!(h.ids(), vec![Some("1")]);
}

#[test]
fn backoff_schedule_then_polling() {
    let mut h = Harness::new(tidings());
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
    let mut c = Connection::new(tidings(), FixedJitter(0.25), None);
    c.start(Duration::ZERO);
    c.handle_sse_error(Duration::ZERO, "x");
    assert_eq!(c.poll_timeout(), Some(ms(250)));
}

#[test]
fn retry_hint_becomes_base() {
    let mut h = Harness::new(tidings());
    h.conn.start(h.now);
    h.conn.handle_retry_hint(200);
    h.conn.handle_sse_error(h.now, "x");
    assert_eq!(h.conn.poll_timeout(), Some(ms(200)));
}

#[test]
fn reconnect_resumes_and_dedups() {
    let mut h = Harness::new(tidings());
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
    assert_eq!(h.conn.duplicates(), 1, "the drop is counted");
}

#[test]
fn reset_moves_position_even_backwards() {
    let mut h = Harness::with_last(tidings(), Some("500"));
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    h.sse_event("reset", Some("40"));
    h.sse_event("message", Some("41"));
    assert_eq!(h.ids(), vec![Some("40"), Some("41")]);
    assert_eq!(h.conn.last_event_id(), Some("41"));
}

#[test]
fn non_numeric_ids_pass_and_are_resumed_from() {
    let mut h = Harness::new(tidings());
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
    let mut h = Harness::new(tidings());
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
    let mut h = Harness::new(tidings());
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
    let mut h = Harness::new(tidings());
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
        ..tidings()
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
    let mut h = Harness::new(tidings());
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
    let mut h = Harness::new(tidings());
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
    let mut h = Harness::new(tidings());
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
    let mut h = Harness::new(tidings());
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
        ..tidings()
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
        heartbeat_timeout: Watchdog::Off,
        ..tidings()
    }
}

#[test]
fn watchdog_replaces_a_silent_connection_with_the_last_id() {
    let mut h = Harness::new(Config {
        heartbeat_timeout: Watchdog::After(ms(1500)),
        ..tidings()
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
        heartbeat_timeout: Watchdog::After(ms(2000)),
        ..tidings()
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
    let mut h = Harness::new(tidings());
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
        heartbeat_timeout: Watchdog::Off,
        retry_sse_every: Duration::from_secs(1000),
        ..tidings()
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

// ---- any backend: the Tidings behaviours only for a Tidings server ----------

const HELLO: &str = r#"{"protocol":"tidings","version":1,"capabilities":["numeric-ids","replay","reset","end","poll"]}"#;

impl Harness {
    fn hello(&mut self) {
        self.conn
            .handle_sse_event(SseEvent::new("tidings", HELLO, None), self.now);
        self.drain();
    }
    /// Fails the open connection and reconnects (the next deadline), open again.
    fn reconnect(&mut self) {
        self.conn.handle_sse_error(self.now, "dropped");
        self.fire();
        self.conn.handle_sse_open(self.now);
        self.drain();
    }
}

#[test]
fn a_plain_server_whose_ids_restart_loses_nothing() {
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    for id in ["1", "2", "3", "4", "5"] {
        h.sse_event("message", Some(id));
    }
    h.reconnect();
    assert_eq!(
        h.actions.last(),
        Some(&open(Some("5"))),
        "the position is sent as is"
    );
    // The process restarted: its ids start again at 1.
    for id in ["1", "2", "3"] {
        h.sse_event("message", Some(id));
    }
    let ids: Vec<_> = h.ids().into_iter().flatten().collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "1", "2", "3"]);
    assert_eq!(h.conn.duplicates(), 0);
    assert!(
        h.errors.iter().all(|e| e.kind == ErrorKind::Network),
        "{:?}",
        h.errors
    );
    assert!(h.protocols.is_empty(), "never announced");
}

#[test]
fn for_a_plain_server_reset_and_end_are_ordinary_and_uuids_are_positions() {
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    let a = "6f1c7a52-0b4e-4f55-9d0e-2a1b3c4d5e6f";
    h.sse_event("message", Some(a));
    h.sse_event("reset", None);
    h.sse_event("end", None);
    assert_eq!(h.conn.state(), State::Open, "`end` is not final here");
    assert_eq!(h.events.len(), 3);
    h.reconnect();
    assert_eq!(h.actions.last(), Some(&open(Some(a))));
}

#[test]
fn without_polling_retries_go_on_forever_capped_at_max() {
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.drain();
    let mut delays = Vec::new();
    for _ in 0..12 {
        h.conn.handle_sse_error(h.now, "down");
        let before = h.now;
        h.fire();
        delays.push((h.now - before).as_millis());
    }
    assert_eq!(
        h.conn.state(),
        State::Reconnecting,
        "an unknown server is never polled"
    );
    assert!(!h
        .take_actions()
        .iter()
        .any(|a| matches!(a, Action::Poll { .. })));
    assert_eq!(&delays[..6], &[1000, 2000, 4000, 8000, 16000, 30000]);
    assert!(delays[6..].iter().all(|d| *d == 30_000), "{delays:?}");
    assert!(h.errors.last().unwrap().message.ends_with("(attempt 12)"));
}

#[test]
fn infinite_attempts_never_poll_even_with_polling() {
    let mut c = tidings();
    c.backoff.max_attempts = u32::MAX;
    let mut h = Harness::new(c);
    h.conn.start(h.now);
    for _ in 0..40 {
        h.conn.handle_sse_error(h.now, "down");
        h.fire();
    }
    assert_eq!(h.conn.state(), State::Reconnecting);
    assert!(!h
        .take_actions()
        .iter()
        .any(|a| matches!(a, Action::Poll { .. })));
}

#[test]
fn the_hello_turns_on_tidings_and_is_not_delivered() {
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    assert_eq!(
        h.conn.poll_timeout(),
        None,
        "no watchdog for an unknown server"
    );
    h.hello();
    assert_eq!(h.protocols, vec![true]);
    assert!(h.conn.speaks_tidings());
    assert_eq!(
        h.conn.poll_timeout(),
        Some(Watchdog::TIDINGS),
        "the default watchdog is on"
    );
    h.sse_event("message", Some("7"));
    h.reconnect();
    h.hello();
    h.sse_event("message", Some("7"));
    h.sse_event("message", Some("8"));
    assert_eq!(
        h.ids(),
        vec![Some("7"), Some("8")],
        "the hello is never an event"
    );
    assert_eq!(h.conn.duplicates(), 1);
    h.sse_event("end", None);
    assert_eq!(
        h.conn.state(),
        State::Closed,
        "`end` is final for a Tidings server"
    );
}

#[test]
fn a_tidings_server_is_polled_after_the_attempts_and_a_plain_one_after_it_is_not() {
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    h.hello();
    h.drain();
    into_polling(&mut h);
    assert!(h.conn.poll_action().is_none());
    // Back on SSE, the server no longer greets: it is not Tidings any more.
    h.conn.handle_wake(h.now);
    h.conn.handle_sse_open(h.now);
    h.sse_event("message", Some("1"));
    assert_eq!(h.protocols, vec![true, false]);
    assert!(!h.conn.speaks_tidings());
}

#[test]
fn ids_going_backwards_on_a_new_connection_are_delivered_and_reported() {
    let mut h = Harness::new(tidings());
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    for id in ["4", "5"] {
        h.sse_event("message", Some(id));
    }
    h.reconnect();
    for id in ["1", "2", "2"] {
        h.sse_event("message", Some(id));
    }
    let ids: Vec<_> = h.ids().into_iter().flatten().collect();
    assert_eq!(
        ids,
        ["4", "5", "1", "2"],
        "new events; a repeat within the connection is a duplicate"
    );
    assert_eq!(h.conn.duplicates(), 1);
    let e = h
        .errors
        .iter()
        .find(|e| e.kind == ErrorKind::Protocol)
        .unwrap();
    assert!(e.message.contains("went backwards"), "{}", e.message);
    assert_eq!(h.conn.last_event_id(), Some("2"));
}

#[test]
fn a_finite_stream_that_ends_normally_is_closed_and_a_broken_one_reconnects() {
    let mut h = Harness::new(Config {
        finite: true,
        ..Config::default()
    });
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    h.sse_event("message", Some("1"));
    h.conn.handle_sse_error(h.now, "reset by peer");
    h.fire();
    assert_eq!(
        h.take_actions().last(),
        Some(&open(Some("1"))),
        "broken: resume"
    );
    h.conn.handle_sse_open(h.now);
    h.sse_event("message", Some("2"));
    h.conn.handle_sse_end(h.now);
    h.drain();
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.conn.poll_timeout(), None, "no reconnect");
    assert!(h.conn.is_ended());
    // Not finite: a normal end is a drop like any other.
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.conn.handle_sse_open(h.now);
    h.conn.handle_sse_end(h.now);
    h.drain();
    assert_eq!(h.conn.state(), State::Reconnecting);
}

#[test]
fn a_fatal_open_closes_without_retry() {
    let mut h = Harness::new(Config::default());
    h.conn.start(h.now);
    h.drain();
    let mut e = ErrorInfo::new(ErrorKind::Http, "stream request got HTTP 404");
    e.status = Some(404);
    h.conn.handle_sse_fatal(e.clone());
    h.drain();
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.errors, vec![e]);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn a_poll_function_serves_a_plain_server_and_its_end_closes() {
    let mut h = Harness::new(Config {
        poll: Poll::Function,
        backoff: BackoffOptions::default().max_attempts(1),
        ..Config::default()
    });
    h.conn.start(h.now);
    h.conn.handle_sse_error(h.now, "down");
    h.fire();
    h.conn.handle_sse_error(h.now, "down");
    h.drain();
    assert_eq!(h.conn.state(), State::Polling);
    assert!(h.take_actions().contains(&Action::Poll {
        last_event_id: None
    }));
    let mut r = poll_resp(&["a", "a"], "cursor-1");
    r.retry_ms = None;
    h.conn.handle_poll_response(h.now, r);
    h.drain();
    let ids: Vec<_> = h.ids().into_iter().flatten().collect();
    assert_eq!(ids, ["a", "a"], "no de-duplication of opaque ids");
    assert_eq!(
        h.conn.last_event_id(),
        Some("cursor-1"),
        "its lastEventId is the position"
    );
    h.fire();
    assert!(h.take_actions().contains(&Action::Poll {
        last_event_id: Some("cursor-1".into())
    }));
    let mut r = poll_resp(&[], "cursor-2");
    r.end = true;
    h.conn.handle_poll_response(h.now, r);
    h.drain();
    assert_eq!(h.conn.state(), State::Closed);
    assert!(h.conn.is_ended());
}

#[test]
fn retry_after_delays_the_reconnect_beyond_the_backoff() {
    let mut h = Harness::new(quiet());
    h.conn.start(h.now);
    h.take_actions();
    // 429 with Retry-After: 7 s, where the backoff says 1 s.
    h.conn.handle_retry_after(h.now, Duration::from_secs(7));
    h.conn.handle_sse_rejected(h.now, 429, None);
    h.drain();
    assert_eq!(h.errors.len(), 1);
    assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(7000)));
    assert_eq!(h.take_actions(), vec![Action::CloseSse]);
    // `online` does not override the server's word.
    h.conn.handle_wake(h.now + ms(10));
    assert!(h.take_actions().is_empty());
    h.fire();
    assert_eq!(h.take_actions(), vec![open(None)]);
    // Shorter than the backoff: the backoff wins (2 s for the second attempt).
    h.conn.handle_retry_after(h.now, Duration::from_secs(1));
    h.conn.handle_sse_rejected(h.now, 503, None);
    h.drain();
    assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(2000)));
    // A huge one is capped.
    h.fire();
    h.take_actions();
    h.conn
        .handle_retry_after(h.now, Duration::from_secs(u64::MAX / 4));
    h.conn.handle_sse_rejected(h.now, 503, None);
    h.drain();
    assert_eq!(h.conn.poll_timeout(), Some(h.now + MAX_RETRY_AFTER));
}

#[test]
fn retry_after_holds_back_the_first_poll_and_the_next_one() {
    let mut h = Harness::new(Config {
        retry_sse_every: Duration::from_secs(1000),
        ..tidings()
    });
    h.conn.start(h.now);
    for _ in 0..5 {
        h.conn.handle_sse_error(h.now, "x");
        h.fire();
    }
    h.take_actions();
    // The failure that moves to polling came with Retry-After: 20 s.
    h.conn.handle_retry_after(h.now, Duration::from_secs(20));
    h.conn.handle_sse_rejected(h.now, 503, None);
    h.drain();
    assert_eq!(h.conn.state(), State::Polling);
    assert!(
        !h.take_actions()
            .iter()
            .any(|a| matches!(a, Action::Poll { .. })),
        "no poll before the server's Retry-After"
    );
    assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(20_000)));
    h.fire();
    assert!(h
        .take_actions()
        .iter()
        .any(|a| matches!(a, Action::Poll { .. })));
    // A polling 429 with Retry-After: 30 s beats the 3 s interval.
    h.conn.handle_retry_after(h.now, Duration::from_secs(30));
    let mut err = ErrorInfo::new(ErrorKind::Http, "polling got HTTP 429");
    err.status = Some(429);
    h.conn.handle_poll_error(h.now, err);
    h.drain();
    assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(30_000)));
}

#[test]
fn a_transport_that_cannot_open_reports_one_error_and_backs_off() {
    let mut h = Harness::new(quiet());
    h.conn.start(h.now);
    h.take_actions();
    h.conn.handle_sse_open_failed(
        h.now,
        ErrorInfo::new(
            ErrorKind::Network,
            "EventSource constructor failed: SyntaxError",
        ),
    );
    h.drain();
    assert_eq!(h.errors.len(), 1, "{:?}", h.errors);
    assert_eq!(h.errors[0].kind, ErrorKind::Network);
    assert!(h.errors[0]
        .message
        .starts_with("EventSource constructor failed"));
    assert_eq!(h.conn.state(), State::Reconnecting);
    assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(1000)));
    // getToken failing: one auth error, the same backoff.
    h.fire();
    h.take_actions();
    h.conn
        .handle_sse_open_failed(h.now, ErrorInfo::new(ErrorKind::Auth, "no session"));
    h.drain();
    assert_eq!(h.errors.len(), 2);
    assert_eq!(h.errors[1].kind, ErrorKind::Auth);
    assert_eq!(h.conn.poll_timeout(), Some(h.now + ms(2000)));
}
