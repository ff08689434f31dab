//! The `--dev` fault hooks (`/api/dev/drop`, `/api/dev/fail`, `/api/dev/stall`)
//! against a real server over real HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{start, Call, TestServer, T};
use serde_json::{json, Value};

async fn publish(s: &TestServer, token: &str, n: u64) {
    let r = s
        .post("/api/v1/events/test")
        .bearer_auth(token)
        .json(&json!({"type": "task", "object": {"n": n}}))
        .call()
        .await;
    assert_eq!(r.status(), 200);
}

async fn hook(s: &TestServer, name: &str, body: Value) -> (u16, Value) {
    let r = s.post(&format!("/api/dev/{name}")).json(&body).call().await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn drop_closes_only_that_stream_and_resume_replays() {
    let s = start(&[]).await;
    let token = s.token("dev", &["*"]).await;
    let mut a = s.sse("/api/v1/events/test", None, None).await;
    let mut b = s.sse("/api/v1/events/test", None, None).await;
    let mut other = s.sse("/api/team-answers/sse/", None, None).await;
    assert_eq!(
        a.next(T).await.unwrap().data,
        r#"{"type":"test","message":"SSE endpoint working"}"#
    );
    b.next(T).await.unwrap();
    other.next(T).await.unwrap();
    publish(&s, &token, 1).await;
    let first = a.next(T).await.unwrap();
    b.next(T).await.unwrap();

    let (status, body) = hook(&s, "drop", json!({"stream": "channel/test"})).await;
    assert_eq!((status, body["connections"].as_u64()), (200, Some(2)));
    let t0 = Instant::now();
    assert!(a.next(T).await.is_none() && a.closed, "dropped stream ends");
    assert!(b.next(T).await.is_none() && b.closed);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "dropped at once: {:?}",
        t0.elapsed()
    );
    // Another stream is untouched.
    assert!(other.next(Duration::from_millis(300)).await.is_none());
    assert!(!other.closed);

    // What was published meanwhile comes back on resume.
    publish(&s, &token, 2).await;
    let mut again = s
        .sse("/api/v1/events/test", first.id.as_deref(), None)
        .await;
    let ev = again.next_non_heartbeat(T).await.unwrap();
    let ev = if ev.id.is_none() {
        again.next_non_heartbeat(T).await.unwrap()
    } else {
        ev
    };
    assert_eq!(ev.json()["object"]["n"], 2);
    assert_eq!(ev.id_num(), first.id_num() + 1);
    s.stop().await;
}

#[tokio::test]
async fn fail_answers_the_next_n_sse_requests_then_streams() {
    let s = start(&[]).await;
    let (status, _) = hook(
        &s,
        "fail",
        json!({"stream": "team-answers", "status": 503, "count": 2}),
    )
    .await;
    assert_eq!(status, 200);
    // Polling is not affected.
    let p = s.poll("/api/team-answers/sse/?poll=1", None).await;
    assert!(p["events"].is_array());
    for _ in 0..2 {
        let r = s.get("/api/team-answers/sse/").call().await;
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("503"));
    }
    let mut ok = s.sse("/api/team-answers/sse/", None, None).await;
    assert!(ok.next(T).await.is_some());

    hook(&s, "fail", json!({"stream": "team-answers", "status": 204})).await;
    let r = s.get("/api/team-answers/sse/").call().await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    hook(
        &s,
        "fail",
        json!({"stream": "channel/test", "status": 401, "count": 1}),
    )
    .await;
    assert_eq!(s.get("/api/v1/events/test").status_code().await, 401);
    assert_eq!(
        s.get("/api/team-answers/sse/").status_code().await,
        200,
        "other streams unaffected"
    );
    s.stop().await;
}

#[tokio::test]
async fn fail_sends_retry_after_when_asked_and_cors_exposes_it() {
    let s = start(&[]).await;
    let (status, _) = hook(
        &s,
        "fail",
        json!({"stream": "team-answers", "status": 429, "count": 1, "retry_after": "7"}),
    )
    .await;
    assert_eq!(status, 200);
    // A cross-origin page (the SDK's browser tests) may read it: exposed by CORS.
    let r = s
        .get("/api/team-answers/sse/")
        .header("origin", "http://127.0.0.1:9")
        .call()
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");
    let (status, body) = hook(
        &s,
        "fail",
        json!({"stream": "team-answers", "status": 503, "retry_after": "a\nb"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn stall_holds_everything_back_without_closing() {
    let s = start(&[]).await;
    let token = s.token("dev", &["*"]).await;
    let mut sse = s.sse("/api/v1/events/test", None, None).await;
    sse.next(T).await.unwrap();
    let (status, body) = hook(&s, "stall", json!({"stream": "channel/test", "secs": 1.0})).await;
    assert_eq!((status, body["connections"].as_u64()), (200, Some(1)));
    let t0 = Instant::now();
    publish(&s, &token, 7).await;
    // Nothing arrives during the stall, and the connection stays open.
    assert!(sse.next(Duration::from_millis(700)).await.is_none());
    assert!(!sse.closed);
    // A connection opened during the stall is not stalled.
    let mut fresh = s.sse("/api/v1/events/test", None, None).await;
    assert!(fresh.next(Duration::from_millis(300)).await.is_some());
    // Then the held-back event arrives on the same connection.
    let ev = sse.next_non_heartbeat(T).await.unwrap();
    assert_eq!(ev.json()["object"]["n"], 7);
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    // secs 0 ends a stall at once.
    hook(&s, "stall", json!({"stream": "channel/test", "secs": 30})).await;
    hook(&s, "stall", json!({"stream": "channel/test", "secs": 0})).await;
    publish(&s, &token, 8).await;
    assert_eq!(
        sse.next_non_heartbeat(Duration::from_secs(2))
            .await
            .unwrap()
            .json()["object"]["n"],
        8
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_hook_bodies_are_422_and_hooks_need_dev() {
    let s = start(&[]).await;
    for (name, body) in [
        ("fail", json!({"stream": "team-answers", "status": 200})),
        (
            "fail",
            json!({"stream": "team-answers", "status": 503, "count": 0}),
        ),
        ("fail", json!({"stream": "", "status": 503})),
        ("stall", json!({"stream": "team-answers", "secs": -1})),
        ("stall", json!({"stream": "team-answers", "secs": 601})),
        ("drop", json!({"stream": "team-answers", "extra": 1})),
        ("drop", json!({})),
    ] {
        let (status, body) = hook(&s, name, body).await;
        assert_eq!(status, 422, "{name}: {body}");
        assert!(body["error"].is_string());
    }
    s.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let config = <tidings_server::Config as clap::Parser>::try_parse_from([
        "tidings-server",
        "--addr",
        "127.0.0.1:0",
        "--jwt-secret",
        "0123456789abcdef0123456789abcdef",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let server = tidings_server::Server::bind(config).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let shutdown = server.shutdown_token();
    let handle = tokio::spawn(server.run());
    let r = common::client()
        .post(format!("{url}/api/dev/drop"))
        .json(&json!({"stream": "team-answers"}))
        .call()
        .await;
    assert_eq!(r.status(), 404);
    shutdown.cancel();
    handle.await.unwrap().unwrap();
}
