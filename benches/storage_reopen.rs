//! How long the store takes to open.
//!
//! - `reopen_clean`: a store holding every event of the data file, sealed
//!   and closed cleanly. Target (10 M events): <= 1 s.
//! - `reopen_after_crash`: a store whose last `PULSESTREAM_BENCH_WAL_EVENTS`
//!   (default 1,000,000) events were never sealed and which was dropped
//!   without `close` (what a crash leaves on disk), so opening replays them
//!   from the WAL. Target (1 M events in the WAL): <= 5 s. Dropping the
//!   reopened store without `close` again leaves the same state, so every
//!   iteration replays the same records.
//!
//! Data: `$PULSESTREAM_BENCH_EVENTS` (NDJSON from `gen_events.py`), default
//! `/tmp/pulsestream-reopen-bench-1m.ndjson`, generated on first use.
//! Run: `PULSESTREAM_BENCH_EVENTS=events-10m.ndjson cargo bench --bench storage_reopen`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pulsestream_storage::{Event, Store, StoreConfig, TenantId};

mod support;

const DEFAULT_DATA: &str = "/tmp/pulsestream-reopen-bench-1m.ndjson";
const GENERATED_EVENTS: u64 = 1_000_000;
/// Events per append, as an agent batch would arrive.
const BATCH: usize = 5_000;
const DEFAULT_WAL_EVENTS: usize = 1_000_000;

fn wal_events() -> usize {
    std::env::var("PULSESTREAM_BENCH_WAL_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_WAL_EVENTS)
}

/// A store that never seals on its own: everything appended stays in the WAL.
fn unsealed_config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c.seal_rows = usize::MAX;
    c.seal_bytes = usize::MAX;
    c.memory_budget = usize::MAX / 4;
    c.seal_age = Duration::from_secs(365 * 86_400);
    c
}

/// Appends at most `limit` events of the data file, batched per tenant.
fn load(store: &Store, limit: usize) -> usize {
    let file = std::fs::File::open(support::data_path(DEFAULT_DATA, GENERATED_EVENTS))
        .expect("open events file");
    let mut pending: HashMap<String, Vec<Event>> = HashMap::new();
    let mut n = 0;
    let flush = |tenant: &str, batch: &mut Vec<Event>| {
        let id = TenantId::new(tenant).expect("generator tenant ids are valid");
        store.append(&id, batch).expect("append");
        batch.clear();
    };
    for line in BufReader::new(file).lines() {
        if n == limit {
            break;
        }
        let line = line.expect("read events file");
        let Some((tenant, event)) = support::parse_line(&line) else {
            continue;
        };
        n += 1;
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
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage_reopen");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));

    let clean = tempfile::tempdir().expect("temp dir");
    {
        let mut config = StoreConfig::new(clean.path());
        config.background = false;
        let store = Store::open(config).expect("open");
        let started = Instant::now();
        let n = load(&store, usize::MAX);
        store.seal_all().expect("seal");
        store.close().expect("close");
        eprintln!(
            "clean store: {n} events loaded and sealed in {:.1?}",
            started.elapsed()
        );
    }
    g.bench_function("reopen_clean", |b| {
        b.iter(|| {
            let mut config = StoreConfig::new(clean.path());
            config.background = false;
            let store = Store::open(config).expect("reopen");
            store.close().expect("close");
        })
    });
    drop(clean);

    let crashed = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(unsealed_config(crashed.path())).expect("open");
        let n = load(&store, wal_events());
        let wal = store.stats().wal_bytes;
        eprintln!("crashed store: {n} unsealed events, {wal} WAL bytes");
        // Dropped without `close`: the WAL holds every event.
    }
    g.bench_function("reopen_after_crash", |b| {
        b.iter(|| {
            let store = Store::open(unsealed_config(crashed.path())).expect("reopen");
            drop(store);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
