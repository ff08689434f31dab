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
//! request, which rejects the pending `read()` and ends the reading.
//! Each step is a promise continuation ([`super::then`]) that reports through
//! the transport's [`Handle`], so a late chunk of a replaced transport is
//! dropped by the manager (and ends the reading).

use std::rc::Rc;

use wasm_bindgen::JsCast;

use super::http::{build_request, content_type, Purpose};
use super::input::{Handle, Input};
use super::platform::{self, error_text};
use super::then::{self, then, Settled};
use crate::connection::{ErrorInfo, ErrorKind};
use crate::options::Options;
use crate::parser::{Frame, Parser, Span};

/// Largest error body kept for `onError` (an error page can be big).
const MAX_ERROR_BODY: usize = 4096;

/// An open (or opening) fetch stream. `Drop` aborts it.
pub(crate) struct FetchTransport {
    abort: Option<web_sys::AbortController>,
}

impl FetchTransport {
    /// Starts the request and its reading; they report through `handle`.
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
        // The request goes out from a microtask of its own, never from inside
        // the manager's action loop (a `fetch` option may call back into the SDK).
        then::soon(move || match request {
            Ok(r) => then(&platform::fetch(&options, &r), move |resp| match resp {
                Ok(resp) => on_response(resp.unchecked_into(), handle, options),
                Err(e) => fail(&handle, ["fetch failed: ", &error_text(&e)].concat()),
            }),
            Err(e) => fail(&handle, e),
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

/// Reports that the stream failed or ended, for the manager to reconnect.
fn fail(handle: &Handle, reason: String) {
    handle.send(Input::StreamFailed(reason));
}

/// The response arrived: `onOpen` (when set) may refuse it first.
fn on_response(resp: web_sys::Response, handle: Handle, options: Rc<Options>) {
    let Some(on_open) = &options.js.on_open else {
        return checked(resp, handle, &options);
    };
    // A throw is a refusal too, reported from a later microtask like a rejection.
    let accepted = match on_open.call1(&wasm_bindgen::JsValue::NULL, &resp) {
        Ok(v) => js_sys::Promise::resolve(&v),
        Err(e) => js_sys::Promise::reject(&e),
    };
    then(&accepted, move |accepted| match accepted {
        Ok(_) => checked(resp, handle, &options),
        Err(e) => {
            let mut error = ErrorInfo::new(
                ErrorKind::Http,
                ["onOpen refused the response: ", &error_text(&e)].concat(),
            );
            error.status = Some(resp.status());
            handle.send(Input::StreamFatal(error));
        }
    });
}

/// Reads an accepted response: a refusal (its status, its content type) is
/// reported with the start of its body; an event stream is read to its end.
fn checked(resp: web_sys::Response, handle: Handle, options: &Options) {
    let status = resp.status();
    let content_type = content_type(&resp);
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
        return fatal_with_body(&resp, handle, error);
    }
    if status != 200 {
        if let Some(delay) = super::http::retry_after(&resp) {
            handle.send(Input::RetryAfter { delay, poll: false });
        }
        return read_body(
            &resp,
            Box::new(move |body| {
                handle.send(Input::StreamRejected {
                    status,
                    body: Some(body.unwrap_or_default()),
                });
            }),
        );
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
            return fail(&handle, reason);
        }
        let mut error = ErrorInfo::new(ErrorKind::Protocol, [&reason, ": not retried"].concat());
        error.status = Some(status);
        return fatal_with_body(&resp, handle, error);
    }
    let Some(reader) = resp.body().map(|b| {
        b.get_reader()
            .unchecked_into::<web_sys::ReadableStreamDefaultReader>()
    }) else {
        return fail(&handle, "HTTP 200 without a body".to_owned());
    };
    if !handle.send(Input::SseOpen) {
        return;
    }
    Reading {
        reader,
        parser: Parser::new(),
        buf: Vec::new(),
        handle,
    }
    .next();
}

/// An event stream being read: one `read()` at a time, each chunk parsed and
/// its frames handed over before the next `read()`.
struct Reading {
    reader: web_sys::ReadableStreamDefaultReader,
    parser: Parser,
    buf: Vec<u8>,
    handle: Handle,
}

impl Reading {
    /// Asks for the next chunk.
    fn next(self) {
        let chunk = self.reader.read();
        then(&chunk, move |chunk| self.chunk(chunk));
    }

    /// A chunk (or the end, or a failure) arrived.
    fn chunk(mut self, chunk: Settled) {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return self.end(["stream read failed: ", &error_text(&e)].concat()),
        };
        if js_sys::Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true)
        {
            // A normal end (an unfinished event is dropped, as WHATWG says):
            // a `finite` stream is over, any other reconnects.
            self.parser.finish();
            self.handle.send(Input::StreamEnded);
            return;
        }
        let Some(bytes) = js_sys::Reflect::get(&chunk, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
        else {
            return self.end("stream chunk is not bytes".to_owned());
        };
        self.buf.resize(bytes.length() as usize, 0);
        bytes.copy_to(&mut self.buf);
        self.parser.feed(&self.buf);
        {
            let texts = ChunkText::new(&self.buf, self.parser.stretch());
            // One clock reading for the chunk's events (dropped before the next read).
            let _still = platform::Still::new();
            while let Some((frame, span)) = self.parser.poll_spanned() {
                let input = match frame {
                    Frame::Event(ev) => match span.and_then(|s| texts.get(s)) {
                        Some(js) => Input::SseEventJs {
                            ev,
                            js,
                            lazy: false,
                        },
                        None => Input::SseEvent(ev),
                    },
                    Frame::Retry(ms) => Input::RetryHint(ms),
                };
                if !self.handle.send(input) {
                    return; // replaced or closed; the abort is on its way
                }
            }
        }
        self.next();
    }

    /// The stream failed: reported for the manager to reconnect.
    fn end(mut self, reason: String) {
        self.parser.finish();
        fail(&self.handle, reason);
    }
}

/// Reports a refusal for good with the start of the response's body.
fn fatal_with_body(resp: &web_sys::Response, handle: Handle, mut error: ErrorInfo) {
    read_body(
        resp,
        Box::new(move |body| {
            error.raw = body.filter(|t| !t.is_empty());
            handle.send(Input::StreamFatal(error));
        }),
    );
}

/// Calls `done` with the start of a response's body (at most
/// [`MAX_ERROR_BODY`] characters), `None` when it cannot be read.
fn read_body(resp: &web_sys::Response, done: Box<dyn FnOnce(Option<String>)>) {
    let text = match resp.text() {
        Ok(p) => p,
        Err(_) => return then::soon(move || done(None)),
    };
    then(&text, move |text| {
        done(
            text.ok()
                .and_then(|t| t.as_string())
                .map(|t| t.chars().take(MAX_ERROR_BODY).collect()),
        );
    });
}

/// The data of a chunk's events as JS strings: the stretch of the chunk from
/// the first spanned event's data to the last one's is decoded once (one
/// `TextDecoder` call per chunk instead of one per event), and each event's
/// data is a `substring` of it (V8 makes those without copying). Only for an
/// ASCII stretch, whose UTF-16 offsets are its byte offsets (otherwise each
/// event's text is copied out on its own, as before).
struct ChunkText {
    /// The decoded stretch, when there is one and it is ASCII.
    whole: Option<js_sys::JsString>,
    /// Where the stretch starts in the chunk.
    base: usize,
}

impl ChunkText {
    fn new(chunk: &[u8], stretch: Option<(usize, usize)>) -> ChunkText {
        let (base, end) = stretch.unwrap_or((0, 0));
        let whole = chunk
            .get(base..end)
            .filter(|b| stretch.is_some() && b.is_ascii())
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(js_sys::JsString::from);
        ChunkText { whole, base }
    }

    /// The data at `span`.
    fn get(&self, span: Span) -> Option<wasm_bindgen::JsValue> {
        let start = u32::try_from(span.start.checked_sub(self.base)?).ok()?;
        let end = u32::try_from(span.end.checked_sub(self.base)?).ok()?;
        Some(self.whole.as_ref()?.substring(start, end).into())
    }
}
