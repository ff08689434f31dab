//! Requests of the `fetch` stream, the polling form and a follower's catch-up:
//! one way to build them (token, headers, credentials) and one way to read a
//! polling-form answer.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::platform::{self, error_text};
use crate::connection::{ErrorInfo, ErrorKind};
use crate::messages::PollResponse;
use crate::options::Options;

/// Which request: the stream (the manager's `method` and `body`) or a `GET`
/// of the polling form / a catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The stream request.
    Stream,
    /// A polling-form or catch-up `GET`.
    Poll,
}

/// A request for `url` with the manager's headers: `Accept`, the token as
/// `Authorization: Bearer` (unless `headers` has its own), `Last-Event-ID`
/// when resuming, every `headers` entry; credentials per `withCredentials`.
/// The stream request uses the `method` and `body` options (a body without a
/// `Content-Type` header gets its own); every other request is a `GET`.
pub(crate) fn build_request(
    url: &str,
    purpose: Purpose,
    options: &Options,
    token: Option<&str>,
    last_event_id: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<web_sys::Request, String> {
    let (accept, method, body) = match purpose {
        Purpose::Stream => (
            "text/event-stream",
            options.method.as_str(),
            options.body.as_ref(),
        ),
        Purpose::Poll => ("application/json", "GET", None),
    };
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_signal(signal);
    init.set_cache(web_sys::RequestCache::NoStore);
    if options.with_credentials {
        init.set_credentials(web_sys::RequestCredentials::Include);
    }
    let headers = web_sys::Headers::new().map_err(|e| error_text(&e))?;
    let bad = |name: &str, e: JsValue| format!("header {name:?}: {}", error_text(&e));
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
    if let Some(b) = body {
        if !headers.has("Content-Type").unwrap_or(false) {
            headers
                .set("Content-Type", b.content_type())
                .map_err(|e| bad("Content-Type", e))?;
        }
        init.set_body(&JsValue::from_str(&b.text()));
    }
    init.set_headers(&headers);
    web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|e| format!("bad request: {}", error_text(&e)))
}

/// Fetches one polling-form request (`url` carries the position as
/// `lastEventId=`) with the manager's token and headers, and parses its body.
/// Errors carry the status and the body.
pub(crate) async fn fetch_poll(
    url: &str,
    options: &Options,
    token: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<PollResponse, ErrorInfo> {
    let request = build_request(url, Purpose::Poll, options, token, None, signal)
        .map_err(|e| ErrorInfo::new(ErrorKind::Network, format!("bad polling request: {e}")))?;
    let network = |e: JsValue| {
        ErrorInfo::new(
            ErrorKind::Network,
            format!("polling fetch failed: {}", error_text(&e)),
        )
    };
    let resp: web_sys::Response = JsFuture::from(platform::fetch(options, &request))
        .await
        .map_err(network)?
        .unchecked_into();
    let status = resp.status();
    // Checked before reading the body: an endless event stream (a server that
    // ignores `poll=1`) would never finish, and an HTML page is no answer.
    let content_type = content_type(&resp);
    if (200..300).contains(&status) && status != 204 && !is_json(&content_type) {
        if let Some(b) = resp.body() {
            let _ = b.cancel();
        }
        let mut e = ErrorInfo::new(
            ErrorKind::Protocol,
            format!(
                "the polling URL answered {content_type:?}, not JSON: this server has no Tidings polling form (set `poll: false` or a poll function)"
            ),
        );
        e.status = Some(status);
        return Err(e);
    }
    let body = match resp.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(network)?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(network(e)),
    };
    if !(200..300).contains(&status) || status == 204 {
        let kind = if status == 401 || status == 403 {
            ErrorKind::Auth
        } else {
            ErrorKind::Http
        };
        let mut e = ErrorInfo::new(kind, format!("polling got HTTP {status}"));
        e.status = Some(status);
        e.raw = Some(body);
        return Err(e);
    }
    PollResponse::from_json(&body).map_err(|d| {
        let mut e = ErrorInfo::new(ErrorKind::Protocol, format!("polling response: {d}"));
        e.status = Some(status);
        e.raw = Some(body);
        e
    })
}

/// A response's `Content-Type` (empty when it has none).
pub(crate) fn content_type(resp: &web_sys::Response) -> String {
    resp.headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Whether a content type is JSON (`application/json`, `…+json`, any parameters).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}
