//! The hub path (fresh SSE connections served without hyper) against the hyper path
//! (streams on kept-alive connections), over raw TCP so the connection reuse is exact.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{start, Call, TestServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// The protocol hello every response sends after `retry:` (docs/PROTOCOL.md).
const HELLO: &str = "event: tidings\ndata: {\"protocol\":\"tidings\",\"version\":1,\"capabilities\":[\"numeric-ids\",\"replay\",\"reset\",\"end\",\"poll\",\"mux\"],\"mux\":\"/api/mux\"}\n\n";

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

fn sse_get(path: &str, token: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n")
}

/// Reads until `needle` has been seen (in the raw, still chunk-encoded bytes).
async fn read_until(sock: &mut TcpStream, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 8192];
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, sock.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"))
            .unwrap();
        assert!(n > 0, "closed before {needle:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// A POST, then a stream on the same socket (so hyper serves the stream); returns the
/// socket and what it has read, up to the stream's `connected` event.
async fn stream_after_post(s: &TestServer, token: &str, channel: &str) -> (TcpStream, String) {
    let mut sock = connect(s).await;
    let body = json!({"type": "t", "object": {"n": 0}}).to_string();
    let post = format!(
        "POST /api/v1/events/{channel} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(post.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(
        &mut sock,
        &mut seen,
        &format!("\"channel\":\"{channel}\"}}"),
    )
    .await;
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
    sock.write_all(sse_get(&format!("/api/v1/events/{channel}"), token).as_bytes())
        .await
        .unwrap();
    read_until(&mut sock, &mut seen, "event: connected").await;
    (sock, seen)
}

async fn stat(s: &TestServer, path: &[&str]) -> u64 {
    let mut v = s.stats().await;
    for p in path {
        v = v[*p].clone();
    }
    v.as_u64().unwrap_or(0)
}

async fn wait_stat(s: &TestServer, path: &[&str], want: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = stat(s, path).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path:?} stayed {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn publish(s: &TestServer, token: &str, n: u64) {
    let r = s
        .post("/api/v1/events/project.h")
        .bearer_auth(token)
        .json(&json!({"type": "t", "object": {"n": n}}))
        .call()
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_fresh_stream_goes_to_the_hub_and_a_kept_alive_one_to_hyper() {
    let s = start(&[]).await;
    let t = s.token("h", &["project.*"]).await;

    let mut fresh = connect(&s).await;
    fresh
        .write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
        .await
        .unwrap();
    let mut a = String::new();
    read_until(&mut fresh, &mut a, "event: connected").await;
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    assert!(
        a.contains("content-type: text/event-stream\r\n")
            && a.contains("transfer-encoding: chunked\r\n"),
        "{a}"
    );
    assert!(
        a.contains("\r\n\r\n") && a.contains("retry: 1000\n\n"),
        "{a}"
    );
    assert_eq!(stat(&s, &["streams_detached"]).await, 1);

    // A POST first, then a stream on the same connection: hyper serves both.
    let mut reused = connect(&s).await;
    let body = json!({"type": "t", "object": {"n": 0}}).to_string();
    let post = format!(
        "POST /api/v1/events/project.h HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    reused.write_all(post.as_bytes()).await.unwrap();
    let mut b = String::new();
    read_until(&mut reused, &mut b, "\"channel\":\"project.h\"}").await;
    assert!(b.starts_with("HTTP/1.1 200 OK"), "{b}");
    reused
        .write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
        .await
        .unwrap();
    b.clear();
    read_until(&mut reused, &mut b, "event: connected").await;
    assert!(b.contains("transfer-encoding: chunked"), "{b}");
    // Both paths send the same prelude: `retry:`, then the protocol hello.
    for (path, seen) in [("hub", &a), ("hyper", &b)] {
        assert!(
            seen.contains(&format!("retry: 1000\n\n{HELLO}")),
            "{path}: {seen}"
        );
    }
    assert_eq!(
        stat(&s, &["streams_detached"]).await,
        1,
        "the kept-alive stream stayed with hyper"
    );
    assert_eq!(stat(&s, &["connections", "total"]).await, 2);

    publish(&s, &t, 1).await;
    read_until(&mut fresh, &mut a, "\"n\":1").await;
    read_until(&mut reused, &mut b, "\"n\":1").await;
    assert!(
        a.contains("id: 2\n") && b.contains("id: 2\n"),
        "both see the same id"
    );
    s.stop().await;
}

#[tokio::test]
async fn closed_peers_leave_the_hub_promptly() {
    let s = start(&["--max-connections-per-user", "100"]).await;
    let t = s.token("c", &["project.*"]).await;
    let mut socks = Vec::new();
    for _ in 0..40 {
        let mut c = connect(&s).await;
        c.write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
            .await
            .unwrap();
        let mut seen = String::new();
        read_until(&mut c, &mut seen, "event: connected").await;
        socks.push(c);
    }
    wait_stat(&s, &["connections", "total"], 40).await;
    let closed = Instant::now();
    drop(socks);
    wait_stat(&s, &["connections", "total"], 0).await;
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "noticed in {:?}",
        closed.elapsed()
    );
    s.stop().await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_closed_while_others_get_everything() {
    let s = start(&[
        "--write-stall-secs",
        "1",
        "--subscriber-queue",
        "65536",
        "--max-body-bytes",
        "70000",
    ])
    .await;
    let t = s.token("s", &["project.*"]).await;
    let mut stuck = connect(&s).await;
    stuck
        .write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
        .await
        .unwrap();
    read_until(&mut stuck, &mut String::new(), "event: connected").await;
    let mut good = s.sse("/api/v1/events/project.h", None, Some(&t)).await;
    let pad = "x".repeat(32 * 1024);
    let total = 400u64;
    for n in 1..=total {
        let r = s
            .post("/api/v1/events/project.h")
            .bearer_auth(&t)
            .json(&json!({"type": "t", "object": {"n": n, "pad": pad}}))
            .call()
            .await;
        assert_eq!(r.status(), 200);
        let e = good.next_non_heartbeat(WAIT).await.unwrap();
        assert_eq!(e.id_num(), n, "in order, nothing missed");
    }
    wait_stat(&s, &["writes_stalled"], 1).await;
    wait_stat(&s, &["connections", "total"], 1).await;
    assert_eq!(
        stat(&s, &["subscribers_lagged"]).await,
        0,
        "closed for stalling, not for lag"
    );
    s.stop().await;
}

#[tokio::test]
async fn heartbeats_reach_idle_hub_connections() {
    let s = start(&["--heartbeat-secs", "0.2"]).await;
    let t = s.token("b", &["project.*"]).await;
    let mut c = connect(&s).await;
    c.write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut c, &mut seen, "event: connected").await;
    let from = seen.len();
    let started = Instant::now();
    while seen[from..]
        .matches("event: heartbeat\ndata: {\"timestamp\":\"")
        .count()
        < 3
    {
        let mut more = [0u8; 512];
        let n = tokio::time::timeout(WAIT, c.read(&mut more))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed");
        seen.push_str(&String::from_utf8_lossy(&more[..n]));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "3 heartbeats at 0.2 s took {:?}",
        started.elapsed()
    );
    s.stop().await;
}

/// Raw SSE ids seen in `text` (chunk framing aside: frames are never split across the
/// `id:` line by this server).
fn ids_in(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

#[tokio::test]
async fn connections_joining_mid_burst_catch_up_without_gaps_or_duplicates() {
    let s = start(&[
        "--max-connections-per-user",
        "100",
        "--subscriber-queue",
        "1024",
    ])
    .await;
    let t = s.token("j", &["project.*"]).await;
    let total = 300u64;
    let publisher = {
        let (url, t) = (s.url.clone(), t.clone());
        tokio::spawn(async move {
            let c = common::client();
            for n in 1..=total {
                let r = c
                    .post(format!("{url}/api/v1/events/project.j"))
                    .bearer_auth(&t)
                    .json(&json!({"type": "t", "object": {"n": n}}))
                    .call()
                    .await;
                assert_eq!(r.status(), 200);
            }
        })
    };
    let mut readers = Vec::new();
    for i in 0..24u64 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let mut c = connect(&s).await;
        // Half resume from an earlier id, half start live.
        let from = if i % 2 == 0 {
            format!("Last-Event-ID: {}\r\n", i * 5)
        } else {
            String::new()
        };
        let req = format!("GET /api/v1/events/project.j HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\nAuthorization: Bearer {t}\r\n{from}\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut seen = String::new();
            read_until(&mut c, &mut seen, &format!("id: {total}\n")).await;
            (i, ids_in(&seen))
        }));
    }
    publisher.await.unwrap();
    for r in readers {
        let (i, ids) = r.await.unwrap();
        let first = *ids.first().unwrap();
        if i % 2 == 0 {
            assert!(
                first <= i * 5 + 1,
                "reader {i} resumed after {} but started at {first}",
                i * 5
            );
        }
        let want: Vec<u64> = (first..=total).collect();
        // A live reader's first id is the greeting's head id; events follow it.
        let got: Vec<u64> = ids
            .iter()
            .copied()
            .skip_while(|id| *id == first && i % 2 == 1)
            .collect();
        let want: Vec<u64> = if i % 2 == 1 {
            want.into_iter().skip(1).collect()
        } else {
            want
        };
        assert_eq!(got, want, "reader {i}: gapless and duplicate-free");
    }
    assert!(stat(&s, &["streams_detached"]).await >= 24);
    s.stop().await;
}

#[tokio::test]
async fn a_hub_connection_that_falls_behind_gets_the_notice_and_resumes() {
    let s = start(&["--subscriber-queue", "4", "--max-body-bytes", "70000"]).await;
    let t = s.token("l", &["project.*"]).await;
    let mut slow = connect(&s).await;
    slow.write_all(sse_get("/api/v1/events/project.l", &t).as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut slow, &mut seen, "event: connected").await;
    let pad = "x".repeat(32 * 1024);
    let total = 300u64;
    for n in 1..=total {
        let r = s
            .post("/api/v1/events/project.l")
            .bearer_auth(&t)
            .json(&json!({"type": "t", "object": {"n": n, "pad": pad}}))
            .call()
            .await;
        assert_eq!(r.status(), 200);
    }
    wait_stat(&s, &["subscribers_lagged"], 1).await;
    // The slow reader now reads what was in flight, then the end of the body.
    read_until(&mut slow, &mut seen, "\r\n0\r\n\r\n").await;
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, slow.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let mut ids = ids_in(&seen);
    ids.retain(|id| *id > 0);
    assert!((ids.len() as u64) < total, "it really fell behind");
    let mut resumed = s
        .sse(
            "/api/v1/events/project.l",
            Some(&ids.last().unwrap().to_string()),
            Some(&t),
        )
        .await;
    while (ids.len() as u64) < total {
        ids.push(resumed.next_non_heartbeat(WAIT).await.unwrap().id_num());
    }
    assert_eq!(
        ids,
        (1..=total).collect::<Vec<_>>(),
        "no loss, no duplicates"
    );
    s.stop().await;
}

#[tokio::test]
async fn closed_peers_are_uncounted_promptly_on_hyper_and_multiplexed_too() {
    let s = start(&["--max-connections-per-user", "100"]).await;
    let t = s.token("k", &["project.*"]).await;
    // A stream after a POST on the same connection (hyper serves it), and a fresh
    // multiplexed one (the hub serves it); nothing is published after they close, so
    // only the peer's close can tell the server.
    let (reused, _) = stream_after_post(&s, &t, "project.k").await;
    let mut mux = connect(&s).await;
    mux.write_all(
        sse_get(
            "/api/mux?streams=/api/v1/events/project.k,/api/v1/events/project.l",
            &t,
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut m = String::new();
    read_until(
        &mut mux,
        &mut m,
        "event: /api/v1/events/project.l connected",
    )
    .await;
    wait_stat(&s, &["connections", "total"], 2).await;
    assert_eq!(stat(&s, &["connections", "by_user", "k"]).await, 3);
    for sock in [reused, mux] {
        let closed = Instant::now();
        let before = stat(&s, &["connections", "total"]).await;
        drop(sock);
        wait_stat(&s, &["connections", "total"], before - 1).await;
        assert!(
            closed.elapsed() < Duration::from_millis(500),
            "noticed in {:?}",
            closed.elapsed()
        );
    }
    wait_stat(&s, &["connections", "by_user", "k"], 0).await;
    s.stop().await;
}

#[tokio::test]
async fn a_stream_on_a_kept_alive_connection_counts_once_against_the_socket_cap() {
    let s = start(&["--max-connections", "3", "--max-streams", "3"]).await;
    let t = s.token("held", &["project.*"]).await;
    // A POST, then a stream on the same socket: hyper serves it on a socket that is
    // already counted, so the stream must not count a second time.
    let (reused, _) = stream_after_post(&s, &t, "project.h").await;
    // Two fresh streams fill the cap of 3 (were the first stream counted twice, the
    // second of these would be refused).
    let mut fresh = Vec::new();
    for _ in 0..2 {
        let mut sock = connect(&s).await;
        sock.write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
            .await
            .unwrap();
        let mut got = String::new();
        read_until(&mut sock, &mut got, "\r\n\r\n").await;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        fresh.push(sock);
    }
    // The cap is reached now: the next socket is refused.
    let mut late = connect(&s).await;
    late.write_all(sse_get("/api/v1/events/project.h", &t).as_bytes())
        .await
        .unwrap();
    let mut got = String::new();
    read_until(&mut late, &mut got, "\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    drop((reused, fresh, late));
    s.stop().await;
}
