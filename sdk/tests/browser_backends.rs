//! The SDK against servers that are not tidings-server (tests/backends, the
//! seed-003 stack), in headless Chromium, each across a real restart of that
//! server (its supervisor SIGKILLs it and starts it again on the same port).
//! Each test states what is delivered: every event exactly once, in order.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::{json, Value};
use tidings::{
    BackoffOptions, Body, DecodeFn, Decoder, ErrorKind, Event, Manager, Options, Poll, State,
};
use wasm_bindgen_test::*;

use common::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Single-tab managers that retry quickly.
fn quick() -> Options {
    Options::default()
        .share_across_tabs(false)
        .persist_last_event_id(false)
        .backoff(BackoffOptions::default().initial_ms(100).max_ms(500))
}

/// The `n` field of each plain-backend event, in delivery order.
fn ns(log: &Log<Event>) -> Vec<String> {
    log.borrow()
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.raw).unwrap();
            v["n"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn ids(log: &Log<Event>) -> Vec<String> {
    log.borrow()
        .iter()
        .map(|e| e.id.clone().unwrap_or_default())
        .collect()
}

async fn publish(b: &Backend, n: &str) -> String {
    let v = post(
        &format!("{}/publish", b.url),
        json!({"data": {"n": n}}),
        None,
    )
    .await;
    v["id"].as_str().unwrap().to_owned()
}

/// Waits until the backend holds exactly `n` open streams (the SDK reconnected).
async fn streams(b: &Backend, n: u64) {
    for _ in 0..250 {
        let (_, v) = request("GET", &format!("{}/stats", b.url), None, None).await;
        if v["connections"].as_u64() == Some(n) {
            return;
        }
        sleep(20).await;
    }
    panic!("backend {} never had {n} streams", b.url);
}

/// Waits for a reconnect after a restart: `reconnecting`, then `open` again.
async fn reopened(st: &Log<State>, from: usize) {
    wait_for("reconnected", 10_000, || {
        let s = st.borrow();
        let after = &s[from.min(s.len())..];
        after.contains(&State::Reconnecting) && after.last() == Some(&State::Open)
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_plain_server_whose_ids_restart_at_1_loses_nothing_across_its_restart() {
    let b = plain_backend();
    let m = Manager::connect(&format!("{}/events?t={}", b.url, unique("")), quick()).unwrap();
    let (events, _e) = collect(&m, "message");
    let (errs, _r) = errors(&m);
    let (st, _s) = states(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    streams(&b, 1).await;
    for n in ["a1", "a2", "a3"] {
        publish(&b, n).await;
    }
    wait_for("a1..a3", 5000, || events.borrow().len() == 3).await;
    let mark = st.borrow().len();
    b.control("restart").await;
    reopened(&st, mark).await;
    streams(&b, 1).await;
    for n in ["b1", "b2", "b3"] {
        publish(&b, n).await;
    }
    wait_for("b1..b3", 5000, || events.borrow().len() == 6).await;
    sleep(300).await;
    assert_eq!(
        ns(&events),
        ["a1", "a2", "a3", "b1", "b2", "b3"],
        "each once, in order"
    );
    let ids = ids(&events);
    let first: u64 = ids[0].parse().unwrap();
    let before: Vec<String> = (first..first + 3).map(|i| i.to_string()).collect();
    assert_eq!(ids[..3], before[..], "ids as the server sent them");
    assert_eq!(
        ids[3..],
        ["1", "2", "3"],
        "the restarted process counts from 1 again"
    );
    assert_eq!(m.duplicates(), 0, "nothing taken for a duplicate");
    assert!(!m.speaks_tidings(), "the server never announced Tidings");
    let last = events.borrow().last().unwrap().last_event_id.clone();
    assert_eq!(last.as_deref(), Some("3"));
    assert!(
        errs.borrow().iter().all(|e| e.kind == ErrorKind::Network),
        "only the restart's drop: {:?}",
        errs.borrow()
    );
    m.close();
}

#[wasm_bindgen_test]
async fn uuid_ids_resume_with_the_mercure_parameter_and_survive_a_restart() {
    let b = uuid_backend();
    let m = Manager::connect(
        &format!("{}/events?t={}", b.url, unique("")),
        quick()
            .resume_param("lastEventID")
            .backoff(BackoffOptions::default().initial_ms(1000).max_ms(1000)),
    )
    .unwrap();
    let (events, _e) = collect(&m, "message");
    let (st, _s) = states(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    streams(&b, 1).await;
    let u1 = publish(&b, "u1").await;
    let u2 = publish(&b, "u2").await;
    wait_for("u1, u2", 5000, || events.borrow().len() == 2).await;
    assert_eq!(m.last_event_id().as_deref(), Some(u2.as_str()));
    // Dropped: what is published meanwhile comes back through `?lastEventID=<u2>`.
    m.debug_fail_sse();
    assert_eq!(m.state(), State::Reconnecting);
    let u3 = publish(&b, "u3").await;
    wait_for("u3", 5000, || events.borrow().len() == 3).await;
    let mark = st.borrow().len();
    b.control("restart").await;
    reopened(&st, mark).await;
    streams(&b, 1).await;
    let u4 = publish(&b, "u4").await;
    wait_for("u4", 5000, || events.borrow().len() == 4).await;
    sleep(300).await;
    assert_eq!(ns(&events), ["u1", "u2", "u3", "u4"]);
    assert_eq!(
        ids(&events),
        [u1, u2, u3, u4.clone()],
        "UUIDs are positions"
    );
    assert_eq!(m.last_event_id(), Some(u4));
    assert_eq!(m.duplicates(), 0);
    m.close();
}

#[wasm_bindgen_test]
async fn a_polling_url_answering_an_endless_stream_is_an_error_not_a_hang() {
    let b = plain_backend();
    let m = Manager::connect(
        &format!("{}/events?t={}", b.url, unique("")),
        quick()
            .poll(Poll::Tidings)
            .poll_timeout_ms(8000)
            .poll_interval_ms(200)
            .retry_sse_every_ms(1500)
            .backoff(
                BackoffOptions::default()
                    .initial_ms(50)
                    .max_ms(100)
                    .max_attempts(1),
            ),
    )
    .unwrap();
    let (events, _e) = collect(&m, "message");
    let (errs, _r) = errors(&m);
    let (st, _s) = states(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    streams(&b, 1).await;
    publish(&b, "before").await;
    wait_for("before", 5000, || events.borrow().len() == 1).await;
    b.control("down").await;
    wait_for("polling", 5000, || m.state() == State::Polling).await;
    let before_up = errs.borrow().len();
    b.control("up").await;
    let t0 = js_sys::Date::now();
    // The restarted server answers `?poll=1` with its event stream: refused at once.
    wait_for("protocol error", 6000, || {
        errs.borrow()[before_up..]
            .iter()
            .any(|e| e.kind == ErrorKind::Protocol && e.message.contains("not JSON"))
    })
    .await;
    let took = js_sys::Date::now() - t0;
    assert!(
        took < 4000.0,
        "refused in {took} ms, long before the 8 s poll timeout"
    );
    // SSE comes back by the probe; events flow again.
    wait_for("open again", 8000, || m.state() == State::Open).await;
    streams(&b, 1).await;
    publish(&b, "after").await;
    wait_for("after", 5000, || events.borrow().len() == 2).await;
    sleep(300).await;
    assert_eq!(ns(&events), ["before", "after"]);
    assert!(st
        .borrow()
        .windows(2)
        .any(|w| w == [State::Polling, State::Open]));
    m.close();
}

/// The text of each LLM chunk, in delivery order, and its index.
fn chunks(log: &Log<Event>) -> Vec<(u64, String)> {
    log.borrow()
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.raw).unwrap();
            (
                v["i"].as_u64().unwrap(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_post_answer_streams_once_across_a_restart_then_closes_for_good() {
    let b = llm_backend();
    let prompt = unique("p");
    let total = 40;
    let m = Manager::connect(
        &format!("{}/chat", b.url),
        quick()
            .method("POST")
            .body(Body::Json(json!({"prompt": prompt, "chunks": total})))
            .finite(true),
    )
    .unwrap();
    let (events, _e) = collect(&m, "message");
    let (errs, _r) = errors(&m);
    wait_for("ten chunks", 10_000, || events.borrow().len() >= 10).await;
    // Mid-answer restart: the answer resumes after the last chunk (`Last-Event-ID`).
    b.control("restart").await;
    wait_for("closed", 15_000, || m.state() == State::Closed).await;
    let got = chunks(&events);
    let want: Vec<(u64, String)> = (1..=total)
        .map(|i| (i, format!("{}{prompt}#{i}", if i == 1 { "" } else { " " })))
        .collect();
    assert_eq!(got, want, "every chunk once, in order");
    assert!(
        errs.borrow().iter().any(|e| e.kind == ErrorKind::Network),
        "the restart broke the stream: {:?}",
        errs.borrow()
    );
    let (_, stats) = request("GET", &format!("{}/stats", b.url), None, None).await;
    assert_eq!(
        (
            stats["posts"].as_u64(),
            stats["resumed"].as_u64(),
            stats["finished"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "one resumed POST after the restart: {stats}"
    );
    sleep(1000).await;
    let (_, again) = request("GET", &format!("{}/stats", b.url), None, None).await;
    assert_eq!(
        again["posts"], stats["posts"],
        "a normal end is not reconnected"
    );
    assert_eq!(m.state(), State::Closed);
    m.close();
}

#[wasm_bindgen_test]
async fn a_refused_post_is_fatal_not_retried() {
    let b = llm_backend();
    let (_, before) = request("GET", &format!("{}/stats", b.url), None, None).await;
    let posts = |v: &Value| v["posts"].as_u64().unwrap();
    for (path, body, kind, status) in [
        // 400: a bad request stays bad.
        ("/chat", json!({}), ErrorKind::Http, 400),
        // 200 but JSON: not an event stream.
        (
            "/chat?format=json",
            json!({"prompt": "x"}),
            ErrorKind::Protocol,
            200,
        ),
    ] {
        let m = Manager::connect(
            &format!("{}{path}", b.url),
            quick().method("POST").body(Body::Json(body)),
        )
        .unwrap();
        let (errs, _r) = errors(&m);
        let (_e, _s) = collect(&m, "message");
        wait_for("closed", 5000, || m.state() == State::Closed).await;
        sleep(500).await;
        let e = errs.borrow();
        assert_eq!(e.len(), 1, "{path}: one request, one error: {e:?}");
        assert_eq!((e[0].kind, e[0].status), (kind, Some(status)), "{path}");
        drop(e);
        m.close();
    }
    let (_, after) = request("GET", &format!("{}/stats", b.url), None, None).await;
    assert_eq!(
        posts(&after) - posts(&before),
        2,
        "no retries: {before} → {after}"
    );
}

#[wasm_bindgen_test]
async fn the_seed_003_stack_delivers_every_message_once_across_its_restart() {
    let b = seed_003_backend();
    let channel = unique("project.");
    let url = format!("{}/api/v1/events/{channel}", b.url);
    let m = Manager::connect(&url, quick()).unwrap();
    let (tasks, _t) = collect(&m, "task");
    let (st, _s) = states(&m);
    let send = |n: u64| post(&url, json!({"type": "task", "object": {"n": n}}), None);
    wait_for("open", 10_000, || m.state() == State::Open).await;
    // sse-starlette subscribes once the response started: give it a moment.
    sleep(300).await;
    for n in 1..=3 {
        send(n).await;
    }
    wait_for("1..3", 5000, || tasks.borrow().len() == 3).await;
    let mark = st.borrow().len();
    b.control("restart").await;
    reopened(&st, mark).await;
    sleep(300).await;
    for n in 4..=6 {
        send(n).await;
    }
    wait_for("4..6", 5000, || tasks.borrow().len() == 6).await;
    sleep(300).await;
    let got: Vec<u64> = tasks
        .borrow()
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.raw).unwrap();
            assert_eq!(e.ty, "task", "routed by the payload type (decoder auto)");
            v["object"]["n"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    assert!(
        !st.borrow().contains(&State::Polling),
        "an unknown server is never polled"
    );
    assert_eq!(m.decoder(), Decoder::Auto);
    m.close();
}

async fn trigger(base: &str, user: &str, title: &str) {
    post(
        &format!("{base}/api/notifications/trigger/"),
        json!({"user_id": user, "title": title, "message": "m", "type": "info"}),
        None,
    )
    .await;
}

#[wasm_bindgen_test]
async fn another_user_in_the_same_tab_starts_from_its_own_position() {
    let base = server();
    let url = format!("{base}/api/notifications/stream");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let ta = dev_token(base, &alice, &[], None).await;
    let tb = dev_token(base, &bob, &[], None).await;
    // Alice gets a few notifications; her position is kept (sessionStorage).
    let a = Manager::connect(&url, Options::default().token(ta).share_across_tabs(false)).unwrap();
    let (an, _a) = collect(&a, "new_notification");
    wait_for("alice open", 5000, || a.state() == State::Open).await;
    for i in 0..3 {
        trigger(base, &alice, &format!("a{i}")).await;
    }
    wait_for("alice's 3", 5000, || an.borrow().len() == 3).await;
    assert!(a.last_event_id().is_some());
    a.close();
    // Bob logs in in the same tab: a manager of his own, from his own position.
    let b = Manager::connect(&url, Options::default().token(tb).share_across_tabs(false)).unwrap();
    assert_eq!(b.last_event_id(), None, "not Alice's position");
    let (bn, _b) = collect(&b, "new_notification");
    let (resets, _r) = collect(&b, "reset");
    wait_for("bob open", 5000, || b.state() == State::Open).await;
    trigger(base, &bob, "b0").await;
    wait_for("bob's", 5000, || bn.borrow().len() == 1).await;
    sleep(200).await;
    assert!(
        resets.borrow().is_empty(),
        "no reset from a foreign position"
    );
    assert_eq!(bn.borrow().len(), 1);
    b.close();
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Task {
    r#type: String,
    object: TaskObject,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct TaskObject {
    n: u32,
}

#[wasm_bindgen_test]
async fn an_app_decoder_gives_its_own_type_and_a_failure_is_a_decode_error() {
    let base = server();
    let ch = unique("project.");
    let token = dev_token(base, &unique("d"), &["project.*"], None).await;
    let url = format!("{base}/api/v1/events/{ch}");
    // serde into the app's type; an unnamed event still routes by its `type`.
    let m = Manager::connect(&url, quick().token(token.clone()).decode_as::<Task>()).unwrap();
    let (tasks, _t) = collect(&m, "task");
    let (errs, _e) = errors(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    post(
        &url,
        json!({"type": "task", "object": {"n": 1}}),
        Some(&token),
    )
    .await;
    post(
        &url,
        json!({"type": "task", "object": {"n": "x"}}),
        Some(&token),
    )
    .await;
    post(
        &url,
        json!({"type": "task", "object": {"n": 2}}),
        Some(&token),
    )
    .await;
    wait_for("two tasks", 5000, || tasks.borrow().len() == 2).await;
    let got: Vec<u32> = tasks
        .borrow()
        .iter()
        .map(|e| e.message.custom::<Task>().unwrap().object.n)
        .collect();
    assert_eq!(got, [1, 2], "the stream went on after the bad one");
    let decode: Vec<_> = errs
        .borrow()
        .iter()
        // The app's decoder sees every event; the channel's named greeting is not a Task either.
        .filter(|e| e.kind == ErrorKind::Decode && e.message.starts_with("`message` event"))
        .cloned()
        .collect();
    assert_eq!(decode.len(), 1, "{decode:?}");
    assert!(decode[0].raw.as_deref().unwrap().contains("\"n\":\"x\""));
    m.close();
    // A closure: any type, any rule.
    let m = Manager::connect(
        &format!("{url}?c=1"),
        quick()
            .token(token.clone())
            .decode(DecodeFn::new(|data: &str, _event: &str| {
                if data.contains("secret") {
                    Err("refused")
                } else {
                    Ok(data.len())
                }
            })),
    )
    .unwrap();
    let (all, _a) = collect(&m, "message");
    let (errs, _e) = errors(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    post(
        &url,
        json!({"type": "task", "object": "secret"}),
        Some(&token),
    )
    .await;
    post(&url, json!({"type": "task", "object": "ok"}), Some(&token)).await;
    wait_for("one", 5000, || !all.borrow().is_empty()).await;
    sleep(200).await;
    let lens: Vec<usize> = all
        .borrow()
        .iter()
        .filter(|e| e.id.is_some())
        .map(|e| *e.message.custom::<usize>().unwrap())
        .collect();
    assert_eq!(lens.len(), 1);
    assert!(errs
        .borrow()
        .iter()
        .any(|e| e.kind == ErrorKind::Decode && e.message.contains("refused")));
    m.close();
}

/// Sets `key` on a JS object.
fn set(o: &js_sys::Object, key: &str, v: &wasm_bindgen::JsValue) {
    js_sys::Reflect::set(o, &key.into(), v).unwrap();
}

/// Calls `manager.<method>(arg)` on a JS manager.
fn call(
    m: &wasm_bindgen::JsValue,
    method: &str,
    arg: &wasm_bindgen::JsValue,
) -> wasm_bindgen::JsValue {
    use wasm_bindgen::JsCast;
    let f: js_sys::Function = js_sys::Reflect::get(m, &method.into())
        .unwrap()
        .unchecked_into();
    f.call1(m, arg).unwrap()
}

#[wasm_bindgen_test]
async fn a_js_poll_function_serves_a_plain_server_while_it_is_down() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    let b = plain_backend();
    // The app's REST endpoint, as a poll function: it answers pages after a cursor.
    let asked: Rc<RefCell<Vec<Option<String>>>> = Rc::default();
    let a = asked.clone();
    let poll = Closure::<dyn Fn(JsValue) -> JsValue>::new(move |req: JsValue| {
        let last = js_sys::Reflect::get(&req, &"lastEventId".into())
            .unwrap()
            .as_string();
        let signal = js_sys::Reflect::get(&req, &"signal".into()).unwrap();
        assert!(signal.is_object(), "an AbortSignal");
        a.borrow_mut().push(last.clone());
        let page = match last.as_deref() {
            Some("p1") => {
                json!({"events": [{"id": "p2", "event": "item", "data": {"n": "polled-2"}}], "lastEventId": "p2"})
            }
            Some("p2") => json!({"events": [], "lastEventId": "p2"}),
            _ => {
                json!({"events": [{"id": "p1", "event": "item", "data": {"n": "polled-1"}}], "lastEventId": "p1"})
            }
        };
        js_sys::Promise::resolve(&js_sys::JSON::parse(&page.to_string()).unwrap()).into()
    });
    // The app's own decoder: a JS function.
    let decode =
        Closure::<dyn Fn(JsValue, JsValue) -> JsValue>::new(|data: JsValue, event: JsValue| {
            let v: Value = serde_json::from_str(&data.as_string().unwrap()).unwrap();
            let out = json!({"n": v["n"], "event": event.as_string(), "decodedBy": "app"});
            js_sys::JSON::parse(&out.to_string()).unwrap()
        });
    let options = js_sys::Object::new();
    let backoff = js_sys::Object::new();
    set(&backoff, "initialMs", &50.into());
    set(&backoff, "maxMs", &100.into());
    set(&backoff, "maxAttempts", &1.into());
    set(&options, "backoff", &backoff);
    set(&options, "pollIntervalMs", &100.into());
    set(&options, "retrySseEveryMs", &60_000.into());
    set(&options, "shareAcrossTabs", &false.into());
    set(&options, "persistLastEventId", &false.into());
    set(&options, "poll", poll.as_ref());
    set(&options, "decode", decode.as_ref());
    let url = format!("{}/events?js={}", b.url, unique(""));
    let m = tidings::js::connect(&url, Some(options.into())).unwrap();
    let got: Log<(String, Option<String>)> = Rc::default();
    let g = got.clone();
    let listener = Closure::<dyn Fn(JsValue, JsValue)>::new(move |msg: JsValue, info: JsValue| {
        let by = js_sys::Reflect::get(&msg, &"decodedBy".into())
            .unwrap()
            .as_string();
        assert_eq!(by.as_deref(), Some("app"), "the app's decoder made it");
        let n = js_sys::Reflect::get(&msg, &"n".into())
            .unwrap()
            .as_string()
            .unwrap();
        let last = js_sys::Reflect::get(&info, &"lastEventId".into())
            .unwrap()
            .as_string();
        g.borrow_mut().push((n, last));
    });
    for name in ["message", "item"] {
        let f = js_sys::Function::from(listener.as_ref().clone());
        let on: js_sys::Function =
            wasm_bindgen::JsCast::unchecked_into(js_sys::Reflect::get(&m, &"on".into()).unwrap());
        on.call2(&m, &name.into(), &f).unwrap();
    }
    let state = || {
        js_sys::Reflect::get(&m, &"state".into())
            .unwrap()
            .as_string()
            .unwrap()
    };
    wait_for("open", 5000, || state() == "open").await;
    streams(&b, 1).await;
    publish(&b, "live-1").await;
    wait_for("live-1", 5000, || got.borrow().len() == 1).await;
    // Down: SSE fails twice, then the poll function is the stream.
    b.control("down").await;
    wait_for("polled", 5000, || got.borrow().len() == 3).await;
    assert_eq!(state(), "polling");
    b.control("up").await;
    sleep(300).await;
    let got = got.borrow().clone();
    assert_eq!(
        got,
        [
            ("live-1".into(), got[0].1.clone()),
            ("polled-1".into(), Some("p1".into())),
            ("polled-2".into(), Some("p2".into())),
        ],
        "each once, in order; info.lastEventId follows the poll's positions"
    );
    let asked = asked.borrow();
    assert_eq!(
        asked[0], got[0].1,
        "the first poll starts from the SSE position"
    );
    assert!(
        asked[1..].starts_with(&[Some("p1".into()), Some("p2".into())]),
        "{asked:?}"
    );
    call(&m, "close", &JsValue::UNDEFINED);
    drop((poll, decode, listener));
}

#[wasm_bindgen_test]
fn max_attempts_infinity_is_accepted_from_js() {
    let options = js_sys::Object::new();
    let backoff = js_sys::Object::new();
    set(&backoff, "maxAttempts", &f64::INFINITY.into());
    set(&options, "backoff", &backoff);
    let m = tidings::js::connect(
        &format!("http://127.0.0.1:9/inf-{}", unique("")),
        Some(options.into()),
    );
    assert!(m.is_ok(), "maxAttempts: Infinity must not throw");
    call(&m.unwrap(), "close", &wasm_bindgen::JsValue::UNDEFINED);
}
