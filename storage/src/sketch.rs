//! A mergeable latency sketch with bounded relative error (the DDSketch
//! idea: logarithmic buckets of ratio `GAMMA`, so any quantile is returned
//! within `RELATIVE_ACCURACY` of a true sample value).
//!
//! Written here rather than taken from a crate because segment rollups need
//! a compact, versioned, validated binary form that we control byte for
//! byte; the arithmetic is a few lines.

use crate::codec::{Reader, put_ivarint, put_uvarint};
use crate::error::Result;

/// Quantiles are within this relative error of a true sample.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this (ms) are counted in the zero bucket: latencies
/// under a microsecond are noise, and it bounds the number of buckets.
pub const MIN_POSITIVE: f64 = 1e-3;
/// Largest bucket index the decoder accepts: 1e-3 ms .. ~1e13 ms is far
/// beyond any latency, and it bounds what a forged sketch can allocate.
const MAX_INDEX: i64 = 2_000;
const MIN_INDEX: i64 = -400;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySketch {
    /// Count of values <= MIN_POSITIVE.
    zero: u64,
    /// Index of `bins[0]`.
    offset: i64,
    bins: Vec<u64>,
    count: u64,
}

fn index_of(v: f64) -> i64 {
    ((v.ln() / GAMMA.ln()).ceil() as i64).clamp(MIN_INDEX, MAX_INDEX)
}

fn value_of(i: i64) -> f64 {
    2.0 * GAMMA.powi(i as i32) / (GAMMA + 1.0)
}

impl LatencySketch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Heap bytes held by the bins (memory accounting of in-memory users
    /// such as the alerting windows).
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u64>()
    }

    /// Adds one value; NaN (null) and negative values are ignored.
    pub fn add(&mut self, v: f64) {
        self.add_n(v, 1);
    }

    fn add_n(&mut self, v: f64, n: u64) {
        if v.is_nan() || v < 0.0 {
            return;
        }
        self.count += n;
        if v <= MIN_POSITIVE {
            self.zero += n;
            return;
        }
        self.add_index(index_of(v), n);
    }

    fn add_index(&mut self, i: i64, n: u64) {
        if self.bins.is_empty() {
            self.offset = i;
            self.bins.push(0);
        } else if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.bins.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        } else if i >= self.offset + self.bins.len() as i64 {
            self.bins.resize((i - self.offset + 1) as usize, 0);
        }
        self.bins[(i - self.offset) as usize] += n;
    }

    pub fn merge(&mut self, other: &LatencySketch) {
        self.zero += other.zero;
        self.count += other.zero;
        // Grow once to cover `other`'s non-empty bins (exactly the range
        // bin-by-bin adds would grow to), then add the bins as one slice:
        // rollup merges do this hundreds of thousands of times per query.
        let (Some(first), Some(last)) = (
            other.bins.iter().position(|&n| n > 0),
            other.bins.iter().rposition(|&n| n > 0),
        ) else {
            return;
        };
        self.add_index(other.offset + first as i64, 0);
        self.add_index(other.offset + last as i64, 0);
        let base = (other.offset + first as i64 - self.offset) as usize;
        let src = &other.bins[first..=last];
        for (dst, &n) in self.bins[base..base + src.len()].iter_mut().zip(src) {
            *dst += n;
        }
        self.count += src.iter().sum::<u64>();
    }

    /// Removes one value added before (the inverse of `add`): sliding
    /// windows keep a running sketch and take out the seconds that leave.
    /// A value that was never added is ignored.
    pub fn remove(&mut self, v: f64) {
        if v.is_nan() || v < 0.0 {
            return;
        }
        if v <= MIN_POSITIVE {
            if self.zero > 0 {
                self.zero -= 1;
                self.count -= 1;
            }
        } else {
            let k = index_of(v) - self.offset;
            if let Some(n) = usize::try_from(k).ok().and_then(|k| self.bins.get_mut(k))
                && *n > 0
            {
                *n -= 1;
                self.count -= 1;
            }
        }
        self.clear_if_empty();
    }

    /// Takes out a sketch merged in before (the inverse of `merge`); bins
    /// it does not hold are left alone, so a sketch that was never merged
    /// cannot drive counts below zero.
    pub fn subtract(&mut self, other: &LatencySketch) {
        let z = other.zero.min(self.zero);
        self.zero -= z;
        self.count -= z;
        for (k, &n) in other.bins.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let i = other.offset + k as i64 - self.offset;
            if let Some(b) = usize::try_from(i).ok().and_then(|i| self.bins.get_mut(i)) {
                let n = n.min(*b);
                *b -= n;
                self.count -= n;
            }
        }
        self.clear_if_empty();
    }

    fn clear_if_empty(&mut self) {
        if self.count == 0 {
            self.zero = 0;
            self.offset = 0;
            self.bins.clear();
        }
    }

    /// The `q`-quantile (0 <= q <= 1), `None` when empty: linear
    /// interpolation between the values at the ranks either side of
    /// `q * (count - 1)` (the usual definition, e.g. numpy's default), each
    /// within `RELATIVE_ACCURACY` of a true sample, so the result is too.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (self.count - 1) as f64;
        let lo_rank = pos.floor() as u64;
        let lo = self.value_at_rank(lo_rank);
        let frac = pos - lo_rank as f64;
        if frac == 0.0 {
            return Some(lo);
        }
        let hi = self.value_at_rank(lo_rank + 1);
        Some(lo + (hi - lo) * frac)
    }

    /// The estimate of the value of rank `rank` (0-based, < count).
    fn value_at_rank(&self, rank: u64) -> f64 {
        if rank < self.zero {
            return 0.0;
        }
        let mut seen = self.zero;
        for (k, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen > rank {
                return value_of(self.offset + k as i64);
            }
        }
        value_of(self.offset + self.bins.len() as i64 - 1)
    }

    /// Binary form: zero count, number of non-empty bins, then per bin the
    /// index delta (zigzag) and count, all varints.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.zero);
        let nonzero = self.bins.iter().filter(|&&n| n > 0).count();
        put_uvarint(out, nonzero as u64);
        let mut prev = 0i64;
        for (k, &n) in self.bins.iter().enumerate() {
            if n > 0 {
                let i = self.offset + k as i64;
                put_ivarint(out, i - prev);
                put_uvarint(out, n);
                prev = i;
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<LatencySketch> {
        let mut s = LatencySketch::new();
        s.zero = r.uvarint("sketch zero count")?;
        s.count = s.zero;
        let bins = r.len_prefix("sketch bin count")?;
        let mut prev = 0i64;
        let bad = |what, r: &Reader<'_>| crate::error::StorageError::Decode {
            what,
            offset: r.position(),
        };
        // `encode` writes only non-empty bins, in increasing index order: so
        // every bin is set once and no count can overflow a valid sketch.
        for k in 0..bins {
            let i = prev
                .checked_add(r.ivarint("sketch bin index")?)
                .unwrap_or(i64::MAX);
            if !(MIN_INDEX..=MAX_INDEX).contains(&i) || (k > 0 && i <= prev) {
                return Err(bad("sketch bin index", r));
            }
            let n = r.uvarint("sketch bin count")?;
            s.count = match s.count.checked_add(n) {
                Some(c) if n > 0 => c,
                _ => return Err(bad("sketch bin count", r)),
            };
            s.add_index(i, n);
            prev = i;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_refuses_repeated_empty_or_overflowing_bins() {
        let sketch = |bins: &[(i64, u64)]| {
            let mut out = Vec::new();
            put_uvarint(&mut out, 0);
            put_uvarint(&mut out, bins.len() as u64);
            let mut prev = 0;
            for &(i, n) in bins {
                put_ivarint(&mut out, i - prev);
                put_uvarint(&mut out, n);
                prev = i;
            }
            out
        };
        let decode = |b: &[u8]| LatencySketch::decode(&mut Reader::new(b));
        // A bin of zero, then the same index twice: found by fuzzing, it
        // overflowed the bin's count.
        assert!(decode(&sketch(&[(5, 0), (5, u64::MAX), (5, u64::MAX)])).is_err());
        assert!(decode(&sketch(&[(5, u64::MAX), (6, u64::MAX)])).is_err());
        assert!(decode(&sketch(&[(5, 3), (4, 1)])).is_err());
        let ok = decode(&sketch(&[(5, 3), (9, 1)])).expect("valid");
        assert_eq!(ok.count(), 4);
        let mut round = Vec::new();
        ok.encode(&mut round);
        assert_eq!(round, sketch(&[(5, 3), (9, 1)]));
    }

    #[test]
    fn quantiles_are_within_the_relative_bound() {
        let mut s = LatencySketch::new();
        let mut vals: Vec<f64> = (1..=10_000).map(|i| (i as f64) * 0.37).collect();
        for v in &vals {
            s.add(*v);
        }
        vals.sort_by(f64::total_cmp);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let pos = q * (vals.len() - 1) as f64;
            let (lo, hi) = (vals[pos.floor() as usize], vals[pos.ceil() as usize]);
            let exact = lo + (hi - lo) * (pos - pos.floor());
            let got = s.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= exact * RELATIVE_ACCURACY * 1.0001,
                "q={q} {got} vs {exact}"
            );
        }
    }

    #[test]
    fn small_sets_interpolate_between_ranks() {
        let mut s = LatencySketch::new();
        s.add(42.7);
        s.add(1200.0);
        let p95 = s.quantile(0.95).unwrap();
        let exact = 42.7 + (1200.0 - 42.7) * 0.95;
        assert!(
            (p95 - exact).abs() <= exact * RELATIVE_ACCURACY,
            "{p95} vs {exact}"
        );
        assert!((s.quantile(0.0).unwrap() - 42.7).abs() <= 42.7 * RELATIVE_ACCURACY);
    }

    #[test]
    fn merge_equals_adding_everything() {
        let (mut a, mut b, mut all) = (
            LatencySketch::new(),
            LatencySketch::new(),
            LatencySketch::new(),
        );
        for i in 0..500 {
            let v = 1.0 + (i as f64).powf(1.3);
            if i % 3 == 0 {
                a.add(v)
            } else {
                b.add(v)
            }
            all.add(v);
        }
        a.add(0.0);
        all.add(0.0);
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
    }

    #[test]
    fn merge_keeps_the_representation_of_adding_bin_by_bin() {
        let mut a = LatencySketch::new();
        let mut b = LatencySketch::new();
        let mut all = LatencySketch::new();
        for v in [5.0, 7.0, 900.0] {
            a.add(v);
            all.add(v);
        }
        for v in [0.5, 3000.0, 0.0] {
            b.add(v);
            all.add(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
        let mut empty = LatencySketch::new();
        empty.merge(&b);
        assert_eq!(empty, b);
        empty.merge(&LatencySketch::new());
        assert_eq!(empty, b);
    }

    #[test]
    fn subtract_and_remove_undo_merge_and_add() {
        let mut a = LatencySketch::new();
        let mut b = LatencySketch::new();
        for v in [0.0, 2.0, 40.0, 40.0] {
            a.add(v);
        }
        for v in [0.0, 0.3, 40.0, 7000.0] {
            b.add(v);
        }
        let before = a.clone();
        a.merge(&b);
        a.subtract(&b);
        assert_eq!(a.count(), before.count());
        for q in [0.0, 0.25, 0.5, 0.95, 1.0] {
            assert_eq!(a.quantile(q), before.quantile(q));
        }
        a.add(123.0);
        a.remove(123.0);
        assert_eq!(a.quantile(0.99), before.quantile(0.99));
        // Never below zero: what was not added is not taken out.
        let mut c = LatencySketch::new();
        c.add(5.0);
        c.remove(9000.0);
        c.subtract(&b);
        assert_eq!(c.count(), 1);
        c.remove(5.0);
        assert!(c.is_empty());
        assert_eq!(c, LatencySketch::new());
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut s = LatencySketch::new();
        for v in [0.0, 0.5, 3.0, 3.0, 1e6] {
            s.add(v);
        }
        let mut out = Vec::new();
        s.encode(&mut out);
        let d = LatencySketch::decode(&mut Reader::new(&out)).unwrap();
        assert_eq!(d.count(), s.count());
        assert_eq!(d.quantile(0.5), s.quantile(0.5));
        assert!(LatencySketch::decode(&mut Reader::new(&[0, 5, 1])).is_err());
        assert!(LatencySketch::decode(&mut Reader::new(&[0, 1, 0xfe, 0xff, 0x7f, 1])).is_err());
    }
}
