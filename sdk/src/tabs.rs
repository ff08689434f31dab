//! Sharing one connection across the tabs of an origin: the sans-IO core.
//!
//! Every tab that has listeners for a stream (absolute URL + token) asks for
//! one Web Lock named by [`share_name`]. The tab holding it is the *leader*:
//! it runs the real [`Connection`](crate::connection::Connection) and relays
//! what it delivers over a `BroadcastChannel` of the same name. The others are
//! *followers*: they decode relayed events with their own decoder and dispatch
//! them to their own listeners. The browser glue is `web/tabs.rs`; this module
//! holds the messages, their encoding and every decision, so it is tested
//! natively with many simulated tabs on one in-memory bus and lock.
//!
//! Rules:
//! - **Only tabs with listeners take part.** A tab asks for the lock with its
//!   first listener and gives it up with its last (or on `close()` /
//!   `pagehide`). So the connection exists exactly while some tab listens, and
//!   a leader that loses its listeners hands over like a closing tab does.
//! - **Relayed:** every event the leader's connection delivers (raw name, id,
//!   data), every state change and every transport error. Decode errors are
//!   not relayed: each tab decodes with its own decoder, so it reports its own
//!   decode errors, exactly once.
//! - **Interest:** followers announce the event names they listen for
//!   ([`Relay::Join`]); the leader adds them to its `EventSource`
//!   ([`TabOutput::ListenFor`]), so a follower-only named event still arrives.
//!   Payload types of unnamed events need nothing: `message` is always relayed.
//! - **Position:** every tab tracks the last id it delivered. A follower drops
//!   a relayed event whose numeric id is `<=` that (de-dup). A tab that knew
//!   nothing adopts the leader's position when it joins ([`Relay::Sync`]);
//!   a tab that knows where it was (a reload, with the id kept in
//!   `sessionStorage`) and finds the leader further on *catches up*: it asks
//!   the shell for the events in between ([`TabOutput::CatchUp`], one request
//!   of the server's polling form), holds back relays meanwhile, then delivers
//!   both in order without duplicates. If that fails it delivers a `reset` so
//!   the app refetches, never a silent gap. A tab that becomes
//!   leader connects from its own last id, so the events between the old
//!   leader's last relay and the new connection come from the server's replay
//!   log: none lost, none twice.
//! - **Finite streams:** once `end` was delivered, a tab ignores further
//!   events and does not reconnect when it becomes leader.
//! - No clock is needed: liveness comes from the lock (the browser releases it
//!   when a tab closes, crashes or navigates away).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::connection::{ErrorInfo, ErrorKind, Output, State};
use crate::parser::SseEvent;
use crate::position::Position;

/// Version of the relay format; part of every lock/channel name so tabs
/// running different SDK versions never share.
pub const RELAY_VERSION: u32 = 1;

/// The Web Lock and `BroadcastChannel` name for a stream: the absolute URL
/// and a 128-bit FNV-1a hash of the credentials (the token and any extra
/// request headers, which may carry `Authorization`; `-` without either),
/// never the raw token (lock names are visible in `navigator.locks.query()`).
/// Different tokens give different names, so different users never share a
/// connection. The hash keeps the token out of sight; it is not a security
/// boundary (any script of the origin can read the page's token anyway).
/// Callers must not share at all when the credentials are not known up front
/// (a `getToken` callback).
pub fn share_name(
    absolute_url: &str,
    token: Option<&str>,
    headers: &BTreeMap<String, String>,
) -> String {
    let token = token.unwrap_or("");
    let who = if token.is_empty() && headers.is_empty() {
        "-".to_owned()
    } else {
        let mut creds = token.to_owned();
        for (k, v) in headers {
            creds.push_str(&format!("\n{}:{v}", k.to_ascii_lowercase()));
        }
        format!("{:032x}", fnv1a_128(creds.as_bytes()))
    };
    format!("tidings/{RELAY_VERSION} {who} {absolute_url}")
}

/// FNV-1a, 128-bit variant.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// One message on the channel. Encoded as JSON text ([`Relay::encode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Relay {
    /// A follower is here (first listener, or answering [`Relay::Leader`]) and
    /// listens for these event names. Sent again when it adds a name.
    Join {
        /// The sender.
        tab: u64,
        /// Event names (listener types) it listens for.
        names: Vec<String>,
    },
    /// A tab stopped taking part (last listener gone, `close()`, `pagehide`).
    Leave {
        /// The sender.
        tab: u64,
        /// Whether it was the leader (followers then show `reconnecting`
        /// until the next leader reports).
        leader: bool,
    },
    /// A tab just became leader: followers answer with [`Relay::Join`].
    Leader {
        /// The sender.
        tab: u64,
        /// Its state (`State::as_str`).
        state: String,
        /// Its position.
        last_id: Option<String>,
    },
    /// The leader's answer to a [`Relay::Join`]: its state and position.
    Sync {
        /// The sender.
        tab: u64,
        /// Its state (`State::as_str`).
        state: String,
        /// Its position.
        last_id: Option<String>,
    },
    /// One event the leader's connection delivered.
    Event {
        /// The SSE id (`None` for per-connection events).
        id: Option<String>,
        /// The SSE event name.
        event: String,
        /// The raw data.
        data: String,
    },
    /// The leader's connection state changed.
    State {
        /// `State::as_str`.
        state: String,
    },
    /// A transport error of the leader (network, HTTP, auth, protocol).
    Error {
        /// `ErrorKind::as_str`.
        kind: String,
        /// The reason.
        message: String,
        /// The raw body, if any.
        raw: Option<String>,
        /// The HTTP status, if any.
        status: Option<u16>,
    },
}

/// Why a channel message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayError {
    /// Not a string (someone else posted on our channel).
    NotText,
    /// Not a relay message of this version.
    Malformed(String),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::NotText => write!(f, "tab relay message is not text"),
            RelayError::Malformed(e) => write!(f, "bad tab relay message: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

impl Relay {
    /// The JSON text posted on the channel.
    pub fn encode(&self) -> String {
        // Serialising these plain structs cannot fail; keep a valid fallback anyway.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"t":"invalid"}"#.to_owned())
    }

    /// Reads a message posted on the channel.
    pub fn decode(text: &str) -> Result<Relay, RelayError> {
        serde_json::from_str(text).map_err(|e| RelayError::Malformed(e.to_string()))
    }
}

/// Parses `State::as_str` back.
pub fn parse_state(s: &str) -> Option<State> {
    Some(match s {
        "connecting" => State::Connecting,
        "open" => State::Open,
        "reconnecting" => State::Reconnecting,
        "polling" => State::Polling,
        "closed" => State::Closed,
        _ => return None,
    })
}

fn parse_kind(s: &str) -> ErrorKind {
    match s {
        "decode" => ErrorKind::Decode,
        "http" => ErrorKind::Http,
        "auth" => ErrorKind::Auth,
        "protocol" => ErrorKind::Protocol,
        _ => ErrorKind::Network,
    }
}

/// This tab's part in sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not taking part (no listeners, or stopped).
    Idle,
    /// Waiting for the lock; delivering what the leader relays.
    Follower,
    /// Holding the lock and the connection.
    Leader,
}

/// What the shell must do for the tab core besides posting messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabOutput {
    /// Deliver to this tab's listeners (follower: relayed state, event or error).
    Deliver(Output),
    /// Leader: listen for this event name on the open `EventSource` too.
    ListenFor(String),
    /// Follower: fetch the events after this id (the polling form) and hand
    /// them to [`TabCore::handle_catch_up`]; relays are held back until then.
    CatchUp(String),
}

/// The sharing state of one tab for one stream. See the module docs.
#[derive(Debug)]
pub struct TabCore {
    tab: u64,
    role: Role,
    state: State,
    position: Position,
    ended: bool,
    names: BTreeSet<String>,
    peers: BTreeMap<u64, BTreeSet<String>>,
    /// While catching up: from which id, up to which (the leader's position), and the held relays.
    catching_up: Option<(u64, u64)>,
    held: Vec<SseEvent>,
    posts: VecDeque<Relay>,
    outputs: VecDeque<TabOutput>,
}

impl TabCore {
    /// A tab (`tab`: a random id) not yet taking part.
    pub fn new(tab: u64) -> Self {
        TabCore {
            tab,
            role: Role::Idle,
            state: State::Closed,
            position: Position::default(),
            ended: false,
            names: BTreeSet::new(),
            peers: BTreeMap::new(),
            catching_up: None,
            held: Vec::new(),
            posts: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    // ---- getters -------------------------------------------------------

    /// This tab's id.
    pub fn tab(&self) -> u64 {
        self.tab
    }

    /// Idle, follower or leader.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The state this tab shows: the leader's (mirrored) while following.
    pub fn state(&self) -> State {
        self.state
    }

    /// The id of the last event this tab delivered (where it resumes as leader).
    pub fn last_event_id(&self) -> Option<&str> {
        self.position.id()
    }

    /// Whether the stream ended (`end` delivered): never reconnect.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Leader: the event names followers listen for (added to the `EventSource`).
    pub fn peer_names(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.peers.values().flatten().collect();
        all.into_iter().cloned().collect()
    }

    // ---- commands --------------------------------------------------------

    /// First listener: take part as a follower until the lock is granted.
    /// `names` are this tab's listener types; `resume` the position this tab
    /// knows it delivered up to (kept across a reload), if any.
    pub fn start(&mut self, names: &[String], resume: Option<&str>) {
        if self.role != Role::Idle {
            return;
        }
        if self.position.id().is_none() {
            self.position.track(resume);
        }
        self.names = names.iter().cloned().collect();
        self.role = Role::Follower;
        if !self.ended {
            self.show(State::Connecting);
        }
        self.posts.push_back(Relay::Join {
            tab: self.tab,
            names: self.names.iter().cloned().collect(),
        });
    }

    /// This tab added a listener type. A follower tells the leader.
    pub fn add_name(&mut self, name: &str) {
        if self.names.insert(name.to_owned()) && self.role == Role::Follower {
            self.posts.push_back(Relay::Join {
                tab: self.tab,
                names: self.names.iter().cloned().collect(),
            });
        }
    }

    /// Last listener gone / `close()` / `pagehide`: leave (the shell then
    /// releases the lock and, as leader, stops its connection).
    pub fn stop(&mut self) {
        if self.role == Role::Idle {
            return;
        }
        let leader = self.role == Role::Leader;
        self.posts.push_back(Relay::Leave {
            tab: self.tab,
            leader,
        });
        self.role = Role::Idle;
        self.peers.clear();
        self.catching_up = None;
        self.held.clear();
        if !leader {
            // The leader's own connection reports `closed` through its outputs.
            self.show(State::Closed);
        }
        self.state = State::Closed;
    }

    // ---- inputs ----------------------------------------------------------

    /// The lock was granted: this tab leads. The shell then starts a
    /// connection resuming from [`TabCore::last_event_id`] unless
    /// [`TabCore::is_ended`]. Returns false (do nothing) if not following.
    pub fn handle_lock_granted(&mut self) -> bool {
        if self.role != Role::Follower {
            return false;
        }
        self.role = Role::Leader;
        self.peers.clear();
        // Our own connection resumes from our own position: the server's
        // replay covers whatever a pending catch-up would have fetched.
        self.catching_up = None;
        self.held.clear();
        self.posts.push_back(Relay::Leader {
            tab: self.tab,
            state: self.state.as_str().to_owned(),
            last_id: self.position.id().map(str::to_owned),
        });
        true
    }

    /// Leader: something the connection produced, before it is delivered
    /// locally. Tracks the position and relays it. Returns whether to deliver
    /// it locally: false for a state this tab already shows (the fresh
    /// connection of a new leader reports `connecting` again).
    pub fn handle_local(&mut self, output: &Output) -> bool {
        if self.role != Role::Leader {
            return true;
        }
        match output {
            Output::State(s) => {
                if self.state == *s {
                    return false;
                }
                self.state = *s;
                // `closed` from stopping is not the stream's end: the next
                // leader takes over. Only a real end is relayed as `closed`.
                if *s != State::Closed || self.ended {
                    self.posts.push_back(Relay::State {
                        state: s.as_str().to_owned(),
                    });
                }
            }
            Output::Event(ev) => {
                self.track(ev);
                self.posts.push_back(Relay::Event {
                    id: ev.id.clone(),
                    event: ev.event.clone(),
                    data: ev.data.clone(),
                });
            }
            Output::Error(e) if e.kind != ErrorKind::Decode => self.posts.push_back(Relay::Error {
                kind: e.kind.as_str().to_owned(),
                message: e.message.clone(),
                raw: e.raw.clone(),
                status: e.status,
            }),
            Output::Error(_) => {}
        }
        true
    }

    /// A message from another tab.
    pub fn handle_relay(&mut self, msg: Relay) {
        match (self.role, msg) {
            (Role::Idle, _) => {}
            (Role::Leader, Relay::Join { tab, names }) => {
                let before: BTreeSet<String> = self.peer_names().into_iter().collect();
                let own = &self.names;
                for n in &names {
                    if !before.contains(n) && !own.contains(n) {
                        self.outputs.push_back(TabOutput::ListenFor(n.clone()));
                    }
                }
                self.peers.insert(tab, names.into_iter().collect());
                self.posts.push_back(Relay::Sync {
                    tab: self.tab,
                    state: self.state.as_str().to_owned(),
                    last_id: self.position.id().map(str::to_owned),
                });
            }
            (Role::Leader, Relay::Leave { tab, .. }) => {
                self.peers.remove(&tab);
            }
            // Another leader cannot exist while we hold the lock; a late
            // message of the previous leader is covered by our own resume.
            (Role::Leader, _) => {}
            (Role::Follower, Relay::Leader { state, last_id, .. }) => {
                self.posts.push_back(Relay::Join {
                    tab: self.tab,
                    names: self.names.iter().cloned().collect(),
                });
                self.sync(&state, last_id);
            }
            (Role::Follower, Relay::Sync { state, last_id, .. }) => self.sync(&state, last_id),
            (Role::Follower, Relay::Leave { leader: true, .. }) => {
                if !self.ended {
                    self.show(State::Reconnecting);
                }
            }
            (Role::Follower, Relay::Leave { .. } | Relay::Join { .. }) => {}
            (Role::Follower, Relay::Event { id, event, data }) => {
                let ev = SseEvent { event, data, id };
                if self.catching_up.is_some() {
                    self.held.push(ev);
                } else {
                    self.deliver_relayed(ev);
                }
            }
            (Role::Follower, Relay::State { state }) => {
                if let Some(s) = parse_state(&state) {
                    if !self.ended || s == State::Closed {
                        self.show(s);
                    }
                }
            }
            (
                Role::Follower,
                Relay::Error {
                    kind,
                    message,
                    raw,
                    status,
                },
            ) => {
                let mut e = ErrorInfo::new(parse_kind(&kind), message);
                e.raw = raw;
                e.status = status;
                self.outputs.push_back(TabOutput::Deliver(Output::Error(e)));
            }
        }
    }

    /// The events a [`TabOutput::CatchUp`] fetched (oldest first): delivered,
    /// then the relays held back meanwhile, without duplicates.
    pub fn handle_catch_up(&mut self, events: Vec<SseEvent>) {
        if self.catching_up.take().is_none() || self.role != Role::Follower {
            return;
        }
        for ev in events {
            self.deliver_relayed(ev);
        }
        self.release_held();
    }

    /// The catch-up request failed: the events in between cannot be had, so
    /// the app is told to refetch (a `reset`, as the server would send), and
    /// the tab carries on from the leader's position.
    pub fn handle_catch_up_failed(&mut self, reason: &str) {
        let Some((from, to)) = self.catching_up.take() else {
            return;
        };
        if self.role != Role::Follower {
            return;
        }
        let data = serde_json::json!({
            "type": "reset", "reason": "gap", "last_event_id": from.to_string(), "head": to.to_string(),
            "message": format!("missed events while rejoining could not be fetched: {reason}"),
        });
        self.outputs
            .push_back(TabOutput::Deliver(Output::Event(SseEvent {
                event: "reset".into(),
                data: data.to_string(),
                id: None,
            })));
        self.position.track(Some(&to.to_string()));
        self.release_held();
    }

    // ---- outputs ---------------------------------------------------------

    /// The next message to post on the channel.
    #[must_use]
    pub fn poll_post(&mut self) -> Option<Relay> {
        self.posts.pop_front()
    }

    /// The next thing to deliver or do locally.
    #[must_use]
    pub fn poll(&mut self) -> Option<TabOutput> {
        self.outputs.pop_front()
    }

    // ---- internals -------------------------------------------------------

    fn show(&mut self, s: State) {
        if self.state != s {
            self.state = s;
            self.outputs.push_back(TabOutput::Deliver(Output::State(s)));
        }
    }

    /// Mirrors the leader's state. A tab that knew nothing adopts the
    /// leader's position (what came before predates it); one that knows its
    /// position and is behind the leader catches up on the events in between.
    fn sync(&mut self, state: &str, last_id: Option<String>) {
        if let Some(s) = parse_state(state) {
            if !self.ended {
                self.show(s);
            }
        }
        let Some(id) = last_id.filter(|s| !s.is_empty()) else {
            return;
        };
        match (id.parse::<u64>().ok(), self.position.num()) {
            (Some(n), Some(l)) if n > l => {
                // Relays from one sender arrive in order, so relays up to `n`
                // were handled before this message: (l, n] never reached us.
                if self.catching_up.is_none() {
                    self.catching_up = Some((l, n));
                    self.outputs.push_back(TabOutput::CatchUp(l.to_string()));
                }
            }
            // Not behind: adopt the leader's position if it is further on or ours is unknown.
            _ => self.position.advance_to(&id),
        }
    }

    fn deliver_relayed(&mut self, ev: SseEvent) {
        if self.ended || self.position.is_duplicate(ev.id.as_deref(), &ev.event) {
            return;
        }
        self.track(&ev);
        self.outputs
            .push_back(TabOutput::Deliver(Output::Event(ev)));
        if self.ended {
            self.show(State::Closed);
        }
    }

    fn release_held(&mut self) {
        for ev in std::mem::take(&mut self.held) {
            self.deliver_relayed(ev);
        }
    }

    fn track(&mut self, ev: &SseEvent) {
        self.position.track(ev.id.as_deref());
        if ev.event == "end" {
            self.ended = true;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
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
                    core: TabCore::new(i as u64 + 1),
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
            self.tabs[i].core = TabCore::new(999);
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
                        if self.tabs[i].core.handle_lock_granted() && !self.tabs[i].core.is_ended()
                        {
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
                            t.core.handle_relay(Relay::decode(&text).unwrap());
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
            while let Some(p) = t.core.poll_post() {
                moved = true;
                self.bus.push_back((i, p.encode()));
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
            state: "open".into(),
            last_id: Some(last.to_string()),
        }
    }

    #[test]
    fn a_reloaded_follower_catches_up_on_what_it_missed_then_the_held_relays() {
        let mut f = TabCore::new(2);
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
        let mut f = TabCore::new(2);
        f.start(&["message".to_owned()], None);
        f.handle_relay(sync(44));
        assert_eq!(outputs(&mut f), (vec![], vec![], 0));
        f.handle_relay(relayed(45));
        assert_eq!(outputs(&mut f).0, ["45"]);
    }

    #[test]
    fn a_failed_catch_up_is_a_reset_never_a_silent_gap() {
        let mut f = TabCore::new(2);
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
        let mut f = TabCore::new(2);
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
            "tidings/1 - http://h/x"
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
                state: "open".into(),
                last_id: Some("7".into()),
            },
            Relay::Sync {
                tab: 3,
                state: "polling".into(),
                last_id: None,
            },
            Relay::Event {
                id: Some("9".into()),
                event: "message".into(),
                data: "{\"a\":\"\\n\u{1F600}\"}".into(),
            },
            Relay::State {
                state: "reconnecting".into(),
            },
            Relay::Error {
                kind: "http".into(),
                message: "m".into(),
                raw: Some("b".into()),
                status: Some(500),
            },
        ];
        for m in msgs {
            assert_eq!(Relay::decode(&m.encode()).unwrap(), m);
        }
        assert!(Relay::decode(r#"{"t":"event"}"#).is_err());
        assert!(Relay::decode(r#"{"t":"nope","tab":1}"#).is_err());
        assert!(Relay::decode("not json").is_err());
        assert_eq!(parse_state("polling"), Some(State::Polling));
        assert_eq!(parse_state("x"), None);
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
                    w.tabs[i].core = TabCore::new(100 + step);
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
}
