//! Requests of the `fetch` stream, the polling form and a follower's catch-up:
//! one way to build them (token, headers, credentials) and one way to read a
//! polling-form answer.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::rc::Rc;
use std::time::Duration;

use super::platform::{self, error_text};
use super::then::then;
use super::token;
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
            options.body_text(),
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
    let bad = |name: &str, e: JsValue| ["header \"", name, "\": ", &error_text(&e)].concat();
    headers
        .set("Accept", accept)
        .map_err(|e| bad("Accept", e))?;
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        headers
            .set("Authorization", &["Bearer ", t].concat())
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
    if let (Some(b), Some(content_type)) = (body, options.body_content_type()) {
        if !headers.has("Content-Type").unwrap_or(false) {
            headers
                .set("Content-Type", content_type)
                .map_err(|e| bad("Content-Type", e))?;
        }
        init.set_body(&JsValue::from_str(b));
    }
    init.set_headers(&headers);
    web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|e| ["bad request: ", &error_text(&e)].concat())
}

/// What a polling request ends with, handed to its caller's callback (one
/// boxed type for both callers: the polling request and a catch-up).
pub(crate) type PollDone = Box<dyn FnOnce(Result<PollResponse, PollFailure>)>;

/// Asks `getToken` (when set) for the token, then fetches one polling-form
/// request with it ([`fetch_poll`]) and calls `done` (always in a later
/// microtask); a token failure is an `auth` error. The polling request and a
/// follower's catch-up share this one request body.
pub(crate) fn poll_with_token(
    url: String,
    options: Rc<Options>,
    signal: Option<web_sys::AbortSignal>,
    done: PollDone,
) {
    let o = Rc::clone(&options);
    token::resolve(&o, move |token| match token {
        Ok(token) => fetch_poll(&url, &options, token.as_deref(), signal.as_ref(), done),
        Err(e) => done(Err(ErrorInfo::new(ErrorKind::Auth, e).into())),
    });
}

/// Fetches one polling-form request (`url` carries the position as
/// `lastEventId=`) with the manager's token and headers, parses its body and
/// calls `done`. Errors carry the status, the body and the server's `Retry-After`.
fn fetch_poll(
    url: &str,
    options: &Options,
    token: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
    done: PollDone,
) {
    let request = match build_request(url, Purpose::Poll, options, token, None, signal) {
        Ok(r) => r,
        Err(e) => {
            let e = ["bad polling request: ", &e].concat();
            return done(Err(ErrorInfo::new(ErrorKind::Network, e).into()));
        }
    };
    then(&platform::fetch(options, &request), move |resp| {
        let resp: web_sys::Response = match resp {
            Ok(r) => r.unchecked_into(),
            Err(e) => return done(Err(network(&e))),
        };
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
                [
                    "the polling URL answered \"",
                    &content_type,
                    "\", not JSON: this server has no Tidings polling form (set `poll: false` or a poll function)",
                ]
                .concat(),
            );
            e.status = Some(status);
            return done(Err(e.into()));
        }
        let retry_after = retry_after(&resp);
        let text = match resp.text() {
            Ok(p) => p,
            Err(e) => return done(Err(network(&e))),
        };
        then(&text, move |body| {
            done(match body {
                Ok(body) => poll_answer(status, retry_after, body.as_string().unwrap_or_default()),
                Err(e) => Err(network(&e)),
            })
        });
    });
}

/// A polling request that could not be sent or read.
fn network(e: &JsValue) -> PollFailure {
    ErrorInfo::new(
        ErrorKind::Network,
        ["polling fetch failed: ", &error_text(e)].concat(),
    )
    .into()
}

/// A polling-form answer with its status and body.
fn poll_answer(
    status: u16,
    retry_after: Option<Duration>,
    body: String,
) -> Result<PollResponse, PollFailure> {
    if !(200..300).contains(&status) || status == 204 {
        let kind = if status == 401 || status == 403 {
            ErrorKind::Auth
        } else {
            ErrorKind::Http
        };
        let mut e = ErrorInfo::new(
            kind,
            [
                "polling got HTTP ",
                &crate::json::uint_text(u64::from(status)),
            ]
            .concat(),
        );
        e.status = Some(status);
        e.raw = Some(body);
        return Err(PollFailure {
            error: e,
            retry_after,
        });
    }
    PollResponse::from_json(&body).map_err(|d| {
        let mut e = ErrorInfo::new(
            ErrorKind::Protocol,
            ["polling response: ", &d.to_string()].concat(),
        );
        e.status = Some(status);
        e.raw = Some(body);
        e.into()
    })
}

/// A failed polling request: the error, and the server's `Retry-After` if it sent one.
#[derive(Debug)]
pub(crate) struct PollFailure {
    /// What went wrong.
    pub(crate) error: ErrorInfo,
    /// How long the server asks to be left alone (429 / 503 with `Retry-After`).
    pub(crate) retry_after: Option<Duration>,
}

impl From<ErrorInfo> for PollFailure {
    fn from(error: ErrorInfo) -> Self {
        PollFailure {
            error,
            retry_after: None,
        }
    }
}

/// The `Retry-After` of a 429 or 503 answer as a delay from now: delay-seconds
/// or an HTTP date (one in the past is 0). `None` for another status, without
/// the header, or when unreadable (cross-origin, a server must list it in
/// `Access-Control-Expose-Headers`; an `EventSource` never sees it).
pub(crate) fn retry_after(resp: &web_sys::Response) -> Option<Duration> {
    let value = resp.headers().get("retry-after").ok().flatten()?;
    retry_after_value(resp.status(), &value)
}

/// A `Retry-After` value that came with `status` (a response's header, or a
/// multiplexed stream's refusal) as a delay from now; see [`retry_after`].
pub(crate) fn retry_after_value(status: u16, value: &str) -> Option<Duration> {
    if !matches!(status, 429 | 503) {
        return None;
    }
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time" (the core caps it).
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = js_sys::Date::parse(value);
    if at.is_nan() {
        return None;
    }
    let ms = (at - js_sys::Date::now()).max(0.0);
    Some(Duration::from_millis(ms as u64))
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
