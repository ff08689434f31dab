//! One SSE connection held by the hub: a socket, its position in the stream, and the bytes
//! it still owes the peer. It has no task, no read buffer, no queue of its own and, while
//! idle, no write buffer: its stream's group hands it events, its shard drives it when the
//! socket wakes it.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::bus::Subscription;
use crate::connections::{ConnectionGuard, CountedAs, MemberCounts, MuxGuard};
use crate::event::Event;
use crate::sse::frame::write_event_of;
use crate::sse::wire::{chunk, LAST_CHUNK};
use crate::sse::{end_frame_of, live_frame, Heartbeat, MuxMember, MuxParts, SseParts, TerminalFn};

/// Most chunks handed to one vectored write.
const SLICES_PER_WRITE: usize = 32;

/// Why a connection leaves the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The stream ended (finite stream over, the subscriber fell behind, or it could not
    /// join its group) and every byte was written.
    Ended,
    /// The peer closed, reset, or the socket failed.
    Peer,
}

/// Encoded live events, shared by every connection of a shard (the same `Arc<Event>` goes
/// to every subscriber of a stream, so one encoding serves them all).
#[derive(Debug, Default)]
pub(crate) struct EncodeCache {
    recent: VecDeque<Encoded>,
}

/// One cached encoding: the event, the tag it was encoded with, its chunk, and whether it
/// ends its stream.
#[derive(Debug)]
struct Encoded {
    event: Arc<Event>,
    tag: Option<Arc<str>>,
    chunk: Bytes,
    ends: bool,
}

impl EncodeCache {
    const SIZE: usize = 32;

    /// The chunk for `e` (tagged with its stream on a multiplexed connection) and whether
    /// it ends its stream.
    pub(crate) fn get(
        &mut self,
        e: &Arc<Event>,
        terminal: Option<TerminalFn>,
        tag: Option<&Arc<str>>,
    ) -> (Bytes, bool) {
        if let Some(hit) = self
            .recent
            .iter()
            .find(|c| Arc::ptr_eq(&c.event, e) && c.tag.as_deref() == tag.map(|t| &**t))
        {
            return (hit.chunk.clone(), hit.ends);
        }
        let (frame, ends) = match tag {
            None => live_frame(e, terminal),
            Some(tag) => tagged_frame(e, terminal, tag),
        };
        let b = chunk(&frame);
        if self.recent.len() == Self::SIZE {
            self.recent.pop_front();
        }
        self.recent.push_back(Encoded {
            event: Arc::clone(e),
            tag: tag.cloned(),
            chunk: b.clone(),
            ends,
        });
        (b, ends)
    }
}

/// The frame of one live event of a multiplexed connection's stream `tag`, and whether
/// it ends the stream (then followed by the stream's `end`).
fn tagged_frame(e: &Event, terminal: Option<TerminalFn>, tag: &str) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(e.data.len() + tag.len() + 40);
    write_event_of(&mut out, Some(tag), e);
    match terminal.and_then(|t| t(e)) {
        Some(reason) => {
            out.extend_from_slice(&end_frame_of(Some(tag), reason));
            (out, true)
        }
        None => (out, false),
    }
}

/// One event as the hub sends it: its id, its chunk, and whether it ends the stream.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) id: u64,
    pub(crate) chunk: Bytes,
    pub(crate) ends: bool,
}

impl EncodeCache {
    /// The delivery for `e` (tagged with `tag` on a multiplexed connection).
    pub(crate) fn delivery(
        &mut self,
        e: &Arc<Event>,
        terminal: Option<TerminalFn>,
        tag: Option<&Arc<str>>,
    ) -> Delivery {
        let (chunk, ends) = self.get(e, terminal, tag);
        Delivery {
            id: e.id,
            chunk,
            ends,
        }
    }
}

/// How a stream ends and falls behind, for a connection catching up with its group.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) terminal: Option<TerminalFn>,
    pub(crate) lag_notice: Option<fn() -> Bytes>,
    /// Chunks that may wait for the peer before it counts as fallen behind.
    pub(crate) limit: usize,
    /// The stream's tag on a multiplexed connection.
    pub(crate) tag: Option<Arc<str>>,
}

/// Where catching up with a group left a connection's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaughtUp {
    /// At the group's position: it joins the group.
    Yes,
    /// The stream ended on the way (a finite stream's last event).
    Ended,
    /// Its queue ran dry first (never expected: the bus fills both queues in one pass), so
    /// the caller ends the response and the client resumes.
    Behind,
}

/// Bytes accepted for a peer that were not yet written, and since when.
#[derive(Debug)]
struct Pending {
    chunks: VecDeque<Bytes>,
    since: Instant,
}

/// A connection on its way into the hub: the connection, plus the stream(s) it joins.
#[derive(Debug)]
pub struct Incoming {
    pub(crate) conn: Conn,
    pub(crate) joins: Joins,
}

/// The streams an incoming connection joins, each with its own subscription, which it
/// reads only to catch up with the stream's group (then drops).
#[derive(Debug)]
pub(crate) enum Joins {
    /// A connection of one stream, at `last_id`.
    One(Join),
    /// A multiplexed connection: one membership per stream, the connection's frames of each
    /// tagged with the stream.
    Mux(Vec<MuxMember>),
}

/// The one stream of a plain connection.
#[derive(Debug)]
pub(crate) struct Join {
    pub(crate) subscription: Subscription,
    pub(crate) terminal: Option<TerminalFn>,
    pub(crate) lag_notice: Option<fn() -> Bytes>,
    pub(crate) last_id: u64,
}

impl Incoming {
    /// A connection whose response head and prelude were written; `last_id` is where the
    /// prelude left the stream.
    pub fn new(io: TcpStream, parts: SseParts, last_id: u64) -> Self {
        Incoming {
            conn: Conn::new(io, parts.guard, parts.heartbeat, None),
            joins: Joins::One(Join {
                subscription: parts.subscription,
                terminal: parts.terminal,
                lag_notice: parts.lag_notice,
                last_id,
            }),
        }
    }

    /// A multiplexed connection whose response head and prelude were written: it joins the
    /// group of each of its streams, counted once in the total by its guard.
    pub fn mux(io: TcpStream, parts: MuxParts) -> Self {
        let mux = Box::new(MuxState {
            _guard: parts.guard,
            counts: None,
            members: Vec::with_capacity(parts.members.len()),
        });
        Incoming {
            conn: Conn::new(io, None, Heartbeat::Named, Some(mux)),
            joins: Joins::Mux(parts.members),
        }
    }
}

/// What a multiplexed connection holds beyond a plain one: its place in the total, and
/// per stream the group it belongs to and how the stream is counted (per stream key,
/// shared with the group, and per user or address, held once in `counts`).
#[derive(Debug)]
pub(crate) struct MuxState {
    _guard: MuxGuard,
    counts: Option<MemberCounts>,
    members: Vec<Membership>,
}

/// One stream of a multiplexed connection in the hub.
#[derive(Debug)]
struct Membership {
    gid: usize,
    counted: Counted,
}

/// How one stream of a multiplexed connection is counted.
#[derive(Debug)]
enum Counted {
    /// Folded into the connection's [`MemberCounts`] under this key.
    Folded(Arc<str>, CountedAs),
    /// Its own guard (it could not be folded; boxed, so the common case stays small).
    Guard(Option<Box<ConnectionGuard>>),
}

impl MuxState {
    fn release(counts: Option<&MemberCounts>, m: Membership) {
        if let (Counted::Folded(key, counted), Some(counts)) = (&m.counted, counts) {
            counts.release(key, *counted);
        }
    }

    fn stream(m: &Membership) -> Option<&str> {
        match &m.counted {
            Counted::Folded(key, _) => Some(key),
            Counted::Guard(g) => g.as_deref().map(ConnectionGuard::stream),
        }
    }
}

impl Drop for MuxState {
    fn drop(&mut self) {
        for m in std::mem::take(&mut self.members) {
            MuxState::release(self.counts.as_ref(), m);
        }
    }
}

/// A connection in the hub.
#[derive(Debug)]
pub(crate) struct Conn {
    io: TcpStream,
    guard: Option<ConnectionGuard>,
    heartbeat: Heartbeat,
    /// A multiplexed connection's streams (`None` for a connection of one stream).
    mux: Option<Box<MuxState>>,
    opened: Instant,
    pending: Option<Box<Pending>>,
    stalled_until: Option<Instant>,
    ending: bool,
    lagged: bool,
}

impl Conn {
    fn new(
        io: TcpStream,
        guard: Option<ConnectionGuard>,
        heartbeat: Heartbeat,
        mux: Option<Box<MuxState>>,
    ) -> Conn {
        Conn {
            io,
            guard,
            heartbeat,
            mux,
            opened: Instant::now(),
            pending: None,
            stalled_until: None,
            ending: false,
            lagged: false,
        }
    }

    /// True for a multiplexed connection.
    pub(crate) fn is_mux(&self) -> bool {
        self.mux.is_some()
    }

    /// The groups a multiplexed connection belongs to (none for a plain one).
    pub(crate) fn mux_groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.mux
            .iter()
            .flat_map(|m| m.members.iter().map(|m| m.gid))
    }

    /// True if the connection carries `stream` (its own, or one of a multiplexed set).
    pub(crate) fn carries(&self, stream: &str) -> bool {
        self.stream() == Some(stream)
            || self.mux.as_ref().is_some_and(|m| {
                m.members
                    .iter()
                    .any(|m| MuxState::stream(m) == Some(stream))
            })
    }

    /// Records that a multiplexed connection is a member of group `gid`, its stream
    /// counted by `guard`, which is folded into the connection's counts under `key` (the
    /// group's copy of the stream key) when it can be.
    pub(crate) fn joined(&mut self, gid: usize, key: &Arc<str>, guard: Option<ConnectionGuard>) {
        let Some(m) = self.mux.as_mut() else {
            return;
        };
        let counted = match guard.map(|g| g.fold_into(&mut m.counts)) {
            Some(Ok(counted)) => Counted::Folded(Arc::clone(key), counted),
            Some(Err(g)) => Counted::Guard(Some(Box::new(g))),
            None => Counted::Guard(None),
        };
        m.members.push(Membership { gid, counted });
    }

    /// A multiplexed connection's stream in group `gid` is over (ended, or its group is
    /// gone): its count is dropped; once no stream is left the response ends.
    pub(crate) fn leave(&mut self, cx: &mut Context<'_>, gid: usize) -> Result<(), Closed> {
        let Some(m) = self.mux.as_mut() else {
            return Ok(());
        };
        if let Some(i) = m.members.iter().position(|x| x.gid == gid) {
            let left = m.members.swap_remove(i);
            MuxState::release(m.counts.as_ref(), left);
        }
        if !m.members.is_empty() || self.ending {
            return Ok(());
        }
        self.ending = true;
        self.send(cx, vec![Bytes::from_static(LAST_CHUNK)])?;
        if self.pending.is_none() {
            return Err(Closed::Ended);
        }
        Ok(())
    }

    /// True if the stream ended because the connection fell behind.
    pub(crate) fn lagged(&self) -> bool {
        self.lagged
    }

    /// The stream key, when the connection is counted (always, for SSE).
    pub(crate) fn stream(&self) -> Option<&str> {
        self.guard.as_ref().map(ConnectionGuard::stream)
    }

    /// True once the stream is ending (only its last bytes are left to write).
    pub(crate) fn is_ending(&self) -> bool {
        self.ending
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
                if let Some(p) = self.pending.as_mut() {
                    p.since = now;
                }
                true
            }
            _ => false,
        }
    }

    /// True if bytes have waited for the peer for at least `limit` (a dev stall aside).
    pub(crate) fn write_stalled(&self, now: Instant, limit: std::time::Duration) -> bool {
        !limit.is_zero()
            && self.stalled_until.is_none()
            && self
                .pending
                .as_ref()
                .is_some_and(|p| now.duration_since(p.since) >= limit)
    }

    /// Reacts to a socket event: peer gone, or writable again.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> Result<(), Closed> {
        self.check_peer(cx)?;
        if self.stalled_until.is_some() {
            return Ok(());
        }
        self.flush(cx)?;
        if self.ending && self.pending.is_none() {
            return Err(Closed::Ended);
        }
        Ok(())
    }

    /// Sends the events after `last_id` (the connection's position in that stream, moved
    /// on). More than `limit` chunks waiting for the peer means it fell behind: it gets the
    /// `lag_notice` (if the seed has one; none on a multiplexed connection) and the
    /// response ends, to resume from its last id (every position, if multiplexed).
    /// `Ok(true)`: the stream ended (for a multiplexed connection, only that stream: the
    /// caller then [`leave`](Conn::leave)s its group).
    pub(crate) fn deliver(
        &mut self,
        cx: &mut Context<'_>,
        events: &[Delivery],
        last_id: &mut u64,
        limit: usize,
        lag_notice: Option<fn() -> Bytes>,
    ) -> Result<bool, Closed> {
        if self.ending {
            return Ok(false);
        }
        let mut out = Vec::new();
        let mut ended = false;
        for d in events {
            if d.id <= *last_id {
                continue;
            }
            *last_id = d.id;
            out.push(d.chunk.clone());
            if d.ends {
                ended = true;
                if self.mux.is_none() {
                    out.push(Bytes::from_static(LAST_CHUNK));
                    self.ending = true;
                }
                break;
            }
        }
        if out.is_empty() {
            return Ok(false);
        }
        self.send(cx, out)?;
        if !self.ending
            && self
                .pending
                .as_ref()
                .is_some_and(|p| p.chunks.len() > limit)
        {
            self.end(cx, lag_notice)?;
        }
        if self.ending && self.pending.is_none() {
            return Err(Closed::Ended);
        }
        Ok(ended)
    }

    /// Ends the stream of a connection that fell behind, after what is queued: the notice
    /// (if any), then the last chunk.
    pub(crate) fn end(
        &mut self,
        cx: &mut Context<'_>,
        notice: Option<fn() -> Bytes>,
    ) -> Result<(), Closed> {
        if self.ending {
            return Ok(());
        }
        // The seeds' notices are untagged: a multiplexed connection just ends.
        let notice = if self.mux.is_some() { None } else { notice };
        self.ending = true;
        self.lagged = true;
        let mut out = Vec::with_capacity(2);
        if let Some(notice) = notice {
            out.push(chunk(&notice()));
        }
        out.push(Bytes::from_static(LAST_CHUNK));
        self.send(cx, out)?;
        if self.pending.is_none() {
            return Err(Closed::Ended);
        }
        Ok(())
    }

    /// Brings a connection's stream that is behind its group (at `target`) up to it from
    /// its own subscription, moving `last_id` on.
    pub(crate) fn catch_up(
        &mut self,
        cx: &mut Context<'_>,
        own: &mut Subscription,
        last_id: &mut u64,
        target: u64,
        rules: &Rules,
        cache: &mut EncodeCache,
    ) -> Result<CaughtUp, Closed> {
        while *last_id < target && !self.ending {
            match own.live.try_recv() {
                Ok(e) => {
                    let d = cache.delivery(&e, rules.terminal, rules.tag.as_ref());
                    let one = std::slice::from_ref(&d);
                    if self.deliver(cx, one, last_id, rules.limit, rules.lag_notice)? {
                        return Ok(CaughtUp::Ended);
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return Ok(CaughtUp::Behind),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    self.end(cx, rules.lag_notice)?;
                }
            }
        }
        Ok(CaughtUp::Yes)
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

    /// Queues `chunks` behind anything pending and writes what the socket takes (nothing
    /// while a dev stall holds the connection back).
    fn send(&mut self, cx: &mut Context<'_>, mut chunks: Vec<Bytes>) -> Result<(), Closed> {
        if self.pending.is_none() && self.stalled_until.is_none() && chunks.len() == 1 {
            // The common case, one frame to an idle socket: no queue at all.
            let Some(only) = chunks.pop() else {
                return Ok(());
            };
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
                self.pending = Some(Box::new(Pending {
                    chunks,
                    since: Instant::now(),
                }));
            }
        }
        if self.stalled_until.is_some() {
            return Ok(());
        }
        self.flush(cx)
    }

    /// Writes pending bytes until done or the socket is full (then waits to be writable).
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), Closed> {
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        loop {
            if p.chunks.is_empty() {
                self.pending = None;
                return Ok(());
            }
            let slices: Vec<IoSlice<'_>> = p
                .chunks
                .iter()
                .take(SLICES_PER_WRITE)
                .map(|c| IoSlice::new(c))
                .collect();
            match self.io.try_write_vectored(&slices) {
                Ok(0) => return Err(Closed::Peer),
                Ok(n) => {
                    advance(&mut p.chunks, n);
                    p.since = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.io.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(_)) => return Err(Closed::Peer),
                        Poll::Pending => return Ok(()),
                    }
                }
                Err(_) => return Err(Closed::Peer),
            }
        }
    }
}

/// Drops the first `n` written bytes from `chunks`.
fn advance(chunks: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = chunks.front_mut() else {
            return;
        };
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
            Heartbeat::TeamAnswers => self
                .team_answers
                .get_or_insert_with(|| chunk(&style.frame()))
                .clone(),
            Heartbeat::Named => self
                .named
                .get_or_insert_with(|| chunk(&style.frame()))
                .clone(),
            Heartbeat::Video(_) => chunk(&style.frame()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_whole_and_partial_chunks() {
        let mut q: VecDeque<Bytes> = ["abc", "de", "fgh"]
            .into_iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        advance(&mut q, 4);
        assert_eq!(
            q,
            VecDeque::from([Bytes::from_static(b"e"), Bytes::from_static(b"fgh")])
        );
        advance(&mut q, 1);
        assert_eq!(q, VecDeque::from([Bytes::from_static(b"fgh")]));
        advance(&mut q, 3);
        assert!(q.is_empty());
        advance(&mut q, 5);
    }

    #[test]
    fn the_cache_encodes_an_event_once_and_marks_terminal_ones() {
        let mut cache = EncodeCache::default();
        let e = Arc::new(Event {
            id: 3,
            event: Some("completed".into()),
            data: "{}".into(),
        });
        let term: TerminalFn = |e| (e.name() == "completed").then_some("completed");
        let (a, done) = cache.get(&e, Some(term), None);
        assert!(done);
        assert_eq!(&a[..], b"4a\r\nevent: completed\nid: 3\ndata: {}\n\nevent: end\ndata: {\"reason\":\"completed\"}\n\n\r\n");
        let (b, _) = cache.get(&e, Some(term), None);
        assert_eq!(a.as_ptr(), b.as_ptr(), "shared, not re-encoded");
        let tag: Arc<str> = Arc::from("/api/video-progress/j");
        let (t, done) = cache.get(&e, Some(term), Some(&tag));
        assert!(done);
        assert_eq!(&t[..], b"76\r\nevent: /api/video-progress/j completed\nid: 3\ndata: {}\n\nevent: /api/video-progress/j end\ndata: {\"reason\":\"completed\"}\n\n\r\n");
        let (again, _) = cache.get(&e, Some(term), Some(&tag));
        assert_eq!(t.as_ptr(), again.as_ptr(), "one encoding per tag");
    }
}
