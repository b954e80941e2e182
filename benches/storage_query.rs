//! Query latency of the storage engine on realistic data: the dashboard's
//! queries over the largest tenant's 24 hours, the newest-errors search and
//! the platform administrator's events-per-tenant count.
//!
//! Targets (largest tenant, ~2.5 M events / 24 h of the 10 M set, 2 cores):
//! overview, top-10 endpoints, per-minute series <= 50 ms each; newest 50
//! events with status >= 500 of one service <= 5 ms; events per tenant for
//! all tenants <= 5 ms.
//!
//! Data: `$PULSESTREAM_BENCH_EVENTS` (NDJSON from `gen_events.py`), default
//! `/tmp/pulsestream-query-bench-1m.ndjson`, generated on first use with
//! `python3 ../shared/data/gen_events.py --events 1000000 --seed 42`.
//! The events are appended to a store in a temporary directory and sealed
//! (so sealed segments and their rollups are what is measured). Set
//! `PULSESTREAM_BENCH_ACTIVE=1` to leave them unsealed (the row path over
//! active segments).
//! Run: `cargo bench --bench storage_query`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

mod support;
use pulsestream_storage::query::{
    AggOp, Aggregation, CmpOp, Field, OrderBy, Predicate, Query, SearchRequest, TimeRange, Value,
};
use pulsestream_storage::{Event, Micros, Store, StoreConfig, TenantId};

const DEFAULT_DATA: &str = "/tmp/pulsestream-query-bench-1m.ndjson";
const GENERATED_EVENTS: u64 = 1_000_000;
/// Events per append: an agent-sized batch, so loading is quick but the
/// WAL still sees realistic records.
const BATCH: usize = 5_000;
/// The service whose newest errors are searched (present in every tenant).
const SEARCH_SERVICE: &str = "checkout";

fn data_path() -> PathBuf {
    support::data_path(DEFAULT_DATA, GENERATED_EVENTS)
}

use support::parse_line;

struct Loaded {
    store: Arc<Store>,
    _dir: tempfile::TempDir,
    tenants: Vec<TenantId>,
    top: TenantId,
    range: TimeRange,
}

/// Streams the file into a fresh store, batching per tenant.
fn load() -> Loaded {
    let path = data_path();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    let store = Store::open(config).expect("open store");
    let file = std::fs::File::open(&path).expect("open events file");
    let mut pending: HashMap<String, Vec<Event>> = HashMap::new();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let started = Instant::now();
    let flush = |tenant: &str, batch: &mut Vec<Event>| {
        let id = TenantId::new(tenant).expect("generator tenant ids are valid");
        store.append(&id, batch).expect("append");
        batch.clear();
    };
    for line in BufReader::new(file).lines() {
        let line = line.expect("read events file");
        let Some((tenant, event)) = parse_line(&line) else {
            continue;
        };
        lo = lo.min(event.timestamp.0);
        hi = hi.max(event.timestamp.0);
        *counts.entry(tenant.clone()).or_default() += 1;
        let batch = pending.entry(tenant.clone()).or_default();
        batch.push(event);
        if batch.len() >= BATCH {
            flush(&tenant, batch);
        }
    }
    for (tenant, batch) in &mut pending {
        if !batch.is_empty() {
            flush(tenant, batch);
        }
    }
    let loaded = started.elapsed();
    let total: u64 = counts.values().sum();
    if std::env::var_os("PULSESTREAM_BENCH_ACTIVE").is_none() {
        let sealing = Instant::now();
        store.seal_all().expect("seal");
        let stats = store.stats();
        let sealed: u64 = stats.tenants.iter().map(|t| t.sealed_bytes).sum();
        let segments: u64 = stats.tenants.iter().map(|t| t.sealed_segments).sum();
        eprintln!(
            "appended in {loaded:.1?} ({:.0} events/s), sealed in {:.1?}: {segments} segments, \
             {sealed} bytes, {:.2} bytes/event",
            total as f64 / loaded.as_secs_f64(),
            sealing.elapsed(),
            sealed as f64 / total as f64
        );
    }
    let (top, top_n) = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(t, n)| (t.clone(), *n))
        .expect("the events file holds events");
    eprintln!(
        "loaded {total} events ({} tenants, top {top} with {top_n}) in {:.1?}",
        counts.len(),
        started.elapsed()
    );
    let mut tenants: Vec<TenantId> = counts.keys().filter_map(|t| TenantId::new(t)).collect();
    tenants.sort();
    Loaded {
        store,
        _dir: dir,
        tenants,
        top: TenantId::new(&top).expect("valid tenant"),
        // The generator's 24 h, aligned outward to whole minutes.
        range: TimeRange {
            from: Micros(lo).floor_to(Micros::MINUTE),
            to: Micros(Micros(hi).floor_to(Micros::MINUTE).0 + Micros::MINUTE),
        },
    }
}

fn agg(op: AggOp, field: Option<Field>, alias: &str) -> Aggregation {
    Aggregation {
        op,
        field,
        alias: alias.into(),
    }
}

fn base(tenants: Vec<TenantId>, range: TimeRange) -> Query {
    Query {
        tenants,
        range,
        filter: vec![],
        group_by: vec![],
        interval: None,
        aggregations: vec![agg(AggOp::Count, None, "count")],
        order_by: vec![],
        limit: 10_000,
    }
}

fn queries(l: &Loaded) -> Vec<(&'static str, Query)> {
    let lat = || Some(Field::LatencyMs);
    let top = vec![l.top.clone()];
    let mut overview = base(top.clone(), l.range);
    overview.group_by = vec![Field::EventType];
    overview.aggregations = vec![
        agg(AggOp::Count, None, "count"),
        agg(AggOp::ErrorRate, None, "error_rate"),
        agg(AggOp::P50, lat(), "p50"),
        agg(AggOp::P95, lat(), "p95"),
        agg(AggOp::P99, lat(), "p99"),
    ];
    let mut top10 = base(top.clone(), l.range);
    top10.group_by = vec![Field::Endpoint];
    top10.aggregations = vec![
        agg(AggOp::Count, None, "requests"),
        agg(AggOp::ErrorRate, None, "error_rate"),
        agg(AggOp::P95, lat(), "p95"),
    ];
    top10.order_by = vec![OrderBy {
        column: "requests".into(),
        desc: true,
    }];
    top10.limit = 10;
    let mut series = base(top, l.range);
    series.interval = Some(Micros::MINUTE);
    series.aggregations = vec![
        agg(AggOp::Count, None, "count"),
        agg(AggOp::ErrorRate, None, "error_rate"),
        agg(AggOp::P95, lat(), "p95"),
    ];
    let mut per_tenant = base(l.tenants.clone(), l.range);
    per_tenant.group_by = vec![Field::Tenant];
    vec![
        ("overview_top_tenant_24h", overview),
        ("top10_endpoints_top_tenant_24h", top10),
        ("per_minute_series_top_tenant_24h", series),
        ("events_per_tenant_all_24h", per_tenant),
    ]
}

fn newest_errors(l: &Loaded) -> SearchRequest {
    SearchRequest {
        tenant: l.top.clone(),
        range: l.range,
        filter: vec![
            Predicate::In(Field::Service, vec![Value::Str(SEARCH_SERVICE.into())]),
            Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0),
        ],
        limit: 50,
        cursor: None,
    }
}

fn bench(c: &mut Criterion) {
    let l = load();
    let mut g = c.benchmark_group("storage_query");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, q) in queries(&l) {
        let r = l.store.query(&q).expect("query");
        eprintln!("{name}: {} rows, stats {:?}", r.rows.len(), r.stats);
        g.bench_function(name, |b| b.iter(|| l.store.query(&q).expect("query")));
    }
    let req = newest_errors(&l);
    let r = l.store.search(&req).expect("search");
    eprintln!(
        "newest_50_5xx_one_service: {} events, stats {:?}",
        r.events.len(),
        r.stats
    );
    g.bench_function("newest_50_5xx_one_service", |b| {
        b.iter(|| l.store.search(&req).expect("search"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
