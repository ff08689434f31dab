//! Log-linear latency histogram: about 3 % resolution, mergeable across
//! workers, serialised sparsely.

use serde::{Deserialize, Serialize};

const LINEAR: u64 = 64;
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

/// Counts of microsecond values in log-linear buckets, plus the exact max.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Histogram {
    /// Non-empty buckets as `(index, count)`, ascending by index.
    buckets: Vec<(u32, u64)>,
    /// Number of recorded values.
    pub count: u64,
    /// The largest recorded value, exactly.
    pub max: u64,
    #[serde(skip)]
    dense: Vec<u64>,
}

impl Histogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        let i = index(value);
        if self.dense.len() <= i {
            self.dense.resize(i + 1, 0);
        }
        self.dense[i] += 1;
        self.count += 1;
        self.max = self.max.max(value);
    }

    /// Moves the dense counts into the sparse, serialisable form.
    #[must_use]
    pub fn into_sparse(mut self) -> Self {
        self.flush();
        self
    }

    fn flush(&mut self) {
        if self.dense.is_empty() {
            return;
        }
        let mut dense = std::mem::take(&mut self.dense);
        for &(i, c) in &self.buckets {
            let i = i as usize;
            if dense.len() <= i {
                dense.resize(i + 1, 0);
            }
            dense[i] += c;
        }
        self.buckets = dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .filter_map(|(i, &c)| u32::try_from(i).ok().map(|i| (i, c)))
            .collect();
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        let other = other.clone().into_sparse();
        for &(i, c) in &other.buckets {
            let i = i as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, 0);
            }
            self.dense[i] += c;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
        self.flush();
    }

    /// The value at quantile `q` (0..=1): the upper edge of its bucket,
    /// never above the exact max. `None` when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let mut me = self.clone();
        me.flush();
        if me.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * me.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(i, c) in &me.buckets {
            seen += c;
            if seen >= rank {
                return Some(upper(i as usize).min(me.max));
            }
        }
        Some(me.max)
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 6
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (LINEAR + u64::from(exp - 6) * SUB + sub) as usize
}

fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exp = (i - LINEAR) / SUB + 6;
    let sub = (i - LINEAR) % SUB;
    let shift = exp as u32 - SUB_BITS;
    let edge = (u128::from(SUB + sub + 1) << shift) - 1;
    u64::try_from(edge).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_resolution() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap_or(0);
        let p99 = h.quantile(0.99).unwrap_or(0);
        assert!((5_000..=5_200).contains(&p50), "{p50}");
        assert!((9_900..=10_000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(10_000));
    }

    #[test]
    fn merge_after_roundtrip() -> Result<(), serde_json::Error> {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..100 {
            a.record(v);
            b.record(v * 1000);
        }
        let b: Histogram = serde_json::from_str(&serde_json::to_string(&b.into_sparse())?)?;
        a.merge(&b);
        assert_eq!(a.count, 200);
        assert_eq!(a.max, 99_000);
        assert_eq!(a.quantile(0.0), Some(0));
        Ok(())
    }

    #[test]
    fn index_and_upper_agree() {
        for v in [0, 63, 64, 65, 1000, 123_456, u64::MAX / 2] {
            assert!(upper(index(v)) >= v);
        }
    }
}
