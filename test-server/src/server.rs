//! Binding, serving and graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::app;
use crate::config::Config;
use crate::front::{self, Front};
use crate::state::{AppState, StartError};
use crate::tls::{self, Tls};
use crate::video;

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
    /// With `--tls-cert` and `--tls-key`: every connection is TLS, served by [`tls`].
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Server {
    /// Validates the configuration, opens the database, recovers interrupted jobs and binds.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let tls = tls::from_flags(config.tls_cert.as_deref(), config.tls_key.as_deref())?;
        let state = AppState::new(config, CancellationToken::new())?;
        let recovered = video::recover(&state).await?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "marked video jobs interrupted by the restart as error"
            );
        }
        let listener = TcpListener::bind(state.config.addr).await?;
        Ok(Server {
            listener,
            state,
            tls,
        })
    }

    /// `https` with `--tls-cert`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The real bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Cancelling this token shuts the server down: open streams end, then it returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// The shared state (for tests).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until the shutdown token is cancelled, then waits (at most 5 s) for open
    /// connections: streams end on the same token, idle keep-alive connections are closed.
    ///
    /// A small HTTP/1.1 accept loop instead of `axum::serve`: its per-connection future
    /// (HTTP/1 + HTTP/2 auto-detection) costs ~40 KiB per idle connection, and even a bare
    /// hyper HTTP/1 connection ~15 KiB, too much for ~19k idle SSE clients per process.
    /// [`front::serve`] sends fresh streams to the hub and everything else to hyper.
    /// Browsers speak HTTP/1.1 to plain-http origins. With TLS, [`tls::serve`] serves
    /// each connection (HTTP/2 or HTTP/1.1) with hyper instead.
    pub async fn run(self) -> std::io::Result<()> {
        let token = self.state.shutdown.clone();
        let graceful = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            .max_buf_size(64 * 1024)
            .timer(TokioTimer::new());
        let front = Arc::new(Front {
            router: app(self.state.clone()),
            state: self.state,
            http,
        });
        let tls = self.tls.map(|config| {
            let state = &front.state;
            let serving = tls::Serving {
                router: front.router.clone(),
                http: front.http.clone(),
                trusted: state.config.trust_proxy_header.clone(),
                write_stall: state.config.write_stall(),
                shutdown: token.clone(),
            };
            Arc::new(Tls::new(config, serving))
        });
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                _ = token.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: log, back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let state = &front.state;
            // Hub streams gave their socket slot back, so they count here; a TLS
            // connection, or a plain one hyper serves a stream on, keeps its slot while it
            // carries streams, so those streams do not.
            let detached = if tls.is_none() {
                state
                    .conns
                    .total()
                    .saturating_sub(state.held_streams.count())
            } else {
                0
            };
            let Some(slot) = state.sockets.take(detached, state.caps.max_connections) else {
                state
                    .metrics
                    .sockets_refused
                    .fetch_add(1, Ordering::Relaxed);
                match &tls {
                    None => front::refuse(stream),
                    Some(tls) => tls::refuse(tls, stream),
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            if let Some(tls) = &tls {
                tokio::spawn(tls::serve(
                    Arc::clone(tls),
                    stream,
                    peer,
                    slot,
                    graceful.watcher(),
                ));
                continue;
            }
            tokio::spawn(front::serve(
                Arc::clone(&front),
                stream,
                peer,
                slot,
                graceful.watcher(),
            ));
        }
        drop(self.listener);
        drop(front);
        drop(tls);
        if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 5 s; exiting anyway");
        }
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
