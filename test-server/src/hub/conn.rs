//! One SSE connection held by the hub: a socket, its subscription, and the bytes it still
//! owes the peer. Driven by its shard whenever its waker fires; it has no task, no read
//! buffer and, while idle, no write buffer.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::bus::Subscription;
use crate::connections::ConnectionGuard;
use crate::event::Event;
use crate::sse::wire::{chunk, LAST_CHUNK};
use crate::sse::{live_frame, Heartbeat, SseParts, TerminalFn};

/// Most live events taken from the queue in one drive (the rest wait for the next turn).
const EVENTS_PER_DRIVE: usize = 64;
/// Most chunks handed to one vectored write.
const SLICES_PER_WRITE: usize = 32;

/// Why a connection leaves the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The stream ended (finite stream over, or the subscriber fell behind) and every byte
    /// was written.
    Ended,
    /// The peer closed, reset, or the socket failed.
    Peer,
}

/// Encoded live events, shared by every connection of a shard (the same `Arc<Event>` goes
/// to every subscriber of a stream, so one encoding serves them all).
#[derive(Debug, Default)]
pub(crate) struct EncodeCache {
    recent: VecDeque<(Arc<Event>, Bytes, bool)>,
}

impl EncodeCache {
    const SIZE: usize = 32;

    /// The chunk for `e` and whether it ends its stream.
    fn get(&mut self, e: &Arc<Event>, terminal: Option<TerminalFn>) -> (Bytes, bool) {
        if let Some((_, b, done)) = self.recent.iter().find(|(k, _, _)| Arc::ptr_eq(k, e)) {
            return (b.clone(), *done);
        }
        let (frame, done) = live_frame(e, terminal);
        let b = chunk(&frame);
        if self.recent.len() == Self::SIZE {
            self.recent.pop_front();
        }
        self.recent.push_back((Arc::clone(e), b.clone(), done));
        (b, done)
    }
}

/// Bytes accepted for a peer that were not yet written, and since when.
#[derive(Debug)]
struct Pending {
    chunks: VecDeque<Bytes>,
    since: Instant,
}

/// A connection in the hub.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    subscription: Subscription,
    guard: Option<ConnectionGuard>,
    heartbeat: Heartbeat,
    terminal: Option<TerminalFn>,
    lag_notice: Option<fn() -> Bytes>,
    last_id: u64,
    opened: Instant,
    pending: Option<Box<Pending>>,
    stalled_until: Option<Instant>,
    ending: bool,
}

impl Conn {
    /// A connection whose response head and prelude were written; `last_id` is where the
    /// prelude left the stream.
    pub fn new(io: TcpStream, parts: SseParts, last_id: u64) -> Self {
        Conn {
            io,
            subscription: parts.subscription,
            guard: parts.guard,
            heartbeat: parts.heartbeat,
            terminal: parts.terminal,
            lag_notice: parts.lag_notice,
            last_id,
            opened: Instant::now(),
            pending: None,
            stalled_until: None,
            ending: false,
        }
    }

    /// The stream key, when the connection is counted (always, for SSE).
    pub(crate) fn stream(&self) -> Option<&str> {
        self.guard.as_ref().map(ConnectionGuard::stream)
    }

    /// `--dev` stall: send nothing until `until`, if the connection was open at `asked`.
    pub(crate) fn stall(&mut self, until: Instant, asked: Instant) {
        if self.opened <= asked {
            self.stalled_until = Some(until);
        }
    }

    /// Ends a dev stall that is over; true if it was stalled until now.
    pub(crate) fn stall_over(&mut self, now: Instant) -> bool {
        match self.stalled_until {
            Some(until) if until <= now => {
                self.stalled_until = None;
                true
            }
            _ => false,
        }
    }

    /// True if bytes have waited for the peer for at least `limit`.
    pub(crate) fn write_stalled(&self, now: Instant, limit: std::time::Duration) -> bool {
        !limit.is_zero() && self.pending.as_ref().is_some_and(|p| now.duration_since(p.since) >= limit)
    }

    /// Reacts to whatever woke the connection: peer gone, socket writable, new events.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>, cache: &mut EncodeCache) -> Result<(), Closed> {
        self.check_peer(cx)?;
        if self.stalled_until.is_some() {
            return Ok(());
        }
        self.flush(cx)?;
        if self.pending.is_some() {
            return Ok(());
        }
        if self.ending {
            return Err(Closed::Ended);
        }
        let mut out: Vec<Bytes> = Vec::new();
        for taken in 0.. {
            if taken == EVENTS_PER_DRIVE {
                cx.waker().wake_by_ref();
                break;
            }
            match self.subscription.live.poll_recv(cx) {
                Poll::Ready(Some(e)) if e.id <= self.last_id => {}
                Poll::Ready(Some(e)) => {
                    self.last_id = e.id;
                    let (bytes, done) = cache.get(&e, self.terminal);
                    out.push(bytes);
                    if done {
                        out.push(Bytes::from_static(LAST_CHUNK));
                        self.ending = true;
                        break;
                    }
                }
                Poll::Ready(None) => {
                    // The bus closed the queue: this subscriber fell behind. Say so if the
                    // seed can, then end; the client resumes from its last id.
                    if let Some(notice) = self.lag_notice.take() {
                        out.push(chunk(&notice()));
                    }
                    out.push(Bytes::from_static(LAST_CHUNK));
                    self.ending = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        self.send(cx, out)?;
        if self.ending && self.pending.is_none() {
            return Err(Closed::Ended);
        }
        Ok(())
    }

    /// Sends one heartbeat unless the connection is busy or held back.
    pub(crate) fn beat(&mut self, cx: &mut Context<'_>, beats: &mut Beats) -> Result<(), Closed> {
        if self.pending.is_some() || self.stalled_until.is_some() || self.ending {
            return Ok(());
        }
        let frame = beats.get(&self.heartbeat);
        self.send(cx, vec![frame])
    }

    /// Best effort on shutdown or a dev drop: end the chunked body if the socket takes it.
    pub(crate) fn finish(self) {
        if self.pending.is_none() && !self.ending {
            let _ = self.io.try_write(LAST_CHUNK);
        }
    }

    /// Reads (and discards) whatever the peer sent, to notice it closing.
    fn check_peer(&mut self, cx: &mut Context<'_>) -> Result<(), Closed> {
        let mut scratch = [0u8; 64];
        for _ in 0..16 {
            match self.io.poll_read_ready(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Err(_)) => return Err(Closed::Peer),
                Poll::Ready(Ok(())) => match self.io.try_read(&mut scratch) {
                    Ok(0) => return Err(Closed::Peer),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Err(Closed::Peer),
                },
            }
        }
        // A peer that keeps sending: look again on the next turn.
        cx.waker().wake_by_ref();
        Ok(())
    }

    /// Queues `chunks` behind anything pending and writes what the socket takes.
    fn send(&mut self, cx: &mut Context<'_>, mut chunks: Vec<Bytes>) -> Result<(), Closed> {
        if self.pending.is_none() && chunks.len() == 1 {
            // The common case, one frame to an idle socket: no queue at all.
            let Some(only) = chunks.pop() else { return Ok(()) };
            match self.io.try_write(&only) {
                Ok(n) if n == only.len() => return Ok(()),
                Ok(0) => return Err(Closed::Peer),
                Ok(n) => chunks.push(only.slice(n..)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => chunks.push(only),
                Err(_) => return Err(Closed::Peer),
            }
        }
        let chunks = chunks.into_iter().filter(|c| !c.is_empty());
        match &mut self.pending {
            Some(p) => p.chunks.extend(chunks),
            None => {
                let chunks: VecDeque<Bytes> = chunks.collect();
                if chunks.is_empty() {
                    return Ok(());
                }
                self.pending = Some(Box::new(Pending { chunks, since: Instant::now() }));
            }
        }
        self.flush(cx)
    }

    /// Writes pending bytes until done or the socket is full (then waits to be writable).
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), Closed> {
        let Some(p) = self.pending.as_mut() else { return Ok(()) };
        loop {
            if p.chunks.is_empty() {
                self.pending = None;
                return Ok(());
            }
            let slices: Vec<IoSlice<'_>> = p.chunks.iter().take(SLICES_PER_WRITE).map(|c| IoSlice::new(c)).collect();
            match self.io.try_write_vectored(&slices) {
                Ok(0) => return Err(Closed::Peer),
                Ok(n) => {
                    advance(&mut p.chunks, n);
                    p.since = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match self.io.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Err(Closed::Peer),
                    Poll::Pending => return Ok(()),
                },
                Err(_) => return Err(Closed::Peer),
            }
        }
    }
}

/// Drops the first `n` written bytes from `chunks`.
fn advance(chunks: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = chunks.front_mut() else { return };
        if front.len() <= n {
            n -= front.len();
            chunks.pop_front();
        } else {
            *front = front.slice(n..);
            n = 0;
        }
    }
}

/// Heartbeat chunks for one round, stamped once and shared by every connection of a style.
#[derive(Debug, Default)]
pub(crate) struct Beats {
    team_answers: Option<Bytes>,
    named: Option<Bytes>,
}

impl Beats {
    fn get(&mut self, style: &Heartbeat) -> Bytes {
        match style {
            Heartbeat::TeamAnswers => self.team_answers.get_or_insert_with(|| chunk(&style.frame())).clone(),
            Heartbeat::Named => self.named.get_or_insert_with(|| chunk(&style.frame())).clone(),
            Heartbeat::Video(_) => chunk(&style.frame()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_whole_and_partial_chunks() {
        let mut q: VecDeque<Bytes> = ["abc", "de", "fgh"].into_iter().map(|s| Bytes::from_static(s.as_bytes())).collect();
        advance(&mut q, 4);
        assert_eq!(q, VecDeque::from([Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]));
        advance(&mut q, 1);
        assert_eq!(q, VecDeque::from([Bytes::from_static(b"fgh")]));
        advance(&mut q, 3);
        assert!(q.is_empty());
        advance(&mut q, 5);
    }

    #[test]
    fn the_cache_encodes_an_event_once_and_marks_terminal_ones() {
        let mut cache = EncodeCache::default();
        let e = Arc::new(Event { id: 3, event: Some("completed".into()), data: "{}".into() });
        let term: TerminalFn = |e| (e.name() == "completed").then_some("completed");
        let (a, done) = cache.get(&e, Some(term));
        assert!(done);
        assert_eq!(&a[..], b"4a\r\nevent: completed\nid: 3\ndata: {}\n\nevent: end\ndata: {\"reason\":\"completed\"}\n\n\r\n");
        let (b, _) = cache.get(&e, Some(term));
        assert_eq!(a.as_ptr(), b.as_ptr(), "shared, not re-encoded");
    }
}
