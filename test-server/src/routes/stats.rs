//! `GET /api/stats` (JSON) and `GET /metrics` (Prometheus text).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::bus::BusHealth;
use crate::state::AppState;

/// `/api/stats` and `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/stats", get(stats))
        .route("/metrics", get(metrics))
}

/// Open connections (total, per stream, per user) and counters.
pub async fn stats(State(state): State<AppState>) -> Json<serde_json::Value> {
    let snap = state.conns.snapshot();
    let m = &state.metrics;
    let bus = state.bus.health();
    Json(json!({
        "bus": {"kind": bus.kind, "healthy": bus.healthy, "last_error": bus.last_error, "errors": bus.errors},
        "connections": {"total": snap.total, "by_stream": snap.by_stream, "by_user": snap.by_user, "by_kind": snap.by_kind()},
        "events_published": m.events_published.load(Ordering::Relaxed),
        "subscribers_lagged": m.subscribers_lagged.load(Ordering::Relaxed),
        "resets_sent": m.resets_sent.load(Ordering::Relaxed),
        "connections_opened": m.connections_opened.load(Ordering::Relaxed),
        "connections_refused": m.connections_refused.load(Ordering::Relaxed),
        "refused": {
            "per_user": m.connections_refused.load(Ordering::Relaxed),
            "per_address": m.streams_refused_per_address.load(Ordering::Relaxed),
            "streams_cap": m.streams_refused_global.load(Ordering::Relaxed),
            "sockets_cap": m.sockets_refused.load(Ordering::Relaxed),
        },
        "caps": {"file_limit": state.caps.file_limit, "max_connections": state.caps.max_connections, "max_streams": state.caps.max_streams, "open_sockets": state.sockets.open()},
        "poll_requests": m.poll_requests.load(Ordering::Relaxed),
        "streams_detached": m.streams_detached.load(Ordering::Relaxed),
        "writes_stalled": m.writes_stalled.load(Ordering::Relaxed),
        "idempotency": {"replays": m.idempotent_replays.load(Ordering::Relaxed), "mismatches": m.idempotency_mismatches.load(Ordering::Relaxed)},
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
}

/// Prometheus exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut out = state.metrics.render(&state.conns);
            render_bus(&mut out, &state.bus.health());
            out
        },
    )
}

/// Prometheus lines for the bus: `tidings_bus_healthy{kind}` (1/0) and `tidings_bus_errors_total`.
fn render_bus(out: &mut String, health: &BusHealth) {
    let _ = writeln!(out, "# HELP tidings_bus_healthy 1 while the event bus is reachable.\n# TYPE tidings_bus_healthy gauge");
    let _ = writeln!(
        out,
        "tidings_bus_healthy{{kind=\"{}\"}} {}",
        health.kind,
        u8::from(health.healthy)
    );
    let _ = writeln!(out, "# HELP tidings_bus_errors_total Event bus errors (connection failures, timeouts).\n# TYPE tidings_bus_errors_total counter");
    let _ = writeln!(out, "tidings_bus_errors_total {}", health.errors);
}
