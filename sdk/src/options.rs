//! Manager options, shared by the Rust API (`Options`) and the JS API
//! (`ConnectOptions`, camelCase, every field optional).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffOptions;
use crate::connection::Config;
use crate::messages::Decoder;

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

/// What `getToken` returns: the token, or why there is none.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// The `getToken` callback: called before every (re)connect and every poll,
/// so an expired token is replaced. Compared by identity.
#[derive(Clone)]
pub struct GetToken(Rc<dyn Fn() -> TokenFuture>);

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

impl fmt::Debug for GetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GetToken(..)")
    }
}

impl PartialEq for GetToken {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

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
    /// How `data` is decoded. Default: chosen from the URL path
    /// (`team-answers`, `notifications`, `video-progress`, `channel`), else `auto`
    /// (JSON when it parses, else the raw string).
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub decoder: Option<Decoder>,
    /// Share one connection per stream URL and token across the tabs of this
    /// origin (a leader tab elected with Web Locks relays over
    /// BroadcastChannel; without them, or with `false`, each tab has its own
    /// connection). Default `true`.
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub share_across_tabs: bool,
    /// `eventsource` (default: works everywhere, token in the query string) or
    /// `fetch` (headers, statuses, `retry:`; see [`Transport`]).
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub transport: Transport,
    /// Heartbeat watchdog, in ms: when no event or heartbeat arrives for this
    /// long, the connection is treated as dead and reopened after the last id.
    /// `0` disables it. Default `45000` (1.5 × the server's 30 s heartbeat).
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub heartbeat_timeout_ms: u64,
    /// Keep the last event id per stream URL in `sessionStorage`, so a page
    /// reload resumes where it stopped, losing nothing. Default `true`.
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
            share_across_tabs: true,
            transport: Transport::EventSource,
            heartbeat_timeout_ms: config.heartbeat_timeout.map_or(0, millis),
            persist_last_event_id: true,
            pause_when_hidden: false,
            force_polling: config.force_polling,
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
        self.heartbeat_timeout_ms = ms;
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

    /// Parses JS-side options from JSON (unknown fields ignored, missing ones default).
    pub(crate) fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        if json.trim().is_empty() || json.trim() == "null" {
            return Ok(Self::default());
        }
        serde_json::from_str(json)
    }

    /// The decoder for `url`: the option, else chosen from the path.
    pub(crate) fn decoder_for(&self, url: &str) -> Decoder {
        self.decoder.unwrap_or_else(|| Decoder::for_url(url))
    }

    /// The state machine settings these options imply.
    pub(crate) fn config(&self) -> Config {
        Config {
            backoff: self.backoff,
            poll_interval: Duration::from_millis(self.poll_interval_ms.max(1)),
            retry_sse_every: Duration::from_millis(self.retry_sse_every_ms.max(1)),
            force_polling: self.force_polling,
            heartbeat_timeout: (self.heartbeat_timeout_ms > 0)
                .then(|| Duration::from_millis(self.heartbeat_timeout_ms)),
            ..Config::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
