//! Handlers for the appliance's own endpoints (auth, users, API keys,
//! tenants, audit, health, metrics, dashboard config). One file per
//! concern; the router is the only caller. Shared helpers live here:
//! pagination, token issuing, off-thread password hashing, validation.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod dashboard_config;
pub mod health;
pub mod limits_metrics;
pub mod tenant;
pub mod users;

use hyper::Request;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::jwt::Claims;
use crate::http::{ApiError, FieldError, parse_query, query_value};
use crate::meta::{User, now_micros};

/// Lists answer 100 items unless asked otherwise (contract section 2).
pub const DEFAULT_PAGE: usize = 100;
/// ...and at most 1000.
pub const MAX_PAGE: usize = 1000;

/// Body limit for the small JSON documents of these endpoints. Logins and
/// settings are a few hundred bytes; 1 MiB is generous and bounded.
pub const SMALL_JSON_LIMIT: usize = 1 << 20;

/// Longest email accepted (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest tenant, user or key name.
pub const MAX_NAME_CHARS: usize = 128;

/// `limit` and `cursor` from the query string.
pub fn page_params(req: &Request<Incoming>) -> Result<(usize, Option<String>), ApiError> {
    let q = parse_query(req.uri());
    let limit = match query_value(&q, "limit") {
        None => DEFAULT_PAGE,
        Some(v) => match v.parse::<usize>() {
            Ok(0) | Err(_) => {
                return Err(ApiError::invalid_field(
                    "limit",
                    format!("must be an integer between 1 and {MAX_PAGE}"),
                ));
            }
            Ok(n) => n.min(MAX_PAGE),
        },
    };
    let cursor = query_value(&q, "cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    Ok((limit, cursor))
}

/// Reads a small JSON body.
pub async fn body<T: DeserializeOwned>(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    crate::http::read_json(
        req,
        SMALL_JSON_LIMIT.min(state.config.server.max_body_bytes),
    )
    .await
}

/// The login answer: a fresh access token and a new refresh-token family.
pub fn issue_tokens(state: &AppState, user: &User) -> Result<serde_json::Value, ApiError> {
    let refresh = state.meta.issue_refresh(
        &user.id,
        state.config.auth.refresh_token_ttl.as_micros() as i64,
        now_micros(),
    )?;
    token_answer(state, user, refresh)
}

/// `{access_token, refresh_token, token_type, expires_in}` for `user`.
pub fn token_answer(
    state: &AppState,
    user: &User,
    refresh_token: String,
) -> Result<serde_json::Value, ApiError> {
    let ttl = state.config.auth.access_token_ttl.as_secs().max(1);
    let now = now_micros() / 1_000_000;
    let claims = Claims {
        sub: user.id.clone(),
        email: user.email.clone(),
        tid: user.tenant.clone(),
        role: user.role,
        iat: now,
        exp: now + ttl as i64,
        typ: "access".to_owned(),
    };
    let access = state.jwt.sign(&claims).map_err(ApiError::internal)?;
    Ok(serde_json::json!({
        "access_token": access,
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": ttl,
    }))
}

/// `Retry-After` when the hashing queue is full: a hash takes tens of
/// milliseconds, so the queue has drained well within a second.
const HASH_BUSY_RETRY_SECS: u64 = 1;

/// 429 for a full hashing queue.
fn hashing_busy() -> ApiError {
    ApiError::rate_limited(HASH_BUSY_RETRY_SECS)
        .with_message("too many password checks in progress, retry shortly")
}

/// argon2id off the async threads, through the hashing gate: a hash costs
/// tens of milliseconds and its memory cost.
pub async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    let hasher = state.passwords.clone();
    state
        .hash_gate
        .run(move || hasher.hash(&password))
        .await
        .map_err(|_| hashing_busy())?
        .ok_or_else(|| ApiError::internal("password hashing task failed"))?
        .map_err(ApiError::internal)
}

/// Verification, also off the async threads and through the gate. `Err`
/// only when the gate is full (429); a failed task is a mismatch.
pub async fn verify_password(
    state: &AppState,
    password: String,
    phc: String,
) -> Result<bool, ApiError> {
    let hasher = state.passwords.clone();
    state
        .hash_gate
        .run(move || hasher.verify(&password, &phc))
        .await
        .map(|ok| ok.unwrap_or(false))
        .map_err(|_| hashing_busy())
}

/// Checks an email's shape; pushes a field error when it is wrong.
pub fn check_email(field: &str, email: &str, errors: &mut Vec<FieldError>) {
    let ok = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => !local.is_empty() && !domain.is_empty(),
            None => false,
        };
    if !ok {
        errors.push(FieldError::new(field, "must be an email address"));
    }
}

/// Checks the password policy; pushes a field error when it is broken.
pub fn check_password(field: &str, password: &str, errors: &mut Vec<FieldError>) {
    if let Err(m) = crate::auth::password::check_policy(password) {
        errors.push(FieldError::new(field, m));
    }
}

/// Checks a display name: non-blank, at most `MAX_NAME_CHARS`.
pub fn check_name(field: &str, name: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
}

/// `Err(validation)` when any check failed.
pub fn finish(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `{"<key>": items, "next_cursor": ...}`.
pub fn list_answer(
    key: &str,
    items: Vec<serde_json::Value>,
    next: Option<String>,
) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), serde_json::Value::Array(items));
    m.insert(
        "next_cursor".to_owned(),
        next.map_or(serde_json::Value::Null, serde_json::Value::String),
    );
    serde_json::Value::Object(m)
}

/// The actor name recorded in the audit log for a principal.
pub fn actor(p: &crate::auth::Principal) -> String {
    match p {
        crate::auth::Principal::User { email, .. } => email.clone(),
        crate::auth::Principal::ApiKey { key_id, .. } => format!("key:{key_id}"),
    }
}
