//! The records kept in `meta.redb`, stored as JSON values. Field names are
//! the on-disk format: add fields with `#[serde(default)]`, never rename.

use serde::{Deserialize, Serialize};

use crate::auth::{Role, Scope};

/// A tenant's limits as the hot path needs them (in memory, cheap to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Events older than this are dropped and rejected at ingest.
    pub retention_days: u32,
    /// Sustained events/s allowed; 0 means no limit.
    pub rate_limit_eps: u64,
    /// Token-bucket size in events; 0 means equal to `rate_limit_eps`.
    pub rate_limit_burst: u64,
    /// Events per UTC day; 0 means no quota.
    pub quota_events_per_day: u64,
    /// A disabled tenant's credentials are refused (403).
    pub disabled: bool,
    /// The Apdex threshold (ms) for `apdex` queries that name none.
    pub apdex_t_ms: u32,
}

/// A tenant. Rendered exactly as the contract's tenant object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub retention_days: u32,
    pub rate_limit_eps: u64,
    pub rate_limit_burst: u64,
    pub quota_events_per_day: u64,
    pub disabled: bool,
    /// Microseconds since the epoch.
    pub created_at: i64,
    /// The Apdex threshold `apdex` queries use when they name none, in ms.
    #[serde(default = "default_apdex_t_ms")]
    pub apdex_t_ms: u32,
}

/// The contract's default Apdex threshold (records written before the
/// setting existed read as this).
pub fn default_apdex_t_ms() -> u32 {
    (pulsestream_storage::query::DEFAULT_APDEX_T_MICROS / 1000) as u32
}

impl Tenant {
    pub fn limits(&self) -> TenantLimits {
        TenantLimits {
            retention_days: self.retention_days,
            rate_limit_eps: self.rate_limit_eps,
            rate_limit_burst: self.rate_limit_burst,
            quota_events_per_day: self.quota_events_per_day,
            disabled: self.disabled,
            apdex_t_ms: self.apdex_t_ms,
        }
    }
    /// The contract's JSON shape.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "retention_days": self.retention_days,
            "rate_limit_eps": self.rate_limit_eps,
            "rate_limit_burst": self.rate_limit_burst,
            "quota_events_per_day": self.quota_events_per_day,
            "disabled": self.disabled,
            "created_at": rfc3339(self.created_at),
            "apdex_t_ms": self.apdex_t_ms,
        })
    }
}

/// A user. `tenant` is `None` only for the platform administrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub tenant: Option<String>,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: Role,
    #[serde(default)]
    pub name: Option<String>,
    pub created_at: i64,
    /// Consecutive failed logins since the last success or lock.
    #[serde(default)]
    pub failed_logins: u32,
    /// Logins are refused (423) until this time (micros).
    #[serde(default)]
    pub locked_until: Option<i64>,
}

impl User {
    /// The public shape (`{"id", "email", "role", ...}`), never the hash.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "name": self.name,
            "tenant_id": self.tenant,
            "created_at": rfc3339(self.created_at),
        })
    }
}

/// An API key: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// First characters of the key, so people can tell keys apart.
    pub prefix: String,
    pub created_at: i64,
    #[serde(default)]
    pub created_by: Option<String>,
}

impl ApiKeyRecord {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "scopes": self.scopes,
            "prefix": self.prefix,
            "created_at": rfc3339(self.created_at),
            "created_by": self.created_by,
        })
    }
}

/// One refresh token (by hash). Used tokens are kept until they expire so
/// that their reuse can be detected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub family: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used: bool,
}

/// A chain of rotated refresh tokens from one login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshFamily {
    pub id: String,
    pub user_id: String,
    pub revoked: bool,
    pub created_at: i64,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: i64,
    pub tenant: Option<String>,
    /// Email of the user, `key:<id>` for a key, or `system`/`cli`.
    pub actor: String,
    /// `login`, `login_failed`, `api_key.create`, `user.delete`, ...
    pub action: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

impl AuditEntry {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.seq.to_string(),
            "at": rfc3339(self.at),
            "tenant_id": self.tenant,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        })
    }
}

/// RFC 3339 with milliseconds, UTC (`2026-11-25T10:00:00.123Z`).
pub fn rfc3339(micros: i64) -> String {
    let nanos = i128::from(micros) * 1000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        }
        Err(_) => String::from("1970-01-01T00:00:00.000Z"),
    }
}

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    pulsestream_storage::Micros::now().0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_millis_and_z() {
        assert_eq!(rfc3339(1_764_064_800_123_456), "2025-11-25T10:00:00.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
