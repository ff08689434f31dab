//! The `fetch` streaming transport: one request (a `GET`, or the `method` and
//! `body` options, through the `fetch` option when set) with a streamed body,
//! read with a `ReadableStreamDefaultReader` and parsed by the core's WHATWG
//! [`Parser`](crate::parser::Parser).
//!
//! Before reading, `onOpen(response)` (when set) may refuse the response:
//! that is fatal (state `closed`, no retry). A request that is not a plain
//! `GET` is also refused for good by a 4xx other than 401, 408 and 429, and by
//! a 200 that is not an event stream: sending the same POST again would only
//! be refused again. A response that ends normally is reported as such, so a
//! `finite` stream closes instead of reconnecting.
//!
//! Unlike `EventSource` it sends any headers (`Authorization: Bearer`,
//! `Last-Event-ID`, the `headers` option), sees the HTTP status (so the core
//! can tell 401 from 403 from 503) and reads the server's `retry:` frames.
//! The `AbortController` is owned by [`FetchTransport`]; `Drop` aborts the
//! request, which rejects the pending `read()` and ends the reading task.
//! The task reports through its [`Handle`], so a late chunk of a replaced
//! transport is dropped by the manager (and ends the task).

use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::http::{build_request, content_type, Purpose};
use super::input::{Handle, Input};
use super::platform::{self, error_text};
use crate::connection::{ErrorInfo, ErrorKind};
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
        options: &Rc<Options>,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> FetchTransport {
        let abort = web_sys::AbortController::new().ok();
        let signal = abort.as_ref().map(web_sys::AbortController::signal);
        let request = build_request(
            url,
            Purpose::Stream,
            options,
            token,
            last_event_id,
            signal.as_ref(),
        );
        let options = Rc::clone(options);
        wasm_bindgen_futures::spawn_local(async move {
            let end = match request {
                Ok(r) => read_stream(&r, &handle, &options).await,
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
async fn read_stream(
    request: &web_sys::Request,
    handle: &Handle,
    options: &Options,
) -> Option<String> {
    let resp: web_sys::Response = match JsFuture::from(platform::fetch(options, request)).await {
        Ok(r) => r.unchecked_into(),
        Err(e) => return Some(["fetch failed: ", &error_text(&e)].concat()),
    };
    let status = resp.status();
    let content_type = content_type(&resp);
    if let Some(on_open) = &options.js.on_open {
        let accepted = match on_open.call1(&wasm_bindgen::JsValue::NULL, &resp) {
            Ok(v) => JsFuture::from(js_sys::Promise::resolve(&v))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = accepted {
            let mut error = ErrorInfo::new(
                ErrorKind::Http,
                ["onOpen refused the response: ", &error_text(&e)].concat(),
            );
            error.status = Some(status);
            handle.send(Input::StreamFatal(error));
            return None;
        }
    }
    let plain_get = options.is_plain_get();
    if status != 200 && !plain_get && !matches!(status, 401 | 408 | 429 | 500..=599) {
        let mut error = ErrorInfo::new(
            ErrorKind::Http,
            [
                "stream request got HTTP ",
                &crate::json::uint_text(u64::from(status)),
                ": not retried",
            ]
            .concat(),
        );
        error.status = Some(status);
        error.raw = read_error_body(&resp).await;
        handle.send(Input::StreamFatal(error));
        return None;
    }
    if status != 200 {
        if let Some(delay) = super::http::retry_after(&resp) {
            handle.send(Input::RetryAfter { delay, poll: false });
        }
        let body = read_body(&resp).await.unwrap_or_default();
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
        let reason = [
            "not an event stream (HTTP 200, content-type \"",
            &content_type,
            "\")",
        ]
        .concat();
        if plain_get {
            return Some(reason);
        }
        let mut error = ErrorInfo::new(ErrorKind::Protocol, [&reason, ": not retried"].concat());
        error.status = Some(status);
        error.raw = read_error_body(&resp).await;
        handle.send(Input::StreamFatal(error));
        return None;
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
            Err(e) => break ["stream read failed: ", &error_text(&e)].concat(),
        };
        if js_sys::Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true)
        {
            // A normal end (an unfinished event is dropped, as WHATWG says):
            // a `finite` stream is over, any other reconnects.
            parser.finish();
            handle.send(Input::StreamEnded);
            return None;
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
        // One clock reading for the chunk's events (dropped before the next `await`).
        let _still = platform::Still::new();
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

/// The start of an error response's body (an error page can be big), if any.
async fn read_error_body(resp: &web_sys::Response) -> Option<String> {
    read_body(resp).await.filter(|t| !t.is_empty())
}

/// The start of a response's body (at most [`MAX_ERROR_BODY`] characters);
/// `None` when it cannot be read. One reader for every error path: each
/// `async fn` is a state machine of its own in the wasm.
async fn read_body(resp: &web_sys::Response) -> Option<String> {
    let text = JsFuture::from(resp.text().ok()?).await.ok()?.as_string()?;
    Some(text.chars().take(MAX_ERROR_BODY).collect())
}
