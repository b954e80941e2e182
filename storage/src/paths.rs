//! Every file and directory name of a store, in one place.
//!
//! Layout of a data directory:
//! ```text
//! <dir>/LOCK                                   flock'ed while a Store has the dir open
//! <dir>/catalog.redb                           the catalog (source of truth for segments)
//! <dir>/wal/<first-lsn:020>.wal                write-ahead log files
//! <dir>/tenants/<tenant>/<yyyymmddhh>/<id:020>.seg   sealed segments
//! <dir>/quarantine/<name>                     copies of damaged files, kept for review
//! <any>.tmp                                    a file being written; removed on open
//! ```
//! Nothing else in the crate builds a path by hand, so renaming a file is a
//! one-line change here.

use std::path::{Path, PathBuf};

use crate::types::{Micros, PartitionStart, SegmentId, TenantId};

pub const LOCK_FILE: &str = "LOCK";
pub const CATALOG_FILE: &str = "catalog.redb";
pub const WAL_DIR: &str = "wal";
pub const TENANTS_DIR: &str = "tenants";
pub const QUARANTINE_DIR: &str = "quarantine";
pub const WAL_EXT: &str = "wal";
pub const SEGMENT_EXT: &str = "seg";
pub const TMP_EXT: &str = "tmp";

pub fn lock_file(dir: &Path) -> PathBuf {
    dir.join(LOCK_FILE)
}

pub fn catalog_file(dir: &Path) -> PathBuf {
    dir.join(CATALOG_FILE)
}

pub fn wal_dir(dir: &Path) -> PathBuf {
    dir.join(WAL_DIR)
}

/// Copies of damaged files, kept for review; nothing reads them back.
pub fn quarantine_dir(dir: &Path) -> PathBuf {
    dir.join(QUARANTINE_DIR)
}

pub fn tenants_dir(dir: &Path) -> PathBuf {
    dir.join(TENANTS_DIR)
}

pub fn tenant_dir(dir: &Path, tenant: &TenantId) -> PathBuf {
    tenants_dir(dir).join(tenant.as_str())
}

/// Zero-padded so that a directory listing sorts files by LSN.
pub fn wal_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.{WAL_EXT}")
}

/// The first LSN a WAL file name promises, or `None` for a foreign file.
pub fn parse_wal_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(WAL_EXT)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub fn segment_file_name(id: SegmentId) -> String {
    format!("{:020}.{SEGMENT_EXT}", id.0)
}

/// A segment's path relative to the data directory: what the catalog stores.
pub fn segment_rel_path(tenant: &TenantId, partition: PartitionStart, id: SegmentId) -> PathBuf {
    Path::new(TENANTS_DIR)
        .join(tenant.as_str())
        .join(partition_dir_name(partition))
        .join(segment_file_name(id))
}

/// `yyyymmddhh` (UTC) of the partition's start; partitions that do not start
/// on the hour (sub-hour partition widths) get `mmss` appended so names stay
/// unique.
pub fn partition_dir_name(p: PartitionStart) -> String {
    let secs = p.0.0.div_euclid(Micros::SECOND);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if mm == 0 && ss == 0 && p.0.0.rem_euclid(Micros::SECOND) == 0 {
        format!("{y:04}{m:02}{d:02}{hh:02}")
    } else {
        format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}")
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// True for names of files being written (`*.tmp`), which open removes.
pub fn is_tmp(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == TMP_EXT)
}

pub fn is_segment(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == SEGMENT_EXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_are_utc_hours() {
        // 2026-11-25T10:00:00Z
        let p = PartitionStart(Micros(1_795_600_800 * Micros::SECOND));
        assert_eq!(partition_dir_name(p), "2026112510");
        assert_eq!(partition_dir_name(PartitionStart(Micros(0))), "1970010100");
        let half = PartitionStart(Micros(30 * Micros::MINUTE));
        assert_eq!(partition_dir_name(half), "197001010030 00".replace(' ', ""));
        assert_eq!(
            partition_dir_name(PartitionStart(Micros(-Micros::HOUR))),
            "1969123123"
        );
    }

    #[test]
    fn wal_names_round_trip_and_sort() {
        assert_eq!(parse_wal_file_name(&wal_file_name(42)), Some(42));
        assert!(wal_file_name(9) < wal_file_name(10));
        assert_eq!(parse_wal_file_name("42.wal"), None);
        assert_eq!(parse_wal_file_name("x.seg"), None);
    }
}
