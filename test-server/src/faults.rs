//! `--dev` fault state: which streams have a drop, a stall or failures armed.
//!
//! Stream responses served by hyper (later requests on a kept-alive connection) obey it
//! through [`DevFaults::wrap`]; the stream endpoints take armed failures with
//! [`DevFaults::take_failure`]. Connections in the hub get the same drop and stall as hub
//! commands, sent by the `/api/dev/*` handlers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

/// What open connections of one stream are told.
#[derive(Debug, Clone, Copy, Default)]
struct Control {
    /// Bumped by every drop; a body that sees it change ends.
    drops: u64,
    /// Send nothing until then…
    stall_until: Option<Instant>,
    /// …if the connection was open when the stall was asked for (at this time).
    stall_asked: Option<Instant>,
}

type Controls = Arc<Mutex<HashMap<String, watch::Sender<Control>>>>;

/// An armed failure: the status, how many requests are left to fail, and the
/// `Retry-After` to send with each.
type ArmedFailure = (StatusCode, u32, Option<HeaderValue>);

/// Armed faults per stream key. A stream's control lives while a wrapped response of it
/// is open: a drop or stall only ever applies to connections open when it is asked for,
/// so a control nobody watches means nothing and is removed.
#[derive(Debug, Default)]
pub struct DevFaults {
    controls: Controls,
    failures: Mutex<HashMap<String, ArmedFailure>>,
}

/// Held by a wrapped response; removes its stream's control when the last one ends.
struct Unwatch {
    controls: Controls,
    stream: String,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        unwatch(&self.controls, &self.stream);
    }
}

/// Removes `stream`'s control if nobody watches it.
fn unwatch(controls: &Controls, stream: &str) {
    let mut map = controls.lock().unwrap_or_else(|p| p.into_inner());
    if map.get(stream).is_some_and(|tx| tx.receiver_count() == 0) {
        map.remove(stream);
    }
}

impl DevFaults {
    /// Streams with an open wrapped response (whose control is kept).
    pub fn watched_streams(&self) -> usize {
        self.controls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn control(&self, stream: &str) -> watch::Receiver<Control> {
        let mut map = self.controls.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(stream.to_owned())
            .or_insert_with(|| watch::channel(Control::default()).0)
            .subscribe()
    }

    fn update(&self, stream: &str, f: impl FnOnce(&mut Control)) {
        let map = self.controls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(stream) {
            tx.send_modify(f);
        }
    }

    /// Ends every wrapped response of `stream` that is open now.
    pub fn drop_stream(&self, stream: &str) {
        self.update(stream, |c| c.drops += 1);
    }

    /// Wrapped responses of `stream` opened before `asked` send nothing until `until`.
    pub fn stall_stream(&self, stream: &str, until: Instant, asked: Instant) {
        self.update(stream, |c| {
            c.stall_until = Some(until);
            c.stall_asked = Some(asked);
        });
    }

    /// The next `count` stream requests of `stream` answer `status` instead
    /// (with `Retry-After: retry_after` when given).
    pub fn arm_failure(
        &self,
        stream: &str,
        status: StatusCode,
        count: u32,
        retry_after: Option<HeaderValue>,
    ) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.to_owned(), (status, count, retry_after));
    }

    /// Consumes one armed failure of `stream`, as the response to send instead of the stream.
    pub fn take_failure(&self, stream: &str) -> Option<Response> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (status, left, retry_after) = map.get_mut(stream)?;
        let (status, retry_after) = (*status, retry_after.clone());
        *left -= 1;
        if *left == 0 {
            map.remove(stream);
        }
        let mut response = if status == StatusCode::NO_CONTENT {
            status.into_response()
        } else {
            (
                status,
                Json(json!({"error": format!("dev fault: injected HTTP {}", status.as_u16())})),
            )
                .into_response()
        };
        if let Some(v) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        Some(response)
    }

    /// Makes an SSE response obey `drop` and `stall` for `stream`.
    pub fn wrap(&self, stream: &str, response: Response) -> Response {
        let mut rx = self.control(stream);
        let start = rx.borrow_and_update().drops;
        let opened = Instant::now();
        let (parts, body) = response.into_parts();
        let body = body.into_data_stream();
        let unwatch = Unwatch {
            controls: Arc::clone(&self.controls),
            stream: stream.to_owned(),
        };
        // The guard comes after the receiver, so it is dropped after it and sees it gone.
        let wrapped = futures_util::stream::unfold(
            (body, rx, unwatch),
            move |(mut body, mut rx, unwatch)| async move {
                loop {
                    let c = *rx.borrow_and_update();
                    if c.drops != start {
                        return None;
                    }
                    let applies = c.stall_asked.is_some_and(|asked| asked >= opened);
                    match c.stall_until.filter(|u| applies && *u > Instant::now()) {
                        Some(until) => tokio::select! {
                            _ = tokio::time::sleep_until(until) => {}
                            changed = rx.changed() => if changed.is_err() { return None },
                        },
                        None => tokio::select! {
                            changed = rx.changed() => if changed.is_err() { return None },
                            next = body.next() => return next.map(|chunk| (chunk, (body, rx, unwatch))),
                        },
                    }
                }
            },
        );
        Response::from_parts(parts, Body::from_stream(wrapped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn controls_leave_with_the_last_wrapped_response() {
        let faults = DevFaults::default();
        // Faults for streams nobody watches keep nothing.
        faults.drop_stream("a");
        faults.stall_stream("b", Instant::now(), Instant::now());
        assert_eq!(faults.watched_streams(), 0);
        let open: Vec<_> = (0..50)
            .map(|i| faults.wrap(&format!("s{}", i % 10), Response::new(Body::from("x"))))
            .collect();
        assert_eq!(faults.watched_streams(), 10);
        drop(open);
        assert_eq!(
            faults.watched_streams(),
            0,
            "every control left with its responses"
        );
    }

    #[tokio::test]
    async fn a_drop_ends_the_open_wrapped_responses_of_its_stream() {
        let faults = DevFaults::default();
        let pending = Body::from_stream(futures_util::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >());
        let res = faults.wrap("s", Response::new(pending));
        faults.drop_stream("s");
        let ended = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            axum::body::to_bytes(res.into_body(), 1024),
        )
        .await;
        assert!(
            matches!(ended, Ok(Ok(b)) if b.is_empty()),
            "the response ended"
        );
        assert_eq!(faults.watched_streams(), 0);
    }
}
