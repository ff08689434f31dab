//! `GET /api/mux`: one SSE connection (or poll) for a set of streams (see [`crate::mux`]).

use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The multiplexed stream endpoint.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/mux", get(crate::mux::mux))
}
