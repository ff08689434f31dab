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
//!   decode errors, exactly once. A leader of a Tidings stream that no
//!   follower has joined relays no events (nobody would read them): a tab
//!   that joins later gets the leader's position in [`Relay::Sync`] and
//!   catches up on what it missed (below), or starts there.
//! - **Interest:** followers announce the event names they listen for
//!   ([`Relay::Join`]); the leader adds them to its `EventSource`
//!   ([`TabOutput::ListenFor`]), so a follower-only named event still arrives.
//!   Payload types of unnamed events need nothing: `message` is always relayed.
//! - **Protocol:** the leader tells whether the stream speaks Tidings
//!   ([`Relay::Protocol`], and in every [`Relay::Sync`]); followers decode and
//!   de-duplicate by it. For any other server ids are opaque: nothing is
//!   dropped, `end` is an ordinary name, and there is no catch-up.
//! - **Position:** every tab tracks the last id it delivered. A follower of a
//!   Tidings stream drops (and counts) a relayed event whose numeric id is
//!   `<=` that (de-dup). A tab that knew
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

use std::collections::{BTreeMap, VecDeque};

use crate::json::{self, Json};

use crate::connection::{ErrorInfo, ErrorKind, Output, State};
use crate::parser::SseEvent;
use crate::position::Position;

/// Version of the relay format; part of every lock/channel name so tabs
/// running different SDK versions never share.
pub(crate) const RELAY_VERSION: u32 = 3;

/// The Web Lock and `BroadcastChannel` name for a stream: the absolute URL
/// and a 128-bit FNV-1a hash of the credentials (the token and any extra
/// request headers, which may carry `Authorization`; `-` without either),
/// never the raw token (lock names are visible in `navigator.locks.query()`).
/// Different tokens give different names, so different users never share a
/// connection. The hash keeps the token out of sight; it is not a security
/// boundary (any script of the origin can read the page's token anyway).
/// Callers must not share at all when the credentials are not known up front
/// (a `getToken` callback).
pub(crate) fn share_name(
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
            creds.push('\n');
            creds.push_str(&k.to_ascii_lowercase());
            creds.push(':');
            creds.push_str(v);
        }
        hex128(fnv1a_128(creds.as_bytes()))
    };
    [
        "tidings/",
        &json::uint_text(u64::from(RELAY_VERSION)),
        " ",
        &who,
        " ",
        absolute_url,
    ]
    .concat()
}

/// `n` as 32 lowercase hex digits (`format!("{n:032x}")` without the
/// formatting machinery in the wasm).
pub(crate) fn hex128(n: u128) -> String {
    (0..32)
        .rev()
        .map(|i| char::from_digit(((n >> (i * 4)) & 0xf) as u32, 16).unwrap_or('0'))
        .collect()
}

/// FNV-1a, 128-bit variant (also names the stored position of a stream).
pub(crate) fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// One message on the channel. Encoded as JSON text by hand
/// ([`Relay::encode`]: `{"t":"<kind>", …fields}`); posted in batches
/// ([`Relay::encode_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Relay {
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
        /// Its state.
        state: State,
        /// Its position.
        last_id: Option<String>,
    },
    /// The leader's answer to a [`Relay::Join`]: its state and position.
    Sync {
        /// The sender.
        tab: u64,
        /// Its state.
        state: State,
        /// Its position.
        last_id: Option<String>,
        /// Whether the stream speaks Tidings.
        tidings: bool,
    },
    /// Whether the stream speaks Tidings changed (the leader saw the hello,
    /// or a connection without it).
    Protocol {
        /// Speaks Tidings now.
        tidings: bool,
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
        /// The new state.
        state: State,
    },
    /// A transport error of the leader (network, HTTP, auth, protocol).
    Error {
        /// What kind of failure (an unknown kind makes the message malformed).
        kind: ErrorKind,
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
pub(crate) enum RelayError {
    /// Not a string (someone else posted on our channel).
    NotText,
    /// Not a relay message of this version.
    Malformed(String),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::NotText => f.write_str("tab relay message is not text"),
            RelayError::Malformed(e) => {
                f.write_str("bad tab relay message: ")?;
                f.write_str(e)
            }
        }
    }
}

impl std::error::Error for RelayError {}

impl Relay {
    /// The JSON text posted on the channel.
    pub(crate) fn encode(&self) -> String {
        let mut w = Writer(String::with_capacity(64));
        match self {
            Relay::Join { tab, names } => {
                w.kind("join");
                w.uint("tab", *tab);
                w.key("names");
                w.0.push('[');
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        w.0.push(',');
                    }
                    json::push_str(&mut w.0, n);
                }
                w.0.push(']');
            }
            Relay::Leave { tab, leader } => {
                w.kind("leave");
                w.uint("tab", *tab);
                w.flag("leader", *leader);
            }
            Relay::Leader {
                tab,
                state,
                last_id,
            } => {
                w.kind("leader");
                w.uint("tab", *tab);
                w.str("state", Some(state.as_str()));
                w.str("last_id", last_id.as_deref());
            }
            Relay::Sync {
                tab,
                state,
                last_id,
                tidings,
            } => {
                w.kind("sync");
                w.uint("tab", *tab);
                w.str("state", Some(state.as_str()));
                w.str("last_id", last_id.as_deref());
                w.flag("tidings", *tidings);
            }
            Relay::Protocol { tidings } => {
                w.kind("protocol");
                w.flag("tidings", *tidings);
            }
            Relay::Event { id, event, data } => {
                w.kind("event");
                w.str("id", id.as_deref());
                w.str("event", Some(event));
                w.str("data", Some(data));
            }
            Relay::State { state } => {
                w.kind("state");
                w.str("state", Some(state.as_str()));
            }
            Relay::Error {
                kind,
                message,
                raw,
                status,
            } => {
                w.kind("error");
                w.str("kind", Some(kind.as_str()));
                w.str("message", Some(message));
                w.str("raw", raw.as_deref());
                w.key("status");
                match status {
                    Some(s) => json::push_uint(&mut w.0, u64::from(*s)),
                    None => w.0.push_str("null"),
                }
            }
        }
        w.0.push('}');
        w.0
    }

    /// Reads one message ([`Relay::encode`]); the channel carries batches
    /// ([`Relay::decode_batch`]).
    #[cfg(test)]
    pub(crate) fn decode(text: &str) -> Result<Relay, RelayError> {
        Relay::from_doc(&json::Doc::parse(text).map_err(RelayError::Malformed)?)
    }

    /// One channel post carrying several messages ([`Relay::encode`]d), in
    /// order: a JSON array. A tab posts what one task produced as one batch,
    /// so a burst of events costs one `postMessage`, not one per event.
    pub(crate) fn encode_batch(encoded: &[String]) -> String {
        let mut out = String::with_capacity(2 + encoded.iter().map(|e| e.len() + 1).sum::<usize>());
        out.push('[');
        for (i, e) in encoded.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(e);
        }
        out.push(']');
        out
    }

    /// Reads a channel post ([`Relay::encode_batch`]); one bad message makes
    /// the whole post malformed (it is reported, never half-delivered).
    #[cfg(test)]
    pub(crate) fn decode_batch(text: &str) -> Result<Vec<Relay>, RelayError> {
        Relay::batch_from_doc(&json::Doc::parse(text).map_err(RelayError::Malformed)?)
    }

    /// [`Relay::decode_batch`] of a post already parsed.
    pub(crate) fn batch_from_doc<J: Json>(doc: &J) -> Result<Vec<Relay>, RelayError> {
        let items = doc
            .items()
            .ok_or_else(|| malformed(["a batch must be an array, not ", doc.kind()].concat()))?;
        items.iter().map(Relay::from_doc).collect()
    }

    /// One message of a parsed post.
    fn from_doc<J: Json>(v: &J) -> Result<Relay, RelayError> {
        let r = Reader(v);
        let t = r.string("t")?;
        Ok(match t.as_str() {
            "join" => Relay::Join {
                tab: r.tab()?,
                names: match v.get("names").and_then(|n| n.items()) {
                    Some(items) => items
                        .iter()
                        .map(|n| {
                            n.as_str()
                                .ok_or_else(|| malformed("`names` must be strings".into()))
                        })
                        .collect::<Result<_, _>>()?,
                    None => return Err(malformed("`names` must be an array".into())),
                },
            },
            "leave" => Relay::Leave {
                tab: r.tab()?,
                leader: r.flag("leader")?,
            },
            "leader" => Relay::Leader {
                tab: r.tab()?,
                state: r.state()?,
                last_id: r.opt("last_id")?,
            },
            "sync" => Relay::Sync {
                tab: r.tab()?,
                state: r.state()?,
                last_id: r.opt("last_id")?,
                tidings: r.flag("tidings")?,
            },
            "protocol" => Relay::Protocol {
                tidings: r.flag("tidings")?,
            },
            "event" => Relay::Event {
                id: r.opt("id")?,
                event: r.string("event")?,
                data: r.string("data")?,
            },
            "state" => Relay::State { state: r.state()? },
            "error" => Relay::Error {
                kind: {
                    let k = r.string("kind")?;
                    ERROR_KINDS
                        .into_iter()
                        .find(|e| e.as_str() == k)
                        .ok_or_else(|| malformed(["unknown error kind '", &k, "'"].concat()))?
                },
                message: r.string("message")?,
                raw: r.opt("raw")?,
                status: match v.get("status").filter(|s| !s.is_null()) {
                    None => None,
                    Some(s) => Some(
                        s.as_int()
                            .and_then(|n| u16::try_from(n).ok())
                            .ok_or_else(|| malformed("`status` must be an HTTP status".into()))?,
                    ),
                },
            },
            other => return Err(malformed(["unknown message '", other, "'"].concat())),
        })
    }
}

/// Adds `name` to a sorted list of distinct names; true when it was new.
fn insert_sorted(names: &mut Vec<String>, name: &str) -> bool {
    match names.binary_search_by(|n| n.as_str().cmp(name)) {
        Ok(_) => false,
        Err(i) => {
            names.insert(i, name.to_owned());
            true
        }
    }
}

/// `names` sorted, each once.
fn sorted(names: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        insert_sorted(&mut out, n);
    }
    out
}

const STATES: [State; 5] = [
    State::Connecting,
    State::Open,
    State::Reconnecting,
    State::Polling,
    State::Closed,
];

const ERROR_KINDS: [ErrorKind; 5] = [
    ErrorKind::Decode,
    ErrorKind::Http,
    ErrorKind::Network,
    ErrorKind::Auth,
    ErrorKind::Protocol,
];

fn malformed(reason: String) -> RelayError {
    RelayError::Malformed(reason)
}

/// Writes one relay message's JSON object, field by field.
struct Writer(String);

impl Writer {
    fn kind(&mut self, t: &str) {
        self.0.push_str("{\"t\":");
        json::push_str(&mut self.0, t);
    }
    fn key(&mut self, k: &str) {
        self.0.push(',');
        json::push_str(&mut self.0, k);
        self.0.push(':');
    }
    fn uint(&mut self, k: &str, n: u64) {
        self.key(k);
        json::push_uint(&mut self.0, n);
    }
    fn flag(&mut self, k: &str, b: bool) {
        self.key(k);
        self.0.push_str(if b { "true" } else { "false" });
    }
    fn str(&mut self, k: &str, s: Option<&str>) {
        self.key(k);
        match s {
            Some(s) => json::push_str(&mut self.0, s),
            None => self.0.push_str("null"),
        }
    }
}

/// Reads one relay message's fields.
struct Reader<'a, J>(&'a J);

impl<J: Json> Reader<'_, J> {
    fn string(&self, k: &str) -> Result<String, RelayError> {
        self.0
            .get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| malformed(["`", k, "` must be a string"].concat()))
    }
    fn opt(&self, k: &str) -> Result<Option<String>, RelayError> {
        match self.0.get(k).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| malformed(["`", k, "` must be a string or null"].concat())),
        }
    }
    fn flag(&self, k: &str) -> Result<bool, RelayError> {
        self.0
            .get(k)
            .and_then(|v| v.as_bool())
            .ok_or_else(|| malformed(["`", k, "` must be true or false"].concat()))
    }
    fn tab(&self) -> Result<u64, RelayError> {
        self.0
            .get("tab")
            .and_then(|v| v.as_int())
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| malformed("`tab` must be a tab number".into()))
    }
    fn state(&self) -> Result<State, RelayError> {
        let s = self.string("state")?;
        STATES
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| malformed(["unknown state '", &s, "'"].concat()))
    }
}

/// This tab's part in sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not taking part (no listeners, or stopped).
    Idle,
    /// Waiting for the lock; delivering what the leader relays.
    Follower,
    /// Holding the lock and the connection.
    Leader,
}

/// What the shell must do for the tab core besides posting messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TabOutput {
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
pub(crate) struct TabCore {
    tab: u64,
    role: Role,
    state: State,
    position: Position,
    ended: bool,
    /// The stream speaks Tidings (the leader says).
    tidings: bool,
    /// Relayed events dropped as duplicates.
    duplicates: u64,
    /// This tab's listener types, sorted, each once.
    names: Vec<String>,
    /// Each follower's listener types (a few tabs, a few names: a list is enough).
    peers: Vec<(u64, Vec<String>)>,
    /// While catching up: from which id, up to which (the leader's position), and the held relays.
    catching_up: Option<(u64, u64)>,
    held: Vec<SseEvent>,
    posts: VecDeque<Relay>,
    outputs: VecDeque<TabOutput>,
}

impl TabCore {
    /// A tab (`tab`: a random id) not yet taking part; `tidings`: whether the
    /// stream speaks Tidings before any leader says (`protocol: 'tidings'`).
    pub(crate) fn new(tab: u64, tidings: bool) -> Self {
        TabCore {
            tab,
            role: Role::Idle,
            state: State::Closed,
            position: Position::default(),
            ended: false,
            tidings,
            duplicates: 0,
            names: Vec::new(),
            peers: Vec::new(),
            catching_up: None,
            held: Vec::new(),
            posts: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    // ---- getters -------------------------------------------------------

    /// This tab's id.
    #[cfg(test)]
    pub(crate) fn tab(&self) -> u64 {
        self.tab
    }

    /// Idle, follower or leader.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// The state this tab shows: the leader's (mirrored) while following.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The id of the last event this tab delivered (where it resumes as leader).
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.position.id()
    }

    /// Relayed events this tab dropped as duplicates.
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Whether the stream ended (`end` delivered): never reconnect.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// Leader: whether any follower has joined (and not left).
    pub(crate) fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Whether [`TabCore::handle_local`] relays the data of events: as the
    /// leader, unless no follower listens to a Tidings stream (a tab that
    /// joins later is told the position in the `sync` and catches up).
    pub(crate) fn relays_events(&self) -> bool {
        self.role == Role::Leader && !(self.peers.is_empty() && self.tidings)
    }

    /// Leader: the event names followers listen for (added to the `EventSource`).
    pub(crate) fn peer_names(&self) -> Vec<String> {
        let mut all = Vec::new();
        for n in self.peers.iter().flat_map(|(_, names)| names) {
            insert_sorted(&mut all, n);
        }
        all
    }

    // ---- commands --------------------------------------------------------

    /// First listener: take part as a follower until the lock is granted.
    /// `names` are this tab's listener types; `resume` the position this tab
    /// knows it delivered up to (kept across a reload), if any.
    pub(crate) fn start(&mut self, names: &[String], resume: Option<&str>) {
        if self.role != Role::Idle {
            return;
        }
        if self.position.id().is_none() {
            self.position.track(resume);
        }
        self.names = sorted(names);
        self.role = Role::Follower;
        if !self.ended {
            self.show(State::Connecting);
        }
        self.posts.push_back(Relay::Join {
            tab: self.tab,
            names: self.names.clone(),
        });
    }

    /// This tab added a listener type. A follower tells the leader.
    pub(crate) fn add_name(&mut self, name: &str) {
        if insert_sorted(&mut self.names, name) && self.role == Role::Follower {
            self.posts.push_back(Relay::Join {
                tab: self.tab,
                names: self.names.clone(),
            });
        }
    }

    /// Last listener gone / `close()` / `pagehide`: leave (the shell then
    /// releases the lock and, as leader, stops its connection).
    pub(crate) fn stop(&mut self) {
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
    pub(crate) fn handle_lock_granted(&mut self) -> bool {
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
            state: self.state,
            last_id: self.position.id().map(str::to_owned),
        });
        true
    }

    /// Leader: something the connection produced, before it is delivered
    /// locally. Tracks the position and relays it. Returns whether to deliver
    /// it locally: false for a state this tab already shows (the fresh
    /// connection of a new leader reports `connecting` again).
    pub(crate) fn handle_local(&mut self, output: &Output) -> bool {
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
                    self.posts.push_back(Relay::State { state: *s });
                }
            }
            Output::Event(ev) => {
                self.track(ev);
                // With no follower, a Tidings stream's events are not relayed:
                // a tab that joins later is told the leader's position in the
                // `sync` and catches up on what it missed, or starts there.
                if !self.relays_events() {
                    return true;
                }
                self.posts.push_back(Relay::Event {
                    id: ev.id.clone(),
                    event: ev.event.clone(),
                    data: ev.data.clone(),
                });
            }
            Output::Error(e) if e.kind != ErrorKind::Decode => self.posts.push_back(Relay::Error {
                kind: e.kind,
                message: e.message.clone(),
                raw: e.raw.clone(),
                status: e.status,
            }),
            Output::Error(_) => {}
            Output::Protocol(tidings) => {
                self.tidings = *tidings;
                self.posts.push_back(Relay::Protocol { tidings: *tidings });
            }
        }
        true
    }

    /// A message from another tab.
    pub(crate) fn handle_relay(&mut self, msg: Relay) {
        match (self.role, msg) {
            (Role::Idle, _) => {}
            (Role::Leader, Relay::Join { tab, names }) => {
                let before = self.peer_names();
                let own = &self.names;
                for n in &names {
                    if !before.contains(n) && !own.contains(n) {
                        self.outputs.push_back(TabOutput::ListenFor(n.clone()));
                    }
                }
                let names = sorted(&names);
                match self.peers.iter_mut().find(|(t, _)| *t == tab) {
                    Some(p) => p.1 = names,
                    None => self.peers.push((tab, names)),
                }
                self.posts.push_back(Relay::Sync {
                    tab: self.tab,
                    state: self.state,
                    last_id: self.position.id().map(str::to_owned),
                    tidings: self.tidings,
                });
            }
            (Role::Leader, Relay::Leave { tab, .. }) => {
                self.peers.retain(|(t, _)| *t != tab);
            }
            // Another leader cannot exist while we hold the lock; a late
            // message of the previous leader is covered by our own resume.
            (Role::Leader, _) => {}
            (Role::Follower, Relay::Leader { state, last_id, .. }) => {
                self.posts.push_back(Relay::Join {
                    tab: self.tab,
                    names: self.names.clone(),
                });
                self.sync(state, last_id);
            }
            (
                Role::Follower,
                Relay::Sync {
                    state,
                    last_id,
                    tidings,
                    ..
                },
            ) => {
                self.set_tidings(tidings);
                self.sync(state, last_id);
            }
            (Role::Follower, Relay::Protocol { tidings }) => self.set_tidings(tidings),
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
                if !self.ended || state == State::Closed {
                    self.show(state);
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
                let mut e = ErrorInfo::new(kind, message);
                e.raw = raw;
                e.status = status;
                self.outputs.push_back(TabOutput::Deliver(Output::Error(e)));
            }
        }
    }

    /// The events a [`TabOutput::CatchUp`] fetched (oldest first): delivered,
    /// then the relays held back meanwhile, without duplicates.
    pub(crate) fn handle_catch_up(&mut self, events: Vec<SseEvent>) {
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
    pub(crate) fn handle_catch_up_failed(&mut self, reason: &str) {
        let Some((from, to)) = self.catching_up.take() else {
            return;
        };
        if self.role != Role::Follower {
            return;
        }
        let (from, to) = (json::uint_text(from), json::uint_text(to));
        let mut data = String::from(r#"{"type":"reset","reason":"gap","last_event_id":"#);
        json::push_str(&mut data, &from);
        data.push_str(r#","head":"#);
        json::push_str(&mut data, &to);
        data.push_str(r#","message":"#);
        json::push_str(
            &mut data,
            &[
                "missed events while rejoining could not be fetched: ",
                reason,
            ]
            .concat(),
        );
        data.push('}');
        self.outputs
            .push_back(TabOutput::Deliver(Output::Event(SseEvent {
                event: "reset".into(),
                data,
                id: None,
            })));
        self.position.track(Some(&to));
        self.release_held();
    }

    // ---- outputs ---------------------------------------------------------

    /// The next message to post on the channel.
    #[must_use]
    pub(crate) fn poll_post(&mut self) -> Option<Relay> {
        self.posts.pop_front()
    }

    /// The next thing to deliver or do locally.
    #[must_use]
    pub(crate) fn poll(&mut self) -> Option<TabOutput> {
        self.outputs.pop_front()
    }

    // ---- internals -------------------------------------------------------

    /// Follows the leader's word on the protocol; the shell decodes by it.
    fn set_tidings(&mut self, tidings: bool) {
        if self.tidings != tidings {
            self.tidings = tidings;
            self.outputs
                .push_back(TabOutput::Deliver(Output::Protocol(tidings)));
        }
    }

    fn show(&mut self, s: State) {
        if self.state != s {
            self.state = s;
            self.outputs.push_back(TabOutput::Deliver(Output::State(s)));
        }
    }

    /// Mirrors the leader's state. A tab that knew nothing adopts the
    /// leader's position (what came before predates it); one that knows its
    /// position and is behind the leader catches up on the events in between.
    fn sync(&mut self, state: State, last_id: Option<String>) {
        if !self.ended {
            self.show(state);
        }
        let Some(id) = last_id.filter(|s| !s.is_empty()) else {
            return;
        };
        if !self.tidings {
            // Opaque ids: nothing to compare or fetch; the leader's position is ours.
            self.position.track(Some(&id));
            return;
        }
        match (id.parse::<u64>().ok(), self.position.num()) {
            (Some(n), Some(l)) if n > l => {
                // Relays from one sender arrive in order, so relays up to `n`
                // were handled before this message: (l, n] never reached us.
                if self.catching_up.is_none() {
                    self.catching_up = Some((l, n));
                    self.outputs
                        .push_back(TabOutput::CatchUp(json::uint_text(l)));
                }
            }
            // Not behind: adopt the leader's position if it is further on or ours is unknown.
            _ => self.position.advance_to(&id),
        }
    }

    fn deliver_relayed(&mut self, ev: SseEvent) {
        if self.ended {
            return;
        }
        if self.tidings && self.position.is_duplicate(ev.id.as_deref(), &ev.event) {
            self.duplicates += 1;
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
        if self.tidings && ev.event == "end" {
            self.ended = true;
        }
    }
}

/// Posts every message in order with `post`, also those after a failed one
/// (one failure must not cost the other tabs the relays queued after it);
/// returns the first failure, saying how many failed when more than one did.
pub(crate) fn post_all(
    posts: &[Relay],
    mut post: impl FnMut(&Relay) -> Result<(), String>,
) -> Option<String> {
    let mut first = None;
    let mut failed = 0usize;
    for m in posts {
        if let Err(e) = post(m) {
            failed += 1;
            first.get_or_insert(e);
        }
    }
    first.map(|e| {
        if failed > 1 {
            [
                &e,
                " (",
                &json::uint_text(failed as u64),
                " of ",
                &json::uint_text(posts.len() as u64),
                " messages failed)",
            ]
            .concat()
        } else {
            e
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
