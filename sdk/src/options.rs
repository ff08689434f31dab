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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase", default)]
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

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            token: None,
            get_token: None,
            headers: BTreeMap::new(),
            backoff: BackoffOptions::default(),
            poll_interval_ms: 3000,
            retry_sse_every_ms: 30_000,
            with_credentials: false,
            decoder: None,
            share_across_tabs: true,
            transport: Transport::EventSource,
            heartbeat_timeout_ms: 45_000,
            persist_last_event_id: true,
            pause_when_hidden: false,
            force_polling: false,
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
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        if json.trim().is_empty() || json.trim() == "null" {
            return Ok(Self::default());
        }
        serde_json::from_str(json)
    }

    /// The decoder for `url`: the option, else chosen from the path.
    pub fn decoder_for(&self, url: &str) -> Decoder {
        self.decoder.unwrap_or_else(|| Decoder::for_url(url))
    }

    /// The state machine settings these options imply.
    pub fn config(&self) -> Config {
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
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn js_options_parse_with_defaults() {
        let o = ConnectOptions::from_json(
            r#"{"token":"t","backoff":{"maxAttempts":2},"decoder":"team-answers","foo":1}"#,
        )
        .unwrap();
        assert_eq!(o.token.as_deref(), Some("t"));
        assert_eq!(o.backoff.max_attempts, 2);
        assert_eq!(o.backoff.initial_ms, 1000);
        assert_eq!(o.poll_interval_ms, 3000);
        assert_eq!(o.decoder, Some(Decoder::TeamAnswers));
        assert!(o.share_across_tabs);
        assert_eq!(
            ConnectOptions::from_json("").unwrap(),
            ConnectOptions::default()
        );
        assert_eq!(
            ConnectOptions::from_json("{}").unwrap(),
            ConnectOptions::default()
        );
        assert!(ConnectOptions::from_json(r#"{"decoder":"nope"}"#).is_err());
        let o = ConnectOptions::from_json(
            r#"{"transport":"fetch","forcePolling":true,"retrySseEveryMs":5}"#,
        )
        .unwrap();
        assert_eq!(o.transport, Transport::Fetch);
        assert!(o.config().force_polling);
        assert_eq!(o.config().retry_sse_every, Duration::from_millis(5));
    }

    #[test]
    fn issue7_options_and_defaults() {
        let d = ConnectOptions::default();
        assert_eq!(
            (
                d.heartbeat_timeout_ms,
                d.persist_last_event_id,
                d.pause_when_hidden
            ),
            (45_000, true, false)
        );
        assert_eq!(d.config().heartbeat_timeout, Some(Duration::from_secs(45)));
        assert!(d.headers.is_empty() && d.get_token.is_none());
        let o = ConnectOptions::from_json(
            r#"{"headers":{"X-Trace":"1"},"heartbeatTimeoutMs":0,"persistLastEventId":false,"pauseWhenHidden":true,"getToken":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(o.headers.get("X-Trace").map(String::as_str), Some("1"));
        assert_eq!(o.config().heartbeat_timeout, None);
        assert!(!o.persist_last_event_id && o.pause_when_hidden && o.get_token.is_none());
        assert!(ConnectOptions::from_json(r#"{"headers":{"a":1}}"#).is_err());
        let g = GetToken::new(|| async { Ok("t".to_owned()) });
        let o = Options::default().get_token(g.clone()).header("a", "b");
        assert_eq!(o.get_token.as_ref(), Some(&g));
        assert_ne!(
            Some(&GetToken::new(|| async { Ok(String::new()) })),
            o.get_token.as_ref()
        );
    }

    #[test]
    fn builder() {
        let o = Options::default()
            .token("x")
            .decoder(Decoder::Text)
            .poll_interval_ms(10);
        assert_eq!(o.decoder_for("/api/v1/events/test"), Decoder::Text);
        assert_eq!(
            Options::default().decoder_for("/api/v1/events/test"),
            Decoder::Channel
        );
    }
}
