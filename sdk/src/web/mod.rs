//! The browser shell: turns web events into `handle_*` calls on the sans-IO
//! [`Connection`](crate::connection::Connection) and
//! [`TabCore`](crate::tabs::TabCore), and their outputs into web calls.
//!
//! Modules, each using only those below it:
//!
//! | module | job |
//! | --- | --- |
//! | `js` | the JS API (`connect`, class `Manager`) over the Rust API |
//! | `manager` | the Rust API: [`Manager`], [`Subscription`], [`Error`] |
//! | `driver` | one manager at run time: every input, the drive loop, actions, delivery; the page's registry of managers |
//! | `transport` | the SSE transport slot (`EventSource`, `stream` or a place on `mux`) and the polling request |
//! | `mux` | one shared connection for the streams of an origin and identity, when the server multiplexes |
//! | `stream` | the `fetch` streaming transport |
//! | `input` | what transports report, and the generation-tagged handle they report through |
//! | `tabs` | sharing across tabs: Web Lock, `BroadcastChannel`, catch-up, page lifecycle |
//! | `listeners` | Rust and JS listeners and the values they get |
//! | `http` | building requests and reading the polling form |
//! | `json` | reading JS values (`JSON.parse` results, the options object) as JSON documents |
//! | `token` | `getToken` (the browser's [`GetToken`]) |
//! | `storage` | the last event id in `sessionStorage` |
//! | `timer` | one-shot timers (`setTimeout`) dropped with their owner |
//! | `then` | promise continuations (one closure type, no executor) |
//! | `platform` | clock, random seed, `fetch`, `document`, JS error text |
//!
//! Ownership (gloo style): every `Closure` belongs to the value it serves and
//! is dropped with it. The EventSource, its listeners, the polling request's
//! `AbortController`, the single timer and the `online`/`visibilitychange`
//! listeners all live in the manager's state; replacing or dropping them
//! closes/removes/aborts. Nothing is `forget()`-ed on a reconnect path; a
//! promise continuation ([`then`]) belongs to the promise it waits on and is
//! freed with it.

mod driver;
mod http;
mod input;
pub mod js;
mod json;
mod listeners;
mod manager;
mod mux;
mod platform;
mod storage;
mod stream;
mod tabs;
mod then;
mod timer;
mod token;
mod transport;

pub use listeners::Event;
pub use manager::{Error, Manager, Subscription};
pub use token::GetToken;
