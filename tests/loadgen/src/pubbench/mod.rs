//! `tidings-pubbench`: publish → delivery latency on one stream at set rates,
//! then sustained acknowledged publishes per second, against any server with
//! a JSON POST publish endpoint and an SSE stream (tidings-server, nginx+nchan).
//!
//! One SSE subscriber stays open for the whole run. Each rate phase publishes
//! `rate × secs` probes on a schedule, over a few kept-alive sockets taking the
//! next probe as soon as they are free; each probe carries its send time, and
//! the subscriber records arrival − send. The throughput phase keeps every
//! socket busy back to back for a bounded time and counts 2xx answers.

pub mod subscriber;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::future::join_all;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use crate::error::Error;
use crate::keepalive::KeepAlive;
use crate::payload::{now_us, publish_body};
use crate::publish::dev_token;
use crate::target::Target;
use subscriber::{lock, Received};

/// Flags of `tidings-pubbench`.
#[derive(Debug, Clone, Parser)]
#[command(name = "tidings-pubbench", version)]
pub struct Args {
    /// Base URL of the server (`http://IP:PORT`, loopback).
    #[arg(long)]
    pub target: String,
    /// Where probes are POSTed (path and query).
    #[arg(long)]
    pub publish_path: String,
    /// The SSE stream the subscriber reads (path and query).
    #[arg(long)]
    pub stream_path: String,
    /// Bearer token for publishing and the stream.
    #[arg(long, env = "TIDINGS_PUBBENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Mint the token via `POST /api/auth/dev-token` (tidings-server `--dev`).
    #[arg(long, conflicts_with = "token")]
    pub dev_token_user: Option<String>,
    /// Publish rates to measure, events per second, comma-separated.
    #[arg(long, default_value = "200,600,1000", value_delimiter = ',')]
    pub rates: Vec<u32>,
    /// Seconds of publishing per rate.
    #[arg(long, default_value_t = 5)]
    pub secs_per_rate: u32,
    /// Kept-alive publisher sockets during the rate phases.
    #[arg(long, default_value_t = 4)]
    pub sockets: usize,
    /// Seconds of the throughput phase (0 skips it).
    #[arg(long, default_value_t = 5)]
    pub throughput_secs: u32,
    /// Kept-alive sockets publishing back to back in the throughput phase.
    #[arg(long, default_value_t = 32)]
    pub throughput_sockets: usize,
    /// Most seconds to wait for deliveries after a phase.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Name of the server in the output.
    #[arg(long, default_value = "server")]
    pub label: String,
}

/// Most probes in one phase (the subscriber keeps one flag per probe).
const MAX_PROBES: u32 = 5_000_000;

/// Publish counts of one phase.
#[derive(Debug, Default)]
struct Counts {
    acked: AtomicU64,
    failed: AtomicU64,
}

/// Runs every phase and prints one line per phase.
///
/// # Errors
/// Bad flags, a failed token request, or a subscriber that cannot connect.
pub async fn run(args: &Args) -> Result<(), Error> {
    let target = Target::parse(&args.target)?;
    if args.sockets == 0 || args.throughput_sockets == 0 || args.sockets > 256 {
        return Err(Error::Flag(
            "--sockets / --throughput-sockets: 1-256".into(),
        ));
    }
    let token = match (&args.token, &args.dev_token_user) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(user)) => Some(dev_token(&target, user, 3600).await?),
        (None, None) => None,
    };
    let received = Arc::new(std::sync::Mutex::new(Received::default()));
    subscriber::open(
        &target,
        &args.stream_path,
        token.as_deref(),
        Arc::clone(&received),
    )
    .await?;
    let ctx = Ctx {
        target,
        token,
        path: args.publish_path.clone(),
        received,
        drain: Duration::from_secs(args.drain_secs),
        next_base: AtomicU32::new(0),
    };
    for &rate in &args.rates {
        let count = rate.saturating_mul(args.secs_per_rate).min(MAX_PROBES);
        if rate == 0 || count == 0 {
            continue;
        }
        let counts = ctx.rate_phase(rate, count, args.sockets).await;
        let r = lock(&ctx.received);
        let q = |p: f64| ms(r.latency.quantile(p).unwrap_or(0));
        println!(
            "{}  rate {rate}/s  published {count}  acked {}  failed {}  delivered {}  dup {}  p50 {} ms  p99 {} ms  max {} ms",
            args.label,
            counts.acked.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed),
            r.distinct,
            r.duplicates,
            q(0.5),
            q(0.99),
            ms(r.latency.max),
        );
    }
    if args.throughput_secs > 0 {
        let secs = args.throughput_secs;
        let counts = ctx.throughput_phase(secs, args.throughput_sockets).await;
        let acked = counts.acked.load(Ordering::Relaxed);
        let r = lock(&ctx.received);
        println!(
            "{}  throughput  sockets {}  {secs} s  acked {acked}  failed {}  delivered {}  {:.0} acked publishes/s",
            args.label,
            args.throughput_sockets,
            counts.failed.load(Ordering::Relaxed),
            r.distinct,
            acked as f64 / f64::from(secs),
        );
    }
    Ok(())
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

struct Ctx {
    target: Target,
    token: Option<String>,
    path: String,
    received: subscriber::Shared,
    drain: Duration,
    /// The next phase's first sequence number (phases never share one).
    next_base: AtomicU32,
}

impl Ctx {
    /// Claims `count` sequence numbers for a phase and makes the subscriber
    /// count only those; returns the first.
    fn start_phase(&self, count: u32) -> u32 {
        let base = self.next_base.fetch_add(count, Ordering::Relaxed);
        lock(&self.received).reset(base, count);
        base
    }

    async fn connect_all(&self, n: usize) -> Vec<KeepAlive> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            match KeepAlive::connect(&self.target).await {
                Ok(c) => conns.push(c),
                Err(e) => eprintln!("tidings-pubbench: publisher socket: {e}"),
            }
        }
        conns
    }

    /// One publish on `conn`, reconnecting it once if the server closed it.
    async fn publish(&self, conn: &mut KeepAlive, seq: u32, counts: &Counts) {
        let body = publish_body(seq, now_us());
        let token = self.token.as_deref();
        let mut result = conn.post(&self.path, token, &body).await;
        if result.is_err() {
            if let Ok(fresh) = KeepAlive::connect(&self.target).await {
                *conn = fresh;
                result = conn.post(&self.path, token, &body).await;
            }
        }
        match result {
            Ok(status) if (200..300).contains(&status) => {
                counts.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("tidings-pubbench: publish {seq}: HTTP {status}");
            }
            Err(e) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("tidings-pubbench: publish {seq}: {e}");
            }
        }
    }

    /// Waits until every acknowledged probe arrived, at most the drain time.
    async fn drain(&self, acked: u64) {
        let until = Instant::now() + self.drain;
        while lock(&self.received).distinct < acked && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn rate_phase(self: &Ctx, rate: u32, count: u32, sockets: usize) -> Arc<Counts> {
        let base = self.start_phase(count);
        let counts = Arc::new(Counts::default());
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let rx = Arc::new(Mutex::new(rx));
        let conns = self.connect_all(sockets).await;
        let publishers = conns.into_iter().map(|mut conn| {
            let (rx, counts) = (Arc::clone(&rx), Arc::clone(&counts));
            async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(seq) = next else { break };
                    self.publish(&mut conn, seq, &counts).await;
                }
            }
        });
        let schedule = async move {
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for seq in base..base + count {
                tick.tick().await;
                if tx.send(seq).is_err() {
                    break;
                }
            }
        };
        let limit = Duration::from_secs(u64::from(count / rate.max(1)) + 60);
        let all = async { tokio::join!(schedule, join_all(publishers)) };
        if tokio::time::timeout(limit, all).await.is_err() {
            eprintln!("tidings-pubbench: rate {rate}/s did not finish in {limit:?}");
        }
        self.drain(counts.acked.load(Ordering::Relaxed)).await;
        counts
    }

    async fn throughput_phase(&self, secs: u32, sockets: usize) -> Arc<Counts> {
        let base = self.start_phase(MAX_PROBES);
        let counts = Arc::new(Counts::default());
        let next = Arc::new(AtomicU32::new(base));
        let until = Instant::now() + Duration::from_secs(u64::from(secs));
        let conns = self.connect_all(sockets).await;
        let publishers = conns.into_iter().map(|mut conn| {
            let (next, counts) = (Arc::clone(&next), Arc::clone(&counts));
            async move {
                while Instant::now() < until {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= base + MAX_PROBES {
                        break;
                    }
                    self.publish(&mut conn, seq, &counts).await;
                }
            }
        });
        let limit = Duration::from_secs(u64::from(secs) + 60);
        if tokio::time::timeout(limit, join_all(publishers))
            .await
            .is_err()
        {
            eprintln!("tidings-pubbench: throughput phase did not finish in {limit:?}");
        }
        self.drain(counts.acked.load(Ordering::Relaxed)).await;
        counts
    }
}
