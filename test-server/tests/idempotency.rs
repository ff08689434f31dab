//! `Idempotency-Key` against a real server over HTTP, with a real SQLite file: every write
//! endpoint answers a retry with its first answer and publishes nothing again; concurrent
//! retries run once; the record survives a restart; a different body is refused (422).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Call, TestServer};
use serde_json::{json, Value};

const CHANNEL: &str = "/api/v1/events/room";

/// Status, body and whether the answer was replayed.
async fn send(req: reqwest::RequestBuilder) -> (u16, Value, bool) {
    let r = req.call().await;
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, replayed)
}

/// Every history event of a stream, through its polling form.
async fn history(s: &TestServer, stream: &str, token: Option<&str>) -> Vec<Value> {
    let sep = if stream.contains('?') { '&' } else { '?' };
    let v = s
        .poll(&format!("{stream}{sep}poll=1&lastEventId=0"), token)
        .await;
    v["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_retried_publish_gets_the_first_answer_and_publishes_once() {
    let s = common::start(&[]).await;
    let token = s.token("alice", &["room"]).await;
    let publish = |key: &str, n: u64| {
        s.post(CHANNEL)
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"type": "data", "object": {"n": n}}))
    };
    let first = send(publish("k1", 1)).await;
    assert_eq!((first.0, first.2), (200, false), "{first:?}");
    let again = send(publish("k1", 1)).await;
    assert_eq!(again.0, first.0);
    assert_eq!(again.1, first.1, "the same body, with the same event id");
    assert!(again.2, "a replay says so in Idempotent-Replayed");
    // A new key is a new publish.
    let other = send(publish("k2", 2)).await;
    assert_ne!(other.1["id"], first.1["id"]);
    let events = history(&s, CHANNEL, Some(&token)).await;
    assert_eq!(events.len(), 2, "{events:?}");
    // The same key with another body: 422, nothing published.
    let (status, body, _) = send(publish("k1", 3)).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("Idempotency-Key"),
        "{body}"
    );
    assert_eq!(history(&s, CHANNEL, Some(&token)).await.len(), 2);
    // Bad keys are refused before anything runs.
    let (status, _, _) = send(publish("has space", 4)).await;
    assert_eq!(status, 422);
    let (status, _, _) = send(publish(&"k".repeat(256), 4)).await;
    assert_eq!(status, 422);
    assert_eq!(history(&s, CHANNEL, Some(&token)).await.len(), 2);
    let stats = s.stats().await;
    assert_eq!(stats["idempotency"]["replays"], 1, "{stats}");
    assert_eq!(stats["idempotency"]["mismatches"], 1, "{stats}");
    s.stop().await;
}

#[tokio::test]
async fn concurrent_retries_run_once_and_all_get_the_first_answer() {
    let s = common::start(&[]).await;
    let token = s.token("alice", &["room"]).await;
    let tries = (0..12).map(|_| {
        send(
            s.post(CHANNEL)
                .bearer_auth(&token)
                .header("idempotency-key", "same")
                .json(&json!({"type": "data", "object": {"n": 1}})),
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    for a in &answers {
        assert_eq!((a.0, &a.1), (answers[0].0, &answers[0].1), "{answers:?}");
    }
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers.iter().filter(|a| !a.2).count(), 1, "one ran");
    assert_eq!(history(&s, CHANNEL, Some(&token)).await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn keys_are_per_caller_and_per_route() {
    let s = common::start(&[]).await;
    let alice = s.token("alice", &["room", "hall"]).await;
    let bob = s.token("bob", &["room"]).await;
    let publish = |token: &str, path: &str| {
        s.post(path)
            .bearer_auth(token)
            .header("idempotency-key", "k")
            .json(&json!({"type": "data", "object": {"n": 1}}))
    };
    let a = send(publish(&alice, CHANNEL)).await;
    let b = send(publish(&bob, CHANNEL)).await;
    let h = send(publish(&alice, "/api/v1/events/hall")).await;
    assert!(
        !a.2 && !b.2 && !h.2,
        "three callers/routes, three publishes"
    );
    assert_eq!(history(&s, CHANNEL, Some(&alice)).await.len(), 2);
    assert_eq!(
        history(&s, "/api/v1/events/hall", Some(&alice)).await.len(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn every_write_endpoint_answers_a_retry_without_a_second_event() {
    let s = common::start(&[]).await;
    let alice = s.token("alice", &[]).await;
    let key = |name: &str| format!("key-{name}");
    // Each write twice with one key: same status and body, the second replayed.
    async fn twice(name: &str, make: impl Fn() -> reqwest::RequestBuilder) -> Value {
        let first = send(make().header("idempotency-key", name)).await;
        let second = send(make().header("idempotency-key", name)).await;
        assert!(first.0 < 300, "{name}: {first:?}");
        assert_eq!((first.0, &first.1), (second.0, &second.1), "{name}");
        assert!(!first.2 && second.2, "{name}: {first:?} {second:?}");
        first.1
    }
    let row = twice(&key("ta-create"), || {
        s.post("/api/team-answers/")
            .json(&json!({"video_name": "v", "frame_index": 1, "url": "u"}))
    })
    .await;
    let id = row["id"].as_i64().unwrap();
    twice(&key("ta-create-2"), || {
        s.post("/api/team-answers/")
            .json(&json!({"video_name": "w", "frame_index": 2, "url": "u"}))
    })
    .await;
    twice(&key("ta-delete"), || {
        s.delete(&format!("/api/team-answers/{id}/"))
    })
    .await;
    twice(&key("ta-delete-all"), || {
        s.delete("/api/team-answers/delete-all/")
    })
    .await;
    let ta = history(&s, "/api/team-answers/sse/", None).await;
    assert_eq!(ta.len(), 4, "2 creates, 2 deletes: {ta:?}");

    let n = twice(&key("trigger"), || {
        s.post("/api/notifications/trigger/")
            .json(&json!({"user_id": "alice", "title": "t", "message": "m"}))
    })
    .await;
    let nid = n["notification"]["id"].as_i64().unwrap();
    twice(&key("trigger-2"), || {
        s.post("/api/notifications/trigger/")
            .json(&json!({"user_id": "alice", "title": "u", "message": "m"}))
    })
    .await;
    twice(&key("read"), || {
        s.post(&format!("/api/notifications/{nid}/read/"))
            .bearer_auth(&alice)
    })
    .await;
    twice(&key("read-all"), || {
        s.post("/api/notifications/read-all/").bearer_auth(&alice)
    })
    .await;
    twice(&key("n-delete"), || {
        s.delete(&format!("/api/notifications/{nid}/"))
            .bearer_auth(&alice)
    })
    .await;
    let notes = history(&s, "/api/notifications/stream", Some(&alice)).await;
    // trigger ×2 (new + count each), read, read-all, delete (deleted + count).
    assert_eq!(notes.len(), 8, "{notes:?}");

    let job = twice(&key("video"), || {
        s.post("/api/chat/create-video")
            .json(&json!({"prompt": "p", "steps": 1}))
    })
    .await;
    assert!(job["job_id"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn the_record_survives_a_restart_on_the_same_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start_in(dir.path(), &[]).await;
    let token = s.token("alice", &["room"]).await;
    let publish = |s: &TestServer| {
        s.post(CHANNEL)
            .bearer_auth(&token)
            .header("idempotency-key", "restart")
            .json(&json!({"type": "data", "object": {"n": 1}}))
    };
    let first = send(publish(&s)).await;
    s.stop().await;
    let s = common::start_in(dir.path(), &[]).await;
    let again = send(publish(&s)).await;
    assert_eq!((again.0, &again.1, again.2), (first.0, &first.1, true));
    assert_eq!(history(&s, CHANNEL, Some(&token)).await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_key_is_forgotten_after_the_configured_time() {
    let s = common::start(&["--idempotency-ttl-secs", "0.3"]).await;
    let token = s.token("alice", &["room"]).await;
    let publish = || {
        s.post(CHANNEL)
            .bearer_auth(&token)
            .header("idempotency-key", "short")
            .json(&json!({"type": "data", "object": {"n": 1}}))
    };
    let first = send(publish()).await;
    assert!(send(publish()).await.2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = send(publish()).await;
    assert!(!later.2);
    assert_ne!(later.1["id"], first.1["id"]);
    assert_eq!(history(&s, CHANNEL, Some(&token)).await.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn failures_that_say_nothing_about_the_request_are_not_remembered() {
    let s = common::start(&[]).await;
    // 401 (no token) is not remembered: the same key with a token then publishes.
    let publish = |token: Option<&str>| {
        let mut r = s
            .post(CHANNEL)
            .header("idempotency-key", "auth")
            .json(&json!({"type": "data", "object": {"n": 1}}));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    };
    assert_eq!(send(publish(None)).await.0, 401);
    let token = s.token("alice", &["room"]).await;
    let ok = send(publish(Some(&token))).await;
    assert_eq!((ok.0, ok.2), (200, false));
    // A 422 from the handler is an answer about the request: remembered.
    let bad = || {
        s.post(CHANNEL)
            .bearer_auth(&token)
            .header("idempotency-key", "bad")
            .json(&json!({"type": "", "object": {}}))
    };
    assert_eq!(send(bad()).await.0, 422);
    let again = send(bad()).await;
    assert_eq!((again.0, again.2), (422, true));
    s.stop().await;
}

#[tokio::test]
async fn a_publish_whose_answer_was_lost_in_a_crash_is_not_stored_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start_in(dir.path(), &[]).await;
    let alice = s.token("alice", &["room"]).await;
    let keyed = |s: &TestServer| {
        s.post(CHANNEL)
            .bearer_auth(&alice)
            .header("idempotency-key", "crash")
            .json(&json!({"type": "data", "object": {"n": 1}}))
    };
    let first = send(keyed(&s)).await;
    // A trigger publishes twice (the notification, then the unread count).
    let trigger = || {
        s.post("/api/notifications/trigger/")
            .header("idempotency-key", "crash-trigger")
            .json(&json!({"user_id": "alice", "title": "t", "message": "m"}))
    };
    assert_eq!(send(trigger()).await.0, 201);
    s.stop().await;
    // As when the process is killed after storing the events and before recording the
    // answers: the records are gone, so the retries run again.
    let db = rusqlite::Connection::open(dir.path().join("tidings.db")).unwrap();
    assert_eq!(db.execute("DELETE FROM idempotency", []).unwrap(), 2);
    drop(db);
    let s = common::start_in(dir.path(), &[]).await;
    let again = send(keyed(&s)).await;
    assert!(!again.2, "it ran again");
    assert_eq!(
        (again.0, &again.1),
        (first.0, &first.1),
        "with the same event id"
    );
    assert_eq!(history(&s, CHANNEL, Some(&alice)).await.len(), 1);
    assert_eq!(
        history(&s, "/api/notifications/stream", Some(&alice))
            .await
            .len(),
        2,
        "the trigger's two events, once"
    );
    s.stop().await;
}
