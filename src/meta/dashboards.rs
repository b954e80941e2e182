//! Saved dashboard configs: one JSON document per user.

use redb::ReadableDatabase;

use super::{DASHBOARDS, Meta, MetaError, MetaResult};

/// Largest saved config (contract section 6). A layout with dozens of
/// widgets is a few KiB; 64 KiB bounds what one user can make us store.
pub const MAX_DASHBOARD_CONFIG_BYTES: usize = 64 * 1024;

impl Meta {
    /// The user's saved config (raw JSON), if any.
    pub fn get_dashboard(&self, user_id: &str) -> MetaResult<Option<serde_json::Value>> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(DASHBOARDS)?;
        match table.get(user_id)? {
            Some(v) => {
                serde_json::from_slice(v.value())
                    .map(Some)
                    .map_err(|e| MetaError::Corrupt {
                        table: "dashboards",
                        key: user_id.to_owned(),
                        detail: e.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    /// Replaces the user's config. The caller checks the size limit.
    pub fn put_dashboard(&self, user_id: &str, doc: &serde_json::Value) -> MetaResult<()> {
        let bytes = super::encode(doc)?;
        let txn = self.db().begin_write()?;
        txn.open_table(DASHBOARDS)?
            .insert(user_id, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;

    #[test]
    fn put_then_get() {
        let (_d, m) = test_meta();
        assert!(m.get_dashboard("u_1").expect("q").is_none());
        let doc = serde_json::json!({"widgets": [{"id": "w1"}]});
        m.put_dashboard("u_1", &doc).expect("put");
        assert_eq!(m.get_dashboard("u_1").expect("q"), Some(doc));
    }
}
