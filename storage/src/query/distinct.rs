//! `count_distinct`: exact up to `EXACT_LIMIT` distinct values, then a
//! HyperLogLog sketch of 2^`HLL_P` one-byte registers. The contract allows
//! 2 % error; with 65,536 registers the standard error is 0.41 %, so 2 % is
//! about five standard errors.
//!
//! Inputs are 64-bit hashes of the values; they are remixed here so the
//! register index and the rank use well-spread bits whatever the caller's
//! hash.

use crate::query::hash::{FxHashSet, mix64};

/// Distinct values kept exactly before switching to the sketch. A set of
/// 8,192 hashes takes about as much memory as the sketch (64 KiB), so the
/// exact form is never the bigger one.
pub const EXACT_LIMIT: usize = 8192;

/// log2 of the register count.
pub const HLL_P: u32 = 16;
const HLL_M: usize = 1 << HLL_P;

/// Bytes one entry of the exact set costs (hash plus table overhead), for
/// the query memory budget.
pub const EXACT_ENTRY_BYTES: usize = 16;
/// Bytes of the sketch.
pub const SKETCH_BYTES: usize = HLL_M;

/// A distinct counter.
#[derive(Debug, Clone)]
pub enum Distinct {
    Exact(FxHashSet<u64>),
    Sketch(Box<[u8]>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(FxHashSet::default())
    }
}

impl Distinct {
    /// Adds a value's hash; returns the bytes the counter grew by.
    #[inline]
    pub fn insert(&mut self, h: u64) -> usize {
        match self {
            Distinct::Exact(set) => {
                if !set.insert(h) {
                    return 0;
                }
                if set.len() > EXACT_LIMIT {
                    let freed = set.len() * EXACT_ENTRY_BYTES;
                    let mut regs = vec![0u8; HLL_M].into_boxed_slice();
                    for &x in set.iter() {
                        hll_add(&mut regs, x);
                    }
                    *self = Distinct::Sketch(regs);
                    return SKETCH_BYTES.saturating_sub(freed);
                }
                EXACT_ENTRY_BYTES
            }
            Distinct::Sketch(regs) => {
                hll_add(regs, h);
                0
            }
        }
    }

    /// Folds `other` in.
    pub fn merge(&mut self, other: &Distinct) {
        match other {
            Distinct::Exact(set) => {
                for &h in set {
                    self.insert(h);
                }
            }
            Distinct::Sketch(o) => {
                if let Distinct::Exact(set) = self {
                    let mut regs = vec![0u8; HLL_M].into_boxed_slice();
                    for &x in set.iter() {
                        hll_add(&mut regs, x);
                    }
                    *self = Distinct::Sketch(regs);
                }
                if let Distinct::Sketch(regs) = self {
                    for (a, b) in regs.iter_mut().zip(o.iter()) {
                        *a = (*a).max(*b);
                    }
                }
            }
        }
    }

    /// The count: exact, or the sketch's estimate.
    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            Distinct::Sketch(regs) => hll_estimate(regs),
        }
    }
}

#[inline]
fn hll_add(regs: &mut [u8], h: u64) {
    let x = mix64(h);
    let idx = (x >> (64 - HLL_P)) as usize;
    // Rank of the first set bit in the remaining 64 - P bits (1-based);
    // the guard bit bounds it when they are all zero.
    let rest = (x << HLL_P) | (1 << (HLL_P - 1));
    let rank = rest.leading_zeros() as u8 + 1;
    if let Some(r) = regs.get_mut(idx)
        && rank > *r
    {
        *r = rank;
    }
}

fn hll_estimate(regs: &[u8]) -> u64 {
    let m = regs.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let mut sum = 0.0;
    let mut zeros = 0usize;
    for &r in regs {
        sum += 1.0 / f64::from(1u32 << r.min(31));
        if r == 0 {
            zeros += 1;
        }
    }
    let raw = alpha * m * m / sum;
    // Small range: linear counting is the better estimator.
    let est = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    est.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel_err(got: u64, want: u64) -> f64 {
        (got as f64 - want as f64).abs() / want as f64
    }

    #[test]
    fn exact_below_the_limit() {
        let mut d = Distinct::default();
        for i in 0..EXACT_LIMIT as u64 {
            d.insert(i);
            d.insert(i);
        }
        assert!(matches!(d, Distinct::Exact(_)));
        assert_eq!(d.count(), EXACT_LIMIT as u64);
    }

    #[test]
    fn sketch_within_two_percent_at_many_cardinalities() {
        for n in [10_000u64, 50_000, 200_000, 1_000_000, 3_000_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                // Sequential inputs: the remix must spread them.
                d.insert(i);
            }
            assert!(matches!(d, Distinct::Sketch(_)));
            let e = rel_err(d.count(), n);
            assert!(
                e < 0.02,
                "n={n}: estimate {} ({:.3} %)",
                d.count(),
                e * 100.0
            );
        }
    }

    #[test]
    fn merge_of_halves_matches_the_whole() {
        let (mut a, mut b, mut small) = (
            Distinct::default(),
            Distinct::default(),
            Distinct::default(),
        );
        for i in 0..100_000u64 {
            if i % 2 == 0 {
                a.insert(i);
            } else {
                b.insert(i);
            }
        }
        for i in 0..100u64 {
            small.insert(i + 1_000_000);
        }
        a.merge(&b);
        a.merge(&small);
        assert!(rel_err(a.count(), 100_100) < 0.02, "{}", a.count());
        // Exact merged into exact stays exact.
        let mut c = Distinct::default();
        c.insert(1);
        c.merge(&small);
        assert_eq!(c.count(), 101);
    }
}
