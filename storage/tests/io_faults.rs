//! Disk failures under the WAL and the segment writer, injected through
//! `io::Faulty` (no root, no tmpfs): ENOSPC, EIO, a write cut short, a
//! failing fsync. An append that fails is not acknowledged and leaves no
//! trace; the next one works; a seal that fails keeps its rows readable and
//! unsealed, and succeeds once the disk does; nothing is damaged afterwards.

use std::path::Path;
use std::sync::Arc;

use pulsestream_storage::io::{Fault, Faulty, Op};
use pulsestream_storage::query::{AggOp, Aggregation, Query, TimeRange, Value};
use pulsestream_storage::{Event, Micros, StorageError, Store, StoreConfig, TenantId};

/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;

fn config(dir: &Path, faulty: &Arc<Faulty>) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c.io = faulty.clone();
    c
}

fn tenant() -> TenantId {
    TenantId::new("t").expect("tenant")
}

fn batch(k: i64) -> Vec<Event> {
    (0..10)
        .map(|i| Event {
            timestamp: Micros(T0 + (k * 10 + i) * Micros::SECOND),
            received_at: Micros(T0),
            event_type: "api_call".into(),
            latency_ms: Some(k as f64),
            ..Event::default()
        })
        .collect()
}

fn count(store: &Store) -> i64 {
    let q = Query {
        tenants: vec![tenant()],
        range: TimeRange {
            from: Micros(T0),
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
        ref v => panic!("count {v:?}"),
    }
}

/// Appends batch 0, then batch 1 with `fault` armed on `op` (it must fail
/// with an error `expect` accepts), then batch 2; crashes; reopens and
/// checks that exactly batches 0 and 2 are there and the store is sound.
fn wal_fault(op: Op, fault: Fault, expect: fn(&StorageError) -> bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let faulty = Faulty::new();
    let store = Store::open(config(dir.path(), &faulty)).expect("open");
    store.append(&tenant(), &batch(0)).expect("first append");
    faulty.arm(op, fault, 1);
    let err = store
        .append(&tenant(), &batch(1))
        .expect_err("the faulty append is not acknowledged");
    assert!(expect(&err), "{op:?} {fault:?}: {err:?}");
    assert_eq!(faulty.fired(), vec![(op, fault)]);
    assert_eq!(count(&store), 10, "a failed append is not visible");
    store
        .append(&tenant(), &batch(2))
        .expect("the disk works again");
    assert_eq!(count(&store), 20);
    drop(store); // a crash: only the WAL holds the rows
    let report = pulsestream_storage::store::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{op:?} {fault:?}: {:?}", report.problems);
    let store = Store::open(config(dir.path(), &faulty)).expect("reopen");
    assert_eq!(count(&store), 20, "{op:?} {fault:?}");
    assert!(store.damage().is_empty());
}

#[test]
fn a_full_disk_fails_the_append_and_nothing_else() {
    wal_fault(Op::Write, Fault::NoSpace, |e| {
        matches!(e, StorageError::DiskFull { .. })
    });
}

#[test]
fn an_io_error_fails_the_append_and_nothing_else() {
    wal_fault(Op::Write, Fault::Eio, |e| {
        matches!(e, StorageError::Io { .. })
    });
}

#[test]
fn a_short_write_is_cut_off_again() {
    wal_fault(Op::Write, Fault::Short, |e| {
        matches!(e, StorageError::Io { .. })
    });
}

#[test]
fn a_failing_fsync_is_not_an_acknowledgement() {
    wal_fault(Op::Sync, Fault::Eio, |e| {
        matches!(e, StorageError::Io { .. })
    });
}

#[test]
fn a_short_write_whose_cut_fails_moves_to_a_fresh_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faulty = Faulty::new();
    let store = Store::open(config(dir.path(), &faulty)).expect("open");
    store.append(&tenant(), &batch(0)).expect("append");
    faulty.arm(Op::Write, Fault::Short, 1);
    faulty.arm(Op::SetLen, Fault::Eio, 1);
    assert!(store.append(&tenant(), &batch(1)).is_err());
    store.append(&tenant(), &batch(2)).expect("append after");
    drop(store);
    // The half-written record stays in the old file as a damaged tail;
    // replay keeps everything before it and the new file after it.
    let store = Store::open(config(dir.path(), &faulty)).expect("reopen");
    assert_eq!(count(&store), 20);
}

#[test]
fn a_seal_that_fails_keeps_its_rows_and_succeeds_later() {
    for (op, fault) in [
        (Op::Write, Fault::NoSpace),
        (Op::Write, Fault::Short),
        (Op::Sync, Fault::Eio),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let faulty = Faulty::new();
        let store = Store::open(config(dir.path(), &faulty)).expect("open");
        for k in 0..5 {
            store.append(&tenant(), &batch(k)).expect("append");
        }
        faulty.arm(op, fault, 1);
        assert!(store.seal_all().is_err(), "{op:?} {fault:?}");
        assert_eq!(count(&store), 50, "rows stay readable");
        assert_eq!(store.stats().tenants[0].sealed_segments, 0);
        store.seal_all().expect("seal once the disk works");
        assert_eq!(store.stats().tenants[0].sealed_segments, 1);
        assert_eq!(count(&store), 50);
        store.close().expect("close");
        let report = pulsestream_storage::store::verify(dir.path()).expect("verify");
        assert!(report.is_sound(), "{:?}", report.problems);
        let leftovers = walk(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
            .count();
        assert_eq!(leftovers, 0, "{op:?} {fault:?}: a failed seal left a .tmp");
        let store = Store::open(config(dir.path(), &faulty)).expect("reopen");
        assert_eq!(count(&store), 50);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_seal_over_many_partitions_written_at_once_is_all_or_nothing() {
    // Twelve hourly partitions: the seal writes them concurrently, and
    // one failing write must leave no segment of the others behind.
    let spread = |k: i64| -> Vec<Event> {
        (0..12)
            .map(|h| Event {
                timestamp: Micros(T0 + h * Micros::HOUR + k * Micros::SECOND),
                received_at: Micros(T0),
                event_type: "api_call".into(),
                latency_ms: Some(k as f64),
                ..Event::default()
            })
            .collect()
    };
    let rows = |store: &Store| -> u64 {
        store
            .stats()
            .tenants
            .iter()
            .map(|t| t.sealed_rows + t.active_rows)
            .sum()
    };
    let segments = |dir: &Path| {
        walk(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "seg" || e == "tmp"))
            .count()
    };
    for (op, fault) in [(Op::Write, Fault::NoSpace), (Op::Sync, Fault::Eio)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let faulty = Faulty::new();
        let store = Store::open(config(dir.path(), &faulty)).expect("open");
        for k in 0..20 {
            store.append(&tenant(), &spread(k)).expect("append");
        }
        faulty.arm(op, fault, 1);
        assert!(store.seal_all().is_err(), "{op:?} {fault:?}");
        assert_eq!(store.stats().tenants[0].sealed_segments, 0);
        assert_eq!(segments(dir.path()), 0, "{op:?} {fault:?}: files left");
        assert_eq!(rows(&store), 240, "rows stay readable");
        store.seal_all().expect("seal once the disk works");
        assert_eq!(store.stats().tenants[0].sealed_segments, 12);
        assert_eq!(store.stats().tenants[0].partitions, 12);
        store.close().expect("close");
        let report = pulsestream_storage::store::verify(dir.path()).expect("verify");
        assert!(report.is_sound(), "{:?}", report.problems);
        let store = Store::open(config(dir.path(), &faulty)).expect("reopen");
        assert_eq!(rows(&store), 240);
        assert_eq!(
            store.stats().tenants[0].active_rows,
            0,
            "nothing replayed twice"
        );
    }
}
