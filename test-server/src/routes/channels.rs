//! Seed 003: channels carrying `WSMessage {type, object}` as unnamed events.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Claims;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::sse::{greet, Heartbeat};
use crate::state::AppState;
use crate::streaming::{self, StreamRequest, StreamSpec};

/// `GET` (stream) and `POST` (publish) on `/api/v1/events/{channel}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events/{channel}", get(stream).post(publish))
}

/// The public channel (greets like the seed's TEST_MODE).
pub const TEST_CHANNEL: &str = "test";

/// Channel names: 1–128 of `[A-Za-z0-9._:-]` (so no control characters, no slashes).
pub fn valid_channel(name: &str) -> ApiResult<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    {
        return Err(ApiError::Invalid(
            "channel: must be 1-128 characters of [A-Za-z0-9._:-]".into(),
        ));
    }
    Ok(())
}

fn authorise(claims: Option<&Claims>, channel: &str) -> ApiResult<()> {
    match claims {
        None => Err(ApiError::Unauthorized(format!(
            "channel {channel} requires a token"
        ))),
        Some(c) if c.allows_channel(channel) => Ok(()),
        Some(_) => Err(ApiError::Forbidden(format!(
            "token does not grant channel {channel}"
        ))),
    }
}

/// The `{channel}` path segment, checked by [`valid_channel`].
#[derive(Debug, Clone)]
pub struct ChannelName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ChannelName {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(channel) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        valid_channel(&channel).map_err(IntoResponse::into_response)?;
        Ok(ChannelName(channel))
    }
}

/// A channel the request's token covers: 401 without a token, 403 when its `channels`
/// claim does not cover the channel (also for `test`).
#[derive(Debug, Clone)]
pub struct GrantedChannel(pub String);

impl FromRequestParts<AppState> for GrantedChannel {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ChannelName(channel) = ChannelName::from_request_parts(parts, state).await?;
        let claims = Option::<Claims>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        authorise(claims.as_ref(), &channel).map_err(IntoResponse::into_response)?;
        Ok(GrantedChannel(channel))
    }
}

/// `GET /api/v1/events/{channel}`: `test` is public; others need a covering token.
pub async fn stream(
    State(state): State<AppState>,
    ChannelName(channel): ChannelName,
    req: StreamRequest,
    claims: Option<Claims>,
) -> ApiResult<Response> {
    if channel != TEST_CHANNEL {
        authorise(claims.as_ref(), &channel)?;
    }
    let mut greeting = Vec::new();
    if channel == TEST_CHANNEL {
        greet(
            &mut greeting,
            None,
            r#"{"type":"test","message":"SSE endpoint working"}"#,
        );
    } else {
        // Named, so the seed's `onmessage` never sees it; it carries the head id on fresh connections.
        let hello = serde_json::json!({"type": "connected", "channel": channel, "timestamp": crate::time::now_rfc3339()});
        greet(&mut greeting, Some("connected"), &hello.to_string());
    }
    let spec = StreamSpec {
        key: format!("channel/{channel}"),
        user: claims.map(|c| c.sub),
        greeting,
        heartbeat: Heartbeat::Named,
        terminal: None,
        lag_notice: None,
    };
    let opened = streaming::open(&state, &req, &spec).await?;
    Ok(streaming::respond(&state, &req, spec, opened, None).await)
}

/// Body of a publish: the seed's `WSMessage`.
#[derive(Debug, Clone, Deserialize)]
pub struct WsMessage {
    /// `task`, `data`, `file`, `entity`, `scene`, `render_progress`, `render_result`, or any other string.
    #[serde(rename = "type")]
    pub kind: String,
    /// An object or a string.
    pub object: serde_json::Value,
}

/// What a channel event's `data` holds: the message as the seed sends it.
#[derive(Serialize)]
struct Stored<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a serde_json::Value,
}

/// `POST /api/v1/events/{channel}` with `{type, object}` → `{id, channel}`; needs a token
/// whose `channels` claim covers the channel (also for `test`).
pub async fn publish(
    State(state): State<AppState>,
    GrantedChannel(channel): GrantedChannel,
    ApiJson(msg): ApiJson<WsMessage>,
) -> ApiResult<Json<serde_json::Value>> {
    if msg.kind.is_empty() || msg.kind.len() > 64 {
        return Err(ApiError::Invalid("type: must be 1-64 characters".into()));
    }
    if !(msg.object.is_object() || msg.object.is_string()) {
        return Err(ApiError::Invalid(
            "object: must be an object or a string".into(),
        ));
    }
    // Written straight from the parsed message: no intermediate JSON object.
    let data = serde_json::to_string(&Stored {
        kind: &msg.kind,
        object: &msg.object,
    })
    .map_err(|e| ApiError::Invalid(format!("object: {e}")))?;
    let e = state
        .bus
        .publish(&format!("channel/{channel}"), None, data)
        .await?;
    Ok(Json(json!({"id": e.id.to_string(), "channel": channel})))
}
