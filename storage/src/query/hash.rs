//! A fast, non-cryptographic hasher for the engine's group tables and
//! distinct-value sets. Keys are small integers the engine itself produced
//! (interned ids, bucket numbers), never attacker-chosen strings, so the
//! DoS resistance of SipHash buys nothing and costs a lot per row.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplier of the Fx hash (a 64-bit odd constant with well-spread bits).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;
pub type FxHashSet<K> = std::collections::HashSet<K, FxBuild>;

/// A well-mixed 64-bit hash of a 64-bit value (splitmix64's finaliser), for
/// distinct counting where the low bits of the raw value are not random.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of a string with good spread (for distinct counting).
pub fn hash_str(s: &str) -> u64 {
    // FNV-1a over the bytes, then mixed: cheap and well distributed once
    // passed through the finaliser.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hashes_spread() {
        let set: FxHashSet<u64> = (0..50_000)
            .map(|i| hash_str(&format!("u-{i:05}")))
            .collect();
        assert_eq!(set.len(), 50_000);
        assert_ne!(mix64(1), mix64(2));
    }
}
