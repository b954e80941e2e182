//! Sign-up, login, token refresh and logout, profile and password change.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::{
    MAX_EMAIL_BYTES, actor, body, check_email, check_name, check_password, finish, hash_password,
    issue_tokens, token_answer, verify_password,
};
use crate::app::{AppState, X_API_KEY};
use crate::auth::Principal;
use crate::auth::password::MAX_PASSWORD_BYTES;
use crate::http::{ApiError, ClientAddr, HttpResponse, empty, json};
use crate::meta::{LoginState, RefreshOutcome, now_micros, rfc3339};

#[derive(Deserialize)]
pub struct RegisterTenant {
    tenant_name: String,
    owner_email: String,
    owner_password: String,
}

/// `POST /api/v1/auth/register/tenant`: the platform administrator, or
/// anyone when `auth.allow_signup` is on.
pub async fn register_tenant(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let has_credential =
        req.headers().contains_key(AUTHORIZATION) || req.headers().contains_key(X_API_KEY);
    let creator = if has_credential {
        let p = state.authenticate(&req)?;
        p.require_platform_admin()?;
        actor(&p)
    } else if state.config.auth.allow_signup {
        "signup".to_owned()
    } else {
        return Err(ApiError::unauthorized(
            "public sign-up is disabled; the platform administrator creates tenants",
        ));
    };
    let b: RegisterTenant = body(&state, req).await?;
    let mut errors = Vec::new();
    check_name("tenant_name", &b.tenant_name, &mut errors);
    check_email("owner_email", &b.owner_email, &mut errors);
    check_password("owner_password", &b.owner_password, &mut errors);
    finish(errors)?;

    let hash = hash_password(&state, b.owner_password).await?;
    let p = super::tenant::provision(
        &state.meta,
        &state.config.limits,
        &b.tenant_name,
        Some((b.owner_email, hash)),
        &creator,
    )?;
    let owner = p
        .owner
        .as_ref()
        .ok_or_else(|| ApiError::internal("BUG: provisioned tenant has no owner"))?;
    let tokens = issue_tokens(&state, owner)?;
    state.audit(
        Some(&p.tenant.id),
        &creator,
        "tenant.create",
        Some(&p.tenant.id),
        Some(serde_json::json!({"name": p.tenant.name, "owner": owner.email})),
    );
    let mut answer = serde_json::json!({
        "tenant": p.tenant.to_json(),
        "user": {"id": owner.id, "email": owner.email, "role": owner.role},
        "api_key": p.key_plain,
        "api_key_id": p.key.id,
    });
    if let (Some(a), Some(t)) = (answer.as_object_mut(), tokens.as_object()) {
        a.extend(t.clone());
    }
    Ok(json(StatusCode::CREATED, &answer))
}

#[derive(Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

/// `POST /api/v1/auth/login`. The failure that reaches the threshold still
/// answers 401; later attempts answer 423 until the lock ends, even with the
/// right password.
///
/// Order matters for abuse resistance: sizes are checked before anything
/// is hashed or audited; an account's attempts are decided one at a time
/// (lock state read, password checked, failure recorded), so concurrent
/// guesses cannot slip past the threshold; the per-address rate limit is
/// charged only by attempts about to hash, so refusals that cost nothing
/// (a locked account) do not use it up.
pub async fn login(state: Arc<AppState>, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let ip = ClientAddr::ip_of(&req);
    let b: Login = body(&state, req).await?;
    let email = b.email.trim();
    if email.len() > MAX_EMAIL_BYTES {
        return Err(ApiError::invalid_field(
            "email",
            format!("must be at most {MAX_EMAIL_BYTES} bytes"),
        ));
    }
    if b.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let denied = || ApiError::unauthorized("invalid email or password");
    let Some(found) = state.meta.user_by_email(email)? else {
        charge_login(&state, ip)?;
        // Spend the same time as a real check so response timing does not
        // reveal which emails exist.
        let _ = verify_password(&state, b.password, state.dummy_password_hash.clone()).await?;
        state.audit_folded(
            None,
            email,
            "login_failed",
            None,
            Some(serde_json::json!({"reason": "unknown email"})),
        );
        return Err(denied());
    };
    let _decide = state.account_locks.lock(&found.id).await;
    // Re-read under the account's lock: an attempt that finished while this
    // one waited may have locked the account.
    let user = state.meta.get_user(&found.id)?.ok_or_else(denied)?;
    let now = now_micros();
    if let Some(until) = user.locked_until
        && until > now
    {
        state.audit_folded(
            user.tenant.as_deref(),
            &user.email,
            "login_locked",
            Some(&user.id),
            None,
        );
        return Err(ApiError::locked(format!(
            "account is locked after repeated failed logins until {}",
            rfc3339(until)
        )));
    }
    charge_login(&state, ip)?;
    if !verify_password(&state, b.password, user.password_hash.clone()).await? {
        let auth = &state.config.auth;
        let outcome = state.meta.record_failed_login(
            &user.id,
            auth.lockout_threshold,
            auth.lockout_duration.as_micros() as i64,
            now_micros(),
        )?;
        let detail = match outcome {
            LoginState::Failed { attempts } => serde_json::json!({"attempts": attempts}),
            LoginState::LockedNow { until } => serde_json::json!({"locked_until": rfc3339(until)}),
        };
        state.audit(
            user.tenant.as_deref(),
            &user.email,
            "login_failed",
            Some(&user.id),
            Some(detail),
        );
        return Err(denied());
    }
    if let Some(t) = &user.tenant
        && state.meta.tenant_limits(t).is_some_and(|l| l.disabled)
    {
        return Err(ApiError::forbidden("tenant is disabled"));
    }
    if user.failed_logins > 0 || user.locked_until.is_some() {
        state.meta.record_successful_login(&user.id)?;
    }
    let tokens = issue_tokens(&state, &user)?;
    state.audit(
        user.tenant.as_deref(),
        &user.email,
        "login",
        Some(&user.id),
        None,
    );
    Ok(json(StatusCode::OK, &tokens))
}

/// Takes one login token for the client address; 429 when none is left.
fn charge_login(state: &AppState, ip: std::net::IpAddr) -> Result<(), ApiError> {
    state.login_limiter.take(ip, now_micros()).map_err(|retry| {
        ApiError::rate_limited(retry)
            .with_message("too many login attempts from this address, retry later")
    })
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

/// `POST /api/v1/auth/refresh`: rotates the refresh token.
pub async fn refresh(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let b: RefreshBody = body(&state, req).await?;
    let outcome = state.meta.rotate_refresh(
        &b.refresh_token,
        state.config.auth.refresh_token_ttl.as_micros() as i64,
        now_micros(),
    )?;
    match outcome {
        RefreshOutcome::Rotated { user_id, token } => {
            let user = state
                .meta
                .get_user(&user_id)?
                .ok_or_else(|| ApiError::unauthorized("invalid refresh token"))?;
            if let Some(t) = &user.tenant
                && state.meta.tenant_limits(t).is_none_or(|l| l.disabled)
            {
                return Err(ApiError::forbidden("tenant is disabled"));
            }
            Ok(json(StatusCode::OK, &token_answer(&state, &user, token)?))
        }
        RefreshOutcome::Reused => {
            state.audit(
                None,
                "unknown",
                "refresh_token.reuse",
                None,
                Some(serde_json::json!({"effect": "family revoked"})),
            );
            Err(ApiError::unauthorized(
                "refresh token was already used; its session has been revoked",
            ))
        }
        RefreshOutcome::Invalid => Err(ApiError::unauthorized("invalid refresh token")),
    }
}

/// `POST /api/v1/auth/logout`: revokes the refresh token's family.
pub async fn logout(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let b: RefreshBody = body(&state, req).await?;
    if state.meta.revoke_refresh_family(&b.refresh_token)? {
        Ok(empty(StatusCode::NO_CONTENT))
    } else {
        Err(ApiError::unauthorized("invalid refresh token"))
    }
}

/// `GET /api/v1/auth/profile`.
pub async fn get_profile(state: Arc<AppState>, p: Principal) -> Result<HttpResponse, ApiError> {
    let (user_id, _) = p.require_user()?;
    let user = state
        .meta
        .get_user(user_id)?
        .ok_or_else(|| ApiError::not_found("user not found"))?;
    let mut v = user.to_json();
    if let (Some(t), Some(o)) = (&user.tenant, v.as_object_mut())
        && let Some(tenant) = state.meta.get_tenant(t)?
    {
        o.insert(
            "tenant".into(),
            serde_json::json!({"id": tenant.id, "name": tenant.name}),
        );
    }
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "platform_admin".into(),
            serde_json::Value::Bool(p.is_platform_admin()),
        );
    }
    Ok(json(StatusCode::OK, &v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanges {
    name: Option<String>,
    email: Option<String>,
}

/// `PUT /api/v1/auth/profile`: name and email.
pub async fn put_profile(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let (user_id, _) = p.require_user()?;
    let user_id = user_id.to_owned();
    let b: ProfileChanges = body(&state, req).await?;
    let mut errors = Vec::new();
    if let Some(n) = &b.name {
        check_name("name", n, &mut errors);
    }
    if let Some(e) = &b.email {
        check_email("email", e, &mut errors);
    }
    finish(errors)?;
    let user = state.meta.update_user(&user_id, |u| {
        if let Some(n) = b.name {
            u.name = Some(n.trim().to_owned());
        }
        if let Some(e) = b.email {
            u.email = e.trim().to_owned();
        }
        Ok(())
    })?;
    state.audit(
        user.tenant.as_deref(),
        &actor(&p),
        "user.profile_update",
        Some(&user.id),
        None,
    );
    Ok(json(StatusCode::OK, &user.to_json()))
}

#[derive(Deserialize)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/change-password` → 204. Every refresh session of
/// the user is revoked; the current access token runs out on its own.
pub async fn change_password(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let (user_id, _) = p.require_user()?;
    let user_id = user_id.to_owned();
    let b: ChangePassword = body(&state, req).await?;
    let mut errors = Vec::new();
    if b.current_password.len() > MAX_PASSWORD_BYTES {
        errors.push(crate::http::FieldError::new(
            "current_password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    check_password("new_password", &b.new_password, &mut errors);
    finish(errors)?;
    let user = state
        .meta
        .get_user(&user_id)?
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    if !verify_password(&state, b.current_password, user.password_hash.clone()).await? {
        state.audit(
            user.tenant.as_deref(),
            &user.email,
            "password_change_failed",
            Some(&user.id),
            None,
        );
        return Err(ApiError::unauthorized("current password is incorrect"));
    }
    let hash = hash_password(&state, b.new_password).await?;
    state.meta.update_user(&user_id, |u| {
        u.password_hash = hash;
        Ok(())
    })?;
    state.meta.revoke_user_refresh(&user_id)?;
    state.audit(
        user.tenant.as_deref(),
        &user.email,
        "password_change",
        Some(&user.id),
        None,
    );
    Ok(empty(StatusCode::NO_CONTENT))
}
