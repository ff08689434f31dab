//! The embedded SQLite database: one connection (WAL mode) used from blocking threads,
//! and a checkpointer thread with a connection of its own.
//!
//! Durability: `synchronous=NORMAL` in WAL mode. A commit is in the WAL file when it
//! returns, so it survives the process being killed (SIGKILL, a crash); it is not
//! fsynced, so an operating-system crash or power loss can lose the last commits. WAL
//! checkpoints (which fsync) run on the checkpointer thread, never inside a commit.
//!
//! Locking: both connections use SQLite's `unix-excl` VFS. The first to touch the file
//! takes one lock on it for the whole process, held until the last connection closes,
//! and the WAL index lives in the process's memory instead of a shared `-shm` file: a
//! transaction takes no file lock of its own (with the default VFS each commit made six
//! `fcntl` calls on the `-shm` file), and another process cannot use the database while
//! the server runs (a second server on the same `--data-dir` fails to start: database
//! is locked).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

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
CREATE TABLE IF NOT EXISTS idempotent_publishes (
    scope      TEXT NOT NULL,
    n          INTEGER NOT NULL,
    id         INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, n)
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
/// WAL frames (pages) past which the checkpointer restarts the WAL (64 MiB of 4 KiB pages).
#[cfg(not(test))]
const WAL_RESTART_FRAMES: i64 = 16 * 1024;
/// Small in unit tests, so a short burst of writes crosses it.
#[cfg(test)]
const WAL_RESTART_FRAMES: i64 = 256;
/// What the WAL file is cut back to when it starts over.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// Set by the checkpointer when the WAL must start over; the next user of the
    /// connection does it (see [`checkpoint_until_dropped`]).
    restart_due: Arc<AtomicBool>,
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
        let conn = open_excl(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints fsync; the checkpointer thread runs them instead of a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let checkpoints = open_excl(path)?;
        checkpoints.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel();
        let restart_due = Arc::new(AtomicBool::new(false));
        std::thread::Builder::new()
            .name("tidings-checkpoint".into())
            .spawn({
                let (path, due) = (path.to_owned(), Arc::clone(&restart_due));
                move || checkpoint_until_dropped(checkpoints, &path, &due, &stopped)
            })?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            restart_due,
            _checkpointer: Arc::new(stop),
        })
    }

    /// Runs `f` with the connection on the calling thread (which may block).
    pub(crate) fn blocking<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        with_conn(&self.conn, &self.restart_due, f)
    }

    /// The connection, when nobody else holds it and no WAL restart is due: for a short
    /// write on the calling thread that must never wait behind other work (a publish
    /// committed by its own request's task). `None` means: do it elsewhere.
    pub(crate) fn try_brief(&self) -> Option<MutexGuard<'_, Connection>> {
        if self.restart_due.load(Ordering::Relaxed) {
            return None;
        }
        match self.conn.try_lock() {
            Ok(conn) => Some(conn),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let (conn, due) = (Arc::clone(&self.conn), Arc::clone(&self.restart_due));
        let out = tokio::task::spawn_blocking(move || with_conn(&conn, &due, f)).await??;
        Ok(out)
    }
}

/// Opens `path` (read-write, created if missing) with the `unix-excl` VFS (see the
/// module docs).
fn open_excl(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags_and_vfs(path, OpenFlags::default(), "unix-excl")
}

/// Runs `f` with the locked connection, then starts the WAL over if that is due.
fn with_conn<T>(
    conn: &Mutex<Connection>,
    restart_due: &AtomicBool,
    f: impl FnOnce(&mut Connection) -> T,
) -> T {
    let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let out = f(&mut conn);
    if restart_due.swap(false, Ordering::Relaxed) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL restart failed; the checkpointer asks again");
        }
    }
    out
}

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`], until
/// every [`Db`] handle is gone. `PASSIVE` never waits for, nor blocks, the writer, and
/// lets the writer start the WAL over once a checkpoint caught up in a pause between
/// commits. Under writes without such pauses it never catches up (and a checkpoint
/// from this connection could never get in between two commits), so past
/// [`WAL_RESTART_FRAMES`] it asks the next user of the main connection to run a
/// `RESTART` checkpoint there: that copies the few frames left, holds that one user
/// back for it, and starts the WAL over, so the file stays bounded.
fn checkpoint_until_dropped(
    conn: Connection,
    path: &Path,
    restart_due: &AtomicBool,
    stopped: &mpsc::Receiver<()>,
) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        // Frames in the WAL. Even when all of them were copied, the writer may already
        // have appended more, so the WAL only starts over in a pause between commits.
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
        match passive {
            Ok(frames) if frames > WAL_RESTART_FRAMES => {
                restart_due.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, db = %path.display(), "WAL checkpoint failed; retrying");
            }
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

    #[test]
    fn the_wal_stays_bounded_under_writes_without_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path).unwrap();
        db.blocking(|c| c.execute_batch("CREATE TABLE blobs (b BLOB NOT NULL)"))
            .unwrap();
        let row = vec![7u8; 4000];
        let until = std::time::Instant::now() + Duration::from_secs(5);
        let mut commits = 0u64;
        while std::time::Instant::now() < until {
            db.blocking(|c| c.execute("INSERT INTO blobs (b) VALUES (?1)", [&row]))
                .unwrap();
            commits += 1;
        }
        // -1 while the checkpointer is busy with the WAL: ask again.
        let frames = (0..100)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                db.blocking(|c| c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)))
                    .unwrap()
            })
            .find(|&f: &i64| f >= 0)
            .expect("a checkpoint ran");
        // Each commit appends at least one page (the row does not fit in less); a WAL
        // that never started over would hold them all, one that did holds the last
        // second or so of the five.
        assert!(
            (frames as u64) < commits,
            "{frames} frames in the WAL after {commits} commits"
        );
    }
}
