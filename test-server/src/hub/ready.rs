//! Wakers that queue a connection for its shard instead of waking a task of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;

use tokio::sync::Notify;

/// A connection's place in its shard: slab key plus a generation, so a stale wake for a
/// reused key is recognised and ignored.
pub(crate) type Ticket = (usize, u64);

/// What a shard and the wakers of its connections share.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    ready: Mutex<Vec<Ticket>>,
    notify: Notify,
}

impl ReadyQueue {
    /// Moves the queued tickets into `into` (which should be empty).
    pub(crate) fn drain_into(&self, into: &mut Vec<Ticket>) {
        let mut q = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *q, into);
    }

    /// Resolves once something was queued since the last call.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    fn push(&self, ticket: Ticket) {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ticket);
        self.notify.notify_one();
    }
}

/// The waker of one connection: a wake queues its ticket once until the shard drives it.
#[derive(Debug)]
pub(crate) struct ConnWaker {
    ticket: Ticket,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl ConnWaker {
    /// A waker for `ticket` that queues on `queue`.
    pub(crate) fn new(ticket: Ticket, queue: Arc<ReadyQueue>) -> Arc<Self> {
        Arc::new(ConnWaker {
            ticket,
            queued: AtomicBool::new(false),
            queue,
        })
    }

    /// Called by the shard just before it drives the connection: later wakes queue again.
    pub(crate) fn clear(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_ticket_is_queued_once_until_cleared() {
        let q = Arc::new(ReadyQueue::default());
        let w = ConnWaker::new((3, 7), Arc::clone(&q));
        let waker = Waker::from(Arc::clone(&w));
        waker.wake_by_ref();
        waker.wake_by_ref();
        let mut got = Vec::new();
        q.drain_into(&mut got);
        assert_eq!(got, vec![(3, 7)]);
        w.clear();
        waker.wake_by_ref();
        got.clear();
        q.drain_into(&mut got);
        assert_eq!(got, vec![(3, 7)]);
    }
}
