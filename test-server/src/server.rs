//! Binding, serving and graceful shutdown.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::{app, AppState, StartError};
use crate::config::Config;
use crate::video;

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Validates the configuration, opens the database, recovers interrupted jobs and binds.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let state = AppState::new(config, CancellationToken::new())?;
        let recovered = video::recover(&state).await?;
        if recovered > 0 {
            tracing::warn!(recovered, "marked video jobs interrupted by the restart as error");
        }
        let listener = TcpListener::bind(state.config.addr).await?;
        Ok(Server { listener, state })
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

    /// Serves until the shutdown token is cancelled.
    pub async fn run(self) -> std::io::Result<()> {
        let token = self.state.shutdown.clone();
        let router = app(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
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
