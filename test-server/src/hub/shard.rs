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

use super::conn::{Beats, CaughtUp, Closed, Conn, EncodeCache, Incoming, Joins, Rules};
use super::group::{Group, Member};
use super::ready::{ConnWaker, ReadyQueue, Ticket};
use super::{Command, HubConfig};
use crate::bus::Subscription;
use crate::metrics::Metrics;
use crate::sse::MuxMember;

struct Entry {
    conn: Conn,
    wake: Arc<ConnWaker>,
    waker: Waker,
    generation: u64,
    group: Option<usize>,
}

/// Where joining a group left a connection's stream.
enum Joined {
    /// A member of this group.
    Member(usize),
    /// The stream ended while catching up.
    Ended,
    /// It could not line up with the group.
    Behind,
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

    /// Takes a connection in: it joins its stream's group (or, multiplexed, the group of
    /// each of its streams).
    fn attach(&mut self, incoming: Incoming) {
        let Incoming { mut conn, joins } = incoming;
        let generation = self.next_generation();
        let key = self.conns.vacant_key();
        let wake = ConnWaker::new((key, generation), Arc::clone(&self.conn_queue));
        let waker = Waker::from(Arc::clone(&wake));
        let mut cx = Context::from_waker(&waker);
        let ticket = (key, generation);
        let group = match joins {
            Joins::One(join) => {
                let stream = conn.stream().unwrap_or_default().to_owned();
                let rules = Rules {
                    terminal: join.terminal,
                    lag_notice: join.lag_notice,
                    limit: self.config.queue,
                    tag: None,
                };
                match self.join(
                    &mut conn,
                    &mut cx,
                    ticket,
                    stream,
                    rules,
                    join.subscription,
                    join.last_id,
                ) {
                    Ok(Joined::Member(gid)) => Some(gid),
                    Ok(Joined::Ended) => None,
                    Ok(Joined::Behind) => {
                        // Cannot line up with the group: end cleanly, the client resumes.
                        conn.finish();
                        return;
                    }
                    Err(_) => return,
                }
            }
            Joins::Mux(members) => {
                let mut joined = Vec::with_capacity(members.len());
                for m in members {
                    let MuxMember {
                        tag,
                        subscription,
                        terminal,
                        last_id,
                        guard,
                    } = m;
                    let stream = guard.as_ref().map(|g| g.stream()).unwrap_or_default();
                    let place = format!("{stream}\t{tag}");
                    let rules = Rules {
                        terminal,
                        lag_notice: None,
                        limit: self.config.queue,
                        tag: Some(tag),
                    };
                    match self.join(
                        &mut conn,
                        &mut cx,
                        ticket,
                        place,
                        rules,
                        subscription,
                        last_id,
                    ) {
                        Ok(Joined::Member(gid)) => {
                            conn.joined(gid, &self.groups[gid].key, guard);
                            joined.push(gid);
                        }
                        Ok(Joined::Ended) => {}
                        Ok(Joined::Behind) => {
                            self.unjoin(&joined, key);
                            conn.finish();
                            return;
                        }
                        Err(_) => {
                            self.unjoin(&joined, key);
                            return;
                        }
                    }
                }
                if joined.is_empty() && conn.leave(&mut cx, usize::MAX).is_err() {
                    // Every stream ended while catching up, and the last chunk is out.
                    return;
                }
                None
            }
        };
        self.conns.insert(Entry {
            conn,
            wake,
            waker,
            generation,
            group,
        });
        self.drive(key, generation);
    }

    /// One stream of a connection joins the group at `place`, catching up from its own
    /// subscription if the group is ahead, or founds the group with that subscription.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        conn: &mut Conn,
        cx: &mut Context<'_>,
        ticket: Ticket,
        place: String,
        rules: Rules,
        mut own: Subscription,
        mut last_id: u64,
    ) -> Result<Joined, Closed> {
        let existing = (!place.is_empty())
            .then(|| self.by_stream.get(&place).copied())
            .flatten();
        let gid = match existing {
            Some(gid) => {
                let target = self.groups[gid].last_id;
                let caught =
                    conn.catch_up(cx, &mut own, &mut last_id, target, &rules, &mut self.cache);
                if conn.lagged() {
                    self.metrics
                        .subscribers_lagged
                        .fetch_add(1, Ordering::Relaxed);
                }
                match caught? {
                    CaughtUp::Yes if !conn.is_ending() => gid,
                    CaughtUp::Yes | CaughtUp::Ended => return Ok(Joined::Ended),
                    CaughtUp::Behind => return Ok(Joined::Behind),
                }
            }
            None => {
                let group_generation = self.next_generation();
                let entry = self.groups.vacant_entry();
                let gid = entry.key();
                let gwake = ConnWaker::new((gid, group_generation), Arc::clone(&self.group_queue));
                entry.insert(Group::new(
                    place.clone(),
                    rules.tag,
                    own,
                    rules.terminal,
                    rules.lag_notice,
                    last_id,
                    gwake,
                    group_generation,
                ));
                if !place.is_empty() {
                    self.by_stream.insert(place, gid);
                }
                self.group_queue_wake(gid);
                gid
            }
        };
        let g = &mut self.groups[gid];
        g.members.push(Member { ticket, last_id });
        g.live += 1;
        Ok(Joined::Member(gid))
    }

    /// Takes back the memberships of a connection that did not make it into the slab.
    fn unjoin(&mut self, groups: &[usize], key: usize) {
        for &gid in groups {
            if let Some(g) = self.groups.get_mut(gid) {
                g.members.retain(|m| m.ticket.0 != key);
                g.live = g.live.saturating_sub(1);
                if g.live == 0 {
                    let generation = g.generation;
                    self.remove_group(gid, generation);
                }
            }
        }
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
            .filter(|(_, e)| e.conn.carries(stream))
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
        group.members.retain_mut(|member| {
            let (key, member_generation) = member.ticket;
            let Some(e) = conns
                .get_mut(key)
                .filter(|e| e.generation == member_generation)
            else {
                return false;
            };
            let mut cx = Context::from_waker(&e.waker);
            let was_behind = e.conn.lagged();
            let delivered =
                e.conn
                    .deliver(&mut cx, &taken.events, &mut member.last_id, limit, notice);
            let mut result = delivered.map(|_| ());
            if result.is_ok() && taken.closed {
                result = e.conn.end(&mut cx, notice);
            }
            let mut stays = true;
            if result.is_ok() && e.conn.is_mux() && (taken.closed || delivered == Ok(true)) {
                // One stream of a multiplexed connection is over; the others go on.
                result = e.conn.leave(&mut cx, gid);
                stays = false;
            }
            if e.conn.lagged() && !was_behind {
                metrics.subscribers_lagged.fetch_add(1, Ordering::Relaxed);
            }
            if result.is_err() {
                gone.push(key);
                return false;
            }
            stays
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
        for gid in entry.group.into_iter().chain(entry.conn.mux_groups()) {
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
        let mut gone = Vec::new();
        if self.by_stream.get(&group.stream) == Some(&gid) {
            self.by_stream.remove(&group.stream);
        }
        for Member { ticket, .. } in group.members {
            let (key, member_generation) = ticket;
            if let Some(e) = self
                .conns
                .get_mut(key)
                .filter(|e| e.generation == member_generation)
            {
                if e.group == Some(gid) {
                    e.group = None;
                }
                let mut cx = Context::from_waker(&e.waker);
                if e.conn.leave(&mut cx, gid).is_err() {
                    gone.push(key);
                }
            }
        }
        for key in gone {
            self.remove(key);
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
