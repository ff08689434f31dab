//! The Redis [`Bus`]: several `tidings-server` instances serve one audience.
//!
//! Ids and the replay log live in Redis (see [`wire`] for the keys): a Lua script
//! `INCRBY`s the stream's counter and `XADD`s the entries as `N-0` atomically, trimmed with
//! `MAXLEN ~ --replay-log-size`, so ids are global per stream and a client can resume on
//! any instance. Publishes that arrive together share one script call ([`group`]). Replay is one atomic `GET` + `XRANGE`. Live delivery: one reader task per
//! instance runs `XREAD BLOCK` over the streams that have local subscribers, from the last
//! id it delivered for each, and fans out to the per-connection bounded queues exactly like
//! [`MemoryBus`](super::MemoryBus) (a full queue closes that subscriber). No task per
//! connection. On a Redis outage open streams stay open, publishes and new subscriptions
//! fail with [`BusError::Unavailable`], and the reader reconnects with backoff and resumes
//! from the ids it had delivered, so nothing published meanwhile is missed.

mod group;
mod health;
mod reader;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, RedisError, Value};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Bus, BusError, BusHealth, Subscription};
use crate::event::{plan_resume, Event, Position};
use crate::metrics::Metrics;
use health::Health;

/// How long a command may take before Redis counts as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long publishes and subscriptions wait for the very first connection at start.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(3);

/// Fan-out through Redis Streams; see the module docs.
pub struct RedisBus {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("prefix", &self.shared.prefix)
            .field("log_size", &self.shared.log_size)
            .finish()
    }
}

/// State shared by request handlers and the reader task.
struct Shared {
    client: ::redis::Client,
    prefix: String,
    log_size: u64,
    queue: usize,
    metrics: Arc<Metrics>,
    health: Health,
    /// Connection for publishes and replays; `None` while Redis is unavailable (only the
    /// reader installs a new one, after checking the epoch).
    cmd: Mutex<Option<MultiplexedConnection>>,
    /// Streams with local subscribers.
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    /// `CLIENT ID` of the reader's connection (0 = none), to cut its `XREAD BLOCK` short.
    reader_id: AtomicI64,
    /// Wakes an idle reader when a stream gets its first subscriber.
    wake: tokio::sync::Notify,
    /// Becomes true after the first connection attempt (successful or not).
    first_attempt: tokio::sync::watch::Sender<bool>,
    /// The Redis dataset's epoch this instance last saw.
    epoch: Mutex<Option<String>>,
    /// Publishes waiting for their group's script call (see [`group`]).
    pending: Mutex<Vec<group::Pending>>,
    group_script: ::redis::Script,
    keyed_script: ::redis::Script,
    next_subscriber: AtomicU64,
    stop: CancellationToken,
}

/// One stream with local subscribers.
#[derive(Default)]
struct Topic {
    /// Held by the subscriber that sets the first cursor of a new topic, so concurrent
    /// first subscribers cannot leave a gap between their replay and the reader's start.
    init: tokio::sync::Mutex<()>,
    st: Mutex<TopicState>,
}

#[derive(Default)]
struct TopicState {
    /// The last id the reader delivered here (`None` until the first subscriber set it).
    cursor: Option<u64>,
    subscribers: BTreeMap<u64, Subscriber>,
}

struct Subscriber {
    tx: mpsc::Sender<Arc<Event>>,
    /// Events up to this id came in the subscriber's replay.
    skip: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A client for the Redis at `url` (`--redis-url`) whose connections send each command
/// at once (`TCP_NODELAY`): with Nagle's algorithm on, as the Redis client leaves it, a
/// command written while another is unanswered waits for that answer's ACK, so
/// concurrent publishes queued behind one another's `fsync`s, and behind delayed ACKs.
pub(crate) fn client(url: &str) -> Result<::redis::Client, BusError> {
    use ::redis::IntoConnectionInfo;
    let config = |e: RedisError| BusError::Config(format!("--redis-url: {e}"));
    let info = url.into_connection_info().map_err(config)?;
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    ::redis::Client::open(info.set_tcp_settings(tcp)).map_err(config)
}

/// Connection loss, refusal or timeout: Redis is unavailable (as opposed to an error reply).
fn is_outage(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
}

/// Removes its subscriber when the subscription is dropped; forgets an empty topic.
struct SubscriberGuard {
    shared: Weak<Shared>,
    topic: Weak<Topic>,
    key: String,
    id: u64,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        let (Some(shared), Some(topic)) = (self.shared.upgrade(), self.topic.upgrade()) else {
            return;
        };
        let mut map = lock(&shared.topics);
        let mut st = lock(&topic.st);
        st.subscribers.remove(&self.id);
        if st.subscribers.is_empty() && map.get(&self.key).is_some_and(|t| Arc::ptr_eq(t, &topic)) {
            map.remove(&self.key);
        }
    }
}

impl RedisBus {
    /// A bus on the Redis at `url` (`redis://host:port/db`), keeping about `log_size` events
    /// per stream and `queue` queued events per subscriber. Starts the reader task (which
    /// connects in the background; the server starts even while Redis is down) and stops it
    /// when `shutdown` is cancelled or the bus is dropped.
    pub fn new(
        url: &str,
        log_size: u64,
        queue: usize,
        metrics: Arc<Metrics>,
        shutdown: &CancellationToken,
    ) -> Result<Self, BusError> {
        let client = client(url)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| BusError::Config("the Redis bus needs a tokio runtime".into()))?;
        let shared = Arc::new(Shared {
            client,
            prefix: "tidings".into(),
            log_size: log_size.max(1),
            queue: queue.max(1),
            metrics,
            health: Health::new(),
            cmd: Mutex::new(None),
            topics: Mutex::new(HashMap::new()),
            reader_id: AtomicI64::new(0),
            wake: tokio::sync::Notify::new(),
            first_attempt: tokio::sync::watch::Sender::new(false),
            epoch: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            group_script: ::redis::Script::new(wire::GROUP_PUBLISH_SCRIPT),
            keyed_script: ::redis::Script::new(wire::KEYED_PUBLISH_SCRIPT),
            next_subscriber: AtomicU64::new(1),
            stop: shutdown.child_token(),
        });
        runtime.spawn(reader::run(Arc::clone(&shared)));
        Ok(RedisBus { shared })
    }

    /// Live subscribers of a stream on this instance (for tests and stats).
    pub fn subscriber_count(&self, stream: &str) -> usize {
        lock(&self.shared.topics)
            .get(stream)
            .map_or(0, |t| lock(&t.st).subscribers.len())
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl Shared {
    async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// The command connection, or why there is none.
    async fn cmd_conn(&self) -> Result<MultiplexedConnection, BusError> {
        if !*self.first_attempt.borrow() {
            let mut started = self.first_attempt.subscribe();
            let _ = tokio::time::timeout(FIRST_CONNECT_WAIT, started.wait_for(|done| *done)).await;
        }
        lock(&self.cmd)
            .clone()
            .ok_or_else(|| BusError::Unavailable(self.health.last_error()))
    }

    /// Turns a Redis error into a bus error; an outage drops the command connection and
    /// marks the bus unhealthy (the reader reconnects).
    fn on_error(&self, e: RedisError) -> BusError {
        if is_outage(&e) {
            *lock(&self.cmd) = None;
            self.health.fail(e.to_string());
            BusError::Unavailable(e.to_string())
        } else {
            BusError::Redis(e.to_string())
        }
    }

    fn bad_reply(&self, e: wire::BadReply) -> BusError {
        BusError::Redis(e.to_string())
    }

    async fn publish(
        self: Arc<Self>,
        stream: String,
        event: Option<String>,
        data: String,
    ) -> Result<Arc<Event>, BusError> {
        // A publish of a request with an Idempotency-Key is stored with a marker, in one
        // script of its own, so a re-run of the request (its answer lost with a killed
        // process) finds the event instead of storing it again. Every other publish
        // shares a script call with those that arrive with it.
        match super::keyed::next_publish() {
            None => self.publish_grouped(stream, event, data).await,
            Some(keyed) => self.publish_keyed(keyed, stream, event, data).await,
        }
    }

    async fn publish_keyed(
        &self,
        keyed: super::keyed::KeyedPublish,
        stream: String,
        event: Option<String>,
        data: String,
    ) -> Result<Arc<Event>, BusError> {
        let mut conn = self.cmd_conn().await?;
        let mut call = self.keyed_script.prepare_invoke();
        call.key(wire::log_key(&self.prefix, &stream))
            .key(wire::counter_key(&self.prefix, &stream))
            .arg(self.log_size)
            .arg(if event.is_some() { "1" } else { "0" })
            .arg(event.as_deref().unwrap_or(""))
            .arg(&data)
            .key(wire::published_key(&self.prefix, &keyed.scope, keyed.n))
            .arg(keyed.keep_ms);
        let id: u64 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.on_error(e))?;
        self.metrics
            .events_published
            .fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Event { id, event, data }))
    }

    async fn subscribe(
        self: Arc<Self>,
        stream: String,
        position: Position,
    ) -> Result<Subscription, BusError> {
        let mut conn = self.cmd_conn().await?;
        let (tx, rx) = mpsc::channel(self.queue);
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        // Registered before reading Redis: everything the reader delivers from now on reaches
        // this queue (duplicates of the replay are skipped here and by the stream's id check).
        let (topic, cursor) = {
            let mut map = lock(&self.topics);
            let topic = Arc::clone(map.entry(stream.clone()).or_default());
            let mut st = lock(&topic.st);
            st.subscribers.insert(id, Subscriber { tx, skip: 0 });
            let cursor = st.cursor;
            drop(st);
            (topic, cursor)
        };
        let guard = SubscriberGuard {
            shared: Arc::downgrade(&self),
            topic: Arc::downgrade(&topic),
            key: stream.clone(),
            id,
        };
        let _init = match cursor {
            Some(_) => None,
            None => Some(topic.init.lock().await),
        };
        let log = wire::log_key(&self.prefix, &stream);
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(wire::counter_key(&self.prefix, &stream))
            .cmd("XRANGE")
            .arg(&log)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        if let Position::After(n) = position {
            pipe.cmd("XRANGE")
                .arg(&log)
                .arg(format!("{}-0", n.saturating_add(1)))
                .arg("+");
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.on_error(e))?;
        let reply = |i: usize| replies.get(i).unwrap_or(&Value::Nil);
        let head = wire::counter(reply(0)).map_err(|e| self.bad_reply(e))?;
        let oldest = wire::range(reply(1))
            .map_err(|e| self.bad_reply(e))?
            .first()
            .map_or(head + 1, |e| e.id);
        let (reset, replay) = match plan_resume(&position, oldest, head) {
            Ok(after) if after < head => {
                let events = wire::range(reply(2)).map_err(|e| self.bad_reply(e))?;
                (
                    None,
                    events
                        .into_iter()
                        .filter(|e| e.id > after && e.id <= head)
                        .map(Arc::new)
                        .collect(),
                )
            }
            Ok(_) => (None, Vec::new()),
            Err(reset) => (Some(reset), Vec::new()),
        };
        let started = {
            let mut st = lock(&topic.st);
            if let Some(sub) = st.subscribers.get_mut(&id) {
                sub.skip = head;
            }
            let started = st.cursor.is_none();
            if started {
                st.cursor = Some(head);
            }
            started
        };
        if started {
            self.wake_reader(&mut conn).await;
        }
        if reset.is_some() {
            self.metrics.resets_sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Subscription::new(
            reset,
            replay,
            head,
            rx,
            Some(Box::new(guard)),
        ))
    }

    /// Makes the reader pick up a new stream now instead of after its current `XREAD BLOCK`.
    async fn wake_reader(&self, conn: &mut MultiplexedConnection) {
        self.wake.notify_one();
        let reader = self.reader_id.load(Ordering::Acquire);
        if reader != 0 {
            let unblocked: Result<Value, RedisError> = ::redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(reader)
                .query_async(conn)
                .await;
            if let Err(e) = unblocked {
                tracing::debug!(error = %e, "CLIENT UNBLOCK failed; the reader picks the stream up after its block timeout");
            }
        }
    }

    async fn remove(&self, stream: String) -> Result<(), BusError> {
        let mut conn = self.cmd_conn().await?;
        let _: Value = ::redis::cmd("DEL")
            .arg(wire::log_key(&self.prefix, &stream))
            .arg(wire::counter_key(&self.prefix, &stream))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.on_error(e))?;
        Ok(())
    }
}

impl Bus for RedisBus {
    fn publish(
        &self,
        stream: &str,
        event: Option<&str>,
        data: String,
    ) -> BoxFuture<'_, Result<Arc<Event>, BusError>> {
        Arc::clone(&self.shared)
            .publish(stream.to_owned(), event.map(str::to_owned), data)
            .boxed()
    }

    fn subscribe(
        &self,
        stream: &str,
        position: Position,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Arc::clone(&self.shared)
            .subscribe(stream.to_owned(), position)
            .boxed()
    }

    fn remove(&self, stream: &str) -> BoxFuture<'_, Result<(), BusError>> {
        self.shared.remove(stream.to_owned()).boxed()
    }

    fn health(&self) -> BusHealth {
        self.shared.health.snapshot()
    }
}
