//! The one error type every handler returns, and its JSON response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::bus::BusError;
use crate::db::StoreError;

/// Everything a request can fail with. Each variant maps to one status code and a
/// body `{"error": "<message>"}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Missing, malformed, expired or wrongly signed token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid token without the right to this resource (403).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown id or route (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Request body over `--max-body-bytes` (413).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Body or parameter that does not validate; the message names the field (422).
    #[error("{0}")]
    Invalid(String),
    /// Past the per-user connection limit (429).
    #[error("{0}")]
    TooManyConnections(String),
    /// Past the process-wide stream cap (503 with `Retry-After`).
    #[error("{0}")]
    Overloaded(String),
    /// A request with the same `Idempotency-Key` is still running (409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failure (500); details are logged, not sent.
    #[error("storage error")]
    Store(#[from] StoreError),
    /// Fan-out failure: 503 with the reason when the shared bus is unavailable, else 500.
    #[error("{}", bus_message(.0))]
    Bus(#[from] BusError),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Bus(BusError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Bus(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let mut res = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if matches!(
            self,
            ApiError::TooManyConnections(_) | ApiError::Overloaded(_)
        ) {
            // Refused streams: say when to come back, and free the socket at once.
            let h = res.headers_mut();
            h.insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(crate::limits::RETRY_AFTER_SECS),
            );
            h.insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

/// What a client is told about a bus failure: the outage reason, details of others are logged only.
fn bus_message(e: &BusError) -> String {
    match e {
        BusError::Unavailable(_) => e.to_string(),
        _ => "bus error".into(),
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
