//! The simulated video production runner (seed 002): steps with realistic names, progress
//! events, then `completed`, `error` or `timeout`.
//!
//! Jobs do not survive a restart: a job that was queued or running when the server stopped is
//! marked `error` ("interrupted by restart") at the next start, and that error event is
//! appended to its stream, so a reconnecting client gets a terminal event and `end`.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::event::Event;
use crate::state::AppState;
use crate::store::jobs;
use crate::time::{now_rfc3339, now_unix};

/// The production steps: (name, what is being done, what is done).
pub const STEPS: &[(&str, &str, &str)] = &[
    ("script", "Writing the script", "Script written"),
    ("voiceover", "Recording the voiceover", "Voiceover recorded"),
    ("images", "Generating images", "Images generated"),
    ("animation", "Animating scenes", "Scenes animated"),
    ("render", "Rendering the video", "Video rendered"),
    ("upload", "Uploading the video", "Video uploaded"),
];

/// How one job runs.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Number of steps (1–20; names repeat past six).
    pub steps: usize,
    /// Duration of each step.
    pub step: Duration,
    /// Fail at this step (1-based), for tests and demos.
    pub fail_at_step: Option<usize>,
    /// Overall time limit.
    pub timeout: Duration,
}

/// Stream key of a job.
pub fn stream_key(job_id: &str) -> String {
    format!("video/{job_id}")
}

/// The `end` reason if `e` is a terminal video event.
pub fn terminal(e: &Event) -> Option<&'static str> {
    match e.event.as_deref() {
        Some("completed") => Some("completed"),
        Some("error") => Some("error"),
        Some("timeout") => Some("timeout"),
        _ => None,
    }
}

/// Starts the job in the background.
pub fn spawn(state: AppState, job_id: String, plan: JobPlan) {
    tokio::spawn(async move {
        if let Err(e) = run(&state, &job_id, &plan).await {
            tracing::error!(job_id = %job_id, error = ?e, "video job failed to record progress");
        }
    });
}

async fn publish(
    state: &AppState,
    job_id: &str,
    event: &str,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .bus
        .publish(&stream_key(job_id), Some(event), data.to_string())
        .await?;
    Ok(())
}

async fn finish(
    state: &AppState,
    job_id: &str,
    status: &'static str,
    message: String,
    url: Option<String>,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    publish(state, job_id, status, data).await?;
    let id = job_id.to_owned();
    let err = (status != "completed").then(|| message.clone());
    state
        .db
        .call(move |c| {
            jobs::finish(
                c,
                &id,
                status,
                &message,
                url.as_deref(),
                err.as_deref(),
                &now_rfc3339(),
                now_unix(),
            )
        })
        .await?;
    Ok(())
}

async fn run(state: &AppState, job_id: &str, plan: &JobPlan) -> Result<(), ApiError> {
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let total = plan.steps as i64;
    for i in 0..plan.steps {
        let (name, doing, done) = STEPS[i % STEPS.len()];
        let index = i as i64 + 1;
        let step_started = now_rfc3339();
        let percent = (i as i64 * 100) / total;
        publish(
            state,
            job_id,
            "progress",
            json!({
                "type": "progress", "job_id": job_id, "status": "running", "step": name,
                "step_index": index, "total_steps": total, "percent": percent, "message": doing,
                "step_started_at": step_started, "timestamp": step_started,
            }),
        )
        .await?;
        let (id, n, d) = (job_id.to_owned(), name.to_owned(), doing.to_owned());
        state
            .db
            .call(move |c| jobs::progress(c, &id, &n, index, percent, &d, &now_rfc3339()))
            .await?;

        let step_end = Instant::now() + plan.step;
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(step_end.min(deadline)) => {}
        }
        if step_end > deadline {
            let secs = plan.timeout.as_secs_f64();
            let message = format!("Video production timed out after {secs} s");
            let data = json!({"type": "timeout", "job_id": job_id, "status": "timeout", "step": name,
                "step_index": index, "message": message, "timestamp": now_rfc3339()});
            return finish(state, job_id, "timeout", message, None, data).await;
        }
        if plan.fail_at_step == Some(i + 1) {
            let message = format!("{doing} failed (simulated failure)");
            let data = json!({"type": "error", "job_id": job_id, "status": "error", "step": name,
                "step_index": index, "message": message, "timestamp": now_rfc3339()});
            return finish(state, job_id, "error", message, None, data).await;
        }
        let percent = (index * 100) / total;
        publish(
            state,
            job_id,
            "progress",
            json!({
                "type": "progress", "job_id": job_id, "status": "running", "step": name,
                "step_index": index, "total_steps": total, "percent": percent, "message": done,
                "step_started_at": step_started, "step_duration_ms": plan.step.as_millis() as u64,
                "timestamp": now_rfc3339(),
            }),
        )
        .await?;
    }
    let url = format!("/videos/{job_id}.mp4");
    let data = json!({"type": "completed", "job_id": job_id, "status": "completed", "percent": 100,
        "message": "Video ready", "video_url": url, "duration_ms": started.elapsed().as_millis() as u64,
        "timestamp": now_rfc3339()});
    finish(
        state,
        job_id,
        "completed",
        "Video ready".into(),
        Some(url),
        data,
    )
    .await
}

/// Marks jobs left queued/running by a previous process as `error` and appends that event.
pub async fn recover(state: &AppState) -> Result<usize, ApiError> {
    let stale = state.db.call(|c| jobs::unfinished(c)).await?;
    for job in &stale {
        let message = "interrupted by restart".to_owned();
        let data = json!({"type": "error", "job_id": job.job_id, "status": "error", "step": job.step,
            "step_index": job.step_index, "message": message, "timestamp": now_rfc3339()});
        finish(state, &job.job_id, "error", message, None, data).await?;
    }
    Ok(stale.len())
}
