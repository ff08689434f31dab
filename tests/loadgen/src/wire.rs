//! The worker ↔ parent protocol: JSON lines on the worker's stdout, one
//! stop line on its stdin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histogram::Histogram;

/// One line a worker prints on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerLine {
    /// Every connection of the worker is established or has failed.
    Connected(ConnectSummary),
    /// Every held connection has received event 0 (the lone first probe).
    FirstDone,
    /// Every held connection has received every expected event.
    Complete,
    /// Final numbers, printed after the stop line (or the worker's own
    /// deadline); the worker exits right after.
    Result(WorkerResult),
}

/// The connect phase of one worker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectSummary {
    /// Connections with a 200 response head.
    pub held: u32,
    /// Connections that failed, by error kind.
    pub errors: BTreeMap<String, u32>,
    /// Time from the worker's start to its last connection settling.
    pub connect_ms: u64,
    /// The worker's own RSS with every connection open, KiB.
    pub worker_rss_kib: u64,
}

/// What the parent sends on a worker's stdin to end the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StopLine {
    /// Sequence numbers whose publish failed: not expected by anyone.
    pub failed_seqs: Vec<u32>,
}

/// Delivery of one sequence number within one worker.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeqStat {
    /// Connections that received it.
    pub count: u32,
    /// When the last of them received it, µs since the epoch.
    pub last_recv_us: u64,
}

/// Final numbers of one worker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Connections held after the connect phase.
    pub held: u32,
    /// Held connections the server closed (or broke) before the stop.
    pub dropped: u32,
    /// Distinct (connection, seq) deliveries of expected events.
    pub unique: u64,
    /// Deliveries of an event a connection already had.
    pub duplicates: u64,
    /// Held connections missing at least one expected event.
    pub conns_missing: u32,
    /// Most events missed by one connection.
    pub max_missing: u32,
    /// Expected deliveries that never came.
    pub missing_total: u64,
    /// Events that were not benchmark probes (greetings, heartbeats…).
    pub other_events: u64,
    /// Publish→receive latency of each first delivery, µs.
    pub latency_us: Histogram,
    /// Per sequence number, indexed by seq.
    pub per_seq: Vec<SeqStat>,
    /// The worker's RSS at the end, KiB.
    pub worker_rss_kib: u64,
}
