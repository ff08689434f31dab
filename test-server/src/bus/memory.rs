//! The in-process [`Bus`]: a ring per stream in memory, written through to SQLite by
//! the [group commit](super::group_commit) writer, which also fans each stored event out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::group_commit::{Deliver, GroupCommit};
use super::{log_store, Bus, BusError, Subscription};
use crate::db::Db;
use crate::event::{plan_resume, Event, Position};
use crate::metrics::Metrics;

/// In-process fan-out with a persisted, bounded replay log per stream.
pub struct MemoryBus {
    writer: GroupCommit,
    log_size: u64,
    queue: usize,
    metrics: Arc<Metrics>,
    topics: Arc<Topics>,
    next_subscriber: AtomicU64,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("log_size", &self.log_size)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Streams with subscribers (or one on the way): only these are held in memory.
type Topics = Mutex<HashMap<String, Arc<Topic>>>;

/// Drops a topic from memory once nobody uses it (no subscriber, no subscribe in
/// flight: the map holds the only other strong reference). Its log stays in SQLite and
/// is reloaded on next use, so idle streams cost no memory.
fn evict_if_idle(topics: &Topics, key: &str, topic: &Arc<Topic>) {
    let mut map = lock(topics);
    let idle = lock(&topic.state).subscribers.is_empty() && Arc::strong_count(topic) == 2;
    if idle && map.get(key).is_some_and(|t| Arc::ptr_eq(t, topic)) {
        map.remove(key);
    }
}

#[derive(Default)]
struct Topic {
    state: Mutex<TopicState>,
}

#[derive(Default)]
struct TopicState {
    /// The last stored id (valid once the ring is loaded).
    head: u64,
    /// The last `log_size` events; loaded from SQLite by the writer (between two
    /// groups) on the first subscribe, then kept up to date by [`Fanout`].
    ring: Option<VecDeque<Arc<Event>>>,
    subscribers: BTreeMap<u64, mpsc::Sender<Arc<Event>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes its subscriber from the topic when the subscription is dropped.
struct SubscriberGuard {
    topics: Weak<Topics>,
    topic: Weak<Topic>,
    key: String,
    id: u64,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        // The map is locked before the topic is upgraded: the strong reference this
        // takes is then the only one besides the map's while the idle check runs, even
        // when other guards of the topic drop at the same moment (each upgrade would
        // otherwise make the other's check see the topic in use, and it would stay).
        let Some(topics) = self.topics.upgrade() else {
            return;
        };
        let mut map = lock(&topics);
        let Some(topic) = self.topic.upgrade() else {
            return;
        };
        let mut st = lock(&topic.state);
        st.subscribers.remove(&self.id);
        let idle = st.subscribers.is_empty() && Arc::strong_count(&topic) == 2;
        drop(st);
        if idle && map.get(&self.key).is_some_and(|t| Arc::ptr_eq(t, &topic)) {
            map.remove(&self.key);
        }
    }
}

/// Hands stored events to a stream's ring and subscribers (on the writer thread).
struct Fanout {
    topics: Arc<Topics>,
    log_size: u64,
    metrics: Arc<Metrics>,
}

impl Deliver for Fanout {
    fn deliver(&self, stream: &str, event: &Arc<Event>) {
        self.metrics
            .events_published
            .fetch_add(1, Ordering::Relaxed);
        // The map stays locked, so a topic is never evicted while it takes an event.
        let map = lock(&self.topics);
        let Some(topic) = map.get(stream) else {
            return;
        };
        let mut lagged = 0u64;
        let mut st = lock(&topic.state);
        let Some(ring) = st.ring.as_mut() else {
            // Not loaded yet: the load, which runs after this event's group, has it.
            return;
        };
        ring.push_back(Arc::clone(event));
        while ring.len() as u64 > self.log_size {
            ring.pop_front();
        }
        st.head = event.id;
        st.subscribers
            .retain(|_, tx| match tx.try_send(Arc::clone(event)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    lagged += 1;
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            });
        drop(st);
        drop(map);
        if lagged > 0 {
            self.metrics
                .subscribers_lagged
                .fetch_add(lagged, Ordering::Relaxed);
            tracing::info!(stream = %stream, lagged, "closed subscribers that fell behind");
        }
    }
}

impl MemoryBus {
    /// A bus over `db`, keeping `log_size` events per stream and `queue` queued events
    /// per subscriber; starts the group-commit writer thread (it stops with the bus).
    ///
    /// # Errors
    /// The writer thread cannot be started.
    pub fn new(
        db: Db,
        log_size: u64,
        queue: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Self, BusError> {
        let log_size = log_size.max(1);
        let topics = Arc::new(Mutex::new(HashMap::new()));
        let fanout = Fanout {
            topics: Arc::clone(&topics),
            log_size,
            metrics: Arc::clone(&metrics),
        };
        Ok(MemoryBus {
            writer: GroupCommit::start(db, log_size, Arc::new(fanout), Arc::clone(&metrics))?,
            log_size,
            queue: queue.max(1),
            metrics,
            topics,
            next_subscriber: AtomicU64::new(1),
        })
    }

    fn topic(&self, stream: &str) -> Arc<Topic> {
        let mut topics = lock(&self.topics);
        Arc::clone(topics.entry(stream.to_owned()).or_default())
    }

    /// Makes sure the topic's ring is in memory. The load runs on the writer between two
    /// groups, so no event is stored between reading the log and installing it.
    async fn load_ring(&self, stream: &str, topic: &Arc<Topic>) -> Result<(), BusError> {
        if lock(&topic.state).ring.is_some() {
            return Ok(());
        }
        let (key, keep, topic) = (stream.to_owned(), self.log_size, Arc::clone(topic));
        self.writer
            .exclusive(move |c| {
                if lock(&topic.state).ring.is_none() {
                    let (head, events) = log_store::load(c, &key, keep)?;
                    let mut st = lock(&topic.state);
                    st.head = head;
                    st.ring = Some(events.into_iter().map(Arc::new).collect());
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Live subscribers of a stream (for tests and stats).
    pub fn subscriber_count(&self, stream: &str) -> usize {
        lock(&self.topics)
            .get(stream)
            .map_or(0, |t| lock(&t.state).subscribers.len())
    }

    /// Streams currently held in memory.
    pub fn cached_streams(&self) -> usize {
        lock(&self.topics).len()
    }

    async fn do_subscribe(
        &self,
        stream: String,
        position: Position,
    ) -> Result<Subscription, BusError> {
        let topic = self.topic(&stream);
        let loaded = self.load_ring(&stream, &topic).await;
        if let Err(e) = loaded {
            evict_if_idle(&self.topics, &stream, &topic);
            return Err(e);
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&topic.state);
        let head = st.head;
        let ring = st.ring.as_ref();
        let oldest = ring.and_then(|r| r.front()).map_or(head + 1, |e| e.id);
        let (reset, replay) = match plan_resume(&position, oldest, head) {
            Ok(after) => (
                None,
                ring.map(|r| r.iter().filter(|e| e.id > after).cloned().collect())
                    .unwrap_or_default(),
            ),
            Err(reset) => (Some(reset), Vec::new()),
        };
        st.subscribers.insert(id, tx);
        drop(st);
        if reset.is_some() {
            self.metrics.resets_sent.fetch_add(1, Ordering::Relaxed);
        }
        let guard = SubscriberGuard {
            topics: Arc::downgrade(&self.topics),
            topic: Arc::downgrade(&topic),
            key: stream,
            id,
        };
        Ok(Subscription::new(
            reset,
            replay,
            head,
            rx,
            Some(Box::new(guard)),
        ))
    }

    async fn do_remove(&self, stream: String) -> Result<(), BusError> {
        let topics = Arc::clone(&self.topics);
        self.writer
            .exclusive(move |c| {
                log_store::remove(c, &stream)?;
                lock(&topics).remove(&stream);
                Ok(())
            })
            .await?;
        Ok(())
    }
}

impl Bus for MemoryBus {
    fn publish(
        &self,
        stream: &str,
        event: Option<&str>,
        data: String,
    ) -> BoxFuture<'_, Result<Arc<Event>, BusError>> {
        // Read here, in the publishing request's task: its Idempotency-Key, if any.
        let mark = super::keyed::next_publish();
        let stored = self
            .writer
            .append(stream.to_owned(), event.map(str::to_owned), data, mark);
        async move { Ok(stored.await?) }.boxed()
    }

    fn subscribe(
        &self,
        stream: &str,
        position: Position,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        self.do_subscribe(stream.to_owned(), position).boxed()
    }

    fn remove(&self, stream: &str) -> BoxFuture<'_, Result<(), BusError>> {
        self.do_remove(stream.to_owned()).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResetReason;

    fn bus(dir: &std::path::Path, log: u64, queue: usize) -> MemoryBus {
        let db = Db::open(&dir.join("bus.db")).unwrap();
        MemoryBus::new(db, log, queue, Arc::new(Metrics::default())).unwrap()
    }

    #[tokio::test]
    async fn ids_start_at_one_and_replay_is_gapless() {
        let dir = tempfile::tempdir().unwrap();
        let b = bus(dir.path(), 100, 8);
        for i in 1..=3 {
            let e = b.publish("s", Some("x"), format!("{i}")).await.unwrap();
            assert_eq!(e.id, i);
        }
        let mut sub = b.subscribe("s", Position::After(1)).await.unwrap();
        assert_eq!(
            sub.replay.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![2, 3]
        );
        b.publish("s", None, "4".into()).await.unwrap();
        assert_eq!(sub.live.recv().await.unwrap().id, 4);
        assert_eq!(b.publish("other", None, "a".into()).await.unwrap().id, 1);
    }

    #[tokio::test]
    async fn ids_and_log_survive_reopen_and_log_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = bus(dir.path(), 5, 8);
            for i in 0..12 {
                b.publish("s", None, i.to_string()).await.unwrap();
            }
        }
        let b = bus(dir.path(), 5, 8);
        let sub = b.subscribe("s", Position::After(7)).await.unwrap();
        assert_eq!(
            sub.replay.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![8, 9, 10, 11, 12]
        );
        let sub = b.subscribe("s", Position::After(6)).await.unwrap();
        assert_eq!(sub.reset.unwrap().reason, ResetReason::Gap);
        assert_eq!(b.publish("s", None, "x".into()).await.unwrap().id, 13);
    }

    #[tokio::test]
    async fn full_queue_closes_the_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let b = bus(dir.path(), 100, 2);
        let mut sub = b.subscribe("s", Position::Live).await.unwrap();
        for i in 0..5 {
            b.publish("s", None, i.to_string()).await.unwrap();
        }
        assert_eq!(b.subscriber_count("s"), 0);
        assert_eq!(sub.live.recv().await.unwrap().id, 1);
        assert_eq!(sub.live.recv().await.unwrap().id, 2);
        assert!(
            sub.live.recv().await.is_none(),
            "closed after the queued events"
        );
        assert_eq!(b.metrics.subscribers_lagged.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn idle_topics_leave_memory_when_their_last_subscriptions_drop_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let b = bus(dir.path(), 100, 2);
        // Two threads spin until both are ready, then drop their subscription of one
        // stream at the same moment; rounds make the overlap happen.
        let rounds = 3000;
        let mut pairs = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let key = format!("s{round}");
            let one = b.subscribe(&key, Position::Live).await.unwrap();
            let two = b.subscribe(&key, Position::Live).await.unwrap();
            pairs.push((one, two));
        }
        let (firsts, seconds): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let dropper = |subs: Vec<Subscription>, ready: Arc<std::sync::atomic::AtomicUsize>| {
            std::thread::spawn(move || {
                for (round, sub) in subs.into_iter().enumerate() {
                    ready.fetch_add(1, Ordering::SeqCst);
                    while ready.load(Ordering::SeqCst) < 2 * (round + 1) {
                        std::hint::spin_loop();
                    }
                    drop(sub);
                }
            })
        };
        let a = dropper(firsts, Arc::clone(&ready));
        let c = dropper(seconds, Arc::clone(&ready));
        a.join().unwrap();
        c.join().unwrap();
        assert_eq!(
            b.cached_streams(),
            0,
            "idle topics left in memory after {rounds} pairs of subscriptions dropped at once"
        );
    }

    #[tokio::test]
    async fn dropping_a_subscription_unregisters_it() {
        let dir = tempfile::tempdir().unwrap();
        let b = bus(dir.path(), 100, 2);
        let sub = b.subscribe("s", Position::Live).await.unwrap();
        assert_eq!(b.subscriber_count("s"), 1);
        drop(sub);
        assert_eq!(b.subscriber_count("s"), 0);
        assert_eq!(b.cached_streams(), 0, "idle streams leave memory");
        // and come back from SQLite intact
        b.publish("s", None, "a".into()).await.unwrap();
        assert_eq!(b.cached_streams(), 0);
        let sub = b.subscribe("s", Position::After(0)).await.unwrap();
        assert_eq!(sub.replay.len(), 1);
        assert_eq!(b.publish("s", None, "b".into()).await.unwrap().id, 2);
        assert_eq!(b.cached_streams(), 1);
    }
}
