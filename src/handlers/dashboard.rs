//! `GET /api/v1/dashboard/overview` and `GET /api/v1/dashboard/events/stream`
//! (contract section 6): what the dashboard's first screen and its live
//! tail need, in one request each.
//!
//! Everything is answered by the store's aggregate queries (sealed data
//! from the per-minute rollups) and its newest-first search, run
//! concurrently; nothing here scans events itself, so an answer costs the
//! same few queries at any data size. The numbers are the same ones the
//! statistics and query APIs give for the same range, which the tests
//! check.
//!
//! The platform administrator belongs to no tenant: it reads a tenant's
//! dashboard by naming it (`?tenant=ID`); for anyone else the tenant is
//! the credential's and a `tenant` parameter is refused.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use parking_lot::Mutex;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::query::{
    AggOp, Aggregation, Field, OrderBy, Predicate, Query, QueryResult, SearchRequest, TimeRange,
    Value,
};
use pulsestream_storage::{Micros, TenantId};
use serde_json::{Map, Value as Json, json};

use crate::app::AppState;
use crate::auth::{Principal, TenantScope};
use crate::http::{self, ApiError, HttpResponse};
use crate::read::filters;
use crate::read::query::{run_query, value_json};
use crate::read::render::write_event_json;
use crate::read::search::{param_errors, run_search};
use crate::read::timeparse::{format_rfc3339_millis, parse_duration, write_rfc3339_millis};

/// The overview's window when none is asked for (contract: `window=1h`).
const DEFAULT_WINDOW: &str = "1h";

/// Longest overview window: 31 days keeps the throughput series short at
/// a 12-hour step, and no tenant's default retention is longer.
const MAX_WINDOW_MICROS: i64 = 31 * 86_400 * MICROS_PER_SEC;

/// Most buckets in the throughput series: enough for a smooth chart, few
/// enough that the answer stays a few KiB.
const MAX_SERIES_BUCKETS: i64 = 120;

/// Series steps, finest first; the first one giving at most
/// `MAX_SERIES_BUCKETS` buckets is used. None is finer than a minute so
/// sealed data is always answered from the per-minute rollups.
const SERIES_STEPS_SECS: [i64; 8] = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400];

/// "Events per second now" is the rate over this trailing span: one
/// second is too noisy for a headline number, a minute is steady.
const NOW_SPAN_MICROS: i64 = 60 * MICROS_PER_SEC;

/// Endpoints listed in `top_endpoints`.
const TOP_ENDPOINTS: usize = 10;

/// Events listed in `recent_events` (contract: 10).
const RECENT_EVENTS: usize = 10;

/// `events/stream` default and largest `limit`: a tail screen shows about
/// fifty rows; a thousand bounds the answer like other lists.
const STREAM_DEFAULT_LIMIT: usize = 50;
const STREAM_MAX_LIMIT: usize = 1000;

/// `events/stream` looks this far back when no `from` is given: a tail is
/// about what happened recently, and a bounded range keeps it cheap.
const STREAM_DEFAULT_SPAN_MICROS: i64 = 24 * 3600 * MICROS_PER_SEC;

/// Status classes always present in `status_codes`, zero when absent.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Alert severities always present in `active_alerts`.
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

const MICROS_PER_SEC: i64 = 1_000_000;

/// The tenant a dashboard request reads: the credential's, or for the
/// platform administrator the one named by `?tenant=`.
fn scope_of(
    state: &AppState,
    principal: &Principal,
    pairs: &[(String, String)],
) -> Result<TenantScope, ApiError> {
    let named = http::query_value(pairs, "tenant").filter(|t| !t.is_empty());
    if !principal.is_platform_admin() {
        if let Some(t) = named {
            let own = principal.require_read()?;
            if own.as_str() != t {
                return Err(ApiError::forbidden(
                    "the tenant is the credential's; `tenant` is for the platform administrator",
                ));
            }
        }
        return principal.require_read();
    }
    let Some(t) = named else {
        return Err(ApiError::invalid_field(
            "tenant",
            "the platform administrator must name a tenant",
        ));
    };
    let exists = state.meta.get_tenant(t).map_err(ApiError::from)?.is_some();
    let id = TenantId::new(t)
        .filter(|_| exists)
        .ok_or_else(|| ApiError::not_found("no such tenant"))?;
    TenantScope::for_platform_admin(principal, id)
}

fn agg(op: AggOp, field: Option<Field>, alias: &str) -> Aggregation {
    Aggregation {
        op,
        field,
        alias: alias.to_owned(),
    }
}

fn query(tenant: &TenantId, range: TimeRange, aggregations: Vec<Aggregation>) -> Query {
    Query {
        tenants: vec![tenant.clone()],
        range,
        filter: Vec::new(),
        group_by: Vec::new(),
        interval: None,
        aggregations,
        order_by: Vec::new(),
        limit: pulsestream_storage::query::MAX_QUERY_LIMIT,
    }
}

fn as_u64(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Int(i)) => (*i).max(0) as u64,
        Some(Value::Float(f)) if f.is_finite() && *f >= 0.0 => f.round() as u64,
        _ => 0,
    }
}

fn as_f64(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Int(i)) => *i as f64,
        Some(Value::Float(f)) if f.is_finite() => *f,
        _ => 0.0,
    }
}

/// A cell as JSON, null when absent.
fn cell(v: Option<&Value>) -> Json {
    v.map(value_json).unwrap_or(Json::Null)
}

/// Errors among `count` events at `rate`: the engine counts errors and
/// divides, so this recovers the integer exactly.
fn errors_of(count: u64, rate: f64) -> u64 {
    (count as f64 * rate).round() as u64
}

/// The series step for a window: the finest of `SERIES_STEPS_SECS` with at
/// most `MAX_SERIES_BUCKETS` buckets.
fn series_step_secs(window_micros: i64) -> i64 {
    let secs = window_micros / MICROS_PER_SEC;
    SERIES_STEPS_SECS
        .into_iter()
        .find(|s| secs / s <= MAX_SERIES_BUCKETS)
        .unwrap_or(SERIES_STEPS_SECS[SERIES_STEPS_SECS.len() - 1])
}

/// Renders a search answer's events as a JSON array.
fn events_json(events: &[pulsestream_storage::Event]) -> Result<Json, ApiError> {
    let mut out = String::with_capacity(2 + events.len() * 400);
    out.push('[');
    for (i, ev) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_event_json(&mut out, ev);
    }
    out.push(']');
    serde_json::from_str(&out).map_err(ApiError::internal)
}

/// Sums the counts of an `(event_type, status_class, count)` result by one
/// of its two group columns (null groups are left out).
fn counts_by_key(r: &QueryResult, column: usize) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for row in &r.rows {
        let key = match row.get(column) {
            Some(Value::Str(s)) => s.clone(),
            Some(Value::Int(i)) => i.to_string(),
            _ => continue,
        };
        *m.entry(key).or_insert(0) += as_u64(row.get(2));
    }
    m
}

/// `GET /api/v1/dashboard/overview?window=1h`.
pub async fn overview(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let pairs = http::parse_query(req.uri());
    let scope = scope_of(&state, &principal, &pairs)?;
    let window_text = http::query_value(&pairs, "window").unwrap_or(DEFAULT_WINDOW);
    let window = parse_duration(window_text)
        .filter(|w| *w <= MAX_WINDOW_MICROS)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "window",
                "must be a duration like 15m, 1h, 24h or 7d, at most 31d",
            )
        })?;
    let value = overview_data(&state, scope.tenant(), window_text, window, Micros::now()).await?;
    Ok(http::json(StatusCode::OK, &value))
}

/// One piece of work that several requests await.
type Work<V> = Shared<BoxFuture<'static, V>>;

/// Work that identical concurrent requests share: the first request for a
/// key starts it, requests for the same key arriving while it runs await
/// the same result, and nothing is kept once it ends (so an answer is never
/// older than the computation it came from; this is not a cache).
pub struct Coalescer<K, V> {
    /// Work running now. An entry is added only when its key is absent and
    /// removed only by the request that added it, so it is always that
    /// request's work.
    running: Mutex<HashMap<K, Work<V>>>,
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Coalescer {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Coalescer<K, V> {
    /// The result of the work running for `key`, or of `make()` started
    /// now when none runs.
    pub async fn run<F>(&self, key: K, make: impl FnOnce() -> F) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (work, first) = {
            let mut running = self.running.lock();
            match running.get(&key) {
                Some(w) => (w.clone(), false),
                None => {
                    let w = make().boxed().shared();
                    running.insert(key.clone(), w.clone());
                    (w, true)
                }
            }
        };
        // Whoever started it forgets it once done or dropped; the others
        // still hold the shared work and finish it.
        let _forget = first.then(|| Forget {
            coalescer: self,
            key,
        });
        work.await
    }
}

/// Removes a finished (or abandoned) piece of work from its `Coalescer`.
struct Forget<'a, K: Hash + Eq, V> {
    coalescer: &'a Coalescer<K, V>,
    key: K,
}

impl<K: Hash + Eq, V> Drop for Forget<'_, K, V> {
    fn drop(&mut self) {
        self.coalescer.running.lock().remove(&self.key);
    }
}

/// Overview computations in progress, by tenant and window: a dashboard
/// opened in many tabs, or many users of one tenant arriving together,
/// cost one computation instead of one each.
pub type OverviewFlights = Coalescer<(TenantId, String), Result<Arc<Json>, ApiError>>;

/// The overview of `tenant` over `[now - window, now)`, as the contract's
/// JSON object. Shares a computation already running for the same tenant
/// and window (whose `now` is then a moment earlier).
pub async fn overview_data(
    state: &Arc<AppState>,
    tenant: &TenantId,
    window_text: &str,
    window: i64,
    now: Micros,
) -> Result<Json, ApiError> {
    let key = (tenant.clone(), window_text.to_owned());
    let (st, t, w) = (state.clone(), tenant.clone(), window_text.to_owned());
    state
        .overview_flights
        .run(key, move || async move {
            compute_overview(&st, &t, &w, window, now)
                .await
                .map(Arc::new)
        })
        .await
        // A request that shared nobody's work holds the only reference by
        // now (the running entry is gone), so it takes the answer uncopied.
        .map(Arc::unwrap_or_clone)
}

/// Computes the overview (see `overview_data`).
async fn compute_overview(
    state: &Arc<AppState>,
    tenant: &TenantId,
    window_text: &str,
    window: i64,
    now: Micros,
) -> Result<Json, ApiError> {
    let range = TimeRange {
        from: Micros(now.0.saturating_sub(window)),
        to: now,
    };
    let totals = query(
        tenant,
        range,
        vec![
            agg(AggOp::Count, None, "events"),
            agg(AggOp::ErrorRate, None, "error_rate"),
            agg(AggOp::P50, Some(Field::LatencyMs), "p50"),
            agg(AggOp::P95, Some(Field::LatencyMs), "p95"),
            agg(AggOp::P99, Some(Field::LatencyMs), "p99"),
            agg(AggOp::Avg, Some(Field::LatencyMs), "avg"),
        ],
    );
    // One grouped count gives both breakdowns (types × 6 classes rows).
    let mut groups = query(tenant, range, vec![agg(AggOp::Count, None, "count")]);
    groups.group_by = vec![Field::EventType, Field::StatusClass];

    let step = series_step_secs(window);
    let mut series = query(
        tenant,
        range,
        vec![
            agg(AggOp::Count, None, "count"),
            agg(AggOp::ErrorRate, None, "error_rate"),
        ],
    );
    series.interval = Some(step * MICROS_PER_SEC);
    series.order_by = vec![OrderBy {
        column: "bucket".into(),
        desc: false,
    }];

    let now_range = TimeRange {
        from: Micros(now.0.saturating_sub(NOW_SPAN_MICROS.min(window))),
        to: now,
    };
    let recent_count = query(tenant, now_range, vec![agg(AggOp::Count, None, "count")]);
    let recent = SearchRequest {
        tenant: tenant.clone(),
        range,
        filter: Vec::new(),
        limit: RECENT_EVENTS,
        cursor: None,
    };

    let (totals, groups, series, top_endpoints, recent_count, recent) = tokio::join!(
        run_query(state, totals),
        run_query(state, groups),
        run_query(state, series),
        top_endpoints(state, tenant, range),
        run_query(state, recent_count),
        run_search(state, recent),
    );
    let (totals, groups, series, top_endpoints, recent_count, recent) = (
        totals?,
        groups?,
        series?,
        top_endpoints?,
        recent_count?,
        recent?,
    );

    let t = totals.rows.first();
    let at = |i: usize| t.and_then(|r| r.get(i));
    let events = as_u64(at(0));
    let error_rate = if events == 0 { 0.0 } else { as_f64(at(1)) };
    let types = counts_by_key(&groups, 0);
    let type_count = |k: &str| types.get(k).copied().unwrap_or(0);

    let mut classes: Map<String, Json> = STATUS_CLASSES
        .iter()
        .map(|c| ((*c).to_owned(), Json::from(0)))
        .collect();
    for (k, v) in counts_by_key(&groups, 1) {
        classes.insert(k, Json::from(v));
    }

    // Columns: bucket, count, error_rate.
    let step_secs = step as f64;
    let points: Vec<Json> = series
        .rows
        .iter()
        .map(|r| {
            let count = as_u64(r.get(1));
            json!({
                "bucket": cell(r.first()),
                "count": count,
                "errors": errors_of(count, as_f64(r.get(2))),
                "events_per_second": count as f64 / step_secs,
            })
        })
        .collect();

    let now_secs = (now_range.to.0 - now_range.from.0).max(1) as f64 / 1e6;
    let window_secs = window as f64 / 1e6;
    let mut alerts: Map<String, Json> = SEVERITIES
        .iter()
        .map(|s| ((*s).to_owned(), Json::from(0)))
        .collect();
    let mut total = 0;
    for (sev, n) in state.alerting.active_by_severity(tenant.as_str()) {
        total += n;
        alerts.insert(sev, Json::from(n));
    }
    alerts.insert("total".into(), Json::from(total));

    Ok(json!({
        "window": window_text,
        "from": format_rfc3339_millis(range.from),
        "to": format_rfc3339_millis(range.to),
        "totals": {
            "events": events,
            "api_calls": type_count("api_call"),
            "errors": errors_of(events, error_rate),
            "user_actions": type_count("user_action"),
        },
        "events_by_type": types,
        "error_rate": error_rate,
        "latency_ms": {"p50": cell(at(2)), "p95": cell(at(3)), "p99": cell(at(4)), "avg": cell(at(5))},
        "throughput": {
            "events_per_second": as_u64(recent_count.rows.first().and_then(|r| r.first())) as f64 / now_secs,
            "average_per_second": events as f64 / window_secs,
            "interval": format!("{step}s"),
            "series": points,
        },
        "top_endpoints": top_endpoints,
        "status_codes": classes,
        "active_alerts": alerts,
        "recent_events": events_json(&recent.events)?,
        "health": health(state, tenant),
    }))
}

/// The busiest endpoints with their error rate and p95 latency. Counts are
/// cheap; a latency sketch per endpoint is not, so the p95s are read in a
/// second query for the chosen few only.
async fn top_endpoints(
    state: &Arc<AppState>,
    tenant: &TenantId,
    range: TimeRange,
) -> Result<Vec<Json>, ApiError> {
    let mut counts = query(
        tenant,
        range,
        vec![
            agg(AggOp::Count, None, "requests"),
            agg(AggOp::ErrorRate, None, "error_rate"),
        ],
    );
    counts.group_by = vec![Field::Endpoint];
    counts.filter = vec![Predicate::Exists(Field::Endpoint)];
    counts.order_by = vec![OrderBy {
        column: "requests".into(),
        desc: true,
    }];
    // Ties are common with little data; ask for more and sort fully below
    // so the list does not depend on the engine's order among equals.
    counts.limit = TOP_ENDPOINTS * 10;
    let counts = run_query(state, counts).await?;
    // Columns: endpoint, requests, error_rate.
    let mut top: Vec<(String, u64, Json)> = counts
        .rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(Value::Str(e)) => Some((e.clone(), as_u64(r.get(1)), cell(r.get(2)))),
            _ => None,
        })
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_ENDPOINTS);
    if top.is_empty() {
        return Ok(Vec::new());
    }

    let mut p95 = query(
        tenant,
        range,
        vec![agg(AggOp::P95, Some(Field::LatencyMs), "p95")],
    );
    p95.group_by = vec![Field::Endpoint];
    p95.filter = vec![Predicate::In(
        Field::Endpoint,
        top.iter().map(|t| Value::Str(t.0.clone())).collect(),
    )];
    let p95 = run_query(state, p95).await?;
    // Columns: endpoint, p95.
    let p95_of = |endpoint: &str| {
        p95.rows
            .iter()
            .find(|r| matches!(r.first(), Some(Value::Str(e)) if e == endpoint))
            .map_or(Json::Null, |r| cell(r.get(1)))
    };
    Ok(top
        .into_iter()
        .map(|(endpoint, requests, error_rate)| {
            let p95 = p95_of(&endpoint);
            json!({"endpoint": endpoint, "requests": requests, "error_rate": error_rate, "p95": p95})
        })
        .collect())
}

/// The server's health as this tenant may see it (no other tenant's
/// sizes).
fn health(state: &AppState, tenant: &TenantId) -> Json {
    let stats = state.store.stats();
    let own = stats
        .tenants
        .iter()
        .find(|t| t.tenant.as_ref() == Some(tenant));
    json!({
        "status": if stats.disk_full { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started_at.elapsed().as_secs(),
        "storage": {
            "disk_full": stats.disk_full,
            "segments": own.map_or(0, |t| t.sealed_segments),
            "bytes": own.map_or(0, |t| t.sealed_bytes + t.active_bytes),
            "events": own.map_or(0, |t| t.sealed_rows + t.active_rows),
        },
    })
}

/// `GET /api/v1/dashboard/events/stream?limit=50`: the most recent events,
/// newest first, with the search filters (`from` defaults to 24 h ago).
pub async fn events_stream(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let pairs = http::parse_query(req.uri());
    let scope = scope_of(&state, &principal, &pairs)?;
    let now = Micros::now();
    let mut errors = Vec::new();
    let get = |k: &str| http::query_value(&pairs, k);
    let default_from = format_rfc3339_millis(Micros(now.0 - STREAM_DEFAULT_SPAN_MICROS));
    let range = filters::time_range(
        Some(get("from").unwrap_or(&default_from)),
        get("to"),
        now,
        &mut errors,
    );
    let filter = filters::parse_filters(&pairs, &mut errors);
    let limit = match get("limit") {
        None => STREAM_DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=STREAM_MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(filters::ParamError::new(
                    "limit",
                    format!("must be an integer between 1 and {STREAM_MAX_LIMIT}"),
                ));
                STREAM_DEFAULT_LIMIT
            }
        },
    };
    if !errors.is_empty() {
        return Err(param_errors(errors));
    }
    let result = run_search(
        &state,
        SearchRequest {
            tenant: scope.tenant().clone(),
            range,
            filter,
            limit,
            cursor: None,
        },
    )
    .await?;
    // Written out directly, as search does: up to a thousand events should
    // not go through a JSON tree.
    let mut out = String::with_capacity(128 + result.events.len() * 400);
    out.push_str("{\"events\":[");
    for (i, ev) in result.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_event_json(&mut out, ev);
    }
    for (key, t) in [("from", range.from), ("to", range.to), ("server_time", now)] {
        out.push_str(if key == "from" { "],\"" } else { ",\"" });
        out.push_str(key);
        out.push_str("\":\"");
        write_rfc3339_millis(&mut out, t);
        out.push('"');
    }
    out.push('}');
    Ok(http::text(StatusCode::OK, "application/json", out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_steps_keep_the_chart_short() {
        let h = 3600 * MICROS_PER_SEC;
        assert_eq!(series_step_secs(15 * 60 * MICROS_PER_SEC), 60);
        assert_eq!(series_step_secs(h), 60);
        assert_eq!(series_step_secs(6 * h), 300);
        assert_eq!(series_step_secs(24 * h), 900);
        assert_eq!(series_step_secs(7 * 24 * h), 3 * 3600);
        assert_eq!(series_step_secs(MAX_WINDOW_MICROS), 12 * 3600);
    }

    #[tokio::test]
    async fn identical_concurrent_work_runs_once_and_is_not_kept() {
        let c: Arc<Coalescer<&str, u32>> = Arc::new(Coalescer::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let first = {
            let c = c.clone();
            tokio::spawn(async move { c.run("k", || async move { rx.await.unwrap_or(0) }).await })
        };
        while c.running.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        // A second request for the key joins (polled once: it is waiting
        // on the running work); another key runs its own.
        let mut second =
            Box::pin(c.run("k", || async { panic!("BUG: joined work started again") }));
        tokio::select! {
            biased;
            _ = &mut second => panic!("BUG: finished before the work did"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(c.run("other", || async { 9 }).await, 9);
        tx.send(7).expect("send");
        assert_eq!(first.await.expect("first"), 7);
        assert_eq!(second.await, 7);
        // Finished work is forgotten: the next request computes afresh.
        assert!(c.running.lock().is_empty());
        assert_eq!(c.run("k", || async { 8 }).await, 8);
    }

    #[test]
    fn errors_recovered_from_rate() {
        assert_eq!(errors_of(3, 1.0 / 3.0), 1);
        assert_eq!(errors_of(0, 0.0), 0);
        assert_eq!(errors_of(1_000_003, 17.0 / 1_000_003.0), 17);
    }
}
