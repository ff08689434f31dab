use super::*;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;

fn parts(
    rx: mpsc::Receiver<Arc<Event>>,
    replay: Vec<Arc<Event>>,
    hb: Duration,
    shutdown: CancellationToken,
) -> SseParts {
    SseParts {
        greeting: Vec::new(),
        mark_head: false,
        subscription: Subscription::new(None, replay, 0, rx, None),
        heartbeat: Heartbeat::Named,
        heartbeat_every: hb,
        terminal: None,
        ended: None,
        lag_notice: None,
        shutdown,
        guard: None,
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// What every response starts with: `retry:` and the protocol hello.
const START: &str = "retry: 1000\n\nevent: tidings\ndata: {\"protocol\":\"tidings\",\"version\":1,\"capabilities\":[\"numeric-ids\",\"replay\",\"reset\",\"end\",\"poll\",\"mux\"],\"mux\":\"/api/mux\"}\n\n";

#[test]
fn prelude_exact_bytes_hello_before_the_greeting_and_its_head_id() {
    let (_tx, rx) = mpsc::channel(4);
    let mut p = parts(
        rx,
        vec![],
        Duration::from_secs(30),
        CancellationToken::new(),
    );
    p.subscription.head = 7;
    p.mark_head = true;
    greet(&mut p.greeting, Some("connected"), "{}");
    let pre = prelude(&mut p);
    assert_eq!(
        text(&pre.bytes),
        format!("{START}id: 7\nevent: connected\ndata: {{}}\n\n"),
        "the hello carries no id: the head id joins the greeting's frame"
    );
    assert_eq!((pre.last_id, pre.done), (7, false));
}

#[tokio::test(start_paused = true)]
async fn heartbeat_on_a_paused_clock() {
    let (_tx, rx) = mpsc::channel(4);
    let s = sse_stream(parts(
        rx,
        vec![],
        Duration::from_secs(30),
        CancellationToken::new(),
    ));
    tokio::pin!(s);
    let start = Instant::now();
    assert_eq!(text(&s.next().await.unwrap().unwrap()), START);
    let hb = s.next().await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert!(
        text(&hb).starts_with("event: heartbeat\ndata: {\"timestamp\":\""),
        "{}",
        text(&hb)
    );
    s.next().await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn live_event_before_heartbeat_and_dedupe() {
    let (tx, rx) = mpsc::channel(4);
    let replay = vec![Arc::new(Event {
        id: 1,
        event: None,
        data: "a".into(),
    })];
    let s = sse_stream(parts(
        rx,
        replay,
        Duration::from_secs(30),
        CancellationToken::new(),
    ));
    tokio::pin!(s);
    assert_eq!(
        text(&s.next().await.unwrap().unwrap()),
        format!("{START}id: 1\ndata: a\n\n")
    );
    tx.send(Arc::new(Event {
        id: 1,
        event: None,
        data: "dup".into(),
    }))
    .await
    .unwrap();
    tx.send(Arc::new(Event {
        id: 2,
        event: Some("x".into()),
        data: "b".into(),
    }))
    .await
    .unwrap();
    let start = Instant::now();
    assert_eq!(
        text(&s.next().await.unwrap().unwrap()),
        "event: x\nid: 2\ndata: b\n\n"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    drop(tx);
    assert!(
        s.next().await.is_none(),
        "closed bus sender ends the stream"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_the_stream() {
    let (_tx, rx) = mpsc::channel(4);
    let token = CancellationToken::new();
    let s = sse_stream(parts(rx, vec![], Duration::from_secs(30), token.clone()));
    tokio::pin!(s);
    s.next().await.unwrap().unwrap();
    token.cancel();
    assert!(s.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn lagging_subscriber_gets_the_notice_then_the_stream_ends() {
    let (tx, rx) = mpsc::channel(4);
    let mut p = parts(
        rx,
        vec![],
        Duration::from_secs(30),
        CancellationToken::new(),
    );
    p.lag_notice = Some(|| frame(None, None, r#"{"type":"error","message":"behind"}"#));
    let s = sse_stream(p);
    tokio::pin!(s);
    s.next().await.unwrap().unwrap();
    tx.send(Arc::new(Event {
        id: 1,
        event: None,
        data: "a".into(),
    }))
    .await
    .unwrap();
    drop(tx); // what the bus does when the queue is full
    assert_eq!(
        text(&s.next().await.unwrap().unwrap()),
        "id: 1\ndata: a\n\n",
        "queued events first"
    );
    assert_eq!(
        text(&s.next().await.unwrap().unwrap()),
        "data: {\"type\":\"error\",\"message\":\"behind\"}\n\n"
    );
    assert!(s.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn finite_stream_ends_after_terminal_event() {
    let (tx, rx) = mpsc::channel(4);
    let mut p = parts(
        rx,
        vec![],
        Duration::from_secs(30),
        CancellationToken::new(),
    );
    p.terminal = Some(|e| (e.name() == "completed").then_some("completed"));
    let s = sse_stream(p);
    tokio::pin!(s);
    s.next().await.unwrap().unwrap();
    tx.send(Arc::new(Event {
        id: 1,
        event: Some("completed".into()),
        data: "{}".into(),
    }))
    .await
    .unwrap();
    assert_eq!(
        text(&s.next().await.unwrap().unwrap()),
        "event: completed\nid: 1\ndata: {}\n\nevent: end\ndata: {\"reason\":\"completed\"}\n\n"
    );
    assert!(s.next().await.is_none());
}
