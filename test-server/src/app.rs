//! Shared state and the router (`app(state)`), separate from `main` so tests can serve it.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::auth::Auth;
use crate::bus::{Bus, BusError, MemoryBus, RedisBus};
use crate::config::{Config, ConfigError};
use crate::connections::Connections;
use crate::db::{Db, StoreError};
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::hub::{Hub, HubConfig};
use crate::metrics::Metrics;
use crate::routes::{channels, dev_auth, dev_faults, notifications, stats, team_answers, video};

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
    pub dev_faults: dev_faults::DevFaults,
    /// Where streams live once their response has started (see [`crate::hub`]).
    pub hub: Hub,
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
    pub fn new(config: Config, shutdown: CancellationToken) -> Result<Self, StartError> {
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
            None => Arc::new(MemoryBus::new(db.clone(), log, queue, Arc::clone(&metrics))),
        };
        let hub_config = HubConfig {
            heartbeat_every: config.heartbeat(),
            write_stall: config.write_stall(),
            queue: config.subscriber_queue as usize,
        };
        let hub = Hub::start(hub_config, Arc::clone(&metrics), &shutdown);
        Ok(AppState(Arc::new(Inner {
            auth: Auth::new(&secret),
            config,
            db,
            bus,
            conns: Connections::default(),
            metrics,
            shutdown,
            started: Instant::now(),
            dev_faults: dev_faults::DevFaults::default(),
            hub,
        })))
    }
}

fn cors(config: &Config) -> Option<CorsLayer> {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .allow_credentials(true);
    if config.dev {
        return Some(
            base.allow_origin(AllowOrigin::predicate(|origin: &HeaderValue, _| {
                let o = origin.as_bytes();
                let local = |prefix: &[u8]| {
                    o == &prefix[..prefix.len() - 1]
                        || (o.starts_with(prefix)
                            && o[prefix.len()..].iter().all(u8::is_ascii_digit))
                };
                local(b"http://localhost:") || local(b"http://127.0.0.1:")
            })),
        );
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    (!origins.is_empty()).then(|| base.allow_origin(origins))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

/// Static files: `Cache-Control: no-cache` and exact MIME types for the SDK's files.
async fn static_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let ok = res.status().is_success();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mime = if path.ends_with(".wasm") {
        Some("application/wasm")
    } else if path.ends_with(".js") || path.ends_with(".mjs") {
        Some("text/javascript; charset=utf-8")
    } else {
        None
    };
    if let (Some(m), true) = (mime, ok) {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(m));
    }
    res
}

/// Builds the router with every route and layer.
pub fn app(state: AppState) -> Router {
    let config = &state.config;
    let mut api = Router::new()
        .route("/api/team-answers/sse/", get(team_answers::stream))
        .route(
            "/api/team-answers/",
            get(team_answers::list).post(team_answers::create),
        )
        .route(
            "/api/team-answers/delete-all/",
            delete(team_answers::delete_all),
        )
        .route("/api/team-answers/{id}/", delete(team_answers::delete))
        .route("/api/notifications/stream", get(notifications::stream))
        .route("/api/notifications/", get(notifications::list))
        .route(
            "/api/notifications/read-all/",
            post(notifications::mark_all_read),
        )
        .route("/api/notifications/trigger/", post(notifications::trigger))
        .route(
            "/api/notifications/{id}/read/",
            post(notifications::mark_read),
        )
        .route("/api/notifications/{id}/", delete(notifications::delete))
        .route("/api/chat/create-video", post(video::create))
        .route("/api/video-progress/cleanup", post(video::cleanup))
        .route("/api/video-progress/{job_id}", get(video::stream))
        .route("/api/video-progress/{job_id}/status", get(video::status))
        .route(
            "/api/v1/events/{channel}",
            get(channels::stream).post(channels::publish),
        )
        .route("/api/stats", get(stats::stats))
        .route("/metrics", get(stats::metrics))
        // unknown API paths are JSON 404s even when a static directory is the fallback
        .route(
            "/api/{*rest}",
            any(|req: Request| async move { not_found(req).await.into_response() }),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() });
    if config.dev {
        api = api
            .route("/api/auth/dev-token", post(dev_auth::dev_token))
            .route("/api/dev/drop", post(dev_faults::drop_stream))
            .route("/api/dev/fail", post(dev_faults::fail_stream))
            .route("/api/dev/stall", post(dev_faults::stall_stream));
    }
    api = match &config.static_dir {
        Some(dir) => api.fallback_service(
            Router::new()
                .fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
                .layer(middleware::from_fn(static_headers)),
        ),
        None => api.fallback(|req: Request| async move { not_found(req).await.into_response() }),
    };
    let compression = CompressionLayer::new()
        .compress_when(SizeAbove::new(256).and(NotForContentType::new("text/event-stream")));
    let mut router = api
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(Extension(BodyLimit(config.max_body_bytes)))
        .layer(compression);
    if let Some(cors) = cors(config) {
        router = router.layer(cors);
    }
    router
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Path only: the query string may hold a token and is never logged.
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}
