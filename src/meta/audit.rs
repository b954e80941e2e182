//! The audit log: entries numbered by a sequence kept in `settings`,
//! listed newest first, per tenant or (platform admin) all; pruned by age.
//! An entry changes after it is written only to raise a folded count
//! (`set_audit_detail`, see `handlers::audit_fold`).

use std::ops::Bound;

use redb::{Durability, ReadableDatabase, ReadableTable};

use super::{AUDIT, AUDIT_BY_TENANT, AuditEntry, Meta, MetaResult, SETTINGS, decode, encode};

const SEQ_KEY: &str = "audit_seq";

impl Meta {
    /// Appends an entry; its `seq` is assigned here and returned.
    pub fn audit(&self, mut entry: AuditEntry) -> MetaResult<u64> {
        let txn = self.db().begin_write()?;
        {
            let mut settings = txn.open_table(SETTINGS)?;
            let seq = match settings.get(SEQ_KEY)? {
                Some(v) => v.value().parse::<u64>().unwrap_or(0) + 1,
                None => 1,
            };
            settings.insert(SEQ_KEY, seq.to_string().as_str())?;
            entry.seq = seq;
            let key = format!("{seq:020}");
            txn.open_table(AUDIT)?
                .insert(key.as_str(), encode(&entry)?.as_slice())?;
            if let Some(t) = &entry.tenant {
                txn.open_table(AUDIT_BY_TENANT)?
                    .insert(format!("{t}/{key}").as_str(), "")?;
            }
        }
        txn.commit()?;
        Ok(entry.seq)
    }

    /// Replaces an entry's `detail` (a folded count rising). The commit is
    /// not synced: losing the last seconds of a count in a crash is
    /// harmless, and an fsync per failed login is what folding avoids. The
    /// next durable commit of the database persists it.
    pub fn set_audit_detail(&self, seq: u64, detail: serde_json::Value) -> MetaResult<bool> {
        let mut txn = self.db().begin_write()?;
        txn.set_durability(Durability::None)?;
        let key = format!("{seq:020}");
        let found = {
            let mut table = txn.open_table(AUDIT)?;
            let entry = match table.get(key.as_str())? {
                Some(v) => Some(decode::<AuditEntry>("audit", &key, v.value())?),
                None => None,
            };
            match entry {
                Some(mut e) => {
                    e.detail = Some(detail);
                    table.insert(key.as_str(), encode(&e)?.as_slice())?;
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(found)
    }

    /// Deletes entries recorded before `cutoff` (microseconds), oldest
    /// first, at most `max` of them per call so one transaction stays
    /// small. Returns how many were deleted.
    pub fn prune_audit(&self, cutoff: i64, max: usize) -> MetaResult<usize> {
        let txn = self.db().begin_write()?;
        let mut deleted = 0;
        {
            let mut table = txn.open_table(AUDIT)?;
            let mut index = txn.open_table(AUDIT_BY_TENANT)?;
            let mut doomed: Vec<(String, Option<String>)> = Vec::new();
            // Sequence order is recording order, so the old ones come first.
            for row in table.iter()? {
                let (k, v) = row?;
                let key = k.value().to_owned();
                let e: AuditEntry = decode("audit", &key, v.value())?;
                if e.at >= cutoff || doomed.len() >= max {
                    break;
                }
                doomed.push((key, e.tenant));
            }
            for (key, tenant) in doomed {
                table.remove(key.as_str())?;
                if let Some(t) = tenant {
                    index.remove(format!("{t}/{key}").as_str())?;
                }
                deleted += 1;
            }
        }
        txn.commit()?;
        Ok(deleted)
    }

    /// One entry by its sequence number.
    pub fn get_audit(&self, seq: u64) -> MetaResult<Option<AuditEntry>> {
        let txn = self.db().begin_read()?;
        let key = format!("{seq:020}");
        match txn.open_table(AUDIT)?.get(key.as_str())? {
            Some(v) => decode("audit", &key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Newest first. `tenant` `None` lists every entry (platform admin).
    /// `before` is the cursor (a seq) from the previous page.
    pub fn list_audit(
        &self,
        tenant: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> MetaResult<(Vec<AuditEntry>, Option<String>)> {
        let txn = self.db().begin_read()?;
        let entries = txn.open_table(AUDIT)?;
        let upper_seq = before.map(|b| format!("{b:020}"));
        let mut keys: Vec<String> = Vec::with_capacity(limit + 1);
        match tenant {
            None => {
                let upper = match &upper_seq {
                    Some(u) => Bound::Excluded(u.as_str()),
                    None => Bound::Unbounded,
                };
                for row in entries.range::<&str>((Bound::Unbounded, upper))?.rev() {
                    let (k, _) = row?;
                    keys.push(k.value().to_owned());
                    if keys.len() > limit {
                        break;
                    }
                }
            }
            Some(t) => {
                let index = txn.open_table(AUDIT_BY_TENANT)?;
                let lower = format!("{t}/");
                let upper = match &upper_seq {
                    Some(u) => format!("{t}/{u}"),
                    // '0' follows '/', so this bounds the tenant's prefix.
                    None => format!("{t}0"),
                };
                for row in index
                    .range::<&str>((
                        Bound::Included(lower.as_str()),
                        Bound::Excluded(upper.as_str()),
                    ))?
                    .rev()
                {
                    let (k, _) = row?;
                    keys.push(k.value()[lower.len()..].to_owned());
                    if keys.len() > limit {
                        break;
                    }
                }
            }
        }
        let more = keys.len() > limit;
        keys.truncate(limit);
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Some(v) = entries.get(k.as_str())? {
                out.push(decode::<AuditEntry>("audit", k, v.value())?);
            }
        }
        let next = if more {
            out.last().map(|e| e.seq.to_string())
        } else {
            None
        };
        Ok((out, next))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;
    use super::*;

    fn entry(tenant: Option<&str>, action: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: 0,
            tenant: tenant.map(Into::into),
            actor: "a@b".into(),
            action: action.into(),
            target: None,
            detail: None,
        }
    }

    #[test]
    fn newest_first_per_tenant_with_cursor() {
        let (_d, m) = test_meta();
        m.audit(entry(Some("t_a"), "one")).expect("1");
        m.audit(entry(Some("t_b"), "other")).expect("2");
        m.audit(entry(Some("t_a"), "two")).expect("3");
        m.audit(entry(Some("t_a"), "three")).expect("4");
        m.audit(entry(None, "platform")).expect("5");
        let (page, next) = m.list_audit(Some("t_a"), None, 2).expect("list");
        let actions: Vec<_> = page.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["three", "two"]);
        let cursor: u64 = next.expect("more").parse().expect("seq");
        let (page, next) = m.list_audit(Some("t_a"), Some(cursor), 2).expect("list");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].action, "one");
        assert!(next.is_none());
        let (all, _) = m.list_audit(None, None, 100).expect("all");
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].action, "platform");
        assert_eq!(m.get_audit(2).expect("q").expect("entry").action, "other");
        assert!(m.get_audit(99).expect("q").is_none());
    }

    #[test]
    fn prune_drops_old_entries_and_their_index() {
        let (_d, m) = test_meta();
        for (at, t) in [(10, Some("t_a")), (20, None), (30, Some("t_a")), (40, None)] {
            let mut e = entry(t, "x");
            e.at = at;
            m.audit(e).expect("audit");
        }
        assert_eq!(m.prune_audit(35, 1).expect("prune"), 1);
        assert_eq!(m.prune_audit(35, 100).expect("prune"), 2);
        assert_eq!(m.prune_audit(35, 100).expect("prune"), 0);
        let (all, _) = m.list_audit(None, None, 100).expect("all");
        assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), [40]);
        let (ta, _) = m.list_audit(Some("t_a"), None, 100).expect("t_a");
        assert!(ta.is_empty());
    }

    #[test]
    fn detail_can_be_replaced() {
        let (_d, m) = test_meta();
        let seq = m.audit(entry(None, "login_failed")).expect("audit");
        assert!(
            m.set_audit_detail(seq, serde_json::json!({"count": 3}))
                .expect("set")
        );
        let e = m.get_audit(seq).expect("get").expect("entry");
        assert_eq!(e.detail, Some(serde_json::json!({"count": 3})));
        assert!(!m.set_audit_detail(999, serde_json::json!({})).expect("set"));
    }
}
