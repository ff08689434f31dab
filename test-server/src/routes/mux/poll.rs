//! The polling form of a multiplexed request: one JSON answer for the whole set.

use std::time::Duration;

use futures_util::future::{join_all, select_all, FutureExt};
use serde::Serialize;
use serde_json::Value;

use super::{open_member, outcome, MuxRequest, Outcome, Refusal};
use crate::auth::Claims;
use crate::event::Position;
use crate::state::AppState;
use crate::streaming::StreamRequest;

/// The answer to `GET /api/mux?poll=1&streams=…`.
#[derive(Debug, Clone, Serialize)]
pub struct MuxPollBody {
    /// One entry per requested stream, in request order: its polling-form body plus
    /// `stream`, or `{stream, status, error}` when it was refused.
    pub streams: Vec<Value>,
    /// Every stream's next position, comma-separated in request order (to send back as
    /// `lastEventId` / `Last-Event-ID`).
    pub last_event_id: String,
    /// Suggested delay before the next poll, in ms.
    pub retry_ms: u64,
}

async fn poll_one(
    state: &AppState,
    tag: &str,
    position: &Position,
    wait: Duration,
    claims: Option<&Claims>,
) -> Value {
    let req = StreamRequest {
        position: position.clone(),
        poll: true,
        wait,
        client: None,
        member: false,
    };
    match outcome(open_member(state, tag, req, claims).await).await {
        Outcome::Polled(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("stream".into(), Value::from(tag));
            }
            v
        }
        Outcome::Refused(refusal) => refusal.json(tag),
        Outcome::Stream(_) => Refusal::internal("unexpected stream answer").json(tag),
    }
}

fn has_events(v: &Value) -> bool {
    v.get("events")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty())
}

async fn pass(
    state: &AppState,
    req: &MuxRequest,
    wait: Duration,
    claims: Option<&Claims>,
) -> Vec<Value> {
    join_all(
        req.streams
            .iter()
            .map(|(tag, pos)| poll_one(state, tag, pos, wait, claims)),
    )
    .await
}

/// Polls every stream of the set. With `wait`, and no stream having events, holds until
/// one of them has some (or the wait is over), then answers for all of them.
pub async fn poll(state: &AppState, req: &MuxRequest, claims: Option<&Claims>) -> MuxPollBody {
    let mut streams = pass(state, req, Duration::ZERO, claims).await;
    if !req.wait.is_zero() && !streams.iter().any(has_events) {
        let waiting: Vec<_> = req
            .streams
            .iter()
            .zip(&streams)
            .filter(|(_, v)| v.get("error").is_none() && v.get("end") != Some(&Value::Bool(true)))
            .map(|((tag, pos), _)| poll_one(state, tag, pos, req.wait, claims).boxed())
            .collect();
        if !waiting.is_empty() {
            let _ = select_all(waiting).await;
            streams = pass(state, req, Duration::ZERO, claims).await;
        }
    }
    let last_event_id = req
        .streams
        .iter()
        .zip(&streams)
        .map(
            |((_, pos), v)| match v.get("last_event_id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => match pos {
                    Position::After(n) => n.to_string(),
                    _ => String::new(),
                },
            },
        )
        .collect::<Vec<_>>()
        .join(",");
    MuxPollBody {
        streams,
        last_event_id,
        retry_ms: 1000,
    }
}
