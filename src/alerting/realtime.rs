//! `GET /api/v1/dashboard/metrics/real-time?window=5m&group_by=service`:
//! per-second series straight from the in-memory rolling windows (no store
//! access), overall or per service or endpoint.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::Micros;
use serde_json::{Value, json};

use super::engine::{RT_ALL, RT_ENDPOINT, RT_SERVICE};
use std::collections::HashMap;

use super::engine::TenantState;
use super::window::{Bucket, FINE_SECS, GroupKey, Needs, Ring, sec_of};
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{ApiError, HttpResponse, json, parse_query, query_value};
use crate::meta::rfc3339;

/// Series answered by default and at most (busiest first): a dashboard
/// shows a handful of lines, and the answer must stay a few milliseconds.
const DEFAULT_SERIES: usize = 10;
const MAX_SERIES: usize = 100;

fn point(sec: i64, b: Option<&Bucket>) -> Value {
    let (count, errors) = b.map_or((0, 0), |b| (b.count, b.errors));
    let q = |p: f64| b.and_then(|b| b.latency.quantile(p));
    json!({
        "t": rfc3339(sec * Micros::SECOND),
        "count": count,
        "errors": errors,
        "error_rate": if count > 0 { errors as f64 / count as f64 } else { 0.0 },
        "p50": q(0.5), "p95": q(0.95), "p99": q(0.99),
    })
}

fn totals(b: &Bucket, window: i64) -> Value {
    json!({
        "count": b.count,
        "errors": b.errors,
        "events_per_second": b.count as f64 / window as f64,
        "error_rate": if b.count > 0 { b.errors as f64 / b.count as f64 } else { 0.0 },
        "p50": b.latency.quantile(0.5), "p95": b.latency.quantile(0.95), "p99": b.latency.quantile(0.99),
    })
}

pub async fn real_time(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_read()?;
    let q = parse_query(req.uri());
    let window_text = query_value(&q, "window").unwrap_or("5m").to_owned();
    let window = match crate::config::parse_duration(&window_text) {
        Ok(d) if d.as_secs() >= 1 && d.as_secs() as i64 <= FINE_SECS => d.as_secs() as i64,
        _ => {
            return Err(ApiError::invalid_field(
                "window",
                format!("must be a duration from 1s to {}m", FINE_SECS / 60),
            ));
        }
    };
    let group_by = query_value(&q, "group_by").unwrap_or("none").to_owned();
    let (spec, field) = match group_by.as_str() {
        "" | "none" => (RT_ALL, None),
        "service" => (RT_SERVICE, Some("service")),
        "endpoint" => (RT_ENDPOINT, Some("endpoint")),
        _ => {
            return Err(ApiError::invalid_field(
                "group_by",
                "must be service, endpoint or none",
            ));
        }
    };
    let limit = match query_value(&q, "limit") {
        None => DEFAULT_SERIES,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_SERIES),
            _ => {
                return Err(ApiError::invalid_field(
                    "limit",
                    "must be a positive integer",
                ));
            }
        },
    };
    let a = &state.alerting;
    let end = sec_of(a.clock.now()) - 1;
    let series = match a.existing_tenant(scope.as_str()) {
        Some(t) => render_series(&t.lock(), spec, field, end, window, limit),
        None => Vec::new(),
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "window": window_text,
            "window_seconds": window,
            "group_by": if field.is_some() { json!(group_by) } else { Value::Null },
            "from": rfc3339((end - window + 1) * Micros::SECOND),
            "to": rfc3339((end + 1) * Micros::SECOND),
            "series": series,
        }),
    ))
}

/// The busiest `limit` series of `spec` as per-second points over
/// `(end − window, end]` (`end` is the last complete second).
pub fn render_series(
    t: &TenantState,
    spec: &str,
    field: Option<&str>,
    end: i64,
    window: i64,
    limit: usize,
) -> Vec<Value> {
    let Some(s) = t.specs.get(spec) else {
        return Vec::new();
    };
    let needs = Needs {
        latency_sketch: true,
        users: false,
    };
    let mut ranked: Vec<(u64, &GroupKey, &Ring)> = s
        .series
        .iter()
        .map(|(k, r)| (r.summary(end, window, Needs::default()).count, k, r))
        .filter(|(n, _, _)| *n > 0)
        .collect();
    ranked.sort_by_key(|x| std::cmp::Reverse(x.0));
    ranked
        .into_iter()
        .take(limit)
        .map(|(_, key, ring)| {
            let by_sec: HashMap<i64, &Bucket> =
                ring.seconds(end, window).map(|(s, b)| (*s, b)).collect();
            let points: Vec<Value> = ((end - window + 1)..=end)
                .map(|s| point(s, by_sec.get(&s).copied()))
                .collect();
            let group = match field {
                Some(f) => json!({ f: key.first().cloned().flatten() }),
                None => json!({}),
            };
            json!({"group": group, "totals": totals(&ring.summary(end, window, needs), window),
                   "points": points})
        })
        .collect()
}
