//! Every seed endpoint over real HTTP, with each seed's exact message shapes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{start, Call, T};
use serde_json::{json, Value};

#[tokio::test]
async fn team_answers_crud_and_seed_000_messages() {
    let s = start(&[]).await;
    let mut sse = s.sse("/api/team-answers/sse/", None, None).await;
    let hello = sse.next(T).await.unwrap();
    assert_eq!(
        hello.id.as_deref(),
        Some("0"),
        "a fresh connection's greeting carries the head id"
    );
    let j = hello.json();
    assert_eq!(j["type"], "connected");
    assert_eq!(j["message"], "Connected to team answers real-time updates");
    assert!(j["timestamp"].as_str().unwrap().ends_with('Z'));

    let body = json!({"video_name": "video.mp4", "frame_index": 100, "url": "http://example.com/frame.jpg", "qa": "Q/A", "query_index": 1, "round": "prelims"});
    let res = s.post("/api/team-answers/").json(&body).call().await;
    assert_eq!(res.status(), 201);
    let row: Value = res.json().await.unwrap();
    let id = row["id"].as_i64().unwrap();
    for k in [
        "video_name",
        "frame_index",
        "url",
        "qa",
        "query_index",
        "round",
    ] {
        assert_eq!(row[k], body[k], "{k}");
    }
    let ev = sse.next_non_heartbeat(T).await.unwrap();
    assert_eq!(ev.id.as_deref(), Some("1"));
    assert_eq!(ev.event, "message", "seed 000 events are unnamed");
    let m = ev.json();
    assert_eq!(m["type"], "create");
    assert_eq!(m["data"], row);
    assert_eq!(
        m.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["type", "data", "timestamp"]
    );

    let list: Vec<Value> = s.get("/api/team-answers/").read_json().await;
    assert_eq!(list, vec![row.clone()]);

    let res = s.delete(&format!("/api/team-answers/{id}/")).call().await;
    assert_eq!(res.status(), 200);
    let m = sse.next_non_heartbeat(T).await.unwrap().json();
    assert_eq!(m["type"], "delete");
    assert_eq!(m["data"], json!([id]));

    assert_eq!(
        s.delete(&format!("/api/team-answers/{id}/"))
            .status_code()
            .await,
        404
    );
    assert_eq!(s.delete("/api/team-answers/abc/").status_code().await, 422);

    for _ in 0..2 {
        s.post("/api/team-answers/").json(&body).call().await;
    }
    let ids: Vec<i64> = (0..2).map(|_| 0).collect();
    assert_eq!(ids.len(), 2);
    let a = sse.next_non_heartbeat(T).await.unwrap().json()["data"]["id"].clone();
    let b = sse.next_non_heartbeat(T).await.unwrap().json()["data"]["id"].clone();
    let res: Value = s.delete("/api/team-answers/delete-all/").read_json().await;
    assert_eq!(res["deleted"], json!([a, b]));
    let m = sse.next_non_heartbeat(T).await.unwrap();
    assert_eq!(m.json()["type"], "delete");
    assert_eq!(
        m.json()["data"],
        json!([a, b]),
        "bulk delete carries the id array"
    );
    assert_eq!(m.id.as_deref(), Some("5"));
    s.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_422_naming_the_field_and_413_over_the_limit() {
    let s = start(&["--max-body-bytes", "1024"]).await;
    let r = s
        .post("/api/team-answers/")
        .json(&json!({"video_name": "v", "url": "u"}))
        .call()
        .await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("frame_index"), "{e}");
    let r = s
        .post("/api/team-answers/")
        .json(&json!({"video_name": "v", "url": "u", "frame_index": "x"}))
        .call()
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("frame_index"));
    let r = s.post("/api/team-answers/").body("{not json").call().await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().starts_with("{\"error\":"));
    let big = json!({"video_name": "x".repeat(4096), "frame_index": 1, "url": "u"});
    let r = s.post("/api/team-answers/").json(&big).call().await;
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("1024"));
    let r = s.get("/nope").call().await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // nothing was stored by the failed requests
    let list: Vec<Value> = s.get("/api/team-answers/").read_json().await;
    assert!(list.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn a_query_parameter_given_twice_is_422_naming_it() {
    let s = start(&[]).await;
    for (path, name) in [
        ("/api/notifications/?token=a&token=b", "token"),
        ("/api/team-answers/sse/?poll=1&poll=1", "poll"),
        (
            "/api/v1/events/test?lastEventId=1&lastEventId=2",
            "lastEventId",
        ),
    ] {
        let res = s.get(path).call().await;
        assert_eq!(res.status(), 422, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["error"],
            format!("query: duplicate field `{name}`"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn notifications_seed_001_004_events_and_user_isolation() {
    let s = start(&[]).await;
    let alice = s.token("alice", &[]).await;
    let bob = s.token("bob", &[]).await;
    // a notification before connecting, to see the snapshot count
    let r = s
        .post("/api/notifications/trigger/")
        .json(&json!({"user_id": "alice", "title": "t0", "message": "m0", "type": "info"}))
        .call()
        .await;
    assert_eq!(r.status(), 201);

    let mut a = s
        .sse(
            &format!("/api/notifications/stream?token={alice}"),
            None,
            None,
        )
        .await;
    let mut b = s.sse("/api/notifications/stream", None, Some(&bob)).await;
    let c = a.next(T).await.unwrap();
    assert_eq!(
        (c.event.as_str(), c.id.as_deref()),
        ("connected", Some("2")),
        "fresh: the greeting carries the head id"
    );
    assert_eq!(c.json()["user_id"], "alice");
    let u = a.next(T).await.unwrap();
    assert_eq!((u.event.as_str(), u.id.clone()), ("unread_count", None));
    assert_eq!(u.json(), json!({"count": 1}));
    assert_eq!(b.next(T).await.unwrap().event, "connected");
    assert_eq!(b.next(T).await.unwrap().json(), json!({"count": 0}));

    // seed 001 sends user_id as a number; bob's stream must see nothing of alice's
    let r: Value = s.post("/api/notifications/trigger/").json(&json!({"user_id": "alice", "title": "Test SSE", "message": "Real-time works!", "type": "info"})).read_json().await;
    let nid = r["notification"]["id"].as_i64().unwrap();
    let n = a.next_non_heartbeat(T).await.unwrap();
    assert_eq!(n.event, "new_notification");
    assert_eq!(
        n.id.as_deref(),
        Some("3"),
        "ids 1-2 came from the first trigger"
    );
    let nj = n.json();
    assert_eq!(
        (
            nj["title"].as_str(),
            nj["message"].as_str(),
            nj["type"].as_str(),
            nj["read"].as_bool()
        ),
        (
            Some("Test SSE"),
            Some("Real-time works!"),
            Some("info"),
            Some(false)
        )
    );
    let u = a.next_non_heartbeat(T).await.unwrap();
    assert_eq!(
        (u.event.as_str(), u.json()),
        ("unread_count", json!({"count": 2}))
    );

    let r = s
        .post("/api/notifications/trigger/")
        .json(&json!({"user_id": 1, "title": "numeric", "message": "m", "type": "info"}))
        .call()
        .await;
    assert_eq!(r.status(), 201);
    assert!(
        b.next_non_heartbeat(Duration::from_millis(300))
            .await
            .is_none(),
        "bob sees nothing of alice or user 1"
    );

    // list is per user
    let list: Value = s
        .get("/api/notifications/")
        .bearer_auth(&alice)
        .read_json()
        .await;
    assert_eq!(list["notifications"].as_array().unwrap().len(), 2);
    assert_eq!(list["unread_count"], 2);
    let list: Value = s
        .get("/api/notifications/")
        .bearer_auth(&bob)
        .read_json()
        .await;
    assert_eq!(list["notifications"].as_array().unwrap().len(), 0);

    // bob cannot touch alice's notification
    assert_eq!(
        s.post(&format!("/api/notifications/{nid}/read/"))
            .bearer_auth(&bob)
            .status_code()
            .await,
        404
    );
    assert_eq!(
        s.delete(&format!("/api/notifications/{nid}/"))
            .bearer_auth(&bob)
            .status_code()
            .await,
        404
    );

    let r = s
        .post(&format!("/api/notifications/{nid}/read/"))
        .bearer_auth(&alice)
        .call()
        .await;
    assert_eq!(r.status(), 200);
    let u = a.next_non_heartbeat(T).await.unwrap();
    assert_eq!(
        (u.event.as_str(), u.json()),
        ("unread_count", json!({"count": 1}))
    );

    let r = s
        .post("/api/notifications/read-all/")
        .bearer_auth(&alice)
        .call()
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        a.next_non_heartbeat(T).await.unwrap().json(),
        json!({"count": 0})
    );

    let r = s
        .delete(&format!("/api/notifications/{nid}/"))
        .bearer_auth(&alice)
        .call()
        .await;
    assert_eq!(r.status(), 200);
    let d = a.next_non_heartbeat(T).await.unwrap();
    assert_eq!(
        (d.event.as_str(), d.json()),
        ("notification_deleted", json!({"id": nid}))
    );
    assert_eq!(a.next_non_heartbeat(T).await.unwrap().event, "unread_count");
    assert_eq!(
        s.delete(&format!("/api/notifications/{nid}/"))
            .bearer_auth(&alice)
            .status_code()
            .await,
        404
    );

    // cookie token works too
    let r = s
        .get("/api/notifications/")
        .header("cookie", format!("tidings_token={bob}"))
        .call()
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn auth_errors_401_403_429() {
    let s = start(&["--max-connections-per-user", "2"]).await;
    assert_eq!(s.get("/api/notifications/stream").status_code().await, 401);
    let r = s
        .get("/api/notifications/stream?token=garbage")
        .call()
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // expired / wrong secret
    let other = tidings_server::auth::Auth::new("not-the-secret");
    let far = tidings_server::time::now_unix() as u64 + 600;
    let foreign = other
        .sign(&tidings_server::auth::Claims {
            sub: "alice".into(),
            channels: vec![],
            exp: far,
        })
        .unwrap();
    assert_eq!(
        s.get("/api/notifications/")
            .bearer_auth(&foreign)
            .status_code()
            .await,
        401
    );
    let expired = s
        .state
        .auth
        .sign(&tidings_server::auth::Claims {
            sub: "alice".into(),
            channels: vec![],
            exp: 1000,
        })
        .unwrap();
    let r = s
        .get("/api/notifications/")
        .bearer_auth(&expired)
        .call()
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "token expired");

    let t = s.token("carol", &["project.1"]).await;
    assert_eq!(
        s.get("/api/v1/events/project.2")
            .bearer_auth(&t)
            .status_code()
            .await,
        403
    );
    assert_eq!(s.get("/api/v1/events/project.2").status_code().await, 401);
    let _a = s.sse("/api/v1/events/project.1", None, Some(&t)).await;
    let _b = s
        .sse(&format!("/api/notifications/stream?token={t}"), None, None)
        .await;
    let r = s
        .get("/api/v1/events/project.1")
        .bearer_auth(&t)
        .call()
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("limit 2"));
    let st = s.stats().await;
    assert_eq!(st["connections"]["by_user"]["carol"], 2);
    assert_eq!(st["connections"]["total"], 2);
    drop(_a);
    // the slot is freed once the server notices the closed connection
    let mut ok = false;
    for _ in 0..50 {
        if s.stats().await["connections"]["by_user"]["carol"] == 1 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "closed connection is unregistered");
    s.stop().await;
}

#[tokio::test]
async fn channels_seed_003_wsmessage_test_channel_and_publish_auth() {
    let s = start(&[]).await;
    let mut test = s.sse("/api/v1/events/test", None, None).await;
    let g = test.next(T).await.unwrap();
    assert_eq!(
        (g.event.as_str(), g.id.as_deref(), g.data.as_str()),
        (
            "message",
            Some("0"),
            r#"{"type":"test","message":"SSE endpoint working"}"#
        )
    );

    let t = s.token("dave", &["project.*", "test"]).await;
    let mut p = s.sse("/api/v1/events/project.42", None, Some(&t)).await;
    let hello = p.next(T).await.unwrap();
    assert_eq!(
        (hello.event.as_str(), hello.id.as_deref()),
        ("connected", Some("0")),
        "named greeting with the head id"
    );
    let msg = json!({"type": "render_progress", "object": {"progress": 40}});
    let r = s
        .post("/api/v1/events/project.42")
        .bearer_auth(&t)
        .json(&msg)
        .call()
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "1");
    let e = p.next_non_heartbeat(T).await.unwrap();
    assert_eq!((e.event.as_str(), e.id.as_deref()), ("message", Some("1")));
    assert_eq!(
        e.data,
        r#"{"type":"render_progress","object":{"progress":40}}"#
    );
    // unknown types and string objects pass through untouched
    let odd = json!({"type": "brand_new_kind", "object": "just a string"});
    s.post("/api/v1/events/project.42")
        .bearer_auth(&t)
        .json(&odd)
        .call()
        .await;
    assert_eq!(p.next_non_heartbeat(T).await.unwrap().json(), odd);
    // publishing to test is allowed by the claim, and the test channel stream sees it
    s.post("/api/v1/events/test")
        .bearer_auth(&t)
        .json(&msg)
        .call()
        .await;
    assert_eq!(test.next_non_heartbeat(T).await.unwrap().json(), msg);

    let nobody = s.token("erin", &["file.*"]).await;
    assert_eq!(
        s.post("/api/v1/events/project.42")
            .bearer_auth(&nobody)
            .json(&msg)
            .status_code()
            .await,
        403
    );
    assert_eq!(
        s.post("/api/v1/events/project.42")
            .json(&msg)
            .status_code()
            .await,
        401
    );
    let r = s
        .post("/api/v1/events/project.42")
        .bearer_auth(&t)
        .json(&json!({"object": {}}))
        .call()
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("type"));
    let r = s
        .post("/api/v1/events/project.42")
        .bearer_auth(&t)
        .json(&json!({"type": "x", "object": 5}))
        .call()
        .await;
    assert_eq!(r.status(), 422);
    // control characters in a channel name are refused
    assert_eq!(
        s.get("/api/v1/events/bad%01name")
            .bearer_auth(&t)
            .status_code()
            .await,
        422
    );
    assert_eq!(s.get("/api/v1/events/a%0Ab").status_code().await, 422);
    s.stop().await;
}

#[tokio::test]
async fn video_progress_seed_002_completes_and_ends() {
    let s = start(&["--video-step-ms", "30"]).await;
    let id = s
        .create_video(json!({"prompt": "a cat video", "steps": 3}))
        .await;
    let mut v = s
        .sse(&format!("/api/video-progress/{id}"), None, None)
        .await;
    let events = v.drain(T).await;
    assert!(v.closed, "finite stream closes");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.event.as_str())
        .filter(|n| *n != "heartbeat")
        .collect();
    assert_eq!(
        names,
        vec![
            "progress",
            "progress",
            "progress",
            "progress",
            "progress",
            "progress",
            "completed",
            "end"
        ]
    );
    let ids: Vec<u64> = events
        .iter()
        .filter(|e| e.id.is_some())
        .map(|e| e.id_num())
        .collect();
    assert_eq!(ids, (1..=7).collect::<Vec<_>>());
    let first = events[0].json();
    assert_eq!(
        (
            first["step"].as_str(),
            first["step_index"].as_i64(),
            first["total_steps"].as_i64()
        ),
        (Some("script"), Some(1), Some(3))
    );
    for k in [
        "percent",
        "message",
        "step_started_at",
        "timestamp",
        "job_id",
    ] {
        assert!(!first[k].is_null(), "{k}");
    }
    let done = events
        .iter()
        .find(|e| e.event == "completed")
        .unwrap()
        .json();
    assert_eq!(done["video_url"], format!("/videos/{id}.mp4"));
    assert_eq!(done["percent"], 100);
    let end = events.last().unwrap();
    assert_eq!(
        (end.id.clone(), end.json()),
        (None, json!({"reason": "completed"}))
    );

    let st: Value = s
        .get(&format!("/api/video-progress/{id}/status"))
        .read_json()
        .await;
    assert_eq!(
        (st["status"].as_str(), st["percent"].as_i64()),
        (Some("completed"), Some(100))
    );

    // reconnecting to an ended stream replays after the id, sends end again and closes
    let mut again = s
        .sse(&format!("/api/video-progress/{id}"), Some("5"), None)
        .await;
    let rest = again.drain(T).await;
    assert_eq!(
        rest.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        vec!["progress", "completed", "end"]
    );
    let mut after = s
        .sse(&format!("/api/video-progress/{id}"), Some("7"), None)
        .await;
    assert_eq!(
        after
            .drain(T)
            .await
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        vec!["end"]
    );
    // polling form says end
    let p = s
        .poll(
            &format!("/api/video-progress/{id}?poll=1&lastEventId=6"),
            None,
        )
        .await;
    assert_eq!(p["end"], true);
    assert_eq!(p["events"][0]["event"], "completed");
    assert_eq!(p["last_event_id"], "7");

    // cleanup removes finished jobs (older_than_secs 0 = all finished)
    let r: Value = s
        .post("/api/video-progress/cleanup")
        .json(&json!({"older_than_secs": 0}))
        .read_json()
        .await;
    assert_eq!(r["removed"], 1);
    assert_eq!(
        s.get(&format!("/api/video-progress/{id}/status"))
            .status_code()
            .await,
        404
    );
    assert_eq!(
        s.get(&format!("/api/video-progress/{id}"))
            .status_code()
            .await,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn video_error_timeout_and_bad_input() {
    let s = start(&["--video-timeout-secs", "0.25"]).await;
    let id = s
        .create_video(json!({"prompt": "p", "steps": 4, "step_ms": 10, "fail_at_step": 2}))
        .await;
    let mut v = s
        .sse(&format!("/api/video-progress/{id}"), None, None)
        .await;
    let ev = v.drain(T).await;
    let err = ev.iter().find(|e| e.event == "error").unwrap().json();
    assert_eq!(
        (err["step"].as_str(), err["step_index"].as_i64()),
        (Some("voiceover"), Some(2))
    );
    assert!(err["message"].as_str().unwrap().contains("failed"));
    assert_eq!(ev.last().unwrap().json(), json!({"reason": "error"}));

    let id = s
        .create_video(json!({"prompt": "slow", "steps": 5, "step_ms": 100}))
        .await;
    let mut v = s
        .sse(&format!("/api/video-progress/{id}"), None, None)
        .await;
    let ev = v.drain(T).await;
    assert!(ev.iter().any(|e| e.event == "timeout"), "{ev:?}");
    assert_eq!(ev.last().unwrap().json(), json!({"reason": "timeout"}));
    // The terminal event is published before the status row is written: on a busy box
    // the snapshot may trail the stream by a moment.
    let mut st = Value::Null;
    for _ in 0..50 {
        st = s
            .get(&format!("/api/video-progress/{id}/status"))
            .read_json()
            .await;
        if st["status"] == "timeout" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(st["status"], "timeout");

    for bad in [
        json!({}),
        json!({"prompt": ""}),
        json!({"prompt": "x", "steps": 0}),
        json!({"prompt": "x", "steps": 2, "fail_at_step": 3}),
    ] {
        let r = s.post("/api/chat/create-video").json(&bad).call().await;
        assert_eq!(r.status(), 422, "{bad}");
    }
    assert_eq!(
        s.get("/api/video-progress/0000/status").status_code().await,
        404
    );
    assert_eq!(
        s.get("/api/video-progress/no%01pe/status")
            .status_code()
            .await,
        422
    );
    s.stop().await;
}

#[tokio::test]
async fn stats_metrics_cors_and_dev_token_cookie() {
    let s = start(&[]).await;
    let _t = s.sse("/api/team-answers/sse/", None, None).await;
    let st = s.stats().await;
    assert_eq!(st["connections"]["total"], 1);
    assert_eq!(st["connections"]["by_stream"]["team-answers"], 1);
    let m = s.metrics().await;
    assert!(m.contains("tidings_open_connections 1"), "{m}");
    assert!(m.contains("tidings_open_connections_by_kind{kind=\"team-answers\"} 1"));
    assert!(m.contains("tidings_events_published_total 0"));

    let r = s
        .get("/api/team-answers/")
        .header("origin", "http://localhost:5173")
        .call()
        .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = s
        .get("/api/team-answers/")
        .header("origin", "http://evil.example")
        .call()
        .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let pre = common::client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/notifications/stream", s.url),
        )
        .header("origin", "http://127.0.0.1:3000")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,last-event-id",
        )
        .call()
        .await;
    assert!(pre.status().is_success());
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("last-event-id"),
        "{allowed}"
    );

    let r = s
        .post("/api/auth/dev-token")
        .json(&json!({"user_id": "zoe"}))
        .call()
        .await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("tidings_token=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
    assert_eq!(
        s.post("/api/auth/dev-token")
            .json(&json!({"channels": []}))
            .status_code()
            .await,
        422
    );
    s.stop().await;
}

#[tokio::test]
async fn non_dev_mode_has_no_dev_token_and_trigger_needs_a_token() {
    let s = start(&[
        "--jwt-secret",
        "s3cret",
        "--cors-origin",
        "https://app.example",
    ])
    .await;
    // start() passes --dev; build a real non-dev server instead
    s.stop().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = <tidings_server::Config as clap::Parser>::try_parse_from([
        "tidings-server",
        "--addr",
        "127.0.0.1:0",
        "--jwt-secret",
        "s3cret",
        "--cors-origin",
        "https://app.example",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ])
    .unwrap();
    let server = tidings_server::Server::bind(config).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let token = server.shutdown_token();
    let auth = server.state().auth.clone();
    let h = tokio::spawn(server.run());
    let c = common::client();
    assert_eq!(
        c.post(format!("{url}/api/auth/dev-token"))
            .json(&json!({"user_id": "x"}))
            .status_code()
            .await,
        404
    );
    let body = json!({"user_id": "x", "title": "t", "message": "m", "type": "info"});
    assert_eq!(
        c.post(format!("{url}/api/notifications/trigger/"))
            .json(&body)
            .status_code()
            .await,
        401
    );
    let far = tidings_server::time::now_unix() as u64 + 600;
    let t = auth
        .sign(&tidings_server::auth::Claims {
            sub: "admin".into(),
            channels: vec![],
            exp: far,
        })
        .unwrap();
    assert_eq!(
        c.post(format!("{url}/api/notifications/trigger/"))
            .bearer_auth(&t)
            .json(&body)
            .status_code()
            .await,
        201
    );
    let r = c
        .get(format!("{url}/api/stats"))
        .header("origin", "https://app.example")
        .call()
        .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let r = c
        .get(format!("{url}/api/stats"))
        .header("origin", "http://localhost:3000")
        .call()
        .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    token.cancel();
    h.await.unwrap().unwrap();
}

#[tokio::test]
async fn static_dir_serves_with_no_cache_and_mime_types() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/tidings.js"), "export {}").unwrap();
    std::fs::write(site.path().join("pkg/tidings_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let s = start(&["--static-dir", site.path().to_str().unwrap()]).await;
    let r = s.get("/").call().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.text().await.unwrap(), "<h1>demo</h1>");
    let r = s.get("/pkg/tidings.js").call().await;
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let r = s.get("/pkg/tidings_bg.wasm").call().await;
    assert_eq!(r.headers()["content-type"], "application/wasm");
    // API routes still win over the fallback; unknown API paths and wrong methods are JSON errors
    assert_eq!(s.get("/api/team-answers/").status_code().await, 200);
    let r = s.get("/api/nope").call().await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("/api/nope"));
    let r = s.post("/api/stats").call().await;
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "method not allowed"
    );
    s.stop().await;
}

/// A publish is answered without the router when nothing but the route needs it (no
/// query string, `Origin` or `Idempotency-Key`): its answers, good and bad, must be the
/// router's, headers included. A query string sends the same request through the router.
#[tokio::test]
async fn a_publish_answered_without_the_router_is_answered_as_by_the_router() {
    let s = start(&["--max-body-bytes", "100"]).await;
    let t = s.token("fay", &["project.*"]).await;
    let other = s.token("gus", &["file.*"]).await;
    let good = json!({"type": "render_progress", "object": {"progress": 40}}).to_string();
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        ("project.1", Some(&t), good.clone()),
        ("project.1", None, good.clone()),
        ("project.1", Some(&other), good.clone()),
        ("project.1", Some("not-a-token"), good.clone()),
        ("bad!name", Some(&t), good.clone()),
        (
            "project.1",
            Some(&t),
            r#"{"type": "x", "object": 5}"#.into(),
        ),
        (
            "project.1",
            Some(&t),
            r#"{"type": "", "object": {}}"#.into(),
        ),
        ("project.1", Some(&t), r#"{"object": {}}"#.into()),
        ("project.1", Some(&t), "{nope".into()),
        ("project.1", Some(&t), "".into()),
        (
            "project.1",
            Some(&t),
            format!(r#"{{"type":"x","object":"{}"}}"#, "a".repeat(200)),
        ),
    ];
    let mut ids = Vec::new();
    for (channel, token, body) in &cases {
        let mut answers = Vec::new();
        for query in ["", "?via=router"] {
            let mut req = s
                .post(&format!("/api/v1/events/{channel}{query}"))
                .body(body.clone());
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let r = req.call().await;
            let status = r.status().as_u16();
            let mut headers: Vec<(String, String)> = r
                .headers()
                .iter()
                .filter(|(k, _)| *k != "date")
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            let body: Value = r.json().await.unwrap();
            answers.push((status, headers, body));
        }
        let (direct, routed) = (&answers[0], &answers[1]);
        assert_eq!(direct.0, routed.0, "{channel} {body}: status");
        assert_eq!(direct.1, routed.1, "{channel} {body}: headers");
        if direct.0 == 200 {
            // Two publishes: ids one apart, the rest the same.
            let id = |v: &Value| v["id"].as_str().unwrap().parse::<u64>().unwrap();
            assert_eq!(id(&routed.2), id(&direct.2) + 1);
            assert_eq!(direct.2["channel"], routed.2["channel"]);
            assert_eq!(direct.2.as_object().unwrap().len(), 2);
            ids.push(id(&direct.2));
        } else {
            assert_eq!(direct.2, routed.2, "{channel} {body}: error body");
        }
    }
    assert_eq!(ids, [1], "only the good publish was stored");
    s.stop().await;
}
