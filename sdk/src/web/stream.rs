//! The `fetch` streaming transport: one `GET` with a streamed body, read with
//! a `ReadableStreamDefaultReader` and parsed by the core's WHATWG
//! [`Parser`](crate::parser::Parser).
//!
//! Unlike `EventSource` it sends any headers (`Authorization: Bearer`,
//! `Last-Event-ID`, the `headers` option), sees the HTTP status (so the core
//! can tell 401 from 403 from 503) and reads the server's `retry:` frames.
//! The `AbortController` is owned by [`FetchTransport`]; `Drop` aborts the
//! request, which rejects the pending `read()` and ends the reading task.
//! The task reports through its [`Handle`], so a late chunk of a replaced
//! transport is dropped by the manager (and ends the task).

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::http::build_request;
use super::input::{Handle, Input};
use super::platform::{self, error_text};
use crate::options::Options;
use crate::parser::{Frame, Parser};

/// Largest error body kept for `onError` (an error page can be big).
const MAX_ERROR_BODY: usize = 4096;

/// An open (or opening) fetch stream. `Drop` aborts it.
pub(crate) struct FetchTransport {
    abort: Option<web_sys::AbortController>,
}

impl FetchTransport {
    /// Starts the request and the task reading it; it reports through `handle`.
    pub(crate) fn open(
        handle: Handle,
        url: &str,
        options: &Options,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> FetchTransport {
        let abort = web_sys::AbortController::new().ok();
        let signal = abort.as_ref().map(web_sys::AbortController::signal);
        let request = build_request(
            url,
            "text/event-stream",
            options,
            token,
            last_event_id,
            signal.as_ref(),
        );
        wasm_bindgen_futures::spawn_local(async move {
            let end = match request {
                Ok(r) => read_stream(&r, &handle).await,
                Err(e) => Some(e),
            };
            if let Some(reason) = end {
                handle.send(Input::StreamFailed(reason));
            }
        });
        FetchTransport { abort }
    }

    /// Aborts the request (idempotent).
    pub(crate) fn close(&self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
    }
}

impl Drop for FetchTransport {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs one request to its end, reporting to the manager as it goes.
/// Returns why the stream failed or ended, or `None` when it is over
/// otherwise (rejected with a status, or no longer the transport in use).
async fn read_stream(request: &web_sys::Request, handle: &Handle) -> Option<String> {
    let resp: web_sys::Response = match JsFuture::from(platform::fetch(request)).await {
        Ok(r) => r.unchecked_into(),
        Err(e) => return Some(format!("fetch failed: {}", error_text(&e))),
    };
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default();
    if status != 200 {
        let body = match resp.text() {
            Ok(p) => JsFuture::from(p)
                .await
                .ok()
                .and_then(|b| b.as_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let body: String = body.chars().take(MAX_ERROR_BODY).collect();
        handle.send(Input::StreamRejected {
            status,
            body: Some(body),
        });
        return None;
    }
    if !content_type
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        return Some(format!(
            "not an event stream (HTTP 200, content-type {content_type:?})"
        ));
    }
    let Some(reader) = resp.body().map(|b| {
        b.get_reader()
            .unchecked_into::<web_sys::ReadableStreamDefaultReader>()
    }) else {
        return Some("HTTP 200 without a body".to_owned());
    };
    if !handle.send(Input::SseOpen) {
        return None;
    }
    let mut parser = Parser::new();
    let mut buf = Vec::new();
    let reason = loop {
        let chunk = match JsFuture::from(reader.read()).await {
            Ok(c) => c,
            Err(e) => break format!("stream read failed: {}", error_text(&e)),
        };
        if js_sys::Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true)
        {
            break "the server closed the stream".to_owned();
        }
        let Some(bytes) = js_sys::Reflect::get(&chunk, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
        else {
            break "stream chunk is not bytes".to_owned();
        };
        buf.resize(bytes.length() as usize, 0);
        bytes.copy_to(&mut buf);
        parser.feed(&buf);
        while let Some(frame) = parser.poll() {
            let input = match frame {
                Frame::Event(ev) => Input::SseEvent(ev),
                Frame::Retry(ms) => Input::RetryHint(ms),
            };
            if !handle.send(input) {
                return None; // replaced or closed; the abort is on its way
            }
        }
    };
    parser.finish();
    Some(reason)
}
