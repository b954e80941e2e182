//! Users of a tenant (admin role): register, list, read, change, delete.
//! Only owners create, change or delete owners.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::{
    actor, body, check_email, check_name, check_password, finish, hash_password, list_answer,
    page_params,
};
use crate::app::AppState;
use crate::auth::{Principal, Role, TenantScope, random};
use crate::http::{ApiError, FieldError, HttpResponse, empty, json};
use crate::meta::{User, now_micros};

#[derive(Deserialize)]
pub struct NewUser {
    email: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn parse_role(field: &str, s: &str, errors: &mut Vec<FieldError>) -> Option<Role> {
    let r = Role::parse(s);
    if r.is_none() {
        errors.push(FieldError::new(
            field,
            "must be one of viewer, admin, owner",
        ));
    }
    r
}

/// The caller's role (for owner-only rules).
fn caller_role(p: &Principal) -> Role {
    match p {
        Principal::User { role, .. } => *role,
        Principal::ApiKey { .. } => Role::Viewer,
    }
}

/// `POST /api/v1/auth/register/user` → 201 `{"id", "email", "role"}`.
pub async fn register(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    register_in(state, req, &p, scope).await
}

/// Creates a user in `scope`'s tenant (tenant admins, or the platform
/// administrator through the admin endpoints).
pub async fn register_in(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: &Principal,
    scope: TenantScope,
) -> Result<HttpResponse, ApiError> {
    let b: NewUser = body(&state, req).await?;
    let mut errors = Vec::new();
    check_email("email", &b.email, &mut errors);
    check_password("password", &b.password, &mut errors);
    let role = match &b.role {
        Some(r) => parse_role("role", r, &mut errors),
        None => Some(Role::Viewer),
    };
    if let Some(n) = &b.name {
        check_name("name", n, &mut errors);
    }
    finish(errors)?;
    let role = role.unwrap_or(Role::Viewer);
    if role == Role::Owner && caller_role(p) < Role::Owner {
        return Err(ApiError::forbidden("only owners can create owners"));
    }
    let hash = hash_password(&state, b.password).await?;
    let user = User {
        id: random::id("u"),
        tenant: Some(scope.as_str().to_owned()),
        email: b.email.trim().to_owned(),
        password_hash: hash,
        role,
        name: b.name.map(|n| n.trim().to_owned()),
        created_at: now_micros(),
        failed_logins: 0,
        locked_until: None,
    };
    state.meta.create_user(&user)?;
    state.audit(
        Some(scope.as_str()),
        &actor(p),
        "user.create",
        Some(&user.id),
        Some(serde_json::json!({"email": user.email, "role": user.role})),
    );
    Ok(json(StatusCode::CREATED, &user.to_json()))
}

/// `GET /api/v1/auth/users` → `{"users": [...], "next_cursor"}`.
pub async fn list(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let (limit, cursor) = page_params(&req)?;
    let (users, next) = state
        .meta
        .list_users(Some(scope.as_str()), cursor.as_deref(), limit)?;
    let items = users.iter().map(User::to_json).collect();
    Ok(json(StatusCode::OK, &list_answer("users", items, next)))
}

/// The user `id` of the caller's tenant, else 404 (never revealing other
/// tenants' users).
fn own_user(state: &AppState, tenant: &str, id: &str) -> Result<User, ApiError> {
    state
        .meta
        .get_user(id)?
        .filter(|u| u.tenant.as_deref() == Some(tenant))
        .ok_or_else(|| ApiError::not_found("user not found"))
}

/// `GET /api/v1/auth/users/{id}`.
pub async fn get(state: Arc<AppState>, p: Principal, id: &str) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let u = own_user(&state, scope.as_str(), id)?;
    Ok(json(StatusCode::OK, &u.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    role: Option<String>,
    email: Option<String>,
    name: Option<String>,
    password: Option<String>,
    /// `false` clears a lockout.
    locked: Option<bool>,
}

/// `PATCH /api/v1/auth/users/{id}`.
pub async fn patch(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let target = own_user(&state, scope.as_str(), id)?;
    let b: UserChanges = body(&state, req).await?;
    let mut errors = Vec::new();
    let role = b
        .role
        .as_deref()
        .and_then(|r| parse_role("role", r, &mut errors));
    if let Some(e) = &b.email {
        check_email("email", e, &mut errors);
    }
    if let Some(n) = &b.name {
        check_name("name", n, &mut errors);
    }
    if let Some(pw) = &b.password {
        check_password("password", pw, &mut errors);
    }
    finish(errors)?;
    let me = caller_role(&p);
    if (target.role == Role::Owner || role == Some(Role::Owner)) && me < Role::Owner {
        return Err(ApiError::forbidden("only owners can change owners"));
    }
    let (my_id, _) = p.require_user()?;
    if my_id == target.id && role.is_some_and(|r| r < target.role) {
        return Err(ApiError::forbidden("you cannot lower your own role"));
    }
    let hash = match b.password {
        Some(pw) => Some(hash_password(&state, pw).await?),
        None => None,
    };
    let password_changed = hash.is_some();
    let updated = state.meta.update_user(id, |u| {
        if let Some(r) = role {
            u.role = r;
        }
        if let Some(e) = b.email {
            u.email = e.trim().to_owned();
        }
        if let Some(n) = b.name {
            u.name = Some(n.trim().to_owned());
        }
        if let Some(h) = hash {
            u.password_hash = h;
        }
        if b.locked == Some(false) {
            u.locked_until = None;
            u.failed_logins = 0;
        }
        Ok(())
    })?;
    if password_changed {
        state.meta.revoke_user_refresh(id)?;
    }
    state.audit(
        Some(scope.as_str()),
        &actor(&p),
        "user.update",
        Some(id),
        Some(serde_json::json!({"role": updated.role, "password_changed": password_changed})),
    );
    Ok(json(StatusCode::OK, &updated.to_json()))
}

/// `DELETE /api/v1/auth/users/{id}` → 204.
pub async fn delete(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let target = own_user(&state, scope.as_str(), id)?;
    let (my_id, _) = p.require_user()?;
    if my_id == target.id {
        return Err(ApiError::conflict("you cannot delete your own account"));
    }
    if target.role == Role::Owner && caller_role(&p) < Role::Owner {
        return Err(ApiError::forbidden("only owners can delete owners"));
    }
    state.meta.delete_user(id)?;
    state.meta.revoke_user_refresh(id)?;
    state.audit(
        Some(scope.as_str()),
        &actor(&p),
        "user.delete",
        Some(id),
        Some(serde_json::json!({"email": target.email})),
    );
    Ok(empty(StatusCode::NO_CONTENT))
}
