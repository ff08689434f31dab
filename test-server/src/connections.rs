//! Registry of open SSE connections: stats per stream and per user, and the per-user limit.

use std::collections::{BTreeMap, HashMap};
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
    /// False for a stream carried by a multiplexed connection: it counts per stream and
    /// per user, while the one physical connection counts in `total`.
    physical: bool,
}

impl ConnectionGuard {
    /// The stream key this connection counts under.
    pub fn stream(&self) -> &str {
        &self.stream
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
        let mut c = self.owner.lock();
        if self.physical {
            c.total = c.total.saturating_sub(1);
        }
        dec(&mut c.by_stream, &self.stream);
        if let Some(u) = &self.user {
            dec(&mut c.by_user, u);
        }
    }
}

fn dec(map: &mut HashMap<String, usize>, key: &str) {
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

    /// Registers a connection, or returns `None` when `user` already has `limit` open.
    pub fn open(&self, stream: &str, user: Option<&str>, limit: usize) -> Option<ConnectionGuard> {
        let mut c = self.lock();
        if let Some(u) = user {
            if c.by_user.get(u).copied().unwrap_or(0) >= limit {
                return None;
            }
            *c.by_user.entry(u.to_owned()).or_insert(0) += 1;
        }
        c.total += 1;
        *c.by_stream.entry(stream.to_owned()).or_insert(0) += 1;
        Some(ConnectionGuard {
            owner: self.clone(),
            stream: stream.to_owned(),
            user: user.map(str::to_owned),
            physical: true,
        })
    }

    /// Counts one multiplexed connection in `total` (its streams count through their own
    /// member guards, see [`ConnectionGuard::into_member`]).
    pub fn open_mux(&self) -> MuxGuard {
        self.lock().total += 1;
        MuxGuard {
            owner: self.clone(),
        }
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

    #[test]
    fn counts_and_limits() {
        let c = Connections::default();
        let a = c.open("notifications/alice", Some("alice"), 2).unwrap();
        let _b = c.open("notifications/alice", Some("alice"), 2).unwrap();
        assert!(c.open("channel/x", Some("alice"), 2).is_none());
        let _t = c.open("team-answers", None, 2).unwrap();
        let s = c.snapshot();
        assert_eq!(s.total, 3);
        assert_eq!(s.by_user["alice"], 2);
        assert_eq!(s.by_kind()["notifications"], 2);
        drop(a);
        assert_eq!(c.snapshot().by_user["alice"], 1);
        assert!(c.open("channel/x", Some("alice"), 2).is_some());
    }

    #[test]
    fn a_multiplexed_connection_counts_once_and_its_streams_each() {
        let c = Connections::default();
        let mux = c.open_mux();
        let a = c.open("channel/a", Some("bob"), 8).unwrap().into_member();
        let b = c.open("channel/b", Some("bob"), 8).unwrap().into_member();
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
}
