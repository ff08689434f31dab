//! A worker process: opens its share of the connections on one thread,
//! reports on stdout (JSON lines, [`crate::wire`]), stops on the parent's
//! stop line, stdin EOF, or its own deadline.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;
use tokio::task::LocalSet;

use crate::conn::{self, Shared, READ_BUF};
use crate::error::Error;
use crate::rss::own_rss_kib;
use crate::tally::Tally;
use crate::target::Target;
use crate::wire::{ConnectSummary, StopLine, WorkerLine};

/// Everything one worker needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The server.
    pub target: Target,
    /// Full GET request bytes for the stream.
    pub request: Vec<u8>,
    /// Connections this worker opens.
    pub connections: u32,
    /// Source addresses, used round-robin starting at `ip_offset`.
    pub source_ips: Vec<Ipv4Addr>,
    /// Where in `source_ips` this worker starts.
    pub ip_offset: usize,
    /// Events `0..expected` the parent will publish.
    pub expected: u32,
    /// Connects in flight at once.
    pub connect_concurrency: u32,
    /// The worker exits by itself after this long.
    pub deadline: Duration,
}

/// Runs a worker to completion on a current-thread runtime.
///
/// # Errors
/// Runtime construction or stdout failures.
pub fn run(cfg: WorkerConfig) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    LocalSet::new().block_on(&rt, drive(cfg))
}

fn emit(line: &WorkerLine) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

async fn drive(cfg: WorkerConfig) -> Result<(), Error> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + cfg.deadline;
    let shared = Rc::new(Shared {
        target: cfg.target.addr,
        request: cfg.request,
        connect_slots: Semaphore::new(cfg.connect_concurrency.max(1) as usize),
        connect_timeout: Duration::from_secs(20),
        tally: RefCell::new(Tally::new(cfg.connections, cfg.expected)),
        buf: RefCell::new(vec![0; READ_BUF].into_boxed_slice()),
    });
    for id in 0..cfg.connections as usize {
        let source = (!cfg.source_ips.is_empty())
            .then(|| cfg.source_ips[(cfg.ip_offset + id) % cfg.source_ips.len()]);
        tokio::task::spawn_local(conn::run(Rc::clone(&shared), id, source));
    }
    while !shared.tally.borrow().all_settled() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let summary = {
        let t = shared.tally.borrow();
        ConnectSummary {
            held: t.open_count(),
            errors: t.errors().clone(),
            connect_ms,
            worker_rss_kib: own_rss_kib(),
        }
    };
    emit(&WorkerLine::Connected(summary))?;

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut told_complete = false;
    let mut told_first = false;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let stop = loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(l)) => break serde_json::from_str::<StopLine>(&l).unwrap_or_default(),
                Ok(None) | Err(_) => break StopLine::default(),
            },
            _ = tokio::time::sleep_until(deadline) => break StopLine::default(),
            _ = tick.tick() => {
                if !told_first && shared.tally.borrow().all_have_first() {
                    told_first = true;
                    emit(&WorkerLine::FirstDone)?;
                }
                if !told_complete && shared.tally.borrow().all_complete() {
                    told_complete = true;
                    emit(&WorkerLine::Complete)?;
                }
            }
        }
    };
    let result = shared
        .tally
        .borrow()
        .result(&stop.failed_seqs, own_rss_kib());
    emit(&WorkerLine::Result(result))?;
    // The connections close with the process; no need to tear down tasks.
    std::process::exit(0);
}
