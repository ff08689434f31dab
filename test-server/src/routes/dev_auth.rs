//! `--dev` only: `POST /api/auth/dev-token`.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Claims, TOKEN_COOKIE};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::time::now_unix;

/// `POST /api/auth/dev-token`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/auth/dev-token", post(dev_token))
}

/// Body of the dev-token request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    /// Becomes `sub`.
    pub user_id: String,
    /// Channel patterns (default none).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Lifetime in seconds, 1–604800 (default 3600).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Issues a token (also set as the `tidings_token` cookie, HttpOnly, SameSite=Lax).
pub async fn dev_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DevTokenRequest>,
) -> ApiResult<Response> {
    if body.user_id.is_empty()
        || body.user_id.len() > 128
        || body.user_id.chars().any(char::is_control)
    {
        return Err(ApiError::Invalid(
            "user_id: must be 1-128 characters without control characters".into(),
        ));
    }
    let ttl = body.ttl_secs.unwrap_or(3600);
    if !(1..=604_800).contains(&ttl) {
        return Err(ApiError::Invalid(
            "ttl_secs: must be between 1 and 604800".into(),
        ));
    }
    let exp = now_unix().max(0) as u64 + ttl;
    let token = state.auth.sign(&Claims {
        sub: body.user_id,
        channels: body.channels,
        exp,
    })?;
    let mut res = Json(json!({"token": token, "expires_at": exp})).into_response();
    let cookie = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={ttl}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}
