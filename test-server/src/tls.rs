//! TLS on the listening socket (`--tls-cert`, `--tls-key`): rustls with ALPN `h2` and
//! `http/1.1`, for deployments that serve TLS themselves.
//!
//! Over TLS hyper serves every connection to its end, streams included: HTTP/2 when the
//! client picks `h2` (browsers do), HTTP/1.1 otherwise. The hub's takeover writes plain
//! bytes to the raw socket, so it serves plain TCP only; an HTTP/2 stream costs what
//! hyper's stream task and the SSE body cost (README, Benchmarks). The socket cap, the
//! stream limits (each HTTP/2 stream counts as a stream), the write-stall guard (on the
//! TCP socket, under TLS) and graceful shutdown (GOAWAY for HTTP/2) hold as on the plain
//! path.

mod load;
mod refuse;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::limits::{client_addr, ClientAddr, SocketSlot};
use crate::stall::StallGuard;

pub use load::{from_flags, server_config, TlsError};

/// How long a new connection may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on a connection this long quiet find peers that are gone.
const PING_INTERVAL: Duration = Duration::from_secs(60);
/// A ping unanswered this long closes the connection.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What the TLS path serves with, from the server's state.
#[derive(Debug)]
pub struct Serving {
    /// The application.
    pub router: Router,
    /// HTTP/1.1 settings, the plain path's.
    pub http: http1::Builder,
    /// `--trust-proxy-header`.
    pub trusted: Option<HeaderName>,
    /// `--write-stall-secs`.
    pub write_stall: Duration,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// What serving TLS connections needs; one per server.
pub struct Tls {
    serving: Serving,
    acceptor: TlsAcceptor,
    h2: http2::Builder<TokioExecutor>,
    /// Refused connections still being answered (see [`refuse`]).
    refusing: AtomicUsize,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Serves `serving` with `config` (from [`server_config`]).
    pub fn new(config: Arc<tokio_rustls::rustls::ServerConfig>, serving: Serving) -> Tls {
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .keep_alive_interval(PING_INTERVAL)
            .keep_alive_timeout(PING_TIMEOUT);
        Tls {
            serving,
            acceptor: TlsAcceptor::from(config),
            h2,
            refusing: AtomicUsize::new(0),
        }
    }
}

/// Serves one accepted TLS connection to the end: handshake, then HTTP/2 or HTTP/1.1 as
/// the client chose; `slot` counts the socket against `--max-connections` until then.
pub async fn serve(
    tls: Arc<Tls>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: SocketSlot,
    graceful: Watcher,
) {
    let guarded = StallGuard::new(stream, tls.serving.write_stall);
    let handshake = tokio::select! {
        _ = tls.serving.shutdown.cancelled() => return,
        h = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(guarded)) => h,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let service = RouterService {
        tls: Arc::clone(&tls),
        peer,
        h2,
    };
    let service = hyper::service::service_fn(move |req| service.clone().call(req));
    let ended = if h2 {
        graceful.watch(tls.h2.serve_connection(io, service)).await
    } else {
        graceful
            .watch(tls.serving.http.serve_connection(io, service))
            .await
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "TLS connection ended with an error");
    }
    drop(slot);
}

pub use refuse::refuse;

/// The router for each request of one connection.
#[derive(Clone)]
struct RouterService {
    tls: Arc<Tls>,
    peer: SocketAddr,
    h2: bool,
}

impl RouterService {
    async fn call(self, mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let serving = &self.tls.serving;
        let client = client_addr(serving.trusted.as_ref(), req.headers(), self.peer);
        req.extensions_mut().insert(ClientAddr(client));
        let Ok(mut res) = serving.router.clone().oneshot(req).await;
        if self.h2 {
            // Connection-specific headers do not exist in HTTP/2 (RFC 9113, 8.2.2); the
            // SSE answer's `Connection: keep-alive` is for HTTP/1.1 clients and proxies.
            res.headers_mut().remove(header::CONNECTION);
        }
        Ok(res)
    }
}
