//! Helpers shared by the browser test files (`browser.rs`, `browser_recovery.rs`):
//! the test server's URL, waiting, REST calls, dev tokens, listener logs.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use serde_json::{json, Value};
use tidings::{ErrorInfo, Event, Manager, State};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A server URL `scripts/test-wasm.sh` passes at compile time; without it
/// the test fails (a browser test that skips would pass without testing).
fn configured(name: &str, url: Option<&'static str>) -> &'static str {
    match url {
        Some(u) => u,
        None => panic!(
            "{name} is not set at build time: run the browser tests with scripts/test-wasm.sh"
        ),
    }
}

/// The main test server.
pub(crate) fn server() -> &'static str {
    configured("TIDINGS_TEST_SERVER", option_env!("TIDINGS_TEST_SERVER"))
}

/// A server with a 1-event subscriber queue, so bursts make it close streams.
pub(crate) fn laggy_server() -> &'static str {
    configured(
        "TIDINGS_TEST_SERVER_LAGGY",
        option_env!("TIDINGS_TEST_SERVER_LAGGY"),
    )
}

/// A server with a replay log of 3 events, so an old position gets a `reset`.
pub(crate) fn small_log_server() -> &'static str {
    configured(
        "TIDINGS_TEST_SERVER_SMALL_LOG",
        option_env!("TIDINGS_TEST_SERVER_SMALL_LOG"),
    )
}

/// A backend that is not tidings-server (tests/backends): its URL and the URL
/// of the supervisor that restarts it on the same port.
pub(crate) struct Backend {
    /// The backend.
    pub(crate) url: &'static str,
    /// Its supervisor: `POST /restart`, `/down`, `/up`.
    pub(crate) control: &'static str,
}

impl Backend {
    /// Asks the supervisor to `restart` (SIGKILL, start again), take it `down` or bring it `up`.
    pub(crate) async fn control(&self, action: &str) {
        let (status, v) = request("POST", &format!("{}/{action}", self.control), None, None).await;
        assert_eq!(status, 200, "{action}: {v}");
    }
}

/// The plain backend: ids 1, 2, 3… per process.
pub(crate) fn plain_backend() -> Backend {
    Backend {
        url: configured("TIDINGS_TEST_PLAIN", option_env!("TIDINGS_TEST_PLAIN")),
        control: configured(
            "TIDINGS_TEST_PLAIN_CONTROL",
            option_env!("TIDINGS_TEST_PLAIN_CONTROL"),
        ),
    }
}

/// The plain backend with UUID ids, resuming with `?lastEventID=`.
pub(crate) fn uuid_backend() -> Backend {
    Backend {
        url: configured("TIDINGS_TEST_UUID", option_env!("TIDINGS_TEST_UUID")),
        control: configured(
            "TIDINGS_TEST_UUID_CONTROL",
            option_env!("TIDINGS_TEST_UUID_CONTROL"),
        ),
    }
}

/// The LLM-style backend: `POST /chat` streams a finite answer.
pub(crate) fn llm_backend() -> Backend {
    Backend {
        url: configured("TIDINGS_TEST_LLM", option_env!("TIDINGS_TEST_LLM")),
        control: configured(
            "TIDINGS_TEST_LLM_CONTROL",
            option_env!("TIDINGS_TEST_LLM_CONTROL"),
        ),
    }
}

/// The seed-003 stack (FastAPI + sse-starlette + broadcaster).
pub(crate) fn seed_003_backend() -> Backend {
    Backend {
        url: configured("TIDINGS_TEST_SEED003", option_env!("TIDINGS_TEST_SEED003")),
        control: configured(
            "TIDINGS_TEST_SEED003_CONTROL",
            option_env!("TIDINGS_TEST_SEED003_CONTROL"),
        ),
    }
}

/// A name no other test (or run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}{}", (js_sys::Math::random() * 1e12) as u64)
}

/// Waits `ms` milliseconds.
pub(crate) async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

/// Polls `cond` every 20 ms for at most `ms`.
pub(crate) async fn wait_for(what: &str, ms: u32, mut cond: impl FnMut() -> bool) {
    for _ in 0..(ms / 20).max(1) {
        if cond() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out after {ms} ms waiting for {what}");
}

/// A JSON request; returns the status and the body (JSON, else the text as a string).
pub(crate) async fn request(
    method: &str,
    url: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().unwrap();
    if let Some(b) = &body {
        headers.set("Content-Type", "application/json").unwrap();
        init.set_body(&JsValue::from_str(&b.to_string()));
    }
    if let Some(t) = token {
        headers
            .set("Authorization", &format!("Bearer {t}"))
            .unwrap();
    }
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_str_and_init(url, &init).unwrap();
    let window = web_sys::window().unwrap();
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_request(&req))
        .await
        .unwrap()
        .unchecked_into();
    let text = JsFuture::from(resp.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap_or_default();
    (
        resp.status(),
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// POSTs JSON and asserts a 2xx answer.
pub(crate) async fn post(url: &str, body: Value, token: Option<&str>) -> Value {
    let (status, v) = request("POST", url, Some(body), token).await;
    assert!((200..300).contains(&status), "POST {url} → {status} {v}");
    v
}

/// A dev token for `user` with `channels`, valid `ttl_secs` (the server's default when `None`).
pub(crate) async fn dev_token(
    base: &str,
    user: &str,
    channels: &[&str],
    ttl_secs: Option<u64>,
) -> String {
    let mut body = json!({"user_id": user, "channels": channels});
    if let Some(ttl) = ttl_secs {
        body["ttl_secs"] = ttl.into();
    }
    let v = post(&format!("{base}/api/auth/dev-token"), body, None).await;
    v["token"].as_str().unwrap().to_owned()
}

/// What a listener received.
pub(crate) type Log<T> = Rc<RefCell<Vec<T>>>;

/// Records every event of type `ty`.
pub(crate) fn collect(m: &Manager, ty: &str) -> (Log<Event>, tidings::Subscription) {
    let log: Log<Event> = Rc::default();
    let l = log.clone();
    (log, m.on(ty, move |e| l.borrow_mut().push(e.clone())))
}

/// Records every state change.
pub(crate) fn states(m: &Manager) -> (Log<State>, tidings::Subscription) {
    let log: Log<State> = Rc::default();
    let l = log.clone();
    (log, m.on_state(move |s| l.borrow_mut().push(s)))
}

/// Records every error.
pub(crate) fn errors(m: &Manager) -> (Log<ErrorInfo>, tidings::Subscription) {
    let log: Log<ErrorInfo> = Rc::default();
    let l = log.clone();
    (log, m.on_error(move |e| l.borrow_mut().push(e.clone())))
}
