//! Wire bytes, resume, reset, the polling form, slow subscribers and shutdown, over real HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{start, Call, TestServer, T};
use serde_json::{json, Value};

/// The protocol hello every response sends after `retry:` (docs/PROTOCOL.md).
const HELLO: &str = "event: tidings\ndata: {\"protocol\":\"tidings\",\"version\":1,\"capabilities\":[\"numeric-ids\",\"replay\",\"reset\",\"end\",\"poll\",\"mux\"],\"mux\":\"/api/mux\"}\n\n";

async fn publish(s: &TestServer, token: &str, channel: &str, n: u64) {
    let r = s
        .post(&format!("/api/v1/events/{channel}"))
        .bearer_auth(token)
        .json(&json!({"type": "task", "object": {"n": n}}))
        .call()
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn exact_wire_bytes_and_headers() {
    let s = start(&[]).await;
    let t = s.token("w", &["project.*"]).await;
    let res = s
        .get("/api/v1/events/project.1")
        .bearer_auth(&t)
        .header("accept-encoding", "gzip")
        .call()
        .await;
    let h = res.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    assert_eq!(h["connection"], "keep-alive");
    assert!(
        h.get("content-encoding").is_none(),
        "SSE is never compressed"
    );
    let mut sse = common::Sse::new(res.bytes_stream());
    sse.next(T).await.unwrap();
    // retry, the protocol hello, then the named greeting carrying the head id (0: nothing
    // published yet).
    let prelude = String::from_utf8(sse.raw.clone()).unwrap();
    let (head, tail) = prelude.split_at(prelude.find("\"timestamp\":\"").unwrap());
    assert_eq!(head, format!("retry: 1000\n\n{HELLO}id: 0\nevent: connected\ndata: {{\"type\":\"connected\",\"channel\":\"project.1\","));
    assert!(tail.ends_with("Z\"}\n\n"), "{tail}");
    publish(&s, &t, "project.1", 1).await;
    sse.next(T).await.unwrap();
    assert_eq!(
        &sse.raw[prelude.len()..],
        b"id: 1\ndata: {\"type\":\"task\",\"object\":{\"n\":1}}\n\n"
    );

    // reset on garbage id: exact bytes
    let mut r = s
        .sse("/api/v1/events/project.1", Some("garbage"), Some(&t))
        .await;
    r.next_non_heartbeat(T).await.unwrap();
    let raw = String::from_utf8(r.raw.clone()).unwrap();
    // The greeting (no id: the client gave a position) precedes the reset.
    assert!(
        raw.starts_with(&format!("retry: 1000\n\n{HELLO}event: connected\ndata: {{")),
        "{raw}"
    );
    assert_eq!(
        &raw[raw.find("event: reset").unwrap()..],
        "event: reset\nid: 1\ndata: {\"type\":\"reset\",\"reason\":\"invalid_id\",\"last_event_id\":\"garbage\",\"head\":\"1\"}\n\n"
    );
    // JSON responses are compressed when asked and large enough; SSE above was not
    for i in 0..20 {
        s.post("/api/team-answers/").json(&json!({"video_name": format!("v{i}.mp4"), "frame_index": i, "url": "http://example.com/frame.jpg"})).call().await;
    }
    let r = s
        .get("/api/team-answers/")
        .header("accept-encoding", "gzip")
        .call()
        .await;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    s.stop().await;
}

#[tokio::test]
async fn heartbeats_on_a_real_connection() {
    let s = start(&["--heartbeat-secs", "0.2"]).await;
    let t = s.token("h", &[]).await;
    let mut team = s.sse("/api/team-answers/sse/", None, None).await;
    let mut notes = s.sse("/api/notifications/stream", None, Some(&t)).await;
    team.next(T).await.unwrap();
    // Timing is asserted exactly on a paused clock (sse::stream tests); here: the wire shape.
    let hb = team.next(T).await.unwrap();
    assert_eq!(
        (hb.event.as_str(), hb.id.clone(), hb.json()["type"].as_str()),
        ("message", None, Some("heartbeat"))
    );
    notes.next(T).await.unwrap();
    notes.next(T).await.unwrap();
    let hb = notes.next(T).await.unwrap();
    assert_eq!((hb.event.as_str(), hb.id.clone()), ("heartbeat", None));
    assert!(hb.json()["timestamp"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn resume_after_drop_has_no_loss_and_no_duplicates() {
    let s = start(&[]).await;
    let t = s.token("r", &["project.*"]).await;
    let mut a = s.sse("/api/v1/events/project.9", None, Some(&t)).await;
    for n in 1..=5 {
        publish(&s, &t, "project.9", n).await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(a.next_non_heartbeat(T).await.unwrap().id_num());
    }
    drop(a); // connection drops after id 3
    for n in 6..=10 {
        publish(&s, &t, "project.9", n).await;
    }
    let last = seen.last().unwrap().to_string();
    // header form
    let mut b = s
        .sse("/api/v1/events/project.9", Some(&last), Some(&t))
        .await;
    for _ in 0..7 {
        seen.push(b.next_non_heartbeat(T).await.unwrap().id_num());
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    publish(&s, &t, "project.9", 11).await;
    assert_eq!(
        b.next_non_heartbeat(T).await.unwrap().id_num(),
        11,
        "live continues after replay"
    );
    assert!(
        b.next_non_heartbeat(Duration::from_millis(200))
            .await
            .is_none(),
        "no duplicates"
    );
    // query form (EventSource cannot set headers); header wins when both are given
    let mut c = s
        .sse(
            &format!("/api/v1/events/project.9?token={t}&lastEventId=8"),
            None,
            None,
        )
        .await;
    assert_eq!(c.next_non_heartbeat(T).await.unwrap().id_num(), 9);
    let mut d = s
        .sse(
            &format!("/api/v1/events/project.9?token={t}&lastEventId=1"),
            Some("10"),
            None,
        )
        .await;
    assert_eq!(d.next_non_heartbeat(T).await.unwrap().id_num(), 11);
    s.stop().await;
}

#[tokio::test]
async fn reset_on_too_old_ahead_and_garbage_ids() {
    let s = start(&["--replay-log-size", "3"]).await;
    let t = s.token("g", &["project.*"]).await;
    for n in 1..=6 {
        publish(&s, &t, "project.1", n).await;
    }
    let path = "/api/v1/events/project.1";
    // log holds 4..=6: position 3 is fine, 2 is a gap
    let mut ok = s.sse(path, Some("3"), Some(&t)).await;
    assert_eq!(ok.next_non_heartbeat(T).await.unwrap().id_num(), 4);
    for (i, (sent, reason)) in [
        ("2", "gap"),
        ("99", "ahead"),
        ("abc", "invalid_id"),
        ("-1", "invalid_id"),
        ("123456789012345678901234", "invalid_id"),
    ]
    .into_iter()
    .enumerate()
    {
        let head = (6 + i).to_string();
        let mut r = s.sse(path, Some(sent), Some(&t)).await;
        let e = r.next_non_heartbeat(T).await.unwrap();
        assert_eq!(
            (e.event.as_str(), e.id.as_deref()),
            ("reset", Some(head.as_str())),
            "{sent}"
        );
        let j = e.json();
        assert_eq!(
            (
                j["reason"].as_str(),
                j["head"].as_str(),
                j["last_event_id"].as_str()
            ),
            (Some(reason), Some(head.as_str()), Some(sent)),
            "{sent}"
        );
        publish(&s, &t, "project.1", 0).await;
        let next = r.next_non_heartbeat(T).await.unwrap();
        assert_eq!(
            next.id_num(),
            7 + i as u64,
            "continues live right after the reset"
        );
    }
    // a control character in the query id is a reset too, never a 500
    let mut r = s
        .sse(&format!("{path}?token={t}&lastEventId=1%01"), None, None)
        .await;
    assert_eq!(r.next_non_heartbeat(T).await.unwrap().event, "reset");
    // empty Last-Event-ID = live, no reset: only the greeting, carrying the head id
    let mut live = s.sse(path, Some(""), Some(&t)).await;
    let hello = live.next(T).await.unwrap();
    assert_eq!(
        (hello.event.as_str(), hello.id.as_deref()),
        ("connected", Some("11"))
    );
    assert!(live.next(Duration::from_millis(200)).await.is_none());
    // polling form resets the same way
    let p = s
        .poll(&format!("{path}?poll=1&lastEventId=1"), Some(&t))
        .await;
    assert_eq!(p["events"][0]["event"], "reset");
    assert_eq!(p["last_event_id"], p["events"][0]["id"]);
    let st = s.stats().await;
    assert!(st["resets_sent"].as_u64().unwrap() >= 7);
    s.stop().await;
}

#[tokio::test]
async fn polling_form_returns_the_same_events_and_ids_as_the_stream() {
    let s = start(&[]).await;
    let t = s.token("p", &[]).await;
    let mut sse = s.sse("/api/notifications/stream", None, Some(&t)).await;
    sse.next(T).await.unwrap();
    sse.next(T).await.unwrap();
    for i in 0..3 {
        s.post("/api/notifications/trigger/")
            .json(
                &json!({"user_id": "p", "title": format!("t{i}"), "message": "m", "type": "info"}),
            )
            .call()
            .await;
    }
    let mut streamed = Vec::new();
    for _ in 0..6 {
        let e = sse.next_non_heartbeat(T).await.unwrap();
        streamed.push(json!({"id": e.id.unwrap(), "event": e.event, "data": e.data}));
    }
    let p = s
        .poll("/api/notifications/stream?poll=1&lastEventId=0", Some(&t))
        .await;
    assert_eq!(p["events"], Value::Array(streamed.clone()));
    assert_eq!(
        (
            p["last_event_id"].as_str(),
            p["end"].as_bool(),
            p["retry_ms"].as_u64()
        ),
        (Some("6"), Some(false), Some(1000))
    );
    // query token + header position, and a partial read
    let p = s
        .poll(
            &format!("/api/notifications/stream?poll=1&token={t}&lastEventId=4"),
            None,
        )
        .await;
    assert_eq!(p["events"], json!(streamed[4..]));
    // caught up: empty, last id echoed
    let p = s
        .poll("/api/notifications/stream?poll=1&lastEventId=6", Some(&t))
        .await;
    assert_eq!(
        (
            p["events"].as_array().unwrap().len(),
            p["last_event_id"].as_str()
        ),
        (0, Some("6"))
    );
    // long poll wakes on the next event
    let s2 = s.url.clone();
    let t2 = t.clone();
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let v: Value = common::client()
            .get(format!(
                "{s2}/api/notifications/stream?poll=1&lastEventId=6&wait=5"
            ))
            .bearer_auth(&t2)
            .read_json()
            .await;
        (v, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.post("/api/notifications/trigger/")
        .json(&json!({"user_id": "p", "title": "late", "message": "m", "type": "info"}))
        .call()
        .await;
    let (v, took) = waiter.await.unwrap();
    assert_eq!(v["events"][0]["id"], "7");
    assert_eq!(v["events"][0]["event"], "new_notification");
    assert!(took < Duration::from_secs(3));
    // polling needs the same auth
    assert_eq!(
        s.get("/api/notifications/stream?poll=1")
            .status_code()
            .await,
        401
    );
    assert_eq!(
        s.get("/api/notifications/stream?poll=1&wait=99")
            .bearer_auth(&t)
            .status_code()
            .await,
        422
    );
    // polls are not connections
    assert_eq!(s.stats().await["connections"]["by_user"]["p"], 1);
    s.stop().await;
}

#[tokio::test]
async fn slow_subscriber_is_closed_not_buffered_and_resumes_from_the_log() {
    let s = start(&["--subscriber-queue", "4", "--max-body-bytes", "70000"]).await;
    let t = s.token("slow", &["project.*"]).await;
    let res = s
        .get("/api/v1/events/project.s")
        .bearer_auth(&t)
        .call()
        .await;
    let mut slow = common::Sse::new(res.bytes_stream());
    slow.next_frame(T).await.unwrap(); // retry frame, then stop reading
    let big = "x".repeat(32 * 1024);
    let total = 400u64;
    for n in 1..=total {
        let r = s
            .post("/api/v1/events/project.s")
            .bearer_auth(&t)
            .json(&json!({"type": "data", "object": {"n": n, "pad": big}}))
            .call()
            .await;
        assert_eq!(r.status(), 200);
    }
    let st = s.stats().await;
    assert_eq!(
        st["subscribers_lagged"], 1,
        "the stalled subscriber was closed"
    );
    // nothing is held for it anymore: no bus subscriber, no queued events
    let m = s.metrics().await;
    assert!(m.contains("tidings_subscribers_lagged_total 1"));
    // the client reads what was in flight, sees the close, then resumes from its last id
    let got = slow.drain(Duration::from_secs(20)).await;
    assert!(slow.closed, "server closed the lagging stream");
    let mut ids: Vec<u64> = got
        .iter()
        .filter(|e| e.id.is_some() && e.event != "connected")
        .map(|e| e.id_num())
        .collect();
    assert!(
        (ids.len() as u64) < total,
        "it really fell behind ({} of {total})",
        ids.len()
    );
    let last = ids.last().map_or("0".to_owned(), |i| i.to_string());
    let mut resumed = s
        .sse("/api/v1/events/project.s", Some(&last), Some(&t))
        .await;
    while (ids.len() as u64) < total {
        let e = resumed.next_non_heartbeat(T).await.unwrap();
        ids.push(e.id_num());
    }
    assert_eq!(
        ids,
        (1..=total).collect::<Vec<_>>(),
        "no loss, no duplicates"
    );
    s.stop().await;
}

#[tokio::test]
async fn shutdown_with_100_open_streams_is_prompt() {
    let s = start(&[
        "--heartbeat-secs",
        "30",
        "--max-connections-per-user",
        "100",
    ])
    .await;
    let t = s.token("many", &["project.*"]).await;
    let mut streams = Vec::new();
    for i in 0..100 {
        let path = match i % 3 {
            0 => "/api/team-answers/sse/".to_owned(),
            1 => "/api/v1/events/test".to_owned(),
            _ => format!("/api/v1/events/project.{i}?token={t}"),
        };
        let res = common::client()
            .get(format!("{}{path}", s.url))
            .call()
            .await;
        assert_eq!(res.status(), 200);
        streams.push(common::Sse::new(res.bytes_stream()));
    }
    assert_eq!(s.stats().await["connections"]["total"], 100);
    let started = Instant::now();
    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), s.handle)
        .await
        .expect("server stopped within 2 s")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    for mut st in streams {
        st.drain(Duration::from_secs(2)).await;
        assert!(st.closed, "every stream ended");
    }
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_client_that_saw_no_event_resumes_from_the_greeting_id() {
    let s = start(&[]).await;
    let t = s.token("g", &["project.*"]).await;
    publish(&s, &t, "project.4", 1).await;
    publish(&s, &t, "project.4", 2).await;
    // Fresh connection: the named greeting carries the head (2); no event follows yet.
    let mut a = s.sse("/api/v1/events/project.4", None, Some(&t)).await;
    let hello = a.next(T).await.unwrap();
    assert_eq!(
        (hello.event.as_str(), hello.id.as_deref()),
        ("connected", Some("2"))
    );
    assert_eq!(hello.json()["channel"], "project.4");
    drop(a); // cut off before any event arrived
    publish(&s, &t, "project.4", 3).await;
    publish(&s, &t, "project.4", 4).await;
    // Resuming from the greeting id: exactly what was missed; a resumed greeting has no id.
    let mut b = s.sse("/api/v1/events/project.4", Some("2"), Some(&t)).await;
    let hello = b.next(T).await.unwrap();
    assert_eq!(
        (hello.event.as_str(), hello.id.as_deref()),
        ("connected", None)
    );
    let ids: Vec<u64> = vec![
        b.next_non_heartbeat(T).await.unwrap().id_num(),
        b.next_non_heartbeat(T).await.unwrap().id_num(),
    ];
    assert_eq!(ids, vec![3, 4]);
    s.stop().await;
}
