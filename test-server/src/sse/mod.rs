//! Server-Sent Events: frame encoding, the per-connection body stream, and the response.
//!
//! An SSE response carries its [`SseParts`] twice over: as a lazy body (used when hyper
//! serves the connection) and as a [`Detachable`] extension, which the accept loop takes
//! on a connection's first request to hand the socket to the [`crate::hub`] instead.
//! Whoever takes the parts first serves the stream; the other side finds nothing.

pub mod frame;
pub mod mux;
pub mod stream;
pub mod wire;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures_util::future::Either;
use futures_util::StreamExt;

pub use mux::{MuxDetachable, MuxMember, MuxParts};
pub use stream::{
    end_frame_of, greet, live_frame, prelude, sse_stream, stream_prelude, Heartbeat, Prelude,
    SseParts, TerminalFn,
};

/// The parts of an SSE response, for whoever serves it first (see the module docs).
#[derive(Debug, Clone)]
pub struct Detachable(Arc<Mutex<Option<SseParts>>>);

impl Detachable {
    /// Takes the parts; `None` once taken.
    pub fn take(&self) -> Option<SseParts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The SSE response with the headers the seeds list.
pub fn sse_response(parts: SseParts) -> Response {
    let slot = Detachable(Arc::new(Mutex::new(Some(parts))));
    let lazy = slot.clone();
    let body =
        futures_util::stream::once(async move { lazy.take() }).flat_map(|parts| match parts {
            Some(parts) => Either::Left(sse_stream(parts)),
            None => Either::Right(futures_util::stream::empty()),
        });
    let mut res = Response::new(Body::from_stream(body));
    res.extensions_mut().insert(slot);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
