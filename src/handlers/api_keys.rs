//! API keys of a tenant (admin role). The key's plaintext appears only in
//! the creation answer.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::{actor, body, check_name, finish, list_answer, page_params};
use crate::app::AppState;
use crate::auth::{Principal, Role, Scope, TenantScope};
use crate::http::{ApiError, FieldError, HttpResponse, empty, json};
use crate::meta::{ApiKeyRecord, rfc3339};

#[derive(Deserialize)]
pub struct NewKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// `POST /api/v1/auth/api-keys` → 201 `{"id", "name", "scopes", "key", "created_at"}`.
pub async fn create(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    create_in(state, req, &p, scope).await
}

/// Creates a key in `scope`'s tenant (tenant admins, or the platform
/// administrator through the admin endpoints).
pub async fn create_in(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: &Principal,
    scope: TenantScope,
) -> Result<HttpResponse, ApiError> {
    let b: NewKey = body(&state, req).await?;
    let mut errors = Vec::new();
    let name = b.name.unwrap_or_else(|| "api key".to_owned());
    check_name("name", &name, &mut errors);
    let mut scopes = Vec::new();
    for (i, s) in b
        .scopes
        .unwrap_or_else(|| vec!["ingest".to_owned()])
        .iter()
        .enumerate()
    {
        match Scope::parse(s) {
            Some(sc) if !scopes.contains(&sc) => scopes.push(sc),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("scopes[{i}]"),
                "must be \"ingest\" or \"read\"",
            )),
        }
    }
    if scopes.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("scopes", "must not be empty"));
    }
    finish(errors)?;
    let (rec, plain) = super::tenant::new_key(scope.as_str(), name.trim(), scopes, &actor(p));
    state.meta.create_key(&rec)?;
    state.audit(
        Some(scope.as_str()),
        &actor(p),
        "api_key.create",
        Some(&rec.id),
        Some(serde_json::json!({"name": rec.name, "scopes": rec.scopes})),
    );
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({
            "id": rec.id,
            "name": rec.name,
            "scopes": rec.scopes,
            "key": plain,
            "prefix": rec.prefix,
            "created_at": rfc3339(rec.created_at),
        }),
    ))
}

/// `GET /api/v1/auth/api-keys` → `{"api_keys": [...], "next_cursor"}`.
pub async fn list(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let (limit, cursor) = page_params(&req)?;
    let (keys, next) = state
        .meta
        .list_keys(scope.as_str(), cursor.as_deref(), limit)?;
    let items = keys.iter().map(ApiKeyRecord::to_json).collect();
    Ok(json(StatusCode::OK, &list_answer("api_keys", items, next)))
}

/// `GET /api/v1/auth/api-keys/{id}`.
pub async fn get(state: Arc<AppState>, p: Principal, id: &str) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let k = state
        .meta
        .get_key(scope.as_str(), id)?
        .ok_or_else(|| ApiError::not_found("api key not found"))?;
    Ok(json(StatusCode::OK, &k.to_json()))
}

/// `DELETE /api/v1/auth/api-keys/{id}` → 204; refused from the next request.
pub async fn revoke(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let rec = state.meta.revoke_key(scope.as_str(), id)?;
    state.audit(
        Some(scope.as_str()),
        &actor(&p),
        "api_key.revoke",
        Some(&rec.id),
        Some(serde_json::json!({"name": rec.name})),
    );
    Ok(empty(StatusCode::NO_CONTENT))
}
