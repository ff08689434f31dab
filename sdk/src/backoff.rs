//! Reconnect backoff: exponential with full jitter, sans-IO.
//!
//! The delay before reconnect attempt `n` (1-based) is drawn uniformly from
//! `[0, min(max, initial * factor^(n-1))]` ("full jitter", AWS Architecture
//! Blog). The randomness comes from a [`Jitter`] the caller injects, so tests
//! are deterministic. After `max_attempts` failed attempts the connection
//! falls back to polling.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Backoff settings. Defaults follow the seeds: 1 s doubling to 30 s, 5 attempts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "camelCase", default)]
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
    /// The ceiling of the delay before attempt `attempt` (1-based), without jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
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
    pub fn delay(&self, attempt: u32, jitter: &mut dyn Jitter) -> Duration {
        let f = jitter.next_fraction().clamp(0.0, 1.0);
        self.ceiling(attempt).mul_f64(f)
    }
}

/// A source of numbers in `[0, 1]` for jitter, injected so tests are deterministic.
pub trait Jitter {
    /// The next number in `[0, 1]`.
    fn next_fraction(&mut self) -> f64;
}

/// No randomness: always the full ceiling (deterministic; for tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn next_fraction(&mut self) -> f64 {
        1.0
    }
}

/// A fixed fraction (for tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn next_fraction(&mut self) -> f64 {
        self.0
    }
}

/// A small xorshift64* generator; the browser shell seeds it from `Math.random()`.
#[derive(Debug, Clone)]
pub struct XorShiftJitter(u64);

impl XorShiftJitter {
    /// A generator from a seed (0 is replaced by a fixed non-zero constant).
    pub fn new(seed: u64) -> Self {
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
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn defaults_match_seeds() {
        let b = BackoffOptions::default();
        let ceilings: Vec<u64> = (1..=7).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(ceilings, vec![1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(b.max_attempts, 5);
    }

    #[test]
    fn full_jitter_range() {
        let b = BackoffOptions::default();
        assert_eq!(b.delay(3, &mut FixedJitter(0.0)), Duration::ZERO);
        assert_eq!(
            b.delay(3, &mut FixedJitter(0.5)),
            Duration::from_millis(2000)
        );
        assert_eq!(b.delay(3, &mut NoJitter), Duration::from_millis(4000));
        assert_eq!(
            b.delay(3, &mut FixedJitter(7.0)),
            Duration::from_millis(4000),
            "clamped"
        );
        let mut rng = XorShiftJitter::new(42);
        for n in 1..50 {
            let d = b.delay(n, &mut rng);
            assert!(d <= b.ceiling(n));
        }
    }

    #[test]
    fn xorshift_is_in_unit_range_and_varies() {
        let mut rng = XorShiftJitter::new(0);
        let xs: Vec<f64> = (0..1000).map(|_| rng.next_fraction()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.iter().any(|&x| x < 0.1) && xs.iter().any(|&x| x > 0.9));
    }

    #[test]
    fn hostile_settings_do_not_panic() {
        let b = BackoffOptions {
            initial_ms: u64::MAX,
            max_ms: u64::MAX,
            factor: f64::NAN,
            max_attempts: 0,
        };
        let _ = b.ceiling(u32::MAX);
        let b = BackoffOptions {
            initial_ms: 10,
            max_ms: 5,
            factor: 0.5,
            max_attempts: 1,
        };
        assert_eq!(b.ceiling(4), Duration::from_millis(5));
        let b = BackoffOptions {
            factor: f64::INFINITY,
            ..Default::default()
        };
        assert_eq!(b.ceiling(3), Duration::from_millis(1000));
    }
}
