//! Tidings: real-time updates over Server-Sent Events for the browser.
//!
//! The crate has two layers:
//!
//! - a **sans-IO core**, plain Rust tested natively: [`parser`] (WHATWG
//!   event-stream parser), [`messages`] (typed messages of every seed stream
//!   and the fallible decode step), [`backoff`], [`connection`] (the state
//!   machine: reconnect, polling fallback, last id, de-duplication),
//!   [`dispatch`] (listeners and the dispatch rule) and [`options`];
//! - a thin **browser shell** (`wasm32` only): `Manager` (Rust API for
//!   Leptos/Yew/Dioxus apps) and the JS API (`connect`, `Manager.on`, …)
//!   exported through wasm-bindgen for the npm package.
//!
//! ```ignore
//! // Rust (wasm32): one manager per stream URL and token.
//! let m = tidings::Manager::connect("/api/team-answers/sse/", tidings::Options::default())?;
//! let sub = m.on("create", |ev| log(&format!("{:?}", ev.message)));
//! // dropping `sub` unsubscribes; the connection closes with the last listener.
//! ```

pub mod backoff;
pub mod connection;
pub mod dispatch;
pub mod messages;
pub mod options;
pub mod parser;
pub mod position;
pub mod tabs;
pub mod url;

pub use backoff::BackoffOptions;
pub use connection::{ErrorInfo, ErrorKind, State};
pub use messages::{decode, DecodeError, Decoder, Message, WsMessage, WsMessageType};
pub use options::{ConnectOptions, Options, Transport};

#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
pub use web::{js, Error, Event, Manager, Subscription};

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
