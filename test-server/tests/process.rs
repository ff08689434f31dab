//! The real binary: startup line, refusing to start, SIGKILL + restart keeping data and ids,
//! interrupted jobs, SIGTERM with open streams, and tokens kept out of logs.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{listening_url, Call, Sse, T};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tidings-server");

struct Proc {
    child: Child,
    url: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

fn spawn(dir: &Path, extra: &[&str]) -> Proc {
    let mut child = Command::new(BIN)
        .args([
            "--dev",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--video-step-ms",
            "200",
        ])
        .args(extra)
        .env("RUST_LOG", "debug,hyper=info,h2=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = listening_url(&mut child);
    assert!(!url.ends_with(":0"), "real port printed: {url}");
    let mut err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    Proc {
        child,
        url,
        stderr: rx,
    }
}

/// A server that is still running when its test ends (it passed, or an assert failed
/// before the test stopped it) is killed and reaped, so no test leaves a process behind.
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn wait_exit(p: &mut Proc, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A dev token for user `k` on `channels`.
async fn dev_token(c: &reqwest::Client, p: &Proc, channels: &str) -> String {
    let tok: Value = c
        .post(format!("{}/api/auth/dev-token", p.url))
        .json(&json!({"user_id": "k", "channels": [channels]}))
        .read_json()
        .await;
    tok["token"].as_str().unwrap().to_owned()
}

#[test]
fn refuses_to_start_without_a_secret_outside_dev() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .env_remove("TIDINGS_JWT_SECRET")
        .env_remove("TIDINGS_DEV")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--jwt-secret") && err.contains("TIDINGS_JWT_SECRET"),
        "{err}"
    );
    // the env fallback works
    let out = Command::new(BIN)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--help",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("TIDINGS_HEARTBEAT_SECS"));
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::client();
    let first = spawn(dir.path(), &[]);
    let tok = dev_token(&c, &first, "project.*").await;
    let out = Command::new(BIN)
        .args(["--dev", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database is locked"), "{err}");
    // The first one goes on storing and answering.
    let r = c
        .post(format!("{}/api/v1/events/project.1", first.url))
        .bearer_auth(&tok)
        .json(&json!({"type": "data", "object": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn sigkill_and_restart_keep_data_ids_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::client();
    let mut p = spawn(dir.path(), &[]);
    let tok = dev_token(&c, &p, "project.*").await;
    for i in 0..3 {
        let r = c
            .post(format!("{}/api/team-answers/", p.url))
            .json(&json!({"video_name": format!("v{i}"), "frame_index": i, "url": "u"}))
            .call()
            .await;
        assert_eq!(r.status(), 201);
    }
    c.post(format!("{}/api/notifications/trigger/", p.url))
        .json(&json!({"user_id": "k", "title": "t", "message": "m", "type": "info"}))
        .call()
        .await;
    // a job that will be running when the process dies
    let job: Value = c
        .post(format!("{}/api/chat/create-video", p.url))
        .json(&json!({"prompt": "p", "steps": 6, "step_ms": 5000}))
        .read_json()
        .await;
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&p, "-KILL");
    wait_exit(&mut p, Duration::from_secs(5));

    let mut p = spawn(dir.path(), &[]);
    let list: Vec<Value> = c
        .get(format!("{}/api/team-answers/", p.url))
        .read_json()
        .await;
    assert_eq!(list.len(), 3, "acknowledged rows survive SIGKILL");
    let notes: Value = c
        .get(format!("{}/api/notifications/", p.url))
        .bearer_auth(&tok)
        .read_json()
        .await;
    assert_eq!(
        notes["unread_count"], 1,
        "tokens signed before the restart still verify (same dev secret)"
    );
    // resume across the restart: ids continue, replay from the persisted log
    let res = c
        .get(format!("{}/api/team-answers/sse/", p.url))
        .header("last-event-id", "1")
        .call()
        .await;
    let mut sse = Sse::new(res.bytes_stream());
    sse.next(T).await.unwrap(); // connected
    assert_eq!(sse.next(T).await.unwrap().id_num(), 2);
    assert_eq!(sse.next(T).await.unwrap().id_num(), 3);
    c.post(format!("{}/api/team-answers/", p.url))
        .json(&json!({"video_name": "after", "frame_index": 9, "url": "u"}))
        .call()
        .await;
    let e = sse.next_non_heartbeat(T).await.unwrap();
    assert_eq!(e.id_num(), 4, "ids stay monotonic across a SIGKILL");
    assert_eq!(e.json()["data"]["video_name"], "after");
    // the interrupted job was marked error and its stream ends
    let st: Value = c
        .get(format!("{}/api/video-progress/{job_id}/status", p.url))
        .read_json()
        .await;
    assert_eq!(st["status"], "error");
    assert_eq!(st["error"], "interrupted by restart");
    let res = c
        .get(format!("{}/api/video-progress/{job_id}", p.url))
        .call()
        .await;
    let evs = Sse::new(res.bytes_stream()).drain(T).await;
    let names: Vec<&str> = evs.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"progress"));
    assert_eq!(&names[names.len() - 2..], &["error", "end"]);

    // SIGTERM with open streams exits promptly and cleanly
    let t2 = tok.clone();
    let mut open = Vec::new();
    for path in [
        "/api/team-answers/sse/".to_owned(),
        format!("/api/notifications/stream?token={t2}"),
        format!("/api/v1/events/project.1?token={t2}"),
    ] {
        let res = c.get(format!("{}{path}", p.url)).call().await;
        assert_eq!(res.status(), 200);
        open.push(Sse::new(res.bytes_stream()));
    }
    let started = Instant::now();
    signal(&p, "-TERM");
    let status = wait_exit(&mut p, Duration::from_secs(3));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    for mut s in open {
        s.drain(Duration::from_secs(2)).await;
        assert!(s.closed);
    }
    let logs = p.stderr.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(!logs.contains(&tok), "the token never appears in logs");
    assert!(
        logs.contains("/api/notifications/stream"),
        "requests are logged (by path)"
    );
}

/// Publishes that were acknowledged before a SIGKILL are all there after the restart,
/// with their ids and data, even though many publishes shared each commit.
#[tokio::test]
async fn sigkill_during_concurrent_publishing_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::client();
    let mut p = spawn(dir.path(), &["--replay-log-size", "100000"]);
    let tok = dev_token(&c, &p, "*").await;
    let url = format!("{}/api/v1/events/crash", p.url);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
    let publishers: Vec<_> = (0..16)
        .map(|w| {
            let (c, url, tok, acked) = (c.clone(), url.clone(), tok.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0..10_000 {
                    let text = format!("w{w}-{i}");
                    let sent = c
                        .post(&url)
                        .bearer_auth(&tok)
                        .json(&json!({"type": "data", "object": text}))
                        .send()
                        .await;
                    let Ok(r) = sent else { return };
                    let Ok(body) = r.json::<Value>().await else {
                        return;
                    };
                    let id: u64 = body["id"].as_str().unwrap().parse().unwrap();
                    acked.lock().unwrap().push((id, text));
                }
            })
        })
        .collect();
    // Kill while the publishers are busy.
    for _ in 0..500 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&p, "-KILL");
    wait_exit(&mut p, Duration::from_secs(5));
    for t in publishers {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} publishes acknowledged",
        acked.len()
    );

    let p = spawn(dir.path(), &["--replay-log-size", "100000"]);
    let polled: Value = c
        .get(format!(
            "{}/api/v1/events/crash?poll=1&lastEventId=0",
            p.url
        ))
        .bearer_auth(&tok)
        .read_json()
        .await;
    let stored: std::collections::HashMap<u64, String> = polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let data: Value = serde_json::from_str(e["data"].as_str().unwrap()).unwrap();
            (
                e["id"].as_str().unwrap().parse().unwrap(),
                data["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ids: Vec<u64> = polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.iter().enumerate().all(|(i, &id)| id == i as u64 + 1),
        "stored ids run 1, 2, 3, ... without a gap"
    );
    for (id, text) in &acked {
        assert_eq!(stored.get(id), Some(text), "acknowledged event {id} kept");
    }
    let next: Value = c
        .post(format!("{}/api/v1/events/crash", p.url))
        .bearer_auth(&tok)
        .json(&json!({"type": "data", "object": "after"}))
        .read_json()
        .await;
    let next: u64 = next["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, ids.len() as u64 + 1, "ids continue after the restart");
}
