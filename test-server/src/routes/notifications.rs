//! Seeds 001/004: per-user notifications with named events.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Claims;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::sse::{greet, Heartbeat};
use crate::state::AppState;
use crate::store::notifications::{self, Notification};
use crate::streaming::{self, StreamRequest, StreamSpec};
use crate::time::now_rfc3339;

/// The notification routes and their per-user stream.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/notifications/stream", get(stream))
        .route("/api/notifications/", get(list))
        .route("/api/notifications/read-all/", post(mark_all_read))
        .route("/api/notifications/trigger/", post(trigger))
        .route("/api/notifications/{id}/read/", post(mark_read))
        .route("/api/notifications/{id}/", routing::delete(delete))
}

/// Stream key of a user's notifications.
pub fn stream_key(user: &str) -> String {
    format!("notifications/{user}")
}

async fn unread(state: &AppState, user: &str) -> ApiResult<i64> {
    let u = user.to_owned();
    Ok(state.db.call(move |c| notifications::unread(c, &u)).await?)
}

async fn publish_unread(state: &AppState, user: &str) -> ApiResult<i64> {
    let count = unread(state, user).await?;
    state
        .bus
        .publish(
            &stream_key(user),
            Some("unread_count"),
            json!({"count": count}).to_string(),
        )
        .await?;
    Ok(count)
}

/// `GET /api/notifications/stream`: `connected`, the current `unread_count` (no ids), then
/// `new_notification`, `unread_count`, `notification_deleted` (with ids) and heartbeats.
pub async fn stream(
    State(state): State<AppState>,
    req: StreamRequest,
    Claims { sub: user, .. }: Claims,
) -> ApiResult<Response> {
    let mut spec = StreamSpec {
        key: stream_key(&user),
        user: Some(user.clone()),
        greeting: Vec::new(),
        heartbeat: Heartbeat::Named,
        terminal: None,
        lag_notice: None,
    };
    let opened = streaming::open(&state, &req, &spec).await?;
    // The snapshot is read after subscribing, so no change can fall between the two.
    let count = unread(&state, &user).await?;
    greet(&mut spec.greeting, Some("connected"), &json!({"user_id": user, "message": "Connected to notifications stream", "timestamp": now_rfc3339()}).to_string());
    greet(
        &mut spec.greeting,
        Some("unread_count"),
        &json!({"count": count}).to_string(),
    );
    Ok(streaming::respond(&state, &req, spec, opened, None).await)
}

/// `GET /api/notifications/`: the caller's notifications and unread count.
pub async fn list(
    State(state): State<AppState>,
    Claims { sub: user, .. }: Claims,
) -> ApiResult<Json<serde_json::Value>> {
    let u = user.clone();
    let items = state.db.call(move |c| notifications::list(c, &u)).await?;
    let count = items.iter().filter(|n| !n.read).count();
    Ok(Json(json!({"notifications": items, "unread_count": count})))
}

fn parse_id(id: &str) -> ApiResult<i64> {
    id.parse()
        .map_err(|_| ApiError::Invalid("id: must be an integer".into()))
}

/// `POST /api/notifications/{id}/read/`: marks read, broadcasts `unread_count`.
pub async fn mark_read(
    State(state): State<AppState>,
    Claims { sub: user, .. }: Claims,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_id(&id)?;
    let u = user.clone();
    if !state
        .db
        .call(move |c| notifications::mark_read(c, &u, id))
        .await?
    {
        return Err(ApiError::NotFound(format!("notification {id} not found")));
    }
    let count = publish_unread(&state, &user).await?;
    Ok(Json(json!({"id": id, "read": true, "unread_count": count})))
}

/// `POST /api/notifications/read-all/`: marks all read, broadcasts `unread_count`.
pub async fn mark_all_read(
    State(state): State<AppState>,
    Claims { sub: user, .. }: Claims,
) -> ApiResult<Json<serde_json::Value>> {
    let u = user.clone();
    let changed = state
        .db
        .call(move |c| notifications::mark_all_read(c, &u))
        .await?;
    let count = publish_unread(&state, &user).await?;
    Ok(Json(json!({"marked": changed, "unread_count": count})))
}

/// `DELETE /api/notifications/{id}/`: broadcasts `notification_deleted` then `unread_count`.
pub async fn delete(
    State(state): State<AppState>,
    Claims { sub: user, .. }: Claims,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_id(&id)?;
    let u = user.clone();
    if !state
        .db
        .call(move |c| notifications::delete(c, &u, id))
        .await?
    {
        return Err(ApiError::NotFound(format!("notification {id} not found")));
    }
    state
        .bus
        .publish(
            &stream_key(&user),
            Some("notification_deleted"),
            json!({"id": id}).to_string(),
        )
        .await?;
    let count = publish_unread(&state, &user).await?;
    Ok(Json(json!({"deleted": id, "unread_count": count})))
}

/// A user id given as a string or a number (seed 001 sends `user_id: 1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UserId {
    /// `"alice"`.
    Text(String),
    /// `1`.
    Number(i64),
}

impl UserId {
    fn into_string(self) -> String {
        match self {
            UserId::Text(s) => s,
            UserId::Number(n) => n.to_string(),
        }
    }
}

/// Body of `POST /api/notifications/trigger/`.
#[derive(Debug, Clone, Deserialize)]
pub struct TriggerBody {
    /// Recipient.
    pub user_id: UserId,
    /// Title.
    pub title: String,
    /// Text.
    pub message: String,
    /// Kind (`info`, …).
    #[serde(rename = "type", default = "default_kind")]
    pub kind: String,
}

fn default_kind() -> String {
    "info".into()
}

/// Leave to trigger notifications: under `--dev` anyone (no token is read), otherwise
/// any valid token.
#[derive(Debug, Clone, Copy)]
pub struct MayTrigger;

impl FromRequestParts<AppState> for MayTrigger {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if !state.config.dev {
            Claims::from_request_parts(parts, state).await?;
        }
        Ok(MayTrigger)
    }
}

/// `POST /api/notifications/trigger/`: creates a notification for `user_id`, broadcasts
/// `new_notification` and `unread_count`. Open in `--dev`; otherwise any valid token.
pub async fn trigger(
    State(state): State<AppState>,
    _: MayTrigger,
    ApiJson(body): ApiJson<TriggerBody>,
) -> ApiResult<Response> {
    let user = body.user_id.into_string();
    if user.is_empty() || user.len() > 128 || user.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "user_id: must be 1-128 characters without control characters".into(),
        ));
    }
    if body.title.trim().is_empty() {
        return Err(ApiError::Invalid("title: must not be empty".into()));
    }
    let (u, t, m, k) = (user.clone(), body.title, body.message, body.kind);
    let n: Notification = state
        .db
        .call(move |c| notifications::create(c, &u, &t, &m, &k, &now_rfc3339()))
        .await?;
    state
        .bus
        .publish(
            &stream_key(&user),
            Some("new_notification"),
            serde_json::to_string(&n).unwrap_or_default(),
        )
        .await?;
    let count = publish_unread(&state, &user).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"notification": n, "unread_count": count})),
    )
        .into_response())
}
