//! Segment files written by earlier builds must keep reading the same.
//!
//! `tests/data/segment-v1.seg` was written by format version 1 from the
//! rows `rows()` describes (regenerate it only when adding a new format
//! version, never to make this test pass: `cargo test -p pulsestream-storage
//! --test segment_compat -- --ignored write_v1_fixture`). The test reads it
//! with today's reader and checks every value, the statistics and the
//! rollups, so a change that silently alters how version 1 is read fails
//! here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pulsestream_storage::column::{
    Column, ColumnKey, ColumnSet, ColumnStats, NULL_CODE, NULL_INT, StrColumn,
};
use pulsestream_storage::scan::ScanUnit;
use pulsestream_storage::segment::{SegmentReader, WriteOptions, verify_segment, write_segment};
use pulsestream_storage::types::{Micros, PartitionStart, SegmentId, TenantId};

const ROWS: i64 = 300;
const BASE: i64 = 1_795_600_800_000_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/segment-v1.seg")
}

/// (timestamp, seq, service, status, latency, trace, tier attribute)
type Row = (
    i64,
    i64,
    Option<String>,
    Option<i64>,
    f64,
    String,
    Option<String>,
);

/// The fixture's rows, in the order they were handed to the writer (not
/// time order), all inside one minute so the rollups are kept.
fn rows() -> Vec<Row> {
    (0..ROWS)
        .map(|i| {
            let h = (i * 7919) % 997;
            (
                BASE + h * 50_000,
                1000 + i,
                (h % 7 != 0).then(|| ["auth", "orders"][(h % 2) as usize].to_string()),
                (h % 5 != 0).then_some(200 + 100 * (h % 4)),
                if h % 9 == 0 {
                    f64::NAN
                } else {
                    (h as f64) * 0.25 + 0.125
                },
                format!("{:032x}", (h as u128) << 64 | (i as u128)),
                (h % 3 == 0).then(|| "gold".to_string()),
            )
        })
        .collect()
}

fn strs(vals: Vec<Option<String>>) -> Column {
    let mut dict = Vec::new();
    let mut idx: HashMap<String, u32> = HashMap::new();
    let codes = vals
        .into_iter()
        .map(|v| match v {
            None => NULL_CODE,
            Some(s) => *idx.entry(s.clone()).or_insert_with(|| {
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

fn column_set(rows: &[Row]) -> ColumnSet {
    let n = rows.len();
    let mut c: HashMap<ColumnKey, Column> = HashMap::new();
    c.insert(
        ColumnKey::Timestamp,
        Column::Int(rows.iter().map(|r| r.0).collect()),
    );
    c.insert(
        ColumnKey::Seq,
        Column::Int(rows.iter().map(|r| r.1).collect()),
    );
    c.insert(
        ColumnKey::ReceivedAt,
        Column::Int(rows.iter().map(|r| r.0 + 20_000).collect()),
    );
    c.insert(ColumnKey::EventType, strs(vec![Some("api_call".into()); n]));
    c.insert(
        ColumnKey::Service,
        strs(rows.iter().map(|r| r.2.clone()).collect()),
    );
    c.insert(
        ColumnKey::Endpoint,
        strs(vec![Some("/api/v1/orders/{id}".into()); n]),
    );
    c.insert(ColumnKey::Method, Column::Int(vec![1; n]));
    c.insert(
        ColumnKey::StatusCode,
        Column::Int(rows.iter().map(|r| r.3.unwrap_or(NULL_INT)).collect()),
    );
    c.insert(
        ColumnKey::LatencyMs,
        Column::Float(rows.iter().map(|r| r.4).collect()),
    );
    c.insert(ColumnKey::Severity, Column::Int(vec![NULL_INT; n]));
    c.insert(
        ColumnKey::RequestBytes,
        Column::Int(rows.iter().map(|r| r.1 % 700).collect()),
    );
    c.insert(ColumnKey::ResponseBytes, Column::Int(vec![NULL_INT; n]));
    c.insert(
        ColumnKey::UserId,
        strs(
            rows.iter()
                .map(|r| Some(format!("u-{:05}", r.1 % 37)))
                .collect(),
        ),
    );
    c.insert(ColumnKey::Region, strs(vec![Some("eu-west-1".into()); n]));
    c.insert(
        ColumnKey::TraceId,
        strs(rows.iter().map(|r| Some(r.5.clone())).collect()),
    );
    c.insert(ColumnKey::Message, strs(vec![None; n]));
    c.insert(
        ColumnKey::AttrStr("tier".into()),
        strs(rows.iter().map(|r| r.6.clone()).collect()),
    );
    ColumnSet {
        rows: n,
        columns: c.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
    }
}

/// Writes the fixture's rows with today's writer.
fn write_rows(path: &Path, sealed_through: u64, level: u32) {
    let rows = rows();
    let chunks = [column_set(&rows[..150]), column_set(&rows[150..])];
    let opts = WriteOptions {
        block_rows: 128,
        zstd_level: 3,
        threads: 1,
        sealed_through,
        level,
    };
    let tenant = TenantId::new("t001").unwrap();
    write_segment(
        path,
        SegmentId(1),
        &tenant,
        PartitionStart(Micros(BASE)),
        &chunks,
        &opts,
    )
    .unwrap();
}

#[test]
#[ignore = "writes a fixture of the current version; run by hand when a format version is added"]
fn write_current_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/data/segment-v{}.seg",
        pulsestream_storage::segment::format::FORMAT_VERSION
    ));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_rows(&path, 0, 0);
}

#[test]
fn version_2_footers_carry_provenance_and_version_1_reads_without() {
    use pulsestream_storage::segment::format::{FORMAT_VERSION, KNOWN_VERSIONS, Provenance};
    assert_eq!(FORMAT_VERSION, 2);
    assert!(KNOWN_VERSIONS.contains(&1), "version 1 must stay readable");
    let v1 = SegmentReader::open(&fixture(), SegmentId(1))
        .unwrap()
        .facts();
    assert_eq!(v1.provenance, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.seg");
    write_rows(&path, 4242, 3);
    assert_eq!(verify_segment(&path).unwrap(), 3);
    let v2 = SegmentReader::open(&path, SegmentId(1)).unwrap().facts();
    assert_eq!(
        v2.provenance,
        Some(Provenance {
            sealed_through: 4242,
            level: 3
        })
    );
    // Everything else the footer summarises reads the same in both.
    assert_eq!(
        (v2.segment_id, &v2.tenant, v2.partition, v2.rows),
        (v1.segment_id, &v1.tenant, v1.partition, v1.rows)
    );
    assert_eq!(
        (v2.min_ts, v2.max_ts, v2.min_seq, v2.max_seq),
        (v1.min_ts, v1.max_ts, v1.min_seq, v1.max_seq)
    );
}

#[test]
fn version_1_files_still_read_the_same() {
    let path = fixture();
    assert_eq!(verify_segment(&path).unwrap(), 3);
    let r = SegmentReader::open(&path, SegmentId(1)).unwrap();
    let mut want = rows();
    want.sort_by_key(|r| (r.0, r.1));
    assert_eq!(r.rows(), ROWS as u64);
    assert_eq!(
        r.time_range(),
        (Micros(want[0].0), Micros(want[want.len() - 1].0))
    );
    assert_eq!(r.attribute_keys(), vec![ColumnKey::AttrStr("tier".into())]);
    assert_eq!(r.seq_range(), (1000, 1000 + ROWS as u64 - 1));

    let keys = [
        ColumnKey::Timestamp,
        ColumnKey::Seq,
        ColumnKey::ReceivedAt,
        ColumnKey::Service,
        ColumnKey::StatusCode,
        ColumnKey::LatencyMs,
        ColumnKey::TraceId,
        ColumnKey::UserId,
        ColumnKey::AttrStr("tier".into()),
    ];
    let mut got: Vec<Row> = Vec::new();
    for b in 0..r.block_count() {
        let set = r.read(b, &keys).unwrap();
        let int = |k: &ColumnKey| match set.get(k) {
            Some(Column::Int(v)) => v.clone(),
            other => panic!("{k:?}: {other:?}"),
        };
        let st = |k: &ColumnKey, i: usize| match set.get(k) {
            Some(Column::Str(s)) => s.get(i).map(str::to_owned),
            other => panic!("{k:?}: {other:?}"),
        };
        let Some(Column::Float(lat)) = set.get(&ColumnKey::LatencyMs) else {
            panic!("latency")
        };
        let (ts, seq, recv, status) = (
            int(&ColumnKey::Timestamp),
            int(&ColumnKey::Seq),
            int(&ColumnKey::ReceivedAt),
            int(&ColumnKey::StatusCode),
        );
        for i in 0..set.rows {
            assert_eq!(recv[i], ts[i] + 20_000);
            assert_eq!(
                st(&ColumnKey::UserId, i),
                Some(format!("u-{:05}", seq[i] % 37))
            );
            got.push((
                ts[i],
                seq[i],
                st(&ColumnKey::Service, i),
                Some(status[i]).filter(|&s| s != NULL_INT),
                lat[i],
                st(&ColumnKey::TraceId, i).unwrap(),
                st(&ColumnKey::AttrStr("tier".into()), i),
            ));
        }
    }
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (g.0, g.1, &g.2, g.3, &g.5, &g.6),
            (w.0, w.1, &w.2, w.3, &w.5, &w.6)
        );
        assert!(g.4.to_bits() == w.4.to_bits() || (g.4.is_nan() && w.4.is_nan()));
    }

    let statuses: Vec<i64> = want.iter().filter_map(|r| r.3).collect();
    assert_eq!(
        r.column_stats(None, &ColumnKey::StatusCode),
        Some(ColumnStats::Int {
            min: *statuses.iter().min().unwrap(),
            max: *statuses.iter().max().unwrap(),
            nulls: (want.len() - statuses.len()) as u64,
        })
    );
    assert_eq!(
        r.distinct_strings(&ColumnKey::Service).unwrap(),
        ["auth", "orders"]
    );

    let rollups = r
        .rollups()
        .unwrap()
        .expect("rollups kept: the rows share one minute");
    let total: u64 = rollups.by_route.iter().map(|(_, a)| a.count).sum();
    assert_eq!(total, ROWS as u64);
    let errors: u64 = rollups.by_minute.iter().map(|(_, a)| a.errors).sum();
    assert_eq!(
        errors,
        want.iter()
            .filter(|r| r.3.is_some_and(|s| s >= 500))
            .count() as u64
    );
    let with_latency: u64 = rollups.by_minute.iter().map(|(_, a)| a.latency_count).sum();
    assert_eq!(
        with_latency,
        want.iter().filter(|r| !r.4.is_nan()).count() as u64
    );
}
