//! Process-wide counters, rendered as Prometheus text at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::connections::Connections;

/// Monotonic counters (open-connection gauges live in [`Connections`]).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events appended to any stream.
    pub events_published: AtomicU64,
    /// Transactions (in-process bus) or script calls (Redis bus) that stored published
    /// events; events ÷ groups is the mean group size.
    pub event_groups_committed: AtomicU64,
    /// Subscribers closed because their queue was full.
    pub subscribers_lagged: AtomicU64,
    /// Reset events sent (stream and polling form).
    pub resets_sent: AtomicU64,
    /// SSE connections accepted since start.
    pub connections_opened: AtomicU64,
    /// SSE connections refused by the per-user limit.
    pub connections_refused: AtomicU64,
    /// SSE streams without a token refused by the per-address limit.
    pub streams_refused_per_address: AtomicU64,
    /// SSE streams refused by the process-wide stream cap.
    pub streams_refused_global: AtomicU64,
    /// Connections answered 503 and closed at accept (socket cap reached).
    pub sockets_refused: AtomicU64,
    /// Polling-form requests served.
    pub poll_requests: AtomicU64,
    /// SSE responses handed to the hub (a connection's first request) rather than served
    /// by hyper (a later request on a kept-alive connection).
    pub streams_detached: AtomicU64,
    /// Stream connections closed because the peer took no bytes for `--write-stall-secs`.
    pub writes_stalled: AtomicU64,
    /// Write requests answered with a remembered answer (`Idempotency-Key` retries).
    pub idempotent_replays: AtomicU64,
    /// `Idempotency-Key`s reused with a different body (422).
    pub idempotency_mismatches: AtomicU64,
}

impl Metrics {
    /// Prometheus text exposition of the counters and the open-connection gauges.
    pub fn render(&self, conns: &Connections) -> String {
        let snap = conns.snapshot();
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            "tidings_events_published_total",
            "Events appended to a stream.",
            &self.events_published,
        );
        counter(
            "tidings_event_groups_committed_total",
            "Transactions or Redis script calls that stored published events (group commit).",
            &self.event_groups_committed,
        );
        counter(
            "tidings_subscribers_lagged_total",
            "Subscribers closed because they fell behind.",
            &self.subscribers_lagged,
        );
        counter(
            "tidings_resets_sent_total",
            "Reset events sent.",
            &self.resets_sent,
        );
        counter(
            "tidings_connections_opened_total",
            "SSE connections accepted.",
            &self.connections_opened,
        );
        counter(
            "tidings_connections_refused_total",
            "SSE connections refused by the per-user limit.",
            &self.connections_refused,
        );
        counter(
            "tidings_streams_refused_per_address_total",
            "SSE streams without a token refused by the per-address limit.",
            &self.streams_refused_per_address,
        );
        counter(
            "tidings_streams_refused_global_total",
            "SSE streams refused by the process-wide stream cap.",
            &self.streams_refused_global,
        );
        counter(
            "tidings_sockets_refused_total",
            "Connections answered 503 at accept because the socket cap was reached.",
            &self.sockets_refused,
        );
        counter(
            "tidings_poll_requests_total",
            "Polling-form requests served.",
            &self.poll_requests,
        );
        counter(
            "tidings_streams_detached_total",
            "SSE responses served by the hub.",
            &self.streams_detached,
        );
        counter(
            "tidings_writes_stalled_total",
            "Stream connections closed because the peer stopped reading.",
            &self.writes_stalled,
        );
        counter(
            "tidings_idempotent_replays_total",
            "Write requests answered with the remembered answer of their Idempotency-Key.",
            &self.idempotent_replays,
        );
        counter(
            "tidings_idempotency_mismatches_total",
            "Idempotency-Keys reused with a different body (422).",
            &self.idempotency_mismatches,
        );
        let _ = writeln!(out, "# HELP tidings_open_connections Open SSE connections.\n# TYPE tidings_open_connections gauge");
        let _ = writeln!(out, "tidings_open_connections {}", snap.total);
        let _ = writeln!(
            out,
            "# HELP tidings_open_connections_by_kind Open SSE connections per stream kind.\n# TYPE tidings_open_connections_by_kind gauge"
        );
        for (kind, n) in snap.by_kind() {
            let _ = writeln!(
                out,
                "tidings_open_connections_by_kind{{kind=\"{kind}\"}} {n}"
            );
        }
        out
    }
}
