//! Fan-out of stream events to subscribers, behind the [`Bus`] trait.
//!
//! The bus owns each stream's id counter and replay log: `publish` assigns the next id,
//! and `subscribe` returns, atomically, the replay after the client's position plus a live
//! queue that starts exactly after it (no gap, no duplicate). The in-process
//! implementation is [`MemoryBus`]; [`RedisBus`] (`--redis-url`) lets several instances
//! share ids, replay logs and fan-out through Redis Streams.

mod group_commit;
pub mod keyed;
mod log_store;
mod memory;
mod redis;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::db::StoreError;
use crate::event::{Event, Position, Reset};

pub(crate) use self::redis::client as redis_client;
pub use self::redis::RedisBus;
pub use memory::MemoryBus;

/// A fan-out failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The replay log could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared event bus (Redis) cannot be reached; nothing was published (503).
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error or an unexpected reply (500).
    #[error("event bus error: {0}")]
    Redis(String),
    /// The bus cannot be set up as configured.
    #[error("{0}")]
    Config(String),
}

/// How the bus is doing, for `/api/stats` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusHealth {
    /// `memory` or `redis`.
    pub kind: &'static str,
    /// False while the shared bus is unreachable (publishes are refused).
    pub healthy: bool,
    /// The last error seen, if any.
    pub last_error: Option<String>,
    /// Errors seen since start.
    pub errors: u64,
}

/// What a new subscriber gets: an optional reset, the replay, then live events.
#[derive(Debug)]
pub struct Subscription {
    /// Sent first when the position could not be honoured.
    pub reset: Option<Reset>,
    /// Logged events after the position, oldest first.
    pub replay: Vec<Arc<Event>>,
    /// The stream's head id when subscribing.
    pub head: u64,
    /// Live events after the replay. Bounded; when a subscriber falls behind the bus
    /// drops the sender, so this yields `None` after the queued events.
    pub live: mpsc::Receiver<Arc<Event>>,
    /// Unregisters the subscriber when dropped.
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Subscription {
    /// Assembles a subscription (for bus implementations and tests).
    pub fn new(
        reset: Option<Reset>,
        replay: Vec<Arc<Event>>,
        head: u64,
        live: mpsc::Receiver<Arc<Event>>,
        guard: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        Subscription {
            reset,
            replay,
            head,
            live,
            _guard: guard,
        }
    }
}

/// Per-stream ids, replay log and fan-out.
pub trait Bus: Send + Sync + 'static {
    /// Appends an event to `stream`'s log with the next id, persists it, and delivers it
    /// to every live subscriber. Returns the event with its id.
    fn publish(
        &self,
        stream: &str,
        event: Option<&str>,
        data: String,
    ) -> BoxFuture<'_, Result<Arc<Event>, BusError>>;

    /// Subscribes to `stream` from `position`: replay after it (or a reset), then live.
    fn subscribe(
        &self,
        stream: &str,
        position: Position,
    ) -> BoxFuture<'_, Result<Subscription, BusError>>;

    /// Forgets a stream's log and head (its id will never be reused by the caller).
    fn remove(&self, stream: &str) -> BoxFuture<'_, Result<(), BusError>>;

    /// Health of the bus (the in-process bus is always healthy).
    fn health(&self) -> BusHealth {
        BusHealth {
            kind: "memory",
            healthy: true,
            last_error: None,
            errors: 0,
        }
    }
}

/// Pending once, waking itself: the task goes to the back of its worker's run queue
/// (a task woken while it runs is scheduled as a yield), behind every task already
/// ready there, and without a trip through the I/O driver.
pub(crate) struct YieldOnce(pub(crate) bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
