//! How many connections the process takes, from its open-files limit, and who a client is.
//!
//! Every socket is a file descriptor. Past the process's limit (`RLIMIT_NOFILE`) every
//! `accept` fails, so a flood of streams would also shut out REST calls, SQLite and Redis.
//! So: at most `--max-connections` sockets (default: the limit less [`FD_RESERVE`] for the
//! database, Redis, the listener and the runtime), of which at most `--max-streams` are
//! streams (default: that less [`REST_RESERVE`], kept for REST calls). A connection past
//! the socket cap is answered 503 at once and closed; a stream past a stream limit gets 503
//! or 429 with `Retry-After`, and its connection is closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName};

use crate::config::Config;

/// Descriptors kept for everything that is not a client socket.
pub const FD_RESERVE: usize = 64;
/// Sockets kept for REST calls when streams are at their cap (at most half the sockets).
pub const REST_RESERVE: usize = 1024;
/// Seconds a refused client is asked to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 5;

/// The process's soft limit on open files, if it has one.
pub fn file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The connection caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// The open-files limit read at start (`None`: unlimited).
    pub file_limit: Option<u64>,
    /// Open client sockets.
    pub max_connections: usize,
    /// Open streams (part of the sockets).
    pub max_streams: usize,
}

impl Caps {
    /// The caps for `config`, with `file_limit` as read at start.
    pub fn new(config: &Config, file_limit: Option<u64>) -> Caps {
        let from_files = file_limit
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
            .map_or(usize::MAX, |l| l.saturating_sub(FD_RESERVE).max(1));
        let max_connections = config.max_connections.unwrap_or(from_files).min(from_files);
        let default_streams = max_connections
            .saturating_sub(REST_RESERVE.min(max_connections / 2))
            .max(1);
        let max_streams = config
            .max_streams
            .unwrap_or(default_streams)
            .min(max_connections);
        Caps {
            file_limit,
            max_connections,
            max_streams,
        }
    }
}

/// Open client sockets not (yet) serving a stream; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Sockets(Arc<AtomicUsize>);

/// One counted socket; uncounts it when dropped.
#[derive(Debug)]
pub struct SocketSlot(Arc<AtomicUsize>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Sockets {
    /// Counts a new socket unless `in_use` (this count plus open streams) is at `max`.
    pub fn take(&self, streams: usize, max: usize) -> Option<SocketSlot> {
        let mut now = self.0.load(Ordering::Relaxed);
        loop {
            if now.saturating_add(streams) >= max {
                return None;
            }
            match self
                .0
                .compare_exchange_weak(now, now + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(SocketSlot(Arc::clone(&self.0))),
                Err(v) => now = v,
            }
        }
    }

    /// Sockets counted now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Streams hyper serves on a plain socket that keeps its [`SocketSlot`] (a stream after
/// another request on a kept-alive connection). They count among the open streams *and*
/// as a socket; the accept loop takes them off once, so such a connection counts once.
#[derive(Debug, Clone, Default)]
pub struct HeldStreams(Arc<AtomicUsize>);

/// One stream counted in [`HeldStreams`]; uncounts it when dropped (with the response body).
#[derive(Debug)]
pub struct HeldStream(Arc<AtomicUsize>);

impl Drop for HeldStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HeldStreams {
    /// Counts one stream until the returned guard drops.
    pub fn hold(&self) -> HeldStream {
        self.0.fetch_add(1, Ordering::Relaxed);
        HeldStream(Arc::clone(&self.0))
    }

    /// Streams counted now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The client's address, put in every request's extensions by the accept path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Who the client is: with `--trust-proxy-header NAME`, the last address in that header
/// (the one the trusted proxy appended); otherwise, or when the header is missing or not
/// an address, the socket's peer.
pub fn client_addr(trusted: Option<&HeaderName>, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    trusted
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| parse_addr(last.trim()))
        .unwrap_or_else(|| peer.ip())
}

/// An IP address, with or without a port (`1.2.3.4`, `1.2.3.4:5`, `::1`, `[::1]:5`).
fn parse_addr(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn caps_stay_below_the_file_limit_with_room_for_rest() {
        let c = Config::parse_from(["tidings-server"]);
        let caps = Caps::new(&c, Some(20_000));
        assert_eq!(caps.max_connections, 20_000 - FD_RESERVE);
        assert_eq!(caps.max_streams, 20_000 - FD_RESERVE - REST_RESERVE);
        let small = Caps::new(&c, Some(1024));
        assert_eq!(small.max_connections, 960);
        assert_eq!(small.max_streams, 480);
        let flags = Config::parse_from([
            "tidings-server",
            "--max-connections",
            "50000",
            "--max-streams",
            "30",
        ]);
        let caps = Caps::new(&flags, Some(20_000));
        assert_eq!(
            caps.max_connections,
            20_000 - FD_RESERVE,
            "never above the limit"
        );
        assert_eq!(caps.max_streams, 30);
        assert!(file_limit().is_some_and(|l| l > 0));
    }

    #[test]
    fn sockets_are_counted_with_the_open_streams() {
        let s = Sockets::default();
        let a = s.take(0, 2).unwrap();
        assert!(s.take(1, 2).is_none());
        let _b = s.take(0, 2).unwrap();
        assert!(s.take(0, 2).is_none());
        drop(a);
        assert_eq!(s.open(), 1);
    }

    #[test]
    fn the_proxy_header_counts_only_when_trusted() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.1.1.1, 10.0.0.7".parse().unwrap());
        let name = HeaderName::from_static("x-forwarded-for");
        assert_eq!(client_addr(None, &h, peer), peer.ip());
        assert_eq!(
            client_addr(Some(&name), &h, peer),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        h.insert("x-forwarded-for", "[::1]:80".parse().unwrap());
        assert_eq!(
            client_addr(Some(&name), &h, peer),
            "::1".parse::<IpAddr>().unwrap()
        );
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_addr(Some(&name), &h, peer), peer.ip());
    }
}
