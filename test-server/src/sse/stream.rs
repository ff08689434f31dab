//! The body of one SSE response: prelude, replay, then live events and heartbeats.
//!
//! Per connection this holds only the subscription's small bounded queue, one timer
//! entry for the heartbeat and the connection guard; no task is spawned.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::frame::{
    frame, retag, write_event, write_event_of, write_frame, write_frame_of, HELLO_FRAME,
    RETRY_FRAME,
};
use crate::bus::Subscription;
use crate::connections::ConnectionGuard;
use crate::event::Event;
use crate::time::now_rfc3339;

/// How a stream's heartbeat looks (each seed's style).
#[derive(Debug, Clone)]
pub enum Heartbeat {
    /// Seed 000: unnamed `{"type":"heartbeat","timestamp":…}`.
    TeamAnswers,
    /// Named `event: heartbeat` with `{"timestamp":…}` (notifications, channels).
    Named,
    /// Named `event: heartbeat` with `{"job_id":…,"timestamp":…}` (video progress).
    Video(String),
}

impl Heartbeat {
    /// The heartbeat frame, stamped now.
    pub fn frame(&self) -> Bytes {
        let ts = now_rfc3339();
        match self {
            Heartbeat::TeamAnswers => frame(
                None,
                None,
                &serde_json::json!({"type": "heartbeat", "timestamp": ts}).to_string(),
            ),
            Heartbeat::Named => frame(
                None,
                Some("heartbeat"),
                &serde_json::json!({"timestamp": ts}).to_string(),
            ),
            Heartbeat::Video(job) => frame(
                None,
                Some("heartbeat"),
                &serde_json::json!({"job_id": job, "timestamp": ts}).to_string(),
            ),
        }
    }
}

/// Returns the `end` reason when an event terminates a finite stream.
pub type TerminalFn = fn(&Event) -> Option<&'static str>;

/// Everything that shapes one SSE response.
#[derive(Debug)]
pub struct SseParts {
    /// Per-connection frames sent right after `retry:` (greeting, snapshot), without ids.
    pub greeting: Vec<u8>,
    /// A fresh connection (no position given, live from the head): the first greeting
    /// frame carries `id: <head>`, so a client that sees no event before it is cut off
    /// still resumes from the right place instead of missing what was published meanwhile.
    pub mark_head: bool,
    /// The subscription (reset, replay, live queue).
    pub subscription: Subscription,
    /// Heartbeat style and interval.
    pub heartbeat: Heartbeat,
    /// Interval between heartbeats.
    pub heartbeat_every: Duration,
    /// For finite streams: which events end the stream.
    pub terminal: Option<TerminalFn>,
    /// For finite streams already ended when connecting: the end reason.
    pub ended: Option<&'static str>,
    /// Builds the frame (without id) sent before closing a subscriber that fell behind, if
    /// the seed has a way to say it.
    pub lag_notice: Option<fn() -> Bytes>,
    /// Ends the stream on server shutdown.
    pub shutdown: CancellationToken,
    /// Keeps the connection counted while the body lives.
    pub guard: Option<ConnectionGuard>,
}

fn end_frame(reason: &str) -> Bytes {
    frame(
        None,
        Some("end"),
        &serde_json::json!({"reason": reason}).to_string(),
    )
}

/// The first bytes of a response and where the stream stands after them.
#[derive(Debug)]
pub struct Prelude {
    /// `retry:`, the protocol hello, the greeting, a reset or the replay, and `end` if the
    /// stream is over.
    pub bytes: Bytes,
    /// The id a live event must exceed to be sent.
    pub last_id: u64,
    /// True when the prelude already ended the stream (a finite stream that is over).
    pub done: bool,
}

/// Builds the prelude, taking the replay out of `parts`.
pub fn prelude(parts: &mut SseParts) -> Prelude {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(RETRY_FRAME);
    out.extend_from_slice(HELLO_FRAME);
    let (last_id, done) = stream_prelude(&mut out, parts, None);
    Prelude {
        bytes: Bytes::from(out),
        last_id,
        done,
    }
}

/// Appends one stream's part of a prelude (greeting, reset or replay, `end` if over),
/// tagged with its stream on a multiplexed connection; returns the id a live event must
/// exceed and whether the stream is already over.
pub fn stream_prelude(out: &mut Vec<u8>, parts: &mut SseParts, tag: Option<&str>) -> (u64, bool) {
    let mut greeting = Vec::with_capacity(parts.greeting.len() + 16);
    if parts.mark_head && parts.subscription.reset.is_none() && !parts.greeting.is_empty() {
        // An `id:` line may open a frame: it joins the greeting's first frame.
        greeting.extend_from_slice(format!("id: {}\n", parts.subscription.head).as_bytes());
    }
    greeting.extend_from_slice(&std::mem::take(&mut parts.greeting));
    match tag {
        Some(tag) => out.extend_from_slice(&retag(&greeting, tag)),
        None => out.extend_from_slice(&greeting),
    }
    let mut last_id = parts.subscription.head;
    let mut done = false;
    if let Some(reset) = parts.subscription.reset.take() {
        write_event_of(out, tag, &reset.to_event());
        last_id = reset.head;
    }
    let replay = std::mem::take(&mut parts.subscription.replay);
    if let Some(first) = replay.first() {
        last_id = first.id.saturating_sub(1);
    }
    for e in &replay {
        write_event_of(out, tag, e);
        last_id = e.id;
        if let Some(reason) = parts.terminal.and_then(|t| t(e)) {
            out.extend_from_slice(&end_frame_of(tag, reason));
            done = true;
            break;
        }
    }
    if !done {
        if let Some(reason) = parts.ended {
            out.extend_from_slice(&end_frame_of(tag, reason));
            done = true;
        }
    }
    (last_id, done)
}

/// The `end` frame of a finite stream, tagged on a multiplexed connection.
pub fn end_frame_of(tag: Option<&str>, reason: &str) -> Bytes {
    let mut out = Vec::with_capacity(64);
    write_frame_of(
        &mut out,
        tag,
        None,
        Some("end"),
        &serde_json::json!({"reason": reason}).to_string(),
    );
    Bytes::from(out)
}

/// The frame of one live event, and whether it ends the stream (then followed by `end`).
pub fn live_frame(e: &Event, terminal: Option<TerminalFn>) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(e.data.len() + 32);
    write_event(&mut out, e);
    match terminal.and_then(|t| t(e)) {
        Some(reason) => {
            out.extend_from_slice(&end_frame(reason));
            (out, true)
        }
        None => (out, false),
    }
}

struct State {
    parts: SseParts,
    prelude: Option<Bytes>,
    last_id: u64,
    done: bool,
    ticker: tokio::time::Interval,
}

/// Builds the response body stream.
pub fn sse_stream(
    mut parts: SseParts,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let Prelude {
        bytes,
        last_id,
        done,
    } = prelude(&mut parts);
    let every = parts.heartbeat_every.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = State {
        parts,
        prelude: Some(bytes),
        last_id,
        done,
        ticker,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(prelude) = st.prelude.take() {
            return Some((Ok(prelude), st));
        }
        loop {
            if st.done {
                return None;
            }
            tokio::select! {
                biased;
                _ = st.parts.shutdown.cancelled() => return None,
                next = st.parts.subscription.live.recv() => match next {
                    Some(e) if e.id <= st.last_id => continue,
                    Some(e) => {
                        st.last_id = e.id;
                        let (out, done) = live_frame(&e, st.parts.terminal);
                        st.done = done;
                        return Some((Ok(Bytes::from(out)), st));
                    }
                    None => {
                        // The bus closed us: we fell behind. Say so if the seed can, then end;
                        // the client resumes from its last id.
                        st.done = true;
                        if let Some(notice) = st.parts.lag_notice.take() {
                            return Some((Ok(notice()), st));
                        }
                        return None;
                    }
                },
                _ = st.ticker.tick() => return Some((Ok(st.parts.heartbeat.frame()), st)),
            }
        }
    })
}

/// Appends a per-connection frame (no id) to a greeting buffer.
pub fn greet(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    write_frame(out, None, event, data);
}

#[cfg(test)]
mod tests;
