//! Server-Sent Events: frame encoding, the per-connection body stream, and the response.

pub mod frame;
pub mod stream;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;

pub use stream::{greet, sse_stream, Heartbeat, SseParts, TerminalFn};

/// The SSE response with the headers the seeds list.
pub fn sse_response(parts: SseParts) -> Response {
    let mut res = Response::new(Body::from_stream(sse_stream(parts)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
