//! Throughput benchmark in headless Chromium (prints numbers, never fails on
//! them). Run by `scripts/bench-sdk.sh`, which starts a server and sets
//! `TIDINGS_BENCH_SERVER` at compile time; otherwise it returns at once.
//!
//! 1. End to end: N events published to a fresh channel, then replayed from
//!    id 0 to (a) a Tidings manager with a typed `task` listener and (b) a
//!    plain `EventSource` + `JSON.parse` in the same page. Events/s from
//!    open to the N-th event, best of 3 each.
//! 2. Decode only: `tidings::decode` + hand-off to JS (what the shell does
//!    per event) vs `JSON.parse` on the same data.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use serde_json::json;
use tidings::{Decoder, Manager, Options};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const N: usize = 3000;

fn now() -> f64 {
    js_sys::Date::now()
}

fn log(s: &str) {
    web_sys::console::log_1(&s.into());
}

async fn post(url: &str, body: String, token: Option<&str>) -> serde_json::Value {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let h = web_sys::Headers::new().unwrap();
    h.set("Content-Type", "application/json").unwrap();
    if let Some(t) = token {
        h.set("Authorization", &format!("Bearer {t}")).unwrap();
    }
    init.set_headers(&h);
    init.set_body(&JsValue::from_str(&body));
    let req = web_sys::Request::new_with_str_and_init(url, &init).unwrap();
    let resp: web_sys::Response =
        JsFuture::from(web_sys::window().unwrap().fetch_with_request(&req))
            .await
            .unwrap()
            .unchecked_into();
    let text = JsFuture::from(resp.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    serde_json::from_str(&text).unwrap_or_default()
}

async fn wait(done: impl Fn() -> bool, ms: u32) -> bool {
    for _ in 0..ms / 5 {
        if done() {
            return true;
        }
        TimeoutFuture::new(5).await;
    }
    false
}

fn payload(i: usize) -> serde_json::Value {
    json!({"type": "task", "object": {"id": i, "status": "running", "progress": i % 100, "name": format!("task number {i}"), "tags": ["a", "b"]}})
}

async fn run_sdk(url: &str, run: usize, token: &str) -> f64 {
    // A fresh manager per run (query tag), replaying from id 0 baked in the URL.
    let m = Manager::connect(
        &format!("{url}?lastEventId=0&run=sdk{run}"),
        Options::default().token(token).decoder(Decoder::Channel),
    )
    .unwrap();
    let count = Rc::new(Cell::new(0usize));
    let c = count.clone();
    let t0 = now();
    let _s = m.on("task", move |ev| {
        if matches!(&*ev.message, tidings::Message::Channel(_)) {
            c.set(c.get() + 1);
        }
    });
    let ok = wait(|| count.get() >= N, 60_000).await;
    let dt = now() - t0;
    m.close();
    if ok {
        N as f64 / (dt / 1000.0)
    } else {
        0.0
    }
}

async fn run_plain(url: &str, run: usize, token: &str) -> f64 {
    let count = Rc::new(Cell::new(0usize));
    let c = count.clone();
    let t0 = now();
    let es =
        web_sys::EventSource::new(&format!("{url}?lastEventId=0&run=plain{run}&token={token}"))
            .unwrap();
    let cb = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        let v = js_sys::JSON::parse(&e.data().as_string().unwrap()).unwrap();
        if js_sys::Reflect::get(&v, &"type".into())
            .unwrap()
            .as_string()
            .as_deref()
            == Some("task")
        {
            c.set(c.get() + 1);
        }
    });
    es.set_onmessage(Some(cb.as_ref().unchecked_ref()));
    let ok = wait(|| count.get() >= N, 60_000).await;
    let dt = now() - t0;
    es.close();
    drop(cb);
    if ok {
        N as f64 / (dt / 1000.0)
    } else {
        0.0
    }
}

#[wasm_bindgen_test]
async fn bench_throughput() {
    let Some(base) = option_env!("TIDINGS_BENCH_SERVER") else {
        return;
    };
    let channel = format!("bench.{}", (js_sys::Math::random() * 1e9) as u64);
    let token = post(
        &format!("{base}/api/auth/dev-token"),
        json!({"user_id": "bench", "channels": ["bench.*"]}).to_string(),
        None,
    )
    .await;
    let token = token["token"].as_str().unwrap().to_owned();
    let url = format!("{base}/api/v1/events/{channel}");
    // Publish N events, 16 requests in flight.
    let t0 = now();
    let sent = Rc::new(Cell::new(0usize));
    for w in 0..16 {
        let (url, token, sent) = (url.clone(), token.clone(), sent.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let mut i = w;
            while i < N {
                post(&url, payload(i).to_string(), Some(&token)).await;
                sent.set(sent.get() + 1);
                i += 16;
            }
        });
    }
    assert!(
        wait(|| sent.get() >= N, 120_000).await,
        "publishing timed out"
    );
    log(&format!(
        "bench: published {N} events in {:.0} ms",
        now() - t0
    ));
    let mut sdk = Vec::new();
    let mut plain = Vec::new();
    for run in 0..3 {
        plain.push(run_plain(&url, run, &token).await);
        sdk.push(run_sdk(&url, run, &token).await);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let (s, p) = (best(&sdk), best(&plain));
    log(&format!("bench: end-to-end replay of {N} events: tidings typed listener {s:.0} ev/s, plain EventSource+JSON.parse {p:.0} ev/s, ratio {:.2} (runs sdk {sdk:?}, plain {plain:?})", s / p));

    // Decode only, no network.
    let data: Vec<String> = (0..N).map(|i| payload(i).to_string()).collect();
    let t = now();
    let mut k = 0usize;
    for _ in 0..5 {
        for d in &data {
            let m = tidings::decode(Decoder::Channel, "message", d).unwrap();
            // What the shell does per event: typed decode, then the JS object.
            let v = if matches!(m, tidings::Message::Channel(_)) {
                js_sys::JSON::parse(d).unwrap()
            } else {
                JsValue::NULL
            };
            k += v.is_object() as usize;
        }
    }
    let sdk_dt = now() - t;
    let t = now();
    for _ in 0..5 {
        for d in &data {
            let v = js_sys::JSON::parse(d).unwrap();
            k += v.is_object() as usize;
        }
    }
    let plain_dt = now() - t;
    let n = (5 * N) as f64;
    log(&format!(
        "bench: decode only ({k} checks): tidings decode+handoff {:.0} ev/s ({:.2} µs/ev), JSON.parse {:.0} ev/s ({:.2} µs/ev)",
        n / (sdk_dt / 1000.0),
        sdk_dt * 1000.0 / n,
        n / (plain_dt / 1000.0),
        plain_dt * 1000.0 / n
    ));
}
