//! Random identifiers and secrets from the thread-local CSPRNG.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `n` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::fill(&mut b[..]);
    b
}

/// `len` characters of base62. Each character carries log2(62) ≈ 5.95 bits;
/// rejection sampling keeps the distribution uniform.
pub fn base62(len: usize) -> String {
    sample(BASE62, len)
}

/// `len` characters of lowercase base36, safe in tenant ids and paths.
pub fn base36(len: usize) -> String {
    sample(BASE36, len)
}

fn sample(alphabet: &[u8], len: usize) -> String {
    // Largest multiple of the alphabet size that fits in a byte: bytes at or
    // above it are rejected so every symbol is equally likely.
    let cutoff = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in bytes::<64>() {
            if (b as usize) < cutoff {
                out.push(alphabet[b as usize % alphabet.len()] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// A prefixed random id: `t_`, `u_`, `k_`... followed by 16 base36
/// characters (≈ 82 bits: collisions are not a practical concern).
pub fn id(prefix: &str) -> String {
    format!("{prefix}_{}", base36(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_uniqueness() {
        let a = base62(43);
        assert_eq!(a.len(), 43);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, base62(43));
        let t = id("t");
        assert!(pulsestream_storage::TenantId::new(&t).is_some());
        assert_eq!(t.len(), 18);
    }
}
