//! `Idempotency-Key` on write requests: a retry with the same key, from the same caller,
//! on the same route, within `--idempotency-ttl-secs`, gets the first answer (status, body,
//! event id) and changes nothing again.
//!
//! The layer claims the key before the handler runs (so a concurrent retry waits for the
//! first answer instead of running too), runs the handler in a task of its own (so a client
//! that hangs up mid-request cannot cut it short between storing and publishing), and
//! records the answer. Records live where the server keeps its shared state: SQLite with
//! the in-process bus, Redis with `--redis-url` (so every instance sees them).
//!
//! Answers that say nothing about the request itself are not remembered, so a retry runs
//! again: 5xx (a bus outage publishes nothing), 401, 403, 408 and 429.

pub mod store;
#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest::{digest, SHA256};

use crate::auth::Auth;
use crate::bus::keyed;
use crate::config::Config;
use crate::error::ApiError;
use crate::extract::query;
use crate::metrics::Metrics;

pub use store::{Claim, IdempotencyStore, Record};

/// The request header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Set (`true`) on an answer that repeats a remembered one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a claim holds while its request runs; a claim whose owner died (a crash
/// between claim and record) is taken over after this.
pub const LEASE: Duration = Duration::from_secs(10);
/// Longest answer body remembered (write answers are small JSON objects).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// How often a retry that found the key claimed looks again.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// Whether an answer with this status is remembered (see the module docs).
pub fn remembered(status: StatusCode) -> bool {
    !(status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        ))
}

/// Checks a key: 1–255 visible ASCII characters.
pub fn valid_key(raw: &HeaderValue) -> Result<&str, ApiError> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ApiError::Invalid(format!(
            "Idempotency-Key: must be 1-{MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    // All graphic ASCII, so this cannot fail.
    raw.to_str()
        .map_err(|_| ApiError::Invalid("Idempotency-Key: not ASCII".into()))
}

/// Hex SHA-256 of `parts` joined by NUL bytes.
pub fn hash(parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            joined.push(0);
        }
        joined.extend_from_slice(p);
    }
    digest(&SHA256, &joined)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Who is asking: the token's `sub` when the request carries a valid token, else everyone
/// without one shares the anonymous scope (team answers and video jobs need no token).
fn caller(state: &Guard, parts: &axum::http::request::Parts) -> String {
    let token = query::<TokenQuery>(&parts.uri).ok().and_then(|q| q.token);
    match state.auth.optional(&parts.headers, token.as_deref()) {
        Ok(Some(claims)) => format!("user:{}", claims.sub),
        _ => "anonymous".into(),
    }
}

/// What the middleware needs of the server's state (built by `app()` from `AppState`).
#[derive(Clone)]
pub struct Guard {
    /// Where answers are remembered.
    pub store: IdempotencyStore,
    /// Who the caller is (token or anonymous).
    pub auth: Auth,
    /// Body limit and how long answers are kept.
    pub config: Config,
    /// Replays and mismatches are counted here.
    pub metrics: Arc<Metrics>,
}

/// The middleware: see the module docs. Requests without the header, and reads, pass
/// through untouched.
pub async fn layer(State(state): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    let key = match valid_key(&raw) {
        Ok(k) => k.to_owned(),
        Err(e) => return e.into_response(),
    };
    let (parts, body) = req.into_parts();
    let limit = state.config.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return ApiError::PayloadTooLarge(limit).into_response();
    };
    let who = caller(&state, &parts);
    let scope = hash(&[
        who.as_bytes(),
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        key.as_bytes(),
    ]);
    let fingerprint = hash(&[&bytes]);
    let store = state.store.clone();
    let deadline = tokio::time::Instant::now() + LEASE + Duration::from_secs(1);
    let owner = loop {
        let claim = match store.claim(&scope, &fingerprint, LEASE).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        match claim {
            Claim::Owned(owner) => break owner,
            Claim::Done(record) if record.fingerprint == fingerprint => {
                state
                    .metrics
                    .idempotent_replays
                    .fetch_add(1, Ordering::Relaxed);
                return record.into_response();
            }
            Claim::Done(_) | Claim::Running { same_body: false } => {
                state
                    .metrics
                    .idempotency_mismatches
                    .fetch_add(1, Ordering::Relaxed);
                return ApiError::Invalid(
                    "Idempotency-Key: this key was already used with a different request body"
                        .into(),
                )
                .into_response();
            }
            Claim::Running { same_body: true } => {
                if tokio::time::Instant::now() >= deadline {
                    return ApiError::Conflict(
                        "Idempotency-Key: a request with this key is still running; retry later"
                            .into(),
                    )
                    .into_response();
                }
                tokio::time::sleep(WAIT_STEP).await;
            }
        }
    };
    let ttl = state.config.idempotency_ttl();
    let req = Request::from_parts(parts, Body::from(bytes));
    // Its own task: a client that hangs up does not stop the write half-way, and the
    // answer is still recorded for its retry.
    let keep_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let mark = scope.clone();
    let run = tokio::spawn(async move {
        let res = keyed::scope(mark, keep_ms, next.run(req)).await;
        let streaming = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            // A stream is not an answer to remember (and has no end to wait for).
            let _ = store.release(&scope, &owner).await;
            return res;
        }
        let (parts, body) = res.into_parts();
        let body = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
            Ok(b) => b,
            Err(e) => {
                let _ = store.release(&scope, &owner).await;
                tracing::error!(error = %e, "cannot read an answer to remember it");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if remembered(parts.status) {
            let record = Record {
                fingerprint,
                status: parts.status.as_u16(),
                content_type,
                body: body.to_vec(),
            };
            if let Err(e) = store.complete(&scope, &record, ttl).await {
                // The write happened; only its record is missing. Say so in the log: a
                // retry after the lease runs again.
                tracing::error!(error = %e, "cannot record an idempotent answer");
            }
        } else if let Err(e) = store.release(&scope, &owner).await {
            tracing::warn!(error = %e, "cannot release an idempotency key; it expires with its lease");
        }
        Response::from_parts(parts, Body::from(body))
    });
    match run.await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(error = %e, "an idempotent request's task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

impl IntoResponse for Record {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut res = (status, self.body).into_response();
        let h = res.headers_mut();
        match self
            .content_type
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            Some(ct) => {
                h.insert(header::CONTENT_TYPE, ct);
            }
            None => {
                h.remove(header::CONTENT_TYPE);
            }
        }
        h.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        res
    }
}
