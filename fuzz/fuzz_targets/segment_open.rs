//! Sealed segment files from untrusted bytes: opening, reading every block
//! and column, statistics and rollups give `Ok` or `Err`, never a panic and
//! never an allocation beyond the format's bounds.
//!
//! The first byte selects the mode: 2 and 3 open the rest as a segment file
//! (seed with a written segment behind a 0x02 byte); because checksums stop
//! most mutations of a whole file early, 0 feeds the rest straight to the
//! chunk decoders and 1 to the rollup decoder, which sit behind them.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pulsestream_storage::column::{ColumnKey, ColumnKind};
use pulsestream_storage::scan::ScanUnit;
use pulsestream_storage::segment::SegmentReader;
use pulsestream_storage::segment::encoding::decode_column;
use pulsestream_storage::segment::rollup_build::decode_rollups;
use pulsestream_storage::types::SegmentId;

/// Rows claimed for a directly decoded chunk: small, so each run is quick.
const DIRECT_ROWS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let kind =
                [ColumnKind::Int, ColumnKind::Float, ColumnKind::Str][usize::from(mode / 4) % 3];
            let ts: Vec<i64> = (0..DIRECT_ROWS as i64).collect();
            for enc in 0..10u8 {
                if let Ok(col) = decode_column(kind, enc, rest, DIRECT_ROWS, Some(&ts)) {
                    assert_eq!(col.len(), DIRECT_ROWS);
                }
            }
        }
        1 => {
            let _ = decode_rollups(rest);
        }
        _ => open_and_read(rest),
    }
});

fn open_and_read(bytes: &[u8]) {
    let Ok(r) = SegmentReader::from_bytes(bytes.to_vec(), Path::new("fuzz.seg"), SegmentId(1))
    else {
        return;
    };
    let mut keys = r.column_keys();
    keys.push(ColumnKey::AttrStr("never-written".into()));
    let _ = r.describe();
    let _ = r.attribute_keys();
    let _ = r.layout();
    for key in &keys {
        let _ = r.column_stats(None, key);
        let _ = r.distinct_strings(key);
    }
    for b in 0..r.block_count() {
        let _ = r.block_time_range(b);
        for key in &keys {
            let _ = r.column_stats(Some(b), key);
        }
        if let Ok(set) = r.read(b, &keys) {
            assert_eq!(set.rows, r.block_rows(b));
            assert!(set.columns.values().all(|c| c.len() == set.rows));
        }
    }
    let _ = r.rollups();
}
