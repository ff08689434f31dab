//! `--dev` only: fault hooks for client tests (the SDK's browser tests use them
//! to make a real server misbehave on cue).
//!
//! - `POST /api/dev/drop {"stream"}`: closes every open SSE connection of that
//!   stream now; clients resume from the replay log.
//! - `POST /api/dev/fail {"stream", "status", "count", "retry_after"?}`: the next
//!   `count` SSE requests for that stream answer `status` (204 with an empty body,
//!   others with a JSON error, and a `Retry-After: <retry_after>` header when
//!   given) instead of streaming. Polling requests are not affected.
//! - `POST /api/dev/stall {"stream", "secs"}`: open connections of that stream
//!   send nothing (no events, no heartbeats) for `secs` seconds without
//!   closing; what was held back is sent afterwards. Connections opened
//!   after the request are not stalled (a client that reconnects gets data).
//!
//! Each answers `{"stream", …, "connections": N}` with the open connections of
//! the stream at that moment. The hooks act through the hub (`Hub::drop_stream`,
//! `Hub::stall_stream`) for fresh connections and through [`DevFaults`](crate::faults::DevFaults), whose
//! wrapper the stream endpoints apply to their SSE body (served by hyper on kept-alive
//! connections) only when `--dev` is on.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Longest stall, in seconds.
const MAX_STALL_SECS: f64 = 600.0;
/// Most failures one request may arm.
const MAX_FAIL_COUNT: u32 = 1000;

/// `POST /api/dev/drop`, `/api/dev/fail` and `/api/dev/stall`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/dev/drop", post(drop_stream))
        .route("/api/dev/fail", post(fail_stream))
        .route("/api/dev/stall", post(stall_stream))
}

/// Body of `POST /api/dev/drop`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRequest {
    /// Stream key (`team-answers`, `notifications/alice`, `channel/test`, `video/<job>`).
    pub stream: String,
}

/// Body of `POST /api/dev/fail`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// Stream key.
    pub stream: String,
    /// 204, or an error status 400–599.
    pub status: u16,
    /// How many of the next SSE requests fail, 1–1000 (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// A `Retry-After` value to send with each (delay-seconds or an HTTP date).
    #[serde(default)]
    pub retry_after: Option<String>,
}

fn one() -> u32 {
    1
}

/// Body of `POST /api/dev/stall`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallRequest {
    /// Stream key.
    pub stream: String,
    /// Seconds of silence, 0–600 (0 ends a stall).
    pub secs: f64,
}

fn check_stream(stream: &str) -> ApiResult<()> {
    if stream.is_empty() || stream.len() > 256 || stream.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "stream: must be a stream key of 1-256 characters without control characters".into(),
        ));
    }
    Ok(())
}

fn open_connections(state: &AppState, stream: &str) -> usize {
    state
        .conns
        .snapshot()
        .by_stream
        .get(stream)
        .copied()
        .unwrap_or(0)
}

/// `POST /api/dev/drop`: closes every open SSE connection of the stream.
pub async fn drop_stream(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DropRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    check_stream(&body.stream)?;
    let connections = open_connections(&state, &body.stream);
    state.dev_faults.drop_stream(&body.stream);
    state.hub.drop_stream(&body.stream);
    Ok(Json(
        json!({"stream": body.stream, "dropped": connections, "connections": connections}),
    ))
}

/// `POST /api/dev/fail`: the next `count` SSE requests of the stream answer `status`.
pub async fn fail_stream(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FailRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    check_stream(&body.stream)?;
    let status = StatusCode::from_u16(body.status)
        .ok()
        .filter(|s| *s == StatusCode::NO_CONTENT || s.is_client_error() || s.is_server_error())
        .ok_or_else(|| ApiError::Invalid("status: must be 204 or 400-599".into()))?;
    if !(1..=MAX_FAIL_COUNT).contains(&body.count) {
        return Err(ApiError::Invalid(format!(
            "count: must be between 1 and {MAX_FAIL_COUNT}"
        )));
    }
    let retry_after = body
        .retry_after
        .as_deref()
        .map(|v| {
            axum::http::HeaderValue::from_str(v)
                .ok()
                .filter(|_| (1..=64).contains(&v.len()))
                .ok_or_else(|| {
                    ApiError::Invalid("retry_after: must be 1-64 visible characters".into())
                })
        })
        .transpose()?;
    state
        .dev_faults
        .arm_failure(&body.stream, status, body.count, retry_after);
    Ok(Json(
        json!({"stream": body.stream, "status": body.status, "count": body.count, "connections": open_connections(&state, &body.stream)}),
    ))
}

/// `POST /api/dev/stall`: open connections of the stream send nothing for `secs`.
pub async fn stall_stream(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StallRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    check_stream(&body.stream)?;
    if !(0.0..=MAX_STALL_SECS).contains(&body.secs) {
        return Err(ApiError::Invalid(format!(
            "secs: must be a number of seconds from 0 to {MAX_STALL_SECS}"
        )));
    }
    let now = Instant::now();
    let until = now + Duration::from_secs_f64(body.secs);
    state.dev_faults.stall_stream(&body.stream, until, now);
    state.hub.stall_stream(&body.stream, until, now);
    Ok(Json(
        json!({"stream": body.stream, "secs": body.secs, "connections": open_connections(&state, &body.stream)}),
    ))
}
