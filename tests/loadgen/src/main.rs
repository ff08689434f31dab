//! `tidings-loadgen` binary: parent or (re-executed) worker.

use std::process::ExitCode;

use clap::Parser;
use tidings_loadgen::cli::Args;
use tidings_loadgen::http::sse_request;
use tidings_loadgen::target::{parse_source_ips, Target};
use tidings_loadgen::worker::{self, WorkerConfig};
use tidings_loadgen::{coordinator, report, Error};

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match args.worker_id {
        Some(_) => run_worker(&args),
        None => run_parent(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidings-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_worker(args: &Args) -> Result<(), Error> {
    let target = Target::parse(&args.target)?;
    let request = sse_request(&target, &args.stream_path, args.token.as_deref());
    worker::run(WorkerConfig {
        target,
        request,
        connections: args.connections,
        source_ips: parse_source_ips(&args.source_ips)?,
        ip_offset: args.ip_offset,
        expected: args.publish_count,
        connect_concurrency: args.connect_concurrency,
        deadline: std::time::Duration::from_secs(args.duration_secs),
    })
}

fn run_parent(args: &Args) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(coordinator::run(args))?;
    print!("{}", report::table(&report));
    let line = serde_json::to_string(&report)?;
    println!("{line}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{line}\n"))?;
    }
    Ok(())
}
