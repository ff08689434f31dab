//! Several instances on one real `redis-server` (started here on a free loopback port,
//! no persistence, killed at the end): global ids, resume on another instance, polling
//! form, outage reporting and refusal, recovery after a Redis restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Call, Sse, TestServer, T};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const STREAM: &str = "/api/v1/events/room";

/// A `redis-server` child on 127.0.0.1, killed on drop.
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Persistence flags (`--appendonly no` unless set).
    persistence: Vec<&'static str>,
}

impl Redis {
    async fn start() -> Redis {
        Redis::start_with(&["--appendonly", "no"]).await
    }

    /// A `redis-server` with these persistence flags (kept across [`Redis::spawn`]s, which
    /// reuse the port and the directory).
    async fn start_with(persistence: &[&'static str]) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            persistence: persistence.to_vec(),
        };
        r.spawn().await;
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        assert!(
            Path::new(REDIS_SERVER).exists(),
            "{REDIS_SERVER} is missing: these tests need a real Redis (scripts/setup.sh installs the Debian redis-server package)"
        );
        let child = Command::new(REDIS_SERVER)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(&self.persistence)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if ping(self.port).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "redis-server on port {} did not answer PING within 5 s",
            self.port
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(port: u16) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await, Ok(Ok(n)) if buf[..n].starts_with(b"+PONG"))
}

async fn instance(redis: &Redis) -> TestServer {
    let url = redis.url();
    common::start(&[
        "--redis-url",
        &url,
        "--heartbeat-secs",
        "0.4",
        "--replay-log-size",
        "100",
    ])
    .await
}

async fn bus_health(s: &TestServer) -> Value {
    s.stats().await["bus"].clone()
}

/// Waits (bounded) until the instance reports the wanted bus health.
async fn wait_health(s: &TestServer, healthy: bool) -> Value {
    for _ in 0..100 {
        let b = bus_health(s).await;
        if b["healthy"] == healthy {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "bus never became healthy={healthy}: {}",
        bus_health(s).await
    );
}

async fn publish(s: &TestServer, token: &str, n: u64) -> reqwest::Response {
    s.post(STREAM)
        .bearer_auth(token)
        .json(&json!({"type": "data", "object": {"n": n}}))
        .call()
        .await
}

async fn publish_ok(s: &TestServer, token: &str, n: u64) -> u64 {
    let r = publish(s, token, n).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().parse().unwrap()
}

/// Next `count` history events (ids, `n` payloads), skipping heartbeats and greetings.
async fn take(sse: &mut Sse, count: usize) -> Vec<(u64, u64)> {
    let deadline = tokio::time::Instant::now() + T;
    let mut out = Vec::new();
    while out.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = next_history(sse, left)
            .await
            .unwrap_or_else(|| panic!("stream ended or stalled after {out:?}"));
        out.push((e.id_num(), e.json()["object"]["n"].as_u64().unwrap()));
    }
    out
}

/// Next event that is not a heartbeat or greeting, within `wait` in total (heartbeats do
/// not extend it).
async fn next_history(sse: &mut Sse, wait: Duration) -> Option<common::Ev> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = sse.next(left).await?;
        let per_connection = e.event == "heartbeat"
            || e.event == "connected"
            || e.data.contains("\"type\":\"heartbeat\"");
        if !per_connection {
            return Some(e);
        }
    }
}

/// Asserts no history event arrives within `wait` (only heartbeats).
async fn assert_quiet(sse: &mut Sse, wait: Duration) {
    if let Some(e) = next_history(sse, wait).await {
        panic!("unexpected event {e:?}");
    }
}

fn ids(v: &[(u64, u64)]) -> Vec<u64> {
    v.iter().map(|(id, _)| *id).collect()
}

#[tokio::test]
async fn ids_are_global_and_a_client_resumes_on_another_instance() {
    let redis = Redis::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    let token = a.token("alice", &["*"]).await;
    assert_eq!(
        bus_health(&a).await,
        json!({"kind": "redis", "healthy": true, "last_error": null, "errors": 0})
    );

    let mut on_b = b.sse(STREAM, None, Some(&token)).await;
    let mut client = a.sse(STREAM, None, Some(&token)).await;
    // Fresh connections greet with the head id (0 here): both see the same head.
    assert_eq!(on_b.next(T).await.unwrap().id.as_deref(), Some("0"));
    assert_eq!(client.next(T).await.unwrap().id.as_deref(), Some("0"));

    for n in 1..=3 {
        assert_eq!(publish_ok(&a, &token, n).await, n);
    }
    assert_eq!(
        take(&mut on_b, 3).await,
        vec![(1, 1), (2, 2), (3, 3)],
        "published on A, received on B, same ids"
    );
    assert_eq!(take(&mut client, 3).await, vec![(1, 1), (2, 2), (3, 3)]);
    drop(client); // the client's connection to A is cut after id 3

    assert_eq!(publish_ok(&a, &token, 4).await, 4);
    assert_eq!(publish_ok(&b, &token, 5).await, 5);
    assert_eq!(publish_ok(&a, &token, 6).await, 6);
    assert_eq!(publish_ok(&b, &token, 7).await, 7);

    // It reconnects to B with its last id: 4..7 replayed from Redis, then live.
    let mut client = b.sse(STREAM, Some("3"), Some(&token)).await;
    assert_eq!(
        take(&mut client, 4).await,
        vec![(4, 4), (5, 5), (6, 6), (7, 7)]
    );
    assert_eq!(publish_ok(&a, &token, 8).await, 8);
    assert_eq!(take(&mut client, 1).await, vec![(8, 8)]);
    assert_quiet(&mut client, Duration::from_millis(600)).await;

    // The live subscriber on B saw everything once, in order, whichever instance published.
    assert_eq!(ids(&take(&mut on_b, 5).await), vec![4, 5, 6, 7, 8]);
    assert_quiet(&mut on_b, Duration::from_millis(300)).await;

    // The polling form on either instance returns the same ids and data.
    let polled = b
        .poll(&format!("{STREAM}?poll=1&lastEventId=0"), Some(&token))
        .await;
    let got: Vec<(String, u64)> = polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                serde_json::from_str::<Value>(e["data"].as_str().unwrap()).unwrap()["object"]["n"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(got, (1..=8).map(|n| (n.to_string(), n)).collect::<Vec<_>>());
    assert_eq!(polled["last_event_id"], "8");
    let polled_a = a
        .poll(&format!("{STREAM}?poll=1&lastEventId=6"), Some(&token))
        .await;
    assert_eq!(polled_a["events"].as_array().unwrap().len(), 2);

    // Other streams share the bus too: a team answer created on A reaches B's stream.
    let mut answers = b.sse("/api/team-answers/sse/", None, None).await;
    assert!(answers.next(T).await.unwrap().data.contains("connected"));
    let r = a
        .post("/api/team-answers/")
        .json(&json!({"video_name": "v.mp4", "frame_index": 1, "url": "http://x"}))
        .call()
        .await;
    assert_eq!(r.status(), 201);
    let e = next_history(&mut answers, T).await.unwrap();
    assert_eq!(
        (e.id_num(), e.json()["type"].as_str().unwrap()),
        (1, "create")
    );

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_and_resumes_from_redis() {
    let redis = Redis::start().await;
    let url = redis.url();
    let a = common::start(&["--redis-url", &url, "--subscriber-queue", "2"]).await;
    wait_health(&a, true).await;
    let token = a.token("alice", &["*"]).await;
    let state = a.state.clone();
    // Subscribe through the bus directly and never read: the queue (2) overflows.
    let mut sub = state
        .bus
        .subscribe("channel/room", tidings_server::event::Position::Live)
        .await
        .unwrap();
    for n in 1..=6 {
        publish_ok(&a, &token, n).await;
    }
    let mut got = Vec::new();
    while let Some(e) = tokio::time::timeout(T, sub.live.recv()).await.unwrap() {
        got.push(e.id);
    }
    assert_eq!(
        got,
        vec![1, 2],
        "closed after the queued events, never unbounded"
    );
    assert!(a.stats().await["subscribers_lagged"].as_u64().unwrap() >= 1);
    let resumed = state
        .bus
        .subscribe("channel/room", tidings_server::event::Position::After(2))
        .await
        .unwrap();
    assert_eq!(
        resumed.replay.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    a.stop().await;
}

#[tokio::test]
async fn redis_outage_is_reported_publishes_refused_streams_kept_then_recovered() {
    let mut redis = Redis::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    let token = a.token("alice", &["*"]).await;
    let mut sa = a.sse(STREAM, None, Some(&token)).await;
    let mut sb = b.sse(STREAM, None, Some(&token)).await;
    for n in 1..=3 {
        publish_ok(&a, &token, n).await;
    }
    assert_eq!(ids(&take(&mut sa, 3).await), vec![1, 2, 3]);
    assert_eq!(ids(&take(&mut sb, 3).await), vec![1, 2, 3]);

    redis.kill();
    for s in [&a, &b] {
        let h = wait_health(s, false).await;
        assert_eq!(h["kind"], "redis");
        assert!(h["last_error"].as_str().unwrap().len() > 3, "{h}");
        assert!(h["errors"].as_u64().unwrap() >= 1);
        let m = s.metrics().await;
        assert!(m.contains("tidings_bus_healthy{kind=\"redis\"} 0"), "{m}");
        assert!(!m.contains("tidings_bus_errors_total 0\n"), "{m}");
    }
    // Publishes are refused with a clear 503, never silently dropped.
    let r = publish(&a, &token, 99).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("event bus unavailable: "),
        "{body}"
    );
    let r = b
        .post("/api/team-answers/")
        .json(&json!({"video_name": "v.mp4", "frame_index": 1, "url": "http://x"}))
        .call()
        .await;
    assert_eq!(r.status(), 503);
    // New subscriptions too; open streams stay open and keep their heartbeats.
    let r = b.get(STREAM).bearer_auth(&token).call().await;
    assert_eq!(r.status(), 503);
    for s in [&mut sa, &mut sb] {
        let mut beats = 0;
        for _ in 0..2 {
            let e = s
                .next(T)
                .await
                .expect("the open stream stays open during the outage");
            assert_eq!(e.event, "heartbeat", "{e:?}");
            beats += 1;
        }
        assert_eq!(beats, 2);
    }
    assert_eq!(a.stats().await["connections"]["total"], 1);

    // Redis comes back on the same port, empty (no persistence): both recover by themselves.
    redis.spawn().await;
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    // Its ids restarted: open streams are closed so clients resume with their last id ...
    for s in [&mut sa, &mut sb] {
        let rest = s.drain(T).await;
        assert!(s.closed, "closed after Redis lost its data");
        assert!(rest.iter().all(|e| e.event == "heartbeat"), "{rest:?}");
    }
    assert_eq!(
        publish_ok(&a, &token, 10).await,
        1,
        "the counter restarted with the empty Redis"
    );
    // ... and a client ahead of the new head gets a reset (reason ahead), not a silent loss.
    let mut ra = b.sse(STREAM, Some("3"), Some(&token)).await;
    let e = next_history(&mut ra, T).await.unwrap();
    assert_eq!(e.event, "reset");
    assert_eq!(
        e.json(),
        json!({"type": "reset", "reason": "ahead", "last_event_id": "3", "head": "1"})
    );
    assert_eq!(e.id.as_deref(), Some("1"));
    let mut rb = a.sse(STREAM, Some("1"), Some(&token)).await;
    // New events reach subscribers on both instances again.
    assert_eq!(publish_ok(&b, &token, 11).await, 2);
    assert_eq!(take(&mut ra, 1).await, vec![(2, 11)]);
    assert_eq!(take(&mut rb, 1).await, vec![(2, 11)]);
    assert!(bus_health(&a).await["errors"].as_u64().unwrap() >= 1);
    a.stop().await;
    b.stop().await;
}

/// Closes every client connection of the Redis (the instances see their connections drop).
async fn kill_clients(port: u16) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"CLIENT KILL TYPE normal SKIPME yes\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 32];
    let n = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b":"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn dropped_redis_connections_resume_from_the_last_delivered_id() {
    let redis = Redis::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    let token = a.token("alice", &["*"]).await;
    let mut sa = a.sse(STREAM, None, Some(&token)).await;
    assert_eq!(publish_ok(&b, &token, 1).await, 1);
    assert_eq!(take(&mut sa, 1).await, vec![(1, 1)]);
    kill_clients(redis.port).await;
    // Publish through B as soon as it accepts again (503 while it reconnects, never a drop).
    for n in 2..=6 {
        let mut done = false;
        for _ in 0..100 {
            let r = publish(&b, &token, n).await;
            if r.status() == 200 {
                done = true;
                break;
            }
            assert_eq!(r.status(), 503);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(done, "B never accepted publish {n}");
    }
    // A's reader reconnected and resumed after id 1: the open stream gets 2..6, once, in order.
    assert_eq!(
        take(&mut sa, 5).await,
        vec![(2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]
    );
    assert_quiet(&mut sa, Duration::from_millis(500)).await;
    assert!(!sa.closed);
    assert!(
        bus_health(&a).await["errors"].as_u64().unwrap() >= 1,
        "A saw its connection drop"
    );
    wait_health(&a, true).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn server_starts_while_redis_is_down_and_connects_when_it_appears() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let a = common::start(&["--redis-url", &url]).await;
    let token = a.token("alice", &["*"]).await;
    let r = publish(&a, &token, 1).await;
    assert_eq!(r.status(), 503);
    let h = wait_health(&a, false).await;
    assert!(
        h["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect to Redis"),
        "{h}"
    );
    let mut redis = Redis {
        port,
        dir: tempfile::tempdir().unwrap(),
        child: None,
        persistence: vec!["--appendonly", "no"],
    };
    redis.spawn().await;
    wait_health(&a, true).await;
    assert_eq!(publish_ok(&a, &token, 1).await, 1);
    a.stop().await;
}

#[tokio::test]
async fn a_bad_redis_url_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let config = <tidings_server::Config as clap::Parser>::try_parse_from([
        "tidings-server",
        "--dev",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        d,
        "--redis-url",
        "http://nope",
    ])
    .unwrap();
    let err = tidings_server::Server::bind(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("--redis-url"), "{err}");
}

#[tokio::test]
async fn an_idempotency_key_holds_across_instances_and_concurrent_retries() {
    let redis = Redis::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    let token = a.token("alice", &["room"]).await;
    let keyed = |s: &TestServer, key: &str, n: u64| {
        s.post(STREAM)
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"type": "data", "object": {"n": n}}))
    };
    let answer = |r: reqwest::Response| async move {
        let replayed = r.headers().get("idempotent-replayed").is_some();
        (r.status().as_u16(), r.text().await.unwrap(), replayed)
    };
    // The first answer on A is the answer on B.
    let first = answer(keyed(&a, "k1", 1).call().await).await;
    assert_eq!((first.0, first.2), (200, false), "{first:?}");
    let on_b = answer(keyed(&b, "k1", 1).call().await).await;
    assert_eq!((on_b.0, &on_b.1, on_b.2), (200, &first.1, true));
    // A different body under that key: 422 on either instance.
    let other = answer(keyed(&b, "k1", 2).call().await).await;
    assert_eq!(other.0, 422, "{other:?}");
    // Concurrent retries spread over both instances: one publish, one answer.
    let tries = (0..10).map(|i| {
        let s = if i % 2 == 0 { &a } else { &b };
        let req = keyed(s, "k2", 3);
        async move { answer(req.call().await).await }
    });
    let answers = futures_util::future::join_all(tries).await;
    assert!(
        answers.iter().all(|x| x.0 == 200 && x.1 == answers[0].1),
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|x| !x.2).count(), 1, "{answers:?}");
    // Exactly two events in the log: k1 and k2 once each.
    let v = a
        .poll(&format!("{STREAM}?poll=1&lastEventId=0"), Some(&token))
        .await;
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{v}");
    // A fresh instance (another SQLite file) on the same Redis still knows the key.
    a.stop().await;
    let c = instance(&redis).await;
    wait_health(&c, true).await;
    let on_c = answer(keyed(&c, "k1", 1).call().await).await;
    assert_eq!((on_c.0, &on_c.1, on_c.2), (200, &first.1, true));
    b.stop().await;
    c.stop().await;
}

/// Sends one inline command to Redis and returns the raw reply.
async fn redis_inline(port: u16, cmd: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("{cmd}\r\n").as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_keyed_publish_whose_answer_was_lost_is_not_stored_again() {
    let redis = Redis::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    let token = a.token("alice", &["room"]).await;
    let keyed = |s: &TestServer| {
        s.post(STREAM)
            .bearer_auth(&token)
            .header("idempotency-key", "lost")
            .json(&json!({"type": "data", "object": {"n": 1}}))
    };
    let first: Value = keyed(&a).read_json().await;
    // The event is stored but the answer's record is gone, as when the process is killed
    // between the two: the retry runs the request again.
    let scope =
        tidings_server::idempotency::hash(&[b"user:alice", b"POST", STREAM.as_bytes(), b"lost"]);
    let deleted = redis_inline(redis.port, &format!("DEL tidings:idem:{scope}")).await;
    assert_eq!(
        deleted, ":1\r\n",
        "the record was where the server keeps it"
    );
    let r = keyed(&b).call().await;
    assert!(
        r.headers().get("idempotent-replayed").is_none(),
        "it ran again"
    );
    let again: Value = r.json().await.unwrap();
    assert_eq!(again, first, "the same event id");
    let v = a
        .poll(&format!("{STREAM}?poll=1&lastEventId=0"), Some(&token))
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v}");
    a.stop().await;
    b.stop().await;
}

/// A Redis bus of its own (no HTTP server), healthy, for tests of the publish path.
async fn bus(
    redis: &Redis,
    stop: &tokio_util::sync::CancellationToken,
) -> (
    tidings_server::bus::RedisBus,
    std::sync::Arc<tidings_server::metrics::Metrics>,
) {
    bus_keeping(redis, stop, 100).await
}

/// [`bus`] keeping `log` events per stream.
async fn bus_keeping(
    redis: &Redis,
    stop: &tokio_util::sync::CancellationToken,
    log: u64,
) -> (
    tidings_server::bus::RedisBus,
    std::sync::Arc<tidings_server::metrics::Metrics>,
) {
    let metrics = std::sync::Arc::new(tidings_server::metrics::Metrics::default());
    let bus =
        tidings_server::bus::RedisBus::new(&redis.url(), log, 1024, metrics.clone(), stop).unwrap();
    wait_bus_healthy(&bus).await;
    (bus, metrics)
}

/// Waits (bounded, 10 s) until the bus is connected.
async fn wait_bus_healthy(bus: &tidings_server::bus::RedisBus) {
    use tidings_server::bus::Bus;
    for _ in 0..200 {
        if bus.health().healthy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the Redis bus did not connect within 10 s: {:?}",
        bus.health()
    );
}

#[tokio::test]
async fn publishes_that_arrive_together_share_one_call_with_consecutive_ids() {
    use std::sync::atomic::Ordering;
    use tidings_server::bus::Bus;
    use tidings_server::event::Position;
    let redis = Redis::start().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (a, ma) = bus(&redis, &stop).await;
    let (b, mb) = bus(&redis, &stop).await;
    let mut sub = a.subscribe("room", Position::Live).await.unwrap();

    // Twenty publishes made at once on each of two instances, both together.
    let on_a =
        futures_util::future::join_all((0..20).map(|i| a.publish("room", None, format!("a{i}"))));
    let on_b = futures_util::future::join_all(
        (0..20).map(|i| b.publish("room", Some("named"), format!("b{i}"))),
    );
    let (on_a, on_b) = tokio::join!(on_a, on_b);
    let on_a: Vec<_> = on_a.into_iter().map(Result::unwrap).collect();
    let on_b: Vec<_> = on_b.into_iter().map(Result::unwrap).collect();

    // Each instance stored its twenty in one script call: consecutive ids, in the order
    // the publishes were made.
    for (events, metrics, name, prefix) in
        [(&on_a, &ma, None, "a"), (&on_b, &mb, Some("named"), "b")]
    {
        assert_eq!(metrics.event_groups_committed.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.events_published.load(Ordering::Relaxed), 20);
        let first = events[0].id;
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.id, first + i as u64);
            assert_eq!(e.data, format!("{prefix}{i}"));
            assert_eq!(e.event.as_deref(), name);
        }
    }
    // Across instances: every id from 1 to 40 once, no gap.
    let mut all: Vec<u64> = on_a.iter().chain(&on_b).map(|e| e.id).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());

    // The subscriber gets all forty once, in id order, as they were answered.
    let answered: std::collections::HashMap<u64, (Option<String>, String)> = on_a
        .iter()
        .chain(&on_b)
        .map(|e| (e.id, (e.event.clone(), e.data.clone())))
        .collect();
    for want in 1..=40u64 {
        let e = tokio::time::timeout(T, sub.live.recv())
            .await
            .unwrap_or_else(|_| panic!("event {want} did not arrive"))
            .unwrap();
        assert_eq!(e.id, want);
        assert_eq!((e.event.clone(), e.data.clone()), answered[&want]);
    }
    stop.cancel();
}

#[tokio::test]
async fn a_group_whose_leader_is_cancelled_is_still_stored_and_answered() {
    use tidings_server::bus::Bus;
    use tidings_server::event::Position;
    let redis = Redis::start().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (a, _) = bus(&redis, &stop).await;
    let mut sub = a.subscribe("room", Position::Live).await.unwrap();

    // The first publish leads its group and yields; the second queues behind it; then
    // the leader's request goes away before the group is sent.
    let mut leader = a.publish("room", None, "first".into());
    assert!(futures_util::poll!(&mut leader).is_pending());
    let mut follower = a.publish("room", None, "second".into());
    assert!(futures_util::poll!(&mut follower).is_pending());
    drop(leader);

    let second = tokio::time::timeout(T, follower).await.unwrap().unwrap();
    assert_eq!((second.id, second.data.as_str()), (2, "second"));
    for (id, data) in [(1, "first"), (2, "second")] {
        let e = tokio::time::timeout(T, sub.live.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((e.id, e.data.as_str()), (id, data));
    }
    stop.cancel();
}

#[tokio::test]
async fn a_redis_sigkill_keeps_every_acknowledged_grouped_publish_and_its_id() {
    use std::sync::{Arc, Mutex};
    use tidings_server::bus::Bus;
    use tidings_server::event::Position;
    // The AOF written before each answer but not fsynced: what a killed process keeps
    // (the durability of the SQLite path); `appendfsync always` only adds the fsync.
    let mut redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "no"]).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (a, _) = bus_keeping(&redis, &stop, 100_000).await;
    let a = Arc::new(a);
    let acked = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    // Groups of 16 publishes at once, until Redis is gone (at most 500 groups).
    let publisher = tokio::spawn({
        let (a, acked) = (Arc::clone(&a), Arc::clone(&acked));
        async move {
            for round in 0..500u32 {
                let results = futures_util::future::join_all(
                    (0..16).map(|i| a.publish("room", None, format!("{round}-{i}"))),
                )
                .await;
                let mut failed = false;
                for r in results {
                    match r {
                        Ok(e) => acked.lock().unwrap().push((e.id, e.data.clone())),
                        Err(_) => failed = true,
                    }
                }
                if failed {
                    return;
                }
            }
        }
    });
    for _ in 0..500 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.kill();
    tokio::time::timeout(T, publisher).await.unwrap().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());

    redis.spawn().await;
    wait_bus_healthy(&a).await;
    let sub = a.subscribe("room", Position::After(0)).await.unwrap();
    assert!(sub.reset.is_none(), "{:?}", sub.reset);
    let ids: Vec<u64> = sub.replay.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=sub.head).collect::<Vec<u64>>(),
        "ids without a gap"
    );
    let stored: std::collections::HashMap<u64, &str> =
        sub.replay.iter().map(|e| (e.id, e.data.as_str())).collect();
    for (id, data) in &acked {
        assert_eq!(
            stored.get(id).copied(),
            Some(data.as_str()),
            "acknowledged event {id} after the restart"
        );
    }
    stop.cancel();
}
