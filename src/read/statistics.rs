//! `GET /api/v1/ingestion/events/statistics`: totals, breakdowns by type,
//! service and status class, error rate, latency percentiles and rate over
//! the range and filters of a search, computed by the store's query engine
//! (aggregate queries run together, which rollups answer for sealed data).
//!
//! Each breakdown is its own one-field group-by, so the few event types
//! and status classes are always complete; services are listed busiest
//! first up to `MAX_SERVICES`, and `by_service_truncated` says when there
//! were more. No cardinality turns a valid GET into an error.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::Micros;
use pulsestream_storage::query::{
    AggOp, Aggregation, Field, MAX_QUERY_LIMIT, OrderBy, Predicate, Query, QueryResult, TimeRange,
    Value,
};
use serde_json::{Map, Value as Json, json};

use super::filters;
use super::query::{run_query_checked, value_json};
use super::search::param_errors;
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, HttpResponse};

/// Services listed in `by_service` at most (the busiest). A breakdown is
/// for reading; past this many the long tail is not information.
const MAX_SERVICES: usize = 1000;

/// Status classes always present in the answer, zero when absent.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn agg(op: AggOp, field: Option<Field>, alias: &str) -> Aggregation {
    Aggregation {
        op,
        field,
        alias: alias.to_owned(),
    }
}

fn base(tenant: &pulsestream_storage::TenantId, range: TimeRange, filter: &[Predicate]) -> Query {
    Query {
        tenants: vec![tenant.clone()],
        range,
        filter: filter.to_vec(),
        group_by: Vec::new(),
        interval: None,
        aggregations: vec![agg(AggOp::Count, None, "count")],
        order_by: Vec::new(),
        limit: MAX_QUERY_LIMIT,
    }
}

fn count_of(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Int(i)) => (*i).max(0) as u64,
        Some(Value::Float(f)) if *f >= 0.0 => *f as u64,
        _ => 0,
    }
}

/// The counts of a `(key, count)` result by key (the null group is left out).
fn breakdown(r: &QueryResult) -> Map<String, Json> {
    let mut m = BTreeMap::new();
    for row in &r.rows {
        let key = match row.first() {
            Some(Value::Str(s)) => s.clone(),
            Some(Value::Int(i)) => i.to_string(),
            _ => continue,
        };
        *m.entry(key).or_insert(0u64) += count_of(row.get(1));
    }
    m.into_iter().map(|(k, v)| (k, Json::from(v))).collect()
}

/// A count grouped by `field`.
fn grouped(
    tenant: &pulsestream_storage::TenantId,
    range: TimeRange,
    filter: &[Predicate],
    field: Field,
) -> Query {
    let mut q = base(tenant, range, filter);
    q.group_by = vec![field];
    q
}

pub async fn statistics(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require_read()?;
    let pairs = http::parse_query(req.uri());
    let mut errors = Vec::new();
    let get = |k: &str| http::query_value(&pairs, k);
    let range = filters::time_range(get("from"), get("to"), Micros::now(), &mut errors);
    let filter = filters::parse_filters(&pairs, &mut errors);
    if !errors.is_empty() {
        return Err(param_errors(errors));
    }
    let tenant = scope.tenant();

    let mut totals = base(tenant, range, &filter);
    totals.aggregations = vec![
        agg(AggOp::Count, None, "total"),
        agg(AggOp::ErrorRate, None, "error_rate"),
        agg(AggOp::Avg, Some(Field::LatencyMs), "avg"),
        agg(AggOp::P50, Some(Field::LatencyMs), "p50"),
        agg(AggOp::P95, Some(Field::LatencyMs), "p95"),
        agg(AggOp::P99, Some(Field::LatencyMs), "p99"),
    ];
    let by_type = grouped(tenant, range, &filter, Field::EventType);
    let by_class = grouped(tenant, range, &filter, Field::StatusClass);
    let mut by_service = grouped(tenant, range, &filter, Field::Service);
    by_service.order_by = vec![OrderBy {
        column: "count".to_owned(),
        desc: true,
    }];
    by_service.limit = MAX_SERVICES;
    let (totals, by_type, by_class, by_service) = tokio::join!(
        run_query_checked(&state, totals),
        run_query_checked(&state, by_type),
        run_query_checked(&state, by_class),
        run_query_checked(&state, by_service),
    );
    let (totals, by_type, by_class) = (totals?, by_type?, by_class?);
    let mut warnings = super::warnings::merge(totals.warnings, by_type.warnings);
    warnings = super::warnings::merge(warnings, by_class.warnings);
    let (totals, by_type, by_class) = (totals.value, by_type.value, by_class.value);
    // Services are the one open-ended breakdown: past the memory budget it
    // is left out (and said so) rather than failing the whole answer.
    let (services, services_truncated) = match by_service {
        Ok(r) => {
            warnings = super::warnings::merge(warnings, r.warnings);
            (breakdown(&r.value), r.value.stats.truncated)
        }
        Err(e) if e.code == "query_too_large" => (Map::new(), true),
        Err(e) => return Err(e),
    };

    let row = totals.rows.first();
    let cell = |i: usize| row.and_then(|r| r.get(i));
    let total = count_of(cell(0));
    let num = |i: usize| cell(i).map(value_json).unwrap_or(Json::Null);
    let error_rate = match cell(1) {
        Some(Value::Float(f)) if f.is_finite() => *f,
        Some(Value::Int(i)) => *i as f64,
        _ => 0.0,
    };
    let mut classes = breakdown(&by_class);
    for c in STATUS_CLASSES {
        classes.entry(c.to_owned()).or_insert(Json::from(0));
    }
    let seconds = (range.to.0.saturating_sub(range.from.0) as f64 / 1e6).max(1e-6);
    let mut answer = json!({
            "from": super::timeparse::format_rfc3339_millis(range.from),
            "to": super::timeparse::format_rfc3339_millis(range.to),
            "total": total,
            "by_type": breakdown(&by_type),
            "by_service": services,
            "by_service_truncated": services_truncated,
            "by_status_class": classes,
            "error_rate": if total == 0 { 0.0 } else { error_rate },
            "latency_ms": {"avg": num(2), "p50": num(3), "p95": num(4), "p99": num(5)},
            "events_per_second": total as f64 / seconds,
    });
    super::warnings::annotate(&mut answer, &warnings);
    Ok(http::json(StatusCode::OK, &answer))
}
