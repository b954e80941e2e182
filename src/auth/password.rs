//! Password hashing with argon2id (PHC strings) and the password policy.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// The contract's minimum password length (section 8).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Longest password accepted. argon2 would hash anything, but a megabyte
/// "password" is a cheap way to burn CPU; 1 KiB is far beyond any real one.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2id cost parameters (`[auth] argon2_*`).
#[derive(Debug, Clone, Copy)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Hashes and verifies passwords with fixed cost parameters. Verification
/// uses the parameters recorded in the hash, so raising the cost later does
/// not lock anyone out.
#[derive(Clone)]
pub struct PasswordHasherId {
    argon: Argon2<'static>,
}

impl PasswordHasherId {
    pub fn new(cost: PasswordCost) -> Result<Self, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        Ok(PasswordHasherId {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        })
    }

    /// The PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        let salt = super::random::bytes::<16>();
        self.argon
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("password hashing failed: {e}"))
    }

    /// True when `password` matches `phc`. A malformed stored hash is a
    /// mismatch, never a panic.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.argon.verify_password(password.as_bytes(), phc).is_ok()
    }
}

/// Checks the password policy; the message names the rule broken.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = PasswordHasherId::new(PasswordCost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        })
        .expect("params");
        let phc = h.hash("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse battery", &phc));
        assert!(!h.verify("wrong password!", &phc));
        assert!(!h.verify("x", "not a hash"));
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough!").is_ok());
    }
}
