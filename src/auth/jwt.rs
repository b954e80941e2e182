//! JWT access tokens: HS256 with a key generated on first start and kept in
//! the data directory (mode 0600).

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// File in the data dir holding the signing key (hex).
pub const SIGNING_KEY_FILE: &str = "jwt-signing-key";

/// Bytes of signing key: HS256's block size, the most HMAC-SHA256 uses.
const SIGNING_KEY_BYTES: usize = 64;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub email: String,
    /// Tenant id; absent for the platform administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    pub role: super::Role,
    /// Issued at / expires at, seconds since the epoch.
    pub iat: i64,
    pub exp: i64,
    /// Token kind; only `access` is accepted as a bearer token.
    pub typ: String,
}

/// The signing key, ready for both directions.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // No grace after expiry: "expired" means expired.
        validation.leeway = 0;
        validation.algorithms = vec![Algorithm::HS256];
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Loads the key from `dir`, creating it (0600) on first start.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(SIGNING_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let secret = hex::decode(text.trim()).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: not a hex key: {e}", path.display()),
                    )
                })?;
                if secret.len() < 32 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: key shorter than 32 bytes", path.display()),
                    ));
                }
                Ok(Self::from_secret(&secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = super::random::bytes::<SIGNING_KEY_BYTES>();
                crate::meta::fsutil::write_private(&path, hex::encode(secret).as_bytes())?;
                Ok(Self::from_secret(&secret))
            }
            Err(e) => Err(e),
        }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Verifies signature, algorithm (HS256 only: `alg: none` and others are
    /// refused), expiry and kind.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.typ == "access").then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u_1".into(),
            email: "a@b.c".into(),
            tid: Some("t_1".into()),
            role: super::super::Role::Viewer,
            iat: 0,
            exp,
            typ: "access".into(),
        }
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn round_trip_and_tampering() {
        let k = JwtKeys::from_secret(b"0123456789abcdef0123456789abcdef");
        let t = k.sign(&claims(now() + 60)).expect("sign");
        assert_eq!(k.verify(&t).expect("valid").sub, "u_1");

        // Changed claims with the old signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims(now() + 60);
        c.role = super::super::Role::Owner;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).expect("json"));
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(k.verify(&forged).is_none());

        // alg none.
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(k.verify(&format!("{none_header}.{}.", parts[1])).is_none());

        // Expired, other key, garbage.
        assert!(
            k.verify(&k.sign(&claims(now() - 1)).expect("sign"))
                .is_none()
        );
        let other = JwtKeys::from_secret(b"another key another key another k");
        assert!(other.verify(&t).is_none());
        assert!(k.verify("not.a.jwt").is_none());
    }
}
