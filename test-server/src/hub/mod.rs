//! The hub: where SSE connections live once their response has started, without a task
//! or buffers of their own (the goal: a few KiB per idle connection at 100k clients).
//!
//! The accept loop ([`crate::front`]) writes a fresh connection's response head and
//! prelude, then [`Hub::attach`]es it. Each shard is one task owning a slab of
//! connections and, per stream, a group holding the one bus subscription its connections
//! share. When the group's queue has events, the shard encodes each once and writes it to
//! every member (one `send` per connection, the only per-connection work in a fan-out).
//! A connection's own waker fires on socket events only: the peer closed, or the socket
//! is writable again after a short write. The shard also sends heartbeats and closes
//! peers that stop reading for `--write-stall-secs`.

mod conn;
mod group;
mod ready;
mod shard;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use conn::Incoming;

use crate::metrics::Metrics;

/// What the shards need to know.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Interval between heartbeats.
    pub heartbeat_every: Duration,
    /// A peer that takes no bytes for this long is closed (zero: never).
    pub write_stall: Duration,
    /// Chunks a connection may have waiting for its peer before it counts as fallen
    /// behind (`--subscriber-queue`).
    pub queue: usize,
}

/// A message to a shard.
#[derive(Debug)]
pub(crate) enum Command {
    /// Take over a connection.
    Attach(Box<Incoming>),
    /// `--dev`: close every connection of the stream.
    Drop { stream: String },
    /// `--dev`: hold back connections of the stream opened before `asked` until `until`.
    Stall {
        stream: String,
        until: Instant,
        asked: Instant,
    },
}

/// Handle to the shards; cheap to share.
#[derive(Debug)]
pub struct Hub {
    shards: Vec<mpsc::UnboundedSender<Command>>,
    next: AtomicUsize,
}

impl Hub {
    /// Spawns one shard per runtime worker thread (`TOKIO_WORKER_THREADS`, default one per
    /// core); they stop on `shutdown`, ending their streams. Must be called inside a Tokio
    /// runtime.
    pub fn start(config: HubConfig, metrics: Arc<Metrics>, shutdown: &CancellationToken) -> Hub {
        let n = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .clamp(1, 64);
        let heartbeat_every = config.heartbeat_every.max(Duration::from_millis(10));
        let config = HubConfig {
            heartbeat_every,
            ..config
        };
        let shards = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                let shard = shard::Shard::new(config, Arc::clone(&metrics));
                tokio::spawn(shard.run(rx, shutdown.clone()));
                tx
            })
            .collect();
        Hub {
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// Hands a connection to a shard (round-robin). If the hub has stopped, the connection
    /// is dropped, which closes it.
    pub fn attach(&self, conn: Incoming) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let _ = self.shards[i].send(Command::Attach(Box::new(conn)));
    }

    /// `--dev`: closes every hub connection of `stream` (its chunked body ends cleanly).
    pub fn drop_stream(&self, stream: &str) {
        self.broadcast(|| Command::Drop {
            stream: stream.to_owned(),
        });
    }

    /// `--dev`: hub connections of `stream` opened before `asked` send nothing until `until`.
    pub fn stall_stream(&self, stream: &str, until: Instant, asked: Instant) {
        self.broadcast(|| Command::Stall {
            stream: stream.to_owned(),
            until,
            asked,
        });
    }

    fn broadcast(&self, command: impl Fn() -> Command) {
        for shard in &self.shards {
            let _ = shard.send(command());
        }
    }
}
