//! Latency of the statistics endpoint's queries over unsealed (active,
//! in-memory) rows: the two aggregate queries of
//! `GET /api/v1/ingestion/events/statistics` over 24 h, each alone and both
//! at once (as the endpoint runs them).
//!
//! Target: both queries over ~2.3 M active rows of one tenant in <= 100 ms
//! on 2 cores.
//!
//! Data: the first `$PULSESTREAM_BENCH_ROWS` (default 2,300,000) lines of
//! `$PULSESTREAM_BENCH_EVENTS` (default `/tmp/pulsestream-active-bench-3m.ndjson`,
//! generated on first use by `gen_events.py`), all appended to ONE tenant so that one tenant holds
//! that many active rows with the generator's realistic mix of types,
//! services and statuses. Sealing is off, so only active segments are read.
//! Run: `cargo bench --bench active_query` (prints the median, p90 and max
//! of `$PULSESTREAM_BENCH_RUNS` runs, default 21).

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulsestream_storage::query::{AggOp, Aggregation, Field, MAX_QUERY_LIMIT, Query, TimeRange};
use pulsestream_storage::{Micros, Store, StoreConfig, TenantId};

mod support;

const DEFAULT_DATA: &str = "/tmp/pulsestream-active-bench-3m.ndjson";
/// Generated when the default file is missing: enough lines for `DEFAULT_ROWS`.
const GENERATED_EVENTS: u64 = 3_000_000;
/// The size of the tenant the endpoint was measured slow on.
const DEFAULT_ROWS: usize = 2_300_000;
const DEFAULT_RUNS: usize = 21;
/// Events per append: an agent-sized batch.
const BATCH: usize = 5_000;
/// Memory budget far above what the rows need, so nothing is sealed.
const MEMORY_BUDGET: usize = 8 << 30;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn agg(op: AggOp, field: Option<Field>, alias: &str) -> Aggregation {
    Aggregation {
        op,
        field,
        alias: alias.into(),
    }
}

/// The two queries `src/read/statistics.rs` issues, without filters.
fn statistics_queries(tenant: &TenantId, range: TimeRange) -> (Query, Query) {
    let base = || Query {
        tenants: vec![tenant.clone()],
        range,
        filter: vec![],
        group_by: vec![],
        interval: None,
        aggregations: vec![agg(AggOp::Count, None, "count")],
        order_by: vec![],
        limit: MAX_QUERY_LIMIT,
    };
    let mut totals = base();
    totals.aggregations = vec![
        agg(AggOp::Count, None, "total"),
        agg(AggOp::ErrorRate, None, "error_rate"),
        agg(AggOp::Avg, Some(Field::LatencyMs), "avg"),
        agg(AggOp::P50, Some(Field::LatencyMs), "p50"),
        agg(AggOp::P95, Some(Field::LatencyMs), "p95"),
        agg(AggOp::P99, Some(Field::LatencyMs), "p99"),
    ];
    let mut groups = base();
    groups.group_by = vec![Field::EventType, Field::Service, Field::StatusClass];
    (totals, groups)
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<24} median {:>8.1?}  p90 {:>8.1?}  max {:>8.1?}  ({} runs)",
        at(0.5),
        at(0.9),
        at(1.0),
        times.len()
    );
}

/// Resident set size (0 where /proc is not there).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f(); // warm-up
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn main() {
    let path = support::data_path(DEFAULT_DATA, GENERATED_EVENTS);
    let want = env_usize("PULSESTREAM_BENCH_ROWS", DEFAULT_ROWS);
    let runs = env_usize("PULSESTREAM_BENCH_RUNS", DEFAULT_RUNS).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    config.seal_rows = usize::MAX;
    config.seal_bytes = usize::MAX;
    config.memory_budget = MEMORY_BUDGET;
    let store = Arc::new(Store::open(config).expect("open store"));
    let tenant = TenantId::new("bench").expect("valid tenant id");

    let started = Instant::now();
    let file = std::fs::File::open(&path).expect("open events file");
    let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0usize);
    let mut batch = Vec::with_capacity(BATCH);
    for line in BufReader::new(file).lines().take(want) {
        // Every line goes to the one bench tenant, whichever tenant sent it.
        let Some((_, e)) = line.ok().as_deref().and_then(support::parse_line) else {
            continue;
        };
        lo = lo.min(e.timestamp.0);
        hi = hi.max(e.timestamp.0);
        batch.push(e);
        n += 1;
        if batch.len() >= BATCH {
            store.append(&tenant, &batch).expect("append");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.append(&tenant, &batch).expect("append");
    }
    assert!(n > 0, "no events read from {}", path.display());
    eprintln!("loaded {n} active rows in {:.1?}", started.elapsed());

    // The endpoint's default: the 24 h ending at the newest event.
    let to = Micros(Micros(hi).floor_to(Micros::MINUTE).0 + Micros::MINUTE);
    let range = TimeRange {
        from: Micros(to.0 - 24 * Micros::HOUR),
        to,
    };
    assert!(range.from.0 <= lo, "the rows fit in the 24 h range");
    let (totals, groups) = statistics_queries(&tenant, range);
    let rss_before = rss_kib();
    let t = store.query(&totals).expect("totals");
    let g = store.query(&groups).expect("groups");
    eprintln!(
        "resident memory {} -> {} KiB over the first queries",
        rss_before,
        rss_kib()
    );
    eprintln!(
        "totals: {:?}\ngroups: {} rows, stats {:?}",
        t.rows.first(),
        g.rows.len(),
        g.stats
    );
    summary(
        "totals",
        time_runs(runs, || {
            store.query(&totals).expect("totals");
        }),
    );
    summary(
        "groups",
        time_runs(runs, || {
            store.query(&groups).expect("groups");
        }),
    );
    summary(
        "statistics (both at once)",
        time_runs(runs, || {
            std::thread::scope(|s| {
                let a = s.spawn(|| store.query(&totals).expect("totals"));
                store.query(&groups).expect("groups");
                a.join().expect("totals thread");
            });
        }),
    );
}
