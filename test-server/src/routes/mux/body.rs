//! The body of a multiplexed SSE response: the prelude of every stream, then each
//! stream's live events tagged with its path, and one connection-wide heartbeat.

use std::convert::Infallible;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::connections::MuxGuard;
use crate::sse::frame::write_event_of;
use crate::sse::{end_frame_of, Heartbeat, MuxMember, MuxParts};

/// Most events written in one chunk.
const EVENTS_PER_CHUNK: usize = 64;

struct State {
    prelude: Option<Bytes>,
    members: Vec<MuxMember>,
    ticker: Interval,
    shutdown: CancellationToken,
    next: usize,
    _guard: MuxGuard,
}

/// What one turn of the members gave.
enum Turn {
    /// Frames to write.
    Frames(Vec<u8>),
    /// A stream's queue was closed (the connection fell behind): end the response, so the
    /// client resumes every stream from its positions.
    Lagged,
}

/// Takes what the members have queued, starting after the member served first last time
/// so no stream starves the others.
fn turn(
    members: &mut Vec<MuxMember>,
    next: &mut usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<Turn> {
    {
        let mut out = Vec::new();
        let mut taken = 0;
        let n = members.len();
        let mut ended = Vec::new();
        for k in 0..n {
            let i = (*next + k) % n;
            let m = &mut members[i];
            while taken < EVENTS_PER_CHUNK {
                match m.subscription.live.poll_recv(cx) {
                    Poll::Ready(Some(e)) if e.id <= m.last_id => {}
                    Poll::Ready(Some(e)) => {
                        m.last_id = e.id;
                        taken += 1;
                        write_event_of(&mut out, Some(&m.tag), &e);
                        if let Some(reason) = m.terminal.and_then(|t| t(&e)) {
                            out.extend_from_slice(&end_frame_of(Some(&m.tag), reason));
                            ended.push(i);
                            break;
                        }
                    }
                    Poll::Ready(None) => return Poll::Ready(Turn::Lagged),
                    Poll::Pending => break,
                }
            }
        }
        *next = (*next + 1) % n.max(1);
        for i in ended.into_iter().rev() {
            members.remove(i);
        }
        if out.is_empty() {
            return Poll::Pending;
        }
        if taken == EVENTS_PER_CHUNK {
            // More may be queued: come back after the runtime had a turn.
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Turn::Frames(out))
    }
}

/// The response body when hyper serves it: the prelude, then the live events of the
/// members until every finite one has ended, the connection falls behind, or the server
/// shuts down.
pub fn mux_stream(
    parts: MuxParts,
    heartbeat_every: Duration,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let MuxParts {
        prelude,
        members,
        guard,
    } = parts;
    let every = heartbeat_every.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = State {
        prelude: Some(prelude),
        members,
        ticker,
        shutdown,
        next: 0,
        _guard: guard,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(prelude) = st.prelude.take() {
            return Some((Ok(prelude), st));
        }
        if st.members.is_empty() {
            return None;
        }
        let shutdown = st.shutdown.clone();
        let turn = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            turn = std::future::poll_fn(|cx| turn(&mut st.members, &mut st.next, cx)) => turn,
            _ = st.ticker.tick() => Turn::Frames(Heartbeat::Named.frame().to_vec()),
        };
        match turn {
            Turn::Frames(out) => Some((Ok(Bytes::from(out)), st)),
            Turn::Lagged => None,
        }
    })
}
