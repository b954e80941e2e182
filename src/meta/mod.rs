//! The appliance's metadata in redb (`<data-dir>/meta.redb`): tenants,
//! users, API keys, refresh-token families, saved dashboard configs and the
//! audit log, plus the in-memory indexes the hot path reads (API key hash →
//! key, tenant → limits).
//!
//! This module owns the on-disk layout of metadata (tables below, JSON
//! values in `records`) and keeps the in-memory indexes in step with it:
//! every write updates the index after its transaction commits, so a
//! revoked key is refused from the next request on. It never decides who
//! may do something (handlers and `auth` do).
//!
//! Tables (all `&str` keys):
//! - `tenants`: tenant id → `Tenant`; `tenant_names`: lowercase name → id
//! - `users`: user id → `User`; `user_emails`: lowercase email → user id
//! - `api_keys`: key id → `ApiKeyRecord`; `api_key_hashes`: hex hash → key id
//! - `refresh_tokens`: hex hash → `RefreshToken`; `refresh_families`: id → `RefreshFamily`
//! - `dashboards`: user id → the saved JSON document
//! - `audit`: `{seq:020}` → `AuditEntry`; `audit_by_tenant`: `{tenant}/{seq:020}` → ""
//! - `settings`: name → value (`audit_seq`)

mod audit;
pub mod audit_fold;
mod dashboards;
pub mod fsutil;
mod keys;
pub mod records;
mod tenants;
mod tokens;
mod users;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::Scope;
use crate::auth::apikey::KeyHash;
pub use records::{
    ApiKeyRecord, AuditEntry, RefreshFamily, RefreshToken, Tenant, TenantLimits, User,
    default_apdex_t_ms, now_micros, rfc3339,
};
pub use tokens::RefreshOutcome;

/// Largest saved dashboard config (bytes).
pub fn dashboards_limit() -> usize {
    dashboards::MAX_DASHBOARD_CONFIG_BYTES
}
pub use users::LoginState;

/// File name of the metadata database inside the data dir.
pub const META_FILE: &str = "meta.redb";

type Json = TableDefinition<'static, &'static str, &'static [u8]>;
type Index = TableDefinition<'static, &'static str, &'static str>;

const TENANTS: Json = TableDefinition::new("tenants");
const TENANT_NAMES: Index = TableDefinition::new("tenant_names");
const USERS: Json = TableDefinition::new("users");
const USER_EMAILS: Index = TableDefinition::new("user_emails");
const API_KEYS: Json = TableDefinition::new("api_keys");
const API_KEY_HASHES: Index = TableDefinition::new("api_key_hashes");
const REFRESH_TOKENS: Json = TableDefinition::new("refresh_tokens");
const REFRESH_FAMILIES: Json = TableDefinition::new("refresh_families");
const DASHBOARDS: Json = TableDefinition::new("dashboards");
const AUDIT: Json = TableDefinition::new("audit");
const AUDIT_BY_TENANT: Index = TableDefinition::new("audit_by_tenant");
const SETTINGS: Index = TableDefinition::new("settings");

/// Metadata failures.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Another process (a running server) has the database open.
    #[error("{0} is in use by another process (is a server running on this data dir?)")]
    InUse(PathBuf),
    /// redb failed (I/O, corruption, transaction).
    #[error("metadata database error: {0}")]
    Db(String),
    /// A stored value did not decode.
    #[error("corrupted metadata record {table}/{key}: {detail}")]
    Corrupt {
        table: &'static str,
        key: String,
        detail: String,
    },
    /// No such record (for this tenant).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A uniqueness rule was broken (email, tenant name).
    #[error("{0}")]
    Conflict(String),
}

pub type MetaResult<T> = Result<T, MetaError>;

macro_rules! db_err {
    ($($t:ty),+) => {$(
        impl From<$t> for MetaError {
            fn from(e: $t) -> Self { MetaError::Db(e.to_string()) }
        }
    )+};
}
db_err!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// An API key as the hot path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: String,
    pub tenant: pulsestream_storage::TenantId,
    pub scopes: Vec<Scope>,
}

/// Handle to the metadata; cheap to clone.
#[derive(Clone)]
pub struct Meta {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Key hash → key: the O(1) check every ingest request makes.
    keys: RwLock<HashMap<KeyHash, Arc<KeyEntry>>>,
    /// Tenant id → limits, for rate limiting and disabled checks.
    tenants: RwLock<HashMap<String, TenantLimits>>,
}

impl Meta {
    /// Opens (creating) `<dir>/meta.redb` and loads the in-memory indexes.
    pub fn open(dir: &Path) -> MetaResult<Meta> {
        let path = dir.join(META_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(MetaError::InUse(path)),
            Err(e) => return Err(MetaError::Db(format!("{}: {e}", path.display()))),
        };
        let txn = db.begin_write()?;
        for t in [
            TENANTS,
            USERS,
            API_KEYS,
            REFRESH_TOKENS,
            REFRESH_FAMILIES,
            DASHBOARDS,
            AUDIT,
        ] {
            txn.open_table(t)?;
        }
        for t in [
            TENANT_NAMES,
            USER_EMAILS,
            API_KEY_HASHES,
            AUDIT_BY_TENANT,
            SETTINGS,
        ] {
            txn.open_table(t)?;
        }
        txn.commit()?;
        let meta = Meta {
            inner: Arc::new(Inner {
                db,
                keys: RwLock::new(HashMap::new()),
                tenants: RwLock::new(HashMap::new()),
            }),
        };
        meta.reload_indexes()?;
        Ok(meta)
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }

    /// Rebuilds both in-memory indexes from the tables.
    fn reload_indexes(&self) -> MetaResult<()> {
        let txn = self.db().begin_read()?;
        let mut keys = HashMap::new();
        let table = txn.open_table(API_KEYS)?;
        for row in table.iter()? {
            let (k, v) = row?;
            let rec: ApiKeyRecord = decode("api_keys", k.value(), v.value())?;
            if let Some((hash, entry)) = key_entry(&rec) {
                keys.insert(hash, Arc::new(entry));
            }
        }
        let mut tenants = HashMap::new();
        let table = txn.open_table(TENANTS)?;
        for row in table.iter()? {
            let (k, v) = row?;
            let t: Tenant = decode("tenants", k.value(), v.value())?;
            tenants.insert(t.id.clone(), t.limits());
        }
        *self.inner.keys.write() = keys;
        *self.inner.tenants.write() = tenants;
        Ok(())
    }

    /// The key with this hash, if it exists and is not revoked. O(1), no I/O.
    pub fn lookup_key(&self, hash: &KeyHash) -> Option<Arc<KeyEntry>> {
        self.inner.keys.read().get(hash).cloned()
    }

    /// A tenant's limits, from memory.
    pub fn tenant_limits(&self, tenant: &str) -> Option<TenantLimits> {
        self.inner.tenants.read().get(tenant).copied()
    }
}

fn key_entry(rec: &ApiKeyRecord) -> Option<(KeyHash, KeyEntry)> {
    let bytes = hex::decode(&rec.hash).ok()?;
    let hash: KeyHash = bytes.try_into().ok()?;
    let tenant = pulsestream_storage::TenantId::new(&rec.tenant)?;
    Some((
        hash,
        KeyEntry {
            id: rec.id.clone(),
            tenant,
            scopes: rec.scopes.clone(),
        },
    ))
}

fn decode<T: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8]) -> MetaResult<T> {
    serde_json::from_slice(bytes).map_err(|e| MetaError::Corrupt {
        table,
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> MetaResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| MetaError::Db(format!("encode: {e}")))
}

/// Reads and decodes one JSON record.
fn get_json<T, Tb>(table: &Tb, name: &'static str, key: &str) -> MetaResult<Option<T>>
where
    T: DeserializeOwned,
    Tb: ReadableTable<&'static str, &'static [u8]>,
{
    match table.get(key)? {
        Some(v) => decode(name, key, v.value()).map(Some),
        None => Ok(None),
    }
}

/// Lists JSON records in key order after `after`, up to `limit` matching
/// `keep`; returns the page and the cursor for the next one.
fn page_json<T, Tb>(
    table: &Tb,
    name: &'static str,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> MetaResult<(Vec<T>, Option<String>)>
where
    T: DeserializeOwned,
    Tb: ReadableTable<&'static str, &'static [u8]>,
{
    use std::ops::Bound;
    let lower = match after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Unbounded,
    };
    let mut out = Vec::new();
    let mut last_key = None;
    for row in table.range::<&str>((lower, Bound::Unbounded))? {
        let (k, v) = row?;
        let rec: T = decode(name, k.value(), v.value())?;
        if !keep(&rec) {
            continue;
        }
        if out.len() == limit {
            return Ok((out, last_key));
        }
        last_key = Some(k.value().to_owned());
        out.push(rec);
    }
    Ok((out, None))
}

#[cfg(test)]
pub(crate) fn test_meta() -> (tempfile::TempDir, Meta) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Meta::open(dir.path()).expect("open");
    (dir, meta)
}
