//! Group commit of stream events: one writer thread drains a queue of appends and
//! stores every append that is waiting in one SQLite transaction.
//!
//! Publishers that arrive while a transaction is being written wait in the queue and
//! share the next one, so the cost of a commit is paid once per group, not once per
//! event, and an idle server commits a lone event at once (no timer). After the commit
//! the writer hands the group's events to [`Deliver`] in id order, then answers each
//! publisher: nothing reaches a subscriber, and no publish is acknowledged, before its
//! event is stored. The writer is the only place that assigns ids, so ids stay strictly
//! increasing per stream in storage, on the wire and in the answers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::keyed::KeyedPublish;
use super::log_store;
use crate::db::{Db, StoreError};
use crate::event::Event;
use crate::metrics::Metrics;

/// Most appends stored in one transaction (a larger backlog takes several).
const MAX_GROUP: usize = 1024;
/// Appends waiting for the writer before publishers wait to enqueue.
const QUEUE: usize = 16 * 1024;

/// Receives each stored event, on the writer thread, in commit and id order.
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

/// Handle to the writer thread; the thread ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Command>,
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
        let (queue, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            db,
            keep: keep.max(1),
            deliver,
            metrics,
        };
        std::thread::Builder::new()
            .name("tidings-log-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(GroupCommit { queue })
    }

    /// Commands waiting in the queue.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Stores an event with the next id of `stream`; answers once it is committed and
    /// handed to [`Deliver`].
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
        self.queue
            .send(Command::Append(append))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
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
        self.queue
            .send(Command::Exclusive(job))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The writer thread's state.
struct Writer {
    db: Db,
    keep: u64,
    deliver: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
}

impl Writer {
    /// Takes every command waiting (up to [`MAX_GROUP`] appends, or up to an exclusive
    /// step), commits the appends as one group, runs the exclusive step; until every
    /// handle is dropped.
    fn run(self, mut rx: mpsc::Receiver<Command>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut pending: Option<Exclusive> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(a) => group.push(a),
                    Command::Exclusive(job) => {
                        pending = Some(job);
                        break;
                    }
                }
                if group.len() < MAX_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            self.db.blocking(|conn| {
                if !group.is_empty() {
                    self.commit_group(conn, &mut group);
                }
                if let Some(job) = pending.take() {
                    job(conn);
                }
            });
        }
    }

    /// Stores the group in one transaction, then delivers each event and answers its
    /// publisher. If the group's transaction fails, each append is retried in a
    /// transaction of its own, so one failing append does not fail the others.
    fn commit_group(&self, conn: &mut Connection, group: &mut Vec<Append>) {
        match store(conn, self.keep, group) {
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

/// One transaction: gives each event the next id of its stream (from the stored head),
/// inserts it, then moves each stream's head and trims its log once. Returns the ids,
/// each with `false` when a marked event was stored before (nothing stored again).
fn store(conn: &mut Connection, keep: u64, group: &[Append]) -> rusqlite::Result<Vec<(u64, bool)>> {
    let tx = conn.transaction()?;
    let mut heads: HashMap<&str, u64> = HashMap::new();
    let mut ids = Vec::with_capacity(group.len());
    for a in group {
        if let Some(m) = &a.mark {
            let before: Option<u64> = tx
                .query_row(
                    "SELECT id FROM idempotent_publishes WHERE scope = ?1 AND n = ?2 AND expires_ms > ?3",
                    rusqlite::params![m.scope, m.n, chrono::Utc::now().timestamp_millis()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = before {
                ids.push((id, false));
                continue;
            }
        }
        let head = match heads.get(a.stream.as_str()) {
            Some(&h) => h,
            None => log_store::head(&tx, &a.stream)?,
        };
        let id = head + 1;
        log_store::insert(&tx, &a.stream, id, a.event.as_deref(), &a.data)?;
        if let Some(m) = &a.mark {
            let expires = chrono::Utc::now()
                .timestamp_millis()
                .saturating_add(i64::try_from(m.keep_ms).unwrap_or(i64::MAX));
            tx.execute(
                "INSERT OR REPLACE INTO idempotent_publishes (scope, n, id, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![m.scope, m.n, id, expires],
            )?;
        }
        heads.insert(&a.stream, id);
        ids.push((id, true));
    }
    for (stream, head) in &heads {
        log_store::set_head(&tx, stream, *head, keep)?;
    }
    tx.commit()?;
    Ok(ids)
}

#[cfg(test)]
mod tests;
