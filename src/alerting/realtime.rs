//! `GET /api/v1/dashboard/metrics/real-time?window=5m&group_by=service`:
//! per-second series straight from the in-memory rolling windows (no store
//! access), overall or per service or endpoint.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::Micros;
use serde_json::{Value, json};

use super::engine::{RT_ALL, RT_ENDPOINT, RT_SERVICE};
use super::window::{Bucket, FINE_SECS, Needs, sec_of};
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
    let now = a.clock.now();
    // The current second is still filling: the series ends at the last
    // complete one.
    let end = sec_of(now) - 1;
    let needs = Needs {
        latency_sketch: true,
        users: false,
    };
    let mut series: Vec<(u64, Value)> = Vec::new();
    if let Some(t) = a.existing_tenant(scope.as_str()) {
        let t = t.lock();
        if let Some(s) = t.specs.get(spec) {
            let mut ranked: Vec<(u64, &Vec<Option<String>>, &super::window::Ring)> = s
                .series
                .iter()
                .map(|(k, r)| (r.summary(end, window, Needs::default()).count, k, r))
                .filter(|(n, _, _)| *n > 0)
                .collect();
            ranked.sort_by_key(|x| std::cmp::Reverse(x.0));
            for (n, key, ring) in ranked.into_iter().take(limit) {
                let by_sec: std::collections::HashMap<i64, &Bucket> =
                    ring.seconds(end, window).map(|(s, b)| (*s, b)).collect();
                let points: Vec<Value> = ((end - window + 1)..=end)
                    .map(|s| point(s, by_sec.get(&s).copied()))
                    .collect();
                let group = match field {
                    Some(f) => json!({ f: key.first().cloned().flatten() }),
                    None => json!({}),
                };
                series.push((
                    n,
                    json!({"group": group, "totals": totals(&ring.summary(end, window, needs), window),
                           "points": points}),
                ));
            }
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({
            "window": window_text,
            "window_seconds": window,
            "group_by": if field.is_some() { json!(group_by) } else { Value::Null },
            "from": rfc3339((end - window + 1) * Micros::SECOND),
            "to": rfc3339((end + 1) * Micros::SECOND),
            "series": series.into_iter().map(|x| x.1).collect::<Vec<_>>(),
        }),
    ))
}
