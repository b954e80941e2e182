//! Refresh tokens: opaque random strings stored by SHA-256, grouped in
//! families (one per login). Each refresh consumes its token and issues the
//! next of the family; presenting a consumed token again means it leaked,
//! so the whole family is revoked.

use redb::{ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

use super::{
    Meta, MetaResult, REFRESH_FAMILIES, REFRESH_TOKENS, RefreshFamily, RefreshToken, decode,
    encode, get_json,
};
use crate::auth::random;

/// Prefix of refresh tokens (distinct from API keys' `psk_`).
pub const REFRESH_PREFIX: &str = "psr_";

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Valid: here is the user and the token that replaces it.
    Rotated { user_id: String, token: String },
    /// Already used: the family is now revoked.
    Reused,
    /// Unknown, expired or of a revoked family.
    Invalid,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn insert_token(
    txn: &WriteTransaction,
    family: &str,
    user_id: &str,
    expires_at: i64,
) -> MetaResult<String> {
    let token = format!("{REFRESH_PREFIX}{}", random::base62(43));
    let rec = RefreshToken {
        family: family.to_owned(),
        user_id: user_id.to_owned(),
        expires_at,
        used: false,
    };
    txn.open_table(REFRESH_TOKENS)?
        .insert(hash(&token).as_str(), encode(&rec)?.as_slice())?;
    Ok(token)
}

impl Meta {
    /// Starts a new family for a login and returns its first token.
    pub fn issue_refresh(&self, user_id: &str, ttl_micros: i64, now: i64) -> MetaResult<String> {
        let family = RefreshFamily {
            id: random::id("f"),
            user_id: user_id.to_owned(),
            revoked: false,
            created_at: now,
        };
        let txn = self.db().begin_write()?;
        txn.open_table(REFRESH_FAMILIES)?
            .insert(family.id.as_str(), encode(&family)?.as_slice())?;
        let token = insert_token(&txn, &family.id, user_id, now.saturating_add(ttl_micros))?;
        txn.commit()?;
        Ok(token)
    }

    /// Consumes `token` and issues its successor (same family).
    pub fn rotate_refresh(
        &self,
        token: &str,
        ttl_micros: i64,
        now: i64,
    ) -> MetaResult<RefreshOutcome> {
        let h = hash(token);
        let txn = self.db().begin_write()?;
        let outcome = {
            let mut tokens = txn.open_table(REFRESH_TOKENS)?;
            let mut families = txn.open_table(REFRESH_FAMILIES)?;
            let Some(mut rec) = get_json::<RefreshToken, _>(&tokens, "refresh_tokens", &h)? else {
                return Ok(RefreshOutcome::Invalid);
            };
            let Some(mut fam) =
                get_json::<RefreshFamily, _>(&families, "refresh_families", &rec.family)?
            else {
                return Ok(RefreshOutcome::Invalid);
            };
            if fam.revoked || rec.expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            if rec.used {
                fam.revoked = true;
                families.insert(fam.id.as_str(), encode(&fam)?.as_slice())?;
                RefreshOutcome::Reused
            } else {
                rec.used = true;
                tokens.insert(h.as_str(), encode(&rec)?.as_slice())?;
                drop(tokens);
                let next =
                    insert_token(&txn, &fam.id, &rec.user_id, now.saturating_add(ttl_micros))?;
                RefreshOutcome::Rotated {
                    user_id: rec.user_id,
                    token: next,
                }
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Revokes the family of `token` (logout). False if the token is unknown.
    pub fn revoke_refresh_family(&self, token: &str) -> MetaResult<bool> {
        let h = hash(token);
        let txn = self.db().begin_write()?;
        let found = {
            let tokens = txn.open_table(REFRESH_TOKENS)?;
            let mut families = txn.open_table(REFRESH_FAMILIES)?;
            match get_json::<RefreshToken, _>(&tokens, "refresh_tokens", &h)? {
                Some(rec) => {
                    if let Some(mut fam) =
                        get_json::<RefreshFamily, _>(&families, "refresh_families", &rec.family)?
                    {
                        fam.revoked = true;
                        families.insert(fam.id.as_str(), encode(&fam)?.as_slice())?;
                    }
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(found)
    }

    /// Revokes every family of `user_id` (password change, user deletion).
    pub fn revoke_user_refresh(&self, user_id: &str) -> MetaResult<()> {
        let txn = self.db().begin_write()?;
        {
            let mut families = txn.open_table(REFRESH_FAMILIES)?;
            let mut doomed = Vec::new();
            for row in families.iter()? {
                let (k, v) = row?;
                let f: RefreshFamily = decode("refresh_families", k.value(), v.value())?;
                if f.user_id == user_id && !f.revoked {
                    doomed.push(f);
                }
            }
            for mut f in doomed {
                f.revoked = true;
                families.insert(f.id.as_str(), encode(&f)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;
    use super::*;

    #[test]
    fn rotation_and_reuse_detection() {
        let (_d, m) = test_meta();
        let t1 = m.issue_refresh("u_1", 1000, 0).expect("issue");
        let RefreshOutcome::Rotated { user_id, token: t2 } =
            m.rotate_refresh(&t1, 1000, 10).expect("rotate")
        else {
            panic!("expected rotation");
        };
        assert_eq!(user_id, "u_1");
        // Reusing t1 revokes the family: t2 is dead too.
        assert_eq!(
            m.rotate_refresh(&t1, 1000, 20).expect("q"),
            RefreshOutcome::Reused
        );
        assert_eq!(
            m.rotate_refresh(&t2, 1000, 30).expect("q"),
            RefreshOutcome::Invalid
        );
        assert_eq!(
            m.rotate_refresh("psr_nope", 1000, 30).expect("q"),
            RefreshOutcome::Invalid
        );

        let t3 = m.issue_refresh("u_1", 1000, 0).expect("issue");
        assert_eq!(
            m.rotate_refresh(&t3, 1000, 5000).expect("q"),
            RefreshOutcome::Invalid
        );
        let t4 = m.issue_refresh("u_1", 1000, 0).expect("issue");
        assert!(m.revoke_refresh_family(&t4).expect("logout"));
        assert_eq!(
            m.rotate_refresh(&t4, 1000, 1).expect("q"),
            RefreshOutcome::Invalid
        );
        let t5 = m.issue_refresh("u_1", 1000, 0).expect("issue");
        m.revoke_user_refresh("u_1").expect("revoke all");
        assert_eq!(
            m.rotate_refresh(&t5, 1000, 1).expect("q"),
            RefreshOutcome::Invalid
        );
    }
}
