//! Multiplexed streams (`GET /api/mux`) over real HTTP: every seed stream on one
//! connection, per-stream errors, resume of every position at once, per-stream reset,
//! finite streams ending alone, the polling form and the connection counts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{start, Call, Ev, Sse, TestServer, T};
use serde_json::{json, Value};

async fn publish(s: &TestServer, token: &str, channel: &str, n: u64) -> u64 {
    let r: Value = s
        .post(&format!("/api/v1/events/{channel}"))
        .bearer_auth(token)
        .json(&json!({"type": "task", "object": {"n": n}}))
        .read_json()
        .await;
    r["id"].as_str().unwrap().parse().unwrap()
}

async fn mux(s: &TestServer, query: &str, last_event_id: Option<&str>, bearer: &str) -> Sse {
    let mut req = s
        .get(&format!("/api/mux?{query}"))
        .header("accept", "text/event-stream")
        .bearer_auth(bearer);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = req.call().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    Sse::new(res.bytes_stream())
}

/// Splits a multiplexed event name into its stream and the stream's own event name.
fn split(e: &Ev) -> (&str, &str) {
    e.event.split_once(' ').unwrap_or(("", e.event.as_str()))
}

/// Reads tagged events until `want` returns true for the collected map (by stream), or
/// the time is up.
async fn collect(
    sse: &mut Sse,
    mut want: impl FnMut(&HashMap<String, Vec<Ev>>) -> bool,
) -> HashMap<String, Vec<Ev>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut by: HashMap<String, Vec<Ev>> = HashMap::new();
    while !want(&by) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(e) = sse.next(left).await else { break };
        let (stream, _) = split(&e);
        by.entry(stream.to_owned()).or_default().push(e.clone());
    }
    by
}

fn ids(evs: &[Ev]) -> Vec<u64> {
    evs.iter()
        .filter_map(|e| e.id.as_deref())
        .filter_map(|i| i.parse().ok())
        .collect()
}

#[tokio::test]
async fn every_seed_stream_on_one_connection_with_a_forbidden_one_refused_alone() {
    let s = start(&["--video-step-ms", "40"]).await;
    let t = s.token("ann", &["proj.*"]).await;
    let video = format!(
        "/api/video-progress/{}",
        s.create_video(json!({"prompt": "p", "steps": 2})).await
    );
    let streams = format!(
        "/api/team-answers/sse/,/api/notifications/stream,/api/v1/events/proj.1,/api/v1/events/secret,{video},/api/nope"
    );
    let mut sse = mux(&s, &format!("streams={streams}"), None, &t).await;
    let hello: Value = {
        let first = sse.next(T).await.unwrap();
        assert_eq!(split(&first).0, "/api/team-answers/sse/", "{first:?}");
        sse.hello.clone().unwrap().json()
    };
    assert!(hello["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("mux")));
    assert_eq!(hello["mux"], "/api/mux");

    let answer = json!({"video_name": "v.mp4", "frame_index": 1, "url": "http://e/f.jpg", "qa": "Q/A", "query_index": 1, "round": "r"});
    assert_eq!(
        s.post("/api/team-answers/")
            .json(&answer)
            .status_code()
            .await,
        201
    );
    let r = s
        .post("/api/notifications/trigger/")
        .json(&json!({"user_id": "ann", "title": "t", "message": "m", "type": "info"}))
        .call()
        .await;
    assert_eq!(r.status(), 201);
    let channel_id = publish(&s, &t, "proj.1", 1).await;

    let by = collect(&mut sse, |by| {
        let has = |k: &str, n: &str| by.get(k).is_some_and(|v| v.iter().any(|e| split(e).1 == n));
        has("/api/team-answers/sse/", "message")
            && by
                .get("/api/team-answers/sse/")
                .is_some_and(|v| v.iter().any(|e| e.data.contains("\"create\"")))
            && has("/api/notifications/stream", "new_notification")
            && by.get("/api/v1/events/proj.1").is_some_and(|v| {
                v.iter()
                    .any(|e| e.id.as_deref() == Some(&channel_id.to_string()))
            })
            && has(&video, "end")
            && has("", "mux-error")
    })
    .await;
    let errors: Vec<Value> = by[""]
        .iter()
        .filter(|e| e.event == "mux-error")
        .map(Ev::json)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["stream"], "/api/v1/events/secret");
    assert_eq!(errors[0]["status"], 403);
    assert!(errors[0]["error"].as_str().unwrap().contains("secret"));
    assert_eq!(errors[1]["stream"], "/api/nope");
    assert_eq!(errors[1]["status"], 404);
    // The notifications greeting and snapshot are tagged too.
    let n: Vec<&str> = by["/api/notifications/stream"]
        .iter()
        .map(|e| split(e).1)
        .collect();
    assert_eq!(&n[..3], ["connected", "unread_count", "new_notification"]);
    // The finite stream replayed from the start, ended alone with a tagged `end`.
    let v: Vec<&str> = by[&video].iter().map(|e| split(e).1).collect();
    assert_eq!(v.last(), Some(&"end"));
    assert!(v.contains(&"completed"), "{v:?}");

    // One physical connection; each stream counted per stream and for the user.
    let st = s.stats().await;
    assert_eq!(st["connections"]["total"], 1, "{st}");
    assert_eq!(st["connections"]["by_stream"]["channel/proj.1"], 1);
    assert_eq!(st["connections"]["by_stream"]["notifications/ann"], 1);
    assert_eq!(st["connections"]["by_user"]["ann"], 2);

    // The others keep streaming after the video stream ended.
    let next = publish(&s, &t, "proj.1", 2).await;
    let e = sse.next_non_heartbeat(T).await.unwrap();
    assert_eq!(
        (split(&e), e.id_num()),
        (("/api/v1/events/proj.1", "message"), next)
    );
    drop(sse);
    s.stop().await;
}

#[tokio::test]
async fn resume_covers_every_position_at_once_with_a_reset_per_stream() {
    let s = start(&[]).await;
    let t = s.token("bo", &["proj.*"]).await;
    for n in 0..3 {
        publish(&s, &t, "proj.a", n).await; // ids 1..3
        publish(&s, &t, "proj.b", n).await;
    }
    let set = "streams=/api/v1/events/proj.a,/api/v1/events/proj.b,/api/v1/events/proj.c";
    // Header: a after 1, b after 2, c garbage (reset for c only).
    let mut sse = mux(&s, set, Some("1,2,zz"), &t).await;
    let by = collect(&mut sse, |by| {
        by.get("/api/v1/events/proj.a")
            .is_some_and(|v| v.len() >= 2)
            && by
                .get("/api/v1/events/proj.b")
                .is_some_and(|v| !v.is_empty())
            && by
                .get("/api/v1/events/proj.c")
                .is_some_and(|v| v.len() >= 2)
    })
    .await;
    assert_eq!(ids(&by["/api/v1/events/proj.a"]), [2, 3]);
    assert_eq!(ids(&by["/api/v1/events/proj.b"]), [3]);
    let c = &by["/api/v1/events/proj.c"][1];
    assert_eq!(split(&by["/api/v1/events/proj.c"][0]).1, "connected");
    assert_eq!(split(c).1, "reset");
    assert_eq!(c.json()["reason"], "invalid_id");
    drop(sse);

    // Query: the same through ?lastEventId=, the header absent; a stream with no position
    // is live from now, and its greeting carries its head.
    let mut sse = s
        .get(&format!("/api/mux?{set}&lastEventId=2,"))
        .bearer_auth(&t)
        .call()
        .await;
    assert_eq!(sse.status(), 200);
    let mut sse = Sse::new(std::mem::replace(&mut sse, s.get("/").call().await).bytes_stream());
    let by = collect(&mut sse, |by| {
        by.get("/api/v1/events/proj.a")
            .is_some_and(|v| v.len() >= 2)
            && by
                .get("/api/v1/events/proj.b")
                .is_some_and(|v| !v.is_empty())
    })
    .await;
    let a = &by["/api/v1/events/proj.a"];
    assert_eq!(
        split(&a[0]).1,
        "connected",
        "a resumed connection still greets"
    );
    assert_eq!(ids(&a[1..]), [3]);
    let b = &by["/api/v1/events/proj.b"][0];
    assert_eq!((split(b).1, b.id.as_deref()), ("connected", Some("3")));
    s.stop().await;
}

#[tokio::test]
async fn per_user_limits_apply_per_stream() {
    let s = start(&["--max-connections-per-user", "2"]).await;
    let t = s.token("cy", &["*"]).await;
    let mut sse = mux(
        &s,
        "streams=/api/v1/events/a,/api/v1/events/b,/api/v1/events/c",
        None,
        &t,
    )
    .await;
    let by = collect(&mut sse, |by| {
        by.get("")
            .is_some_and(|v| v.iter().any(|e| e.event == "mux-error"))
    })
    .await;
    let err = by[""]
        .iter()
        .find(|e| e.event == "mux-error")
        .unwrap()
        .json();
    assert_eq!(
        (err["stream"].as_str(), err["status"].as_u64()),
        (Some("/api/v1/events/c"), Some(429))
    );
    assert_eq!(s.stats().await["connections"]["by_user"]["cy"], 2);
    drop(sse);
    s.stop().await;
}

#[tokio::test]
async fn the_polling_form_answers_for_the_set() {
    let s = start(&[]).await;
    let t = s.token("di", &["proj.*"]).await;
    publish(&s, &t, "proj.a", 0).await;
    publish(&s, &t, "proj.a", 1).await;
    let set = "streams=/api/v1/events/proj.a,/api/v1/events/proj.b,/api/v1/events/nope";
    let body = s
        .poll(&format!("/api/mux?{set}&poll=1&lastEventId=0,0"), Some(&t))
        .await;
    let streams = body["streams"].as_array().unwrap();
    assert_eq!(streams[0]["stream"], "/api/v1/events/proj.a");
    assert_eq!(streams[0]["events"].as_array().unwrap().len(), 2);
    assert_eq!(streams[1]["events"].as_array().unwrap().len(), 0);
    assert_eq!(streams[2]["status"], 403);
    assert_eq!(body["last_event_id"], "2,0,");

    // A long poll of the set returns as soon as one of its streams has an event.
    let started = std::time::Instant::now();
    let waiting = {
        let url = format!("/api/mux?{set}&poll=1&wait=10&lastEventId=2,0");
        let req = s.get(&url).bearer_auth(&t);
        tokio::spawn(async move { req.call().await.json::<Value>().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&s, &t, "proj.b", 0).await;
    let body = waiting.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(body["streams"][1]["events"][0]["id"], "1");
    assert_eq!(body["last_event_id"], "2,1,");
    s.stop().await;
}

#[tokio::test]
async fn bad_sets_get_422_and_bad_tokens_401() {
    let s = start(&[]).await;
    for q in ["", "streams=nope", "streams=/a,/a"] {
        let r = s.get(&format!("/api/mux?{q}")).call().await;
        assert_eq!(r.status(), 422, "{q}");
        let j: Value = r.json().await.unwrap();
        assert!(j["error"].as_str().unwrap().starts_with("streams:"));
    }
    let r = s
        .get("/api/mux?streams=/api/team-answers/sse/")
        .bearer_auth("x.y.z")
        .call()
        .await;
    assert_eq!(r.status(), 401);
    s.stop().await;
}

/// Waits until `/api/stats` satisfies `ok` (10 s at most).
async fn wait_stats(s: &TestServer, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = s.stats().await;
        if ok(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {}",
            stats["connections"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ids of the stream's own events (`message`), greeting and heartbeats aside.
fn message_ids(by: &HashMap<String, Vec<Ev>>, stream: &str) -> Vec<u64> {
    let events: Vec<Ev> = by
        .get(stream)
        .map(|v| {
            v.iter()
                .filter(|e| split(e).1 == "message")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    ids(&events)
}

#[tokio::test]
async fn hub_connections_in_several_groups_get_every_event_of_every_stream() {
    const BURST: u64 = 40;
    let s = start(&["--max-connections-per-user", "200"]).await;
    let t = s.token("ev", &["hub.*"]).await;
    let channels: Vec<String> = (0..4).map(|c| format!("/api/v1/events/hub.{c}")).collect();
    // Every non-empty subset of the four channels, one multiplexed connection each, and a
    // plain connection per channel in the same groups' streams.
    let mut conns = Vec::new();
    for mask in 1u32..16 {
        let set: Vec<String> = (0..4)
            .filter(|c| mask & (1 << c) != 0)
            .map(|c| channels[c].clone())
            .collect();
        let sse = mux(&s, &format!("streams={}", set.join(",")), None, &t).await;
        conns.push((set, sse));
    }
    let mut plain = Vec::new();
    for c in 0..4 {
        plain.push(
            s.sse(&format!("/api/v1/events/hub.{c}"), None, Some(&t))
                .await,
        );
    }
    let stats = wait_stats(&s, "every connection counted once", |v| {
        v["connections"]["total"] == 19
    })
    .await;
    assert_eq!(stats["streams_detached"], 19, "all served by the hub");
    assert_eq!(
        stats["connections"]["by_stream"]["channel/hub.0"], 9,
        "8 multiplexed members and 1 plain connection"
    );
    assert_eq!(
        stats["connections"]["by_user"]["ev"],
        8 * 4 + 4,
        "every member counts for its user"
    );

    // A burst on every channel at once; one connection (all four streams) leaves in the
    // middle of it.
    let publishers: Vec<_> = (0..4)
        .map(|c| {
            let (url, t) = (s.url.clone(), t.clone());
            tokio::spawn(async move {
                let client = common::client();
                for n in 0..BURST {
                    let r = client
                        .post(format!("{url}/api/v1/events/hub.{c}"))
                        .bearer_auth(&t)
                        .json(&json!({"type": "task", "object": {"n": n}}))
                        .call()
                        .await;
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    let (_, mut leaving) = conns.remove(14); // mask 15: every channel
    let early = collect(&mut leaving, |by| message_ids(by, &channels[0]).len() >= 5).await;
    assert!(message_ids(&early, &channels[0]).len() >= 5);
    drop(leaving);
    for p in publishers {
        p.await.unwrap();
    }

    let want: Vec<u64> = (1..=BURST).collect();
    for (set, sse) in &mut conns {
        let by = collect(sse, |by| {
            set.iter()
                .all(|st| message_ids(by, st).len() >= BURST as usize)
        })
        .await;
        for st in set.iter() {
            assert_eq!(message_ids(&by, st), want, "{st} on the set {set:?}");
        }
        assert!(
            by.keys().all(|k| k.is_empty() || set.contains(k)),
            "only its own streams: {:?}",
            by.keys()
        );
    }
    for (c, sse) in plain.iter_mut().enumerate() {
        let got = sse.drain(Duration::from_millis(300)).await;
        let got: Vec<u64> = got
            .iter()
            .filter(|e| e.event.is_empty() || e.event == "message")
            .filter_map(|e| e.id.as_deref()?.parse().ok())
            .collect();
        assert_eq!(got, want, "plain connection of hub.{c}");
    }
    wait_stats(&s, "the leaver is uncounted", |v| {
        v["connections"]["total"] == 18 && v["connections"]["by_stream"]["channel/hub.0"] == 8
    })
    .await;
    drop(conns);
    drop(plain);
    wait_stats(&s, "every stream uncounted", |v| {
        v["connections"]["total"] == 0
            && v["connections"]["by_stream"]
                .as_object()
                .is_some_and(|m| m.is_empty())
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn hub_served_sets_resume_every_position_by_header_and_query() {
    let s = start(&[]).await;
    let t = s.token("fa", &["res.*"]).await;
    for n in 0..3 {
        publish(&s, &t, "res.a", n).await; // ids 1..3
        publish(&s, &t, "res.b", n).await;
    }
    let set = "streams=/api/v1/events/res.a,/api/v1/events/res.b,/api/v1/events/res.c";
    for (query, header) in [("", Some("1,3,9")), ("&lastEventId=1,3,9", None)] {
        let mut sse = mux(&s, &format!("{set}{query}"), header, &t).await;
        publish(&s, &t, "res.b", 9).await;
        let by = collect(&mut sse, |by| {
            message_ids(by, "/api/v1/events/res.a").len() >= 2
                && !message_ids(by, "/api/v1/events/res.b").is_empty()
                && by
                    .get("/api/v1/events/res.c")
                    .is_some_and(|v| v.iter().any(|e| split(e).1 == "reset"))
        })
        .await;
        assert_eq!(message_ids(&by, "/api/v1/events/res.a"), [2, 3], "{query}");
        let b = message_ids(&by, "/api/v1/events/res.b");
        assert_eq!(b.first(), Some(&4), "{query}: b after 3, live");
        let reset = by["/api/v1/events/res.c"]
            .iter()
            .find(|e| split(e).1 == "reset")
            .unwrap();
        assert_eq!(reset.json()["reason"], "ahead", "{query}");
        drop(sse);
    }
    assert_eq!(s.stats().await["streams_detached"], 2);
    s.stop().await;
}

#[tokio::test]
async fn a_refused_member_carries_its_retry_after_and_the_others_stream() {
    let s = start(&["--dev", "--max-connections-per-user", "2"]).await;
    let t = s.token("gu", &["ra.*"]).await;
    let r = s
        .post("/api/dev/fail")
        .json(&json!({"stream": "channel/ra.b", "status": 503, "retry_after": "7"}))
        .call()
        .await;
    assert_eq!(r.status(), 200);
    let set =
        "streams=/api/v1/events/ra.a,/api/v1/events/ra.b,/api/v1/events/ra.c,/api/v1/events/ra.d";
    let mut sse = mux(&s, set, None, &t).await;
    publish(&s, &t, "ra.a", 1).await;
    let by = collect(&mut sse, |by| {
        by.get("").is_some_and(|v| v.len() >= 2)
            && !message_ids(by, "/api/v1/events/ra.a").is_empty()
    })
    .await;
    let errors: Vec<Value> = by[""]
        .iter()
        .filter(|e| e.event == "mux-error")
        .map(Ev::json)
        .collect();
    assert_eq!(
        errors,
        [
            json!({"stream": "/api/v1/events/ra.b", "status": 503, "error": "dev fault: injected HTTP 503", "retry_after": "7"}),
            json!({"stream": "/api/v1/events/ra.d", "status": 429, "error": "too many open connections for this user (limit 2)", "retry_after": "5"}),
        ]
    );
    assert_eq!(message_ids(&by, "/api/v1/events/ra.a"), [1]);
    drop(sse);
    s.stop().await;
}

#[tokio::test]
async fn a_finite_member_ends_alone_on_the_hub_and_the_last_one_ends_the_response() {
    let s = start(&["--video-step-ms", "30"]).await;
    let t = s.token("ha", &["fin.*"]).await;
    let video = format!(
        "/api/video-progress/{}",
        s.create_video(json!({"prompt": "p", "steps": 3})).await
    );
    let mut sse = mux(
        &s,
        &format!("streams={video},/api/v1/events/fin.a"),
        None,
        &t,
    )
    .await;
    let by = collect(&mut sse, |by| {
        by.get(video.as_str())
            .is_some_and(|v| v.iter().any(|e| split(e).1 == "end"))
    })
    .await;
    let names: Vec<&str> = by[video.as_str()].iter().map(|e| split(e).1).collect();
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    assert!(names.contains(&"completed"), "{names:?}");
    wait_stats(&s, "the video stream uncounted", |v| {
        v["connections"]["by_kind"]["video"] == 0 && v["connections"]["total"] == 1
    })
    .await;
    publish(&s, &t, "fin.a", 1).await;
    let by = collect(&mut sse, |by| {
        !message_ids(by, "/api/v1/events/fin.a").is_empty()
    })
    .await;
    assert_eq!(message_ids(&by, "/api/v1/events/fin.a"), [1]);
    drop(sse);

    // A set of finite streams only: the response ends after the last one's `end`.
    let video = format!(
        "/api/video-progress/{}",
        s.create_video(json!({"prompt": "q", "steps": 1})).await
    );
    let mut sse = mux(&s, &format!("streams={video}"), None, &t).await;
    let rest = sse.drain(Duration::from_secs(5)).await;
    assert_eq!(rest.last().map(|e| split(e).1), Some("end"), "{rest:?}");
    assert!(
        sse.next(Duration::from_millis(200)).await.is_none(),
        "ended"
    );
    assert_eq!(s.stats().await["streams_detached"], 2);
    s.stop().await;
}
