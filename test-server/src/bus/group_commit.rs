//! Group commit of stream events: appends wait in one queue, and whoever commits takes
//! every append waiting and stores them in one SQLite transaction.
//!
//! When nothing is being committed, the publishing task commits on its own thread, after
//! one yield that lets the publishers already ready on its worker queue behind it and
//! share its transaction: no hand-over to another thread and back, which on a busy
//! machine costs more than the commit itself (a write to the WAL, no fsync; see
//! [`crate::db`]). Its yields are Tokio's own ([`tokio::task::yield_now`]): the task is
//! resumed by the worker it runs on once that worker's other ready tasks have run, and
//! no other worker is woken to take it over (a task rescheduled by waking itself would
//! wake an idle worker, which steals it: each publish would cross both cores twice).
//! Publishers that arrive while a transaction is being written wait in the queue, and the
//! writer thread commits them together when that transaction is done: under load the cost
//! of a commit is paid once per group, not once per event, and no request's task commits
//! more than its own group. Work that may take longer (loading a ring, removing a stream,
//! a due WAL restart) always runs on the writer thread.
//!
//! After the commit, the group's events are handed to [`Deliver`] in id order, then each
//! publisher is answered: nothing reaches a subscriber, and no publish is acknowledged,
//! before its event is stored. One group is committed at a time, and only by the one who
//! took it from the queue, so ids stay strictly increasing per stream in storage, on the
//! wire and in the answers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::keyed::KeyedPublish;
use super::log_store;
use crate::db::{Db, StoreError};
use crate::event::Event;
use crate::metrics::Metrics;

/// Most appends stored in one transaction (a larger backlog takes several).
const MAX_GROUP: usize = 1024;

/// Receives each stored event, in commit and id order (on the thread that committed it).
pub(crate) trait Deliver: Send + Sync + 'static {
    /// Hands `event` of `stream` to the stream's subscribers (must not block).
    fn deliver(&self, stream: &str, event: &Arc<Event>);
}

/// Work run on the writer's connection between two groups, so it never interleaves
/// with an append (loading a ring, removing a stream).
pub(crate) type Exclusive = Box<dyn FnOnce(&mut Connection) + Send>;

enum Command {
    Append(Append),
    Exclusive(Exclusive),
}

struct Append {
    stream: String,
    event: Option<String>,
    data: String,
    /// Set for a publish of a request with an `Idempotency-Key`: stored with a mark, and
    /// not stored again when the mark is there (a re-run of the request).
    mark: Option<KeyedPublish>,
    reply: oneshot::Sender<Result<Arc<Event>, StoreError>>,
}

/// What waits to be committed, and who commits.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Command>,
    /// Someone (a publishing task or the writer thread) is committing: new commands wait.
    busy: bool,
    /// The writer thread is to take the queue (set with `busy`).
    thread_turn: bool,
    /// Every handle is gone: the writer thread ends once the queue is empty.
    stopped: bool,
}

/// State shared by the handles and the writer thread.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when the writer thread gets its turn, or when the handles are gone.
    turn: Condvar,
    writer: Writer,
}

/// Stops the writer thread when the last handle is dropped.
struct Handles(Arc<Shared>);

impl Drop for Handles {
    fn drop(&mut self) {
        lock(&self.0.queue).stopped = true;
        self.0.turn.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Handle to the group commit; the writer thread ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    _handles: Arc<Handles>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    /// Starts the writer on `db`, keeping `keep` events per stream; it counts its
    /// commits in `metrics`.
    pub(crate) fn start(
        db: Db,
        keep: u64,
        deliver: Arc<dyn Deliver>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            turn: Condvar::new(),
            writer: Writer {
                db,
                keep: keep.max(1),
                deliver,
                metrics,
                heads: Mutex::new(HashMap::new()),
            },
        });
        std::thread::Builder::new()
            .name("tidings-log-writer".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || shared.run_writer()
            })?;
        Ok(GroupCommit {
            _handles: Arc::new(Handles(Arc::clone(&shared))),
            shared,
        })
    }

    /// Commands waiting in the queue.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        lock(&self.shared.queue).waiting.len()
    }

    /// Stores an event with the next id of `stream`; answers once it is committed and
    /// handed to [`Deliver`]. Commits it right here when nothing else is being
    /// committed (see the module docs).
    pub(crate) async fn append(
        &self,
        stream: String,
        event: Option<String>,
        data: String,
        mark: Option<KeyedPublish>,
    ) -> Result<Arc<Event>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let append = Append {
            stream,
            event,
            data,
            mark,
            reply,
        };
        let lead = {
            let mut q = lock(&self.shared.queue);
            q.waiting.push_back(Command::Append(append));
            !std::mem::replace(&mut q.busy, true)
        };
        if lead {
            let lead = Lead(Some(&self.shared));
            // Lets the tasks this worker already has ready (other publishers whose
            // requests came in with this one) queue their appends behind ours first:
            // they join this group instead of each paying a commit of its own.
            tokio::task::yield_now().await;
            lead.commit();
            // The commit woke the tasks that hand the group's events to subscribers
            // (hub shards) on this worker: they run before this task answers, so the
            // events go out before the answers are written, not after.
            tokio::task::yield_now().await;
        }
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Runs `f` on the writer's connection after every append queued before it, and
    /// before any queued after it.
    pub(crate) async fn exclusive<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Exclusive = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        {
            let mut q = lock(&self.shared.queue);
            q.waiting.push_back(Command::Exclusive(job));
            if !std::mem::replace(&mut q.busy, true) {
                q.thread_turn = true;
                self.shared.turn.notify_one();
            }
        }
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The publishing task that found nobody committing, between its append and its commit.
/// Dropped before it commits (its request was cancelled while it yielded), it hands the
/// queue to the writer thread, so the appends waiting behind it are still committed.
struct Lead<'a>(Option<&'a Shared>);

impl Lead<'_> {
    fn commit(mut self) {
        if let Some(shared) = self.0.take() {
            shared.commit_here();
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.hand_over(&mut lock(&shared.queue));
        }
    }
}

/// Takes the next group from the front of the queue: every append waiting (up to
/// [`MAX_GROUP`]) before the first exclusive step, or that step alone when it is first.
fn take(q: &mut Queue, group: &mut Vec<Append>) -> Option<Exclusive> {
    while group.len() < MAX_GROUP {
        match q.waiting.pop_front() {
            Some(Command::Append(a)) => group.push(a),
            Some(Command::Exclusive(job)) if group.is_empty() => return Some(job),
            Some(exclusive @ Command::Exclusive(_)) => {
                q.waiting.push_front(exclusive);
                break;
            }
            None => break,
        }
    }
    None
}

impl Shared {
    /// Called by the task that found nobody committing (it set `busy`): commits the
    /// waiting group on this thread when the connection is free at once, then gives what
    /// arrived meanwhile to the writer thread.
    fn commit_here(&self) {
        let mut group = Vec::new();
        if let Some(mut conn) = self.writer.db.try_brief() {
            // This task's append is first in the queue (it found nobody committing, so
            // the queue was empty), and an exclusive step queued since then waits
            // behind the group.
            let first = take(&mut lock(&self.queue), &mut group);
            if !group.is_empty() {
                self.writer.commit_group(&mut conn, &mut group);
            }
            if let Some(job) = first {
                self.writer.exclusive(&mut conn, job);
            }
        }
        self.hand_over(&mut lock(&self.queue));
    }

    /// Ends a task's turn: the writer thread takes what waits, or nobody is busy.
    fn hand_over(&self, q: &mut Queue) {
        if q.waiting.is_empty() {
            q.busy = false;
        } else {
            q.thread_turn = true;
            self.turn.notify_one();
        }
    }

    /// The writer thread: whenever it gets its turn, commits group after group until the
    /// queue is empty; ends when every handle is gone.
    fn run_writer(&self) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut q = lock(&self.queue);
        loop {
            while !q.thread_turn && !q.stopped {
                q = self
                    .turn
                    .wait(q)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            let job = take(&mut q, &mut group);
            if group.is_empty() && job.is_none() {
                q.thread_turn = false;
                q.busy = false;
                if q.stopped {
                    return;
                }
                continue;
            }
            drop(q);
            self.writer.db.blocking(|conn| {
                if !group.is_empty() {
                    self.writer.commit_group(conn, &mut group);
                }
                if let Some(job) = job {
                    self.writer.exclusive(conn, job);
                }
            });
            q = lock(&self.queue);
        }
    }
}

/// Most stream heads remembered by the writer (past it, it starts again from empty).
const MAX_HEADS: usize = 8192;

/// What committing needs.
struct Writer {
    db: Db,
    keep: u64,
    deliver: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
    /// Each stream's head as of the last commit that wrote it: the next id needs no
    /// query. Only the writer stores events, so this stays true until an exclusive step
    /// (which may remove a stream) runs; the map is then forgotten. Used under the
    /// connection's lock, so never contended.
    heads: Mutex<HashMap<String, u64>>,
}

impl Writer {
    /// Runs an exclusive step; the heads remembered are forgotten first.
    fn exclusive(&self, conn: &mut Connection, job: Exclusive) {
        lock(&self.heads).clear();
        job(conn);
    }

    /// Stores the group in one transaction, then delivers each event and answers its
    /// publisher. If the group's transaction fails, each append is retried in a
    /// transaction of its own, so one failing append does not fail the others.
    fn commit_group(&self, conn: &mut Connection, group: &mut Vec<Append>) {
        // The heads are unlocked before a failed group is retried one by one below.
        let stored = store(conn, self.keep, group, &mut lock(&self.heads));
        match stored {
            Ok(ids) => {
                self.metrics
                    .event_groups_committed
                    .fetch_add(1, Ordering::Relaxed);
                for (a, (id, stored)) in group.drain(..).zip(ids) {
                    let event = Arc::new(Event {
                        id,
                        event: a.event,
                        data: a.data,
                    });
                    if stored {
                        self.deliver.deliver(&a.stream, &event);
                    }
                    let _ = a.reply.send(Ok(event));
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(a) = group.pop() {
                    let _ = a.reply.send(Err(e.into()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = group.len(), "group commit failed; storing its events one by one");
                for a in std::mem::take(group) {
                    self.commit_group(conn, &mut vec![a]);
                }
            }
        }
    }
}

/// A transaction through cached `BEGIN` / `COMMIT` statements (no SQL parsed per
/// group); rolled back when dropped uncommitted.
struct Tx<'c>(&'c Connection);

impl<'c> Tx<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Tx(conn))
    }

    fn commit(&self) -> rusqlite::Result<()> {
        self.0.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.0
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        // Still in the transaction: it failed before or at its commit.
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// One transaction: gives each event the next id of its stream (after the newest stored
/// one, from `known` or the log), inserts it, then trims each stream's log once. Returns
/// the ids, each with `false` when a marked event was stored before (nothing stored
/// again); `known` gets the new heads once the transaction is committed.
fn store(
    conn: &mut Connection,
    keep: u64,
    group: &[Append],
    known: &mut HashMap<String, u64>,
) -> rusqlite::Result<Vec<(u64, bool)>> {
    let tx = Tx::begin(conn)?;
    // Per stream: the head before the group, and the last id given.
    let mut heads: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut ids = Vec::with_capacity(group.len());
    for a in group {
        if let Some(m) = &a.mark {
            let before: Option<u64> = tx
                .prepare_cached(
                    "SELECT id FROM idempotent_publishes WHERE scope = ?1 AND n = ?2 AND expires_ms > ?3",
                )?
                .query_row(
                    rusqlite::params![m.scope, m.n, chrono::Utc::now().timestamp_millis()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = before {
                ids.push((id, false));
                continue;
            }
        }
        let (before, head) = match heads.get(a.stream.as_str()) {
            Some(&h) => h,
            None => {
                let h = match known.get(a.stream.as_str()) {
                    Some(&h) => h,
                    None => log_store::head(&tx, &a.stream)?,
                };
                (h, h)
            }
        };
        let id = head + 1;
        log_store::insert(&tx, &a.stream, id, a.event.as_deref(), &a.data)?;
        if let Some(m) = &a.mark {
            let expires = chrono::Utc::now()
                .timestamp_millis()
                .saturating_add(i64::try_from(m.keep_ms).unwrap_or(i64::MAX));
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotent_publishes (scope, n, id, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![m.scope, m.n, id, expires])?;
        }
        heads.insert(&a.stream, (before, id));
        ids.push((id, true));
    }
    for (stream, (before, head)) in &heads {
        log_store::trim(&tx, stream, *before, *head, keep)?;
    }
    tx.commit()?;
    if known.len() + heads.len() > MAX_HEADS {
        known.clear();
    }
    for (stream, (_, head)) in heads {
        match known.get_mut(stream) {
            Some(h) => *h = head,
            None => {
                known.insert(stream.to_owned(), head);
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests;
