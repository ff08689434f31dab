//! The `fetch` streaming transport: one `GET` with a streamed body, read with
//! a `ReadableStreamDefaultReader` and parsed by the core's WHATWG
//! [`Parser`](crate::parser::Parser).
//!
//! Unlike `EventSource` it sends any headers (`Authorization: Bearer`,
//! `Last-Event-ID`, the `headers` option), sees the HTTP status (so the core
//! can tell 401 from 403 from 503) and reads the server's `retry:` frames.
//! The `AbortController` is owned by [`FetchTransport`]; `Drop` aborts the
//! request, which rejects the pending `read()` and ends the reading task.
//! The task holds only a `Weak` to the manager and its generation, so a late
//! chunk of a replaced transport is ignored.

use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::{now, Inner};
use crate::options::Options;
use crate::parser::{Frame, Parser};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (window or worker), looked up when called.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &web_sys::Request) -> js_sys::Promise;
}

/// Largest error body kept for `onError` (an error page can be big).
const MAX_ERROR_BODY: usize = 4096;

/// A `GET` request for `url` with the manager's headers: `Accept`, the token
/// as `Authorization: Bearer` (unless `headers` has its own), `Last-Event-ID`
/// when resuming, every `headers` entry; credentials per `withCredentials`.
pub(crate) fn build_request(
    url: &str,
    accept: &str,
    options: &Options,
    token: Option<&str>,
    last_event_id: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<web_sys::Request, String> {
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_signal(signal);
    init.set_cache(web_sys::RequestCache::NoStore);
    if options.with_credentials {
        init.set_credentials(web_sys::RequestCredentials::Include);
    }
    let headers = web_sys::Headers::new().map_err(|e| describe(&e))?;
    let bad = |name: &str, e: JsValue| format!("header {name:?}: {}", describe(&e));
    headers
        .set("Accept", accept)
        .map_err(|e| bad("Accept", e))?;
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        headers
            .set("Authorization", &format!("Bearer {t}"))
            .map_err(|e| bad("Authorization", e))?;
    }
    if let Some(id) = last_event_id.filter(|s| !s.is_empty()) {
        headers
            .set("Last-Event-ID", id)
            .map_err(|e| bad("Last-Event-ID", e))?;
    }
    for (k, v) in &options.headers {
        headers.set(k, v).map_err(|e| bad(k, e))?;
    }
    init.set_headers(&headers);
    web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|e| format!("bad request: {}", describe(&e)))
}

/// The `message` of a JS error, else its debug form.
pub(crate) fn describe(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// An open (or opening) fetch stream. `Drop` aborts it.
pub(crate) struct FetchTransport {
    abort: Option<web_sys::AbortController>,
}

impl FetchTransport {
    /// Starts the request and the task reading it. Results go to `inner`
    /// tagged with `generation`.
    pub(crate) fn open(
        url: &str,
        options: &Options,
        token: Option<&str>,
        last_event_id: Option<&str>,
        inner: Weak<Inner>,
        generation: u64,
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
            match request {
                Ok(r) => read_stream(&r, &inner, generation).await,
                Err(e) => {
                    if let Some(i) = inner.upgrade() {
                        i.on_stream_failed(generation, &e);
                    }
                }
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
async fn read_stream(request: &web_sys::Request, inner: &Weak<Inner>, generation: u64) {
    let with = |f: &dyn Fn(&Rc<Inner>)| {
        if let Some(i) = inner.upgrade() {
            f(&i);
        }
    };
    let resp: web_sys::Response = match JsFuture::from(global_fetch(request)).await {
        Ok(r) => r.unchecked_into(),
        Err(e) => {
            return with(&|i| {
                i.on_stream_failed(generation, &format!("fetch failed: {}", describe(&e)))
            })
        }
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
        return with(&|i| i.on_sse_rejected(generation, status, Some(body.clone())));
    }
    if !content_type
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        let reason = format!("not an event stream (HTTP 200, content-type {content_type:?})");
        return with(&|i| i.on_stream_failed(generation, &reason));
    }
    let Some(reader) = resp.body().map(|b| {
        b.get_reader()
            .unchecked_into::<web_sys::ReadableStreamDefaultReader>()
    }) else {
        return with(&|i| i.on_stream_failed(generation, "HTTP 200 without a body"));
    };
    with(&|i| i.on_sse_open(generation));
    let mut parser = Parser::new();
    let mut buf = Vec::new();
    let reason = loop {
        let chunk = match JsFuture::from(reader.read()).await {
            Ok(c) => c,
            Err(e) => break format!("stream read failed: {}", describe(&e)),
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
        let Some(i) = inner.upgrade() else { return };
        if !i.is_current(generation) {
            return; // replaced or closed; the abort is on its way
        }
        while let Some(frame) = parser.poll() {
            match frame {
                Frame::Event(ev) => i.on_sse_event(generation, ev),
                Frame::Retry(ms) => i.on_retry_hint(generation, ms),
            }
        }
    };
    parser.finish();
    with(&|i| i.on_stream_failed(generation, &reason));
}

impl Inner {
    /// Whether `generation` is the SSE transport in use.
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        self.st.borrow().sse_generation == generation
    }

    /// The stream request failed or ended (fetch rejected, body ended, read error).
    pub(crate) fn on_stream_failed(self: &Rc<Self>, generation: u64, reason: &str) {
        {
            let mut st = self.st.borrow_mut();
            if st.sse_generation != generation {
                return;
            }
            st.conn.handle_sse_error(now(), reason);
        }
        self.drive();
    }

    /// The stream request got a status other than 200.
    pub(crate) fn on_sse_rejected(
        self: &Rc<Self>,
        generation: u64,
        status: u16,
        body: Option<String>,
    ) {
        {
            let mut st = self.st.borrow_mut();
            if st.sse_generation != generation {
                return;
            }
            st.conn.handle_sse_rejected(now(), status, body);
        }
        self.drive();
    }

    /// A `retry:` frame: the new backoff base.
    pub(crate) fn on_retry_hint(self: &Rc<Self>, generation: u64, ms: u64) {
        let mut st = self.st.borrow_mut();
        if st.sse_generation == generation {
            st.conn.handle_retry_hint(ms);
        }
    }
}
