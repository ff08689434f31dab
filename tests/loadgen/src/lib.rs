//! `tidings-loadgen`: a load generator for SSE servers (Tidings and the
//! seed-003 FastAPI stack), built for one box and loopback only.
//!
//! The parent ([`coordinator`]) re-executes itself as worker processes
//! ([`worker`]) so that no process exceeds the open-files limit; each
//! worker opens its share of raw-socket SSE connections ([`conn`]) from a
//! rotating set of 127.0.0.x source addresses, decodes them with sans-IO
//! parsers ([`chunked`], [`sse`]) and counts deliveries ([`tally`]).
//! Workers report over stdout JSON lines ([`wire`]); the parent publishes
//! probes ([`publish`]), samples server RSS ([`rss`]) and prints the
//! [`report`].

pub mod chunked;
pub mod cli;
pub mod conn;
pub mod coordinator;
pub mod error;
pub mod histogram;
pub mod http;
pub mod keepalive;
pub mod payload;
pub mod pubbench;
pub mod publish;
pub mod report;
pub mod rss;
pub mod sse;
pub mod tally;
pub mod target;
pub mod wire;
pub mod worker;

pub use error::Error;
