//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::backoff::NoJitter;
use crate::connection::{Action, Config, Connection};

/// One simulated tab: its core, a connection while leading, what it delivered.
struct Tab {
    core: TabCore,
    conn: Option<Connection<NoJitter>>,
    open: bool,
    delivered: Vec<String>,
    states: Vec<State>,
    errors: Vec<ErrorInfo>,
    listens: Vec<String>,
}

/// Many tabs, one in-memory channel (FIFO per message, like one event
/// loop's posted-message task source) and one lock with a wait queue.
struct World {
    tabs: Vec<Tab>,
    bus: VecDeque<(usize, String)>,
    lock: Option<usize>,
    waiting: VecDeque<usize>,
    /// The server: the stream's log; a connection resumes after its id.
    log: Vec<SseEvent>,
    connections_opened: usize,
}

impl World {
    fn new(n: usize) -> Self {
        let tabs = (0..n)
            .map(|i| Tab {
                core: TabCore::new(i as u64 + 1, true),
                conn: None,
                open: false,
                delivered: vec![],
                states: vec![],
                errors: vec![],
                listens: vec![],
            })
            .collect();
        World {
            tabs,
            bus: VecDeque::new(),
            lock: None,
            waiting: VecDeque::new(),
            log: vec![],
            connections_opened: 0,
        }
    }

    fn join(&mut self, i: usize, names: &[&str]) {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        self.tabs[i].core.start(&names, None);
        self.waiting.push_back(i);
        self.settle();
    }

    /// The tab leaves (last listener gone / closed): releases the lock.
    fn leave(&mut self, i: usize) {
        self.tabs[i].core.stop();
        if let Some(c) = self.tabs[i].conn.as_mut() {
            c.stop();
        }
        self.settle();
        self.tabs[i].conn = None;
        self.tabs[i].open = false;
        self.release(i);
    }

    /// The tab crashed: no message, the browser releases its lock.
    fn crash(&mut self, i: usize) {
        self.tabs[i].core = TabCore::new(999, true);
        self.tabs[i].conn = None;
        self.tabs[i].open = false;
        self.release(i);
    }

    fn release(&mut self, i: usize) {
        self.waiting.retain(|w| *w != i);
        if self.lock == Some(i) {
            self.lock = None;
        }
        self.settle();
    }

    fn publish(&mut self, n: usize) {
        for _ in 0..n {
            let id = self.log.len() + 1;
            let ev = SseEvent::new("message", format!("{{\"n\":{id}}}"), Some(&id.to_string()));
            self.log.push(ev.clone());
            for t in &mut self.tabs {
                if t.open {
                    if let Some(c) = t.conn.as_mut() {
                        c.handle_sse_event(ev.clone(), Duration::ZERO);
                    }
                }
            }
        }
        self.settle();
    }

    /// Runs every tab's queues, the bus and the lock until nothing moves (bounded).
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            if self.lock.is_none() {
                if let Some(i) = self.waiting.pop_front() {
                    self.lock = Some(i);
                    if self.tabs[i].core.handle_lock_granted() && !self.tabs[i].core.is_ended() {
                        let last = self.tabs[i].core.last_event_id().map(str::to_owned);
                        let mut c = Connection::new(Config::default(), NoJitter, last);
                        c.start(Duration::ZERO);
                        self.tabs[i].conn = Some(c);
                    }
                    moved = true;
                }
            }
            for i in 0..self.tabs.len() {
                moved |= self.step_tab(i);
            }
            if let Some((from, text)) = self.bus.pop_front() {
                moved = true;
                for (j, t) in self.tabs.iter_mut().enumerate() {
                    if j != from {
                        for m in Relay::decode_batch(&text).unwrap() {
                            t.core.handle_relay(m);
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("did not settle");
    }

    fn step_tab(&mut self, i: usize) -> bool {
        let mut moved = false;
        let mut opened = None;
        let t = &mut self.tabs[i];
        if let Some(c) = t.conn.as_mut() {
            while let Some(a) = c.poll_action() {
                moved = true;
                match a {
                    Action::OpenSse { last_event_id } => opened = Some(last_event_id),
                    Action::CloseSse => t.open = false,
                    _ => {}
                }
            }
            let mut outs = Vec::new();
            while let Some(o) = c.poll() {
                outs.push(o);
            }
            for o in outs {
                moved = true;
                if t.core.handle_local(&o) {
                    deliver(t, o);
                }
            }
        }
        let mut catch_up = None;
        while let Some(o) = t.core.poll() {
            moved = true;
            match o {
                TabOutput::Deliver(o) => deliver(t, o),
                TabOutput::ListenFor(n) => t.listens.push(n),
                TabOutput::CatchUp(after) => catch_up = after.parse::<u64>().ok(),
            }
        }
        if let Some(after) = catch_up {
            // The server's polling form: every logged event after `after`.
            let events: Vec<SseEvent> = self
                .log
                .iter()
                .filter(|e| {
                    e.id.as_deref()
                        .and_then(|x| x.parse::<u64>().ok())
                        .is_some_and(|n| n > after)
                })
                .cloned()
                .collect();
            t.core.handle_catch_up(events);
            while let Some(o) = t.core.poll() {
                if let TabOutput::Deliver(o) = o {
                    deliver(t, o);
                }
            }
        }
        // What one step posts goes out as one batch, as the shell posts it.
        let mut batch = Vec::new();
        while let Some(p) = t.core.poll_post() {
            moved = true;
            batch.push(p.encode());
        }
        if !batch.is_empty() {
            self.bus.push_back((i, Relay::encode_batch(&batch)));
        }
        if let Some(last) = opened {
            // The server replays after `last` (live from the head without one).
            self.connections_opened += 1;
            let t = &mut self.tabs[i];
            t.open = true;
            let c = t.conn.as_mut().unwrap();
            c.handle_sse_open(Duration::ZERO);
            if let Some(last) = last.and_then(|s| s.parse::<usize>().ok()) {
                for ev in &self.log[last.min(self.log.len())..] {
                    c.handle_sse_event(ev.clone(), Duration::ZERO);
                }
            }
        }
        moved
    }

    fn leaders(&self) -> usize {
        self.tabs
            .iter()
            .filter(|t| t.core.role() == Role::Leader)
            .count()
    }

    fn open_connections(&self) -> usize {
        self.tabs.iter().filter(|t| t.open).count()
    }
}

use std::time::Duration;

fn deliver(t: &mut Tab, o: Output) {
    match o {
        Output::Event(e) => {
            if let Some(id) = e.id {
                t.delivered.push(id);
            }
        }
        Output::State(s) => t.states.push(s),
        Output::Error(e) => t.errors.push(e),
        Output::Protocol(_) => {}
    }
}

fn ids(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

/// Everything a lone core wants done locally: (event ids delivered, catch-up requests, resets).
fn outputs(core: &mut TabCore) -> (Vec<String>, Vec<String>, usize) {
    let (mut evs, mut catch, mut resets) = (Vec::new(), Vec::new(), 0);
    while let Some(o) = core.poll() {
        match o {
            TabOutput::Deliver(Output::Event(e)) if e.event == "reset" => resets += 1,
            TabOutput::Deliver(Output::Event(e)) => evs.push(e.id.unwrap_or_default()),
            TabOutput::CatchUp(after) => catch.push(after),
            _ => {}
        }
    }
    while core.poll_post().is_some() {}
    (evs, catch, resets)
}

fn relayed(id: u64) -> Relay {
    Relay::Event {
        id: Some(id.to_string()),
        event: "message".into(),
        data: format!("e{id}"),
    }
}

fn fetched(ids: std::ops::RangeInclusive<u64>) -> Vec<SseEvent> {
    ids.map(|i| SseEvent {
        event: "message".into(),
        data: format!("e{i}"),
        id: Some(i.to_string()),
    })
    .collect()
}

fn sync(last: u64) -> Relay {
    Relay::Sync {
        tab: 1,
        state: State::Open,
        last_id: Some(last.to_string()),
        tidings: true,
    }
}

#[test]
fn a_reloaded_follower_catches_up_on_what_it_missed_then_the_held_relays() {
    let mut f = TabCore::new(2, true);
    f.start(&["message".to_owned()], Some("41"));
    // The leader is at 44: 42..=44 were relayed while this tab was reloading.
    f.handle_relay(sync(44));
    assert_eq!(outputs(&mut f), (vec![], vec!["41".to_owned()], 0));
    f.handle_relay(relayed(45)); // held back while the catch-up is in flight
    assert_eq!(outputs(&mut f).0, Vec::<String>::new());
    f.handle_catch_up(fetched(42..=45)); // the server already had 45 too
    assert_eq!(
        outputs(&mut f).0,
        ["42", "43", "44", "45"],
        "in order, 45 once"
    );
    f.handle_relay(relayed(46));
    assert_eq!(outputs(&mut f).0, ["46"]);
    assert_eq!(f.last_event_id(), Some("46"));
}

#[test]
fn a_fresh_follower_adopts_the_leaders_position_without_catching_up() {
    let mut f = TabCore::new(2, true);
    f.start(&["message".to_owned()], None);
    f.handle_relay(sync(44));
    assert_eq!(outputs(&mut f), (vec![], vec![], 0));
    f.handle_relay(relayed(45));
    assert_eq!(outputs(&mut f).0, ["45"]);
}

#[test]
fn a_failed_catch_up_is_a_reset_never_a_silent_gap() {
    let mut f = TabCore::new(2, true);
    f.start(&["message".to_owned()], Some("10"));
    f.handle_relay(sync(20));
    let _ = outputs(&mut f);
    f.handle_relay(relayed(21));
    f.handle_catch_up_failed("HTTP 503");
    assert_eq!(
        outputs(&mut f),
        (vec!["21".to_owned()], vec![], 1),
        "reset, then the held relay"
    );
    f.handle_catch_up(fetched(11..=21)); // a late answer changes nothing
    assert_eq!(outputs(&mut f).0, Vec::<String>::new());
}

#[test]
fn becoming_leader_mid_catch_up_resumes_from_the_own_position() {
    let mut f = TabCore::new(2, true);
    f.start(&["message".to_owned()], Some("10"));
    f.handle_relay(sync(20));
    f.handle_relay(relayed(21));
    let _ = outputs(&mut f);
    assert!(f.handle_lock_granted());
    // The connection resumes from 10: the server replays 11.. itself.
    assert_eq!(f.last_event_id(), Some("10"));
    f.handle_catch_up(fetched(11..=21));
    assert_eq!(
        outputs(&mut f).0,
        Vec::<String>::new(),
        "the held relays and late catch-up are dropped"
    );
}

#[test]
fn names_hide_the_token_and_separate_users() {
    let none = BTreeMap::new();
    let a = share_name(
        "http://h/api/notifications/stream",
        Some("secret.jwt.a"),
        &none,
    );
    let b = share_name(
        "http://h/api/notifications/stream",
        Some("secret.jwt.b"),
        &none,
    );
    assert_ne!(a, b);
    assert!(!a.contains("secret"));
    assert_eq!(
        a,
        share_name(
            "http://h/api/notifications/stream",
            Some("secret.jwt.a"),
            &none
        )
    );
    assert_eq!(
        share_name("http://h/x", None, &none),
        "tidings/3 - http://h/x"
    );
    assert_eq!(
        share_name("http://h/x", Some(""), &none),
        share_name("http://h/x", None, &none)
    );
    assert_ne!(
        share_name("http://h/x", None, &none),
        share_name("http://h/y", None, &none)
    );
    // An Authorization header (fetch transport) separates users too, and is hidden.
    let h = |v: &str| BTreeMap::from([("Authorization".to_owned(), format!("Bearer {v}"))]);
    let ha = share_name("http://h/x", None, &h("secret-a"));
    assert!(!ha.contains("secret"));
    assert_ne!(ha, share_name("http://h/x", None, &h("secret-b")));
    assert_ne!(ha, share_name("http://h/x", None, &none));
    // FNV-1a 128 reference value of "a".
    assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    for n in [0, 1, 0xabc, fnv1a_128(b"a"), u128::MAX] {
        assert_eq!(hex128(n), format!("{n:032x}"));
    }
}

#[test]
fn relay_encoding_round_trips_and_rejects_garbage() {
    let msgs = vec![
        Relay::Join {
            tab: 1,
            names: vec!["create".into()],
        },
        Relay::Leave {
            tab: 2,
            leader: true,
        },
        Relay::Leader {
            tab: 3,
            state: State::Open,
            last_id: Some("7".into()),
        },
        Relay::Sync {
            tab: 3,
            state: State::Polling,
            last_id: None,
            tidings: true,
        },
        Relay::Event {
            id: Some("9".into()),
            event: "message".into(),
            data: "{\"a\":\"\\n\u{1F600}\"}".into(),
        },
        Relay::State {
            state: State::Reconnecting,
        },
        Relay::Error {
            kind: ErrorKind::Http,
            message: "m".into(),
            raw: Some("b".into()),
            status: Some(500),
        },
    ];
    for m in &msgs {
        assert_eq!(&Relay::decode(&m.encode()).unwrap(), m);
    }
    // A batch keeps every message and their order; one bad message spoils it.
    let encoded: Vec<String> = msgs.iter().map(Relay::encode).collect();
    assert_eq!(
        Relay::decode_batch(&Relay::encode_batch(&encoded)).unwrap(),
        msgs
    );
    assert_eq!(Relay::decode_batch(&Relay::encode_batch(&[])).unwrap(), []);
    let spoiled = Relay::encode_batch(&[encoded[0].clone(), r#"{"t":"nope"}"#.to_owned()]);
    assert!(matches!(
        Relay::decode_batch(&spoiled),
        Err(RelayError::Malformed(_))
    ));
    assert!(
        Relay::decode_batch(&encoded[0]).is_err(),
        "a bare message is not a batch"
    );
    assert!(Relay::decode(r#"{"t":"event"}"#).is_err());
    assert!(Relay::decode(r#"{"t":"nope","tab":1}"#).is_err());
    assert!(Relay::decode("not json").is_err());
    // The wire form names states and kinds as JS does; unknown ones are malformed.
    assert_eq!(
        Relay::State {
            state: State::Polling
        }
        .encode(),
        r#"{"t":"state","state":"polling"}"#
    );
    let unknown_kind = r#"{"t":"error","kind":"teapot","message":"m","raw":null,"status":null}"#;
    assert!(matches!(
        Relay::decode(unknown_kind),
        Err(RelayError::Malformed(_))
    ));
    assert!(Relay::decode(r#"{"t":"state","state":"sleeping"}"#).is_err());
    let http = r#"{"t":"error","kind":"http","message":"m","raw":null,"status":500}"#;
    assert!(matches!(
        Relay::decode(http),
        Ok(Relay::Error {
            kind: ErrorKind::Http,
            ..
        })
    ));
}

#[test]
fn one_leader_one_connection_everyone_delivers() {
    let mut w = World::new(5);
    for i in 0..5 {
        w.join(i, &["message"]);
    }
    assert_eq!(w.leaders(), 1);
    assert_eq!(w.open_connections(), 1);
    w.publish(3);
    for t in &w.tabs {
        assert_eq!(t.delivered, ids(1..=3));
        assert_eq!(t.core.state(), State::Open);
    }
    assert_eq!(w.tabs[1].states, vec![State::Connecting, State::Open]);
}

#[test]
fn failover_resumes_without_loss_or_duplicates() {
    let mut w = World::new(4);
    for i in 0..4 {
        w.join(i, &["message"]);
    }
    w.publish(5);
    w.leave(0); // leader closes
    assert_eq!(w.leaders(), 1);
    w.publish(5);
    w.crash(1); // next leader crashes without a word
    w.publish(2); // nobody connected: only the log has these
    assert_eq!(w.open_connections(), 1);
    w.publish(3);
    for t in &w.tabs[2..] {
        assert_eq!(t.delivered, ids(1..=15), "tab {}", t.core.tab());
    }
    assert_eq!(w.connections_opened, 3);
}

#[test]
fn events_between_leaders_come_from_the_replay_log() {
    let mut w = World::new(3);
    for i in 0..3 {
        w.join(i, &["message"]);
    }
    w.publish(2);
    // The leader dies; the server logs events before anyone reconnects.
    w.tabs[0].open = false;
    w.log.push(SseEvent::new("message", "{}", Some("3")));
    w.log.push(SseEvent::new("message", "{}", Some("4")));
    w.crash(0);
    w.publish(1);
    for t in &w.tabs[1..] {
        assert_eq!(t.delivered, ids(1..=5));
    }
}

#[test]
fn a_late_joiner_starts_at_the_leaders_position_and_can_lead() {
    let mut w = World::new(2);
    w.join(0, &["message"]);
    w.publish(4);
    w.join(1, &["message"]);
    assert_eq!(w.tabs[1].core.last_event_id(), Some("4"));
    w.publish(1);
    w.leave(0);
    w.publish(1);
    assert_eq!(w.tabs[1].delivered, ids(5..=6));
    assert_eq!(w.open_connections(), 1);
}

#[test]
fn follower_names_reach_the_leader_and_duplicates_are_dropped() {
    let mut w = World::new(2);
    w.join(0, &["create"]);
    w.join(1, &["custom_event"]);
    assert_eq!(w.tabs[0].listens, vec!["custom_event".to_owned()]);
    assert_eq!(w.tabs[0].core.peer_names(), vec!["custom_event".to_owned()]);
    assert!(w.tabs[0].core.has_peers());
    assert!(w.tabs[0].core.relays_events(), "a leader with a follower");
    assert!(!w.tabs[1].core.relays_events(), "a follower");
    w.tabs[1].core.add_name("other");
    w.settle();
    assert_eq!(
        w.tabs[0].listens,
        vec!["custom_event".to_owned(), "other".to_owned()]
    );
    // A stale relay (id already delivered) is dropped; a reset is not.
    w.publish(2);
    let f = &mut w.tabs[1].core;
    f.handle_relay(Relay::Event {
        id: Some("2".into()),
        event: "message".into(),
        data: "{}".into(),
    });
    assert_eq!(f.poll(), None);
    f.handle_relay(Relay::Event {
        id: Some("1".into()),
        event: "reset".into(),
        data: "{}".into(),
    });
    assert!(matches!(
        f.poll(),
        Some(TabOutput::Deliver(Output::Event(_)))
    ));
    assert_eq!(f.last_event_id(), Some("1"));
    // Per-connection events (no id) always pass.
    f.handle_relay(Relay::Event {
        id: None,
        event: "connected".into(),
        data: "{}".into(),
    });
    assert!(matches!(
        f.poll(),
        Some(TabOutput::Deliver(Output::Event(_)))
    ));
    // A leaving follower's names are forgotten.
    w.leave(1);
    assert!(w.tabs[0].core.peer_names().is_empty());
    assert!(
        !w.tabs[0].core.has_peers(),
        "a leader alone may batch its relays"
    );
    assert!(
        !w.tabs[0].core.relays_events(),
        "a leader alone relays no events of a Tidings stream"
    );
    w.tabs[0].core.handle_local(&Output::Protocol(false));
    assert!(
        w.tabs[0].core.relays_events(),
        "a plain stream's events are always relayed"
    );
}

#[test]
fn follower_mirrors_state_and_errors_but_not_a_handover_close() {
    let mut w = World::new(2);
    w.join(0, &["message"]);
    w.join(1, &["message"]);
    let e = ErrorInfo::new(ErrorKind::Network, "down");
    w.tabs[0].core.handle_local(&Output::Error(e.clone()));
    w.tabs[0].core.handle_local(&Output::Error(ErrorInfo::new(
        ErrorKind::Decode,
        "own decoder",
    )));
    w.tabs[0].core.handle_local(&Output::State(State::Polling));
    w.settle();
    assert_eq!(w.tabs[1].errors, vec![e]);
    assert_eq!(w.tabs[1].core.state(), State::Polling);
    w.leave(0);
    // The follower took over: reconnecting (old leader left), then its own connection.
    assert_eq!(w.tabs[1].core.role(), Role::Leader);
    assert!(!w.tabs[1].states.contains(&State::Closed));
    assert_eq!(w.tabs[1].states.last(), Some(&State::Open));
    // Each state once in a row, also across the handover.
    assert!(
        w.tabs[1].states.windows(2).all(|p| p[0] != p[1]),
        "{:?}",
        w.tabs[1].states
    );
    assert_eq!(
        w.tabs[0].states,
        vec![State::Connecting, State::Open, State::Closed]
    );
}

#[test]
fn an_ended_stream_is_not_reopened_by_the_next_leader() {
    let mut w = World::new(2);
    w.join(0, &["message"]);
    w.join(1, &["message"]);
    w.publish(1);
    let end = SseEvent::new("end", "{}", None);
    w.tabs[0]
        .conn
        .as_mut()
        .unwrap()
        .handle_sse_event(end, Duration::ZERO);
    w.settle();
    assert!(w.tabs[1].core.is_ended());
    assert_eq!(w.tabs[1].core.state(), State::Closed);
    // Late relays after the end are ignored.
    w.tabs[1].core.handle_relay(Relay::Event {
        id: Some("9".into()),
        event: "message".into(),
        data: "{}".into(),
    });
    assert_eq!(w.tabs[1].core.poll(), None);
    w.leave(0);
    assert_eq!(w.tabs[1].core.role(), Role::Leader);
    assert!(w.tabs[1].conn.is_none());
    assert_eq!(w.open_connections(), 0);
}

#[test]
fn churn_never_two_leaders_never_twice() {
    // Tabs join, leave and crash in a fixed pseudo-random order while events flow.
    let mut w = World::new(6);
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut active = [false; 6];
    for step in 0..400 {
        let i = rnd(6) as usize;
        match (active[i], rnd(3)) {
            (false, _) => {
                w.tabs[i].core = TabCore::new(100 + step, true);
                w.tabs[i].delivered.clear();
                w.join(i, &["message"]);
                active[i] = true;
            }
            (true, 0) => {
                w.crash(i);
                active[i] = false;
            }
            (true, 1) => {
                w.leave(i);
                active[i] = false;
            }
            _ => {}
        }
        w.publish(1);
        assert!(w.leaders() <= 1);
        assert!(w.open_connections() <= 1);
        for (t, on) in w.tabs.iter().zip(active) {
            if on {
                let mut d: Vec<u64> = t.delivered.iter().map(|s| s.parse().unwrap()).collect();
                let n = d.len();
                assert!(d.windows(2).all(|p| p[1] == p[0] + 1), "in order, no gap");
                d.dedup();
                assert_eq!(d.len(), n, "no duplicate");
                assert_eq!(d.last().copied(), Some(w.log.len() as u64), "up to date");
            }
        }
    }
    // The churn really handed the connection over many times.
    assert!(
        w.connections_opened > 30,
        "{} connections",
        w.connections_opened
    );
}

#[test]
fn a_follower_of_a_plain_server_drops_nothing_and_never_catches_up() {
    let mut f = TabCore::new(2, false);
    f.start(&["message".to_owned()], Some("41"));
    f.handle_relay(Relay::Sync {
        tab: 1,
        state: State::Open,
        last_id: Some("44".into()),
        tidings: false,
    });
    assert_eq!(
        outputs(&mut f),
        (vec![], vec![], 0),
        "opaque ids: no catch-up"
    );
    assert_eq!(
        f.last_event_id(),
        Some("44"),
        "the leader's position is ours"
    );
    // The server restarted its ids: 1, 2 after 44 are new events.
    f.handle_relay(relayed(1));
    f.handle_relay(relayed(2));
    f.handle_relay(Relay::Event {
        id: None,
        event: "end".into(),
        data: "{}".into(),
    });
    f.handle_relay(relayed(3));
    assert_eq!(
        outputs(&mut f).0,
        ["1", "2", "", "3"],
        "`end` (no id) is an ordinary event"
    );
    assert_eq!(f.duplicates(), 0);
}

#[test]
fn the_leaders_word_on_the_protocol_reaches_followers() {
    let mut f = TabCore::new(2, false);
    f.start(&["message".to_owned()], None);
    f.handle_relay(Relay::Protocol { tidings: true });
    let delivered: Vec<TabOutput> = std::iter::from_fn(|| f.poll()).collect();
    assert!(delivered.contains(&TabOutput::Deliver(Output::Protocol(true))));
    f.handle_relay(relayed(5));
    f.handle_relay(relayed(5));
    assert_eq!(outputs(&mut f).0, ["5"]);
    assert_eq!(
        f.duplicates(),
        1,
        "a Tidings duplicate is dropped and counted"
    );
}

#[test]
fn every_relay_is_posted_after_one_post_fails() {
    let posts: Vec<Relay> = (1..=4)
        .map(|n| Relay::Event {
            id: Some(n.to_string()),
            event: "message".into(),
            data: format!("{{\"n\":{n}}}"),
        })
        .collect();
    let mut sent = Vec::new();
    let failed = post_all(&posts, |m| {
        if m == &posts[1] {
            return Err("DataCloneError".into());
        }
        sent.push(m.clone());
        Ok(())
    });
    assert_eq!(failed.as_deref(), Some("DataCloneError"));
    assert_eq!(sent, [posts[0].clone(), posts[2].clone(), posts[3].clone()]);
    // More than one failure: the first is reported with the count.
    let failed = post_all(&posts, |_| Err("closed".into()));
    assert_eq!(failed.as_deref(), Some("closed (4 of 4 messages failed)"));
    assert_eq!(post_all(&posts, |_| Ok(())), None);
}

#[test]
fn a_leader_alone_relays_no_events_and_a_joiner_catches_up() {
    let event = |id: &str| Output::Event(SseEvent::new("message", "{}", Some(id)));
    let mut l = TabCore::new(1, true);
    l.start(&["message".to_owned()], None);
    assert!(l.handle_lock_granted());
    while l.poll_post().is_some() {}
    assert!(l.handle_local(&event("7")), "delivered locally");
    assert_eq!(l.poll_post(), None, "nobody listens: nothing relayed");
    assert_eq!(l.last_event_id(), Some("7"));
    // A tab that was at 5 joins: the leader's position tells it what it missed.
    let mut f = TabCore::new(2, true);
    f.start(&["message".to_owned()], Some("5"));
    let join = f.poll_post().unwrap();
    l.handle_relay(join);
    let sync = l.poll_post().unwrap();
    assert!(matches!(&sync, Relay::Sync { last_id: Some(id), .. } if id == "7"));
    f.handle_relay(sync);
    assert_eq!(outputs(&mut f), (vec![], vec!["5".to_owned()], 0));
    // With a follower, every event is relayed.
    l.handle_local(&event("8"));
    assert!(matches!(l.poll_post(), Some(Relay::Event { id: Some(id), .. }) if id == "8"));
    // A plain server's ids cannot be caught up on: relayed even with nobody listening.
    let mut plain = TabCore::new(3, false);
    plain.start(&["message".to_owned()], None);
    assert!(plain.handle_lock_granted());
    while plain.poll_post().is_some() {}
    plain.handle_local(&event("x"));
    assert!(matches!(plain.poll_post(), Some(Relay::Event { .. })));
}
