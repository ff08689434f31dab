//! TLS (`--tls-cert`, `--tls-key`) over real sockets, with a rustls client and a
//! self-signed certificate made at test time by the openssl CLI: ALPN picks h2, and one
//! HTTP/2 connection carries streams, REST calls, the polling form and the multiplexed
//! set; HTTP/1.1 works too; past the connection cap a TLS client gets 503 with
//! `Retry-After`; shutdown ends open HTTP/2 streams; the binary prints its https URL, and
//! refuses to start, with a clear message, on a missing, unreadable or invalid file or a
//! key that is not the certificate's.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, BodyStream, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use common::{listening_url, Sse, TestServer, T};

const BIN: &str = env!("CARGO_BIN_EXE_tidings-server");

/// A self-signed certificate for `localhost` and 127.0.0.1, its key, and a key of
/// another pair.
struct Certs {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI makes the test certificate (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other-key.pem",
        ],
    );
    Certs {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        other_key: dir.path().join("other-key.pem"),
        dir,
    }
}

impl Certs {
    fn flags(&self) -> [String; 4] {
        [
            "--tls-cert".into(),
            self.cert.to_str().unwrap().into(),
            "--tls-key".into(),
            self.key.to_str().unwrap().into(),
        ]
    }
}

async fn start_tls(certs: &Certs, extra: &[&str]) -> TestServer {
    let flags = certs.flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(extra);
    let s = common::start(&args).await;
    assert!(s.url.starts_with("https://"), "{}", s.url);
    s
}

/// One client connection, speaking what ALPN chose.
enum Client {
    H2(http2::SendRequest<Full<Bytes>>),
    H1(http1::SendRequest<Full<Bytes>>),
}

struct Conn {
    client: Client,
    alpn: Option<Vec<u8>>,
    authority: String,
}

/// Connects to `url` over TLS trusting only the test certificate, offering `alpn`.
async fn connect(url: &str, certs: &Certs, alpn: &[&[u8]]) -> Conn {
    let addr = url.strip_prefix("https://").unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&certs.cert).unwrap())
        .unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(tls);
    let client = if alpn.as_deref() == Some(b"h2") {
        let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        Client::H2(send)
    } else {
        let (send, conn) = http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Client::H1(send)
    };
    let port = addr.rsplit(':').next().unwrap();
    Conn {
        client,
        alpn,
        authority: format!("localhost:{port}"),
    }
}

impl Conn {
    async fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> hyper::Result<Response<Incoming>> {
        let mut req = Request::builder().method(method);
        req = match self.client {
            Client::H2(_) => req.uri(format!("https://{}{path}", self.authority)),
            Client::H1(_) => req.uri(path).header("host", &self.authority),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(v.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).unwrap();
        match &mut self.client {
            Client::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Client::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Response<Incoming> {
        self.try_send(method, path, headers, body).await.unwrap()
    }

    /// Status and JSON body (`null` when the body is not JSON).
    async fn json(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let res = self.send(method, path, headers, body).await;
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn sse(&mut self, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut all = vec![("accept", "text/event-stream")];
        all.extend_from_slice(headers);
        let res = self.send("GET", path, &all, None).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        if matches!(self.client, Client::H2(_)) {
            assert_eq!(res.version(), hyper::Version::HTTP_2);
            assert!(
                res.headers().get("connection").is_none(),
                "no connection-specific header in HTTP/2"
            );
        }
        Sse::new(data_frames(res.into_body()))
    }
}

fn data_frames(body: Incoming) -> impl Stream<Item = Result<Bytes, hyper::Error>> {
    BodyStream::new(body).filter_map(|frame| {
        std::future::ready(match frame {
            Ok(frame) => frame.into_data().ok().map(Ok),
            Err(e) => Some(Err(e)),
        })
    })
}

/// The next event that is not a greeting or a heartbeat (the team-answers stream greets
/// with an unnamed `{"type":"connected"}`).
async fn next_event(sse: &mut Sse) -> common::Ev {
    loop {
        let e = sse.next_non_heartbeat(T).await.unwrap();
        if !e.data.contains(r#""type":"connected""#) {
            return e;
        }
    }
}

async fn dev_token(c: &mut Conn, user: &str, channels: &[&str]) -> String {
    let (status, body) = c
        .json(
            "POST",
            "/api/auth/dev-token",
            &[],
            Some(json!({"user_id": user, "channels": channels})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    format!("Bearer {}", body["token"].as_str().unwrap())
}

async fn create_answer(c: &mut Conn, frame: u64) -> Value {
    let (status, row) = c
        .json(
            "POST",
            "/api/team-answers/",
            &[],
            Some(json!({"video_name": "tls.mp4", "frame_index": frame, "url": "http://x/f.jpg"})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    row
}

#[tokio::test]
async fn alpn_picks_h2_and_one_connection_carries_streams_rest_polls_and_the_multiplexed_set() {
    let certs = certs();
    let s = start_tls(&certs, &[]).await;
    let mut c = connect(&s.url, &certs, &[b"h2", b"http/1.1"]).await;
    assert_eq!(c.alpn.as_deref(), Some(&b"h2"[..]));
    let bearer = dev_token(&mut c, "alice", &["tls.*"]).await;
    let auth = [("authorization", bearer.as_str())];

    // Eleven streams on the one connection: more than a browser's six HTTP/1.1 sockets.
    let mut answers = c.sse("/api/team-answers/sse/", &[]).await;
    let mut channels = Vec::new();
    for i in 0..8 {
        channels.push(c.sse(&format!("/api/v1/events/tls.{i}"), &auth).await);
    }
    let mut bell = c.sse("/api/notifications/stream", &auth).await;
    let mut mux = c
        .sse(
            "/api/mux?streams=/api/team-answers/sse/,/api/v1/events/tls.0",
            &auth,
        )
        .await;
    let (status, stats) = c.json("GET", "/api/stats", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["connections"]["total"], 11, "{stats}");
    assert_eq!(stats["streams_detached"], 0, "hyper serves TLS streams");

    // Publishes on the same connection while the streams are open answer at once.
    let started = Instant::now();
    let row = create_answer(&mut c, 1).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let (status, r) = c
            .json(
                "POST",
                &format!("/api/v1/events/tls.{i}"),
                &auth,
                Some(json!({"type": "task", "object": {"n": i}})),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        ids.push(r["id"].to_string());
    }
    let (status, _) = c
        .json(
            "POST",
            "/api/notifications/trigger/",
            &[],
            Some(json!({"user_id": "alice", "title": "t", "message": "m", "type": "info"})),
        )
        .await;
    assert_eq!(status, 201);
    println!(
        "10 publishes over h2 beside 11 open streams: {} ms",
        started.elapsed().as_millis()
    );

    let e = next_event(&mut answers).await;
    assert_eq!(e.json()["type"], "create");
    assert_eq!(e.json()["data"]["id"], row["id"]);
    for (i, ch) in channels.iter_mut().enumerate() {
        let e = next_event(ch).await;
        assert_eq!(e.json()["object"]["n"], i, "{e:?}");
        assert_eq!(e.id.as_deref(), Some(ids[i].trim_matches('"')));
    }
    // The stream starts with the current unread count (no id); then the new notification.
    let mut e = next_event(&mut bell).await;
    if e.event == "unread_count" && e.id.is_none() {
        e = next_event(&mut bell).await;
    }
    assert_eq!(e.event, "new_notification", "{e:?}");
    let mut tagged = Vec::new();
    while tagged.len() < 2 {
        let e = mux.next(T).await.unwrap();
        let greeting = e.event.ends_with(" connected") || e.data.contains(r#""type":"connected""#);
        if !greeting && !e.event.ends_with(" heartbeat") {
            tagged.push(e.event);
        }
    }
    tagged.sort();
    assert!(
        tagged[0].starts_with("/api/team-answers/sse/")
            && tagged[1].starts_with("/api/v1/events/tls.0"),
        "{tagged:?}"
    );

    // The polling form and a REST list on the same connection.
    let (status, poll) = c
        .json(
            "GET",
            "/api/team-answers/sse/?poll=1&lastEventId=0",
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(poll["events"].as_array().unwrap().len(), 1, "{poll}");
    let (status, list) = c.json("GET", "/api/team-answers/", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Shutdown ends every open HTTP/2 stream (stop() waits at most 5 s for the server).
    s.stop().await;
    for sse in [&mut answers, &mut bell, &mut mux]
        .into_iter()
        .chain(channels.iter_mut())
    {
        sse.drain(T).await;
        assert!(sse.closed, "the stream ended at shutdown");
    }
}

#[tokio::test]
async fn http1_over_tls_serves_streams_and_rest() {
    let certs = certs();
    let s = start_tls(&certs, &[]).await;
    let mut streams = connect(&s.url, &certs, &[b"http/1.1"]).await;
    assert_eq!(streams.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let mut answers = streams.sse("/api/team-answers/sse/", &[]).await;
    let mut rest = connect(&s.url, &certs, &[]).await;
    assert_eq!(rest.alpn, None, "no ALPN: HTTP/1.1");
    let row = create_answer(&mut rest, 2).await;
    let e = next_event(&mut answers).await;
    assert_eq!(e.json()["data"]["id"], row["id"]);
    let (status, list) = rest.json("GET", "/api/team-answers/", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn past_the_connection_cap_a_tls_client_gets_503_with_retry_after() {
    let certs = certs();
    let s = start_tls(&certs, &["--max-connections", "3", "--max-streams", "3"]).await;
    // Three connections carrying three streams: a TLS connection counts once, however
    // many streams it carries.
    let mut held = Vec::new();
    let mut streams = Vec::new();
    for open in [2, 1, 0] {
        let mut c = connect(&s.url, &certs, &[b"h2"]).await;
        let (status, _) = c.json("GET", "/api/stats", &[], None).await;
        assert_eq!(
            status,
            200,
            "connection {} is within the cap",
            held.len() + 1
        );
        for _ in 0..open {
            streams.push(c.sse("/api/team-answers/sse/", &[]).await);
        }
        held.push(c);
    }
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let mut late = connect(&s.url, &certs, &[alpn]).await;
        assert_eq!(late.alpn.as_deref(), Some(alpn));
        let res = late.send("GET", "/api/stats", &[], None).await;
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "5");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("connection limit"),
            "{body}"
        );
        // The server closes the refused connection: a second request fails.
        let again = tokio::time::timeout(T, async {
            loop {
                if late.try_send("GET", "/api/stats", &[], None).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(again.is_ok(), "{alpn:?}: the refused connection is closed");
    }
    let (status, stats) = held[0].json("GET", "/api/stats", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["refused"]["sockets_cap"], 2, "{stats}");
    s.stop().await;
}

/// The binary, killed and reaped if a test ends while it still runs.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn(data: &Path, tls: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["--dev", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(tls)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Runs the binary with `tls` flags, expecting it to refuse to start; returns stderr.
fn refused_start(data: &Path, tls: &[&str]) -> String {
    let mut p = spawn(data, tls);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{tls:?}: still running after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    p.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    p.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{tls:?}: {err}");
    assert!(!out.contains("listening"), "{tls:?}: {out}");
    assert!(!err.contains("panicked"), "{tls:?}: {err}");
    assert!(err.contains("cannot set up TLS: "), "{tls:?}: {err}");
    err
}

#[tokio::test]
async fn the_binary_serves_https_and_refuses_bad_certificate_files_with_a_clear_message() {
    let certs = certs();
    let data = tempfile::tempdir().unwrap();
    let flags = certs.flags();
    let mut p = spawn(
        data.path(),
        &flags.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let url = listening_url(&mut p.0);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let mut c = connect(&url, &certs, &[b"h2", b"http/1.1"]).await;
    assert_eq!(c.alpn.as_deref(), Some(&b"h2"[..]));
    let (status, _) = c.json("GET", "/api/stats", &[], None).await;
    assert_eq!(status, 200);
    drop(p);

    let dir = certs.dir.path();
    let cert = certs.cert.to_str().unwrap();
    let key = certs.key.to_str().unwrap();
    let missing = dir.join("missing.pem");
    let missing = missing.to_str().unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let broken = broken.to_str().unwrap();
    let other = certs.other_key.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["--tls-cert", missing, "--tls-key", key],
            "cannot read the certificate file",
        ),
        (
            &["--tls-cert", cert, "--tls-key", missing],
            "cannot read the key file",
        ),
        (
            &["--tls-cert", cert],
            "--tls-cert and --tls-key go together: --tls-key is missing",
        ),
        (
            &["--tls-cert", garbage, "--tls-key", key],
            "holds no certificate",
        ),
        (
            &["--tls-cert", broken, "--tls-key", key],
            "is not valid PEM",
        ),
        (
            &["--tls-cert", cert, "--tls-key", cert],
            "holds no private key",
        ),
        (
            &["--tls-cert", cert, "--tls-key", other],
            "does not match the certificate",
        ),
    ];
    for (flags, want) in cases {
        let err = refused_start(data.path(), flags);
        assert!(err.contains(want), "{flags:?}: want {want:?}, got: {err}");
        println!("{flags:?} -> {}", err.trim());
    }
}
