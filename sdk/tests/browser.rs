//! The browser shell in headless Chromium against a real `tidings-server`.
//! `scripts/test-wasm.sh` starts the servers and passes their URLs at compile
//! time (`TIDINGS_TEST_SERVER`, `TIDINGS_TEST_SERVER_LAGGY`); without them the
//! tests fail.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};
use tidings::messages::{NotificationMessage, TeamAnswerMessage};
use tidings::{
    BackoffOptions, Decoder, ErrorKind, Manager, Message, Options, Protocol, State, WsMessageType,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;
use common::*;

async fn new_team_answer(base: &str, name: &str) -> i64 {
    let v = post(
        &format!("{base}/api/team-answers/"),
        json!({"video_name": name, "frame_index": 7, "url": "http://x/f.jpg", "qa": "Q"}),
        None,
    )
    .await;
    v["id"]
        .as_i64()
        .or_else(|| v["data"]["id"].as_i64())
        .unwrap_or(-1)
}

fn quick() -> Options {
    Options::default().backoff(BackoffOptions::default().initial_ms(200).max_ms(1000))
}

#[wasm_bindgen_test]
async fn team_answers_typed_create_and_delete() {
    let base = server();
    let m = Manager::connect(
        &format!("{base}/api/team-answers/sse/"),
        quick().decoder(Decoder::TeamAnswers),
    )
    .unwrap();
    let (creates, _s1) = collect(&m, "create");
    let (deletes, _s2) = collect(&m, "delete");
    let (all, _s3) = collect(&m, "*");
    wait_for("open", 5000, || m.state() == State::Open).await;
    let name = unique("clip-");
    let id = new_team_answer(base, &name).await;
    wait_for("create event", 5000, || {
        creates.borrow().iter().any(|e| e.raw.contains(&name))
    })
    .await;
    let ev = creates
        .borrow()
        .iter()
        .find(|e| e.raw.contains(&name))
        .cloned()
        .unwrap();
    assert_eq!(ev.ty, "create");
    assert_eq!(ev.event, "message");
    assert!(ev.id.is_some(), "logged events carry an id");
    let Message::TeamAnswers(TeamAnswerMessage::Create { data, .. }) = &*ev.message else {
        panic!("{:?}", ev.message)
    };
    assert_eq!(data.video_name, name);
    assert_eq!(data.frame_index, 7);
    assert_eq!(data.id, id);
    let (status, _) = request(
        "DELETE",
        &format!("{base}/api/team-answers/{id}/"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    wait_for("delete event", 5000, || {
        deletes.borrow().iter().any(|e| matches!(&*e.message, Message::TeamAnswers(TeamAnswerMessage::Delete { data, .. }) if data.contains(&id)))
    })
    .await;
    // `*` saw the greeting and both events; never a heartbeat. A fresh connection's
    // greeting carries the head id (PROTOCOL.md), so a drop before any event resumes right.
    assert!(all
        .borrow()
        .iter()
        .any(|e| e.ty == "connected" && e.id.is_some()));
    assert!(all.borrow().iter().all(|e| !e.message.is_heartbeat()));
    m.close();
}

#[wasm_bindgen_test]
async fn notifications_typed_with_token() {
    let base = server();
    let user = unique("u");
    let token = dev_token(base, &user, &[], None).await;
    let m = Manager::connect(
        &format!("{base}/api/notifications/stream"),
        quick().token(token).decoder(Decoder::Notifications),
    )
    .unwrap();
    assert_eq!(m.decoder(), Decoder::Notifications);
    let (news, _a) = collect(&m, "new_notification");
    let (counts, _b) = collect(&m, "unread_count");
    let (beats, _c) = collect(&m, "heartbeat");
    wait_for("snapshot unread_count", 5000, || {
        !counts.borrow().is_empty()
    })
    .await;
    assert!(counts.borrow()[0].id.is_none(), "the snapshot has no id");
    post(
        &format!("{base}/api/notifications/trigger/"),
        json!({"user_id": user, "title": "Hi", "message": "Real-time works!", "type": "info"}),
        None,
    )
    .await;
    wait_for("new_notification", 5000, || !news.borrow().is_empty()).await;
    let msg = news.borrow()[0].message.clone();
    let Message::Notification(NotificationMessage::NewNotification(n)) = &*msg else {
        panic!()
    };
    assert_eq!(
        (n.title.as_str(), n.user_id.as_str(), n.read),
        ("Hi", user.as_str(), false)
    );
    wait_for("unread_count 1", 5000, || {
        counts.borrow().iter().any(|e| matches!(&*e.message, Message::Notification(NotificationMessage::UnreadCount(c)) if c.count == 1))
    })
    .await;
    // Heartbeats (every 0.5 s in the test server) reach `heartbeat` listeners, typed.
    wait_for("heartbeat", 3000, || !beats.borrow().is_empty()).await;
    assert!(matches!(&*beats.borrow()[0].message, Message::Heartbeat(_)));
    m.close();
}

#[wasm_bindgen_test]
async fn video_progress_to_end() {
    let base = server();
    let job = post(
        &format!("{base}/api/chat/create-video"),
        json!({"prompt": "a cat", "steps": 2, "step_ms": 50}),
        None,
    )
    .await;
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    let m = Manager::connect(
        &format!("{base}/api/video-progress/{job_id}"),
        quick().decoder(Decoder::VideoProgress),
    )
    .unwrap();
    let (progress, _a) = collect(&m, "progress");
    let (completed, _b) = collect(&m, "completed");
    let (ends, _c) = collect(&m, "end");
    let (st, _d) = states(&m);
    wait_for("end", 10_000, || !ends.borrow().is_empty()).await;
    assert_eq!(m.state(), State::Closed);
    // From the start (finite stream): two progress events per step, then completed.
    assert_eq!(progress.borrow().len(), 4);
    let msg = completed.borrow()[0].message.clone();
    let Message::Video(v) = &*msg else { panic!() };
    assert_eq!(
        (v.kind.as_str(), v.status.as_str(), v.percent),
        ("completed", "completed", Some(100))
    );
    assert!(v.video_url.is_some());
    // `end` is final: no reconnect afterwards.
    sleep(1500).await;
    assert_eq!(st.borrow().last(), Some(&State::Closed));
    assert_eq!(ends.borrow().len(), 1);
    m.close();
}

#[wasm_bindgen_test]
async fn channel_messages_typed_and_unknown_types() {
    let base = server();
    let ch = unique("project.");
    let token = dev_token(base, &unique("c"), &["project.*"], None).await;
    let m = Manager::connect(
        &format!("{base}/api/v1/events/{ch}"),
        quick().token(token.clone()).decoder(Decoder::Channel),
    )
    .unwrap();
    let (tasks, _a) = collect(&m, "task");
    let (odd, _b) = collect(&m, "zzz_new_type");
    let (msgs, _c) = collect(&m, "message");
    wait_for("open", 5000, || m.state() == State::Open).await;
    let url = format!("{base}/api/v1/events/{ch}");
    post(
        &url,
        json!({"type": "task", "object": {"id": 1, "status": "done"}}),
        Some(&token),
    )
    .await;
    post(
        &url,
        json!({"type": "zzz_new_type", "object": "hello"}),
        Some(&token),
    )
    .await;
    wait_for("both", 5000, || {
        !tasks.borrow().is_empty() && !odd.borrow().is_empty()
    })
    .await;
    let Message::Channel(w) = &*tasks.borrow()[0].message else {
        panic!()
    };
    assert_eq!(w.kind, WsMessageType::Task);
    assert_eq!(w.object["status"], "done");
    let Message::Channel(w) = &*odd.borrow()[0].message else {
        panic!()
    };
    assert_eq!(w.kind, WsMessageType::Other("zzz_new_type".into()));
    assert_eq!(
        msgs.borrow().len(),
        2,
        "unnamed events also reach `message`"
    );
    m.close();
}

#[wasm_bindgen_test]
async fn decode_failure_reaches_error_listeners_and_stream_goes_on() {
    let base = server();
    let ch = unique("project.");
    let token = dev_token(base, &unique("d"), &["project.*"], None).await;
    let url = format!("{base}/api/v1/events/{ch}");
    // Decode a channel with the team-answers decoder: `task` is not a team answers type.
    let m = Manager::connect(
        &url,
        quick().token(token.clone()).decoder(Decoder::TeamAnswers),
    )
    .unwrap();
    let (errs, _e) = errors(&m);
    let (all, _a) = collect(&m, "*");
    wait_for("open", 5000, || m.state() == State::Open).await;
    post(
        &url,
        json!({"type": "task", "object": {"id": 1}}),
        Some(&token),
    )
    .await;
    post(&url, json!({"type": "create", "object": {}}), Some(&token)).await;
    wait_for("decode errors", 5000, || {
        errs.borrow()
            .iter()
            .filter(|e| e.kind == ErrorKind::Decode)
            .count()
            == 2
    })
    .await;
    let e = errs
        .borrow()
        .iter()
        .find(|e| e.kind == ErrorKind::Decode)
        .cloned()
        .unwrap();
    assert!(e.message.contains("unknown message type"), "{}", e.message);
    assert!(e.raw.as_deref().unwrap().contains("\"task\""));
    assert_eq!(m.state(), State::Open, "the stream goes on");
    assert!(all.borrow().iter().all(|e| !e.raw.contains("\"task\"")));
    m.close();
}

#[wasm_bindgen_test]
async fn reconnect_resumes_missed_events_exactly_once() {
    let base = server();
    let m = Manager::connect(
        &format!("{base}/api/team-answers/sse/?t={}", unique("")),
        quick().decoder(Decoder::TeamAnswers),
    )
    .unwrap();
    let (creates, _a) = collect(&m, "create");
    let (st, _b) = states(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    let tag = unique("resume-");
    new_team_answer(base, &format!("{tag}-0")).await;
    wait_for("first", 5000, || creates.borrow().len() == 1).await;
    // Drop the connection, publish while disconnected, then let it reconnect.
    m.debug_fail_sse();
    assert_eq!(m.state(), State::Reconnecting);
    for i in 1..=5 {
        new_team_answer(base, &format!("{tag}-{i}")).await;
    }
    wait_for("replayed", 5000, || {
        creates
            .borrow()
            .iter()
            .filter(|e| e.raw.contains(&tag))
            .count()
            >= 6
    })
    .await;
    sleep(300).await;
    let names: Vec<String> = creates
        .borrow()
        .iter()
        .filter_map(|e| match &*e.message {
            Message::TeamAnswers(TeamAnswerMessage::Create { data, .. })
                if data.video_name.starts_with(&tag) =>
            {
                Some(data.video_name.clone())
            }
            _ => None,
        })
        .collect();
    let want: Vec<String> = (0..=5).map(|i| format!("{tag}-{i}")).collect();
    assert_eq!(names, want, "every missed event once, in order");
    let s = st.borrow().clone();
    assert!(
        s.windows(2)
            .any(|w| w == [State::Reconnecting, State::Open]),
        "{s:?}"
    );
    m.close();
}

#[wasm_bindgen_test]
async fn server_lag_close_is_resumed_without_loss() {
    let base = server();
    // A second server with a one-event subscriber queue: a burst makes it close slow streams.
    let laggy = laggy_server();
    let m = Manager::connect(&format!("{laggy}/api/team-answers/sse/"), quick()).unwrap();
    let (creates, _a) = collect(&m, "create");
    let (st, _b) = states(&m);
    wait_for("open", 5000, || m.state() == State::Open).await;
    let tag = unique("burst-");
    let n = 40;
    let posts: Vec<_> = (0..n)
        .map(|i| {
            let url = format!("{laggy}/api/team-answers/");
            let body = json!({"video_name": format!("{tag}-{i}"), "frame_index": i, "url": "u"});
            wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL))
                .then_post(url, body)
        })
        .collect();
    futures_join(posts).await;
    wait_for("all burst events", 15_000, || {
        creates
            .borrow()
            .iter()
            .filter(|e| e.raw.contains(&tag))
            .count()
            >= n
    })
    .await;
    sleep(500).await;
    let ids: Vec<u64> = creates
        .borrow()
        .iter()
        .filter(|e| e.raw.contains(&tag))
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), n, "no duplicates");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    let reconnects = st
        .borrow()
        .iter()
        .filter(|s| **s == State::Reconnecting)
        .count();
    web_sys::console::log_1(&format!("lag test: {reconnects} server-side drops resumed").into());
    let _ = base;
    m.close();
}

/// Fires a POST without awaiting it (used to make bursts).
trait ThenPost {
    fn then_post(
        self,
        url: String,
        body: Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
}

impl ThenPost for JsFuture {
    fn then_post(
        self,
        url: String,
        body: Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(async move {
            let _ = self.await;
            post(&url, body, None).await;
        })
    }
}

async fn futures_join(fs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>) {
    let done = Rc::new(RefCell::new(0usize));
    let n = fs.len();
    for f in fs {
        let d = done.clone();
        wasm_bindgen_futures::spawn_local(async move {
            f.await;
            *d.borrow_mut() += 1;
        });
    }
    wait_for("burst posts", 15_000, || *done.borrow() == n).await;
}

#[wasm_bindgen_test]
async fn falls_back_to_polling_when_sse_keeps_failing() {
    let base = server();
    // `poll=1` already in the stream URL: every SSE attempt gets JSON (wrong
    // content type), which the native EventSource gives up on for good.
    // The SDK backs off, then polls the same stream and delivers typed events.
    let url = format!("{base}/api/team-answers/sse/?poll=1&x={}", unique(""));
    let opts = Options::default()
        .backoff(
            BackoffOptions::default()
                .initial_ms(50)
                .max_ms(100)
                .max_attempts(2),
        )
        .poll_interval_ms(200)
        .decoder(Decoder::TeamAnswers)
        // Its SSE attempts never get the hello: the app says the server speaks Tidings.
        .protocol(Protocol::Tidings);
    let m = Manager::connect(&url, opts).unwrap();
    let (creates, _a) = collect(&m, "create");
    let (st, _b) = states(&m);
    let (errs, _c) = errors(&m);
    wait_for("polling", 5000, || m.state() == State::Polling).await;
    assert_eq!(
        errs.borrow()
            .iter()
            .filter(|e| e.kind == ErrorKind::Network)
            .count(),
        3,
        "initial + 2 attempts"
    );
    // The first poll adopts the head; then new events arrive by polling.
    sleep(400).await;
    let tag = unique("poll-");
    for i in 0..3 {
        new_team_answer(base, &format!("{tag}-{i}")).await;
    }
    wait_for("polled events", 5000, || {
        creates
            .borrow()
            .iter()
            .filter(|e| e.raw.contains(&tag))
            .count()
            == 3
    })
    .await;
    assert!(matches!(
        &*creates.borrow()[0].message,
        Message::TeamAnswers(TeamAnswerMessage::Create { .. })
    ));
    assert_eq!(
        st.borrow().as_slice(),
        [State::Connecting, State::Reconnecting, State::Polling]
    );
    m.close();
}

#[wasm_bindgen_test]
async fn polling_then_back_to_sse() {
    let base = server();
    let url = format!("{base}/api/team-answers/sse/?r={}", unique(""));
    let opts = Options::default()
        .backoff(
            BackoffOptions::default()
                .initial_ms(50)
                .max_ms(100)
                .max_attempts(1),
        )
        .poll_interval_ms(100)
        .retry_sse_every_ms(1500);
    let m = Manager::connect(&url, opts).unwrap();
    let (creates, _a) = collect(&m, "create");
    let (st, _b) = states(&m);
    // Make SSE fail twice in a row (attempt 1, then over the limit) → polling.
    // (Shared across tabs, the connection opens once this tab holds the lock.)
    wait_for("leadership", 2000, || m.tab_role() == "leader").await;
    // Polling is the fallback of a server that announced the Tidings protocol.
    wait_for("hello", 5000, || {
        m.state() == State::Open && m.speaks_tidings()
    })
    .await;
    m.debug_fail_sse();
    wait_for("retry", 2000, || m.state() == State::Reconnecting).await;
    wait_for("reconnect attempt", 2000, || {
        m.debug_fail_sse();
        m.state() == State::Polling
    })
    .await;
    sleep(300).await;
    let tag = unique("pb-");
    new_team_answer(base, &format!("{tag}-0")).await;
    wait_for("polled", 3000, || {
        creates.borrow().iter().any(|e| e.raw.contains(&tag))
    })
    .await;
    assert_eq!(m.state(), State::Polling);
    // The SSE probe (every 1.5 s) works against the real server: back to open.
    wait_for("open again", 5000, || m.state() == State::Open).await;
    new_team_answer(base, &format!("{tag}-1")).await;
    wait_for("live again", 3000, || {
        creates
            .borrow()
            .iter()
            .filter(|e| e.raw.contains(&tag))
            .count()
            == 2
    })
    .await;
    sleep(300).await;
    assert_eq!(
        creates
            .borrow()
            .iter()
            .filter(|e| e.raw.contains(&tag))
            .count(),
        2,
        "exactly once"
    );
    let s = st.borrow().clone();
    assert!(
        s.windows(2).any(|w| w == [State::Polling, State::Open]),
        "{s:?}"
    );
    m.close();
}

#[wasm_bindgen_test]
async fn singleton_and_listener_lifecycle() {
    let base = server();
    let url = format!("{base}/api/team-answers/sse/?s={}", unique(""));
    let a = Manager::connect(&url, Options::default()).unwrap();
    let b = Manager::connect(&url, Options::default().poll_interval_ms(1)).unwrap();
    assert!(a.ptr_eq(&b), "same URL and token → same manager");
    let c = Manager::connect(&url, Options::default().token("other-user")).unwrap();
    assert!(!a.ptr_eq(&c), "a different token never shares");
    c.close();
    // Relative URLs resolve against the page; the JS API returns the very same object.
    let j1 = tidings::js::connect(&url, None).unwrap();
    let j2 = tidings::js::connect(&url, Some(JsValue::UNDEFINED)).unwrap();
    assert!(js_sys::Object::is(&j1, &j2));
    assert_eq!(a.state(), State::Closed, "no listeners yet: not connected");
    let (st, _s) = states(&a);
    assert_eq!(
        st.borrow().as_slice(),
        [State::Closed],
        "called at once with the current state"
    );
    let (l1, s1) = collect(&a, "create");
    let (l2, s2) = collect(&b, "create");
    wait_for("open", 5000, || a.state() == State::Open).await;
    let tag = unique("life-");
    new_team_answer(base, &format!("{tag}-0")).await;
    wait_for("both listeners", 5000, || {
        l1.borrow().len() == 1 && l2.borrow().len() == 1
    })
    .await;
    drop(s1);
    new_team_answer(base, &format!("{tag}-1")).await;
    wait_for("second", 5000, || l2.borrow().len() == 2).await;
    assert_eq!(l1.borrow().len(), 1, "unsubscribed listener gets nothing");
    drop(s2);
    assert_eq!(a.state(), State::Closed, "last listener left → closed");
    // A new listener reopens and resumes.
    let (l3, _s3) = collect(&a, "create");
    wait_for("reopen", 5000, || a.state() == State::Open).await;
    new_team_answer(base, &format!("{tag}-2")).await;
    wait_for("third", 5000, || {
        l3.borrow()
            .iter()
            .any(|e| e.raw.contains(&format!("{tag}-2")))
    })
    .await;
    a.close();
    assert_eq!(a.state(), State::Closed);
    let d = Manager::connect(&url, Options::default()).unwrap();
    assert!(!d.ptr_eq(&a), "close() removes it from the registry");
    d.close();
}

#[wasm_bindgen_test]
async fn js_api_on_returns_unsubscribe_and_info() {
    let base = server();
    let url = format!("{base}/api/team-answers/sse/?j={}", unique(""));
    let m = tidings::js::connect(&url, None).unwrap();
    let got = Rc::new(RefCell::new(Vec::<(JsValue, JsValue)>::new()));
    let g = got.clone();
    let cb = wasm_bindgen::closure::Closure::<dyn Fn(JsValue, JsValue)>::new(move |msg, info| {
        g.borrow_mut().push((msg, info))
    });
    let on: js_sys::Function = js_sys::Reflect::get(&m, &"on".into())
        .unwrap()
        .unchecked_into();
    let off: js_sys::Function = on
        .call2(&m, &"create".into(), cb.as_ref())
        .unwrap()
        .unchecked_into();
    let state = || {
        js_sys::Reflect::get(&m, &"state".into())
            .unwrap()
            .as_string()
            .unwrap()
    };
    wait_for("open", 5000, || state() == "open").await;
    let tag = unique("js-");
    new_team_answer(base, &tag).await;
    wait_for("js event", 5000, || !got.borrow().is_empty()).await;
    let (msg, info) = got.borrow()[0].clone();
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).unwrap();
    assert_eq!(get(&msg, "type").as_string().as_deref(), Some("create"));
    assert_eq!(
        get(&get(&msg, "data"), "video_name").as_string(),
        Some(tag.clone())
    );
    assert_eq!(get(&info, "type").as_string().as_deref(), Some("create"));
    assert!(get(&info, "id").as_string().is_some());
    assert!(get(&info, "raw").as_string().unwrap().contains(&tag));
    assert_eq!(
        get(&m, "lastEventId").as_string(),
        get(&info, "id").as_string()
    );
    off.call0(&JsValue::NULL).unwrap();
    assert_eq!(state(), "closed");
    off.call0(&JsValue::NULL).unwrap(); // idempotent
    let close: js_sys::Function = get(&m, "close").unchecked_into();
    close.call0(&m).unwrap();
}

#[wasm_bindgen_test]
async fn online_event_retries_at_once() {
    let base = server();
    let url = format!("{base}/api/team-answers/sse/?o={}", unique(""));
    // A long backoff: only the `online` event can bring it back within the test.
    let opts =
        Options::default().backoff(BackoffOptions::default().initial_ms(60_000).max_ms(60_000));
    let m = Manager::connect(&url, opts).unwrap();
    let (_l, _s) = collect(&m, "create");
    wait_for("open", 5000, || m.state() == State::Open).await;
    // Unproven connection + 60 s ceiling; full jitter may still pick a short delay,
    // so fail until the reconnect is clearly pending.
    m.debug_fail_sse();
    assert_eq!(m.state(), State::Reconnecting);
    let window = web_sys::window().unwrap();
    let ev = web_sys::Event::new("online").unwrap();
    window.dispatch_event(&ev).unwrap();
    wait_for("open after online", 3000, || m.state() == State::Open).await;
    m.close();
}

#[wasm_bindgen_test]
fn bad_options_and_urls_are_errors() {
    let opts = js_sys::JSON::parse(r#"{"decoder":"nope"}"#).unwrap();
    assert!(tidings::js::connect("http://127.0.0.1:1/x", Some(opts)).is_err());
    assert!(Manager::connect("http://[::1", Options::default()).is_err());
    let ok = js_sys::JSON::parse(r#"{"backoff":{"maxAttempts":1},"getToken":null,"unknown":1}"#)
        .unwrap();
    assert!(tidings::js::connect("http://127.0.0.1:1/y", Some(ok)).is_ok());
}
