//! Fast hashers. `FxHasher` for the engine's group tables and
//! distinct-value sets, whose keys are small integers the engine itself
//! produced (interned ids, bucket numbers), never attacker-chosen strings,
//! so the DoS resistance of SipHash buys nothing and costs a lot per row.
//! `SeededHash` for strings from events, keyed per process.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

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

/// The hash for strings that come from outside (interning in active
/// segments, dictionaries and rollup keys in the segment writer): eight bytes per step (multiply-rotate), seeded
/// with a per-process random key and finished with a full avalanche, so
/// bucket positions cannot be predicted without the key. SipHash (std's
/// default) cost a fifth of the append path's CPU here; this is several
/// times cheaper. A full 64-bit collision does not degrade anything: the
/// index then falls back to a SipHash map (`StrBuilder::collided`).
#[derive(Clone, Copy)]
pub struct SeededHash {
    seed: u64,
}

impl Default for SeededHash {
    fn default() -> SeededHash {
        SeededHash {
            seed: BuildHasher::hash_one(&std::hash::RandomState::new(), 0x5eed_u64),
        }
    }
}

pub struct SeededHasher(u64);

/// Odd multiplier with well-spread bits (from FxHash).
const MIX: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(MIX);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(MIX);
        }
        self.0 = (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(MIX);
    }
    fn finish(&self) -> u64 {
        // murmur3's fmix64: every input bit affects every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl BuildHasher for SeededHash {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.seed)
    }
}

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
    fn seeded_hash_separates_lengths_and_values() {
        let k = SeededHash::default();
        assert_eq!(k.hash_one("abc"), k.hash_one("abc"));
        assert_ne!(k.hash_one("a"), k.hash_one("a\0"));
        assert_ne!(k.hash_one("12345678"), k.hash_one("12345678\0"));
        assert_ne!(SeededHash::default().seed, k.seed, "keys are per instance");
    }

    #[test]
    fn string_hashes_spread() {
        let set: FxHashSet<u64> = (0..50_000)
            .map(|i| hash_str(&format!("u-{i:05}")))
            .collect();
        assert_eq!(set.len(), 50_000);
        assert_ne!(mix64(1), mix64(2));
    }
}
