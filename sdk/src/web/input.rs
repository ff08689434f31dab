//! What the transports report to their manager, and the [`Handle`] they
//! report through: a weak reference to the manager and the generation the
//! transport was opened for. The manager checks the generation in one place,
//! so a late report of a replaced transport is dropped there.

use std::rc::{Rc, Weak};

use crate::connection::ErrorInfo;
use crate::messages::PollResponse;
use crate::parser::SseEvent;

/// What a transport reports to its manager.
#[derive(Debug)]
pub(crate) enum Input {
    /// `getToken` answered for an SSE transport being opened.
    Token {
        /// The token (`None`: no token), or why `getToken` failed.
        token: Result<Option<String>, String>,
        /// The position to open from.
        last_event_id: Option<String>,
    },
    /// The SSE transport is open (HTTP 200 `text/event-stream`).
    SseOpen,
    /// An event arrived on the SSE transport.
    SseEvent(SseEvent),
    /// An event that arrived on the SSE transport whose data is also a JS
    /// string (`MessageEvent.data`, or a slice of a `fetch` chunk's text):
    /// JS listeners get that very string, with no copy out of wasm.
    SseEventJs {
        /// The event; with `lazy`, its `data` is not filled in.
        ev: SseEvent,
        /// The data as a JS string.
        js: wasm_bindgen::JsValue,
        /// The data is only in `js` (copied into wasm only where it is needed:
        /// the hello, a relay to other tabs, a decode error, a Rust listener).
        lazy: bool,
    },
    /// `EventSource` reported a failure (the browser would retry by itself).
    SseError,
    /// The `EventSource` constructor threw (bad URL, CSP).
    SseOpenFailed(String),
    /// The `fetch` stream failed.
    StreamFailed(String),
    /// The `fetch` stream ended normally (the server finished the response).
    StreamEnded,
    /// The `fetch` stream was refused for good (`onOpen`, or a 4xx / wrong
    /// content type for a request that is not a plain `GET`).
    StreamFatal(ErrorInfo),
    /// The `fetch` stream got a status other than 200.
    StreamRejected {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: Option<String>,
    },
    /// A `retry:` frame of the `fetch` stream, in ms.
    RetryHint(u64),
    /// A 429 or 503 answer's `Retry-After` (the delay from now), sent just
    /// before the failure it came with.
    RetryAfter {
        /// How long the server asks to be left alone.
        delay: std::time::Duration,
        /// From the polling request (else from the SSE transport).
        poll: bool,
    },
    /// The polling request finished.
    Poll(Result<PollResponse, ErrorInfo>),
}

impl Input {
    /// The same input with the event's data in wasm (no JS string kept).
    pub(crate) fn plain(self) -> Input {
        match self {
            Input::SseEventJs { mut ev, js, lazy } => {
                if lazy {
                    ev.data = js.as_string().unwrap_or_default();
                }
                Input::SseEvent(ev)
            }
            other => other,
        }
    }

    /// Whether this comes from the polling request (else from the SSE transport).
    pub(crate) fn is_poll(&self) -> bool {
        matches!(self, Input::Poll(_) | Input::RetryAfter { poll: true, .. })
    }
}

/// Where transports report: the manager.
pub(crate) trait Sink {
    /// Takes `input` from the transport of `generation`; false when that
    /// transport is no longer the one in use (the input is dropped).
    fn input(self: Rc<Self>, generation: u64, input: Input) -> bool;
}

/// A transport's way back to its manager.
#[derive(Clone)]
pub(crate) struct Handle {
    sink: Weak<dyn Sink>,
    generation: u64,
}

impl Handle {
    /// The handle of the transport opened for `generation`.
    pub(crate) fn new(sink: Weak<dyn Sink>, generation: u64) -> Handle {
        Handle { sink, generation }
    }

    /// Reports `input`; false when the manager is gone or has moved on to
    /// another transport (then the sender may stop).
    pub(crate) fn send(&self, input: Input) -> bool {
        match self.sink.upgrade() {
            Some(sink) => sink.input(self.generation, input),
            None => false,
        }
    }
}
