//! Nothing is deleted on doubt: a missing or unreadable catalog with
//! segment files present makes `open` refuse, naming the remedy, and
//! `rebuild_catalog` brings every segment back from its footer, with each
//! tenant's sealed-through LSN, so replay neither loses nor duplicates.

use std::path::{Path, PathBuf};

use pulsestream_storage::query::{AggOp, Aggregation, Query, TimeRange, Value};
use pulsestream_storage::rebuild::rebuild_catalog;
use pulsestream_storage::{Event, Micros, StorageError, Store, StoreConfig, TenantId};

/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c.compaction_min_segments = 4;
    c
}

fn t(name: &str) -> TenantId {
    TenantId::new(name).expect("tenant")
}

fn batch(n: usize, k: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            timestamp: Micros(T0 + ((k * n + i) as i64) * Micros::SECOND / 100),
            received_at: Micros(T0),
            event_type: "api_call".into(),
            latency_ms: Some(i as f64),
            ..Event::default()
        })
        .collect()
}

fn count(store: &Store, tenant: &TenantId) -> i64 {
    let q = Query {
        tenants: vec![tenant.clone()],
        range: TimeRange {
            from: Micros(T0 - Micros::HOUR),
            to: Micros(T0 + Micros::HOUR),
        },
        filter: Vec::new(),
        group_by: Vec::new(),
        interval: None,
        aggregations: vec![Aggregation {
            op: AggOp::Count,
            field: None,
            alias: "n".into(),
        }],
        order_by: Vec::new(),
        limit: 10,
    };
    match store.query(&q).expect("query").rows[0][0] {
        Value::Int(n) => n,
        ref v => panic!("count is {v:?}"),
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("tenants")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Tenant "sealed" has 3 sealed batches whose WAL records are still on
/// disk (tenant "open" pins the file with unsealed records); then a crash.
fn store_with_sealed_and_unsealed(dir: &Path) {
    let store = Store::open(config(dir)).expect("open");
    for k in 0..3 {
        store.append(&t("sealed"), &batch(100, k)).expect("append");
        store.append(&t("open"), &batch(10, k)).expect("append");
    }
    store.seal_all().expect("seal");
    for k in 3..5 {
        store.append(&t("sealed"), &batch(100, k)).expect("append");
        store.append(&t("open"), &batch(10, k)).expect("append");
    }
    drop(store);
}

fn assert_refuses(dir: &Path) {
    let Err(e) = Store::open(config(dir)) else {
        panic!("opened without a usable catalog");
    };
    assert!(matches!(e, StorageError::CatalogUnusable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("--rebuild-catalog"), "{msg}");
}

#[test]
fn a_missing_catalog_refuses_to_open_and_rebuilds_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_sealed_and_unsealed(dir.path());
    let files = segment_files(dir.path());
    assert!(!files.is_empty());
    std::fs::remove_file(dir.path().join("catalog.redb")).expect("remove catalog");
    assert_refuses(dir.path());
    assert_eq!(segment_files(dir.path()), files, "nothing deleted");
    let verify = pulsestream_storage::store::verify(dir.path()).expect("verify");
    assert!(!verify.is_sound(), "a missing catalog is a problem");

    let report = rebuild_catalog(dir.path()).expect("rebuild");
    assert_eq!(report.segments, files.len() as u64);
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    let store = Store::open(config(dir.path())).expect("open after rebuild");
    assert_eq!(count(&store, &t("sealed")), 500);
    assert_eq!(count(&store, &t("open")), 50);
    let ack = store.append(&t("sealed"), &batch(1, 99)).expect("append");
    assert!(
        ack.first_seq > 550,
        "sequence number {} reissued",
        ack.first_seq
    );
    store.close().expect("close");
    assert!(
        pulsestream_storage::store::verify(dir.path())
            .expect("verify")
            .is_sound()
    );
    // A readable catalog is never rebuilt over.
    assert!(rebuild_catalog(dir.path()).is_err());
}

#[test]
fn an_unreadable_catalog_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_sealed_and_unsealed(dir.path());
    std::fs::write(dir.path().join("catalog.redb"), b"this is not a redb file").expect("write");
    assert_refuses(dir.path());
    let report = rebuild_catalog(dir.path()).expect("rebuild");
    let aside = report.moved_aside.expect("moved aside");
    assert_eq!(
        std::fs::read(&aside).expect("read"),
        b"this is not a redb file"
    );
    let store = Store::open(config(dir.path())).expect("open after rebuild");
    assert_eq!(count(&store, &t("sealed")), 500);
    assert_eq!(count(&store, &t("open")), 50);
}

#[test]
fn compaction_inputs_left_beside_their_output_are_quarantined_not_counted_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    for k in 0..4 {
        store.append(&t("c"), &batch(50, k)).expect("append");
        store.seal_all().expect("seal");
    }
    let inputs = segment_files(dir.path());
    assert_eq!(inputs.len(), 4);
    let saved: Vec<Vec<u8>> = inputs
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(store.compact().expect("compact"), 1);
    store.close().expect("close");
    // The crash came after the output was written and before the inputs
    // were removed, and the catalog is gone.
    for (p, b) in inputs.iter().zip(&saved) {
        std::fs::write(p, b).expect("restore input");
    }
    std::fs::remove_file(dir.path().join("catalog.redb")).expect("remove catalog");
    let report = rebuild_catalog(dir.path()).expect("rebuild");
    assert_eq!(report.segments, 1);
    assert_eq!(report.quarantined.len(), 4, "{:?}", report.quarantined);
    let store = Store::open(config(dir.path())).expect("open after rebuild");
    assert_eq!(count(&store, &t("c")), 200);
}

#[test]
fn a_version_1_segment_is_rebuilt_into_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/segment-v1.seg");
    let part = dir.path().join("tenants/t001/2026112510");
    std::fs::create_dir_all(&part).expect("mkdir");
    std::fs::copy(&fixture, part.join(format!("{:020}.seg", 1))).expect("copy");
    assert_refuses(dir.path());
    let report = rebuild_catalog(dir.path()).expect("rebuild");
    assert_eq!((report.segments, report.tenants), (1, 1));
    let store = Store::open(config(dir.path())).expect("open after rebuild");
    assert_eq!(count(&store, &t("t001")), 300);
}
