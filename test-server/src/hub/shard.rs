//! One shard of the hub: a task that owns a slab of connections and the groups of their
//! streams. A group's waker fires when its stream has events, which the shard hands to
//! each member; a connection's waker fires on socket events (peer gone, writable again).
//! The shard also sends heartbeats and closes peers that stopped reading.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::conn::{Beats, Closed, Conn, EncodeCache, Incoming, Rules};
use super::group::Group;
use super::ready::{ConnWaker, ReadyQueue, Ticket};
use super::{Command, HubConfig};
use crate::metrics::Metrics;

struct Entry {
    conn: Conn,
    wake: Arc<ConnWaker>,
    waker: Waker,
    generation: u64,
    group: Option<usize>,
}

/// The state a shard task owns.
pub(crate) struct Shard {
    config: HubConfig,
    metrics: Arc<Metrics>,
    conns: Slab<Entry>,
    groups: Slab<Group>,
    by_stream: HashMap<String, usize>,
    conn_queue: Arc<ReadyQueue>,
    group_queue: Arc<ReadyQueue>,
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
            groups: Slab::new(),
            by_stream: HashMap::new(),
            conn_queue: Arc::new(ReadyQueue::default()),
            group_queue: Arc::new(ReadyQueue::default()),
            cache: EncodeCache::default(),
            generation: 0,
            next_beat,
        }
    }

    /// Runs until shutdown (or until every hub handle is gone).
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        let period = self.config.heartbeat_every.min(Duration::from_millis(250));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (conn_queue, group_queue) =
            (Arc::clone(&self.conn_queue), Arc::clone(&self.group_queue));
        let mut batch: Vec<Ticket> = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                command = commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                _ = group_queue.notified() => {
                    group_queue.drain_into(&mut batch);
                    for (key, generation) in batch.drain(..) {
                        self.drive_group(key, generation);
                        tokio::task::yield_now().await;
                    }
                }
                _ = conn_queue.notified() => {
                    conn_queue.drain_into(&mut batch);
                    for (key, generation) in batch.drain(..) {
                        self.drive(key, generation);
                    }
                }
                _ = tick.tick() => self.housekeeping(),
            }
        }
        for entry in self.conns.drain() {
            entry.conn.finish();
        }
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Attach(incoming) => self.attach(*incoming),
            Command::Drop { stream } => {
                for key in self.keys_of(&stream) {
                    if let Some(conn) = self.remove(key) {
                        conn.finish();
                    }
                }
            }
            Command::Stall {
                stream,
                until,
                asked,
            } => {
                for key in self.keys_of(&stream) {
                    if let Some(e) = self.conns.get_mut(key) {
                        e.conn.stall(until, asked);
                    }
                }
            }
        }
    }

    /// Takes a connection in: it joins its stream's group (catching up from its own
    /// subscription if the group is ahead), or founds the group with that subscription.
    fn attach(&mut self, incoming: Incoming) {
        let Incoming {
            mut conn,
            subscription: mut own,
            terminal,
            lag_notice,
        } = incoming;
        let generation = self.next_generation();
        let key = self.conns.vacant_key();
        let wake = ConnWaker::new((key, generation), Arc::clone(&self.conn_queue));
        let waker = Waker::from(Arc::clone(&wake));
        let stream = conn.stream().map(str::to_owned);
        let existing = stream.as_ref().and_then(|s| self.by_stream.get(s).copied());
        let mut cx = Context::from_waker(&waker);
        let group = match existing {
            Some(gid) => {
                let target = self.groups[gid].last_id;
                let limit = self.config.queue;
                let rules = Rules {
                    terminal,
                    lag_notice,
                    limit,
                };
                let caught = conn.catch_up(&mut cx, &mut own, target, rules, &mut self.cache);
                if conn.lagged() {
                    self.metrics
                        .subscribers_lagged
                        .fetch_add(1, Ordering::Relaxed);
                }
                match caught {
                    Ok(true) if !conn.is_ending() => Some(gid),
                    Ok(true) => None,
                    Ok(false) => {
                        // Cannot line up with the group: end cleanly, the client resumes.
                        conn.finish();
                        return;
                    }
                    Err(_) => return,
                }
            }
            None => {
                let group_generation = self.next_generation();
                let entry = self.groups.vacant_entry();
                let gid = entry.key();
                let gwake = ConnWaker::new((gid, group_generation), Arc::clone(&self.group_queue));
                let name = stream.clone().unwrap_or_default();
                entry.insert(Group::new(
                    name,
                    own,
                    terminal,
                    lag_notice,
                    conn.last_id(),
                    gwake,
                    group_generation,
                ));
                if let Some(s) = stream {
                    self.by_stream.insert(s, gid);
                }
                self.group_queue_wake(gid);
                Some(gid)
            }
        };
        if let Some(gid) = group {
            let g = &mut self.groups[gid];
            g.members.push((key, generation));
            g.live += 1;
        }
        self.conns.insert(Entry {
            conn,
            wake,
            waker,
            generation,
            group,
        });
        self.drive(key, generation);
    }

    /// Queues a group for a turn (a new group may already have events waiting).
    fn group_queue_wake(&self, gid: usize) {
        if let Some(g) = self.groups.get(gid) {
            g.waker.wake_by_ref();
        }
    }

    fn keys_of(&self, stream: &str) -> Vec<usize> {
        self.conns
            .iter()
            .filter(|(_, e)| e.conn.stream() == Some(stream))
            .map(|(k, _)| k)
            .collect()
    }

    /// Drives a connection its socket woke.
    fn drive(&mut self, key: usize, generation: u64) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        entry.wake.clear();
        let mut cx = Context::from_waker(&entry.waker);
        if let Err(why) = entry.conn.drive(&mut cx) {
            if why == Closed::Peer {
                tracing::debug!("stream peer went away");
            }
            self.remove(key);
        }
    }

    /// Hands a group's new events to its members.
    fn drive_group(&mut self, gid: usize, generation: u64) {
        let Shard {
            conns,
            groups,
            cache,
            config,
            metrics,
            ..
        } = self;
        let Some(group) = groups.get_mut(gid) else {
            return;
        };
        if group.generation != generation {
            return;
        }
        let taken = group.take(cache);
        if taken.events.is_empty() && !taken.closed {
            return;
        }
        let (limit, notice) = (config.queue, group.lag_notice);
        let mut gone = Vec::new();
        group.members.retain(|&(key, member_generation)| {
            let Some(e) = conns
                .get_mut(key)
                .filter(|e| e.generation == member_generation)
            else {
                return false;
            };
            let mut cx = Context::from_waker(&e.waker);
            let was_behind = e.conn.lagged();
            let mut result = e.conn.deliver(&mut cx, &taken.events, limit, notice);
            if result.is_ok() && taken.closed {
                result = e.conn.end(&mut cx, notice);
            }
            if e.conn.lagged() && !was_behind {
                metrics.subscribers_lagged.fetch_add(1, Ordering::Relaxed);
            }
            if result.is_err() {
                gone.push(key);
                return false;
            }
            true
        });
        for key in gone {
            self.remove(key);
        }
        if taken.closed || taken.ends {
            self.remove_group(gid, generation);
        }
    }

    /// Removes a connection (and its group, if it was the last member); returns it.
    fn remove(&mut self, key: usize) -> Option<Conn> {
        let entry = self.conns.try_remove(key)?;
        if let Some(gid) = entry.group {
            if let Some(g) = self.groups.get_mut(gid) {
                g.live = g.live.saturating_sub(1);
                if g.live == 0 {
                    let generation = g.generation;
                    self.remove_group(gid, generation);
                }
            }
        }
        Some(entry.conn)
    }

    /// Drops a group and its subscription; members still open stay, without a group.
    fn remove_group(&mut self, gid: usize, generation: u64) {
        if self
            .groups
            .get(gid)
            .is_none_or(|g| g.generation != generation)
        {
            return;
        }
        let group = self.groups.remove(gid);
        if self.by_stream.get(&group.stream) == Some(&gid) {
            self.by_stream.remove(&group.stream);
        }
        for (key, member_generation) in group.members {
            if let Some(e) = self
                .conns
                .get_mut(key)
                .filter(|e| e.generation == member_generation)
            {
                e.group = None;
            }
        }
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
            self.remove(key);
        }
        for (key, generation) in resume {
            self.drive(key, generation);
        }
    }
}
