//! Segment damage is isolated: a damaged block is left out of answers that
//! say they are partial, a damaged rollup section is replaced by the column
//! blocks (complete answer, no warning), a segment whose footer is damaged
//! is named in every answer it would have contributed to, and retention
//! still drops it.

use std::path::{Path, PathBuf};

use pulsestream_storage::query::{AggOp, Aggregation, Query, SearchRequest, TimeRange, Value};
use pulsestream_storage::segment::SegmentReader;
use pulsestream_storage::{DamageKind, Event, Micros, SegmentId, Store, StoreConfig, TenantId};

/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;
const BLOCK_ROWS: usize = 100;
const EVENTS: i64 = 500;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c.block_rows = BLOCK_ROWS;
    c
}

fn tenant() -> TenantId {
    TenantId::new("t1").expect("tenant")
}

fn events() -> Vec<Event> {
    (0..EVENTS)
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

fn whole_hour() -> TimeRange {
    TimeRange {
        from: Micros(T0),
        to: Micros(T0 + Micros::HOUR),
    }
}

fn count_query(range: TimeRange) -> Query {
    Query {
        tenants: vec![tenant()],
        range,
        filter: Vec::new(),
        group_by: Vec::new(),
        interval: None,
        aggregations: vec![
            Aggregation {
                op: AggOp::Count,
                field: None,
                alias: "n".into(),
            },
            Aggregation {
                op: AggOp::ErrorRate,
                field: None,
                alias: "e".into(),
            },
        ],
        order_by: Vec::new(),
        limit: 10,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::Float(f) => *f as i64,
        other => panic!("not a number: {other:?}"),
    }
}

/// One sealed segment of 500 events in 5 blocks; the store is closed.
fn sealed_segment(dir: &Path) -> PathBuf {
    let store = Store::open(config(dir)).expect("open");
    store.append(&tenant(), &events()).expect("append");
    store.seal_all().expect("seal");
    store.close().expect("close");
    let part = dir.join("tenants/t1/2026112510");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&part)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    files.pop().expect("segment")
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).expect("read");
    b[at as usize] ^= 0x5a;
    std::fs::write(path, b).expect("write");
}

fn segment_id(path: &Path) -> SegmentId {
    SegmentId(
        path.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .expect("segment file name"),
    )
}

#[test]
fn a_damaged_block_is_left_out_and_the_answer_says_partial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sealed_segment(dir.path());
    // Column-major placement: column 0 (timestamps) of blocks 0..5 come
    // first. Damage block 2's timestamps: find its chunk by reading.
    let clean = std::fs::read(&path).expect("read");
    let reader = SegmentReader::open(&path, segment_id(&path)).expect("open");
    let layout = reader.layout();
    assert!(layout.rollups > 0, "rollups kept");
    drop(reader);
    let mut hit = None;
    for at in 16..clean.len() as u64 / 2 {
        flip(&path, at);
        let r = SegmentReader::open(&path, segment_id(&path)).expect("footer intact");
        use pulsestream_storage::scan::ScanUnit;
        let bad: Vec<usize> = (0..r.block_count())
            .filter(|&b| {
                r.read(b, &[pulsestream_storage::column::ColumnKey::Timestamp])
                    .is_err()
            })
            .collect();
        flip(&path, at);
        if bad == [2] {
            hit = Some(at);
            break;
        }
    }
    let at = hit.expect("a byte of block 2's timestamps");
    flip(&path, at);

    let store = Store::open(config(dir.path())).expect("open");
    // A search reads every block and meets the damage.
    let found = store
        .search_checked(&SearchRequest {
            tenant: tenant(),
            range: whole_hour(),
            filter: Vec::new(),
            limit: 1000,
            cursor: None,
        })
        .expect("search answers");
    assert_eq!(found.value.events.len(), EVENTS as usize - BLOCK_ROWS);
    assert!(found.is_partial());
    assert!(
        found
            .value
            .events
            .iter()
            .all(|e| !(200..300).contains(&((e.timestamp.0 - T0) / Micros::SECOND)))
    );
    // Now that block 2 is known to be damaged, an aggregate leaves it out
    // too (the rollups, which count it, are not used), so answers agree.
    let q = store.query_checked(&count_query(TimeRange {
        from: Micros(T0 + 1),
        to: Micros(T0 + Micros::HOUR),
    }));
    let q = q.expect("query answers");
    assert_eq!(int(&q.value.rows[0][0]), EVENTS - 1 - BLOCK_ROWS as i64);
    assert_eq!(q.warnings.len(), 1, "{:?}", q.warnings);
    let w = &q.warnings[0];
    assert!(w.segment.as_deref().is_some_and(|s| s.ends_with(".seg")));
    assert_eq!(w.from, Some(Micros(T0 + 200 * Micros::SECOND)));
    assert_eq!(w.to, Some(Micros(T0 + 299 * Micros::SECOND)));
    // A range that does not touch the damaged block is complete.
    let early = store
        .query_checked(&count_query(TimeRange {
            from: Micros(T0 + 1),
            to: Micros(T0 + 100 * Micros::SECOND),
        }))
        .expect("query");
    assert_eq!(int(&early.value.rows[0][0]), 99);
    assert!(!early.is_partial(), "{:?}", early.warnings);
    let damage = store.damage();
    assert_eq!(damage.len(), 1);
    assert_eq!(damage[0].kind, DamageKind::Segment);
    assert!(damage[0].detail.contains("block 2"), "{}", damage[0].detail);
}

#[test]
fn damaged_rollups_are_recomputed_from_the_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sealed_segment(dir.path());
    let reader = SegmentReader::open(&path, segment_id(&path)).expect("open");
    let rollups = reader.layout().rollups;
    drop(reader);
    assert!(rollups > 0);
    // The rollup section sits right before the footer (storage/FORMAT.md).
    let bytes = std::fs::read(&path).expect("read");
    let n = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[n - 24..n - 20].try_into().expect("4 bytes")) as u64;
    let start = n as u64 - 24 - footer_len - rollups;
    flip(&path, start + rollups / 2);

    let store = Store::open(config(dir.path())).expect("open");
    let q = store
        .query_checked(&count_query(whole_hour()))
        .expect("statistics-like query answers");
    assert_eq!(int(&q.value.rows[0][0]), EVENTS);
    match q.value.rows[0][1] {
        Value::Float(e) => assert!((e - 0.1).abs() < 1e-9, "error rate {e}"),
        ref v => panic!("error rate {v:?}"),
    }
    assert!(!q.is_partial(), "rollups are derived: {:?}", q.warnings);
    let damage = store.damage();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].kind, DamageKind::Rollups);
    // And again, now that the damage is known.
    let again = store
        .query_checked(&count_query(whole_hour()))
        .expect("query");
    assert_eq!(int(&again.value.rows[0][0]), EVENTS);
}

#[test]
fn a_damaged_footer_is_named_in_answers_and_retention_still_drops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sealed_segment(dir.path());
    let len = std::fs::metadata(&path).expect("meta").len();
    flip(&path, len - 40);

    let store = Store::open(config(dir.path())).expect("open despite the damage");
    let q = store
        .query_checked(&count_query(whole_hour()))
        .expect("query answers");
    assert_eq!(int(&q.value.rows[0][0]), 0);
    assert!(q.is_partial());
    assert_eq!(q.warnings[0].from, Some(Micros(T0)));
    assert!(
        q.warnings[0].message.contains("500 events"),
        "{:?}",
        q.warnings
    );
    let damage = store.damage();
    assert_eq!(damage.len(), 1);
    assert_eq!(damage[0].kind, DamageKind::Segment);

    // Retention past the partition drops it: file gone, damage forgotten.
    let dropped = store
        .drop_before(&tenant(), Micros(T0 + 2 * Micros::HOUR))
        .expect("retention");
    assert_eq!(dropped, 1);
    assert!(!path.exists());
    assert!(store.damage().is_empty());
    let q = store
        .query_checked(&count_query(whole_hour()))
        .expect("query");
    assert!(!q.is_partial());
    store.close().expect("close");
    assert!(
        pulsestream_storage::store::verify(dir.path())
            .expect("verify")
            .is_sound()
    );
}
