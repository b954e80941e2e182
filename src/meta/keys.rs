//! API keys: stored by id with the hash indexed; the in-memory index is
//! updated after each commit so creation and revocation apply at once.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{
    API_KEY_HASHES, API_KEYS, ApiKeyRecord, Meta, MetaError, MetaResult, decode, encode, get_json,
    key_entry, page_json,
};

pub(super) fn insert_key(txn: &WriteTransaction, k: &ApiKeyRecord) -> MetaResult<()> {
    txn.open_table(API_KEY_HASHES)?
        .insert(k.hash.as_str(), k.id.as_str())?;
    txn.open_table(API_KEYS)?
        .insert(k.id.as_str(), encode(k)?.as_slice())?;
    Ok(())
}

impl Meta {
    pub fn create_key(&self, k: &ApiKeyRecord) -> MetaResult<()> {
        let txn = self.db().begin_write()?;
        insert_key(&txn, k)?;
        txn.commit()?;
        if let Some((hash, entry)) = key_entry(k) {
            self.inner.keys.write().insert(hash, Arc::new(entry));
        }
        Ok(())
    }

    /// The key `id` if it belongs to `tenant`.
    pub fn get_key(&self, tenant: &str, id: &str) -> MetaResult<Option<ApiKeyRecord>> {
        let txn = self.db().begin_read()?;
        let k: Option<ApiKeyRecord> = get_json(&txn.open_table(API_KEYS)?, "api_keys", id)?;
        Ok(k.filter(|k| k.tenant == tenant))
    }

    pub fn list_keys(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> MetaResult<(Vec<ApiKeyRecord>, Option<String>)> {
        let txn = self.db().begin_read()?;
        page_json(
            &txn.open_table(API_KEYS)?,
            "api_keys",
            after,
            limit,
            |k: &ApiKeyRecord| k.tenant == tenant,
        )
    }

    /// Revokes (deletes) key `id` of `tenant`; 404 when it is not the
    /// tenant's. Refused from the next request on.
    pub fn revoke_key(&self, tenant: &str, id: &str) -> MetaResult<ApiKeyRecord> {
        let txn = self.db().begin_write()?;
        let rec = {
            let mut keys = txn.open_table(API_KEYS)?;
            let rec: Option<ApiKeyRecord> = match keys.get(id)? {
                Some(v) => Some(decode("api_keys", id, v.value())?),
                None => None,
            };
            let rec = rec
                .filter(|r| r.tenant == tenant)
                .ok_or_else(|| MetaError::NotFound {
                    what: "api key",
                    id: id.to_owned(),
                })?;
            keys.remove(id)?;
            txn.open_table(API_KEY_HASHES)?.remove(rec.hash.as_str())?;
            rec
        };
        txn.commit()?;
        if let Some((hash, _)) = key_entry(&rec) {
            self.inner.keys.write().remove(&hash);
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;
    use super::*;
    use crate::auth::{Scope, apikey};

    fn key(id: &str, tenant: &str, plain: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.into(),
            tenant: tenant.into(),
            name: "agents".into(),
            scopes: vec![Scope::Ingest],
            hash: hex::encode(apikey::hash(plain)),
            prefix: plain[..8].into(),
            created_at: 0,
            created_by: None,
        }
    }

    #[test]
    fn create_lookup_revoke_and_reload() {
        let (dir, m) = test_meta();
        let plain = apikey::generate();
        m.create_key(&key("k_1", "t_a", &plain)).expect("create");
        let hit = m.lookup_key(&apikey::hash(&plain)).expect("cached");
        assert_eq!(hit.tenant.as_str(), "t_a");
        assert!(m.get_key("t_b", "k_1").expect("q").is_none());
        assert!(matches!(
            m.revoke_key("t_b", "k_1"),
            Err(MetaError::NotFound { .. })
        ));

        // The index survives a reopen.
        drop(m);
        let m = Meta::open(dir.path()).expect("reopen");
        assert!(m.lookup_key(&apikey::hash(&plain)).is_some());
        m.revoke_key("t_a", "k_1").expect("revoke");
        assert!(m.lookup_key(&apikey::hash(&plain)).is_none());
        assert!(m.list_keys("t_a", None, 10).expect("list").0.is_empty());
    }
}
