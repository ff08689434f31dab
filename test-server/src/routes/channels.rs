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
    let id = publish_message(&state, &channel, &msg).await?;
    Ok(Json(json!({"id": id.to_string(), "channel": channel})))
}

/// Checks a publish's message and publishes it on `channel`; returns the event's id.
async fn publish_message(state: &AppState, channel: &str, msg: &WsMessage) -> ApiResult<u64> {
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
    let mut stream = String::with_capacity(PREFIX.len() + channel.len());
    stream.push_str(PREFIX);
    stream.push_str(channel);
    Ok(state.bus.publish(&stream, None, data).await?.id)
}

/// A channel's stream key is this followed by the channel's name.
const PREFIX: &str = "channel/";

/// The publish route's path before the channel's name.
const PUBLISH_PATH: &str = "/api/v1/events/";

/// Whether [`publish_direct`] answers `req` exactly as the router would: a `POST` to
/// `/api/v1/events/{channel}` with the name as it is (no percent-escapes), no query
/// string (a `?token=`), no `Idempotency-Key` (its layer remembers the answer) and no
/// `Origin` (the CORS layer answers those). Anything else goes through the router.
pub(crate) fn direct<B>(req: &axum::http::Request<B>) -> bool {
    let uri = req.uri();
    req.method() == axum::http::Method::POST
        && uri.query().is_none()
        && uri
            .path()
            .strip_prefix(PUBLISH_PATH)
            .is_some_and(|name| !name.contains(['/', '%']))
        && !req.headers().contains_key(crate::idempotency::HEADER)
        && !req.headers().contains_key(axum::http::header::ORIGIN)
}

/// [`publish`] without the router, for a request [`direct`] takes: the same checks in
/// the same order, the same answers and errors, without the router's layers (none of
/// which does anything to such a request but the CORS layer's headers, added here too:
/// the answer is too small to compress),
/// its extractors and its per-request span. Publishing is what a busy server does most;
/// this is its hot path.
pub(crate) async fn publish_direct<B>(state: &AppState, req: axum::http::Request<B>) -> Response
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let channel = parts
        .uri
        .path()
        .strip_prefix(PUBLISH_PATH)
        .unwrap_or_default();
    let published = async {
        valid_channel(channel)?;
        let claims = state.auth.optional(&parts.headers, None)?;
        authorise(claims.as_ref(), channel)?;
        let limit = state.config.max_body_bytes;
        let bytes = read_body(body, limit).await?;
        let msg: WsMessage = crate::extract::parse_json(&bytes)?;
        publish_message(state, channel, &msg).await
    };
    let mut res = match published.await {
        Ok(id) => answer(id, channel),
        Err(e) => e.into_response(),
    };
    if state.cors {
        crate::app::cors_headers_without_origin(res.headers_mut());
    }
    res
}

/// A request body of at most `limit` bytes, in one piece (no copy when it came in one).
async fn read_body<B>(body: B, limit: usize) -> ApiResult<bytes::Bytes>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge(limit))
        }
        Err(e) => Err(ApiError::Invalid(format!(
            "cannot read body: Failed to buffer the request body: {e}"
        ))),
    }
}

/// `{"id":"<id>","channel":"<channel>"}` as `application/json`, as `Json(json!(…))`
/// writes it (a valid channel name needs no escaping).
fn answer(id: u64, channel: &str) -> Response {
    use std::fmt::Write;
    let mut body = String::with_capacity(32 + channel.len());
    let _ = write!(body, r#"{{"id":"{id}","channel":"{channel}"}}"#);
    let mut res = Response::new(axum::body::Body::from(body));
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    res
}
