//! One shared connection for many streams of a page, in headless Chromium
//! against a real `tidings-server` (`scripts/test-wasm.sh` passes its URL):
//! eight channels and the three other seed streams on one connection, a REST
//! call answering at once beside them, and streams joining and leaving while
//! events flow with nothing lost or repeated.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use serde_json::{json, Value};
use tidings::{Decoder, Manager, Options, State};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;
use common::*;

/// Open connections on the server, per `/api/stats`.
async fn open_connections(base: &str) -> u64 {
    let (_, v) = request("GET", &format!("{base}/api/stats"), None, None).await;
    v["connections"]["total"].as_u64().unwrap_or(u64::MAX)
}

async fn publish(base: &str, token: &str, channel: &str, n: u64) -> u64 {
    let v = post(
        &format!("{base}/api/v1/events/{channel}"),
        json!({"type": "task", "object": {"n": n}}),
        Some(token),
    )
    .await;
    v["id"].as_str().unwrap().parse().unwrap()
}

fn ids(log: &Log<tidings::Event>) -> Vec<u64> {
    log.borrow()
        .iter()
        .filter_map(|e| e.id.as_deref()?.parse().ok())
        .collect()
}

#[wasm_bindgen_test]
async fn eight_channels_and_three_seed_streams_share_one_connection() {
    let base = server();
    let user = unique("mux-");
    let prefix = unique("dash");
    let token = dev_token(base, &user, &[&format!("{prefix}.*")], None).await;
    let job: Value = post(
        &format!("{base}/api/chat/create-video"),
        json!({"prompt": "p", "steps": 2}),
        None,
    )
    .await;
    let job = job["job_id"].as_str().unwrap().to_owned();
    let opts = || Options::default().token(token.clone());

    let channels: Vec<Manager> = (0..8)
        .map(|i| {
            Manager::connect(
                &format!("{base}/api/v1/events/{prefix}.{i}"),
                opts().decoder(Decoder::Channel),
            )
            .unwrap()
        })
        .collect();
    let answers = Manager::connect(
        &format!("{base}/api/team-answers/sse/"),
        opts().decoder(Decoder::TeamAnswers),
    )
    .unwrap();
    let bell = Manager::connect(
        &format!("{base}/api/notifications/stream"),
        opts().decoder(Decoder::Notifications),
    )
    .unwrap();
    let video = Manager::connect(
        &format!("{base}/api/video-progress/{job}"),
        opts().decoder(Decoder::VideoProgress),
    )
    .unwrap();
    let logs: Vec<_> = channels.iter().map(|m| collect(m, "message")).collect();
    let (creates, _a) = collect(&answers, "create");
    let (notes, _b) = collect(&bell, "new_notification");
    let (done, _c) = collect(&video, "completed");
    wait_for("every stream open", 10_000, || {
        channels
            .iter()
            .chain([&answers, &bell])
            .all(|m| m.state() == State::Open)
    })
    .await;
    // Video streams end: it opened and finished, or is open.
    wait_for("the video stream done", 10_000, || {
        !done.borrow().is_empty()
    })
    .await;
    assert_eq!(video.state(), State::Closed);

    // One physical connection for all of them (the page's own streams moved
    // over to it once the first hello announced `mux`).
    // The server notices a replaced connection at its next heartbeat (0.5 s here).
    let mut connections = Value::Null;
    for _ in 0..100 {
        let (_, stats) = request("GET", &format!("{base}/api/stats"), None, None).await;
        connections = stats["connections"].clone();
        if connections["total"] == 1 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(connections["total"], 1, "{connections}");
    assert_eq!(connections["by_user"][&user], 9, "{connections}");

    // A REST call from the page answers at once (the browser has free connections).
    let started = js_sys::Date::now();
    let (status, _) = request("GET", &format!("{base}/api/team-answers/"), None, None).await;
    let took = js_sys::Date::now() - started;
    assert_eq!(status, 200);
    assert!(took < 1000.0, "REST call took {took} ms");

    let mut want = Vec::new();
    for i in 0..8 {
        want.push(publish(base, &token, &format!("{prefix}.{i}"), i).await);
    }
    let tag = unique("mux-answer-");
    post(
        &format!("{base}/api/team-answers/"),
        json!({"video_name": tag, "frame_index": 1, "url": "http://x/f.jpg", "qa": "Q"}),
        None,
    )
    .await;
    post(
        &format!("{base}/api/notifications/trigger/"),
        json!({"user_id": user, "title": "t", "message": "m", "type": "info"}),
        None,
    )
    .await;
    wait_for("every channel's event", 5000, || {
        logs.iter().all(|(l, _)| !l.borrow().is_empty())
    })
    .await;
    wait_for("the team answer", 5000, || {
        creates.borrow().iter().any(|e| e.raw.contains(&tag))
    })
    .await;
    wait_for("the notification", 5000, || notes.borrow().len() == 1).await;
    sleep(200).await;
    for (i, (log, _)) in logs.iter().enumerate() {
        assert_eq!(ids(log), vec![want[i]], "channel {i}: exactly its event");
    }
    assert_eq!(open_connections(base).await, 1);
    for m in channels.iter().chain([&answers, &bell, &video]) {
        m.close();
    }
}

#[wasm_bindgen_test]
async fn streams_join_and_leave_while_events_flow_with_nothing_lost_or_repeated() {
    let base = server();
    let user = unique("mux-flow-");
    let prefix = unique("flow");
    let token = dev_token(base, &user, &[&format!("{prefix}.*")], None).await;
    let connect = |name: &str| {
        Manager::connect(
            &format!("{base}/api/v1/events/{prefix}.{name}"),
            Options::default()
                .token(token.clone())
                .decoder(Decoder::Channel),
        )
        .unwrap()
    };
    let a = connect("a");
    let b = connect("b");
    let (la, _a) = collect(&a, "message");
    let (lb, _b) = collect(&b, "message");
    wait_for("a and b open", 10_000, || {
        a.state() == State::Open && b.state() == State::Open
    })
    .await;
    // Publish 40 events to each while streams join and leave (each change is
    // a reconnect of the shared connection with every position).
    let mut joined = Vec::new();
    for n in 1..=40u64 {
        publish(base, &token, &format!("{prefix}.a"), n).await;
        publish(base, &token, &format!("{prefix}.b"), n).await;
        match n {
            5 | 15 | 25 => {
                let m = connect(&format!("c{n}"));
                let log = collect(&m, "message");
                joined.push((m, log));
            }
            10 | 30 if !joined.is_empty() => {
                let (m, (_, subscription)) = joined.remove(0);
                m.close();
                drop(subscription);
            }
            _ => {}
        }
        sleep(15).await;
    }
    wait_for("all 40 on a and b", 10_000, || {
        la.borrow().len() >= 40 && lb.borrow().len() >= 40
    })
    .await;
    sleep(300).await;
    let want: Vec<u64> = (1..=40).collect();
    assert_eq!(ids(&la), want, "a: every event once, in order");
    assert_eq!(ids(&lb), want, "b: every event once, in order");
    assert_eq!((a.duplicates(), b.duplicates()), (0, 0));
    // A stream that joined mid-way gets what is published on it afterwards.
    for (m, _) in &joined {
        assert_eq!(m.state(), State::Open);
    }
    let last = &joined.last().unwrap().0;
    let (lc, _c) = collect(last, "message");
    let name = last.url().rsplit('.').next().unwrap().to_owned();
    let id = publish(base, &token, &format!("{prefix}.{name}"), 1).await;
    wait_for("the late stream's event", 5000, || !lc.borrow().is_empty()).await;
    assert_eq!(ids(&lc), vec![id]);
    assert_eq!(open_connections(base).await, 1);
    for m in [&a, &b].into_iter().chain(joined.iter().map(|(m, _)| m)) {
        m.close();
    }
}

/// The server's connection counts: `total` and `by_stream[key]` for each key.
async fn counts(base: &str, keys: &[&str]) -> (u64, Vec<u64>, Value) {
    let (_, stats) = request("GET", &format!("{base}/api/stats"), None, None).await;
    let c = stats["connections"].clone();
    let total = c["total"].as_u64().unwrap_or(u64::MAX);
    let by = keys
        .iter()
        .map(|k| c["by_stream"][*k].as_u64().unwrap_or(0))
        .collect();
    (total, by, c)
}

#[wasm_bindgen_test]
async fn a_stream_moving_from_its_own_connection_to_the_shared_one_misses_repeats_and_keeps_nothing(
) {
    let base = server();
    // `localhost`: an origin this page has not seen announce `mux`, so the
    // first manager connects alone and then moves onto the shared connection.
    let fresh = base.replace("127.0.0.1", "localhost");
    let user = unique("mux-move-");
    let prefix = unique("move");
    let token = dev_token(base, &user, &[&format!("{prefix}.*")], None).await;
    let mut settled = 0;
    for _ in 0..200 {
        settled = counts(base, &[]).await.0;
        if settled == 0 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(settled, 0, "connections of earlier tests still open");
    let connect = |name: &str| {
        Manager::connect(
            &format!("{fresh}/api/v1/events/{prefix}.{name}"),
            Options::default()
                .token(token.clone())
                .decoder(Decoder::Channel),
        )
        .unwrap()
    };
    let a = connect("a");
    let (la, _a) = collect(&a, "message");
    wait_for("a open", 10_000, || a.state() == State::Open).await;
    let b = connect("b");
    let mut lb = None;
    // Events on `a` while it moves (its hello just announced `mux`) and after.
    // `b` mounts, unmounts and mounts again meanwhile (a React StrictMode effect).
    let mut want = Vec::new();
    for n in 1..=30u64 {
        want.push(publish(base, &token, &format!("{prefix}.a"), n).await);
        match n {
            1 | 4 | 6 => {
                let (log, sub) = collect(&b, "message");
                if n == 6 {
                    lb = Some((log, sub));
                }
            }
            _ => {}
        }
        sleep(10).await;
    }
    let (lb, _b) = lb.unwrap();
    wait_for("every event on a", 10_000, || {
        ids(&la).last().is_some_and(|l| *l >= *want.last().unwrap())
    })
    .await;
    sleep(300).await;
    // `a` was open (its greeting placed it) before the first publish.
    assert_eq!(ids(&la), want, "a: every event once, in order");
    assert_eq!(a.state(), State::Open);
    assert_eq!(b.state(), State::Open);
    // At rest: one connection for both streams (the shared one), and it stays so.
    let keys = [format!("channel/{prefix}.a"), format!("channel/{prefix}.b")];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut seen = Value::Null;
    let mut shaped = false;
    for _ in 0..200 {
        let (total, by, c) = counts(base, &keys).await;
        seen = c;
        if total == 1 && by == [1, 1] {
            shaped = true;
            break;
        }
        sleep(50).await;
    }
    assert!(shaped, "one connection carrying a and b: {seen}");
    for i in 1..=5 {
        sleep(100).await;
        let (total, by, c) = counts(base, &keys).await;
        assert!(
            total == 1 && by == [1, 1],
            "{}ms after it settled: {c}",
            i * 100
        );
    }
    let id = publish(base, &token, &format!("{prefix}.b"), 1).await;
    wait_for("b's event", 5000, || !lb.borrow().is_empty()).await;
    assert_eq!(ids(&lb), vec![id]);
    a.close();
    b.close();
}
