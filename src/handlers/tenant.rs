//! The caller's own tenant (`/api/v1/auth/tenant/profile`) and tenant
//! provisioning shared by sign-up, platform admin and the CLI.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::{body, check_name, finish};
use crate::app::AppState;
use crate::auth::{Principal, Role, Scope, apikey, random};
use crate::config::LimitsConfig;
use crate::http::{ApiError, FieldError, HttpResponse, json};
use crate::meta::{ApiKeyRecord, Meta, MetaError, Tenant, User, now_micros};

/// Longest retention a tenant can ask for (10 years).
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// Largest Apdex threshold a tenant can set as its default, in ms (one
/// minute; a query may still name any `t` up to the query language's bound).
pub const MAX_TENANT_APDEX_T_MS: u32 = 60_000;

/// A new tenant with its first key (and owner when one was given).
pub struct Provisioned {
    pub tenant: Tenant,
    pub owner: Option<User>,
    pub key: ApiKeyRecord,
    /// The key's plaintext: shown once, never stored.
    pub key_plain: String,
}

/// Creates a tenant with default limits, an optional owner (email and an
/// argon2id hash) and a first `ingest` key, atomically.
pub fn provision(
    meta: &Meta,
    limits: &LimitsConfig,
    name: &str,
    owner: Option<(String, String)>,
    created_by: &str,
) -> Result<Provisioned, MetaError> {
    let now = now_micros();
    let tenant = Tenant {
        id: random::id("t"),
        name: name.trim().to_owned(),
        retention_days: limits.default_retention_days,
        rate_limit_eps: limits.default_rate_limit_eps,
        rate_limit_burst: limits.default_rate_limit_burst,
        quota_events_per_day: limits.default_quota_events_per_day,
        disabled: false,
        created_at: now,
        apdex_t_ms: crate::meta::default_apdex_t_ms(),
    };
    let owner = owner.map(|(email, hash)| User {
        id: random::id("u"),
        tenant: Some(tenant.id.clone()),
        email: email.trim().to_owned(),
        password_hash: hash,
        role: Role::Owner,
        name: None,
        created_at: now,
        failed_logins: 0,
        locked_until: None,
    });
    let (key, key_plain) = new_key(&tenant.id, "default", vec![Scope::Ingest], created_by);
    meta.create_tenant(&tenant, owner.as_ref(), Some(&key))?;
    Ok(Provisioned {
        tenant,
        owner,
        key,
        key_plain,
    })
}

/// A new key record and its plaintext.
pub fn new_key(
    tenant: &str,
    name: &str,
    scopes: Vec<Scope>,
    created_by: &str,
) -> (ApiKeyRecord, String) {
    let plain = apikey::generate();
    let rec = ApiKeyRecord {
        id: random::id("k"),
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        scopes,
        hash: hex::encode(apikey::hash(&plain)),
        // `psk_` plus 4 characters: enough to tell keys apart, useless to guess.
        prefix: plain.chars().take(8).collect(),
        created_at: now_micros(),
        created_by: Some(created_by.to_owned()),
    };
    (rec, plain)
}

/// Changes to a tenant's settings (owner via profile, platform admin via
/// admin endpoints; only the latter may set `disabled`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub retention_days: Option<u32>,
    pub rate_limit_eps: Option<u64>,
    pub rate_limit_burst: Option<u64>,
    pub quota_events_per_day: Option<u64>,
    pub disabled: Option<bool>,
    pub apdex_t_ms: Option<u32>,
}

impl TenantChanges {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if let Some(n) = &self.name {
            check_name("name", n, &mut errors);
        }
        if let Some(r) = self.retention_days
            && !(1..=MAX_RETENTION_DAYS).contains(&r)
        {
            errors.push(FieldError::new(
                "retention_days",
                format!("must be between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        if let Some(t) = self.apdex_t_ms
            && !(1..=MAX_TENANT_APDEX_T_MS).contains(&t)
        {
            errors.push(FieldError::new(
                "apdex_t_ms",
                format!("must be between 1 and {MAX_TENANT_APDEX_T_MS}"),
            ));
        }
        finish(errors)
    }

    pub fn apply(self, t: &mut Tenant) {
        if let Some(n) = self.name {
            t.name = n.trim().to_owned();
        }
        if let Some(v) = self.retention_days {
            t.retention_days = v;
        }
        if let Some(v) = self.rate_limit_eps {
            t.rate_limit_eps = v;
        }
        if let Some(v) = self.rate_limit_burst {
            t.rate_limit_burst = v;
        }
        if let Some(v) = self.quota_events_per_day {
            t.quota_events_per_day = v;
        }
        if let Some(v) = self.disabled {
            t.disabled = v;
        }
        if let Some(v) = self.apdex_t_ms {
            t.apdex_t_ms = v;
        }
    }
}

/// `GET /api/v1/auth/tenant/profile`: any user of the tenant.
pub async fn get(state: Arc<AppState>, p: Principal) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let t = state
        .meta
        .get_tenant(scope.as_str())?
        .ok_or_else(|| ApiError::not_found("tenant not found"))?;
    Ok(json(StatusCode::OK, &t.to_json()))
}

/// `PUT /api/v1/auth/tenant/profile`: owners change name and limits.
pub async fn put(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Owner)?;
    let changes: TenantChanges = body(&state, req).await?;
    if changes.disabled.is_some() {
        return Err(ApiError::forbidden(
            "only the platform administrator can disable a tenant",
        ));
    }
    changes.validate()?;
    let t = state.meta.update_tenant(scope.as_str(), |t| {
        changes.apply(t);
        Ok(())
    })?;
    state.audit(
        Some(scope.as_str()),
        &super::actor(&p),
        "tenant.update",
        Some(scope.as_str()),
        Some(t.to_json()),
    );
    Ok(json(StatusCode::OK, &t.to_json()))
}
