//! Tenants: create (optionally with owner and first key, atomically), read,
//! list, update limits, delete with everything the tenant owns.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{
    API_KEY_HASHES, API_KEYS, ApiKeyRecord, DASHBOARDS, Meta, MetaError, MetaResult, TENANT_NAMES,
    TENANTS, Tenant, USER_EMAILS, USERS, User, decode, encode, get_json, key_entry, page_json,
};

impl Meta {
    /// Creates `tenant`, and with it `owner` and `key` when given, in one
    /// transaction. 409 when the name (case-insensitive) or the owner's
    /// email is taken.
    pub fn create_tenant(
        &self,
        tenant: &Tenant,
        owner: Option<&User>,
        key: Option<&ApiKeyRecord>,
    ) -> MetaResult<()> {
        let txn = self.db().begin_write()?;
        {
            let mut names = txn.open_table(TENANT_NAMES)?;
            let lname = tenant.name.to_lowercase();
            if names.get(lname.as_str())?.is_some() {
                return Err(MetaError::Conflict(format!(
                    "a tenant named {:?} already exists",
                    tenant.name
                )));
            }
            names.insert(lname.as_str(), tenant.id.as_str())?;
            let mut tenants = txn.open_table(TENANTS)?;
            tenants.insert(tenant.id.as_str(), encode(tenant)?.as_slice())?;
        }
        if let Some(u) = owner {
            super::users::insert_user(&txn, u)?;
        }
        if let Some(k) = key {
            super::keys::insert_key(&txn, k)?;
        }
        txn.commit()?;
        self.inner
            .tenants
            .write()
            .insert(tenant.id.clone(), tenant.limits());
        if let Some((hash, entry)) = key.and_then(key_entry) {
            self.inner
                .keys
                .write()
                .insert(hash, std::sync::Arc::new(entry));
        }
        Ok(())
    }

    pub fn get_tenant(&self, id: &str) -> MetaResult<Option<Tenant>> {
        let txn = self.db().begin_read()?;
        get_json(&txn.open_table(TENANTS)?, "tenants", id)
    }

    /// A page of tenants in id order.
    pub fn list_tenants(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> MetaResult<(Vec<Tenant>, Option<String>)> {
        let txn = self.db().begin_read()?;
        page_json(&txn.open_table(TENANTS)?, "tenants", after, limit, |_| true)
    }

    /// Applies `change` to the tenant and stores it; 404 if absent, 409 if a
    /// rename collides.
    pub fn update_tenant(
        &self,
        id: &str,
        change: impl FnOnce(&mut Tenant) -> Result<(), MetaError>,
    ) -> MetaResult<Tenant> {
        let txn = self.db().begin_write()?;
        let updated = {
            let mut tenants = txn.open_table(TENANTS)?;
            let mut t: Tenant =
                get_json(&tenants, "tenants", id)?.ok_or_else(|| MetaError::NotFound {
                    what: "tenant",
                    id: id.to_owned(),
                })?;
            let old_name = t.name.to_lowercase();
            change(&mut t)?;
            t.id = id.to_owned();
            let new_name = t.name.to_lowercase();
            if new_name != old_name {
                let mut names = txn.open_table(TENANT_NAMES)?;
                if names.get(new_name.as_str())?.is_some() {
                    return Err(MetaError::Conflict(format!(
                        "a tenant named {:?} already exists",
                        t.name
                    )));
                }
                names.remove(old_name.as_str())?;
                names.insert(new_name.as_str(), id)?;
            }
            tenants.insert(id, encode(&t)?.as_slice())?;
            t
        };
        txn.commit()?;
        self.inner
            .tenants
            .write()
            .insert(updated.id.clone(), updated.limits());
        Ok(updated)
    }

    /// Deletes the tenant's metadata: the tenant, its users (and their
    /// dashboards), its API keys. The caller drops its events from the store.
    pub fn delete_tenant(&self, id: &str) -> MetaResult<Tenant> {
        let txn = self.db().begin_write()?;
        let tenant = {
            let mut tenants = txn.open_table(TENANTS)?;
            let t: Tenant = match tenants.remove(id)? {
                Some(v) => decode("tenants", id, v.value())?,
                None => {
                    return Err(MetaError::NotFound {
                        what: "tenant",
                        id: id.to_owned(),
                    });
                }
            };
            txn.open_table(TENANT_NAMES)?
                .remove(t.name.to_lowercase().as_str())?;
            t
        };
        remove_tenant_users(&txn, id)?;
        remove_tenant_keys(&txn, id)?;
        txn.commit()?;
        self.inner.tenants.write().remove(id);
        self.inner
            .keys
            .write()
            .retain(|_, k| k.tenant.as_str() != id);
        Ok(tenant)
    }

    /// Number of tenants (health answer).
    pub fn tenant_count(&self) -> usize {
        self.inner.tenants.read().len()
    }
}

fn remove_tenant_users(txn: &WriteTransaction, tenant: &str) -> MetaResult<()> {
    let mut users = txn.open_table(USERS)?;
    let mut emails = txn.open_table(USER_EMAILS)?;
    let mut dashboards = txn.open_table(DASHBOARDS)?;
    let mut doomed = Vec::new();
    for row in users.iter()? {
        let (k, v) = row?;
        let u: User = decode("users", k.value(), v.value())?;
        if u.tenant.as_deref() == Some(tenant) {
            doomed.push(u);
        }
    }
    for u in doomed {
        users.remove(u.id.as_str())?;
        emails.remove(u.email.to_lowercase().as_str())?;
        dashboards.remove(u.id.as_str())?;
    }
    Ok(())
}

fn remove_tenant_keys(txn: &WriteTransaction, tenant: &str) -> MetaResult<()> {
    let mut keys = txn.open_table(API_KEYS)?;
    let mut hashes = txn.open_table(API_KEY_HASHES)?;
    let mut doomed = Vec::new();
    for row in keys.iter()? {
        let (k, v) = row?;
        let rec: ApiKeyRecord = decode("api_keys", k.value(), v.value())?;
        if rec.tenant == tenant {
            doomed.push(rec);
        }
    }
    for rec in doomed {
        keys.remove(rec.id.as_str())?;
        hashes.remove(rec.hash.as_str())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;
    use super::*;

    pub(crate) fn tenant(id: &str, name: &str) -> Tenant {
        Tenant {
            id: id.into(),
            name: name.into(),
            retention_days: 30,
            rate_limit_eps: 0,
            rate_limit_burst: 0,
            quota_events_per_day: 0,
            disabled: false,
            created_at: 1,
            apdex_t_ms: 300,
        }
    }

    #[test]
    fn create_list_update_delete() {
        let (_d, m) = test_meta();
        m.create_tenant(&tenant("t_a", "Acme"), None, None)
            .expect("a");
        m.create_tenant(&tenant("t_b", "Beta"), None, None)
            .expect("b");
        let dup = m.create_tenant(&tenant("t_c", "acme"), None, None);
        assert!(matches!(dup, Err(MetaError::Conflict(_))));

        let (page, next) = m.list_tenants(None, 1).expect("list");
        assert_eq!(page.len(), 1);
        assert_eq!(next.as_deref(), Some("t_a"));
        let (page, next) = m.list_tenants(next.as_deref(), 1).expect("list");
        assert_eq!(page[0].id, "t_b");
        assert_eq!(next, None);

        let t = m
            .update_tenant("t_b", |t| {
                t.disabled = true;
                Ok(())
            })
            .expect("update");
        assert!(t.disabled);
        assert!(m.tenant_limits("t_b").expect("cached").disabled);
        assert!(matches!(
            m.update_tenant("t_b", |t| {
                t.name = "ACME".into();
                Ok(())
            }),
            Err(MetaError::Conflict(_))
        ));

        m.delete_tenant("t_a").expect("delete");
        assert!(m.get_tenant("t_a").expect("get").is_none());
        assert!(m.tenant_limits("t_a").is_none());
        assert!(matches!(
            m.delete_tenant("t_a"),
            Err(MetaError::NotFound { .. })
        ));
        // The name is free again.
        m.create_tenant(&tenant("t_d", "Acme"), None, None)
            .expect("reuse");
    }
}
