//! `POST /api/v1/query`: the JSON query language (parsed by `query_lang`)
//! run by the store, answered as `{"columns", "rows", "stats"}`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use pulsestream_storage::query::{Query, QueryResult, Value};
use pulsestream_storage::{Checked, Micros, TenantId};
use serde_json::{Value as Json, json};

use super::query_lang::{self, QueryError, QueryScope};
use super::search::param_errors;
use super::timeparse::format_rfc3339_millis;
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, HttpResponse};

/// Largest query body: a query is a few hundred bytes; 1 MiB leaves room
/// for long `in` lists and refuses anything else early.
const MAX_QUERY_BODY_BYTES: usize = 1 << 20;

/// Tenants listed per metadata page when the platform administrator
/// queries every tenant.
const TENANT_PAGE: usize = 1000;

/// Runs a query on the blocking pool (the store reads files).
pub async fn run_query(state: &Arc<AppState>, q: Query) -> Result<QueryResult, ApiError> {
    run_query_checked(state, q).await.map(|c| c.value)
}

/// Runs a query and says what damaged data it had to leave out.
pub async fn run_query_checked(
    state: &Arc<AppState>,
    q: Query,
) -> Result<Checked<QueryResult>, ApiError> {
    let st = state.clone();
    let started = std::time::Instant::now();
    let r = tokio::task::spawn_blocking(move || st.store.query_checked(&q))
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?;
    state.metrics.query_seconds.observe(started.elapsed());
    Ok(r?)
}

/// A result cell as JSON: times as RFC 3339, non-finite numbers as null.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Time(t) => Json::String(format_rfc3339_millis(*t)),
    }
}

fn all_tenants(state: &AppState) -> Result<Vec<TenantId>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = state
            .meta
            .list_tenants(after.as_deref(), TENANT_PAGE)
            .map_err(ApiError::from)?;
        out.extend(page.iter().filter_map(|t| TenantId::new(&t.id)));
        match next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

pub async fn query(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = if principal.is_platform_admin() {
        QueryScope::PlatformAdmin
    } else {
        QueryScope::Tenant(principal.require_read()?.tenant().clone())
    };
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") && !essence.ends_with("+json") {
            return Err(ApiError::unsupported_media_type(format!(
                "expected application/json, got {essence}"
            )));
        }
    }
    let body = http::read_body_limited(req, MAX_QUERY_BODY_BYTES).await?;
    let parsed = query_lang::parse_query(&body, &scope, Micros::now()).map_err(|e| match e {
        QueryError::Malformed(m) => ApiError::bad_request(m),
        QueryError::Invalid(errors) => param_errors(errors),
        QueryError::Forbidden(m) => ApiError::forbidden(m),
    })?;
    let mut q = parsed.query;
    if parsed.all_tenants {
        q.tenants = all_tenants(&state)?;
    }
    let checked = run_query_checked(&state, q).await?;
    let result = &checked.value;
    let rows: Vec<Json> = result
        .rows
        .iter()
        .map(|r| Json::Array(r.iter().map(value_json).collect()))
        .collect();
    let s = &result.stats;
    let mut answer = json!({
            "columns": result.columns,
            "rows": rows,
            "stats": {
                "scanned_rows": s.scanned_rows,
                "segments_scanned": s.segments_scanned,
                "segments_pruned": s.segments_pruned,
                "segments_from_rollups": s.segments_from_rollups,
                "elapsed_ms": s.elapsed_micros as f64 / 1000.0,
                "truncated": s.truncated,
            }
    });
    super::warnings::annotate(&mut answer, &checked.warnings);
    Ok(http::json(StatusCode::OK, &answer))
}
