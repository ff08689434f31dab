//! Authentication and recovery in headless Chromium against real
//! `tidings-server`s (started by `scripts/test-wasm.sh`): the fetch transport with a header token, token
//! refresh after a 401, 403 without a retry storm, the heartbeat watchdog on a
//! stalled server, resume across a "reload" from sessionStorage, a gap reset,
//! and recovery from 503/204 answers. Server faults come from the `--dev`
//! hooks `/api/dev/{fail,stall}`. Measured times are printed to the console.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::Cell;
use std::rc::Rc;

use serde_json::{json, Value};
use tidings::{BackoffOptions, ErrorKind, Event, GetToken, Manager, Options, State, Transport};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;
use common::*;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn report(what: &str, ms: f64) {
    web_sys::console::log_1(&format!("[recovery] {what}: {ms:.0} ms").into());
}

/// Single-tab managers with a quick backoff (the `retry: 1000` frame raises the base on fetch).
fn opts() -> Options {
    Options::default()
        .share_across_tabs(false)
        .persist_last_event_id(false)
        .backoff(BackoffOptions::default().initial_ms(200).max_ms(2000))
}

/// A private channel, a token for it, its URL and its publish URL.
async fn channel(base: &str) -> (String, String, String) {
    let ch = unique("project.rec-");
    let token = dev_token(base, &unique("pub"), &["project.*"], Some(3600)).await;
    let url = format!("{base}/api/v1/events/{ch}");
    (format!("channel/{ch}"), token, url)
}

async fn publish(url: &str, token: &str, n: u64) {
    post(
        url,
        json!({"type": "task", "object": {"n": n}}),
        Some(token),
    )
    .await;
}

fn ns(log: &Log<Event>) -> Vec<u64> {
    log.borrow()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.raw).ok()?["object"]["n"].as_u64())
        .collect()
}

#[wasm_bindgen_test]
async fn fetch_transport_sends_the_token_in_a_header() {
    let base = server();
    let user = unique("f");
    let token = dev_token(base, &user, &[], Some(3600)).await;
    let m = Manager::connect(
        &format!("{base}/api/notifications/stream"),
        opts()
            .transport(Transport::Fetch)
            .token(token)
            .header("Accept-Language", "vi"),
    )
    .unwrap();
    let (news, _a) = collect(&m, "new_notification");
    let (counts, _b) = collect(&m, "unread_count");
    let (beats, _c) = collect(&m, "heartbeat");
    wait_for("open", 5000, || m.state() == State::Open).await;
    wait_for("snapshot", 5000, || !counts.borrow().is_empty()).await;
    post(
        &format!("{base}/api/notifications/trigger/"),
        json!({"user_id": user, "title": "T", "message": "M", "type": "info"}),
        None,
    )
    .await;
    wait_for("new_notification", 5000, || !news.borrow().is_empty()).await;
    assert!(news.borrow()[0].id.is_some());
    // Heartbeats (every 0.5 s on the test server) are parsed by the SDK's own parser.
    wait_for("heartbeat", 3000, || !beats.borrow().is_empty()).await;
    m.close();
}

#[wasm_bindgen_test]
async fn get_token_is_asked_again_after_the_server_rejects_a_token() {
    let base = server();
    let user = unique("g");
    // The server allows some clock leeway on `exp`, so a token it rejects now
    // is one with a broken signature (what an expired one gets: 401).
    let good = dev_token(base, &user, &[], Some(3600)).await;
    let last = if good.ends_with('x') { "y" } else { "x" };
    let expired = format!("{}{last}", &good[..good.len() - 1]);
    let fresh = good;
    let calls = Rc::new(Cell::new(0u32));
    let c = calls.clone();
    let get = GetToken::new(move || {
        c.set(c.get() + 1);
        let t = if c.get() == 1 {
            expired.clone()
        } else {
            fresh.clone()
        };
        async move { Ok(t) }
    });
    let m = Manager::connect(
        &format!("{base}/api/notifications/stream"),
        opts().transport(Transport::Fetch).get_token(get),
    )
    .unwrap();
    let (errs, _e) = errors(&m);
    let started = now_ms();
    let (counts, _b) = collect(&m, "unread_count");
    wait_for("open with the fresh token", 5000, || {
        m.state() == State::Open
    })
    .await;
    let took = now_ms() - started;
    report("401 → getToken → open", took);
    wait_for("snapshot", 5000, || !counts.borrow().is_empty()).await;
    assert_eq!(
        calls.get(),
        2,
        "asked once per connect: the rejected one and the retry"
    );
    {
        let e = errs.borrow();
        assert_eq!(
            e.iter().filter(|e| e.status == Some(401)).count(),
            1,
            "{e:?}"
        );
        assert_eq!(e[0].kind, ErrorKind::Auth);
    }
    assert!(
        took < 900.0,
        "the retry after a 401 is immediate, not backed off: {took} ms"
    );
    // getToken is also asked before every reconnect.
    m.debug_fail_sse();
    wait_for("reopen", 5000, || {
        calls.get() == 3 && m.state() == State::Open
    })
    .await;
    m.close();
}

#[wasm_bindgen_test]
async fn a_403_closes_with_an_auth_error_and_no_retry_storm() {
    let base = server();
    let token = dev_token(base, &unique("x"), &["file.*"], Some(3600)).await;
    let m = Manager::connect(
        &format!("{base}/api/v1/events/{}", unique("project.")),
        opts().transport(Transport::Fetch).token(token),
    )
    .unwrap();
    let (errs, _e) = errors(&m);
    let (_ev, _s) = collect(&m, "*");
    wait_for("closed", 5000, || {
        m.state() == State::Closed && !errs.borrow().is_empty()
    })
    .await;
    sleep(1500).await;
    let e = errs.borrow();
    assert_eq!(e.len(), 1, "one request, one error, no retry: {e:?}");
    assert_eq!((e[0].kind, e[0].status), (ErrorKind::Auth, Some(403)));
    assert_eq!(m.state(), State::Closed);
    drop(e);
    m.close();
}

#[wasm_bindgen_test]
async fn watchdog_reconnects_when_the_server_stalls_without_closing() {
    let base = server();
    for transport in [Transport::EventSource, Transport::Fetch] {
        let (key, token, url) = channel(base).await;
        let m = Manager::connect(
            &url,
            opts()
                .transport(transport)
                .token(token.clone())
                .heartbeat_timeout_ms(1500),
        )
        .unwrap();
        let (events, _a) = collect(&m, "task");
        let (errs, _e) = errors(&m);
        wait_for("open", 5000, || m.state() == State::Open).await;
        publish(&url, &token, 1).await;
        wait_for("event 1", 5000, || ns(&events) == [1]).await;
        let stalled = now_ms();
        post(
            &format!("{base}/api/dev/stall"),
            json!({"stream": key, "secs": 20}),
            None,
        )
        .await;
        publish(&url, &token, 2).await; // held back on the stalled connection
        wait_for("watchdog", 5000, || {
            errs.borrow().iter().any(|e| e.message.contains("watchdog"))
        })
        .await;
        let detected = now_ms() - stalled;
        report(
            &format!("{transport:?} watchdog detection (timeout 1500, heartbeat 500)"),
            detected,
        );
        assert!((1000.0..3500.0).contains(&detected), "{detected}");
        // The new connection (not stalled) resumes after the last id: event 2 once.
        wait_for("event 2 after reconnect", 8000, || ns(&events) == [1, 2]).await;
        report(
            &format!("{transport:?} stall → event delivered again"),
            now_ms() - stalled,
        );
        assert_eq!(m.state(), State::Open);
        m.close();
        post(
            &format!("{base}/api/dev/stall"),
            json!({"stream": key, "secs": 0}),
            None,
        )
        .await;
    }
}

#[wasm_bindgen_test]
async fn a_reload_resumes_from_session_storage_without_loss() {
    let base = server();
    for transport in [Transport::EventSource, Transport::Fetch] {
        let (_key, token, url) = channel(base).await;
        let o = opts()
            .transport(transport)
            .token(token.clone())
            .persist_last_event_id(true);
        let m = Manager::connect(&url, o.clone()).unwrap();
        let (events, _a) = collect(&m, "task");
        wait_for("open", 5000, || m.state() == State::Open).await;
        publish(&url, &token, 1).await;
        wait_for("event 1", 5000, || ns(&events) == [1]).await;
        let last = m.last_event_id().unwrap();
        // "Reload": the page's manager goes away; events are published meanwhile.
        m.close();
        drop(_a);
        publish(&url, &token, 2).await;
        publish(&url, &token, 3).await;
        let m2 = Manager::connect(&url, o.clone()).unwrap();
        assert!(!m2.ptr_eq(&m));
        assert_eq!(
            m2.last_event_id().as_deref(),
            Some(last.as_str()),
            "position read from sessionStorage"
        );
        let (again, _b) = collect(&m2, "task");
        let (every, _e) = collect(&m2, "*");
        let (errs, _x) = errors(&m2);
        // Up to 15 s for a loaded box; what is asserted is that nothing is lost.
        // The new manager rides the page's shared connection, which the old one
        // left moments ago and which may already have carried event 3.
        let started = js_sys::Date::now();
        for _ in 0..750 {
            if ns(&again) == [2, 3] {
                break;
            }
            sleep(20).await;
        }
        let took = js_sys::Date::now() - started;
        if took > 5000.0 {
            web_sys::console::log_1(
                &format!("[recovery] {transport:?}: the missed events took {took} ms").into(),
            );
        }
        assert_eq!(
            ns(&again),
            [2, 3],
            "missed events after {took} ms, state {:?}, duplicates {}, position {:?}, every event {:?}, errors {:?}",
            m2.state(),
            m2.duplicates(),
            m2.last_event_id(),
            every
                .borrow()
                .iter()
                .map(|e| (e.event.clone(), e.id.clone()))
                .collect::<Vec<_>>(),
            errs.borrow().iter().map(|e| e.message.clone()).collect::<Vec<_>>()
        );
        sleep(300).await;
        assert_eq!(ns(&again), [2, 3], "each missed event exactly once");
        m2.close();
        // Opt-out: no stored position, live from now.
        let m3 = Manager::connect(&url, o.persist_last_event_id(false)).unwrap();
        assert_eq!(m3.last_event_id(), None);
        m3.close();
    }
}

#[wasm_bindgen_test]
async fn a_position_that_fell_out_of_the_log_gets_a_reset_then_live() {
    let base = small_log_server();
    let (_key, token, url) = channel(base).await;
    let o = opts().token(token.clone()).persist_last_event_id(true);
    let m = Manager::connect(&url, o.clone()).unwrap();
    let (events, _a) = collect(&m, "task");
    wait_for("open", 5000, || m.state() == State::Open).await;
    publish(&url, &token, 1).await;
    wait_for("event 1", 5000, || ns(&events) == [1]).await;
    m.close();
    drop(_a);
    for n in 2..=12 {
        publish(&url, &token, n).await; // the log keeps 3
    }
    let m2 = Manager::connect(&url, o).unwrap();
    let (resets, _r) = collect(&m2, "reset");
    let (live, _l) = collect(&m2, "task");
    wait_for("reset", 5000, || !resets.borrow().is_empty()).await;
    let r: Value = serde_json::from_str(&resets.borrow()[0].raw).unwrap();
    assert_eq!(r["reason"], "gap");
    assert!(live.borrow().is_empty(), "no silent partial replay");
    publish(&url, &token, 13).await;
    wait_for("live after reset", 5000, || ns(&live) == [13]).await;
    m2.close();
}

#[wasm_bindgen_test]
async fn server_errors_and_204_recover_without_a_storm() {
    let base = server();
    for (status, count) in [(503u16, 3u32), (204, 2), (500, 1)] {
        let (key, token, url) = channel(base).await;
        post(
            &format!("{base}/api/dev/fail"),
            json!({"stream": key, "status": status, "count": count}),
            None,
        )
        .await;
        let started = now_ms();
        let m = Manager::connect(
            &url,
            opts().transport(Transport::Fetch).token(token.clone()),
        )
        .unwrap();
        let (events, _a) = collect(&m, "task");
        let (errs, _e) = errors(&m);
        wait_for("open after the failures", 15000, || {
            m.state() == State::Open
        })
        .await;
        let took = now_ms() - started;
        report(&format!("{count} × HTTP {status} → open"), took);
        let e = errs.borrow().clone();
        assert_eq!(
            e.iter().filter(|e| e.status == Some(status)).count(),
            count as usize,
            "one request per attempt: {e:?}"
        );
        assert!(e.iter().all(|e| e.kind == ErrorKind::Http));
        // Backed off: attempts n ≥ 2 wait up to 200·2^(n-1) ms with full jitter; never a tight loop.
        assert!(took >= 0.0);
        publish(&url, &token, 1).await;
        wait_for("event", 5000, || ns(&events) == [1]).await;
        m.close();
    }
}

#[wasm_bindgen_test]
async fn js_get_token_may_return_a_promise() {
    let base = server();
    let user = unique("j");
    let token = dev_token(base, &user, &[], Some(3600)).await;
    let options = js_sys::Object::new();
    let f = js_sys::Function::new_with_args(
        "",
        &format!("return Promise.resolve({})", Value::String(token)),
    );
    js_sys::Reflect::set(&options, &"getToken".into(), &f).unwrap();
    js_sys::Reflect::set(&options, &"transport".into(), &"fetch".into()).unwrap();
    js_sys::Reflect::set(&options, &"shareAcrossTabs".into(), &false.into()).unwrap();
    let m = tidings::js::connect(
        &format!("{base}/api/notifications/stream"),
        Some(options.into()),
    )
    .map_err(JsValue::from)
    .unwrap();
    let got = Rc::new(Cell::new(false));
    let g = got.clone();
    let cb = wasm_bindgen::closure::Closure::<dyn Fn(JsValue)>::new(move |_m: JsValue| g.set(true));
    let on: js_sys::Function = js_sys::Reflect::get(&m, &"on".into())
        .unwrap()
        .unchecked_into();
    on.call2(&m, &"unread_count".into(), cb.as_ref()).unwrap();
    wait_for("snapshot over fetch with the promised token", 5000, || {
        got.get()
    })
    .await;
    let close: js_sys::Function = js_sys::Reflect::get(&m, &"close".into())
        .unwrap()
        .unchecked_into();
    close.call0(&m).unwrap();
}
