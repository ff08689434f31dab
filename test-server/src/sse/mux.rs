//! The parts of a multiplexed SSE response (one connection, a set of streams), for
//! whoever serves it first: the hub on a connection's first request, hyper otherwise
//! (the same hand-over as [`super::Detachable`] for one stream).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::stream::{SseParts, TerminalFn};
use crate::bus::Subscription;
use crate::connections::{ConnectionGuard, MuxGuard};

/// One stream carried by a multiplexed connection, after its prelude.
#[derive(Debug)]
pub struct MuxMember {
    /// The stream's path, which tags each of its frames (`event: <tag> <name>`).
    pub tag: Arc<str>,
    /// Its own subscription: the live queue (hyper), or what catches it up with its
    /// group (hub).
    pub subscription: Subscription,
    /// Which events end the stream (finite streams).
    pub terminal: Option<TerminalFn>,
    /// The id a live event must exceed to be sent.
    pub last_id: u64,
    /// Counts the stream per stream key and user (not in the connection total).
    pub guard: Option<ConnectionGuard>,
}

impl MuxMember {
    /// The stream `tag` from its opened parts, its prelude written up to `last_id`.
    pub fn new(tag: &str, parts: SseParts, last_id: u64) -> MuxMember {
        MuxMember {
            tag: Arc::from(tag),
            subscription: parts.subscription,
            terminal: parts.terminal,
            last_id,
            guard: parts.guard.map(ConnectionGuard::into_member),
        }
    }

    /// The stream key, when the stream is counted (always, for SSE).
    pub fn key(&self) -> Option<&str> {
        self.guard.as_ref().map(ConnectionGuard::stream)
    }
}

/// Everything a multiplexed response is made of.
#[derive(Debug)]
pub struct MuxParts {
    /// `retry:`, the hello, then each stream's prelude or `mux-error`, in request order.
    pub prelude: Bytes,
    /// The streams still open after the prelude.
    pub members: Vec<MuxMember>,
    /// Counts the connection once in the total.
    pub guard: MuxGuard,
}

/// The parts of a multiplexed response, for whoever serves it first.
#[derive(Debug, Clone)]
pub struct MuxDetachable(Arc<Mutex<Option<MuxParts>>>);

impl MuxDetachable {
    /// A slot holding `parts`.
    pub fn new(parts: MuxParts) -> MuxDetachable {
        MuxDetachable(Arc::new(Mutex::new(Some(parts))))
    }

    /// Takes the parts; `None` once taken.
    pub fn take(&self) -> Option<MuxParts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
