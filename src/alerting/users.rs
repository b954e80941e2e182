//! A mergeable distinct-count sketch for `count_distinct_users`: exact for
//! small sets, HyperLogLog beyond. Per-second buckets usually see a handful
//! of users, so the exact form keeps them small; only busy buckets pay for
//! the registers.

/// Distinct hashes kept exactly before switching to registers: 128 × 8
/// bytes equals the register array, so the switch never grows memory.
const EXACT_MAX: usize = 128;
/// log2 of the register count: 1,024 one-byte registers, ≈3.3 % standard
/// error, which is enough to decide a threshold on distinct users.
const P: u32 = 10;
const REGISTERS: usize = 1 << P;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum UserSketch {
    #[default]
    Empty,
    /// Sorted distinct 64-bit hashes.
    Exact(Vec<u64>),
    Registers(Box<[u8]>),
}

/// The 64-bit hash a user id is counted by (FNV-1a then a finaliser, so
/// the low and high bits are both well mixed).
pub fn hash_user(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn set_register(regs: &mut [u8], h: u64) {
    let idx = (h >> (64 - P)) as usize;
    let rest = h << P;
    let rank = (rest.leading_zeros().min(64 - P) + 1) as u8;
    if regs[idx] < rank {
        regs[idx] = rank;
    }
}

impl UserSketch {
    pub fn add(&mut self, h: u64) {
        match self {
            UserSketch::Empty => *self = UserSketch::Exact(vec![h]),
            UserSketch::Exact(v) => {
                if let Err(pos) = v.binary_search(&h) {
                    v.insert(pos, h);
                    if v.len() > EXACT_MAX {
                        self.densify();
                    }
                }
            }
            UserSketch::Registers(r) => set_register(r, h),
        }
    }

    fn densify(&mut self) {
        if let UserSketch::Exact(v) = self {
            let mut regs = vec![0u8; REGISTERS].into_boxed_slice();
            for h in v.iter() {
                set_register(&mut regs, *h);
            }
            *self = UserSketch::Registers(regs);
        }
    }

    pub fn merge(&mut self, other: &UserSketch) {
        match other {
            UserSketch::Empty => {}
            UserSketch::Exact(v) => {
                for h in v {
                    self.add(*h);
                }
            }
            UserSketch::Registers(o) => {
                self.densify();
                match self {
                    UserSketch::Registers(r) => {
                        for (a, b) in r.iter_mut().zip(o.iter()) {
                            *a = (*a).max(*b);
                        }
                    }
                    _ => *self = UserSketch::Registers(o.clone()),
                }
            }
        }
    }

    /// Estimated number of distinct users.
    pub fn estimate(&self) -> f64 {
        match self {
            UserSketch::Empty => 0.0,
            UserSketch::Exact(v) => v.len() as f64,
            UserSketch::Registers(r) => {
                let m = REGISTERS as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = r.iter().map(|x| 2f64.powi(-i32::from(*x))).sum();
                let raw = alpha * m * m / sum;
                let zeros = r.iter().filter(|x| **x == 0).count();
                if raw <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    raw
                }
            }
        }
    }

    /// Heap bytes held (for the memory figure of `/metrics`).
    pub fn heap_bytes(&self) -> usize {
        match self {
            UserSketch::Empty => 0,
            UserSketch::Exact(v) => v.capacity() * 8,
            UserSketch::Registers(_) => REGISTERS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_when_small_and_close_when_large() {
        let mut s = UserSketch::default();
        for i in 0..100 {
            s.add(hash_user(&format!("u-{i}")));
            s.add(hash_user(&format!("u-{i}")));
        }
        assert_eq!(s.estimate(), 100.0);
        let mut big = UserSketch::default();
        for i in 0..20_000 {
            big.add(hash_user(&format!("user-{i}")));
        }
        let e = big.estimate();
        assert!((e - 20_000.0).abs() / 20_000.0 < 0.1, "estimate {e}");
    }

    #[test]
    fn merge_is_a_union() {
        let mut a = UserSketch::default();
        let mut b = UserSketch::default();
        for i in 0..1000 {
            a.add(hash_user(&format!("u{i}")));
        }
        for i in 500..1500 {
            b.add(hash_user(&format!("u{i}")));
        }
        let mut small = UserSketch::default();
        small.add(hash_user("u1"));
        a.merge(&b);
        a.merge(&small);
        let e = a.estimate();
        assert!((e - 1500.0).abs() / 1500.0 < 0.1, "estimate {e}");
    }
}
