//! The store against a simple in-memory model: appends for several tenants,
//! seals, compactions, retention, drops and restarts (close + reopen, and
//! drop without close, which is a crash as far as the disk is concerned)
//! must leave exactly the rows the model says, once each.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use pulsestream_storage::column::{Column, ColumnKey};
use pulsestream_storage::query::{
    AggOp, Aggregation, Field, Predicate, Query, SearchRequest, TimeRange, Value,
};
use pulsestream_storage::{AttrValue, Event, Method, Micros, Store, StoreConfig, TenantId};

const HOUR: i64 = Micros::HOUR;
/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;

fn tenant(i: usize) -> TenantId {
    TenantId::new(&format!("t{i}")).expect("valid tenant")
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c.block_rows = 64;
    c.wal_file_bytes = 4096;
    c.compaction_min_segments = 2;
    c
}

fn event(ts: i64, k: u64) -> Event {
    Event {
        timestamp: Micros(ts),
        received_at: Micros(ts + 7),
        event_type: if k.is_multiple_of(5) {
            "error"
        } else {
            "api_call"
        }
        .into(),
        service: Some(format!("svc{}", k % 3)),
        endpoint: Some(format!("/api/v1/r{}", k % 4)),
        method: Some(Method::ALL[(k % 4) as usize]),
        status_code: Some(if k.is_multiple_of(5) { 503 } else { 200 }),
        latency_ms: Some((k % 1000) as f64 / 4.0),
        user_id: k.is_multiple_of(2).then(|| format!("u-{k}")),
        attributes: if k.is_multiple_of(3) {
            vec![("tier".into(), AttrValue::Str("gold".into()))]
        } else {
            vec![("n".into(), AttrValue::Num(k as f64))]
        },
        ..Event::default()
    }
}

/// Every (seq -> timestamp, latency) the store holds for `t`, failing on
/// a duplicate sequence number.
fn contents(store: &Store, t: &TenantId) -> BTreeMap<u64, (i64, u64)> {
    let range = TimeRange {
        from: Micros::MIN,
        to: Micros::MAX,
    };
    let mut out = BTreeMap::new();
    for u in store.units(std::slice::from_ref(t), range) {
        for b in 0..u.block_count() {
            let set = u
                .read(
                    b,
                    &[ColumnKey::Seq, ColumnKey::Timestamp, ColumnKey::LatencyMs],
                )
                .expect("read");
            let (Some(Column::Int(seq)), Some(Column::Int(ts)), Some(Column::Float(lat))) = (
                set.get(&ColumnKey::Seq),
                set.get(&ColumnKey::Timestamp),
                set.get(&ColumnKey::LatencyMs),
            ) else {
                panic!("unexpected column types in {}", u.describe());
            };
            for i in 0..set.rows {
                let prev = out.insert(seq[i] as u64, (ts[i], (lat[i] * 4.0) as u64));
                assert!(prev.is_none(), "seq {} twice in {}", seq[i], u.describe());
            }
        }
    }
    out
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Null => f64::NAN,
        other => panic!("not a number: {other:?}"),
    }
}

fn agg(op: AggOp, field: Option<Field>, alias: &str) -> Aggregation {
    Aggregation {
        op,
        field,
        alias: alias.into(),
    }
}

/// The engine's answers over the store agree with the model: exact counts,
/// sums, min and max; percentiles within the sketch's 1 % (of a value
/// between the neighbouring ranks); search returns the newest events first.
fn check_queries(store: &Store, t: &TenantId, m: &BTreeMap<u64, (i64, u64)>) {
    let range = TimeRange {
        from: Micros(T0 - 10 * HOUR),
        to: Micros(T0 + 10 * HOUR),
    };
    let lat = || Some(Field::LatencyMs);
    let q = Query {
        tenants: vec![t.clone()],
        range,
        filter: vec![],
        group_by: vec![],
        interval: None,
        aggregations: vec![
            agg(AggOp::Count, None, "n"),
            agg(AggOp::Sum, lat(), "sum"),
            agg(AggOp::Min, lat(), "min"),
            agg(AggOp::Max, lat(), "max"),
            agg(AggOp::P50, lat(), "p50"),
            agg(AggOp::P99, lat(), "p99"),
            agg(AggOp::Apdex(50_000), lat(), "apdex"),
        ],
        order_by: vec![],
        limit: 10,
    };
    let res = store.query(&q).expect("query");
    let mut lats: Vec<f64> = m.values().map(|&(_, l)| l as f64 / 4.0).collect();
    lats.sort_by(f64::total_cmp);
    if lats.is_empty() {
        assert!(
            res.rows.is_empty() || num(&res.rows[0][0]) == 0.0,
            "{t}: rows for an empty tenant: {:?}",
            res.rows
        );
    } else {
        assert_eq!(res.rows.len(), 1, "{t}: {:?}", res.rows);
        let row = &res.rows[0];
        assert_eq!(num(&row[0]), lats.len() as f64, "{t}: count");
        assert_eq!(num(&row[1]), lats.iter().sum::<f64>(), "{t}: sum");
        assert_eq!(num(&row[2]), lats[0], "{t}: min");
        assert_eq!(num(&row[3]), lats[lats.len() - 1], "{t}: max");
        for (col, q) in [(4, 0.5), (5, 0.99)] {
            let got = num(&row[col]);
            let r = q * (lats.len() - 1) as f64;
            let (lo, hi) = (lats[r.floor() as usize], lats[r.ceil() as usize]);
            assert!(
                got >= lo * 0.99 - 1e-9 && got <= hi * 1.01 + 1e-9,
                "{t}: p{} = {got}, expected within 1 % of [{lo}, {hi}]",
                q * 100.0
            );
        }
        // Apdex, t = 50 ms: errors (status 503) are frustrated.
        let (mut sat, mut tol) = (0u64, 0u64);
        for &(_, k) in m.values().filter(|&&(_, k)| k % 5 != 0) {
            let l = k as f64 / 4.0;
            sat += u64::from(l <= 50.0);
            tol += u64::from(l > 50.0 && l <= 200.0);
        }
        let want = (sat as f64 + tol as f64 / 2.0) / lats.len() as f64;
        assert!((num(&row[6]) - want).abs() < 1e-9, "{t}: apdex");
    }
    // Errors only (status 503): exact count.
    let errors = Query {
        filter: vec![Predicate::StatusClass(5)],
        aggregations: vec![agg(AggOp::Count, None, "n")],
        ..q
    };
    let res = store.query(&errors).expect("query");
    let want = m.values().filter(|&&(_, l)| l % 5 == 0).count();
    let got = res.rows.first().map_or(0.0, |r| num(&r[0]));
    assert_eq!(got, want as f64, "{t}: 5xx count");
    // Search: the newest 7 events, newest first, then the next page.
    let mut newest: Vec<(i64, u64)> = m.iter().map(|(&seq, &(ts, _))| (ts, seq)).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    let mut cursor = None;
    for page in newest.chunks(7).take(2) {
        let res = store
            .search(&SearchRequest {
                tenant: t.clone(),
                range,
                filter: vec![],
                limit: 7,
                cursor,
            })
            .expect("search");
        let got: Vec<(i64, u64)> = res
            .events
            .iter()
            .map(|e| {
                let id = e.id.expect("search results carry ids");
                (id.timestamp.0, id.seq)
            })
            .collect();
        assert_eq!(got, page, "{t}: search page");
        cursor = res.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// tenant, events (hour offset, key)
    Append(usize, Vec<(i64, u64)>),
    SealAll,
    Compact,
    /// close and reopen
    Restart,
    /// drop without close (what a crash leaves on disk), reopen
    Crash,
    DropTenant(usize),
    /// tenant, cutoff hour offset
    DropBefore(usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, prop::collection::vec((-3i64..3, 0..1000u64), 1..40)).prop_map(|(t, e)| Op::Append(t, e)),
        2 => Just(Op::SealAll),
        1 => Just(Op::Compact),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
        1 => (0..3usize).prop_map(Op::DropTenant),
        1 => (0..3usize, -2i64..3).prop_map(|(t, h)| Op::DropBefore(t, h)),
    ]
}

/// The model: per tenant, seq -> (timestamp, latency key).
type Model = Vec<BTreeMap<u64, (i64, u64)>>;

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(config(dir.path())).expect("open");
    let mut model: Model = vec![BTreeMap::new(); 3];
    let mut last_seq = 0u64;
    for op in ops {
        match op {
            Op::Append(t, evs) => {
                let events: Vec<Event> = evs
                    .iter()
                    .map(|&(h, k)| event(T0 + h * HOUR + (k as i64) * 1000, k))
                    .collect();
                let ack = store.append(&tenant(t), &events).expect("append");
                assert!(ack.first_seq > last_seq, "sequence numbers must grow");
                last_seq = ack.first_seq + u64::from(ack.count) - 1;
                for (i, e) in events.iter().enumerate() {
                    let lat = (e.latency_ms.unwrap_or(0.0) * 4.0) as u64;
                    model[t].insert(ack.first_seq + i as u64, (e.timestamp.0, lat));
                }
            }
            Op::SealAll => store.seal_all().expect("seal"),
            Op::Compact => {
                store.compact().expect("compact");
            }
            Op::Restart => {
                store.close().expect("close");
                drop(store);
                store = Store::open(config(dir.path())).expect("reopen");
            }
            Op::Crash => {
                drop(store);
                store = Store::open(config(dir.path())).expect("reopen after crash");
            }
            Op::DropTenant(t) => {
                store.drop_tenant(&tenant(t)).expect("drop tenant");
                model[t].clear();
            }
            Op::DropBefore(t, h) => {
                let cutoff = T0 + h * HOUR;
                store
                    .drop_before(&tenant(t), Micros(cutoff))
                    .expect("drop before");
                model[t].retain(|_, (ts, _)| Micros(*ts).floor_to(HOUR).0 + HOUR > cutoff);
            }
        }
        for (t, m) in model.iter().enumerate() {
            assert_eq!(&contents(&store, &tenant(t)), m, "tenant {t}");
            check_queries(&store, &tenant(t), m);
        }
    }
    // Finally: a crash and replay must give the same again.
    drop(store);
    let store = Store::open(config(dir.path())).expect("final reopen");
    for (t, m) in model.iter().enumerate() {
        assert_eq!(
            &contents(&store, &tenant(t)),
            m,
            "tenant {t} after final reopen"
        );
    }
    let report = pulsestream_storage::store::verify(dir.path());
    drop(store);
    let _ = report;
    let report = pulsestream_storage::store::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{:?}", report.problems);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..30)) {
        run(ops);
    }
}

#[test]
fn append_seal_restart_keeps_every_row_once() {
    run(vec![
        Op::Append(0, (0..100).map(|k| (k % 3 - 1, k as u64)).collect()),
        Op::Append(1, vec![(0, 1), (0, 2)]),
        Op::SealAll,
        Op::Append(0, vec![(0, 5)]),
        Op::Restart,
        Op::Append(0, vec![(2, 6)]),
        Op::SealAll,
        Op::Compact,
        Op::Crash,
        Op::DropBefore(0, 0),
        Op::DropTenant(1),
        Op::Crash,
    ]);
}

#[test]
fn a_second_open_is_refused_while_the_first_lives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    match Store::open(config(dir.path())) {
        Err(pulsestream_storage::StorageError::Locked(_)) => {}
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    store.close().expect("close");
    let again = Store::open(config(dir.path())).expect("reopen after close");
    drop(again);
}

#[test]
fn many_threads_append_and_every_ack_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    let mut handles = Vec::new();
    for th in 0..8usize {
        let store: Arc<Store> = store.clone();
        handles.push(std::thread::spawn(move || {
            let mut acks = Vec::new();
            for b in 0..20u64 {
                let events: Vec<Event> = (0..25)
                    .map(|k| event(T0 + (b * 100 + k) as i64, k))
                    .collect();
                acks.push(store.append(&tenant(th % 3), &events).expect("append"));
            }
            acks
        }));
    }
    let acks: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    let total: u64 = acks.iter().map(|a| u64::from(a.count)).sum();
    assert_eq!(total, 8 * 20 * 25);
    let stats = store.stats();
    assert!(stats.fsyncs <= acks.len() as u64);
    drop(store);
    let store = Store::open(config(dir.path())).expect("reopen");
    let rows: usize = (0..3).map(|t| contents(&store, &tenant(t)).len()).sum();
    assert_eq!(rows as u64, total);
}

#[test]
fn sealing_writes_segments_trims_the_wal_and_compaction_merges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    let t = tenant(0);
    for round in 0..3i64 {
        let events: Vec<Event> = (0..200u64)
            .map(|k| event(T0 + round * 1000 + k as i64, k))
            .collect();
        store.append(&t, &events).expect("append");
        let wal_before = store.stats().wal_bytes;
        store.seal_all().expect("seal");
        let stats = store.stats();
        assert_eq!(stats.tenants[0].sealed_segments, round as u64 + 1);
        assert_eq!(stats.tenants[0].active_rows, 0);
        assert!(
            stats.wal_bytes < wal_before,
            "WAL not trimmed: {} -> {}",
            wal_before,
            stats.wal_bytes
        );
    }
    assert_eq!(store.compact().expect("compact"), 1);
    let stats = store.stats();
    assert_eq!(stats.tenants[0].sealed_segments, 1);
    assert_eq!(stats.tenants[0].sealed_rows, 600);
    assert_eq!(contents(&store, &t).len(), 600);
    let seg_files = walk(dir.path())
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .count();
    assert_eq!(seg_files, 1, "old segment files deleted after compaction");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
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
fn a_tenant_dropped_twice_across_a_crash_stays_dropped() {
    // Found by the property test: the second drop, in a process that had
    // not seen the tenant, lowered its sealed-through LSN to 0.
    run(vec![
        Op::Append(1, vec![(0, 0)]),
        Op::Append(0, vec![(0, 0)]),
        Op::DropTenant(0),
        Op::Crash,
        Op::DropTenant(0),
    ]);
}
