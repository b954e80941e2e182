//! Platform administration of tenants: list, create, read, change limits or
//! disable, and delete with all data.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::TenantId;
use serde::Deserialize;

use super::{
    actor, body, check_email, check_name, check_password, finish, hash_password, list_answer,
    page_params,
};
use crate::app::AppState;
use crate::auth::{Principal, TenantScope};
use crate::http::{ApiError, HttpResponse, empty, json};
use crate::meta::Tenant;

use super::tenant::TenantChanges;

/// `GET /api/v1/admin/tenants` → `{"tenants": [...], "next_cursor"}`.
pub async fn list(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    p.require_platform_admin()?;
    let (limit, cursor) = page_params(&req)?;
    let (tenants, next) = state.meta.list_tenants(cursor.as_deref(), limit)?;
    let items = tenants.iter().map(Tenant::to_json).collect();
    Ok(json(StatusCode::OK, &list_answer("tenants", items, next)))
}

#[derive(Deserialize)]
pub struct NewTenant {
    name: String,
    #[serde(default)]
    owner_email: Option<String>,
    #[serde(default)]
    owner_password: Option<String>,
    #[serde(flatten)]
    limits: serde_json::Map<String, serde_json::Value>,
}

/// `POST /api/v1/admin/tenants` → 201 tenant, plus `api_key` (shown once)
/// and the owner when one was given.
pub async fn create(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    p.require_platform_admin()?;
    let b: NewTenant = body(&state, req).await?;
    let changes: TenantChanges = serde_json::from_value(serde_json::Value::Object(b.limits))
        .map_err(|e| ApiError::bad_request(format!("invalid tenant settings: {e}")))?;
    let mut errors = Vec::new();
    check_name("name", &b.name, &mut errors);
    let owner = match (b.owner_email, b.owner_password) {
        (Some(e), Some(pw)) => {
            check_email("owner_email", &e, &mut errors);
            check_password("owner_password", &pw, &mut errors);
            Some((e, pw))
        }
        (None, None) => None,
        _ => {
            errors.push(crate::http::FieldError::new(
                "owner_email",
                "owner_email and owner_password go together",
            ));
            None
        }
    };
    finish(errors)?;
    changes.validate()?;
    let owner = match owner {
        Some((e, pw)) => Some((e, hash_password(&state, pw).await?)),
        None => None,
    };
    let who = actor(&p);
    let prov = super::tenant::provision(&state.meta, &state.config.limits, &b.name, owner, &who)?;
    let tenant = state.meta.update_tenant(&prov.tenant.id, |t| {
        changes.apply(t);
        Ok(())
    })?;
    state.audit(
        Some(&tenant.id),
        &who,
        "tenant.create",
        Some(&tenant.id),
        Some(tenant.to_json()),
    );
    let mut answer = tenant.to_json();
    if let Some(o) = answer.as_object_mut() {
        o.insert("api_key".into(), prov.key_plain.into());
        if let Some(u) = &prov.owner {
            o.insert(
                "owner".into(),
                serde_json::json!({"id": u.id, "email": u.email, "role": u.role}),
            );
        }
    }
    Ok(json(StatusCode::CREATED, &answer))
}

fn find(state: &AppState, id: &str) -> Result<Tenant, ApiError> {
    state
        .meta
        .get_tenant(id)?
        .ok_or_else(|| ApiError::not_found("tenant not found"))
}

/// `GET /api/v1/admin/tenants/{id}`.
pub async fn get(state: Arc<AppState>, p: Principal, id: &str) -> Result<HttpResponse, ApiError> {
    p.require_platform_admin()?;
    Ok(json(StatusCode::OK, &find(&state, id)?.to_json()))
}

/// `PATCH /api/v1/admin/tenants/{id}`: name, limits, `disabled`.
pub async fn patch(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    p.require_platform_admin()?;
    let changes: TenantChanges = body(&state, req).await?;
    changes.validate()?;
    let t = state.meta.update_tenant(id, |t| {
        changes.apply(t);
        Ok(())
    })?;
    state.audit(
        Some(id),
        &actor(&p),
        "tenant.update",
        Some(id),
        Some(t.to_json()),
    );
    Ok(json(StatusCode::OK, &t.to_json()))
}

/// `DELETE /api/v1/admin/tenants/{id}` → 204. Order matters: first the
/// tenant is disabled (its credentials stop working), then its events are
/// dropped from the store, then its metadata goes. A failure part-way leaves
/// a disabled tenant that the same request can finish deleting.
pub async fn delete(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    p.require_platform_admin()?;
    find(&state, id)?;
    let tenant_id = TenantId::new(id).ok_or_else(|| ApiError::not_found("tenant not found"))?;
    let scope = TenantScope::for_platform_admin(&p, tenant_id)?;
    state.meta.update_tenant(id, |t| {
        t.disabled = true;
        Ok(())
    })?;
    let store = state.store.clone();
    let t = scope.tenant().clone();
    tokio::task::spawn_blocking(move || store.drop_tenant(&t))
        .await
        .map_err(ApiError::internal)??;
    let t = state.meta.delete_tenant(id)?;
    state.alerting.forget_tenant(id)?;
    state.audit(
        None,
        &actor(&p),
        "tenant.delete",
        Some(id),
        Some(serde_json::json!({"name": t.name})),
    );
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The scope of tenant `id` for the platform administrator (404 if absent).
fn admin_scope(state: &AppState, p: &Principal, id: &str) -> Result<TenantScope, ApiError> {
    p.require_platform_admin()?;
    find(state, id)?;
    let tenant = TenantId::new(id).ok_or_else(|| ApiError::not_found("tenant not found"))?;
    TenantScope::for_platform_admin(p, tenant)
}

/// `POST /api/v1/admin/tenants/{id}/api-keys`: as `POST /api/v1/auth/api-keys`,
/// for the platform administrator (online `pulsestream key create`).
pub async fn create_key(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = admin_scope(&state, &p, id)?;
    super::api_keys::create_in(state, req, &p, scope).await
}

/// `POST /api/v1/admin/tenants/{id}/users`: as `POST /api/v1/auth/register/user`,
/// for the platform administrator (online `pulsestream user create`).
pub async fn create_user(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = admin_scope(&state, &p, id)?;
    super::users::register_in(state, req, &p, scope).await
}
