//! `tidings-server` binary: parse flags, bind, print the listening line, serve until SIGTERM/Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tidings_server::{server::shutdown_signal, Config, Server};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Config::parse();
    let dev = config.dev;
    let server = match Server::bind(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tidings-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tidings-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("tidings-server listening on {}://{addr}", server.scheme());
    if dev {
        tracing::warn!(
            "--dev: dev-token endpoint and localhost CORS are enabled; do not expose this server"
        );
    }
    let token = server.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidings-server: {e}");
            ExitCode::FAILURE
        }
    }
}
