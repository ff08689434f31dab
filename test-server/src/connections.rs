//! Registry of open SSE connections: stats per stream and per user, and the limits a new
//! stream must pass (per user, per client address for streams without a token, and the
//! process-wide cap that keeps file descriptors for everything else).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

/// Counts of open connections; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_stream: HashMap<String, usize>,
    by_user: HashMap<String, usize>,
    by_address: HashMap<IpAddr, usize>,
}

/// The limits a new stream must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open streams per authenticated user.
    pub per_user: usize,
    /// Open streams without a token per client address.
    pub per_address: usize,
    /// Open streams in the process.
    pub max_streams: usize,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user has this many open (429).
    User(usize),
    /// The client address has this many open without a token (429).
    Address(usize),
    /// The process has this many open (503).
    Global(usize),
}

/// A point-in-time copy of the counts, as `/api/stats` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    /// All open SSE connections.
    pub total: usize,
    /// Per stream key.
    pub by_stream: BTreeMap<String, usize>,
    /// Per authenticated user (`sub`).
    pub by_user: BTreeMap<String, usize>,
}

impl Snapshot {
    /// Open connections per stream kind (`team-answers`, `notifications`, `video`, `channel`).
    pub fn by_kind(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for kind in ["team-answers", "notifications", "video", "channel"] {
            out.insert(kind.to_owned(), 0);
        }
        for (stream, n) in &self.by_stream {
            let kind = stream.split('/').next().unwrap_or(stream);
            *out.entry(kind.to_owned()).or_insert(0) += n;
        }
        out
    }
}

/// Held by an open connection; unregisters it when dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    owner: Connections,
    stream: String,
    user: Option<String>,
    /// The client address it counts under (streams without a token only).
    address: Option<IpAddr>,
    /// False for a stream carried by a multiplexed connection: it counts per stream and
    /// per user, while the one physical connection counts in `total`.
    physical: bool,
    /// Folded into a [`MemberCounts`], which releases its counts instead.
    folded: bool,
}

/// What a folded stream counts under, besides its stream key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedAs {
    /// Its user (`by_user`).
    User,
    /// Its client address (a stream without a token).
    Address,
    /// Neither (no token, no known address).
    Neither,
}

/// The counts of the streams of one multiplexed connection, held compactly: the user and
/// the client address once for the connection, so each stream needs only its key (which
/// the holder may share with others) and a [`CountedAs`]. The holder releases each
/// stream with [`MemberCounts::release`]; nothing is released on drop.
#[derive(Debug)]
pub struct MemberCounts {
    owner: Connections,
    user: Option<Box<str>>,
    address: Option<IpAddr>,
}

impl MemberCounts {
    /// Uncounts one stream folded in by [`ConnectionGuard::fold_into`].
    pub fn release(&self, stream: &str, counted: CountedAs) {
        let mut c = self.owner.lock();
        dec(&mut c.by_stream, stream);
        match (counted, &self.user, &self.address) {
            (CountedAs::User, Some(u), _) => dec(&mut c.by_user, &**u),
            (CountedAs::Address, _, Some(a)) => dec(&mut c.by_address, a),
            _ => {}
        }
    }
}

impl ConnectionGuard {
    /// The stream key this connection counts under.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Folds the guard of one stream of a multiplexed connection into the connection's
    /// `counts`: from now on `counts` releases it. Gives the guard back when it cannot be
    /// folded (a counted connection of its own, or another user or address than the
    /// streams folded before).
    pub fn fold_into(
        mut self,
        counts: &mut Option<MemberCounts>,
    ) -> Result<CountedAs, ConnectionGuard> {
        if self.physical {
            return Err(self);
        }
        let c = counts.get_or_insert_with(|| MemberCounts {
            owner: self.owner.clone(),
            user: None,
            address: None,
        });
        if !Arc::ptr_eq(&c.owner.inner, &self.owner.inner) {
            return Err(self);
        }
        let counted = match (&self.user, self.address) {
            (Some(u), _) => match &c.user {
                Some(have) if **have != **u => return Err(self),
                Some(_) => CountedAs::User,
                None => {
                    c.user = Some(u.as_str().into());
                    CountedAs::User
                }
            },
            (None, Some(a)) => match c.address {
                Some(have) if have != a => return Err(self),
                Some(_) => CountedAs::Address,
                None => {
                    c.address = Some(a);
                    CountedAs::Address
                }
            },
            (None, None) => CountedAs::Neither,
        };
        self.folded = true;
        Ok(counted)
    }

    /// Turns the guard of a stream into that of one stream of a multiplexed connection:
    /// it still counts per stream and against the user's limit, but no longer in `total`
    /// (the multiplexed connection's own guard counts there, once).
    pub fn into_member(mut self) -> ConnectionGuard {
        if self.physical {
            self.physical = false;
            let mut c = self.owner.lock();
            c.total = c.total.saturating_sub(1);
        }
        self
    }
}

/// Held by a multiplexed connection: one in `total`, however many streams it carries.
#[derive(Debug)]
pub struct MuxGuard {
    owner: Connections,
}

impl Drop for MuxGuard {
    fn drop(&mut self) {
        let mut c = self.owner.lock();
        c.total = c.total.saturating_sub(1);
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.folded {
            return;
        }
        let mut c = self.owner.lock();
        if self.physical {
            c.total = c.total.saturating_sub(1);
        }
        dec(&mut c.by_stream, &self.stream);
        if let Some(u) = &self.user {
            dec(&mut c.by_user, u);
        }
        if let Some(a) = &self.address {
            dec(&mut c.by_address, a);
        }
    }
}

fn dec<K, Q>(map: &mut HashMap<K, usize>, key: &Q)
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a stream of `user` (or, without a token, of the client `address`), or
    /// says which limit it is past.
    pub fn open(
        &self,
        stream: &str,
        user: Option<&str>,
        address: Option<IpAddr>,
        limits: &Limits,
    ) -> Result<ConnectionGuard, Refused> {
        self.register(stream, user, address, limits, true)
    }

    /// Registers one stream of a multiplexed connection: per stream, against the user's
    /// (or address's) limit, but not in `total` nor against `--max-streams`, which the
    /// connection passed once ([`Connections::open_mux`]): it is one socket.
    pub fn open_member(
        &self,
        stream: &str,
        user: Option<&str>,
        address: Option<IpAddr>,
        limits: &Limits,
    ) -> Result<ConnectionGuard, Refused> {
        self.register(stream, user, address, limits, false)
    }

    fn register(
        &self,
        stream: &str,
        user: Option<&str>,
        address: Option<IpAddr>,
        limits: &Limits,
        physical: bool,
    ) -> Result<ConnectionGuard, Refused> {
        let mut c = self.lock();
        if physical && c.total >= limits.max_streams {
            return Err(Refused::Global(limits.max_streams));
        }
        let address = if user.is_some() { None } else { address };
        if let Some(u) = user {
            if c.by_user.get(u).copied().unwrap_or(0) >= limits.per_user {
                return Err(Refused::User(limits.per_user));
            }
            *c.by_user.entry(u.to_owned()).or_insert(0) += 1;
        }
        if let Some(a) = address {
            if c.by_address.get(&a).copied().unwrap_or(0) >= limits.per_address {
                return Err(Refused::Address(limits.per_address));
            }
            *c.by_address.entry(a).or_insert(0) += 1;
        }
        if physical {
            c.total += 1;
        }
        *c.by_stream.entry(stream.to_owned()).or_insert(0) += 1;
        Ok(ConnectionGuard {
            owner: self.clone(),
            stream: stream.to_owned(),
            user: user.map(str::to_owned),
            address,
            physical,
            folded: false,
        })
    }

    /// Open streams (connections) in the process.
    pub fn total(&self) -> usize {
        self.lock().total
    }

    /// Counts one multiplexed connection in `total` (its streams count through their own
    /// member guards, see [`ConnectionGuard::into_member`]).
    /// Refused past the process-wide cap.
    pub fn open_mux(&self, limits: &Limits) -> Result<MuxGuard, Refused> {
        let mut c = self.lock();
        if c.total >= limits.max_streams {
            return Err(Refused::Global(limits.max_streams));
        }
        c.total += 1;
        Ok(MuxGuard {
            owner: self.clone(),
        })
    }

    /// Current counts.
    pub fn snapshot(&self) -> Snapshot {
        let c = self.lock();
        Snapshot {
            total: c.total,
            by_stream: c.by_stream.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            by_user: c.by_user.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        per_user: 2,
        per_address: 2,
        max_streams: 100,
    };

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn counts_and_limits() {
        let c = Connections::default();
        let a = c
            .open("notifications/alice", Some("alice"), ip(1), &L)
            .unwrap();
        let _b = c
            .open("notifications/alice", Some("alice"), ip(1), &L)
            .unwrap();
        assert_eq!(
            c.open("channel/x", Some("alice"), ip(1), &L).unwrap_err(),
            Refused::User(2)
        );
        let _t = c.open("team-answers", None, ip(1), &L).unwrap();
        let s = c.snapshot();
        assert_eq!(s.total, 3);
        assert_eq!(s.by_user["alice"], 2);
        assert_eq!(s.by_kind()["notifications"], 2);
        drop(a);
        assert_eq!(c.snapshot().by_user["alice"], 1);
        assert!(c.open("channel/x", Some("alice"), ip(1), &L).is_ok());
    }

    #[test]
    fn streams_without_a_token_count_per_address_and_all_against_the_cap() {
        let c = Connections::default();
        let a = c.open("team-answers", None, ip(1), &L).unwrap();
        let _b = c.open("team-answers", None, ip(1), &L).unwrap();
        assert_eq!(
            c.open("team-answers", None, ip(1), &L).unwrap_err(),
            Refused::Address(2)
        );
        // Another address, a user from the same address, and no known address pass.
        let _c = c.open("team-answers", None, ip(2), &L).unwrap();
        let _u = c.open("channel/x", Some("carol"), ip(1), &L).unwrap();
        let _n = c.open("team-answers", None, None, &L).unwrap();
        drop(a);
        let _d = c.open("team-answers", None, ip(1), &L).unwrap();
        let small = Limits {
            max_streams: 5,
            ..L
        };
        assert_eq!(
            c.open("team-answers", None, ip(3), &small).unwrap_err(),
            Refused::Global(5)
        );
        assert_eq!(c.open_mux(&small).unwrap_err(), Refused::Global(5));
    }

    #[test]
    fn a_multiplexed_connection_counts_once_and_its_streams_each() {
        let c = Connections::default();
        let l = Limits { per_user: 8, ..L };
        let mux = c.open_mux(&l).unwrap();
        let a = c
            .open("channel/a", Some("bob"), None, &l)
            .unwrap()
            .into_member();
        let b = c.open_member("channel/b", Some("bob"), None, &l).unwrap();
        let s = c.snapshot();
        assert_eq!(
            (s.total, s.by_user["bob"], s.by_stream["channel/a"]),
            (1, 2, 1)
        );
        drop(a);
        drop(mux);
        let s = c.snapshot();
        assert_eq!((s.total, s.by_user["bob"]), (0, 1));
        drop(b);
        assert_eq!(c.snapshot().total, 0);
    }

    #[test]
    fn folded_member_guards_count_until_released() {
        let c = Connections::default();
        let l = Limits { per_user: 8, ..L };
        let mut counts = None;
        let a = c.open_member("channel/a", Some("bob"), ip(1), &l).unwrap();
        let t = c.open_member("team-answers", None, ip(1), &l).unwrap();
        assert_eq!(a.fold_into(&mut counts).unwrap(), CountedAs::User);
        assert_eq!(t.fold_into(&mut counts).unwrap(), CountedAs::Address);
        let other = c.open_member("channel/b", Some("eve"), ip(1), &l).unwrap();
        let other = other.fold_into(&mut counts).unwrap_err();
        let own = c.open("channel/c", Some("bob"), ip(1), &l).unwrap();
        let own = own.fold_into(&mut counts).unwrap_err();
        let s = c.snapshot();
        assert_eq!(
            (s.total, s.by_user["bob"], s.by_stream["team-answers"]),
            (1, 2, 1)
        );
        let counts = counts.unwrap();
        counts.release("channel/a", CountedAs::User);
        counts.release("team-answers", CountedAs::Address);
        drop((other, own));
        let s = c.snapshot();
        assert_eq!((s.total, s.by_stream.len(), s.by_user.len()), (0, 0, 0));
        assert!(c
            .open(
                "x",
                None,
                ip(1),
                &Limits {
                    per_address: 1,
                    ..l
                }
            )
            .is_ok());
    }

    #[test]
    fn the_streams_of_a_multiplexed_connection_at_the_cap_still_open() {
        let c = Connections::default();
        let l = Limits {
            max_streams: 1,
            per_user: 8,
            ..L
        };
        let _mux = c.open_mux(&l).unwrap();
        assert!(c.open_member("channel/a", Some("bob"), None, &l).is_ok());
        assert!(c.open_member("team-answers", None, ip(1), &l).is_ok());
        assert_eq!(c.open_mux(&l).unwrap_err(), Refused::Global(1));
        assert_eq!(
            c.open("channel/a", Some("bob"), None, &l).unwrap_err(),
            Refused::Global(1)
        );
        assert_eq!(c.snapshot().total, 1);
    }
}
