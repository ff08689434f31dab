//! What every handler shares ([`AppState`]) and how it is built at start.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::bus::{Bus, BusError, MemoryBus, RedisBus};
use crate::config::{Config, ConfigError};
use crate::connections::{Connections, Limits};
use crate::db::{Db, StoreError};
use crate::error::ApiError;
use crate::faults::DevFaults;
use crate::hub::{Hub, HubConfig};
use crate::idempotency::{store::RedisStore, store::SqliteStore, IdempotencyStore};
use crate::limits::{Caps, HeldStreams, Sockets};
use crate::metrics::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The Redis bus could not be set up (bad URL).
    #[error("cannot set up the event bus: {0}")]
    Bus(#[from] BusError),
    /// Recovering interrupted jobs failed.
    #[error("cannot recover jobs: {0}")]
    Recover(#[from] ApiError),
    /// `--tls-cert` / `--tls-key` cannot be served.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Called outside a Tokio runtime (the hub's shard tasks and the Redis reader are
    /// spawned on the current one).
    #[error("the server state must be built inside a Tokio runtime")]
    NoRuntime,
}

/// Everything handlers share.
#[derive(Debug)]
pub struct Inner {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub db: Db,
    /// Fan-out and replay logs.
    pub bus: Arc<dyn Bus>,
    /// Token verification.
    pub auth: Auth,
    /// Open connections.
    pub conns: Connections,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Cancelled on shutdown; every open stream ends.
    pub shutdown: CancellationToken,
    /// Process start.
    pub started: Instant,
    /// `--dev` fault hooks (drop / fail / stall a stream); inert without `--dev`.
    pub dev_faults: DevFaults,
    /// Where streams live once their response has started (see [`crate::hub`]).
    pub hub: Hub,
    /// Remembered answers of write requests with an `Idempotency-Key`.
    pub idempotency: IdempotencyStore,
    /// Connection caps, from the flags and the open-files limit.
    pub caps: Caps,
    /// The limits every new stream must pass.
    pub limits: Limits,
    /// Open client sockets not serving a stream.
    pub sockets: Sockets,
    /// Streams on sockets that are already counted in `sockets`.
    pub held_streams: HeldStreams,
    /// Whether the router has a CORS layer ([`crate::app::has_cors`]), decided once at
    /// start for the router-less publish.
    pub cors: bool,
}

impl std::fmt::Debug for dyn Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bus")
    }
}

/// Cheap-to-clone handle to [`Inner`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens the database and builds the bus (Redis with `--redis-url`, else in-process).
    ///
    /// Must be called inside a Tokio runtime (it spawns the hub's tasks there); outside
    /// one it returns [`StartError::NoRuntime`].
    pub fn new(config: Config, shutdown: CancellationToken) -> Result<Self, StartError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StartError::NoRuntime);
        }
        let secret = config.resolved_secret()?;
        let db = Db::open(&config.db_path())?;
        let metrics = Arc::new(Metrics::default());
        let (log, queue) = (config.replay_log_size, config.subscriber_queue as usize);
        let bus: Arc<dyn Bus> = match &config.redis_url {
            Some(url) => Arc::new(RedisBus::new(
                url,
                log,
                queue,
                Arc::clone(&metrics),
                &shutdown,
            )?),
            None => Arc::new(MemoryBus::new(
                db.clone(),
                log,
                queue,
                Arc::clone(&metrics),
            )?),
        };
        let idempotency = match &config.redis_url {
            Some(url) => IdempotencyStore::Redis(Arc::new(RedisStore::new(url)?)),
            None => IdempotencyStore::Sqlite(SqliteStore::open(&db)?),
        };
        let caps = Caps::new(&config, crate::limits::file_limit());
        let limits = Limits {
            per_user: config.max_connections_per_user,
            per_address: config.max_streams_per_address,
            max_streams: caps.max_streams,
        };
        let hub_config = HubConfig {
            heartbeat_every: config.heartbeat(),
            write_stall: config.write_stall(),
            queue: config.subscriber_queue as usize,
        };
        let hub = Hub::start(hub_config, Arc::clone(&metrics), &shutdown);
        Ok(AppState(Arc::new(Inner {
            auth: Auth::new(&secret),
            cors: crate::app::has_cors(&config),
            config,
            db,
            bus,
            conns: Connections::default(),
            metrics,
            shutdown,
            started: Instant::now(),
            dev_faults: DevFaults::default(),
            hub,
            idempotency,
            caps,
            limits,
            sockets: Sockets::default(),
            held_streams: HeldStreams::default(),
        })))
    }
}

impl AsRef<Auth> for AppState {
    fn as_ref(&self) -> &Auth {
        &self.auth
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn outside_a_runtime_new_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let config = Config::parse_from(["tidings-server", "--dev", "--data-dir", data]);
        let built = AppState::new(config, CancellationToken::new());
        assert!(matches!(built, Err(StartError::NoRuntime)), "{built:?}");
    }
}
