//! A worker's bookkeeping: which connection received which event, when.
//! Single-threaded (one per worker process), so plain `&mut` access.

use std::collections::BTreeMap;

use crate::histogram::Histogram;
use crate::payload::Probe;
use crate::wire::{SeqStat, WorkerResult};

/// Where one connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Not yet answered.
    Connecting,
    /// 200 head received; streaming.
    Open,
    /// Never opened.
    Failed,
    /// Was open, then closed or broke.
    Dropped,
}

#[derive(Debug)]
struct Conn {
    state: ConnState,
    /// One bit per expected seq.
    seen: Box<[u64]>,
    unique: u32,
}

/// Counts for every connection of one worker.
#[derive(Debug)]
pub struct Tally {
    expected: u32,
    conns: Vec<Conn>,
    per_seq: Vec<SeqStat>,
    latency: Histogram,
    errors: BTreeMap<String, u32>,
    settled: u32,
    open: u32,
    complete: u32,
    have_first: u32,
    duplicates: u64,
    other_events: u64,
}

impl Tally {
    /// Bookkeeping for `connections` connections expecting seqs `0..expected`.
    #[must_use]
    pub fn new(connections: u32, expected: u32) -> Self {
        let words = (expected as usize).div_ceil(64);
        let conns = (0..connections)
            .map(|_| Conn {
                state: ConnState::Connecting,
                seen: vec![0; words].into(),
                unique: 0,
            })
            .collect();
        Self {
            expected,
            conns,
            per_seq: vec![SeqStat::default(); expected as usize],
            latency: Histogram::new(),
            errors: BTreeMap::new(),
            settled: 0,
            open: 0,
            complete: 0,
            have_first: 0,
            duplicates: 0,
            other_events: 0,
        }
    }

    /// Connection `id` received its 200 head.
    pub fn opened(&mut self, id: usize) {
        if let Some(c) = self.conns.get_mut(id) {
            c.state = ConnState::Open;
            self.settled += 1;
            self.open += 1;
        }
    }

    /// Connection `id` failed before opening (`kind` from [`crate::Error::kind`]).
    pub fn failed(&mut self, id: usize, kind: String) {
        if let Some(c) = self.conns.get_mut(id) {
            c.state = ConnState::Failed;
            self.settled += 1;
            *self.errors.entry(kind).or_default() += 1;
        }
    }

    /// Open connection `id` ended.
    pub fn dropped(&mut self, id: usize) {
        if let Some(c) = self.conns.get_mut(id) {
            c.state = ConnState::Dropped;
        }
    }

    /// True when every connection is open or failed.
    #[must_use]
    pub fn all_settled(&self) -> bool {
        self.settled as usize == self.conns.len()
    }

    /// True when every opened connection has every expected event.
    #[must_use]
    pub fn all_complete(&self) -> bool {
        self.open > 0 && self.complete == self.open
    }

    /// True when every opened connection has event 0.
    #[must_use]
    pub fn all_have_first(&self) -> bool {
        self.open > 0 && self.have_first == self.open
    }

    /// Connections opened so far.
    #[must_use]
    pub fn open_count(&self) -> u32 {
        self.open
    }

    /// Failures so far, by kind.
    #[must_use]
    pub fn errors(&self) -> &BTreeMap<String, u32> {
        &self.errors
    }

    /// Connection `id` received event data at `now_us`.
    pub fn received(&mut self, id: usize, probe: Option<Probe>, now_us: u64) {
        let Some(p) = probe.filter(|p| p.seq < self.expected) else {
            self.other_events += 1;
            return;
        };
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let (word, bit) = (p.seq as usize / 64, 1u64 << (p.seq % 64));
        if c.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        c.seen[word] |= bit;
        c.unique += 1;
        if c.unique == self.expected {
            self.complete += 1;
        }
        if p.seq == 0 {
            self.have_first += 1;
        }
        let s = &mut self.per_seq[p.seq as usize];
        s.count += 1;
        s.last_recv_us = s.last_recv_us.max(now_us);
        self.latency.record(now_us.saturating_sub(p.sent_at_us));
    }

    /// The final numbers; `failed_seqs` were never published, so nobody
    /// is counted as missing them.
    #[must_use]
    pub fn result(&self, failed_seqs: &[u32], worker_rss_kib: u64) -> WorkerResult {
        let mut r = WorkerResult {
            held: self.open,
            duplicates: self.duplicates,
            other_events: self.other_events,
            latency_us: self.latency.clone().into_sparse(),
            per_seq: self.per_seq.clone(),
            worker_rss_kib,
            ..WorkerResult::default()
        };
        let mut want: Vec<u64> = vec![0; (self.expected as usize).div_ceil(64)];
        for seq in (0..self.expected).filter(|s| !failed_seqs.contains(s)) {
            want[seq as usize / 64] |= 1 << (seq % 64);
        }
        for c in &self.conns {
            if matches!(c.state, ConnState::Connecting | ConnState::Failed) {
                continue;
            }
            if c.state == ConnState::Dropped {
                r.dropped += 1;
            }
            let (mut got, mut missed) = (0u32, 0u32);
            for (s, w) in c.seen.iter().zip(&want) {
                got += (s & w).count_ones();
                missed += (!s & w).count_ones();
            }
            r.unique += u64::from(got);
            r.missing_total += u64::from(missed);
            r.max_missing = r.max_missing.max(missed);
            if missed > 0 {
                r.conns_missing += 1;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_missing_duplicates_and_failed_seqs() {
        let mut t = Tally::new(3, 3);
        t.opened(0);
        t.opened(1);
        t.failed(2, "io".into());
        assert!(t.all_settled());
        for seq in 0..3 {
            t.received(
                0,
                Some(Probe {
                    seq,
                    sent_at_us: 10,
                }),
                25,
            );
        }
        t.received(
            0,
            Some(Probe {
                seq: 1,
                sent_at_us: 10,
            }),
            30,
        );
        t.received(
            1,
            Some(Probe {
                seq: 0,
                sent_at_us: 10,
            }),
            40,
        );
        t.received(1, None, 40);
        t.dropped(1);
        assert!(!t.all_complete());
        let r = t.result(&[2], 0);
        assert_eq!((r.held, r.dropped, r.unique, r.duplicates), (2, 1, 3, 1));
        assert_eq!((r.conns_missing, r.max_missing, r.missing_total), (1, 1, 1));
        assert_eq!(r.other_events, 1);
        assert_eq!(
            r.per_seq[0],
            SeqStat {
                count: 2,
                last_recv_us: 40
            }
        );
        assert_eq!(r.latency_us.max, 30);
    }
}
