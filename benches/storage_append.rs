//! Durable append throughput of the storage engine: realistic pre-parsed
//! events (from `../shared/data/gen_events.py`), batches of ~1000 per
//! tenant, several appending threads, every append fsynced (group commit).
//! Target: ≥ 1,000,000 events/s on the 2-core development machine.
//!
//! `sealed_…` adds the cost of sealing: the same appends with the store
//! configured as the server configures it (`Config::store_config`, so the
//! background thread seals under the server's memory budget and WAL
//! bound), timed until `close` has sealed the rest, so every event is both
//! logged and written to a segment. With the default 300 k events the data
//! stays under the budget and is sealed by `close`, after the appends; a
//! data set several times the budget (e.g. 10 M events) makes sealing run
//! beside them as it does in the server.
//!
//! Data: `$PULSESTREAM_BENCH_EVENTS` (NDJSON), default
//! `/tmp/pulsestream-bench-events.ndjson`, generated on first use with
//! `python3 ../shared/data/gen_events.py --events 300000 --seed 42`.
//! Run: `cargo bench --bench storage_append`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod support;
use pulsestream_storage::{Event, Store, StoreConfig, TenantId};

/// Events per append, as an agent batch would arrive.
const BATCH: usize = 1000;
/// Appending threads: more than the cores, as request handlers would be
/// (`PULSESTREAM_BENCH_THREADS` overrides).
const THREADS: usize = 8;

fn threads() -> usize {
    std::env::var("PULSESTREAM_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(THREADS)
}
const DEFAULT_DATA: &str = "/tmp/pulsestream-bench-events.ndjson";
const GENERATED_EVENTS: u64 = 300_000;

fn data_path() -> PathBuf {
    support::data_path(DEFAULT_DATA, GENERATED_EVENTS)
}

/// Parses the NDJSON into per-tenant batches of `BATCH` events, in arrival order.
fn load_batches() -> Vec<(TenantId, Vec<Event>)> {
    let text = std::fs::read_to_string(data_path()).expect("read event data");
    let mut open: HashMap<String, Vec<Event>> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let (tenant, e) = support::parse_line(line).expect("an event per line");
        let buf = open.entry(tenant.clone()).or_default();
        buf.push(e);
        if buf.len() == BATCH {
            let t = TenantId::new(&tenant).expect("tenant id");
            out.push((t, std::mem::take(buf)));
        }
    }
    for (tenant, buf) in open {
        if !buf.is_empty() {
            out.push((TenantId::new(&tenant).expect("tenant id"), buf));
        }
    }
    out
}

/// CPU time (user + system) of this process so far, from /proc (Linux):
/// on a shared machine, CPU per event says more than wall-clock rate.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are
    // the 12th and 13th of those, in clock ticks (100 per second).
    let Some(rest) = stat.rsplit(')').next() else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Appends every batch from `THREADS` threads into a fresh store; returns
/// the time from the first append to the last acknowledgement, or with
/// `sealing` to the end of `close` (everything sealed).
fn run_once(batches: &Arc<Vec<(TenantId, Vec<Event>)>>, sealing: bool) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    // Appends alone: sealing must not run. With sealing: the store as the
    // server opens it.
    let mut cfg = if sealing {
        let mut server = pulsestream::config::Config::default();
        server.storage.data_dir = dir.path().to_owned();
        server.store_config()
    } else {
        StoreConfig::new(dir.path())
    };
    cfg.background = sealing;
    let store = Store::open(cfg).expect("open store");
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let handles: Vec<_> = (0..threads())
        .map(|_| {
            let (store, batches, next) = (store.clone(), batches.clone(), next.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((t, events)) = batches.get(i) else {
                        break;
                    };
                    store.append(t, events).expect("append");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("appender");
    }
    if sealing {
        store.close().expect("close (seal the rest)");
    }
    let elapsed = start.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let stats = store.stats();
    // Freeing the active rows is a seal's cost, not an append's.
    drop(store);
    let events = batches.iter().map(|b| b.1.len()).sum::<usize>() as f64;
    let segments: u64 = stats.tenants.iter().map(|t| t.sealed_segments).sum();
    eprintln!(
        "  run: {:.0} events/s wall, {:.2} µs CPU/event, {} fsyncs, {segments} segments",
        events / elapsed.as_secs_f64(),
        cpu * 1e6 / events,
        stats.fsyncs
    );
    elapsed
}

fn bench_append(c: &mut Criterion) {
    let batches = Arc::new(load_batches());
    let events: usize = batches.iter().map(|b| b.1.len()).sum();
    let mut g = c.benchmark_group("storage_append");
    g.throughput(Throughput::Elements(events as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(
        format!("durable_{events}_events_{THREADS}_threads_batch_{BATCH}"),
        |b| b.iter_custom(|iters| (0..iters).map(|_| run_once(&batches, false)).sum()),
    );
    g.bench_function(
        format!("sealed_{events}_events_{THREADS}_threads_batch_{BATCH}"),
        |b| b.iter_custom(|iters| (0..iters).map(|_| run_once(&batches, true)).sum()),
    );
    g.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
