//! A TLS connection past `--max-connections` gets what a plain one gets: 503 with
//! `Retry-After`, then the connection closes.
//!
//! A plain socket is answered with one write and closed at once; a TLS client can only
//! read an answer after a handshake, so a refused connection is handshaken and answered
//! within [`REFUSE_WINDOW`] by a short task. At most [`MAX_REFUSING`] are answered at a
//! time, so refusals take few descriptors beyond the cap; past that, refused sockets are
//! closed without an answer.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::Tls;
use crate::limits::RETRY_AFTER_SECS;

/// How long a refused connection may take to be handshaken and answered.
const REFUSE_WINDOW: Duration = Duration::from_secs(2);
/// Refused connections answered at once.
const MAX_REFUSING: usize = 16;

const REFUSED: &str = r#"{"error":"the server is at its connection limit; retry later"}"#;

/// Answers `stream` 503 in a task of its own, or closes it when [`MAX_REFUSING`] are
/// being answered already.
pub fn refuse(tls: &Arc<Tls>, stream: TcpStream) {
    let Some(turn) = Turn::take(tls) else {
        return;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSE_WINDOW, answer(&turn.0, stream)).await;
    });
}

/// One of the [`MAX_REFUSING`] places; given back when dropped, however the task ends.
struct Turn(Arc<Tls>);

impl Turn {
    fn take(tls: &Arc<Tls>) -> Option<Turn> {
        let count: &AtomicUsize = &tls.refusing;
        let mut now = count.load(Ordering::Relaxed);
        loop {
            if now >= MAX_REFUSING {
                return None;
            }
            match count.compare_exchange_weak(now, now + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(Turn(Arc::clone(tls))),
                Err(v) => now = v,
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn answer(tls: &Tls, stream: TcpStream) {
    let Ok(stream) = tls.acceptor.accept(stream).await else {
        return;
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let answered = Arc::new(Notify::new());
    let told = Arc::clone(&answered);
    let service = hyper::service::service_fn(move |_req| {
        told.notify_one();
        std::future::ready(Ok::<_, Infallible>(refused()))
    });
    if h2 {
        let conn = tls.h2.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = answered.notified() => {}
        }
        // GOAWAY: the answer in flight is sent, no new stream is taken.
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    } else {
        let _ = http1::Builder::new()
            .keep_alive(false)
            .serve_connection(io, service)
            .await;
    }
}

fn refused() -> Response<Body> {
    let mut res = Response::new(Body::from(REFUSED));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    res
}
