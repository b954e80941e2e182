//! A damaged byte in a sealed segment: `verify` names the file, reads that
//! touch the damaged chunk leave its block out with a warning naming the
//! segment, and every other segment keeps answering. Nothing panics.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pulsestream_storage::query::{AggOp, Aggregation, Field, Query, SearchRequest, TimeRange};
use pulsestream_storage::{Event, Micros, Store, StoreConfig, TenantId};

/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;
/// Offset of the first column chunk (block 0, timestamps): right after the
/// 16-byte header (storage/FORMAT.md).
const FIRST_CHUNK: u64 = 16;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c
}

fn events(n: i64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            timestamp: Micros(T0 + i * Micros::SECOND),
            received_at: Micros(T0 + i * Micros::SECOND),
            event_type: "api_call".into(),
            service: Some("checkout".into()),
            status_code: Some(if i % 10 == 0 { 503 } else { 200 }),
            latency_ms: Some(i as f64),
            ..Event::default()
        })
        .collect()
}

fn segment_files(dir: &Path, tenant: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("tenants").join(tenant)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "seg") {
                out.push(p);
            }
        }
    }
    out
}

fn flip_byte(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open segment");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read byte");
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).expect("write byte");
    f.sync_all().expect("sync");
}

fn search(tenant: &TenantId) -> SearchRequest {
    SearchRequest {
        tenant: tenant.clone(),
        range: TimeRange {
            from: Micros(T0),
            to: Micros(T0 + Micros::HOUR),
        },
        filter: Vec::new(),
        limit: 10,
        cursor: None,
    }
}

fn latency_sum(tenant: &TenantId) -> Query {
    Query {
        tenants: vec![tenant.clone()],
        // Not the whole hour, so the rows (not rollups or counts) are read.
        range: TimeRange {
            from: Micros(T0 + 5 * Micros::SECOND),
            to: Micros(T0 + Micros::HOUR),
        },
        filter: Vec::new(),
        group_by: Vec::new(),
        interval: None,
        aggregations: vec![Aggregation {
            op: AggOp::Sum,
            field: Some(Field::LatencyMs),
            alias: "sum".into(),
        }],
        order_by: Vec::new(),
        limit: 10,
    }
}

#[test]
fn a_flipped_byte_is_named_and_other_segments_still_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (bad, good) = (
        TenantId::new("damaged").expect("tenant"),
        TenantId::new("healthy").expect("tenant"),
    );
    let store = Store::open(config(dir.path())).expect("open");
    store.append(&bad, &events(500)).expect("append");
    store.append(&good, &events(300)).expect("append");
    store.seal_all().expect("seal");
    store.close().expect("close");
    assert!(
        pulsestream_storage::store::verify(dir.path())
            .expect("verify")
            .is_sound()
    );

    let files = segment_files(dir.path(), "damaged");
    assert_eq!(files.len(), 1, "one hour of one tenant is one segment");
    let damaged = &files[0];
    flip_byte(damaged, FIRST_CHUNK + 2);

    // Offline verification names the damaged file, and only it.
    let report = pulsestream_storage::store::verify(dir.path()).expect("verify");
    assert!(!report.is_sound());
    let name = damaged
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        report.problems.iter().any(|p| p.contains(&name)),
        "{:?} should name {name}",
        report.problems
    );
    assert!(
        report.problems.iter().all(|p| !p.contains("healthy")),
        "{:?}",
        report.problems
    );

    // The store still opens; reads of the damaged block leave it out and
    // say so, naming the segment; nothing fails.
    let store = Store::open(config(dir.path())).expect("reopen");
    let found = store.search_checked(&search(&bad)).expect("search");
    assert!(found.value.events.is_empty());
    let sum = store.query_checked(&latency_sum(&bad)).expect("query");
    for warnings in [&found.warnings, &sum.warnings] {
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let seg = warnings[0].segment.as_deref().expect("segment named");
        assert!(seg.contains(&name), "{seg} should name {name}");
    }
    let damage = store.damage();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].kind, pulsestream_storage::DamageKind::Segment);
    assert!(damage[0].path.contains(&name));
    // The plain read answers what is sound as well.
    assert!(
        store
            .search(&search(&bad))
            .expect("search")
            .events
            .is_empty()
    );

    // The healthy tenant's segment answers in full.
    let found = store.search(&search(&good)).expect("healthy search");
    assert_eq!(found.events.len(), 10);
    let sum = store.query(&latency_sum(&good)).expect("healthy query");
    let want: f64 = (5..300).map(|i| i as f64).sum();
    assert_eq!(
        sum.rows[0][0],
        pulsestream_storage::query::Value::Float(want)
    );
    store.close().expect("close");
}
