//! Command-line flags (with `TIDINGS_*` environment fallbacks).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The fixed, documented secret `--dev` uses when no `--jwt-secret` is given.
/// Never use it outside local development.
pub const DEV_JWT_SECRET: &str = "tidings-dev-secret-do-not-use-in-production";

/// Every setting of the server. Each flag also reads `TIDINGS_<NAME>`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tidings-server",
    version,
    about = "The Tidings reference SSE server",
    args_override_self = true
)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the real one is printed).
    #[arg(long, env = "TIDINGS_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Directory for persistent data (the SQLite file lives here unless `--db` is given).
    #[arg(long, env = "TIDINGS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// SQLite database file (default `<data-dir>/tidings.db`).
    #[arg(long, env = "TIDINGS_DB")]
    pub db: Option<PathBuf>,
    /// Development mode: dev-token endpoint, localhost CORS, fixed dev secret, open trigger.
    #[arg(long, env = "TIDINGS_DEV", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dev: bool,
    /// HS256 secret for JWTs (required without `--dev`).
    #[arg(long, env = "TIDINGS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Heartbeat interval in seconds (fractions allowed, e.g. 0.5).
    #[arg(long, env = "TIDINGS_HEARTBEAT_SECS", default_value = "30", value_parser = parse_secs)]
    pub heartbeat_secs: f64,
    /// Allowed CORS origins outside `--dev` (repeatable or comma separated).
    #[arg(
        long = "cors-origin",
        env = "TIDINGS_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Duration of each simulated video production step, in milliseconds.
    #[arg(long, env = "TIDINGS_VIDEO_STEP_MS", default_value = "1500")]
    pub video_step_ms: u64,
    /// A video job that has not finished after this many seconds ends with `timeout`.
    #[arg(long, env = "TIDINGS_VIDEO_TIMEOUT_SECS", default_value = "600", value_parser = parse_secs)]
    pub video_timeout_secs: f64,
    /// A connection whose peer reads nothing for this long is closed (it resumes from the log).
    #[arg(long, env = "TIDINGS_WRITE_STALL_SECS", default_value = "30", value_parser = parse_secs)]
    pub write_stall_secs: f64,
    /// Events kept per stream in the replay log.
    #[arg(long, env = "TIDINGS_REPLAY_LOG_SIZE", default_value = "1000", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub replay_log_size: u64,
    /// Events a subscriber may have queued before its stream is closed (it then resumes from the log).
    #[arg(long, env = "TIDINGS_SUBSCRIBER_QUEUE", default_value = "64", value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub subscriber_queue: u64,
    /// Open SSE connections allowed per authenticated user (429 beyond).
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS_PER_USER", default_value = "32")]
    pub max_connections_per_user: usize,
    /// Open SSE streams without a token allowed per client address (429 beyond).
    #[arg(long, env = "TIDINGS_MAX_STREAMS_PER_ADDRESS", default_value = "128")]
    pub max_streams_per_address: usize,
    /// Open client connections (default and ceiling: the open-files limit less 64).
    /// Past it a new connection is answered 503 and closed.
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open SSE streams in the process (default: `--max-connections` less 1024, kept for
    /// REST calls; 503 beyond).
    #[arg(long, env = "TIDINGS_MAX_STREAMS")]
    pub max_streams: Option<usize>,
    /// Take the client address from this header (e.g. `x-forwarded-for`, its last entry)
    /// for the per-address limit. Only behind a proxy that sets it: clients can forge it.
    #[arg(long, env = "TIDINGS_TRUST_PROXY_HEADER")]
    pub trust_proxy_header: Option<axum::http::HeaderName>,
    /// Largest accepted request body in bytes (413 beyond).
    #[arg(long, env = "TIDINGS_MAX_BODY_BYTES", default_value = "65536")]
    pub max_body_bytes: usize,
    /// Redis URL (`redis://127.0.0.1:6379`): share ids, replay logs and fan-out with other
    /// instances through Redis Streams. Without it the in-process bus is used.
    #[arg(long, env = "TIDINGS_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// How long an `Idempotency-Key`'s answer is remembered, in seconds (default 24 h).
    #[arg(long, env = "TIDINGS_IDEMPOTENCY_TTL_SECS", default_value = "86400", value_parser = parse_secs)]
    pub idempotency_ttl_secs: f64,
    /// Serve this directory at `/` after the API routes (demo page, npm package).
    #[arg(long, env = "TIDINGS_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// PEM certificate chain: serve TLS with HTTP/2 and HTTP/1.1 (ALPN); needs `--tls-key`.
    #[arg(long, env = "TIDINGS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "TIDINGS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// A configuration the server refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No JWT secret outside `--dev`.
    #[error("refusing to start: no JWT secret. Pass --jwt-secret or set TIDINGS_JWT_SECRET (or use --dev for local development)")]
    MissingSecret,
    /// An empty secret was given.
    #[error("refusing to start: the JWT secret is empty")]
    EmptySecret,
}

impl Config {
    /// The HS256 secret to use, or why the server must not start.
    pub fn resolved_secret(&self) -> Result<String, ConfigError> {
        match (&self.jwt_secret, self.dev) {
            (Some(s), _) if s.is_empty() => Err(ConfigError::EmptySecret),
            (Some(s), _) => Ok(s.clone()),
            (None, true) => Ok(DEV_JWT_SECRET.to_owned()),
            (None, false) => Err(ConfigError::MissingSecret),
        }
    }

    /// The SQLite file path.
    pub fn db_path(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tidings.db"))
    }

    /// Heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_secs)
    }

    /// How long a write may make no progress before the connection is closed.
    pub fn write_stall(&self) -> Duration {
        Duration::from_secs_f64(self.write_stall_secs)
    }

    /// How long an idempotent answer is remembered.
    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.idempotency_ttl_secs)
    }

    /// Video job timeout.
    pub fn video_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.video_timeout_secs)
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be between 0 and 86400 seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_rules() {
        let c = Config::parse_from(["tidings-server"]);
        assert!(matches!(
            c.resolved_secret(),
            Err(ConfigError::MissingSecret)
        ));
        let c = Config::parse_from(["tidings-server", "--dev"]);
        assert_eq!(c.resolved_secret().unwrap(), DEV_JWT_SECRET);
        let c = Config::parse_from(["tidings-server", "--jwt-secret", "s3"]);
        assert_eq!(c.resolved_secret().unwrap(), "s3");
    }

    #[test]
    fn fractional_heartbeat_and_defaults() {
        let c = Config::parse_from([
            "tidings-server",
            "--heartbeat-secs",
            "0.5",
            "--data-dir",
            "/tmp/x",
        ]);
        assert_eq!(c.heartbeat(), Duration::from_millis(500));
        assert_eq!(c.db_path(), PathBuf::from("/tmp/x/tidings.db"));
        assert!(Config::try_parse_from(["tidings-server", "--heartbeat-secs", "-1"]).is_err());
        assert!(Config::try_parse_from(["tidings-server", "--heartbeat-secs", "abc"]).is_err());
    }
}
