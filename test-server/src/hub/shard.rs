//! One shard of the hub: a task that owns a slab of connections and drives the ones whose
//! wakers fired, sends heartbeats, and closes peers that stopped reading.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::conn::{Beats, Closed, Conn, EncodeCache};
use super::ready::{ConnWaker, ReadyQueue, Ticket};
use super::{Command, HubConfig};
use crate::metrics::Metrics;

/// Connections driven between two yields to the runtime.
const DRIVES_PER_YIELD: usize = 1024;

struct Entry {
    conn: Conn,
    wake: Arc<ConnWaker>,
    waker: Waker,
    generation: u64,
}

/// The state a shard task owns.
pub(crate) struct Shard {
    config: HubConfig,
    metrics: Arc<Metrics>,
    conns: Slab<Entry>,
    queue: Arc<ReadyQueue>,
    cache: EncodeCache,
    generation: u64,
    next_beat: Instant,
}

impl Shard {
    pub(crate) fn new(config: HubConfig, metrics: Arc<Metrics>) -> Self {
        let next_beat = Instant::now() + config.heartbeat_every;
        Shard {
            config,
            metrics,
            conns: Slab::new(),
            queue: Arc::new(ReadyQueue::default()),
            cache: EncodeCache::default(),
            generation: 0,
            next_beat,
        }
    }

    /// Runs until shutdown (or until every hub handle is gone).
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, shutdown: CancellationToken) {
        let period = self.config.heartbeat_every.min(Duration::from_millis(250));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let queue = Arc::clone(&self.queue);
        let mut batch: Vec<Ticket> = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                command = commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                _ = queue.notified() => {
                    queue.drain_into(&mut batch);
                    // In slab order: neighbouring connections sit next to each other in
                    // memory, so a fan-out walks memory forwards instead of at random.
                    batch.sort_unstable();
                    for (i, (key, generation)) in batch.drain(..).enumerate() {
                        self.drive(key, generation);
                        if i % DRIVES_PER_YIELD == DRIVES_PER_YIELD - 1 {
                            tokio::task::yield_now().await;
                        }
                    }
                }
                _ = tick.tick() => self.housekeeping(),
            }
        }
        for entry in self.conns.drain() {
            entry.conn.finish();
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Attach(conn) => {
                self.generation += 1;
                let generation = self.generation;
                let entry = self.conns.vacant_entry();
                let key = entry.key();
                let wake = ConnWaker::new((key, generation), Arc::clone(&self.queue));
                let waker = Waker::from(Arc::clone(&wake));
                entry.insert(Entry { conn: *conn, wake, waker, generation });
                self.drive(key, generation);
            }
            Command::Drop { stream } => {
                let keys: Vec<usize> = self.keys_of(&stream);
                for key in keys {
                    let entry = self.conns.remove(key);
                    entry.conn.finish();
                }
            }
            Command::Stall { stream, until, asked } => {
                for key in self.keys_of(&stream) {
                    if let Some(e) = self.conns.get_mut(key) {
                        e.conn.stall(until, asked);
                    }
                }
            }
        }
    }

    fn keys_of(&self, stream: &str) -> Vec<usize> {
        self.conns.iter().filter(|(_, e)| e.conn.stream() == Some(stream)).map(|(k, _)| k).collect()
    }

    fn drive(&mut self, key: usize, generation: u64) {
        let Some(entry) = self.conns.get_mut(key) else { return };
        if entry.generation != generation {
            return;
        }
        entry.wake.clear();
        let mut cx = Context::from_waker(&entry.waker);
        if let Err(why) = entry.conn.drive(&mut cx, &mut self.cache) {
            self.close(key, why);
        }
    }

    fn close(&mut self, key: usize, why: Closed) {
        if why == Closed::Peer {
            tracing::debug!("stream peer went away");
        }
        drop(self.conns.remove(key));
    }

    /// Heartbeats when due, stalled writers closed, dev stalls lifted.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        let limit = self.config.write_stall;
        let beat_due = now >= self.next_beat;
        if beat_due {
            self.next_beat = now + self.config.heartbeat_every;
        }
        let mut beats = Beats::default();
        let mut gone = Vec::new();
        let mut resume = Vec::new();
        for (key, entry) in &mut self.conns {
            if entry.conn.write_stalled(now, limit) {
                self.metrics.writes_stalled.fetch_add(1, Ordering::Relaxed);
                gone.push(key);
                continue;
            }
            if entry.conn.stall_over(now) {
                resume.push((key, entry.generation));
            }
            if beat_due {
                let mut cx = Context::from_waker(&entry.waker);
                if entry.conn.beat(&mut cx, &mut beats).is_err() {
                    gone.push(key);
                }
            }
        }
        for key in gone {
            drop(self.conns.remove(key));
        }
        for (key, generation) in resume {
            self.drive(key, generation);
        }
    }
}
