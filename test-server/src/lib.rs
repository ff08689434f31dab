//! `tidings-server`: the axum reference server for Tidings.
//!
//! Every seed system's SSE API (team answers, notifications, video progress, channels)
//! with per-stream ids, a persisted replay log, resume, reset, a polling form, JWT auth,
//! SQLite storage and in-process fan-out behind the [`bus::Bus`] trait.
//! The wire rules are in `docs/PROTOCOL.md`; endpoints and flags in `test-server/README.md`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod auth;
pub mod bus;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod event;
pub mod extract;
pub mod faults;
pub mod front;
pub mod hub;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod sse;
pub mod stall;
pub mod state;
pub mod store;
pub mod streaming;
pub mod time;
pub mod tls;
pub mod video;

pub use app::app;
pub use config::Config;
pub use server::Server;
pub use state::{AppState, StartError};
