//! A connection flood against a real server over real TCP, with lowered caps so the test
//! stays small: one address opening many streams gets 429 past its limit, the process
//! 503 past its stream cap, and a socket past the connection cap a 503 at once; every
//! refusal carries `Retry-After` and closes its connection, while another client's stream
//! and REST calls keep working, and `/api/stats` counts the refusals.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Call, Sse, TestServer, T};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const STREAM: &str = "/api/team-answers/sse/";

fn addr(s: &TestServer) -> SocketAddr {
    s.url.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to the server from the loopback address `from` (127.0.0.x).
async fn connect_from(s: &TestServer, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr(s)).await.unwrap()
}

/// The status line and headers of the answer (lowercased), read within `T`.
async fn read_head(c: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let until = tokio::time::Instant::now() + T;
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout_at(until, c.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).to_lowercase()
}

/// True when the server closes the connection within `T` (reading the rest of the answer).
async fn closed_by_server(c: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    let until = tokio::time::Instant::now() + T;
    loop {
        match tokio::time::timeout_at(until, c.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Opens a stream from `from`: `Ok(socket)` when it is served (200), else the head of
/// the refusal, after checking the server closed the connection.
async fn open_stream(s: &TestServer, from: [u8; 4], extra: &str) -> Result<TcpStream, String> {
    let mut c = connect_from(s, from).await;
    let req =
        format!("GET {STREAM} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut c).await;
    if head.starts_with("http/1.1 200") {
        return Ok(c);
    }
    assert!(
        closed_by_server(&mut c).await,
        "a refusal holds no connection: {head}"
    );
    Err(head)
}

fn status(head: &str) -> &str {
    &head[9..12]
}

/// A reqwest client whose connections come from `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn bystander_stream(s: &TestServer) -> Sse {
    let res = client_from([127, 0, 0, 3])
        .get(format!("{}{STREAM}", s.url))
        .header("accept", "text/event-stream")
        .call()
        .await;
    assert_eq!(res.status(), 200);
    let mut sse = Sse::new(res.bytes_stream());
    let greeting = sse.next(T).await.unwrap();
    assert!(greeting.data.contains("connected"), "{greeting:?}");
    sse
}

/// REST works from another address: stats, and a create whose event the bystander gets.
async fn rest_still_answers(s: &TestServer, bystander: &mut Sse, n: i64) {
    let http = client_from([127, 0, 0, 3]);
    let started = Instant::now();
    let stats = http.get(format!("{}/api/stats", s.url)).call().await;
    assert_eq!(stats.status(), 200);
    let created = http
        .post(format!("{}/api/team-answers/", s.url))
        .json(&json!({"video_name": "flood", "frame_index": n, "url": "u"}))
        .call()
        .await;
    assert_eq!(created.status(), 201);
    let e = bystander
        .next_non_heartbeat(T)
        .await
        .expect("the bystander's event");
    assert_eq!(e.json()["data"]["frame_index"], n);
    println!(
        "REST during the flood: stats + create + delivery in {} ms",
        started.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_flooding_streams_is_refused_while_others_keep_working() {
    let s = common::start(&["--max-streams-per-address", "10"]).await;
    let mut bystander = bystander_stream(&s).await;
    let started = Instant::now();
    let flood = (0..150).map(|_| open_stream(&s, [127, 0, 0, 2], ""));
    // REST and the bystander's stream are checked while the flood runs, and after it.
    let (results, ()) = tokio::join!(
        futures_util::future::join_all(flood),
        rest_still_answers(&s, &mut bystander, 0)
    );
    let took = started.elapsed();
    let (held, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(held.len(), 10, "the address's limit");
    for head in refused.iter().map(|r| r.as_ref().unwrap_err()) {
        assert_eq!(status(head), "429", "{head}");
        assert!(head.contains("retry-after: 5"), "{head}");
    }
    println!(
        "flood: 150 streams from one address in {} ms: {} served, {} refused with 429",
        took.as_millis(),
        held.len(),
        refused.len()
    );
    rest_still_answers(&s, &mut bystander, 1).await;
    let stats = s.stats().await;
    assert_eq!(stats["refused"]["per_address"], 140, "{stats}");
    assert_eq!(stats["connections"]["total"], 11, "{stats}");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("tidings_streams_refused_per_address_total 140"),
        "{metrics}"
    );
    // Closing the held streams frees the address.
    drop(held);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = open_stream(&s, [127, 0, 0, 2], "").await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the address may open streams again");
    s.stop().await;
}

#[tokio::test]
async fn past_the_stream_cap_and_the_connection_cap_the_server_answers_503_at_once() {
    let s = common::start(&[
        "--max-streams",
        "20",
        "--max-connections",
        "40",
        "--max-streams-per-address",
        "1000",
    ])
    .await;
    let mut bystander = bystander_stream(&s).await;
    // Ten at a time from eight addresses, so the sockets in flight stay below the
    // connection cap and every refusal here is the stream cap's.
    let mut results = Vec::new();
    for batch in 0..8u8 {
        let flood = (0..10).map(|_| open_stream(&s, [127, 0, 0, 10 + batch], ""));
        results.extend(futures_util::future::join_all(flood).await);
    }
    let (held, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(held.len(), 19, "the cap, less the bystander's stream");
    for head in refused.iter().map(|r| r.as_ref().unwrap_err()) {
        assert_eq!(status(head), "503", "{head}");
        assert!(head.contains("retry-after: 5"), "{head}");
    }
    // Sockets for REST are left: calls still work with the streams at their cap.
    rest_still_answers(&s, &mut bystander, 2).await;
    // Idle sockets (a head never sent) fill the rest up to --max-connections.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect_from(&s, [127, 0, 0, 20]).await);
    }
    let started = Instant::now();
    let mut late = connect_from(&s, [127, 0, 0, 21]).await;
    late.write_all(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut late).await;
    assert_eq!(status(&head), "503", "{head}");
    assert!(head.contains("retry-after: 5"), "{head}");
    assert!(closed_by_server(&mut late).await);
    println!(
        "past the connection cap: 503 and closed in {} ms",
        started.elapsed().as_millis()
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats: Value = s.stats().await;
    assert_eq!(stats["refused"]["streams_cap"], 61, "{stats}");
    assert_eq!(stats["refused"]["sockets_cap"], 1, "{stats}");
    assert_eq!(stats["caps"]["max_streams"], 20, "{stats}");
    s.stop().await;
}

#[tokio::test]
async fn the_proxy_header_names_the_client_only_when_trusted() {
    let trusting = common::start(&[
        "--max-streams-per-address",
        "2",
        "--trust-proxy-header",
        "x-forwarded-for",
    ])
    .await;
    let xff = |ip: &str| format!("X-Forwarded-For: 203.0.113.9, {ip}\r\n");
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            open_stream(&trusting, [127, 0, 0, 1], &xff("10.0.0.1"))
                .await
                .unwrap(),
        );
    }
    let refused = open_stream(&trusting, [127, 0, 0, 1], &xff("10.0.0.1")).await;
    assert_eq!(status(&refused.unwrap_err()), "429");
    held.push(
        open_stream(&trusting, [127, 0, 0, 1], &xff("10.0.0.2"))
            .await
            .unwrap(),
    );
    trusting.stop().await;

    // Without the flag the header is the client's word only: the peer address counts.
    let plain = common::start(&["--max-streams-per-address", "2"]).await;
    let mut held = Vec::new();
    for ip in ["10.0.0.1", "10.0.0.2"] {
        held.push(open_stream(&plain, [127, 0, 0, 1], &xff(ip)).await.unwrap());
    }
    let refused = open_stream(&plain, [127, 0, 0, 1], &xff("10.0.0.3")).await;
    assert_eq!(status(&refused.unwrap_err()), "429");
    plain.stop().await;
}
