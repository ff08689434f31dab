//! Whether Redis is reachable, the last error, and an error counter; logs once per change.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::super::BusHealth;

/// Health of the Redis connection as seen by this instance.
#[derive(Debug)]
pub(super) struct Health {
    healthy: AtomicBool,
    last_error: Mutex<Option<String>>,
    errors: AtomicU64,
}

impl Health {
    /// Starts unhealthy until the first connection succeeds. The last error is kept after a
    /// recovery (for diagnosis); `healthy` says whether it is current.
    pub(super) fn new() -> Self {
        Health {
            healthy: AtomicBool::new(false),
            last_error: Mutex::new(None),
            errors: AtomicU64::new(0),
        }
    }

    pub(super) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub(super) fn last_error(&self) -> String {
        self.lock()
            .clone()
            .unwrap_or_else(|| "not connected to Redis yet".into())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a failure; warns only on the healthy → unhealthy transition.
    pub(super) fn fail(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.lock() = Some(error.clone());
        if self.healthy.swap(false, Ordering::AcqRel) {
            tracing::warn!(%error, "redis bus unavailable: publishes are refused until Redis is back");
        }
    }

    /// Records a working connection; logs only on the unhealthy → healthy transition.
    pub(super) fn ok(&self) {
        if !self.healthy.swap(true, Ordering::AcqRel) {
            tracing::warn!("redis bus connected");
        }
    }

    pub(super) fn snapshot(&self) -> BusHealth {
        BusHealth {
            kind: "redis",
            healthy: self.is_healthy(),
            last_error: self.lock().clone(),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}
