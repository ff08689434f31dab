//! The router: every route module's [`Router`] merged, with the fallbacks and layers
//! every response shares.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::idempotency;
use crate::routes::{
    channels, dev_auth, dev_faults, mux, notifications, stats, team_answers, video,
};
use crate::state::AppState;

/// The response headers a cross-origin `fetch` may read beyond the safelisted ones:
/// the SDK backs off by `Retry-After`.
const EXPOSED_HEADERS: [&str; 2] = [idempotency::REPLAYED_HEADER, "retry-after"];

fn cors(config: &Config) -> Option<CorsLayer> {
    if !has_cors(config) {
        return None;
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static(idempotency::HEADER),
        ])
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
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
    Some(base.allow_origin(origins))
}

/// Whether the router has a CORS layer (`--dev` or a valid `--cors-origins` entry):
/// the one place that decides it, for [`cors`] and the router-less publish.
pub(crate) fn has_cors(config: &Config) -> bool {
    config.dev
        || config
            .cors_origins
            .iter()
            .any(|o| HeaderValue::from_str(o.trim()).is_ok())
}

/// Adds what the CORS layer adds to the answer of a request without an `Origin` (a
/// router-less answer must look the same; `tests/api.rs` compares the two).
pub(crate) fn cors_headers_without_origin(headers: &mut axum::http::HeaderMap) {
    /// [`EXPOSED_HEADERS`] as the layer writes them, made once.
    static EXPOSED: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
        HeaderValue::from_str(&EXPOSED_HEADERS.join(",")).expect("header names are ASCII")
    });
    headers.insert(
        header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED.clone());
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
        .merge(team_answers::router())
        .merge(notifications::router())
        .merge(video::router())
        .merge(channels::router())
        .merge(mux::router())
        .merge(stats::router());
    if config.dev {
        api = api.merge(dev_auth::router()).merge(dev_faults::router());
    }
    api = api
        // unknown API paths are JSON 404s even when a static directory is the fallback
        .route(
            "/api/{*rest}",
            any(|req: Request| async move { not_found(req).await.into_response() }),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() });
    api = match &config.static_dir {
        Some(dir) => api.fallback_service(
            Router::new()
                .fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
                .layer(middleware::from_fn(static_headers)),
        ),
        None => api.fallback(|req: Request| async move { not_found(req).await.into_response() }),
    };
    // Inside the body limit and CORS, outside every route: every write takes a key.
    let guard = Arc::new(idempotency::Guard {
        store: state.idempotency.clone(),
        auth: state.auth.clone(),
        config: state.config.clone(),
        metrics: state.metrics.clone(),
    });
    api = api.layer(middleware::from_fn_with_state(guard, idempotency::layer));
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
