//! Behaviour of the query engine against a naive reference model: random
//! events in in-memory units, random queries, every answer compared with
//! what a row-by-row evaluation of the contract's rules gives.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use pulsestream_storage::StorageError;
use pulsestream_storage::event::{AttrValue, Event, Method, Severity};
use pulsestream_storage::query::aggregate::cmp_values;
use pulsestream_storage::query::engine::{ExecOptions, execute, execute_with, search};
use pulsestream_storage::query::testing::MemUnit;
use pulsestream_storage::query::{
    AggOp, Aggregation, CmpOp, Field, OrderBy, Predicate, Query, QueryResult, SearchRequest,
    TimeRange, Value,
};
use pulsestream_storage::scan::ScanUnit;
use pulsestream_storage::types::{EventId, Micros, TenantId};

const T0: i64 = 1_764_028_800_000_000; // 2025-11-25T00:00:00Z
const SERVICES: [&str; 4] = ["auth", "checkout", "orders", "search"];
const ENDPOINTS: [&str; 5] = ["/a", "/a/b", "/api/v1/x", "/api/v1/y", "/z"];
const TYPES: [&str; 3] = ["api_call", "error", "user_action"];
const STATUSES: [u16; 9] = [200, 201, 204, 301, 404, 429, 500, 503, 504];

fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("valid tenant")
}

// ---------------------------------------------------------------- model

fn field_value(e: &Event, f: &Field, tenant: &str) -> Value {
    let s = |o: &Option<String>| o.clone().map_or(Value::Null, Value::Str);
    match f {
        Field::Timestamp => Value::Time(e.timestamp),
        Field::ReceivedAt => Value::Time(e.received_at),
        Field::EventType => Value::Str(e.event_type.clone()),
        Field::Service => s(&e.service),
        Field::Endpoint => s(&e.endpoint),
        Field::Method => e
            .method
            .map_or(Value::Null, |m| Value::Str(m.as_str().into())),
        Field::Severity => e
            .severity
            .map_or(Value::Null, |m| Value::Str(m.as_str().into())),
        Field::StatusCode => e.status_code.map_or(Value::Null, |c| Value::Int(c.into())),
        Field::StatusClass => e
            .status_code
            .map_or(Value::Null, |c| Value::Str(format!("{}xx", c / 100))),
        Field::LatencyMs => e.latency_ms.map_or(Value::Null, Value::Float),
        Field::RequestBytes => e
            .request_bytes
            .map_or(Value::Null, |b| Value::Int(b as i64)),
        Field::ResponseBytes => e
            .response_bytes
            .map_or(Value::Null, |b| Value::Int(b as i64)),
        Field::UserId => s(&e.user_id),
        Field::Region => s(&e.region),
        Field::TraceId => s(&e.trace_id),
        Field::Message => s(&e.message),
        Field::Attr(k) => match e.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v) {
            Some(AttrValue::Str(x)) => Value::Str(x.clone()),
            Some(AttrValue::Num(x)) => Value::Float(*x),
            Some(AttrValue::Bool(x)) => Value::Bool(*x),
            None => Value::Null,
        },
        Field::Tenant => Value::Str(tenant.into()),
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Time(t) => Some(t.0 as f64),
        _ => None,
    }
}

fn model_eq(field: &Field, v: &Value, want: &Value) -> bool {
    match (v, want) {
        (Value::Null, Value::Null) => true,
        (Value::Str(a), Value::Str(b)) if matches!(field, Field::Method | Field::Severity) => {
            a.eq_ignore_ascii_case(b)
        }
        (Value::Str(a), Value::Str(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (a, b) => matches!((num(a), num(b)), (Some(x), Some(y)) if x == y),
    }
}

fn model_matches(e: &Event, p: &Predicate, tenant: &str) -> bool {
    match p {
        Predicate::In(f, vals) => {
            let v = field_value(e, f, tenant);
            vals.iter().any(|w| model_eq(f, &v, w))
        }
        Predicate::Cmp(f, op, x) => match num(&field_value(e, f, tenant)) {
            None => false,
            Some(v) => match op {
                CmpOp::Eq => v == *x,
                CmpOp::Ne => v != *x,
                CmpOp::Gt => v > *x,
                CmpOp::Gte => v >= *x,
                CmpOp::Lt => v < *x,
                CmpOp::Lte => v <= *x,
            },
        },
        Predicate::Prefix(f, s) => {
            matches!(field_value(e, f, tenant), Value::Str(v) if v.starts_with(s.as_str()))
        }
        Predicate::Contains(f, s) => {
            matches!(field_value(e, f, tenant), Value::Str(v) if v.contains(s.as_str()))
        }
        Predicate::StatusClass(c) => e.status_code.is_some_and(|s| s / 100 == u16::from(*c)),
        Predicate::Exists(f) => field_value(e, f, tenant) != Value::Null,
    }
}

#[derive(Default, Clone)]
struct ModelCell {
    count: u64,
    errors: u64,
    vals: Vec<Vec<f64>>,
    distinct: Vec<HashSet<String>>,
    non_null: Vec<u64>,
    /// Apdex (satisfied, tolerating, total) per aggregation.
    apdex: Vec<(u64, u64, u64)>,
}

/// Evaluates `q` row by row over `(tenant, events)`.
fn model(data: &[(String, Vec<Event>)], q: &Query) -> Vec<Vec<Value>> {
    let naggs = q.aggregations.len();
    let blank = ModelCell {
        vals: vec![Vec::new(); naggs],
        distinct: vec![HashSet::new(); naggs],
        non_null: vec![0; naggs],
        apdex: vec![(0, 0, 0); naggs],
        ..Default::default()
    };
    // Group key as debug strings (Value is not Ord), with the values kept.
    let mut groups: BTreeMap<String, (Vec<Value>, BTreeMap<i64, ModelCell>)> = BTreeMap::new();
    for (t, events) in data {
        for e in events {
            if !q.range.contains(e.timestamp) || !q.filter.iter().all(|p| model_matches(e, p, t)) {
                continue;
            }
            let key: Vec<Value> = q.group_by.iter().map(|f| field_value(e, f, t)).collect();
            let bucket = q.interval.map_or(0, |w| e.timestamp.floor_to(w).0);
            let g = groups
                .entry(format!("{key:?}"))
                .or_insert_with(|| (key, BTreeMap::new()));
            let c = g.1.entry(bucket).or_insert_with(|| blank.clone());
            c.count += 1;
            c.errors += u64::from(e.is_error());
            for (i, a) in q.aggregations.iter().enumerate() {
                if let AggOp::Apdex(t_us) = a.op {
                    let f = a.field.clone().unwrap_or(Field::LatencyMs);
                    let t_ms = t_us as f64 / 1000.0;
                    let (sat, tol, total) = &mut c.apdex[i];
                    match num(&field_value(e, &f, t)) {
                        _ if e.is_error() => *total += 1,
                        Some(x) => {
                            *total += 1;
                            *sat += u64::from(x <= t_ms);
                            *tol += u64::from(x > t_ms && x <= 4.0 * t_ms);
                        }
                        None => {}
                    }
                    continue;
                }
                let Some(f) = &a.field else { continue };
                let v = field_value(e, f, t);
                if v == Value::Null {
                    continue;
                }
                c.non_null[i] += 1;
                c.distinct[i].insert(format!("{v:?}"));
                if let Some(x) = num(&v) {
                    c.vals[i].push(x);
                }
            }
        }
    }
    let buckets: Vec<i64> = match q.interval {
        None => vec![0],
        Some(w) => {
            let mut b = q.range.from.floor_to(w).0;
            let mut out = Vec::new();
            while b < q.range.to.0 {
                out.push(b);
                b += w;
            }
            out
        }
    };
    if q.group_by.is_empty() && !groups.contains_key("[]") {
        groups.insert("[]".into(), (Vec::new(), BTreeMap::new()));
    }
    let mut rows = Vec::new();
    for (_, (key, cells)) in groups {
        for b in &buckets {
            let c = cells.get(b).cloned().unwrap_or_else(|| blank.clone());
            let mut row = key.clone();
            if q.interval.is_some() {
                row.push(Value::Time(Micros(*b)));
            }
            for (i, a) in q.aggregations.iter().enumerate() {
                let mut v = c.vals[i].clone();
                v.sort_by(f64::total_cmp);
                let q_at = |q: f64| {
                    if v.is_empty() {
                        Value::Null
                    } else {
                        // Linear interpolation between the neighbouring ranks.
                        let pos = q * (v.len() - 1) as f64;
                        let (lo, hi) = (v[pos.floor() as usize], v[pos.ceil() as usize]);
                        Value::Float(lo + (hi - lo) * (pos - pos.floor()))
                    }
                };
                row.push(match a.op {
                    AggOp::Count if a.field.is_some() => Value::Int(c.non_null[i] as i64),
                    AggOp::Count => Value::Int(c.count as i64),
                    AggOp::ErrorRate if c.count == 0 => Value::Float(0.0),
                    AggOp::ErrorRate => Value::Float(c.errors as f64 / c.count as f64),
                    AggOp::Apdex(_) => match c.apdex[i] {
                        (_, _, 0) => Value::Null,
                        (sat, tol, n) => Value::Float((sat as f64 + tol as f64 / 2.0) / n as f64),
                    },
                    _ if v.is_empty() && a.op != AggOp::CountDistinct => Value::Null,
                    AggOp::Sum => Value::Float(v.iter().sum()),
                    AggOp::Avg => Value::Float(v.iter().sum::<f64>() / v.len() as f64),
                    AggOp::Min => Value::Float(v[0]),
                    AggOp::Max => Value::Float(v[v.len() - 1]),
                    AggOp::P50 => q_at(0.5),
                    AggOp::P90 => q_at(0.9),
                    AggOp::P95 => q_at(0.95),
                    AggOp::P99 => q_at(0.99),
                    AggOp::CountDistinct => Value::Int(c.distinct[i].len() as i64),
                });
            }
            rows.push(row);
        }
    }
    let keys = q.group_by.len() + usize::from(q.interval.is_some());
    rows.sort_by(|a, b| {
        (0..keys)
            .map(|c| cmp_values(&a[c], &b[c], false))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    rows
}

fn close(a: &Value, b: &Value, op: Option<AggOp>) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            let tol = match op {
                Some(AggOp::P50 | AggOp::P90 | AggOp::P95 | AggOp::P99) => 0.0101,
                _ => 1e-9,
            };
            (x - y).abs() <= tol * x.abs().max(y.abs()) + 1e-9
        }
        _ => a == b,
    }
}

fn assert_same(got: &QueryResult, want: &[Vec<Value>], q: &Query) {
    assert_eq!(got.rows.len(), want.len(), "row count; query {q:?}");
    let keys = got.columns.len() - q.aggregations.len();
    for (g, w) in got.rows.iter().zip(want) {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            let op = i.checked_sub(keys).map(|j| q.aggregations[j].op);
            assert!(
                close(a, b, op),
                "cell {i}: {a:?} vs {b:?}\nrow {g:?}\nvs  {w:?}"
            );
        }
    }
}

// ----------------------------------------------------------- generators

fn arb_event() -> impl Strategy<Value = Event> {
    (
        (0i64..7_200, 0usize..3, 0usize..5, 0usize..6, 0usize..10),
        (0usize..10, prop::option::of(0.0f64..2_000.0), 0usize..4),
        (0usize..4, 0usize..3, 0usize..25),
    )
        .prop_map(
            |((secs, ty, svc, ep, m), (st, lat, sev), (tier, retry, user))| Event {
                id: None,
                timestamp: Micros(T0 + secs * 1_000_000 + (secs % 7)),
                received_at: Micros(T0 + secs * 1_000_000 + 500),
                event_type: TYPES[ty].into(),
                service: SERVICES.get(svc).map(|s| (*s).into()),
                endpoint: ENDPOINTS.get(ep).map(|s| (*s).into()),
                method: Method::ALL.get(m).copied(),
                status_code: STATUSES.get(st).copied(),
                latency_ms: lat,
                severity: Severity::ALL.get(sev).copied(),
                request_bytes: Some(secs as u64 % 500),
                response_bytes: None,
                user_id: (user < 20).then(|| format!("u-{user}")),
                region: None,
                trace_id: None,
                message: (st >= 6).then(|| format!("upstream timeout {st}")),
                attributes: match tier {
                    0 => vec![],
                    1 => vec![("tier".into(), AttrValue::Str("gold".into()))],
                    2 => vec![("tier".into(), AttrValue::Num(2.0))],
                    _ => vec![
                        ("tier".into(), AttrValue::Str("free".into())),
                        ("retry".into(), AttrValue::Bool(retry == 1)),
                    ],
                },
            },
        )
}

fn arb_predicate() -> impl Strategy<Value = Predicate> {
    let s = |v: &str| Value::Str(v.into());
    prop_oneof![
        Just(Predicate::In(Field::Service, vec![s("checkout")])),
        Just(Predicate::In(
            Field::Service,
            vec![s("auth"), s("search"), Value::Null]
        )),
        Just(Predicate::In(Field::EventType, vec![s("api_call")])),
        Just(Predicate::In(Field::Method, vec![s("get"), s("POST")])),
        Just(Predicate::In(Field::StatusClass, vec![s("5xx")])),
        Just(Predicate::In(
            Field::StatusCode,
            vec![Value::Int(404), Value::Int(503)]
        )),
        Just(Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0)),
        Just(Predicate::Cmp(Field::StatusCode, CmpOp::Lt, 400.0)),
        Just(Predicate::Cmp(Field::StatusCode, CmpOp::Ne, 200.0)),
        Just(Predicate::Cmp(Field::LatencyMs, CmpOp::Gt, 900.5)),
        Just(Predicate::Cmp(Field::RequestBytes, CmpOp::Lte, 120.0)),
        Just(Predicate::Prefix(Field::Endpoint, "/api".into())),
        Just(Predicate::Contains(Field::Message, "timeout 7".into())),
        Just(Predicate::StatusClass(2)),
        Just(Predicate::StatusClass(5)),
        Just(Predicate::Exists(Field::LatencyMs)),
        Just(Predicate::Exists(Field::Attr("tier".into()))),
        Just(Predicate::In(Field::Attr("tier".into()), vec![s("gold")])),
        Just(Predicate::In(
            Field::Attr("tier".into()),
            vec![Value::Int(2)]
        )),
        Just(Predicate::In(
            Field::Attr("retry".into()),
            vec![Value::Bool(true)]
        )),
        Just(Predicate::In(Field::Attr("tier".into()), vec![Value::Null])),
        Just(Predicate::In(Field::Tenant, vec![s("t1")])),
    ]
}

fn all_aggregations() -> Vec<Aggregation> {
    let agg = |op, field: Option<Field>, alias: &str| Aggregation {
        op,
        field,
        alias: alias.into(),
    };
    let lat = || Some(Field::LatencyMs);
    vec![
        agg(AggOp::Count, None, "count"),
        agg(AggOp::ErrorRate, None, "error_rate"),
        agg(AggOp::Sum, lat(), "sum"),
        agg(AggOp::Avg, lat(), "avg"),
        agg(AggOp::Min, lat(), "min"),
        agg(AggOp::Max, lat(), "max"),
        agg(AggOp::P50, lat(), "p50"),
        agg(AggOp::P90, lat(), "p90"),
        agg(AggOp::P95, lat(), "p95"),
        agg(AggOp::P99, lat(), "p99"),
    ]
}

fn extra_aggregations() -> Vec<Aggregation> {
    vec![
        Aggregation {
            op: AggOp::CountDistinct,
            field: Some(Field::UserId),
            alias: "users".into(),
        },
        Aggregation {
            op: AggOp::Sum,
            field: Some(Field::RequestBytes),
            alias: "bytes".into(),
        },
        Aggregation {
            op: AggOp::Count,
            field: Some(Field::Attr("tier".into())),
            alias: "tiers".into(),
        },
        // Apdex needs each row's error flag, which rollups do not keep.
        Aggregation {
            op: AggOp::Apdex(40_000),
            field: Some(Field::LatencyMs),
            alias: "apdex".into(),
        },
        Aggregation {
            op: AggOp::Apdex(250),
            field: None,
            alias: "apdex_tight".into(),
        },
    ]
}

fn arb_group_by() -> impl Strategy<Value = Vec<Field>> {
    prop::sample::subsequence(
        vec![
            Field::Service,
            Field::Endpoint,
            Field::Method,
            Field::StatusClass,
            Field::EventType,
            Field::Attr("tier".into()),
            Field::Tenant,
        ],
        0..=2,
    )
}

/// Splits events into units of a tenant: `cuts` decide unit boundaries.
fn units_of(
    t: &str,
    events: &[Event],
    parts: usize,
    block: usize,
    rollups: bool,
) -> Vec<Arc<dyn ScanUnit>> {
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.timestamp);
    let per = sorted.len().div_ceil(parts.max(1)).max(1);
    sorted
        .chunks(per)
        .map(|c| {
            let u = MemUnit::new(&tenant(t), c.to_vec(), block, false);
            if rollups { u.with_rollups(c) } else { u }.into_dyn()
        })
        .collect()
}

fn with_ids(mut events: Vec<Event>, first_seq: u64) -> Vec<Event> {
    for (i, e) in events.iter_mut().enumerate() {
        e.id = Some(EventId {
            timestamp: e.timestamp,
            seq: first_seq + i as u64,
        });
    }
    events
}

fn query(range: (i64, i64), filter: Vec<Predicate>, group_by: Vec<Field>) -> Query {
    Query {
        tenants: vec![tenant("t1")],
        range: TimeRange {
            from: Micros(T0 + range.0 * 1_000_000),
            to: Micros(T0 + range.1 * 1_000_000),
        },
        filter,
        group_by,
        interval: None,
        aggregations: all_aggregations(),
        order_by: vec![],
        limit: 100_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Row path and rollup path both equal the model, for every op,
    /// filter kind, group-by and bucket width.
    #[test]
    fn answers_equal_the_model(
        a in prop::collection::vec(arb_event(), 1..300),
        b in prop::collection::vec(arb_event(), 1..100),
        filter in prop::collection::vec(arb_predicate(), 0..3),
        group_by in arb_group_by(),
        interval in prop::option::of(prop::sample::select(vec![60i64, 300, 7, 3_600])),
        from in 0i64..3_000,
        len in 1i64..8_000,
        parts in 1usize..4,
        block in 1usize..80,
        extra in any::<bool>(),
    ) {
        let a = with_ids(a, 0);
        let b = with_ids(b, 10_000);
        let mut q = query((from, from + len), filter, group_by);
        q.interval = interval.map(|s| s * 1_000_000);
        if extra {
            q.aggregations.extend(extra_aggregations());
        }
        let data = vec![("t1".to_owned(), a.clone()), ("t2".to_owned(), b.clone())];
        let want = model(&data, &q);
        for rollups in [false, true] {
            let mut units = units_of("t1", &a, parts, block, rollups);
            units.extend(units_of("t2", &b, 1, block, rollups));
            // Force the rollup path wherever it is allowed.
            let opts = ExecOptions {
                rollup_min_ratio: if rollups { 0 } else { u64::MAX },
            };
            let got = execute_with(&units, &q, opts).expect("query runs");
            assert_same(&got, &want, &q);
            prop_assert_eq!(
                got.stats.segments_scanned + got.stats.segments_pruned
                    + got.stats.segments_from_rollups,
                units.len() as u64
            );
        }
    }

    /// Paging through search with cursors yields every match exactly
    /// once, newest first.
    #[test]
    fn search_pages_cover_every_match_once(
        a in prop::collection::vec(arb_event(), 1..300),
        filter in prop::collection::vec(arb_predicate(), 0..2),
        parts in 1usize..4,
        block in 1usize..60,
        limit in 1usize..40,
        from in 0i64..3_000,
    ) {
        let a = with_ids(a, 7);
        let units = units_of("t1", &a, parts, block, false);
        let range = TimeRange {
            from: Micros(T0 + from * 1_000_000),
            to: Micros(T0 + 7_000 * 1_000_000),
        };
        let mut want: Vec<Event> = a
            .iter()
            .filter(|e| range.contains(e.timestamp) && filter.iter().all(|p| model_matches(e, p, "t1")))
            .cloned()
            .collect();
        want.sort_by_key(|e| std::cmp::Reverse(e.id));
        let mut got: Vec<Event> = Vec::new();
        let mut cursor = None;
        loop {
            let r = search(&units, &SearchRequest {
                tenant: tenant("t1"),
                range,
                filter: filter.clone(),
                limit,
                cursor,
            }).expect("search runs");
            prop_assert!(r.events.len() <= limit);
            got.extend(r.events);
            match r.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            let mut w = w.clone();
            w.attributes.sort_by(|x, y| x.0.cmp(&y.0));
            prop_assert_eq!(g, &w);
        }
    }
}

// ------------------------------------------------------ targeted cases

fn ev(secs: i64, service: &str, status: u16, latency: f64) -> Event {
    Event {
        timestamp: Micros(T0 + secs * 1_000_000),
        received_at: Micros(T0 + secs * 1_000_000),
        event_type: "api_call".into(),
        service: Some(service.into()),
        endpoint: Some("/api/v1/orders".into()),
        method: Some(Method::Get),
        status_code: Some(status),
        latency_ms: Some(latency),
        ..Default::default()
    }
}

#[test]
fn empty_buckets_are_filled_for_every_group() {
    let events = vec![ev(10, "a", 200, 5.0), ev(130, "b", 500, 7.0)];
    let units = vec![MemUnit::new(&tenant("t1"), events, 10, true).into_dyn()];
    let mut q = query((0, 240), vec![], vec![Field::Service]);
    q.interval = Some(60 * 1_000_000);
    q.aggregations.truncate(3);
    let r = execute(&units, &q).unwrap();
    assert_eq!(
        r.columns,
        ["service", "bucket", "count", "error_rate", "sum"]
    );
    assert_eq!(r.rows.len(), 8, "2 groups x 4 buckets");
    let row = |i: usize| r.rows[i].clone();
    assert_eq!(row(0)[2], Value::Int(1));
    assert_eq!(
        row(1),
        vec![
            Value::Str("a".into()),
            Value::Time(Micros(T0 + 60_000_000)),
            Value::Int(0),
            Value::Float(0.0),
            Value::Null
        ]
    );
    assert_eq!(row(6)[2..4], [Value::Int(1), Value::Float(1.0)]);
    // Without group-by every bucket in range appears, even with no data;
    // the first bucket is the aligned one holding `from`.
    let mut q2 = query((1_000, 1_180), vec![], vec![]);
    q2.interval = Some(60 * 1_000_000);
    q2.aggregations.truncate(1);
    let r2 = execute(&units, &q2).unwrap();
    assert_eq!(r2.rows.len(), 4);
    assert_eq!(r2.rows[0][0], Value::Time(Micros(T0 + 960_000_000)));
    assert!(r2.rows.iter().all(|r| r[1] == Value::Int(0)));
}

#[test]
fn order_by_and_limit_truncate() {
    let mut events = Vec::new();
    for (i, svc) in ["a", "b", "c", "d"].iter().enumerate() {
        for k in 0..=i {
            events.push(ev(k as i64, svc, 200, 1.0 + k as f64));
        }
    }
    let units = vec![MemUnit::new(&tenant("t1"), events, 3, false).into_dyn()];
    let mut q = query((0, 100), vec![], vec![Field::Service]);
    q.aggregations.truncate(1);
    q.order_by = vec![OrderBy {
        column: "count".into(),
        desc: true,
    }];
    q.limit = 2;
    let r = execute(&units, &q).unwrap();
    assert!(r.stats.truncated);
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Str("d".into()), Value::Int(4)],
            vec![Value::Str("c".into()), Value::Int(3)],
        ]
    );
    q.limit = 4;
    assert!(!execute(&units, &q).unwrap().stats.truncated);
    q.order_by[0].column = "nope".into();
    assert!(matches!(
        execute(&units, &q),
        Err(StorageError::Invalid { .. })
    ));
}

#[test]
fn pruning_skips_units_and_blocks() {
    let hour = 3_600;
    let u1 = MemUnit::new(
        &tenant("t1"),
        (0..100).map(|i| ev(i, "auth", 200, 1.0)).collect(),
        10,
        true,
    );
    let mut late: Vec<Event> = (0..100).map(|i| ev(hour + i, "orders", 200, 1.0)).collect();
    late[95].status_code = Some(503);
    let u2 = Arc::new(MemUnit::new(&tenant("t1"), late, 10, true));
    let units: Vec<Arc<dyn ScanUnit>> = vec![u1.into_dyn(), u2.clone()];

    // Time: only the second unit overlaps.
    let q = query((hour, 2 * hour), vec![], vec![]);
    let r = execute(&units, &q).unwrap();
    assert_eq!((r.stats.segments_scanned, r.stats.segments_pruned), (1, 1));
    assert_eq!(r.rows[0][0], Value::Int(100));

    // Distinct list: no unit has service "billing".
    let f = vec![Predicate::In(
        Field::Service,
        vec![Value::Str("billing".into())],
    )];
    let r = execute(&units, &query((0, 2 * hour), f, vec![])).unwrap();
    assert_eq!((r.stats.segments_scanned, r.stats.segments_pruned), (0, 2));

    // Block min/max: only the block holding the 503 is read.
    let before = u2.reads();
    let f = vec![Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0)];
    let r = execute(&units, &query((0, 2 * hour), f, vec![])).unwrap();
    assert_eq!(r.rows[0][0], Value::Int(1));
    assert_eq!(u2.reads() - before, 1);
    assert_eq!(r.stats.scanned_rows, 10);
}

#[test]
fn rollups_answer_whole_units_only() {
    let events: Vec<Event> = (0..600)
        .map(|i| ev(i * 6, "auth", 200 + (i % 2) as u16 * 300, i as f64))
        .collect();
    let units = vec![
        MemUnit::new(&tenant("t1"), events.clone(), 50, true)
            .with_rollups(&events)
            .into_dyn(),
    ];
    let mut q = query(
        (0, 3_600),
        vec![Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0)],
        vec![Field::Service],
    );
    q.interval = Some(300 * 1_000_000);
    let force = ExecOptions {
        rollup_min_ratio: 0,
    };
    let r = execute_with(&units, &q, force).unwrap();
    assert_eq!(r.stats.segments_from_rollups, 1);
    assert_eq!(r.stats.scanned_rows, 0);
    assert_same(&r, &model(&[("t1".into(), events.clone())], &q), &q);
    // The default answers from rollups too, with the same result...
    let r = execute(&units, &q).unwrap();
    assert_eq!(r.stats.segments_from_rollups, 1);
    assert_same(&r, &model(&[("t1".into(), events.clone())], &q), &q);
    // ...but a unit with fewer rows per rollup row than asked reads rows
    // (5 rows per minute-rollup row here)...
    let sparse = ExecOptions {
        rollup_min_ratio: 6,
    };
    let r = execute_with(&units, &q, sparse).unwrap();
    assert_eq!(r.stats.segments_from_rollups, 0);
    assert_same(&r, &model(&[("t1".into(), events.clone())], &q), &q);
    // ...while its 2 route-rollup rows answer a query without interval.
    q.interval = None;
    let r = execute_with(&units, &q, sparse).unwrap();
    assert_eq!(r.stats.segments_from_rollups, 1);
    // A range cutting the unit reads rows.
    let q2 = query((1, 3_600), vec![], vec![]);
    let from_rollups = |q: &Query| {
        execute_with(&units, q, force)
            .unwrap()
            .stats
            .segments_from_rollups
    };
    assert_eq!(from_rollups(&q2), 0);
    // A status filter that splits a class reads rows.
    let q3 = query(
        (0, 3_600),
        vec![Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 501.0)],
        vec![],
    );
    assert_eq!(from_rollups(&q3), 0);
    // count_distinct cannot come from rollups.
    let mut q4 = query((0, 3_600), vec![], vec![]);
    q4.aggregations = extra_aggregations();
    assert_eq!(from_rollups(&q4), 0);
}

#[test]
fn corrupted_blocks_fail_the_query_with_a_typed_error() {
    let events: Vec<Event> = (0..40).map(|i| ev(i, "auth", 200, 1.0)).collect();
    let units = vec![
        MemUnit::new(&tenant("t1"), events, 10, true)
            .with_corrupt_block(2)
            .into_dyn(),
    ];
    let err = execute(&units, &query((0, 100), vec![], vec![])).unwrap_err();
    assert!(matches!(err, StorageError::Corrupted { ref location, .. } if location.contains("t1")));
    let req = SearchRequest {
        tenant: tenant("t1"),
        range: TimeRange {
            from: Micros(T0),
            to: Micros(T0 + 100_000_000),
        },
        filter: vec![],
        limit: 100,
        cursor: None,
    };
    assert!(matches!(
        search(&units, &req),
        Err(StorageError::Corrupted { .. })
    ));
}

#[test]
fn search_stops_once_older_units_cannot_compete() {
    let mk = |start: i64, seq: u64| {
        let mut es: Vec<Event> = (0..200)
            .map(|i| ev(start + i, "auth", 500 + (i % 2) as u16, 1.0))
            .collect();
        es = with_ids(es, seq);
        Arc::new(MemUnit::new(&tenant("t1"), es, 20, true))
    };
    let old = mk(0, 0);
    let new = mk(1_000, 1_000);
    let units: Vec<Arc<dyn ScanUnit>> = vec![old.clone(), new.clone()];
    let req = SearchRequest {
        tenant: tenant("t1"),
        range: TimeRange {
            from: Micros(T0),
            to: Micros(T0 + 10_000_000_000),
        },
        filter: vec![Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 501.0)],
        limit: 5,
        cursor: None,
    };
    let r = search(&units, &req).unwrap();
    assert_eq!(r.events.len(), 5);
    assert_eq!(r.events[0].timestamp, Micros(T0 + 1_199_000_000));
    assert!(r.events.iter().all(|e| e.status_code == Some(501)));
    assert!(r.next_cursor.is_some());
    assert_eq!(old.reads(), 0, "the older unit is never read");
    assert!(
        new.reads() <= 2,
        "only the newest block is decoded (filter + rest)"
    );
    assert_eq!(r.stats.segments_pruned, 1);
}

#[test]
fn events_per_tenant_counts_without_decoding() {
    let a = Arc::new(MemUnit::new(
        &tenant("ta"),
        (0..30).map(|i| ev(i, "x", 200, 1.0)).collect(),
        7,
        true,
    ));
    let b = Arc::new(MemUnit::new(
        &tenant("tb"),
        (0..12).map(|i| ev(i, "x", 200, 1.0)).collect(),
        7,
        true,
    ));
    let units: Vec<Arc<dyn ScanUnit>> = vec![a.clone(), b.clone()];
    let mut q = query((0, 100), vec![], vec![Field::Tenant]);
    q.aggregations.truncate(1);
    let r = execute(&units, &q).unwrap();
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Str("ta".into()), Value::Int(30)],
            vec![Value::Str("tb".into()), Value::Int(12)],
        ]
    );
    assert_eq!(a.reads() + b.reads(), 0);
}

#[test]
fn bad_queries_are_typed_errors() {
    let units = vec![MemUnit::new(&tenant("t1"), vec![ev(0, "a", 200, 1.0)], 4, true).into_dyn()];
    let mut q = query((0, 10), vec![], vec![]);
    q.aggregations = vec![Aggregation {
        op: AggOp::Sum,
        field: Some(Field::Service),
        alias: "s".into(),
    }];
    assert!(matches!(
        execute(&units, &q),
        Err(StorageError::Invalid { .. })
    ));
    let mut q = query(
        (0, 10),
        vec![Predicate::Cmp(Field::Service, CmpOp::Gt, 1.0)],
        vec![],
    );
    assert!(matches!(
        execute(&units, &q),
        Err(StorageError::Invalid { .. })
    ));
    q.filter.clear();
    q.interval = Some(0);
    assert!(matches!(
        execute(&units, &q),
        Err(StorageError::Invalid { .. })
    ));
    q.interval = Some(1);
    q.range.to = Micros(T0 + 1_000_000_000);
    assert!(matches!(
        execute(&units, &q),
        Err(StorageError::Invalid { .. })
    ));
}
