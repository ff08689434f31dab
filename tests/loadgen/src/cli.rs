//! Command-line flags (the parent and its re-executed workers share them).

use std::path::PathBuf;

use clap::Parser;

/// Open N SSE connections to a server, publish probes at a set rate, and
/// report connections held, server RSS per connection, delivery
/// completeness, publish→receive latency and fan-out time.
#[derive(Debug, Clone, Parser)]
#[command(name = "tidings-loadgen", version)]
pub struct Args {
    /// Base URL of the server under test (`http://IP:PORT`, loopback).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// More servers of the same audience (e.g. instances sharing one Redis):
    /// repeatable; worker `w` connects to target `w % (1 + these)`, probes are
    /// published through `--target` only, so the fan-out crosses instances.
    #[arg(long = "also-target")]
    pub also_targets: Vec<String>,
    /// SSE connections to open in total.
    #[arg(long, default_value_t = 1000)]
    pub connections: u32,
    /// Worker processes (default: ceil(connections / 15000)); each holds
    /// its share of the sockets, under the 20,000 open-files limit.
    #[arg(long)]
    pub workers: Option<u32>,
    /// Client source addresses, round-robin: ranges and/or a comma list.
    /// Empty: let the kernel choose (one address, ~28k ports).
    #[arg(long, default_value = "127.0.0.2-127.0.0.9")]
    pub source_ips: String,
    /// The SSE stream path (a seed-003 channel stream by default).
    #[arg(long, default_value = "/api/v1/events/test")]
    pub stream_path: String,
    /// Where probes are POSTed (default: the stream path, which is the
    /// publish endpoint of both tidings-server and the seed stack).
    #[arg(long)]
    pub publish_path: Option<String>,
    /// Bearer token for publishing (and for streams unless
    /// `--anonymous-streams`).
    #[arg(long, env = "TIDINGS_LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Mint the token via `POST /api/auth/dev-token` for this user
    /// (tidings-server `--dev`), with channels `["*"]`.
    #[arg(long, conflicts_with = "token")]
    pub dev_token_user: Option<String>,
    /// Open the streams without the token (publishing still uses it).
    #[arg(long)]
    pub anonymous_streams: bool,
    /// Probes published per second.
    #[arg(long, default_value_t = 10.0)]
    pub publish_rate: f64,
    /// Probes published in total.
    #[arg(long, default_value_t = 50)]
    pub publish_count: u32,
    /// Hard cap on the whole run, seconds; workers stop themselves too.
    #[arg(long, default_value_t = 180)]
    pub duration_secs: u64,
    /// Server pid whose VmRSS is sampled before connecting and once all
    /// connections are open and idle. Repeatable, one per instance (e.g. with
    /// `--also-target`): RSS is then summed over every pid, and KiB per
    /// connection = (sum loaded − sum baseline) / connections held.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Idle seconds between "all connected" and the loaded RSS sample.
    #[arg(long, default_value_t = 3)]
    pub settle_secs: u64,
    /// Seconds to wait after the last publish for deliveries to finish
    /// (the wait ends as soon as every connection has every event).
    #[arg(long, default_value_t = 90)]
    pub drain_secs: u64,
    /// Most seconds to wait for the lone first probe to reach every
    /// connection before publishing the rest.
    #[arg(long, default_value_t = 30)]
    pub first_wait_secs: u64,
    /// Connects in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: u32,
    /// A name for this run in the report (e.g. `tidings`, `seed-003`).
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Also write the JSON report line to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Internal: run as worker number N (set by the parent when it
    /// re-executes itself; `--connections` is then this worker's share).
    #[arg(long, hide = true)]
    pub worker_id: Option<u32>,
    /// Internal: where in the source-address list this worker starts.
    #[arg(long, hide = true, default_value_t = 0)]
    pub ip_offset: usize,
}

impl Args {
    /// Every target: `--target` first, then each `--also-target`.
    #[must_use]
    pub fn all_targets(&self) -> Vec<&str> {
        std::iter::once(self.target.as_str())
            .chain(self.also_targets.iter().map(String::as_str))
            .collect()
    }

    /// Workers to use: the flag, or one per 15,000 connections, rounded up to
    /// a multiple of the number of targets so each target gets its share.
    #[must_use]
    pub fn worker_count(&self) -> u32 {
        let targets = 1 + self.also_targets.len() as u32;
        self.workers
            .unwrap_or_else(|| self.connections.div_ceil(15_000).div_ceil(targets) * targets)
            .clamp(1, self.connections.max(1))
    }

    /// The publish path (defaults to the stream path).
    #[must_use]
    pub fn publish_path(&self) -> &str {
        self.publish_path.as_deref().unwrap_or(&self.stream_path)
    }
}
