//! Multiplexing: one SSE connection (`GET /api/mux?streams=…`) for a set of streams.
//!
//! Each stream of the set is opened exactly as its own URL would open it (same auth,
//! same per-user limit, same greeting, replay and reset), then its frames are tagged with
//! the stream's path. A stream that cannot be opened gets one `mux-error` frame and the
//! others carry on. Wire rules: docs/PROTOCOL.md, "Multiplexed streams".

mod body;
pub mod poll;
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures_util::future::Either;
use futures_util::StreamExt;
use serde::Deserialize;

use super::{channels, notifications, team_answers, video};
use crate::auth::Claims;
use crate::error::{ApiError, ApiResult};
use crate::event::Position;
use crate::extract::query;
use crate::limits::ClientAddr;
use crate::sse::frame::{write_frame, HELLO_FRAME, RETRY_FRAME};
use crate::sse::{stream_prelude, Detachable, MuxDetachable, MuxMember, MuxParts, SseParts};
use crate::state::AppState;
use crate::streaming::{poll_and_wait, StreamRequest};

pub use body::mux_stream;

/// The multiplexed stream endpoint, `GET /api/mux`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/mux", get(mux))
}

/// Most streams one multiplexed connection may carry.
pub const MAX_STREAMS: usize = 64;
/// Longest stream path accepted in `streams=`.
pub const MAX_PATH: usize = 256;

/// A parsed `GET /api/mux` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxRequest {
    /// The stream paths (the tags of their frames) and each one's position.
    pub streams: Vec<(String, Position)>,
    /// `?poll=1`: answer in the polling form.
    pub poll: bool,
    /// `?wait=S` for long polls.
    pub wait: Duration,
}

#[derive(Debug, Deserialize)]
struct MuxQuery {
    streams: Option<String>,
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
    poll: Option<String>,
    wait: Option<String>,
}

impl MuxRequest {
    /// Reads `streams=`, the positions (header `Last-Event-ID` wins over `?lastEventId=`;
    /// both a comma-separated list aligned with `streams`), `poll` and `wait`.
    pub fn parse(uri: &Uri, headers: &HeaderMap) -> ApiResult<MuxRequest> {
        let q: MuxQuery = query(uri)?;
        let list = q.streams.unwrap_or_default();
        let paths: Vec<&str> = list.split(',').filter(|p| !p.is_empty()).collect();
        if paths.is_empty() {
            return Err(ApiError::Invalid(
                "streams: must list at least one stream path".into(),
            ));
        }
        if paths.len() > MAX_STREAMS {
            return Err(ApiError::Invalid(format!(
                "streams: at most {MAX_STREAMS} streams per connection"
            )));
        }
        for (i, p) in paths.iter().enumerate() {
            if !p.starts_with('/') || p.len() > MAX_PATH || !p.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ApiError::Invalid(format!(
                    "streams: {:?} is not a stream path (/…, at most {MAX_PATH} visible ASCII characters)",
                    p.chars().filter(|c| !c.is_control()).take(64).collect::<String>()
                )));
            }
            if paths[..i].contains(p) {
                return Err(ApiError::Invalid(format!("streams: {p} is listed twice")));
            }
        }
        let raw = match headers.get("last-event-id") {
            Some(v) => Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            None => q.last_event_id,
        };
        let positions: Vec<&str> = match raw.as_deref() {
            None | Some("") => Vec::new(),
            Some(r) => r.split(',').collect(),
        };
        if positions.len() > paths.len() {
            return Err(ApiError::Invalid(format!(
                "lastEventId: {} positions for {} streams",
                positions.len(),
                paths.len()
            )));
        }
        let streams = paths
            .iter()
            .enumerate()
            .map(|(i, p)| ((*p).to_owned(), Position::parse(positions.get(i).copied())))
            .collect();
        let (poll, wait) = poll_and_wait(q.poll.as_deref(), q.wait.as_deref())?;
        Ok(MuxRequest {
            streams,
            poll,
            wait,
        })
    }
}

/// Opens the stream at `path` as its own endpoint would, answering its response.
pub(crate) async fn open_member(
    state: &AppState,
    path: &str,
    req: StreamRequest,
    claims: Option<&Claims>,
) -> ApiResult<Response> {
    let state = State(state.clone());
    if path == "/api/team-answers/sse/" {
        return team_answers::stream(state, req, claims.cloned()).await;
    }
    if path == "/api/notifications/stream" {
        let claims = claims.cloned().ok_or_else(|| {
            ApiError::Unauthorized(
                "authentication required: send a Bearer token, ?token= or the tidings_token cookie"
                    .into(),
            )
        })?;
        return notifications::stream(state, req, claims).await;
    }
    if let Some(channel) = path.strip_prefix("/api/v1/events/") {
        channels::valid_channel(channel)?;
        let name = channels::ChannelName(channel.to_owned());
        return channels::stream(state, name, req, claims.cloned()).await;
    }
    if let Some(job) = path.strip_prefix("/api/video-progress/") {
        if !job.is_empty() && !job.contains('/') {
            return video::stream(state, Path(job.to_owned()), req).await;
        }
    }
    Err(ApiError::NotFound(format!("no stream at {path}")))
}

/// What opening one stream of the set gave.
pub(crate) enum Outcome {
    /// The stream's SSE parts.
    Stream(Box<SseParts>),
    /// The JSON body of its polling form.
    Polled(serde_json::Value),
    /// Refused: what its own URL would have answered.
    Refused(Refusal),
}

/// A stream of the set that could not be opened: the status, message and `Retry-After`
/// its own URL would have answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status (401, 403, 404, 422, 429, 503, or a `--dev` fault's).
    pub status: u16,
    /// The error message.
    pub error: String,
    /// The `Retry-After` value, as the header would carry it (delay-seconds or an HTTP
    /// date), when the answer had one.
    pub retry_after: Option<String>,
}

impl Refusal {
    /// A refusal for an answer this endpoint cannot carry (500).
    pub fn internal(error: &str) -> Refusal {
        Refusal {
            status: 500,
            error: error.to_owned(),
            retry_after: None,
        }
    }

    /// `{"stream", "status", "error"[, "retry_after"]}`: the `mux-error` data, and the
    /// polling form's entry for the stream.
    pub fn json(&self, tag: &str) -> serde_json::Value {
        let mut v = serde_json::json!({"stream": tag, "status": self.status, "error": self.error});
        if let (Some(o), Some(r)) = (v.as_object_mut(), &self.retry_after) {
            o.insert("retry_after".into(), serde_json::Value::from(r.as_str()));
        }
        v
    }

    /// Appends the `mux-error` frame for the stream `tag`.
    pub fn write(&self, out: &mut Vec<u8>, tag: &str) {
        write_frame(out, None, Some("mux-error"), &self.json(tag).to_string());
    }
}

/// Reads a stream endpoint's answer.
pub(crate) async fn outcome(answer: ApiResult<Response>) -> Outcome {
    let response = match answer {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(parts) = response
        .extensions()
        .get::<Detachable>()
        .and_then(Detachable::take)
    {
        return Outcome::Stream(Box::new(parts));
    }
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status == axum::http::StatusCode::OK && json.get("events").is_some() {
        return Outcome::Polled(json);
    }
    let error = json
        .get("error")
        .and_then(|e| e.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("refused").to_owned());
    Outcome::Refused(Refusal {
        status: status.as_u16(),
        error,
        retry_after,
    })
}

/// `GET /api/mux?streams=<path>,<path>…`: every listed stream on one SSE response (or, with
/// `poll=1`, one JSON answer for the set).
pub async fn mux(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    claims: Option<Claims>,
) -> ApiResult<Response> {
    let req = MuxRequest::parse(&uri, &headers)?;
    if req.poll {
        let body = poll::poll(&state, &req, claims.as_ref()).await;
        return Ok(Json(body).into_response());
    }
    let guard = state
        .conns
        .open_mux(&state.limits)
        .map_err(|r| crate::streaming::refusal(&state, r))?;
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(RETRY_FRAME);
    out.extend_from_slice(HELLO_FRAME);
    let mut members = Vec::with_capacity(req.streams.len());
    for (tag, position) in &req.streams {
        let sreq = StreamRequest {
            position: position.clone(),
            poll: false,
            wait: Duration::ZERO,
            client: client.map(|Extension(ClientAddr(ip))| ip),
            member: true,
        };
        let answer = open_member(&state, tag, sreq, claims.as_ref()).await;
        match outcome(answer).await {
            Outcome::Stream(mut parts) => {
                let (last_id, done) = stream_prelude(&mut out, &mut parts, Some(tag));
                if !done {
                    members.push(MuxMember::new(tag, *parts, last_id));
                }
            }
            Outcome::Refused(refusal) => refusal.write(&mut out, tag),
            Outcome::Polled(_) => {
                Refusal::internal("unexpected polling answer").write(&mut out, tag)
            }
        }
    }
    // `--dev` faults of any of its streams (cut, stall) act on the whole connection.
    let keys: Vec<String> = if state.config.dev {
        members
            .iter()
            .filter_map(|m| m.key().map(str::to_owned))
            .collect()
    } else {
        Vec::new()
    };
    let slot = MuxDetachable::new(MuxParts {
        prelude: Bytes::from(out),
        members,
        guard,
    });
    // Served by the hub when this is the connection's first request (it takes the
    // parts from the extension), by hyper through this body otherwise.
    let lazy = slot.clone();
    let (every, shutdown) = (state.config.heartbeat(), state.shutdown.clone());
    let body =
        futures_util::stream::once(async move { lazy.take() }).flat_map(move |parts| match parts {
            Some(parts) => Either::Left(mux_stream(parts, every, shutdown.clone())),
            None => Either::Right(futures_util::stream::empty()),
        });
    let mut res = Response::new(axum::body::Body::from_stream(body));
    res.extensions_mut().insert(slot);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    for key in keys {
        res = state.dev_faults.wrap(&key, res);
    }
    Ok(res)
}
