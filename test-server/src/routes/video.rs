//! Seed 002: video jobs and their finite progress streams.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, ApiJson};
use crate::sse::Heartbeat;
use crate::state::AppState;
use crate::store::jobs::{self, terminal_status, Job};
use crate::streaming::{self, StreamRequest, StreamSpec};
use crate::time::{now_rfc3339, now_unix};
use crate::video::{self, JobPlan};

/// Job creation, cleanup, status and the progress streams.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chat/create-video", post(create))
        .route("/api/video-progress/cleanup", post(cleanup))
        .route("/api/video-progress/{job_id}", get(stream))
        .route("/api/video-progress/{job_id}/status", get(status))
}

/// Body of `POST /api/chat/create-video`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVideo {
    /// What the video is about (required, non-empty).
    pub prompt: String,
    /// Number of production steps, 1–20 (default 6).
    #[serde(default)]
    pub steps: Option<u32>,
    /// Per-job step duration in ms, 1–60000 (default `--video-step-ms`).
    #[serde(default)]
    pub step_ms: Option<u64>,
    /// Simulate a failure at this step (1-based).
    #[serde(default)]
    pub fail_at_step: Option<u32>,
}

fn valid_job_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::Invalid(
            "job_id: must be 1-64 characters of [A-Za-z0-9-]".into(),
        ));
    }
    Ok(())
}

async fn load(state: &AppState, id: &str) -> ApiResult<Job> {
    valid_job_id(id)?;
    let key = id.to_owned();
    state
        .db
        .call(move |c| jobs::get(c, &key))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

/// `POST /api/chat/create-video` → `{job_id, status, status_url, progress_url}`.
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateVideo>,
) -> ApiResult<Response> {
    if body.prompt.trim().is_empty() {
        return Err(ApiError::Invalid("prompt: must not be empty".into()));
    }
    let steps = body.steps.unwrap_or(video::STEPS.len() as u32);
    if !(1..=20).contains(&steps) {
        return Err(ApiError::Invalid("steps: must be between 1 and 20".into()));
    }
    let step_ms = body.step_ms.unwrap_or(state.config.video_step_ms);
    if !(1..=60_000).contains(&step_ms) {
        return Err(ApiError::Invalid(
            "step_ms: must be between 1 and 60000".into(),
        ));
    }
    if let Some(k) = body.fail_at_step {
        if k == 0 || k > steps {
            return Err(ApiError::Invalid(
                "fail_at_step: must be between 1 and steps".into(),
            ));
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (key, prompt) = (id.clone(), body.prompt.clone());
    state
        .db
        .call(move |c| jobs::insert(c, &key, &prompt, steps as i64, &now_rfc3339()))
        .await?;
    let plan = JobPlan {
        steps: steps as usize,
        step: Duration::from_millis(step_ms),
        fail_at_step: body.fail_at_step.map(|k| k as usize),
        timeout: state.config.video_timeout(),
    };
    video::spawn(state.clone(), id.clone(), plan);
    let body = json!({
        "success": true,
        "job_id": id,
        "status": "queued",
        "status_url": format!("/api/video-progress/{id}/status"),
        "progress_url": format!("/api/video-progress/{id}"),
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /api/video-progress/{job_id}`: replay from the start (or after `Last-Event-ID`),
/// live progress, the terminal event, then `event: end` and the response closes.
pub async fn stream(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    req: StreamRequest,
) -> ApiResult<Response> {
    load(&state, &job_id).await?;
    let spec = StreamSpec {
        key: video::stream_key(&job_id),
        user: None,
        greeting: Vec::new(),
        heartbeat: Heartbeat::Video(job_id.clone()),
        terminal: Some(video::terminal),
        lag_notice: None,
    };
    let opened = streaming::open(&state, &req, &spec).await?;
    // Read after subscribing: if the job is finished now, its terminal event is in the log.
    let job = load(&state, &job_id).await?;
    let ended = terminal_status(&job.status);
    Ok(streaming::respond(&state, &req, spec, opened, ended).await)
}

/// `GET /api/video-progress/{job_id}/status`: the job without SSE.
pub async fn status(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> ApiResult<Json<Job>> {
    Ok(Json(load(&state, &job_id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    #[serde(default)]
    older_than_secs: Option<i64>,
}

/// `POST /api/video-progress/cleanup` (optional body `{"older_than_secs": 3600}`): deletes
/// finished jobs and their event logs → `{removed, job_ids}`.
pub async fn cleanup(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let older = if body.iter().all(u8::is_ascii_whitespace) {
        3600
    } else {
        parse_json::<CleanupBody>(&body)?
            .older_than_secs
            .unwrap_or(3600)
    };
    if older < 0 {
        return Err(ApiError::Invalid("older_than_secs: must be >= 0".into()));
    }
    let before = now_unix() - older;
    let ids = state.db.call(move |c| jobs::cleanup(c, before)).await?;
    for id in &ids {
        state.bus.remove(&video::stream_key(id)).await?;
    }
    Ok(Json(json!({"removed": ids.len(), "job_ids": ids})))
}
