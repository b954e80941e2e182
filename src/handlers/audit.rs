//! `GET /api/v1/audit`: the tenant's audit log for its admins; every entry
//! (or one tenant's, `?tenant=`) for the platform administrator.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{list_answer, page_params};
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::http::{ApiError, HttpResponse, json, parse_query, query_value};
use crate::meta::AuditEntry;

pub async fn list(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let tenant = if p.is_platform_admin() {
        let q = parse_query(req.uri());
        query_value(&q, "tenant").map(str::to_owned)
    } else {
        Some(p.require_role(Role::Admin)?.as_str().to_owned())
    };
    let (limit, cursor) = page_params(&req)?;
    let before = match cursor {
        Some(c) => Some(
            c.parse::<u64>()
                .map_err(|_| ApiError::invalid_field("cursor", "not a cursor from this list"))?,
        ),
        None => None,
    };
    let (entries, next) = state.meta.list_audit(tenant.as_deref(), before, limit)?;
    let items = entries.iter().map(AuditEntry::to_json).collect();
    Ok(json(StatusCode::OK, &list_answer("entries", items, next)))
}

/// `GET /api/v1/audit/{id}`: one entry, if the caller may see it.
pub async fn get(state: Arc<AppState>, p: Principal, id: &str) -> Result<HttpResponse, ApiError> {
    let tenant = if p.is_platform_admin() {
        None
    } else {
        Some(p.require_role(Role::Admin)?.as_str().to_owned())
    };
    let entry = id
        .parse::<u64>()
        .ok()
        .map(|seq| state.meta.get_audit(seq))
        .transpose()?
        .flatten()
        .filter(|e| tenant.is_none() || e.tenant == tenant)
        .ok_or_else(|| ApiError::not_found("audit entry not found"))?;
    Ok(json(StatusCode::OK, &entry.to_json()))
}
