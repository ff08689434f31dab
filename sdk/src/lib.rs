//! Tidings: real-time updates over Server-Sent Events for the browser.
//!
//! The crate has two layers:
//!
//! - a **sans-IO core**, plain Rust tested natively: the WHATWG event-stream
//!   [`parser`], the typed [`messages`] of every known stream with their
//!   fallible [`decode`] step, and inside the crate the backoff, the
//!   connection state machine (reconnect, polling fallback, last id,
//!   de-duplication), the dispatch rule and the tab-sharing core;
//! - a thin **browser shell** (`wasm32` only): [`Manager`] (the Rust API for
//!   Leptos/Yew/Dioxus apps) and the JS API (`connect`, `Manager.on`, …)
//!   exported through wasm-bindgen for the npm package.
//!
//! ```no_run
//! # #[cfg(target_arch = "wasm32")]
//! # fn main() -> Result<(), tidings::Error> {
//! use tidings::{ConnectOptions, Manager, Message};
//!
//! // One manager per stream URL and token per page; the same URL and token
//! // give the same manager.
//! let answers = Manager::connect("/api/team-answers/sse/", ConnectOptions::default())?;
//! let created = answers.on("create", |ev| {
//!     if let Message::TeamAnswers(m) = &*ev.message {
//!         web_sys::console::log_1(&format!("{m:?} (id {:?})", ev.id).into());
//!     }
//! });
//! let _state = answers.on_state(|s| web_sys::console::log_1(&s.as_str().into()));
//! // Dropping a subscription unsubscribes; the connection closes with the last listener.
//! drop(created);
//! # Ok(())
//! # }
//! # #[cfg(not(target_arch = "wasm32"))]
//! # fn main() {} // the browser shell exists on wasm32 only
//! ```

// The crate-private parts of the core are driven by the browser shell, which
// exists on wasm32 only; natively only their unit tests use them.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod backoff;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod connection;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod dispatch;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod json;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub mod messages;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod mux;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod options;
pub mod parser;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod position;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod protocol;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod shape;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod tabs;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod url;

pub use backoff::BackoffOptions;
pub use connection::{ErrorInfo, ErrorKind, State};
pub use messages::{decode, Custom, DecodeError, Decoder, Message, WsMessage, WsMessageType};
pub use options::{
    Body, ConnectOptions, DecodeFn, GetToken, Options, Poll, TokenFuture, Transport,
};
pub use protocol::Protocol;

#[cfg(target_arch = "wasm32")]
mod web;

/// The npm package's allocator (feature `small-alloc`): a free list, far
/// smaller than dlmalloc; the page is single-threaded, so its lock is never
/// contended.
#[cfg(all(target_arch = "wasm32", feature = "small-alloc"))]
#[global_allocator]
static ALLOC: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
#[cfg(target_arch = "wasm32")]
pub use web::{js, Error, Event, Manager, Subscription};

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

// Generated inputs through every reader of network and tab input (native only).
#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used)]
mod fuzz;
