//! A stream's group within one shard: a single bus subscription whose events the shard
//! hands to every connection of the stream, so the bus does one send per shard instead
//! of one per connection.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::conn::{Delivery, EncodeCache};
use super::ready::{ConnWaker, Ticket};
use crate::bus::Subscription;
use crate::sse::TerminalFn;

/// Most events taken from the queue in one turn (the rest wait for the next one).
const EVENTS_PER_TURN: usize = 64;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Group {
    /// Where the shard finds the group: the stream key (empty for a connection that is
    /// not counted, which gets its own), with the tag for multiplexed connections.
    pub(crate) stream: String,
    /// The stream key, shared with the multiplexed members' counts.
    pub(crate) key: Arc<str>,
    /// The stream's tag on multiplexed connections (their frames are encoded with it; plain
    /// connections of the stream have a group of their own).
    pub(crate) tag: Option<Arc<str>>,
    subscription: Subscription,
    /// Which events end the stream.
    pub(crate) terminal: Option<TerminalFn>,
    /// The frame sent before closing a connection that fell behind.
    pub(crate) lag_notice: Option<fn() -> Bytes>,
    /// The last id handed to the members.
    pub(crate) last_id: u64,
    /// The member connections (possibly stale: checked against the slab on use).
    pub(crate) members: Vec<Member>,
    /// Members still open.
    pub(crate) live: usize,
    pub(crate) wake: Arc<ConnWaker>,
    pub(crate) waker: Waker,
    pub(crate) generation: u64,
}

/// A connection's membership in a group: where to find it, and its position in the
/// stream (the last id it was sent, or skipped because its prelude covered it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub(crate) ticket: Ticket,
    pub(crate) last_id: u64,
}

/// What one turn took from the queue.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    /// New events, oldest first.
    pub(crate) events: Vec<Delivery>,
    /// The bus closed the queue (the shard fell behind): every member must resume.
    pub(crate) closed: bool,
    /// True when an event ends the stream.
    pub(crate) ends: bool,
}

impl Group {
    /// A group reading `subscription`, already at `last_id`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        stream: String,
        tag: Option<Arc<str>>,
        subscription: Subscription,
        terminal: Option<TerminalFn>,
        lag_notice: Option<fn() -> Bytes>,
        last_id: u64,
        wake: Arc<ConnWaker>,
        generation: u64,
    ) -> Self {
        let waker = Waker::from(Arc::clone(&wake));
        let key: Arc<str> = Arc::from(stream.split('\t').next().unwrap_or_default());
        Group {
            stream,
            key,
            tag,
            subscription,
            terminal,
            lag_notice,
            last_id,
            members: Vec::new(),
            live: 0,
            wake,
            waker,
            generation,
        }
    }

    /// Takes the new events (registering the group's waker when there are none left).
    pub(crate) fn take(&mut self, cache: &mut EncodeCache) -> Taken {
        self.wake.clear();
        let mut cx = Context::from_waker(&self.waker);
        let mut taken = Taken::default();
        while taken.events.len() < EVENTS_PER_TURN {
            match self.subscription.live.poll_recv(&mut cx) {
                Poll::Ready(Some(e)) if e.id <= self.last_id => {}
                Poll::Ready(Some(e)) => {
                    let d = cache.delivery(&e, self.terminal, self.tag.as_ref());
                    self.last_id = d.id;
                    taken.ends = d.ends;
                    taken.events.push(d);
                    if taken.ends {
                        return taken;
                    }
                }
                Poll::Ready(None) => {
                    taken.closed = true;
                    return taken;
                }
                Poll::Pending => return taken,
            }
        }
        // More may be queued: come back for them after the others had a turn.
        self.waker.wake_by_ref();
        taken
    }
}
