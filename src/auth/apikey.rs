//! API keys: generation and hashing. The plaintext exists only in the
//! answer that creates the key; the store keeps its SHA-256.
//!
//! Format: `psk_` + 43 base62 characters (≈ 256 bits). With that much
//! entropy a plain SHA-256 is safe (no guessing, so no need for a slow
//! hash), and it lets a key check be one hash plus one map lookup.

use sha2::{Digest, Sha256};

/// Prefix of every ingest API key.
pub const KEY_PREFIX: &str = "psk_";

/// Random characters after the prefix: 43 × 5.95 bits ≥ 256 bits.
pub const KEY_RANDOM_CHARS: usize = 43;

/// Keys longer than this are not ours; rejected before hashing.
pub const MAX_KEY_LEN: usize = 128;

/// SHA-256 of a key: what is stored and what the in-memory index is keyed by.
pub type KeyHash = [u8; 32];

/// A new key's plaintext.
pub fn generate() -> String {
    format!("{KEY_PREFIX}{}", super::random::base62(KEY_RANDOM_CHARS))
}

/// Hashes a presented key.
pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// True when `s` looks like one of our keys (cheap pre-check).
pub fn looks_like_key(s: &str) -> bool {
    s.starts_with(KEY_PREFIX) && s.len() <= MAX_KEY_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_unique_and_hash_stably() {
        let k = generate();
        assert!(looks_like_key(&k));
        assert_eq!(k.len(), KEY_PREFIX.len() + KEY_RANDOM_CHARS);
        assert_ne!(k, generate());
        assert_eq!(hash(&k), hash(&k));
        assert_ne!(hash(&k), hash("psk_other"));
    }
}
