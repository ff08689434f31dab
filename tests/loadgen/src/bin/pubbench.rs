//! `tidings-pubbench` binary: see [`tidings_loadgen::pubbench`].

use std::process::ExitCode;

use clap::Parser;
use tidings_loadgen::pubbench::{run, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(tidings_loadgen::Error::from)
        .and_then(|rt| rt.block_on(run(&args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidings-pubbench: {e}");
            ExitCode::FAILURE
        }
    }
}
