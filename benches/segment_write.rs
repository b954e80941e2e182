//! Sealing throughput: the segment writer on one large segment.
//!
//! Loads events (default the first 1 M of `../shared/data/gen_events.py
//! --seed 42`, or `$PULSESTREAM_BENCH_EVENTS`) into one tenant's active
//! buffer, as ingest would, then writes them as one segment several times
//! and prints rows/s for each run and the median. Sealing runs beside
//! ingest in the server, so its rows/s per core bound sustained ingest.
//!
//! `cargo bench --bench segment_write` (`PULSESTREAM_BENCH_THREADS=n` sets
//! the encoding threads; the default is the machine's cores, up to 4;
//! `PULSESTREAM_BENCH_ZSTD=n` the zstd level, default 3).

#[path = "support/mod.rs"]
mod support;

use std::io::BufRead;
use std::time::Instant;

use pulsestream_storage::active::ActiveTenant;
use pulsestream_storage::column::ColumnSet;
use pulsestream_storage::segment::{self, WriteOptions};
use pulsestream_storage::types::PartitionStart;
use pulsestream_storage::{Micros, SegmentId, StoreConfig, TenantId};

const RUNS: usize = 5;
const AGENTS: usize = 8;
const BATCH: usize = 1000;

fn main() {
    let path = support::data_path("target/bench-events-1m.ndjson", 1_000_000);
    let limit: usize = std::env::var("PULSESTREAM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let file = std::fs::File::open(&path).expect("events file");
    let mut events = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.expect("read");
        if let Some((_, e)) = support::parse_line(&line) {
            events.push(e);
        }
        if events.len() >= limit {
            break;
        }
    }
    // One busy tenant-hour: the generated day (all tenants) squeezed into
    // one hour, order and spacing kept, so the rollups have the 60 minutes
    // of a real partition. It is filled as eight agents sending batches of
    // 1,000 concurrently would: each chunk holds batches whose time ranges
    // overlap, so the segment's sort order hops between chunks as it does
    // in the server.
    let start = events.iter().map(|e| e.timestamp.0).min().unwrap_or(0);
    let hour = start - start.rem_euclid(3_600_000_000);
    for e in &mut events {
        let offset = (e.timestamp.0 - start) / 24;
        e.timestamp = Micros(hour + offset.min(3_599_999_999));
        e.received_at = e.timestamp;
    }
    let agents: Vec<Vec<_>> = (0..AGENTS)
        .map(|a| events.iter().skip(a).step_by(AGENTS).cloned().collect())
        .collect();
    let mut active = ActiveTenant::default();
    let mut seq = 1;
    let inserting = Instant::now();
    let mut wal_bytes = 0;
    let mut wal_time = std::time::Duration::ZERO;
    for round in 0.. {
        let mut sent = false;
        for stream in &agents {
            if let Some(batch) = stream.chunks(BATCH).nth(round) {
                let t = Instant::now();
                wal_bytes += pulsestream_storage::wal::encode_events(batch).bytes.len();
                wal_time += t.elapsed();
                active.insert(batch, seq, i64::MAX / 4);
                seq += batch.len() as u64;
                sent = true;
            }
        }
        if !sent {
            break;
        }
    }
    let insert_time = inserting.elapsed() - wal_time;
    println!(
        "WAL encoding {:.0} ns/event ({} bytes/event), active insert {:.0} ns/event",
        wal_time.as_nanos() as f64 / events.len() as f64,
        wal_bytes / events.len(),
        insert_time.as_nanos() as f64 / events.len() as f64
    );
    let frozen = active.take_all();
    let sets: Vec<ColumnSet> = frozen
        .iter()
        .flat_map(|(_, chunks)| chunks.iter().map(|c| c.set.clone()))
        .collect();
    let rows: usize = sets.iter().map(|s| s.rows).sum();
    let mut opts = WriteOptions::from_config(&StoreConfig::new("unused"));
    if let Some(n) = std::env::var("PULSESTREAM_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.threads = n;
    }
    if let Some(l) = std::env::var("PULSESTREAM_BENCH_ZSTD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.zstd_level = l;
    }
    println!(
        "{rows} rows in {} input chunks, {} encoding threads",
        sets.len(),
        opts.threads
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::new("bench").expect("tenant");
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let path = dir.path().join(format!("{run}.seg"));
        let started = Instant::now();
        let summary = segment::write_segment(
            &path,
            SegmentId(run as u64 + 1),
            &tenant,
            PartitionStart(Micros(0)),
            &sets,
            &opts,
        )
        .expect("write segment");
        let secs = started.elapsed().as_secs_f64();
        let rate = rows as f64 / secs;
        println!(
            "run {run}: {rows} rows in {:.0} ms: {:.0} rows/s, {:.2} bytes/row",
            secs * 1e3,
            rate,
            summary.bytes as f64 / rows as f64
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("segment write median: {:.0} rows/s", rates[RUNS / 2]);
}
