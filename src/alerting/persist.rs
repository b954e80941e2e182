//! Alerting's tables in `meta.redb`, one per kind, JSON values keyed
//! `{tenant}/{id}`:
//! - `alert_rules`: the rule document with its times
//! - `alert_channels`, `alert_silences`, `alerts` (with history and the
//!   bookkeeping that keeps notifications exactly-once per transition)
//! - `alert_deliveries`: notifications not yet delivered (retried after a
//!   restart)
//! - `alert_delivery_log`: every attempt, keyed `{tenant}/{at:020}/{id}`
//!
//! An alert's new state and the deliveries its transition queues are
//! written in one transaction: after a crash either both exist or neither,
//! so a transition is never notified twice nor lost.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{Alert, Attempt, Channel, Delivery, Silence};
use crate::meta::{Meta, MetaError, MetaResult};

type Json = TableDefinition<'static, &'static str, &'static [u8]>;

pub const RULES: Json = TableDefinition::new("alert_rules");
pub const CHANNELS: Json = TableDefinition::new("alert_channels");
pub const SILENCES: Json = TableDefinition::new("alert_silences");
pub const ALERTS: Json = TableDefinition::new("alerts");
pub const DELIVERIES: Json = TableDefinition::new("alert_deliveries");
pub const LOG: Json = TableDefinition::new("alert_delivery_log");

/// A rule as stored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredRule {
    pub tenant: String,
    pub id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub doc: Value,
}

/// One write of a batch.
pub enum Write {
    Put(Json, String, Vec<u8>),
    Delete(Json, String),
}

pub fn key(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

pub fn put<T: Serialize>(table: Json, key: String, v: &T) -> Write {
    // Serialising our own plain structs cannot fail.
    Write::Put(table, key, serde_json::to_vec(v).unwrap_or_default())
}

/// Everything alerting keeps, as loaded at start.
#[derive(Default)]
pub struct Loaded {
    pub rules: Vec<StoredRule>,
    pub channels: Vec<Channel>,
    pub silences: Vec<Silence>,
    pub alerts: Vec<Alert>,
    pub deliveries: Vec<Delivery>,
}

fn db_err(e: impl std::fmt::Display) -> MetaError {
    MetaError::Db(e.to_string())
}

/// Alerting's view of the metadata database.
#[derive(Clone)]
pub struct Persist {
    meta: Meta,
}

impl Persist {
    /// Creates the tables if needed.
    pub fn open(meta: Meta) -> MetaResult<Persist> {
        let txn = meta.db().begin_write().map_err(db_err)?;
        for t in [RULES, CHANNELS, SILENCES, ALERTS, DELIVERIES, LOG] {
            txn.open_table(t).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Persist { meta })
    }

    fn all<T: DeserializeOwned>(&self, t: Json, name: &'static str) -> MetaResult<Vec<T>> {
        let txn = self.meta.db().begin_read().map_err(db_err)?;
        let table = txn.open_table(t).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            match serde_json::from_slice(v.value()) {
                Ok(x) => out.push(x),
                // One bad record must not take alerting down: skip it loudly.
                Err(e) => tracing::error!(table = name, key = k.value(), error = %e,
                    "skipping an alerting record that does not decode"),
            }
        }
        Ok(out)
    }

    pub fn load(&self) -> MetaResult<Loaded> {
        Ok(Loaded {
            rules: self.all(RULES, "alert_rules")?,
            channels: self.all(CHANNELS, "alert_channels")?,
            silences: self.all(SILENCES, "alert_silences")?,
            alerts: self.all(ALERTS, "alerts")?,
            deliveries: self.all(DELIVERIES, "alert_deliveries")?,
        })
    }

    /// Applies `writes` in one transaction.
    pub fn write(&self, writes: Vec<Write>) -> MetaResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let txn = self.meta.db().begin_write().map_err(db_err)?;
        for w in writes {
            match w {
                Write::Put(t, k, v) => {
                    txn.open_table(t)
                        .map_err(db_err)?
                        .insert(k.as_str(), v.as_slice())
                        .map_err(db_err)?;
                }
                Write::Delete(t, k) => {
                    txn.open_table(t)
                        .map_err(db_err)?
                        .remove(k.as_str())
                        .map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    pub fn log_attempt(&self, a: &Attempt, tenant: &str) -> MetaResult<()> {
        let k = format!("{tenant}/{:020}/{}", a.at.max(0), a.id);
        self.write(vec![put(LOG, k, a)])
    }

    /// Delivery attempts of `tenant`, newest first, optionally of one
    /// alert; `before` continues a listing (a key from an earlier page).
    pub fn attempts(
        &self,
        tenant: &str,
        alert_id: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> MetaResult<(Vec<Attempt>, Option<String>)> {
        let txn = self.meta.db().begin_read().map_err(db_err)?;
        let table = txn.open_table(LOG).map_err(db_err)?;
        let lo = format!("{tenant}/");
        let hi_default = format!("{tenant}0");
        let hi = before
            .filter(|b| b.starts_with(&lo))
            .map_or(hi_default, str::to_owned);
        let mut out = Vec::new();
        let mut next = None;
        for row in table.range(lo.as_str()..hi.as_str()).map_err(db_err)?.rev() {
            let (k, v) = row.map_err(db_err)?;
            let Ok(a) = serde_json::from_slice::<Attempt>(v.value()) else {
                continue;
            };
            if alert_id.is_some_and(|id| a.alert_id.as_deref() != Some(id)) {
                continue;
            }
            if out.len() == limit {
                next = out
                    .last()
                    .map(|l: &Attempt| format!("{tenant}/{:020}/{}", l.at.max(0), l.id));
                let _ = k;
                break;
            }
            out.push(a);
        }
        Ok((out, next))
    }

    /// Deletes every record of `tenant` from alerting's tables.
    pub fn delete_tenant(&self, tenant: &str) -> MetaResult<()> {
        let lo = format!("{tenant}/");
        let hi = format!("{tenant}0");
        let txn = self.meta.db().begin_write().map_err(db_err)?;
        for t in [RULES, CHANNELS, SILENCES, ALERTS, DELIVERIES, LOG] {
            let mut table = txn.open_table(t).map_err(db_err)?;
            let keys: Vec<String> = table
                .range(lo.as_str()..hi.as_str())
                .map_err(db_err)?
                .filter_map(|r| r.ok().map(|(k, _)| k.value().to_owned()))
                .collect();
            for k in keys {
                table.remove(k.as_str()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)
    }

    /// Deletes log entries older than `cutoff` (epoch micros).
    pub fn prune_log(&self, cutoff: i64) -> MetaResult<u64> {
        let txn = self.meta.db().begin_write().map_err(db_err)?;
        let mut n = 0;
        {
            let mut table = txn.open_table(LOG).map_err(db_err)?;
            let mut doomed = Vec::new();
            for row in table.iter().map_err(db_err)? {
                let (k, v) = row.map_err(db_err)?;
                let old =
                    serde_json::from_slice::<Attempt>(v.value()).map_or(true, |a| a.at < cutoff);
                if old {
                    doomed.push(k.value().to_owned());
                }
            }
            for k in doomed {
                table.remove(k.as_str()).map_err(db_err)?;
                n += 1;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::model::{Matcher, Silence};

    fn silence(tenant: &str, id: &str) -> Silence {
        Silence {
            id: id.into(),
            tenant: tenant.into(),
            matchers: vec![Matcher {
                name: "rule_id".into(),
                value: "r".into(),
            }],
            starts_at: 0,
            ends_at: 1,
            comment: String::new(),
            created_by: "x".into(),
            created_at: 0,
        }
    }

    #[test]
    fn records_survive_reopen_and_a_deleted_tenant_leaves_nothing() {
        let (_d, meta) = crate::meta::test_meta();
        let p = Persist::open(meta).expect("open");
        p.write(vec![
            put(SILENCES, key("t1", "s1"), &silence("t1", "s1")),
            put(SILENCES, key("t1-x", "s2"), &silence("t1-x", "s2")),
        ])
        .expect("write");
        assert_eq!(p.load().expect("load").silences.len(), 2);
        p.delete_tenant("t1").expect("delete");
        let left = p.load().expect("load").silences;
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].tenant, "t1-x",
            "a tenant whose id extends another's is kept"
        );
    }
}
