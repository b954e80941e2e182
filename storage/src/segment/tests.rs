//! Writer → reader tests of whole segment files: round trips, statistics,
//! rollups against a naive computation, corruption, truncation, versions.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{self, FORMAT_VERSION, HEADER_LEN};
use super::{SegmentReader, WriteOptions, verify_segment, write_segment};
use crate::column::{Column, ColumnKey, ColumnSet, ColumnStats, NULL_CODE, NULL_INT, StrColumn};
use crate::error::StorageError;
use crate::event::{Method, is_error};
use crate::rollup::{MinuteKey, RollupAgg, RouteKey, status_class};
use crate::scan::ScanUnit;
use crate::types::{Micros, PartitionStart, SegmentId, TenantId};

/// One row as the tests think of it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    ts: i64,
    seq: i64,
    received: i64,
    event_type: String,
    service: Option<String>,
    endpoint: Option<String>,
    method: Option<Method>,
    status: Option<u16>,
    latency: Option<f64>,
    user: Option<String>,
    trace: Option<String>,
    message: Option<String>,
    tier: Option<String>,
    items: Option<f64>,
    retry: Option<bool>,
}

fn str_col(vals: impl Iterator<Item = Option<String>>) -> Column {
    let mut dict: Vec<String> = Vec::new();
    let mut index = HashMap::new();
    let codes = vals
        .map(|v| match v {
            None => NULL_CODE,
            Some(s) => *index.entry(s.clone()).or_insert_with(|| {
                dict.push(s);
                (dict.len() - 1) as u32
            }),
        })
        .collect();
    Column::Str(StrColumn {
        dict: Arc::new(dict),
        codes,
    })
}

/// A `ColumnSet` of `rows`; attribute columns only when some row has them.
fn to_columns(rows: &[Row]) -> ColumnSet {
    let int = |f: &dyn Fn(&Row) -> Option<i64>| {
        Column::Int(rows.iter().map(|r| f(r).unwrap_or(NULL_INT)).collect())
    };
    let mut c: HashMap<ColumnKey, Column> = HashMap::new();
    c.insert(ColumnKey::Timestamp, int(&|r| Some(r.ts)));
    c.insert(ColumnKey::Seq, int(&|r| Some(r.seq)));
    c.insert(ColumnKey::ReceivedAt, int(&|r| Some(r.received)));
    c.insert(
        ColumnKey::EventType,
        str_col(rows.iter().map(|r| Some(r.event_type.clone()))),
    );
    c.insert(
        ColumnKey::Service,
        str_col(rows.iter().map(|r| r.service.clone())),
    );
    c.insert(
        ColumnKey::Endpoint,
        str_col(rows.iter().map(|r| r.endpoint.clone())),
    );
    c.insert(
        ColumnKey::Method,
        int(&|r| r.method.map(|m| i64::from(m.code()))),
    );
    c.insert(ColumnKey::StatusCode, int(&|r| r.status.map(i64::from)));
    c.insert(
        ColumnKey::LatencyMs,
        Column::Float(rows.iter().map(|r| r.latency.unwrap_or(f64::NAN)).collect()),
    );
    c.insert(ColumnKey::Severity, int(&|_| None));
    c.insert(ColumnKey::RequestBytes, int(&|r| Some(r.seq * 3 % 1000)));
    c.insert(ColumnKey::ResponseBytes, int(&|_| None));
    c.insert(
        ColumnKey::UserId,
        str_col(rows.iter().map(|r| r.user.clone())),
    );
    c.insert(
        ColumnKey::Region,
        str_col(rows.iter().map(|_| Some("eu-west-1".to_string()))),
    );
    c.insert(
        ColumnKey::TraceId,
        str_col(rows.iter().map(|r| r.trace.clone())),
    );
    c.insert(
        ColumnKey::Message,
        str_col(rows.iter().map(|r| r.message.clone())),
    );
    if rows.iter().any(|r| r.tier.is_some()) {
        c.insert(
            ColumnKey::AttrStr("tier".into()),
            str_col(rows.iter().map(|r| r.tier.clone())),
        );
    }
    if rows.iter().any(|r| r.items.is_some()) {
        c.insert(
            ColumnKey::AttrNum("items".into()),
            Column::Float(rows.iter().map(|r| r.items.unwrap_or(f64::NAN)).collect()),
        );
    }
    if rows.iter().any(|r| r.retry.is_some()) {
        c.insert(
            ColumnKey::AttrBool("retry".into()),
            int(&|r| r.retry.map(i64::from)),
        );
    }
    ColumnSet {
        rows: rows.len(),
        columns: c.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
    }
}

/// Deterministic rows: out of time order, with nulls and attributes.
fn sample_rows(n: i64, with_attrs: bool) -> Vec<Row> {
    let services = ["auth", "orders", "search"];
    (0..n)
        .map(|i| {
            let h = (i * 7919) % 1009;
            let status = match h % 10 {
                0 => None,
                1 => Some(503),
                2 => Some(404),
                _ => Some(200),
            };
            Row {
                ts: 1_000_000_000 + (h * 997_003) % 3_600_000_000,
                seq: 100 + i,
                received: 1_000_000_000 + (h * 997_003) % 3_600_000_000 + (i % 50) * 1000,
                event_type: if status.is_none() {
                    "user_action".into()
                } else {
                    "api_call".into()
                },
                service: (h % 13 != 0).then(|| services[(h % 3) as usize].to_string()),
                endpoint: Some(format!("/api/v1/r{}", h % 5)),
                method: Method::from_code((h % 3 + 1) as u8),
                status,
                latency: (h % 11 != 0).then_some((h as f64) * 1.125 + 0.001),
                user: Some(format!("u-{:05}", h % 40)),
                trace: (h % 4 != 0)
                    .then(|| format!("{:032x}", (h as u128) * 0x9e37_79b9_7f4a_7c15)),
                message: (status == Some(503)).then(|| "upstream failed".to_string()),
                tier: (with_attrs && h % 2 == 0)
                    .then(|| ["free", "gold"][(h % 4 / 2) as usize].to_string()),
                items: (with_attrs && h % 3 == 0).then_some((h % 17) as f64),
                retry: (with_attrs && h % 5 == 0).then_some(h % 10 == 0),
            }
        })
        .collect()
}

/// Like `sample_rows`, squeezed into five minutes so that rollup rows
/// each hold several events (and the writer keeps the rollups).
fn dense_rows(n: i64) -> Vec<Row> {
    let mut rows = sample_rows(n, false);
    for r in &mut rows {
        let skew = r.received - r.ts;
        r.ts = 1_000_000_000 + (r.ts - 1_000_000_000) % 300_000_000;
        r.received = r.ts + skew;
    }
    rows
}

fn tenant() -> TenantId {
    TenantId::new("t001").unwrap()
}

fn opts(block_rows: usize) -> WriteOptions {
    WriteOptions {
        block_rows,
        zstd_level: 3,
        threads: 2,
        sealed_through: 0,
        level: 0,
    }
}

/// Writes rows split over chunks the way given (the last chunk has no attributes).
fn write(dir: &Path, rows: &[Row], block_rows: usize) -> (PathBuf, super::SegmentSummary) {
    let path = dir.join("seg-7.seg");
    let half = rows.len() / 2;
    let chunks = [to_columns(&rows[..half]), to_columns(&rows[half..])];
    let s = write_segment(
        &path,
        SegmentId(7),
        &tenant(),
        PartitionStart(Micros(0)),
        &chunks,
        &opts(block_rows),
    )
    .unwrap();
    (path, s)
}

fn all_keys(r: &SegmentReader) -> Vec<ColumnKey> {
    r.column_keys()
}

/// Reads every block back into rows.
fn read_rows(r: &SegmentReader) -> Vec<Row> {
    let keys = [
        ColumnKey::AttrStr("tier".into()),
        ColumnKey::AttrNum("items".into()),
        ColumnKey::AttrBool("retry".into()),
    ];
    let mut out = Vec::new();
    for b in 0..r.block_count() {
        let mut want = ColumnKey::CORE.to_vec();
        want.extend(keys.iter().cloned());
        let set = r.read(b, &want).unwrap();
        assert_eq!(set.rows, r.block_rows(b));
        let int = |k: &ColumnKey, i: usize| match set.get(k) {
            Some(Column::Int(v)) => Some(v[i]).filter(|&x| x != NULL_INT),
            other => panic!("{k:?}: {other:?}"),
        };
        let flt = |k: &ColumnKey, i: usize| match set.get(k) {
            Some(Column::Float(v)) => Some(v[i]).filter(|x| !x.is_nan()),
            other => panic!("{k:?}: {other:?}"),
        };
        let st = |k: &ColumnKey, i: usize| match set.get(k) {
            Some(Column::Str(s)) => s.get(i).map(str::to_owned),
            other => panic!("{k:?}: {other:?}"),
        };
        for i in 0..set.rows {
            out.push(Row {
                ts: int(&ColumnKey::Timestamp, i).unwrap(),
                seq: int(&ColumnKey::Seq, i).unwrap(),
                received: int(&ColumnKey::ReceivedAt, i).unwrap(),
                event_type: st(&ColumnKey::EventType, i).unwrap(),
                service: st(&ColumnKey::Service, i),
                endpoint: st(&ColumnKey::Endpoint, i),
                method: int(&ColumnKey::Method, i).and_then(|m| Method::from_code(m as u8)),
                status: int(&ColumnKey::StatusCode, i).map(|s| s as u16),
                latency: flt(&ColumnKey::LatencyMs, i),
                user: st(&ColumnKey::UserId, i),
                trace: st(&ColumnKey::TraceId, i),
                message: st(&ColumnKey::Message, i),
                tier: st(&keys[0], i),
                items: flt(&keys[1], i),
                retry: int(&keys[2], i).map(|b| b == 1),
            });
        }
    }
    out
}

fn sorted(rows: &[Row]) -> Vec<Row> {
    let mut v = rows.to_vec();
    v.sort_by_key(|r| (r.ts, r.seq));
    v
}

#[test]
fn rows_come_back_sorted_with_attributes_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample_rows(1000, true);
    let (path, summary) = write(dir.path(), &rows, 128);
    let want = sorted(&rows);
    assert_eq!(summary.rows, 1000);
    assert_eq!((summary.min_seq, summary.max_seq), (100, 1099));
    assert_eq!(summary.min_ts.0, want[0].ts);
    assert_eq!(summary.max_ts.0, want[999].ts);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    assert!(!super::tmp_path(&path).exists());

    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert_eq!(r.rows(), 1000);
    assert_eq!(r.block_count(), 8);
    assert!(r.time_sorted());
    assert_eq!(r.tenant(), &tenant());
    assert_eq!(r.time_range(), (summary.min_ts, summary.max_ts));
    assert!(r.describe().contains("segment 7"));
    let mut attrs = r.attribute_keys();
    attrs.sort();
    assert_eq!(
        attrs,
        vec![
            ColumnKey::AttrStr("tier".into()),
            ColumnKey::AttrNum("items".into()),
            ColumnKey::AttrBool("retry".into())
        ]
    );
    assert_eq!(read_rows(&r), want);
    for b in 0..r.block_count() {
        let (lo, hi) = r.block_time_range(b);
        let set = r.read(b, &[ColumnKey::Timestamp]).unwrap();
        let Some(Column::Int(ts)) = set.get(&ColumnKey::Timestamp) else {
            panic!()
        };
        assert_eq!((lo.0, hi.0), (ts[0], ts[ts.len() - 1]));
    }
    // A key the segment never saw reads as nulls.
    let set = r.read(0, &[ColumnKey::AttrStr("nope".into())]).unwrap();
    assert_eq!(
        set.get(&ColumnKey::AttrStr("nope".into())).unwrap(),
        &Column::nulls(crate::column::ColumnKind::Str, 128)
    );
    assert!(r.read(99, &[ColumnKey::Seq]).is_err());
    assert_eq!(verify_segment(&path).unwrap(), 8);
}

#[test]
fn a_chunk_without_an_attribute_reads_it_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = sample_rows(300, true);
    for r in &mut rows[150..] {
        r.tier = None;
        r.items = None;
        r.retry = None;
    }
    let (path, _) = write(dir.path(), &rows, 1000);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert_eq!(read_rows(&r), sorted(&rows));
}

#[test]
fn the_file_does_not_depend_on_the_number_of_encoding_threads() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample_rows(5000, true);
    // Interleaved chunks, one without attributes, many blocks.
    let chunks: Vec<ColumnSet> = (0..4)
        .map(|c| {
            let mine: Vec<Row> = rows.iter().skip(c).step_by(4).cloned().collect();
            let mut cs = to_columns(&mine);
            if c == 3 {
                cs.columns.retain(|k, _| ColumnKey::CORE.contains(k));
            }
            cs
        })
        .collect();
    let bytes: Vec<Vec<u8>> = [1, 2, 5]
        .iter()
        .map(|&threads| {
            let path = dir.path().join(format!("t{threads}.seg"));
            let o = WriteOptions {
                threads,
                ..opts(700)
            };
            write_segment(
                &path,
                SegmentId(7),
                &tenant(),
                PartitionStart(Micros(0)),
                &chunks,
                &o,
            )
            .unwrap();
            std::fs::read(&path).unwrap()
        })
        .collect();
    assert_eq!(bytes[0], bytes[1]);
    assert_eq!(bytes[0], bytes[2]);
    let path = dir.path().join("t2.seg");
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert_eq!(r.block_count(), 5000usize.div_ceil(700));
    assert_eq!(verify_segment(&path).unwrap(), r.block_count() as u64);
    let mut expect = rows.clone();
    for r in expect.iter_mut().skip(3).step_by(4) {
        (r.tier, r.items, r.retry) = (None, None, None);
    }
    assert_eq!(read_rows(&r), sorted(&expect));
}

fn expected_stats(vals: &[Option<i64>]) -> ColumnStats {
    let nulls = vals.iter().filter(|v| v.is_none()).count() as u64;
    let nn: Vec<i64> = vals.iter().flatten().copied().collect();
    match (nn.iter().min(), nn.iter().max()) {
        (Some(&min), Some(&max)) => ColumnStats::Int { min, max, nulls },
        _ => ColumnStats::AllNull { nulls },
    }
}

#[test]
fn statistics_and_distinct_lists_match_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample_rows(1000, true);
    let (path, _) = write(dir.path(), &rows, 100);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    let want = sorted(&rows);
    for b in 0..r.block_count() {
        let block = &want[b * 100..(b + 1) * 100];
        let status: Vec<Option<i64>> = block.iter().map(|r| r.status.map(i64::from)).collect();
        assert_eq!(
            r.column_stats(Some(b), &ColumnKey::StatusCode),
            Some(expected_stats(&status))
        );
        let lat: Vec<f64> = block.iter().filter_map(|r| r.latency).collect();
        let nulls = (100 - lat.len()) as u64;
        let (min, max) = lat
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert_eq!(
            r.column_stats(Some(b), &ColumnKey::LatencyMs),
            Some(ColumnStats::Float { min, max, nulls })
        );
        let svc: Vec<&str> = block.iter().filter_map(|r| r.service.as_deref()).collect();
        let want_svc = ColumnStats::Str {
            min: svc.iter().min().unwrap().to_string(),
            max: svc.iter().max().unwrap().to_string(),
            nulls: (100 - svc.len()) as u64,
        };
        assert_eq!(r.column_stats(Some(b), &ColumnKey::Service), Some(want_svc));
    }
    let seq: Vec<Option<i64>> = want.iter().map(|r| Some(r.seq)).collect();
    assert_eq!(
        r.column_stats(None, &ColumnKey::Seq),
        Some(expected_stats(&seq))
    );
    assert_eq!(
        r.column_stats(None, &ColumnKey::Severity),
        Some(ColumnStats::AllNull { nulls: 1000 })
    );
    assert_eq!(
        r.column_stats(None, &ColumnKey::AttrStr("absent".into())),
        Some(ColumnStats::AllNull { nulls: 1000 })
    );
    assert_eq!(
        r.distinct_strings(&ColumnKey::Service).unwrap(),
        ["auth", "orders", "search"]
    );
    assert_eq!(
        r.distinct_strings(&ColumnKey::EventType).unwrap(),
        ["api_call", "user_action"]
    );
    // Trace ids are unique per row: no list.
    assert_eq!(r.distinct_strings(&ColumnKey::TraceId), None);
    assert_eq!(r.distinct_strings(&ColumnKey::Seq), None);
}

#[test]
fn rollups_equal_a_naive_computation() {
    let dir = tempfile::tempdir().unwrap();
    // Some rollup rows hold a single latency, others several.
    let rows = dense_rows(1500);
    let (path, _) = write(dir.path(), &rows, 300);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    let mut by_minute: BTreeMap<MinuteKey, RollupAgg> = BTreeMap::new();
    let mut by_route: BTreeMap<RouteKey, RollupAgg> = BTreeMap::new();
    for row in sorted(&rows) {
        let err = is_error(row.status, &row.event_type);
        let class = status_class(row.status);
        by_minute
            .entry(MinuteKey {
                minute: Micros(row.ts).floor_to(Micros::MINUTE),
                service: row.service.clone(),
                event_type: row.event_type.clone(),
                status_class: class,
            })
            .or_default()
            .add(row.latency, err);
        by_route
            .entry(RouteKey {
                service: row.service.clone(),
                endpoint: row.endpoint.clone(),
                method: row.method,
                event_type: row.event_type.clone(),
                status_class: class,
            })
            .or_default()
            .add(row.latency, err);
    }
    let got = r.rollups().unwrap().unwrap();
    // Sums are rounded once from an exact total rather than accumulated,
    // so they may differ from the naive float sum in the last bits.
    fn same<K: PartialEq + std::fmt::Debug>(got: &[(K, RollupAgg)], want: BTreeMap<K, RollupAgg>) {
        assert_eq!(got.len(), want.len());
        for ((gk, g), (wk, w)) in got.iter().zip(want) {
            assert_eq!(gk, &wk);
            let tol = 1e-12 * w.latency_sum.abs().max(1.0);
            assert!(
                (g.latency_sum - w.latency_sum).abs() <= tol,
                "{gk:?}: {} vs {}",
                g.latency_sum,
                w.latency_sum
            );
            let g = RollupAgg {
                latency_sum: w.latency_sum,
                ..g.clone()
            };
            assert_eq!(g, w, "{gk:?}");
        }
    }
    same(&got.by_minute, by_minute);
    same(&got.by_route, by_route);
    assert!(got.by_minute.iter().any(|(_, a)| a.latency_count == 1));
    // Cached: the same Arc comes back.
    assert!(Arc::ptr_eq(&got, &r.rollups().unwrap().unwrap()));
}

#[test]
fn rollups_are_left_out_where_they_would_not_pay() {
    let dir = tempfile::tempdir().unwrap();
    // 200 rows spread over an hour: nearly one rollup row per event.
    let (path, _) = write(dir.path(), &sample_rows(200, false), 64);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert!(r.rollups().unwrap().is_none());
    assert_eq!(r.layout().rollups, 0);
    assert_eq!(verify_segment(&path).unwrap(), 4);
    let (path, _) = write(dir.path(), &dense_rows(1500), 64);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert!(r.rollups().unwrap().is_some());
    assert!(r.layout().rollups > 0);
}

#[test]
fn a_damaged_chunk_is_named_and_other_blocks_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let rows = sample_rows(600, true);
    let (path, _) = write(dir.path(), &rows, 200);
    let clean = std::fs::read(&path).unwrap();
    let keys = {
        let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
        all_keys(&r)
    };
    let footer = SegmentReader::open(&path, SegmentId(7))
        .unwrap()
        .footer()
        .clone();
    for (c, key) in keys.iter().enumerate() {
        let chunk = &footer.blocks[1].chunks[c];
        if chunk.at.len == 0 {
            continue;
        }
        let mut bytes = clean.clone();
        bytes[(chunk.at.offset + u64::from(chunk.at.len) / 2) as usize] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
        match r.read(1, std::slice::from_ref(key)) {
            Err(StorageError::Corrupted { location, .. }) => {
                assert!(
                    location.contains("seg-7.seg") && location.contains("block 1"),
                    "{location}"
                )
            }
            other => panic!("{key:?}: {other:?}"),
        }
        r.read(0, &keys).unwrap();
        r.read(2, &keys).unwrap();
        assert!(matches!(
            verify_segment(&path),
            Err(StorageError::Corrupted { .. })
        ));
    }
    // Damaged rollups: the rollups fail, the rows still read.
    let (path, _) = write(dir.path(), &dense_rows(1500), 200);
    let clean = std::fs::read(&path).unwrap();
    let footer = SegmentReader::open(&path, SegmentId(7))
        .unwrap()
        .footer()
        .clone();
    let mut bytes = clean.clone();
    bytes[footer.rollups.unwrap().offset as usize + 1] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert!(matches!(r.rollups(), Err(StorageError::Corrupted { .. })));
    r.read(1, &keys).unwrap();
    assert!(verify_segment(&path).is_err());
}

#[test]
fn damaged_footer_or_trailer_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), &sample_rows(200, true), 64);
    let clean = std::fs::read(&path).unwrap();
    for back in 1..60 {
        let mut bytes = clean.clone();
        let i = bytes.len() - back;
        bytes[i] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        assert!(
            SegmentReader::open(&path, SegmentId(7)).is_err(),
            "byte -{back}"
        );
    }
}

#[test]
fn truncated_files_error_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), &sample_rows(200, true), 64);
    let clean = std::fs::read(&path).unwrap();
    for len in (0..clean.len()).step_by(7) {
        std::fs::write(&path, &clean[..len]).unwrap();
        assert!(
            SegmentReader::open(&path, SegmentId(7)).is_err(),
            "len {len}"
        );
    }
}

#[test]
fn only_known_versions_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), &sample_rows(50, false), 64);
    let clean = std::fs::read(&path).unwrap();
    assert_eq!(format::parse_header(&clean, "x").unwrap(), FORMAT_VERSION);
    for v in [0u32, 3, 99, u32::MAX] {
        let mut bytes = clean.clone();
        bytes[8..12].copy_from_slice(&v.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        match SegmentReader::open(&path, SegmentId(7)) {
            Err(StorageError::UnsupportedVersion { version, .. }) => assert_eq!(version, v),
            Err(e) => panic!("version {v}: {e}"),
            Ok(_) => panic!("version {v} opened"),
        }
    }
    let mut bytes = clean.clone();
    bytes[..HEADER_LEN as usize].copy_from_slice(&format::header(FORMAT_VERSION));
    std::fs::write(&path, &bytes).unwrap();
    assert!(SegmentReader::open(&path, SegmentId(7)).is_ok());
}

#[test]
fn every_single_byte_flip_is_an_error_or_a_clean_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), &sample_rows(40, true), 16);
    let clean = std::fs::read(&path).unwrap();
    for i in 0..clean.len() {
        let mut bytes = clean.clone();
        bytes[i] ^= 0xa5;
        let Ok(r) = SegmentReader::from_bytes(bytes, Path::new("mem"), SegmentId(1)) else {
            continue;
        };
        let keys = r.column_keys();
        for b in 0..r.block_count() {
            let _ = r.read(b, &keys);
        }
        let _ = r.rollups();
    }
}

#[test]
fn bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.seg");
    let w = |chunks: &[ColumnSet], o: &WriteOptions| {
        write_segment(
            &path,
            SegmentId(1),
            &tenant(),
            PartitionStart(Micros(0)),
            chunks,
            o,
        )
    };
    assert!(matches!(
        w(&[], &opts(10)),
        Err(StorageError::Invalid { .. })
    ));
    let mut cs = to_columns(&sample_rows(10, false));
    assert!(matches!(
        w(std::slice::from_ref(&cs), &opts(0)),
        Err(StorageError::Invalid { .. })
    ));
    cs.columns.remove(&ColumnKey::Region);
    assert!(matches!(
        w(&[cs], &opts(10)),
        Err(StorageError::Invalid { .. })
    ));
    let mut cs = to_columns(&sample_rows(10, false));
    cs.columns.insert(
        ColumnKey::AttrNum("x".into()),
        Arc::new(Column::Int(vec![1; 10])),
    );
    assert!(matches!(
        w(&[cs], &opts(10)),
        Err(StorageError::Invalid { .. })
    ));
    assert!(!path.exists() && !super::tmp_path(&path).exists());
}

#[test]
fn a_block_larger_than_the_ranking_sample_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    // One block of 20,000 rows: encodings are ranked on its first 8,192.
    let rows = sample_rows(20_000, true);
    let (path, _) = write(dir.path(), &rows, 1 << 16);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    assert_eq!(r.block_count(), 1);
    assert_eq!(read_rows(&r), sorted(&rows));
}

/// One value of a decoded column, comparable across dictionaries.
#[derive(Debug, PartialEq)]
enum Val {
    Int(i64),
    Float(u64),
    Str(Option<String>),
}

fn values(col: &Column) -> Vec<Val> {
    match col {
        Column::Int(v) => v.iter().map(|&x| Val::Int(x)).collect(),
        Column::Float(v) => v.iter().map(|x| Val::Float(x.to_bits())).collect(),
        Column::Str(s) => (0..s.codes.len())
            .map(|i| Val::Str(s.get(i).map(str::to_owned)))
            .collect(),
    }
}

/// Rows whose string columns take every string encoding: fixed-width hex
/// trace ids, numbered user ids, dictionary services, plain messages and
/// variable-width hex in an attribute; all with nulls.
fn mixed_string_rows(n: i64) -> Vec<Row> {
    let mut rows = sample_rows(n, true);
    for (i, r) in rows.iter_mut().enumerate() {
        let i = i as u64;
        r.user =
            (!i.is_multiple_of(6)).then(|| format!("user-{:06}", i.wrapping_mul(7919) % 1_000_000));
        r.message = (!i.is_multiple_of(3)).then(|| format!("request {i} took {} ms", i * 31 % 997));
        let bytes = 1 + i % 4;
        let hash = i.wrapping_mul(2_654_435_761) & ((1u64 << (8 * bytes)) - 1);
        r.tier = (!i.is_multiple_of(4)).then(|| format!("{hash:0w$x}", w = 2 * bytes as usize));
    }
    rows
}

#[test]
fn read_rows_equals_read_then_gather_for_every_string_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), &mixed_string_rows(3000), 700);
    let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
    let keys = all_keys(&r);
    // Every string encoding is in use somewhere (else the test proves less).
    let footer = r.footer();
    let mut encodings: Vec<u8> = footer
        .blocks
        .iter()
        .flat_map(|b| b.chunks.iter().map(|c| c.encoding))
        .collect();
    encodings.sort_unstable();
    encodings.dedup();
    for enc in [
        super::encoding::ENC_STR_DICT,
        super::encoding::ENC_STR_PLAIN,
        super::encoding::ENC_STR_HEX,
        super::encoding::ENC_STR_NUM,
    ] {
        assert!(
            encodings.contains(&enc),
            "encoding {enc} unused: {encodings:?}"
        );
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..40 {
        let block = (next() % r.block_count() as u64) as usize;
        let rows = r.block_rows(block) as u64;
        let picks: Vec<u32> = (0..next() % 60).map(|_| (next() % rows) as u32).collect();
        // A random subset of the keys, sometimes with received_at but not
        // the timestamp it is stored relative to.
        let want: Vec<ColumnKey> = keys.iter().filter(|_| next() % 3 != 0).cloned().collect();
        let full = r.read(block, &want).unwrap();
        let part = r.read_rows(block, &want, &picks).unwrap();
        assert_eq!(part.rows, picks.len());
        assert_eq!(part.columns.len(), full.columns.len());
        for key in &want {
            let expect = full.get(key).unwrap().gather(&picks).unwrap();
            let got = part.get(key).unwrap();
            assert_eq!(values(got), values(&expect), "block {block} {key:?}");
        }
    }
    // A key the segment never saw reads as nulls of the selected length.
    let absent = ColumnKey::AttrStr("never".into());
    let set = r
        .read_rows(0, std::slice::from_ref(&absent), &[1, 2])
        .unwrap();
    assert_eq!(
        values(set.get(&absent).unwrap()),
        [Val::Str(None), Val::Str(None)]
    );
    // Rows or blocks that do not exist are refused.
    let past = r.block_rows(0) as u32;
    assert!(matches!(
        r.read_rows(0, &keys, &[0, past]),
        Err(StorageError::Invalid { .. })
    ));
    assert!(matches!(
        r.read_rows(r.block_count(), &keys, &[0]),
        Err(StorageError::Invalid { .. })
    ));
}

#[test]
fn read_rows_of_a_damaged_chunk_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write(dir.path(), &mixed_string_rows(600), 200);
    let clean = std::fs::read(&path).unwrap();
    let (keys, footer) = {
        let r = SegmentReader::open(&path, SegmentId(7)).unwrap();
        (all_keys(&r), r.footer().clone())
    };
    for (c, key) in keys.iter().enumerate() {
        let chunk = &footer.blocks[1].chunks[c];
        if chunk.at.len == 0 {
            continue;
        }
        let mut bytes = clean.clone();
        bytes[(chunk.at.offset + u64::from(chunk.at.len) / 2) as usize] ^= 0x40;
        let r = SegmentReader::from_bytes(bytes, &path, SegmentId(7)).unwrap();
        match r.read_rows(1, std::slice::from_ref(key), &[3, 0, 3]) {
            Err(StorageError::Corrupted { location, .. }) => {
                assert!(location.contains("block 1"), "{location}")
            }
            other => panic!("{key:?}: {other:?}"),
        }
        r.read_rows(0, &keys, &[5, 1]).unwrap();
    }
}
