//! Test helpers: a real server on 127.0.0.1:0, a real HTTP client and a small SSE reader.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use futures_util::{Stream, StreamExt};
use tidings_server::{AppState, Config, Server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running in-process server.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<std::io::Result<()>>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

pub async fn start(extra: &[&str]) -> TestServer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut s = start_in(&dir, extra).await;
    s._tmp = Some(tmp);
    s
}

pub async fn start_in(dir: &Path, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "tidings-server",
        "--dev",
        "--addr",
        "127.0.0.1:0",
        "--heartbeat-secs",
        "30",
        "--video-step-ms",
        "20",
    ];
    let d = dir.to_str().unwrap().to_owned();
    args.extend(["--data-dir", &d]);
    args.extend(extra);
    let config = Config::try_parse_from(args).unwrap();
    let server = Server::bind(config).await.unwrap();
    let url = format!("{}://{}", server.scheme(), server.local_addr().unwrap());
    let state = server.state();
    let shutdown = server.shutdown_token();
    let handle = tokio::spawn(server.run());
    TestServer {
        url,
        state,
        shutdown,
        handle,
        dir: dir.to_path_buf(),
        _tmp: None,
    }
}

impl TestServer {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        client().get(format!("{}{path}", self.url))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        client().post(format!("{}{path}", self.url))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        client().delete(format!("{}{path}", self.url))
    }

    pub async fn token(&self, user: &str, channels: &[&str]) -> String {
        let r: serde_json::Value = self
            .post("/api/auth/dev-token")
            .json(&serde_json::json!({"user_id": user, "channels": channels}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"].as_str().unwrap().to_owned()
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.get("/api/stats")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Creates a video job from `body` (asserts 202 and the job's URLs); returns its id.
    pub async fn create_video(&self, body: serde_json::Value) -> String {
        let r = self
            .post("/api/chat/create-video")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let j: serde_json::Value = r.json().await.unwrap();
        let id = j["job_id"].as_str().unwrap().to_owned();
        assert_eq!(j["status_url"], format!("/api/video-progress/{id}/status"));
        assert_eq!(j["progress_url"], format!("/api/video-progress/{id}"));
        id
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Opens an SSE stream (asserts 200 + text/event-stream).
    pub async fn sse(&self, path: &str, last_event_id: Option<&str>, bearer: Option<&str>) -> Sse {
        let mut req = self.get(path).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Sse::new(res.bytes_stream())
    }

    pub async fn poll(&self, path: &str, bearer: Option<&str>) -> serde_json::Value {
        let mut req = self.get(path);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.unwrap()
    }
}

/// Sends a request a test built; a transport failure fails the test.
#[allow(async_fn_in_trait)]
pub trait Call {
    /// The response, whatever its status.
    async fn call(self) -> reqwest::Response;
    /// Only the status code.
    async fn status_code(self) -> u16;
    /// The body as JSON, whatever the status.
    async fn read_json<T: serde::de::DeserializeOwned>(self) -> T;
}

impl Call for reqwest::RequestBuilder {
    async fn call(self) -> reqwest::Response {
        self.send().await.unwrap()
    }

    async fn status_code(self) -> u16 {
        self.call().await.status().as_u16()
    }

    async fn read_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.call().await.json().await.unwrap()
    }
}

/// The URL a spawned `tidings-server` prints on its first stdout line
/// (`tidings-server listening on <url>`); takes the child's stdout.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("tidings-server listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ev {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
    pub retry: Option<u64>,
}

impl Ev {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
    pub fn id_num(&self) -> u64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// A small WHATWG-style SSE reader over a real response body.
pub struct Sse {
    body: ByteStream,
    buf: Vec<u8>,
    pub raw: Vec<u8>,
    pub closed: bool,
    /// The protocol hello (`event: tidings`), consumed by `next` as a Tidings client does.
    pub hello: Option<Ev>,
}

impl Sse {
    /// Reads `s`: a reqwest body's `bytes_stream()`, or any other client's body chunks.
    pub fn new<E>(s: impl Stream<Item = Result<Bytes, E>> + Send + 'static) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Sse {
            body: Box::pin(s.map(|r| r.map_err(|e| Box::new(e) as BoxError))),
            buf: Vec::new(),
            raw: Vec::new(),
            closed: false,
            hello: None,
        }
    }

    /// Next frame (events and retry-only frames), or None when the stream ends or `wait` passes.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Ev> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..pos + 2).collect();
                let text = String::from_utf8(block).unwrap();
                let mut ev = Ev::default();
                let mut data: Vec<&str> = Vec::new();
                for line in text.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    match k {
                        "id" => ev.id = Some(v.to_owned()),
                        "event" => ev.event = v.to_owned(),
                        "data" => data.push(v),
                        "retry" => ev.retry = v.parse().ok(),
                        _ => {}
                    }
                }
                ev.data = data.join("\n");
                if ev.event.is_empty() {
                    ev.event = "message".into();
                }
                return Some(ev);
            }
            if self.closed {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(chunk))) => {
                    self.raw.extend_from_slice(&chunk);
                    self.buf.extend_from_slice(&chunk);
                }
                Ok(_) => self.closed = true,
            }
        }
    }

    /// Next real event (skips retry-only frames and keeps the protocol hello in `hello`).
    pub async fn next(&mut self, wait: Duration) -> Option<Ev> {
        loop {
            let f = self.next_frame(wait).await?;
            if f.retry.is_some() && f.data.is_empty() {
                continue;
            }
            if f.event == "tidings" {
                self.hello = Some(f);
                continue;
            }
            return Some(f);
        }
    }

    /// Next event that is not a heartbeat.
    pub async fn next_non_heartbeat(&mut self, wait: Duration) -> Option<Ev> {
        loop {
            let e = self.next(wait).await?;
            // Per-connection events: heartbeats and the named `connected` greeting of channels.
            let hb = e.event == "heartbeat"
                || e.event == "connected"
                || e.data.contains("\"type\":\"heartbeat\"");
            if !hb {
                return Some(e);
            }
        }
    }

    /// Reads until the server closes the stream (bounded by `wait`); returns every event.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Ev> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(e) = self
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            out.push(e);
        }
        out
    }
}

pub const T: Duration = Duration::from_secs(5);
