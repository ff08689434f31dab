//! Manager options, shared by the Rust API (`Options`) and the JS API
//! (`ConnectOptions`, camelCase, every field optional).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::backoff::BackoffOptions;
use crate::connection::{Config, Watchdog};
use crate::messages::{Custom, Decoder};
use crate::protocol::Protocol;

/// Which transport carries the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The browser's `EventSource` (default; works everywhere; token in the query string).
    #[default]
    EventSource,
    /// `fetch` with a streamed body, parsed by the SDK's own WHATWG parser:
    /// sends `Authorization: Bearer` (no token in the URL) and any `headers`,
    /// sees HTTP statuses (401 → `getToken` again, 403 → closed), reads the
    /// server's `retry:`. Needs `fetch` + `ReadableStream` (every current browser).
    Fetch,
}

/// Where the polling fallback comes from (option `poll`).
///
/// JS: `false`, `'tidings'`, or a function `({ lastEventId, signal }) =>
/// Promise<{ events: [{ id?, event?, data }], lastEventId?, end? }>` (then
/// [`Poll::Function`]). Not set: the Tidings form once the server announced the
/// protocol (or with `protocol: 'tidings'`), else no polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Poll {
    /// The Tidings form when the server speaks Tidings, else none (the default).
    #[default]
    Auto,
    /// Never poll: SSE retries go on forever, the delay capped at `backoff.maxMs`.
    Off,
    /// The Tidings polling form: `GET <url>?poll=1&lastEventId=N` answering JSON.
    Tidings,
    /// The app's function (JS), called with the position and an abort signal.
    Function,
}

impl<'de> Deserialize<'de> for Poll {
    /// `false` → [`Poll::Off`], `"tidings"`, `"auto"` or `null` → as named.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(false) => Ok(Poll::Off),
            Value::Null => Ok(Poll::Auto),
            Value::String(s) if s == "tidings" => Ok(Poll::Tidings),
            Value::String(s) if s == "auto" => Ok(Poll::Auto),
            other => Err(serde::de::Error::custom(format!(
                "poll must be false, 'tidings' or a function, not {other}"
            ))),
        }
    }
}

/// A request body (option `body`): a string is sent as is, any other JSON
/// value as its JSON text with `Content-Type: application/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Body {
    /// Sent as is.
    Text(String),
    /// Sent as JSON.
    Json(Value),
}

impl Body {
    /// The bytes sent, as text.
    pub fn text(&self) -> String {
        match self {
            Body::Text(s) => s.clone(),
            Body::Json(v) => v.to_string(),
        }
    }

    /// The content type sent when the headers name none.
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Body::Text(_) => "text/plain;charset=UTF-8",
            Body::Json(_) => "application/json",
        }
    }
}

/// A user decoder (option `decode`): `(data, event name)` to the app's own
/// type. An `Err` is a `decode` error for `onError` listeners, and the stream
/// goes on. Compared by identity.
#[derive(Clone)]
pub struct DecodeFn(Rc<DecodeCall>);

/// What a [`DecodeFn`] runs: `(data, event name)` to the value or the reason.
type DecodeCall = dyn Fn(&str, &str) -> Result<Custom, String>;

impl DecodeFn {
    /// A closure returning the app's type, or why the data is not one.
    pub fn new<T, E, F>(f: F) -> Self
    where
        T: Any,
        E: fmt::Display,
        F: Fn(&str, &str) -> Result<T, E> + 'static,
    {
        DecodeFn(Rc::new(move |data, event| {
            f(data, event)
                .map(|v| Custom::new(Rc::new(v), None))
                .map_err(|e| e.to_string())
        }))
    }

    /// JSON into `T` with serde; an unnamed event's string `type` still
    /// routes it to listeners of that type.
    pub fn json<T: DeserializeOwned + Any>() -> Self {
        DecodeFn(Rc::new(|data, _event| {
            let v: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
            let ty = v.get("type").and_then(Value::as_str).map(str::to_owned);
            let t: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok(Custom::new(Rc::new(t), ty))
        }))
    }

    /// A decoder from a raw function (the shell wraps JS functions with it).
    pub(crate) fn raw(f: impl Fn(&str, &str) -> Result<Custom, String> + 'static) -> Self {
        DecodeFn(Rc::new(f))
    }

    /// Decodes one event's data.
    pub(crate) fn call(&self, data: &str, event: &str) -> Result<Custom, String> {
        (self.0)(data, event)
    }
}

impl fmt::Debug for DecodeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecodeFn(..)")
    }
}

impl PartialEq for DecodeFn {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// JS callbacks that only the browser shell can call (options `poll` as a
/// function, `fetch`, `onOpen`). Compared by identity.
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JsHooks {
    /// `poll` when it is a function.
    pub(crate) poll: Option<js_sys::Function>,
    /// `fetch`: used instead of the global `fetch` for every request.
    pub(crate) fetch: Option<js_sys::Function>,
    /// `onOpen(response)`: may reject a stream response (fatal).
    pub(crate) on_open: Option<js_sys::Function>,
}

/// What `getToken` returns: the token, or why there is none.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// The `getToken` callback: called before every (re)connect and every poll,
/// so an expired token is replaced. Compared by identity. (In the browser the
/// type of the same name in the shell, with the same API, holds it as a promise.)
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone)]
pub struct GetToken(Rc<dyn Fn() -> TokenFuture>);

#[cfg(not(target_arch = "wasm32"))]
impl GetToken {
    /// Wraps an async closure: `GetToken::new(|| async { Ok(fetch_token().await) })`.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<String, String>> + 'static,
    {
        GetToken(Rc::new(move || -> TokenFuture { Box::pin(f()) }))
    }

    /// Calls the callback.
    pub fn call(&self) -> TokenFuture {
        (self.0)()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl fmt::Debug for GetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GetToken(..)")
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl PartialEq for GetToken {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(target_arch = "wasm32")]
pub use crate::web::GetToken;

/// Options of `connect(url, options)`. Every field is optional; the defaults
/// are given per field. Managers are shared per (absolute URL, token): the
/// options of the first `connect` win.
///
/// Rust code starts from the defaults and sets what it needs with the builder
/// methods (named like the fields):
///
/// ```
/// use tidings::{ConnectOptions, Transport};
///
/// let options = ConnectOptions::default()
///     .token("eyJhbGciOi...")
///     .transport(Transport::Fetch)
///     .header("X-Trace", "on")
///     .heartbeat_timeout_ms(20_000);
/// assert_eq!(options.transport, Transport::Fetch);
/// assert_eq!(options.poll_interval_ms, 3000); // untouched: the default
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Bearer token (JWT). Sent as `?token=` on the SSE URL (EventSource
    /// cannot set headers) and as `Authorization: Bearer` when polling.
    /// Part of the singleton key, so different users never share a manager.
    /// Default: none.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub token: Option<String>,
    /// Called before every (re)connect and poll for a fresh token, which then
    /// replaces `token` (JS: `() => Promise<string> | string`; Rust:
    /// [`GetToken::new`]). A 401 calls it once more at once before backing
    /// off; a 403 stops with state `closed` and an `auth` error. A callback
    /// that throws/rejects counts as a failed attempt (backoff). Default: none.
    #[serde(skip)]
    pub get_token: Option<GetToken>,
    /// Extra request headers (`fetch` transport and polling only; EventSource
    /// cannot send headers). `Authorization` here wins over `token`. Default `{}`.
    #[cfg_attr(
        target_arch = "wasm32",
        tsify(optional, type = "Record<string, string>")
    )]
    pub headers: BTreeMap<String, String>,
    /// Reconnect backoff: `{initialMs: 1000, maxMs: 30000, factor: 2, maxAttempts: 5}`
    /// (exponential with full jitter; after `maxAttempts` failures, polling).
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub backoff: BackoffOptions,
    /// Pause between polling requests in polling mode, in ms. Default `3000`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub poll_interval_ms: u64,
    /// While polling, how often to try SSE again, in ms. Default `30000`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub retry_sse_every_ms: u64,
    /// Send cookies with the SSE and polling requests (CORS credentials:
    /// `withCredentials` on EventSource, `credentials: 'include'` on fetch). Default `false`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub with_credentials: bool,
    /// How `data` is decoded: `auto` (default: JSON when it parses, else the
    /// raw string), `json`, `text`, or a seed stream's typed decoder by name
    /// (`team-answers`, `notifications`, `video-progress`, `channel`). Never
    /// guessed from the URL.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub decoder: Option<Decoder>,
    /// The app's own decoder, used instead of `decoder` (JS: `(data, event) =>
    /// T`, e.g. a zod schema's `parse`; Rust: [`DecodeFn`]). A throw / an `Err`
    /// is a `decode` error and the stream goes on. Default: none.
    #[serde(skip)]
    pub decode: Option<DecodeFn>,
    /// Which protocol the server speaks: `auto` (default: Tidings once the
    /// server announces it, plain SSE otherwise), `tidings` or `plain`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub protocol: Protocol,
    /// The polling fallback: `false` (never), `'tidings'` (the Tidings form)
    /// or a function (JS). Default: the Tidings form when the server speaks
    /// Tidings, else no polling.
    #[cfg_attr(
        target_arch = "wasm32",
        tsify(optional, type = "false | 'tidings' | PollFunction")
    )]
    pub poll: Poll,
    /// Timeout of every polling request (and of a `poll` function), in ms. Default `10000`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub poll_timeout_ms: u64,
    /// The query parameter that carries the resume position on the
    /// `EventSource` URL. Default `lastEventId` (Mercure uses `lastEventID`).
    /// The `fetch` transport sends the standard `Last-Event-ID` header instead.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub resume_param: String,
    /// The HTTP method of the stream request (`fetch` transport). Default `GET`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub method: String,
    /// The request body of the stream request (`fetch` transport): a string as
    /// is, anything else as JSON. Default: none.
    #[cfg_attr(target_arch = "wasm32", tsify(optional, type = "string | unknown"))]
    pub body: Option<Body>,
    /// The stream is finite: when the server ends the response normally the
    /// manager is `closed` and does not reconnect (a broken response still
    /// reconnects). Implies the `fetch` transport, the only one that tells the
    /// two apart. Default `false`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub finite: bool,
    /// JS callbacks of the browser shell.
    #[cfg(target_arch = "wasm32")]
    #[serde(skip)]
    pub(crate) js: JsHooks,
    /// Share one connection per stream URL and token across the tabs of this
    /// origin (a leader tab elected with Web Locks relays over
    /// BroadcastChannel; without them, or with `false`, each tab has its own
    /// connection). Default `true`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub share_across_tabs: bool,
    /// `eventsource` (default: works everywhere, token in the query string) or
    /// `fetch` (headers, statuses, `retry:`; see [`Transport`]). A `method`
    /// other than `GET`, a `body`, `fetch` or `onOpen` imply `fetch`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub transport: Transport,
    /// Heartbeat watchdog, in ms: when no event or heartbeat arrives for this
    /// long, the connection is treated as dead and reopened after the last id.
    /// `0` disables it. Default: `45000` (1.5 × the 30 s heartbeat) for servers
    /// that announce the Tidings protocol, whose heartbeats are guaranteed;
    /// off for other servers, which may be silent for hours.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub heartbeat_timeout_ms: Option<u64>,
    /// Keep the last event id per stream (URL, token, headers, method, body) in
    /// `sessionStorage`, so a page reload resumes where it stopped, losing
    /// nothing. Default `true`. Ignored with `get_token`: the user is only
    /// known at connect time, so a stored position could be another user's.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub persist_last_event_id: bool,
    /// Close the connection while the page is hidden and resume (after the
    /// last id) when it is visible again. Default `false`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub pause_when_hidden: bool,
    /// Skip SSE and use the polling form from the start (diagnostics, tests,
    /// networks that break streaming). Default `false`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub force_polling: bool,
    /// A `body` given as text that is JSON (a JS object's `JSON.stringify`):
    /// sent with `Content-Type: application/json`.
    #[serde(skip)]
    pub(crate) body_is_json: bool,
}

/// The Rust name of [`ConnectOptions`].
pub type Options = ConnectOptions;

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Default for ConnectOptions {
    /// The timing defaults are the state machine's ([`Config::default`]).
    fn default() -> Self {
        let config = Config::default();
        ConnectOptions {
            token: None,
            get_token: None,
            headers: BTreeMap::new(),
            backoff: config.backoff,
            poll_interval_ms: millis(config.poll_interval),
            retry_sse_every_ms: millis(config.retry_sse_every),
            with_credentials: false,
            decoder: None,
            decode: None,
            protocol: config.protocol,
            poll: config.poll,
            poll_timeout_ms: millis(config.poll_timeout),
            resume_param: "lastEventId".to_owned(),
            method: "GET".to_owned(),
            body: None,
            finite: config.finite,
            #[cfg(target_arch = "wasm32")]
            js: JsHooks::default(),
            share_across_tabs: true,
            transport: Transport::EventSource,
            heartbeat_timeout_ms: None,
            persist_last_event_id: true,
            pause_when_hidden: false,
            force_polling: config.force_polling,
            body_is_json: false,
        }
    }
}

impl ConnectOptions {
    /// Sets `token`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// Sets `getToken`.
    pub fn get_token(mut self, get_token: GetToken) -> Self {
        self.get_token = Some(get_token);
        self
    }
    /// Adds one request header (`fetch` transport and polling).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
    /// Sets `heartbeatTimeoutMs` (`0` disables the watchdog).
    pub fn heartbeat_timeout_ms(mut self, ms: u64) -> Self {
        self.heartbeat_timeout_ms = Some(ms);
        self
    }
    /// Sets `decode`: the app's own decoder.
    pub fn decode(mut self, decode: DecodeFn) -> Self {
        self.decode = Some(decode);
        self
    }
    /// Sets `decode` to serde JSON into `T` ([`DecodeFn::json`]).
    pub fn decode_as<T: DeserializeOwned + Any>(self) -> Self {
        self.decode(DecodeFn::json::<T>())
    }
    /// Sets `protocol`.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }
    /// Sets `poll` (`Off` or `Tidings`; functions are JS only).
    pub fn poll(mut self, poll: Poll) -> Self {
        self.poll = poll;
        self
    }
    /// Sets `pollTimeoutMs`.
    pub fn poll_timeout_ms(mut self, ms: u64) -> Self {
        self.poll_timeout_ms = ms;
        self
    }
    /// Sets `resumeParam`.
    pub fn resume_param(mut self, name: impl Into<String>) -> Self {
        self.resume_param = name.into();
        self
    }
    /// Sets `method` (implies the `fetch` transport unless `GET`).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }
    /// Sets `body` (implies the `fetch` transport).
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }
    /// Sets `finite` (implies the `fetch` transport).
    pub fn finite(mut self, yes: bool) -> Self {
        self.finite = yes;
        self
    }
    /// Sets `persistLastEventId`.
    pub fn persist_last_event_id(mut self, yes: bool) -> Self {
        self.persist_last_event_id = yes;
        self
    }
    /// Sets `pauseWhenHidden`.
    pub fn pause_when_hidden(mut self, yes: bool) -> Self {
        self.pause_when_hidden = yes;
        self
    }
    /// Sets `backoff`.
    pub fn backoff(mut self, backoff: BackoffOptions) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets `pollIntervalMs`.
    pub fn poll_interval_ms(mut self, ms: u64) -> Self {
        self.poll_interval_ms = ms;
        self
    }
    /// Sets `retrySseEveryMs`.
    pub fn retry_sse_every_ms(mut self, ms: u64) -> Self {
        self.retry_sse_every_ms = ms;
        self
    }
    /// Sets `withCredentials`.
    pub fn with_credentials(mut self, yes: bool) -> Self {
        self.with_credentials = yes;
        self
    }
    /// Sets `decoder`.
    pub fn decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = Some(decoder);
        self
    }
    /// Sets `shareAcrossTabs`.
    pub fn share_across_tabs(mut self, yes: bool) -> Self {
        self.share_across_tabs = yes;
        self
    }
    /// Sets `transport`.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }
    /// Sets `forcePolling`.
    pub fn force_polling(mut self, yes: bool) -> Self {
        self.force_polling = yes;
        self
    }

    /// Parses JS-side options from JSON text ([`ConnectOptions::from_doc`]).
    #[cfg(test)]
    pub(crate) fn from_json(json: &str) -> Result<Self, String> {
        use crate::json::Json;
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        Self::from_doc(&crate::json::Doc::parse(json)?)
    }

    /// The options as the browser shell takes them: a JSON `body` made text
    /// (sent with the JSON content type). The Rust API calls it once per
    /// `connect`; the JS options reader never makes a JSON body. So the
    /// package, which only has the JS API, links no JSON writer.
    pub(crate) fn with_body_text(mut self) -> Self {
        if let Some(Body::Json(v)) = &self.body {
            self.body = Some(Body::Text(v.to_string()));
            self.body_is_json = true;
        }
        self
    }

    /// The text of `body` (a JSON body is text after [`ConnectOptions::with_body_text`]).
    pub(crate) fn body_text(&self) -> Option<&str> {
        match &self.body {
            Some(Body::Text(s)) => Some(s),
            Some(Body::Json(_)) | None => None,
        }
    }

    /// The content type sent with `body` when the headers name none.
    pub(crate) fn body_content_type(&self) -> Option<&'static str> {
        match &self.body {
            Some(Body::Text(_)) if self.body_is_json => Some("application/json"),
            b => b.as_ref().map(Body::content_type),
        }
    }

    /// The decoder in use: the option, else `auto`.
    pub(crate) fn decoder_in_use(&self) -> Decoder {
        self.decoder.unwrap_or(Decoder::Auto)
    }

    /// Whether the stream request is a plain `GET` (no body, no hooks): only
    /// such streams are shared across tabs.
    pub(crate) fn is_plain_get(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        let hooks = self.js.fetch.is_some() || self.js.on_open.is_some();
        #[cfg(not(target_arch = "wasm32"))]
        let hooks = false;
        self.method.eq_ignore_ascii_case("GET") && self.body.is_none() && !hooks
    }

    /// The transport in use: `transport`, or `fetch` when the request needs it
    /// (a method other than `GET`, a body, `fetch` or `onOpen`) or when the
    /// stream is `finite` (only `fetch` tells a normal end from a broken one).
    pub(crate) fn transport_in_use(&self) -> Transport {
        if self.is_plain_get() && !self.finite {
            self.transport
        } else {
            Transport::Fetch
        }
    }

    /// What makes two managers different streams: the absolute URL, the
    /// token, the headers, the method and the body. Managers with equal keys
    /// are one manager; the key (hashed) also names the stored position.
    pub(crate) fn identity(&self, absolute_url: &str) -> String {
        let mut key = [
            absolute_url,
            "\n",
            self.token.as_deref().unwrap_or(""),
            "\n",
            &self.method.to_ascii_uppercase(),
        ]
        .concat();
        for (k, v) in &self.headers {
            key.push('\n');
            key.push_str(&k.to_ascii_lowercase());
            key.push(':');
            key.push_str(v);
        }
        if let Some(b) = self.body_text() {
            key.push_str("\n\n");
            key.push_str(b);
        }
        key
    }

    /// The state machine settings these options imply.
    pub(crate) fn config(&self) -> Config {
        Config {
            backoff: self.backoff,
            poll_interval: Duration::from_millis(self.poll_interval_ms.max(1)),
            retry_sse_every: Duration::from_millis(self.retry_sse_every_ms.max(1)),
            force_polling: self.force_polling,
            heartbeat_timeout: match self.heartbeat_timeout_ms {
                None => Watchdog::Default,
                Some(0) => Watchdog::Off,
                Some(ms) => Watchdog::After(Duration::from_millis(ms)),
            },
            protocol: self.protocol,
            poll: self.poll,
            poll_timeout: Duration::from_millis(self.poll_timeout_ms.max(1)),
            finite: self.finite,
            ..Config::default()
        }
    }
}

mod read;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
