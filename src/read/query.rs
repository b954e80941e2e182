//! `POST /api/v1/query`: the JSON query language (parsed by `query_lang`)
//! run by the store, answered as `{"columns", "rows", "stats"}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use pulsestream_storage::query::control::QueryControl;
use pulsestream_storage::query::{Query, QueryResult, Value};
use pulsestream_storage::{Checked, Micros, StorageError, TenantId};
use serde_json::{Value as Json, json};

use super::gate::{BUSY_RETRY_SECS, ReadPermit};
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

/// Runs a query on the blocking pool (the store reads files), admitted by
/// the read gate and bounded by `limits.query_timeout` and
/// `limits.query_memory_bytes` (see `run_controlled`).
pub async fn run_query(state: &Arc<AppState>, q: Query) -> Result<QueryResult, ApiError> {
    run_query_checked(state, q).await.map(|c| c.value)
}

/// `run_query`, also saying what damaged data it had to leave out.
pub async fn run_query_checked(
    state: &Arc<AppState>,
    q: Query,
) -> Result<Checked<QueryResult>, ApiError> {
    let gate_tenant = q
        .tenants
        .first()
        .cloned()
        .or_else(|| TenantId::new(ALL_TENANTS_GATE))
        .ok_or_else(|| ApiError::internal("BUG: gate tenant id is invalid"))?;
    let _permit = enter_read_gate(state, &gate_tenant).await?;
    run_controlled(state, move |st, control| {
        st.store.query_checked_controlled(&q, control)
    })
    .await
}

/// Runs `work` on the blocking pool under a fresh `QueryControl` (deadline
/// from `limits.query_timeout`, budget from `limits.query_memory_bytes`).
/// On timeout the engine is told to stop (it also checks the deadline
/// itself, per unit and per block) and the answer is 503 `query_timeout`;
/// dropping the returned future cancels the work too.
pub async fn run_controlled<T, F>(state: &Arc<AppState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState, &QueryControl) -> pulsestream_storage::Result<T> + Send + 'static,
{
    let started = std::time::Instant::now();
    let timeout = query_deadline(&state.config);
    let control = Arc::new(QueryControl::new(
        Some(started + timeout),
        state.config.limits.query_memory_bytes,
    ));
    // The request may be dropped before the query ends (its client went
    // away, the request timeout fired): the work must stop then too.
    let _cancel_on_drop = CancelOnDrop(control.clone());
    let st = state.clone();
    let c = control.clone();
    let task = tokio::task::spawn_blocking(move || {
        let _running = RunningQuery::new(&st.read_stats);
        let r = work(&st, &c);
        if c.stopped() {
            st.read_stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        r
    });
    // A little grace over the deadline: the engine normally stops itself at
    // its next check and answers first.
    let r = match tokio::time::timeout(timeout + DEADLINE_GRACE, task).await {
        Ok(joined) => joined.map_err(|e| ApiError::internal(format!("query task failed: {e}")))?,
        Err(_) => {
            control.cancel();
            Err(StorageError::QueryCancelled)
        }
    };
    state.metrics.query_seconds.observe(started.elapsed());
    Ok(r?)
}

/// Time kept between a query's deadline and `server.request_timeout`, so a
/// query stopped by its deadline answers `query_timeout` before the request
/// timeout answers a generic 503.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

/// `limits.query_timeout`, but never past the request timeout minus the
/// answer margin. A request timeout too short for the full margin (only
/// tests set one) keeps three quarters of itself for the query, so queries
/// still run there.
fn query_deadline(config: &crate::config::Config) -> std::time::Duration {
    let request = config.server.request_timeout;
    let margin = (ANSWER_MARGIN + DEADLINE_GRACE).min(request / 4);
    let cap = request
        .saturating_sub(margin)
        .max(std::time::Duration::from_millis(1));
    config.limits.query_timeout.min(cap)
}

/// Cancels a query's control when the request holding it is dropped.
struct CancelOnDrop(Arc<QueryControl>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Slack between the query deadline and the answer when the engine is in
/// the middle of a block: one block takes milliseconds.
const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// The read gate's key for queries across every tenant (platform admin).
const ALL_TENANTS_GATE: &str = "_all_tenants";

/// A slot of the read gate for `tenant`, or 503 `overloaded` with
/// `Retry-After`.
pub async fn enter_read_gate(state: &AppState, tenant: &TenantId) -> Result<ReadPermit, ApiError> {
    state.read_gate.enter(tenant).await.map_err(|_| {
        ApiError::overloaded(BUSY_RETRY_SECS)
            .with_message("too many queries in progress, retry shortly")
    })
}

/// Counters of the read path, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Queries whose engine work stopped on cancellation or its deadline.
    pub cancelled: AtomicU64,
    /// Queries whose engine work is running now.
    pub running: AtomicU64,
    /// Exports stopped because their client stopped reading.
    pub exports_stalled: AtomicU64,
}

/// Counts a query as running while it lives.
struct RunningQuery<'a>(&'a ReadStats);

impl<'a> RunningQuery<'a> {
    fn new(s: &'a ReadStats) -> Self {
        s.running.fetch_add(1, Ordering::Relaxed);
        RunningQuery(s)
    }
}

impl Drop for RunningQuery<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
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
    // From the tenant settings kept in memory: no metadata read per query.
    let apdex_t_ms = match &scope {
        QueryScope::Tenant(t) => state.tenant_limits(t).map(|l| l.apdex_t_ms),
        QueryScope::PlatformAdmin => None,
    }
    .unwrap_or_else(crate::meta::default_apdex_t_ms);
    let parsed = query_lang::parse_query_with_apdex(&body, &scope, Micros::now(), apdex_t_ms)
        .map_err(|e| match e {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_query_deadline_stays_inside_the_request_timeout() {
        let mut c = crate::config::Config::default();
        // Equal defaults: the query stops first, so it answers query_timeout.
        assert!(query_deadline(&c) + DEADLINE_GRACE < c.server.request_timeout);
        c.limits.query_timeout = Duration::from_secs(2);
        assert_eq!(query_deadline(&c), Duration::from_secs(2));
        c.server.request_timeout = Duration::from_millis(100);
        assert_eq!(query_deadline(&c), Duration::from_millis(75));
    }
}
