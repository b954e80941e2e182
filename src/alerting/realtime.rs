//! `GET /api/v1/dashboard/metrics/real-time?window=5m&group_by=service`:
//! per-second series straight from the in-memory rolling windows (no store
//! access), overall or per service or endpoint.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pulsestream_storage::Micros;
use serde_json::{Value, json};

use super::engine::{RT_ALL, RT_ENDPOINT, RT_SERVICE};

use super::engine::TenantState;
use super::window::{Bucket, FINE_SECS, Needs, Slot, sec_of};
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{ApiError, HttpResponse, json, parse_query, query_value};
use crate::meta::rfc3339;
use crate::read::timeparse::format_rfc3339_millis;
use serde::Serialize;

/// Series answered by default and at most (busiest first): a dashboard
/// shows a handful of lines, and the answer must stay a few milliseconds.
const DEFAULT_SERIES: usize = 10;
const MAX_SERIES: usize = 100;

/// A second's point. Serialised straight into the answer (thousands of
/// them: no intermediate JSON tree).
#[derive(Serialize)]
pub struct Point {
    t: Rfc3339,
    count: u64,
    errors: u64,
    error_rate: f64,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

/// A second, written as RFC 3339 with milliseconds.
struct Rfc3339(i64);

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339_millis(Micros(self.0 * Micros::SECOND)))
    }
}

fn point(sec: i64, s: Option<&Slot>) -> Point {
    let b = s.map(Slot::to_bucket);
    let (count, errors) = b.as_ref().map_or((0, 0), |b| (b.count, b.errors));
    let q = |p: f64| b.as_ref().and_then(|b| b.latency.quantile(p));
    Point {
        t: Rfc3339(sec),
        count,
        errors,
        error_rate: if count > 0 {
            errors as f64 / count as f64
        } else {
            0.0
        },
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
    }
}

/// One series of the answer.
#[derive(Serialize)]
pub struct SeriesOut {
    group: Value,
    totals: Value,
    points: Vec<Point>,
}

#[derive(Serialize)]
struct Answer<'a> {
    window: &'a str,
    window_seconds: i64,
    group_by: Option<&'a str>,
    from: String,
    to: String,
    series: Vec<SeriesOut>,
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
    // Copy what the answer needs under the lock; render without it.
    let snaps = match a.existing_tenant(scope.as_str()) {
        Some(t) => snapshot(&t.lock(), spec, end, window, limit),
        None => Vec::new(),
    };
    let series = render(snaps, field, end, window);
    Ok(json(
        StatusCode::OK,
        &Answer {
            window: &window_text,
            window_seconds: window,
            group_by: field.map(|_| group_by.as_str()),
            from: rfc3339((end - window + 1) * Micros::SECOND),
            to: rfc3339((end + 1) * Micros::SECOND),
            series,
        },
    ))
}

/// One series of the answer, copied out of the windows.
pub struct SeriesSnapshot {
    group: Option<String>,
    totals: Bucket,
    /// The window's seconds that have data, ascending.
    seconds: Vec<(i64, Slot)>,
}

/// The busiest `limit` series of `spec` over `(end − window, end]` (`end`
/// is the last complete second), copied (cheap: a few hundred compact
/// slots per series) so the caller can release the tenant's lock before
/// rendering.
pub fn snapshot(
    t: &TenantState,
    spec: &str,
    end: i64,
    window: i64,
    limit: usize,
) -> Vec<SeriesSnapshot> {
    let Some(s) = t.spec(spec) else {
        return Vec::new();
    };
    let needs = Needs {
        latency_sketch: true,
        users: false,
    };
    let mut ranked: Vec<_> = s
        .series
        .iter()
        .map(|(k, r)| (r.count(end, window), k, r))
        .filter(|(n, _, _)| *n > 0)
        .collect();
    ranked.sort_by_key(|x| std::cmp::Reverse(x.0));
    ranked
        .into_iter()
        .take(limit)
        .map(|(_, key, ring)| SeriesSnapshot {
            group: key.first().cloned().flatten(),
            totals: ring.summary(end, window, needs),
            seconds: ring
                .seconds(end, window)
                .map(|(s, b)| (s, b.clone()))
                .collect(),
        })
        .collect()
}

/// The answer's `series`: per-second points of each snapshot, every second
/// of the window present.
pub fn render(
    snaps: Vec<SeriesSnapshot>,
    field: Option<&str>,
    end: i64,
    window: i64,
) -> Vec<SeriesOut> {
    snaps
        .into_iter()
        .map(|snap| {
            let mut have = snap.seconds.iter().peekable();
            let points: Vec<Point> = ((end - window + 1)..=end)
                .map(|s| {
                    while have.next_if(|(k, _)| *k < s).is_some() {}
                    point(s, have.next_if(|(k, _)| *k == s).map(|(_, b)| b))
                })
                .collect();
            let group = match field {
                Some(f) => json!({ f: snap.group }),
                None => json!({}),
            };
            SeriesOut {
                group,
                totals: totals(&snap.totals, window),
                points,
            }
        })
        .collect()
}

/// `snapshot` then `render` (benches and tests).
pub fn render_series(
    t: &TenantState,
    spec: &str,
    field: Option<&str>,
    end: i64,
    window: i64,
    limit: usize,
) -> Vec<SeriesOut> {
    render(snapshot(t, spec, end, window, limit), field, end, window)
}
