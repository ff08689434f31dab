//! Aggregates worker results into one report: a human table and one JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::histogram::Histogram;
use crate::publish::Sent;
use crate::wire::{ConnectSummary, WorkerResult};

/// Everything measured by the parent, before aggregation.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--label`.
    pub label: String,
    /// `--target`.
    pub target: String,
    /// `--connections`.
    pub attempted: u32,
    /// Worker processes used.
    pub workers: u32,
    /// One per worker that reported its connect phase.
    pub connects: Vec<ConnectSummary>,
    /// Start → every worker connected, seconds.
    pub connect_secs: f64,
    /// Server VmRSS before connecting, KiB: one per `--server-pid`, in
    /// order (empty without the flag).
    pub rss_baseline_kib: Vec<u64>,
    /// Server VmRSS with every connection open and idle, KiB: one per
    /// `--server-pid`, in order.
    pub rss_loaded_kib: Vec<u64>,
    /// Every publish.
    pub sent: Vec<Sent>,
    /// One per worker that reported a result.
    pub results: Vec<WorkerResult>,
    /// The whole run, seconds.
    pub wall_secs: f64,
}

/// Quantiles of a distribution, µs.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Quantiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Maximum.
    pub max: Option<u64>,
}

impl From<&Histogram> for Quantiles {
    fn from(h: &Histogram) -> Self {
        Self {
            count: h.count,
            p50: h.quantile(0.5),
            p99: h.quantile(0.99),
            max: (h.count > 0).then_some(h.max),
        }
    }
}

/// The aggregated result of one run (serialised as the JSON line).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    /// `--label`.
    pub label: String,
    /// `--target`.
    pub target: String,
    /// Worker processes.
    pub workers: u32,
    /// Connections asked for.
    pub connections_attempted: u32,
    /// Connections that got a 200 head.
    pub connections_held: u32,
    /// Failed connects, by kind.
    pub connect_errors: BTreeMap<String, u32>,
    /// Held connections that closed before the end.
    pub connections_dropped: u32,
    /// Time to open every connection, s.
    pub connect_secs: f64,
    /// Server processes sampled (`--server-pid` count, one per instance).
    pub server_pids: u32,
    /// Server RSS before connecting, KiB (summed over every pid).
    pub server_rss_baseline_kib: Option<u64>,
    /// Server RSS with every connection open and idle, KiB (summed over
    /// every pid).
    pub server_rss_loaded_kib: Option<u64>,
    /// The loaded RSS of each pid, in `--server-pid` order, KiB.
    pub server_rss_loaded_kib_each: Vec<u64>,
    /// (sum loaded − sum baseline) / held, KiB.
    pub server_kib_per_conn: Option<f64>,
    /// The generator's own RSS per held connection (all workers), KiB.
    pub loadgen_kib_per_conn: Option<f64>,
    /// Probes published successfully.
    pub events_published: u32,
    /// Probes whose publish failed, and the first error.
    pub publish_failed: u32,
    /// Publishes sent but unanswered within the timeout (still counted
    /// as published: a busy server may deliver them).
    pub publish_timeouts: u32,
    /// The first publish error, if any.
    pub publish_error: Option<String>,
    /// published × held.
    pub expected_deliveries: u64,
    /// Distinct deliveries received.
    pub received: u64,
    /// received / expected.
    pub completeness: f64,
    /// Held connections missing at least one event.
    pub conns_missing: u32,
    /// Most events one connection missed.
    pub max_missing_per_conn: u32,
    /// Deliveries of an event a connection already had.
    pub duplicates: u64,
    /// Publish → receive, µs, over every first delivery.
    pub latency_us: Quantiles,
    /// Publish → last connection received, µs, over events every held
    /// connection received.
    pub fanout_us: Quantiles,
    /// The same for probe 0 alone (published to an idle server, the next
    /// only after it reached everyone): fan-out of one event to all N.
    pub first_fanout_us: Option<u64>,
    /// The whole run, s.
    pub wall_secs: f64,
}

/// Server RSS summed over every sampled pid.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerRss {
    /// Sum of the baseline samples (None without samples).
    pub baseline_kib: Option<u64>,
    /// Sum of the loaded samples (None without samples).
    pub loaded_kib: Option<u64>,
    /// (sum loaded − sum baseline) / held; None without samples, with
    /// mismatched sample counts or with no connection held. Negative when
    /// the servers shrank.
    pub kib_per_conn: Option<f64>,
}

/// Sums per-pid RSS samples (KiB, one per pid, same order in both) and
/// divides the growth by the connections held across every instance.
#[must_use]
pub fn server_rss(baseline: &[u64], loaded: &[u64], held: u32) -> ServerRss {
    let sum = |v: &[u64]| (!v.is_empty()).then(|| v.iter().sum::<u64>());
    let (baseline_kib, loaded_kib) = (sum(baseline), sum(loaded));
    let kib_per_conn = match (baseline_kib, loaded_kib) {
        (Some(b), Some(l)) if baseline.len() == loaded.len() && held > 0 => {
            Some((l as f64 - b as f64) / f64::from(held))
        }
        _ => None,
    };
    ServerRss {
        baseline_kib,
        loaded_kib,
        kib_per_conn,
    }
}

/// Aggregates the inputs.
#[must_use]
pub fn build(i: &Inputs) -> Report {
    let held: u32 = i.connects.iter().map(|c| c.held).sum();
    let mut connect_errors = BTreeMap::new();
    for c in &i.connects {
        for (k, v) in &c.errors {
            *connect_errors.entry(k.clone()).or_insert(0) += v;
        }
    }
    let ok: Vec<&Sent> = i.sent.iter().filter(|s| s.error.is_none()).collect();
    let published = u32::try_from(ok.len()).unwrap_or(u32::MAX);
    let mut latency = Histogram::new();
    let mut fanout = Histogram::new();
    let mut first_fanout_us = None;
    for r in &i.results {
        latency.merge(&r.latency_us);
    }
    for s in &ok {
        let at = |r: &WorkerResult| r.per_seq.get(s.seq as usize).copied().unwrap_or_default();
        let count: u32 = i.results.iter().map(|r| at(r).count).sum();
        let last = i
            .results
            .iter()
            .map(|r| at(r).last_recv_us)
            .max()
            .unwrap_or(0);
        if held > 0 && count >= held {
            fanout.record(last.saturating_sub(s.sent_at_us));
            if s.seq == 0 {
                first_fanout_us = Some(last.saturating_sub(s.sent_at_us));
            }
        }
    }
    let expected = u64::from(published) * u64::from(held);
    let received: u64 = i.results.iter().map(|r| r.unique).sum();
    let loadgen_rss: u64 = i.connects.iter().map(|c| c.worker_rss_kib).sum();
    let per_conn = |kib: f64| (held > 0).then(|| kib / f64::from(held));
    let rss = server_rss(&i.rss_baseline_kib, &i.rss_loaded_kib, held);
    Report {
        label: i.label.clone(),
        target: i.target.clone(),
        workers: i.workers,
        connections_attempted: i.attempted,
        connections_held: held,
        connect_errors,
        connections_dropped: i.results.iter().map(|r| r.dropped).sum(),
        connect_secs: i.connect_secs,
        server_pids: u32::try_from(i.rss_loaded_kib.len().max(i.rss_baseline_kib.len()))
            .unwrap_or(u32::MAX),
        server_rss_baseline_kib: rss.baseline_kib,
        server_rss_loaded_kib: rss.loaded_kib,
        server_rss_loaded_kib_each: i.rss_loaded_kib.clone(),
        server_kib_per_conn: rss.kib_per_conn,
        loadgen_kib_per_conn: per_conn(loadgen_rss as f64),
        events_published: published,
        publish_failed: u32::try_from(i.sent.len() - ok.len()).unwrap_or(u32::MAX),
        publish_timeouts: u32::try_from(i.sent.iter().filter(|s| s.timed_out).count())
            .unwrap_or(u32::MAX),
        publish_error: i.sent.iter().find_map(|s| s.error.clone()),
        expected_deliveries: expected,
        received,
        completeness: if expected == 0 {
            0.0
        } else {
            received as f64 / expected as f64
        },
        conns_missing: i.results.iter().map(|r| r.conns_missing).sum(),
        max_missing_per_conn: i.results.iter().map(|r| r.max_missing).max().unwrap_or(0),
        duplicates: i.results.iter().map(|r| r.duplicates).sum(),
        latency_us: Quantiles::from(&latency),
        fanout_us: Quantiles::from(&fanout),
        first_fanout_us,
        wall_secs: i.wall_secs,
    }
}

fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| "-".into(), |v| format!("{:.2} ms", v as f64 / 1000.0))
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}{unit}"))
}

/// The loaded RSS; with several pids, the sum and then each instance's share.
fn rss_loaded(r: &Report) -> String {
    let each = &r.server_rss_loaded_kib_each;
    let sum = opt(r.server_rss_loaded_kib, " KiB");
    if each.len() < 2 {
        return sum;
    }
    let parts: Vec<String> = each.iter().map(u64::to_string).collect();
    format!(
        "{sum} (sum of {} pids: {})",
        r.server_pids,
        parts.join(" + ")
    )
}

/// The human table.
#[must_use]
pub fn table(r: &Report) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("target", format!("{} ({})", r.label, r.target)),
        ("workers", r.workers.to_string()),
        (
            "connections held",
            format!("{} / {}", r.connections_held, r.connections_attempted),
        ),
        ("connect errors", format!("{:?}", r.connect_errors)),
        ("dropped during run", r.connections_dropped.to_string()),
        ("connect time", format!("{:.2} s", r.connect_secs)),
        (
            "server RSS baseline",
            opt(r.server_rss_baseline_kib, " KiB"),
        ),
        ("server RSS loaded", rss_loaded(r)),
        (
            "server KiB / connection",
            opt(r.server_kib_per_conn.map(|v| format!("{v:.2}")), ""),
        ),
        (
            "loadgen KiB / connection",
            opt(r.loadgen_kib_per_conn.map(|v| format!("{v:.2}")), ""),
        ),
        (
            "events published",
            format!(
                "{} ({} failed, {} unanswered)",
                r.events_published, r.publish_failed, r.publish_timeouts
            ),
        ),
        (
            "deliveries",
            format!(
                "{} / {} = {:.4}%",
                r.received,
                r.expected_deliveries,
                r.completeness * 100.0
            ),
        ),
        (
            "conns missing events",
            format!(
                "{} (max {} per conn)",
                r.conns_missing, r.max_missing_per_conn
            ),
        ),
        ("duplicates", r.duplicates.to_string()),
        (
            "latency p50/p99/max",
            format!(
                "{} / {} / {}",
                ms(r.latency_us.p50),
                ms(r.latency_us.p99),
                ms(r.latency_us.max)
            ),
        ),
        (
            "fan-out to all (p50/max)",
            format!(
                "{} / {} over {} events",
                ms(r.fanout_us.p50),
                ms(r.fanout_us.max),
                r.fanout_us.count
            ),
        ),
        ("fan-out of one event (idle)", ms(r.first_fanout_us)),
        ("wall time", format!("{:.1} s", r.wall_secs)),
    ];
    if let Some(e) = &r.publish_error {
        rows.push(("first publish error", e.clone()));
    }
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<28} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rss_sums_instances_and_divides_by_all_held() {
        // Three instances, 600 connections spread over them.
        let r = server_rss(&[10_000, 9_000, 9_500], &[13_000, 12_500, 11_900], 600);
        assert_eq!(r.baseline_kib, Some(28_500));
        assert_eq!(r.loaded_kib, Some(37_400));
        assert_eq!(r.kib_per_conn, Some(8_900.0 / 600.0));
    }

    #[test]
    fn server_rss_single_pid_and_edge_cases() {
        let one = server_rss(&[1_000], &[2_500], 100);
        assert_eq!(
            one,
            ServerRss {
                baseline_kib: Some(1_000),
                loaded_kib: Some(2_500),
                kib_per_conn: Some(15.0)
            }
        );
        // No --server-pid: nothing to report.
        assert_eq!(server_rss(&[], &[], 100), ServerRss::default());
        // Nothing held: sums, no ratio.
        let none_held = server_rss(&[1_000, 1_000], &[1_100, 1_100], 0);
        assert_eq!(
            (none_held.loaded_kib, none_held.kib_per_conn),
            (Some(2_200), None)
        );
        // A server that shrank gives a negative figure, not a wrapped u64.
        assert_eq!(
            server_rss(&[2_000], &[1_000], 100).kib_per_conn,
            Some(-10.0)
        );
        // Mismatched sample counts: no ratio.
        assert_eq!(server_rss(&[1_000], &[1_100, 1_100], 10).kib_per_conn, None);
    }

    #[test]
    fn report_carries_pid_count_and_each_loaded_sample() {
        let inputs = Inputs {
            connects: vec![
                ConnectSummary {
                    held: 300,
                    ..ConnectSummary::default()
                };
                2
            ],
            rss_baseline_kib: vec![1_000, 2_000],
            rss_loaded_kib: vec![4_000, 5_000],
            ..Inputs::default()
        };
        let r = build(&inputs);
        assert_eq!(r.server_pids, 2);
        assert_eq!(r.server_rss_baseline_kib, Some(3_000));
        assert_eq!(r.server_rss_loaded_kib, Some(9_000));
        assert_eq!(r.server_rss_loaded_kib_each, vec![4_000, 5_000]);
        assert_eq!(r.server_kib_per_conn, Some(10.0));
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["server_pids"], 2);
        assert_eq!(
            json["server_rss_loaded_kib_each"],
            serde_json::json!([4_000, 5_000])
        );
        assert!(
            table(&r).contains("9000 KiB (sum of 2 pids: 4000 + 5000)"),
            "{}",
            table(&r)
        );
        // One pid keeps the old line.
        let single = build(&Inputs {
            rss_baseline_kib: vec![1],
            rss_loaded_kib: vec![2],
            ..inputs
        });
        assert!(
            table(&single).contains("server RSS loaded            2 KiB\n"),
            "{}",
            table(&single)
        );
    }
}
