//! Reconnect backoff: exponential with full jitter, sans-IO.
//!
//! The delay before reconnect attempt `n` (1-based) is drawn uniformly from
//! `[0, min(max, initial * factor^(n-1))]` ("full jitter", AWS Architecture
//! Blog). The randomness comes from a [`Jitter`] the caller injects, so tests
//! are deterministic. After `max_attempts` failed attempts the connection
//! falls back to polling.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Backoff settings. Defaults: 1 s doubling to 30 s, 5 attempts (what the
/// hand-written clients it replaces used).
///
/// ```
/// let quick = tidings::BackoffOptions::default().initial_ms(200).max_ms(1000);
/// assert_eq!((quick.initial_ms, quick.max_ms, quick.max_attempts), (200, 1000, 5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct BackoffOptions {
    /// Ceiling of the first delay, in ms. Default `1000`. A server `retry:`
    /// hint (or the polling response's `retry_ms`) replaces it.
    pub initial_ms: u64,
    /// Largest ceiling, in ms. Default `30000`.
    pub max_ms: u64,
    /// Growth of the ceiling per attempt. Default `2`.
    pub factor: f64,
    /// Failed reconnect attempts before switching to polling. Default `5`.
    pub max_attempts: u32,
}

impl Default for BackoffOptions {
    fn default() -> Self {
        BackoffOptions {
            initial_ms: 1000,
            max_ms: 30_000,
            factor: 2.0,
            max_attempts: 5,
        }
    }
}

impl BackoffOptions {
    /// Sets `initialMs`.
    pub fn initial_ms(mut self, ms: u64) -> Self {
        self.initial_ms = ms;
        self
    }

    /// Sets `maxMs`.
    pub fn max_ms(mut self, ms: u64) -> Self {
        self.max_ms = ms;
        self
    }

    /// Sets `factor`.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets `maxAttempts`.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The ceiling of the delay before attempt `attempt` (1-based), without jitter.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let ms = (self.initial_ms as f64) * factor.powi(exp);
        let ms = ms.min(self.max_ms as f64).max(0.0);
        Duration::from_millis(ms as u64)
    }

    /// The jittered delay before attempt `attempt`: uniform in `[0, ceiling]`.
    pub(crate) fn delay(&self, attempt: u32, jitter: &mut dyn Jitter) -> Duration {
        let f = jitter.next_fraction().clamp(0.0, 1.0);
        // In whole nanoseconds through a saturating cast: `Duration::mul_f64`
        // panics on NaN, and its checks and message are 0.5 KB of the package.
        Duration::from_nanos((self.ceiling(attempt).as_nanos() as f64 * f) as u64)
    }
}

/// A source of numbers in `[0, 1]` for jitter, injected so tests are deterministic.
pub(crate) trait Jitter {
    /// The next number in `[0, 1]`.
    fn next_fraction(&mut self) -> f64;
}

/// No randomness: always the full ceiling (deterministic; for tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoJitter;

#[cfg(test)]
impl Jitter for NoJitter {
    fn next_fraction(&mut self) -> f64 {
        1.0
    }
}

/// A fixed fraction (for tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedJitter(pub(crate) f64);

#[cfg(test)]
impl Jitter for FixedJitter {
    fn next_fraction(&mut self) -> f64 {
        self.0
    }
}

/// A small xorshift64* generator; the browser shell seeds it from `Math.random()`.
#[derive(Debug, Clone)]
pub(crate) struct XorShiftJitter(u64);

impl XorShiftJitter {
    /// A generator from a seed (0 is replaced by a fixed non-zero constant).
    pub(crate) fn new(seed: u64) -> Self {
        XorShiftJitter(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
}

impl Jitter for XorShiftJitter {
    fn next_fraction(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
