//! The embedded SQLite database: one connection (WAL mode) used from blocking threads,
//! and a checkpointer thread with a connection of its own.
//!
//! Durability: `synchronous=NORMAL` in WAL mode. A commit is in the WAL file when it
//! returns, so it survives the process being killed (SIGKILL, a crash); it is not
//! fsynced, so an operating-system crash or power loss can lose the last commits. WAL
//! checkpoints (which fsync) run on the checkpointer thread, never inside a commit.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The thread that stores stream events has stopped (the server is shutting down).
    #[error("the event log writer has stopped")]
    WriterStopped,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS stream_heads (
    stream TEXT PRIMARY KEY,
    head   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_events (
    stream TEXT NOT NULL,
    id     INTEGER NOT NULL,
    event  TEXT,
    data   TEXT NOT NULL,
    PRIMARY KEY (stream, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS team_answers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    video_name  TEXT NOT NULL,
    frame_index INTEGER NOT NULL,
    url         TEXT NOT NULL,
    qa          TEXT,
    query_index INTEGER,
    round       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    title      TEXT NOT NULL,
    message    TEXT NOT NULL,
    type       TEXT NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, id);
CREATE TABLE IF NOT EXISTS video_jobs (
    id          TEXT PRIMARY KEY,
    prompt      TEXT NOT NULL,
    status      TEXT NOT NULL,
    step        TEXT,
    step_index  INTEGER NOT NULL,
    total_steps INTEGER NOT NULL,
    percent     INTEGER NOT NULL,
    message     TEXT,
    video_url   TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_unix INTEGER
);
"#;

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// Dropped with the last handle, which stops the checkpointer.
    _checkpointer: Arc<mpsc::Sender<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Opens (creating if needed) the database file, switches it to WAL and applies the schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints fsync; the checkpointer thread runs them instead of a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let checkpoints = Connection::open(path)?;
        checkpoints.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel();
        std::thread::Builder::new()
            .name("tidings-checkpoint".into())
            .spawn({
                let path = path.to_owned();
                move || checkpoint_until_dropped(checkpoints, &path, &stopped)
            })?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            _checkpointer: Arc::new(stop),
        })
    }

    /// Runs `f` with the connection on the calling thread (which may block).
    pub(crate) fn blocking<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut lock(&self.conn))
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let out = tokio::task::spawn_blocking(move || f(&mut lock(&conn))).await??;
        Ok(out)
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`]
/// (`PASSIVE`: it never waits for, nor blocks, the writer), until every [`Db`] handle
/// is gone.
fn checkpoint_until_dropped(conn: Connection, path: &Path, stopped: &mpsc::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, db = %path.display(), "WAL checkpoint failed; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_a_real_file_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("sub/t.db")).unwrap();
        let mode: String = db
            .call(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert!(dir.path().join("sub/t.db").exists());
    }
}
