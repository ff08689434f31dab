//! Seed 000: team answers REST + `GET /api/team-answers/sse/` (unnamed events).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, get};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::Claims;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::sse::{frame::frame, greet, Heartbeat};
use crate::state::AppState;
use crate::store::team_answers::{self, NewTeamAnswer, TeamAnswer};
use crate::streaming::{self, StreamRequest, StreamSpec};
use crate::time::now_rfc3339;

/// Stream key.
pub const STREAM: &str = "team-answers";

/// The team-answers REST routes and their stream.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/team-answers/sse/", get(stream))
        .route("/api/team-answers/", get(list).post(create))
        .route("/api/team-answers/delete-all/", routing::delete(delete_all))
        .route("/api/team-answers/{id}/", routing::delete(delete))
}

/// `GET /api/team-answers/sse/`: `connected` greeting, then `create`/`delete` events with ids.
///
/// Seed 000 has no auth: a valid token is accepted and ignored, a bad one is still refused.
pub async fn stream(
    State(state): State<AppState>,
    req: StreamRequest,
    _claims: Option<Claims>,
) -> ApiResult<Response> {
    let mut greeting = Vec::new();
    greet(&mut greeting, None, &json!({"type": "connected", "message": "Connected to team answers real-time updates", "timestamp": now_rfc3339()}).to_string());
    let spec = StreamSpec {
        key: STREAM.into(),
        user: None,
        greeting,
        heartbeat: Heartbeat::TeamAnswers,
        terminal: None,
        lag_notice: Some(lag_notice),
    };
    let opened = streaming::open(&state, &req, &spec).await?;
    Ok(streaming::respond(&state, &req, spec, opened, None).await)
}

/// Seed 000's `error` message, sent (without id) before a subscriber that fell behind is closed.
fn lag_notice() -> bytes::Bytes {
    let msg = json!({"type": "error", "message": "subscriber fell behind; reconnect with Last-Event-ID to resume", "timestamp": now_rfc3339()});
    frame(None, None, &msg.to_string())
}

/// `GET /api/team-answers/`: all answers, newest first.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<TeamAnswer>>> {
    Ok(Json(state.db.call(|c| team_answers::list(c)).await?))
}

/// `POST /api/team-answers/`: stores, broadcasts `create`, returns 201 with the row.
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewTeamAnswer>,
) -> ApiResult<Response> {
    if body.video_name.trim().is_empty() {
        return Err(ApiError::Invalid("video_name: must not be empty".into()));
    }
    let row = state
        .db
        .call(move |c| team_answers::create(c, &body, &now_rfc3339()))
        .await?;
    let msg = json!({"type": "create", "data": row, "timestamp": now_rfc3339()});
    state.bus.publish(STREAM, None, msg.to_string()).await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

async fn broadcast_delete(state: &AppState, ids: &[i64]) -> ApiResult<()> {
    let msg = json!({"type": "delete", "data": ids, "timestamp": now_rfc3339()});
    state.bus.publish(STREAM, None, msg.to_string()).await?;
    Ok(())
}

/// `DELETE /api/team-answers/{id}/`: 404 if unknown; broadcasts `delete` with `[id]`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::Invalid("id: must be an integer".into()))?;
    if !state.db.call(move |c| team_answers::delete(c, id)).await? {
        return Err(ApiError::NotFound(format!("team answer {id} not found")));
    }
    broadcast_delete(&state, &[id]).await?;
    Ok(Json(json!({"deleted": [id]})))
}

/// `DELETE /api/team-answers/delete-all/`: broadcasts one `delete` with every id (if any).
pub async fn delete_all(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let ids = state.db.call(team_answers::delete_all).await?;
    if !ids.is_empty() {
        broadcast_delete(&state, &ids).await?;
    }
    Ok(Json(json!({"deleted": ids})))
}
