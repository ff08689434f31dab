//! The parent process: re-executes itself as worker processes, waits for
//! them to connect, samples server RSS, publishes, collects, reports.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::cli::Args;
use crate::error::Error;
use crate::publish::{dev_token, publish_one, publish_range};
use crate::report::{build, Inputs, Report};
use crate::rss::rss_kib_each;
use crate::target::{parse_source_ips, Target};
use crate::wire::{ConnectSummary, StopLine, WorkerLine, WorkerResult};

/// Most connections one worker may hold (20,000 open files per process).
pub const MAX_PER_WORKER: u32 = 18_000;
/// Most probes per run (each connection keeps one bit per probe).
pub const MAX_PUBLISH_COUNT: u32 = 100_000;

/// Runs the whole benchmark described by `args` and returns its report.
///
/// # Errors
/// Bad flags, a failed token request, or workers that cannot be started.
pub async fn run(args: &Args) -> Result<Report, Error> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.duration_secs);
    let target = Target::parse(&args.target)?;
    let ips = parse_source_ips(&args.source_ips)?;
    let workers = args.worker_count();
    validate(args, workers)?;
    let token = match (&args.token, &args.dev_token_user) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(user)) => Some(dev_token(&target, user, args.duration_secs + 600).await?),
        (None, None) => None,
    };
    // One sample per --server-pid (none without), summed in the report.
    let rss_baseline_kib = rss_kib_each(&args.server_pids)?;

    let mut pool = Pool::spawn(args, workers, ips.len(), token.as_deref())?;
    let all_connected = pool
        .pump_until(deadline, |p| p.connects.iter().all(Option::is_some))
        .await;
    let connect_secs = start.elapsed().as_secs_f64();
    if !all_connected {
        eprintln!("tidings-loadgen: not every worker finished connecting before the deadline");
    }
    eprintln!(
        "tidings-loadgen: {} connected in {connect_secs:.2} s; settling {} s",
        pool.connects.iter().flatten().map(|c| c.held).sum::<u32>(),
        args.settle_secs
    );
    tokio::time::sleep_until(
        deadline.min(tokio::time::Instant::now() + Duration::from_secs(args.settle_secs)),
    )
    .await;
    let rss_loaded_kib = rss_kib_each(&args.server_pids)?;

    // Probe 0 goes out alone, so its fan-out is that of one event to an
    // idle server; the rest follow at the set rate.
    let (path, token) = (args.publish_path(), token.as_deref());
    let mut sent = Vec::new();
    if args.publish_count > 0 {
        if let Ok(first) =
            tokio::time::timeout_at(deadline, publish_one(&target, path, token, 0)).await
        {
            let alone = deadline
                .min(tokio::time::Instant::now() + Duration::from_secs(args.first_wait_secs));
            if first.error.is_none() {
                pool.pump_until(alone, |p| p.all_or_idle(&p.first_done))
                    .await;
            }
            sent.push(first);
            sent.extend(
                publish_range(
                    &target,
                    path,
                    token,
                    1..args.publish_count,
                    args.publish_rate,
                    deadline,
                )
                .await,
            );
        }
    }
    if sent.iter().any(|s| s.error.is_none()) {
        let drain =
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(args.drain_secs));
        pool.pump_until(drain, |p| p.all_or_idle(&p.complete)).await;
    }

    let stop = StopLine {
        failed_seqs: sent
            .iter()
            .filter(|s| s.error.is_some())
            .map(|s| s.seq)
            .collect(),
    };
    pool.stop(&stop).await;
    let results_by = tokio::time::Instant::now() + Duration::from_secs(30);
    pool.pump_until(results_by, |p| p.results.iter().all(Option::is_some))
        .await;
    pool.reap().await;

    Ok(build(&Inputs {
        label: args.label.clone(),
        target: args.all_targets().join(","),
        attempted: args.connections,
        workers,
        connects: pool.connects.into_iter().flatten().collect(),
        connect_secs,
        rss_baseline_kib,
        rss_loaded_kib,
        sent,
        results: pool.results.into_iter().flatten().collect(),
        wall_secs: start.elapsed().as_secs_f64(),
    }))
}

fn validate(args: &Args, workers: u32) -> Result<(), Error> {
    if args.connections == 0 {
        return Err(Error::Flag("--connections must be at least 1".into()));
    }
    if args.connections.div_ceil(workers) > MAX_PER_WORKER {
        return Err(Error::Flag(format!(
            "more than {MAX_PER_WORKER} connections per worker: raise --workers"
        )));
    }
    for (i, pid) in args.server_pids.iter().enumerate() {
        if args.server_pids[..i].contains(pid) {
            return Err(Error::Flag(format!(
                "--server-pid {pid} given twice (its RSS would be summed twice)"
            )));
        }
    }
    if args.publish_count > MAX_PUBLISH_COUNT {
        return Err(Error::Flag(format!(
            "--publish-count is at most {MAX_PUBLISH_COUNT}"
        )));
    }
    if !(args.publish_rate > 0.0 && args.publish_rate <= 100_000.0) {
        return Err(Error::Flag("--publish-rate must be in (0, 100000]".into()));
    }
    Ok(())
}

/// The worker processes and what they reported so far.
struct Pool {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    rx: mpsc::UnboundedReceiver<(usize, WorkerLine)>,
    connects: Vec<Option<ConnectSummary>>,
    complete: Vec<bool>,
    first_done: Vec<bool>,
    results: Vec<Option<WorkerResult>>,
}

impl Pool {
    fn spawn(
        args: &Args,
        workers: u32,
        ip_count: usize,
        token: Option<&str>,
    ) -> Result<Self, Error> {
        let exe = std::env::current_exe()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        let mut offset = 0usize;
        let targets = args.all_targets();
        for target in &targets[1..] {
            Target::parse(target)?;
        }
        for w in 0..workers {
            // Spread the remainder over the first workers.
            let share = args.connections / workers + u32::from(w < args.connections % workers);
            let mut cmd = Command::new(&exe);
            cmd.args(["--worker-id", &w.to_string()])
                .args(["--target", targets[w as usize % targets.len()]])
                .args(["--connections", &share.to_string()])
                .args(["--source-ips", &args.source_ips])
                .args(["--ip-offset", &(offset % ip_count.max(1)).to_string()])
                .args(["--stream-path", &args.stream_path])
                .args(["--publish-count", &args.publish_count.to_string()])
                .args(["--duration-secs", &(args.duration_secs + 30).to_string()])
                .args([
                    "--connect-concurrency",
                    &args.connect_concurrency.to_string(),
                ])
                .env_remove("TIDINGS_LOADGEN_TOKEN")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            if let (Some(t), false) = (token, args.anonymous_streams) {
                cmd.env("TIDINGS_LOADGEN_TOKEN", t);
            }
            offset += share as usize;
            let mut child = cmd.spawn()?;
            let id = w as usize;
            let stdout = child.stdout.take().ok_or_else(|| Error::Worker {
                id: w,
                reason: "no stdout".into(),
            })?;
            stdins.push(child.stdin.take());
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<WorkerLine>(&line) {
                        Ok(l) => {
                            if tx.send((id, l)).is_err() {
                                break;
                            }
                        }
                        Err(e) => eprintln!(
                            "tidings-loadgen: worker {id} said something odd ({e}): {line:.200}"
                        ),
                    }
                }
            });
            children.push(child);
        }
        let n = workers as usize;
        Ok(Self {
            children,
            stdins,
            rx,
            connects: vec![None; n],
            complete: vec![false; n],
            first_done: vec![false; n],
            results: vec![None; n],
        })
    }

    /// True when every worker holding connections has raised `flag`.
    fn all_or_idle(&self, flag: &[bool]) -> bool {
        flag.iter()
            .zip(&self.connects)
            .all(|(f, c)| *f || c.as_ref().is_some_and(|c| c.held == 0))
    }

    /// Applies worker lines until `done` holds (true) or `until` passes
    /// or every worker's stdout closed (false).
    async fn pump_until(
        &mut self,
        until: tokio::time::Instant,
        done: impl Fn(&Self) -> bool,
    ) -> bool {
        loop {
            if done(self) {
                return true;
            }
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some((id, WorkerLine::Connected(c))) => self.connects[id] = Some(c),
                    Some((id, WorkerLine::Complete)) => self.complete[id] = true,
                    Some((id, WorkerLine::FirstDone)) => self.first_done[id] = true,
                    Some((id, WorkerLine::Result(r))) => self.results[id] = Some(r),
                    None => return false,
                },
                _ = tokio::time::sleep_until(until) => return false,
            }
        }
    }

    async fn stop(&mut self, stop: &StopLine) {
        let mut line = serde_json::to_vec(stop).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        for stdin in &mut self.stdins {
            if let Some(mut s) = stdin.take() {
                let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(&line)).await;
            }
        }
    }

    async fn reap(&mut self) {
        for c in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(5), c.wait())
                .await
                .is_err()
            {
                let _ = c.start_kill();
            }
        }
    }
}
