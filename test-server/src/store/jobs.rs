//! Video jobs (seed 002).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// A stored job, as `/status` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Job {
    /// Random id (the capability to read the job).
    pub job_id: String,
    /// The prompt.
    pub prompt: String,
    /// `queued`, `running`, `completed`, `error` or `timeout`.
    pub status: String,
    /// Current step name.
    pub step: Option<String>,
    /// Current step, from 1 (0 before the first).
    pub step_index: i64,
    /// Number of steps.
    pub total_steps: i64,
    /// 0–100.
    pub percent: i64,
    /// Last progress message.
    pub message: Option<String>,
    /// Set when completed.
    pub video_url: Option<String>,
    /// Set on `error`/`timeout`.
    pub error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl Job {
    /// Whether the job has reached a terminal status.
    pub fn finished(&self) -> bool {
        terminal_status(&self.status).is_some()
    }
}

/// The `end` reason for a terminal status.
pub fn terminal_status(status: &str) -> Option<&'static str> {
    match status {
        "completed" => Some("completed"),
        "error" => Some("error"),
        "timeout" => Some("timeout"),
        _ => None,
    }
}

fn row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        job_id: r.get(0)?,
        prompt: r.get(1)?,
        status: r.get(2)?,
        step: r.get(3)?,
        step_index: r.get(4)?,
        total_steps: r.get(5)?,
        percent: r.get(6)?,
        message: r.get(7)?,
        video_url: r.get(8)?,
        error: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

const COLS: &str = "id, prompt, status, step, step_index, total_steps, percent, message, video_url, error, created_at, updated_at";

/// Inserts a queued job.
pub fn insert(
    c: &Connection,
    id: &str,
    prompt: &str,
    total: i64,
    now: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO video_jobs (id, prompt, status, step_index, total_steps, percent, message, created_at, updated_at)
         VALUES (?1, ?2, 'queued', 0, ?3, 0, 'Queued', ?4, ?4)",
        params![id, prompt, total, now],
    )?;
    Ok(())
}

/// One job.
pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<Job>> {
    c.query_row(
        &format!("SELECT {COLS} FROM video_jobs WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
}

/// Records progress.
pub fn progress(
    c: &Connection,
    id: &str,
    step: &str,
    index: i64,
    percent: i64,
    message: &str,
    now: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE video_jobs SET status = 'running', step = ?2, step_index = ?3, percent = ?4, message = ?5, updated_at = ?6 WHERE id = ?1",
        params![id, step, index, percent, message, now],
    )?;
    Ok(())
}

/// Records the terminal status.
#[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
pub fn finish(
    c: &Connection,
    id: &str,
    status: &str,
    message: &str,
    video_url: Option<&str>,
    error: Option<&str>,
    now: &str,
    unix: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE video_jobs SET status = ?2, message = ?3, video_url = ?4, error = ?5, updated_at = ?6, finished_unix = ?7,
         percent = CASE WHEN ?2 = 'completed' THEN 100 ELSE percent END WHERE id = ?1",
        params![id, status, message, video_url, error, now, unix],
    )?;
    Ok(())
}

/// Jobs that were queued or running (e.g. when the server stopped).
pub fn unfinished(c: &Connection) -> rusqlite::Result<Vec<Job>> {
    let mut s = c.prepare(&format!(
        "SELECT {COLS} FROM video_jobs WHERE status IN ('queued', 'running')"
    ))?;
    let rows = s.query_map([], row)?.collect();
    rows
}

/// Deletes finished jobs that finished at or before `before_unix`; returns their ids.
pub fn cleanup(c: &mut Connection, before_unix: i64) -> rusqlite::Result<Vec<String>> {
    let tx = c.transaction()?;
    let ids = {
        let mut s = tx.prepare(
            "SELECT id FROM video_jobs WHERE finished_unix IS NOT NULL AND finished_unix <= ?1",
        )?;
        let ids = s
            .query_map([before_unix], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        ids
    };
    tx.execute(
        "DELETE FROM video_jobs WHERE finished_unix IS NOT NULL AND finished_unix <= ?1",
        [before_unix],
    )?;
    tx.commit()?;
    Ok(ids)
}
