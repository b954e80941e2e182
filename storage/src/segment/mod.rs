//! Sealed segments: immutable, compressed column files, one per tenant and
//! time partition (the layout is in `format.rs` and `storage/FORMAT.md`).
//!
//! This module owns the segment file format: writing a segment at seal time
//! (`write_segment`), reading it for queries (`SegmentReader`, a
//! `scan::ScanUnit`) and checking it (`verify_segment`). It never changes a
//! file once written.

use std::path::Path;
use std::sync::Arc;

use crate::column::{ColumnKey, ColumnSet, ColumnStats};
use crate::error::{Result, StorageError};
use crate::rollup::Rollups;
use crate::scan::ScanUnit;
use crate::types::{Micros, PartitionStart, SegmentId, TenantId};

/// How a segment is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Rows per block (the unit of reading, checksumming and pruning).
    pub block_rows: usize,
    /// zstd level applied to every column chunk.
    pub zstd_level: i32,
}

/// What a written segment holds, for the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSummary {
    pub rows: u64,
    pub min_ts: Micros,
    pub max_ts: Micros,
    pub min_seq: u64,
    pub max_seq: u64,
    /// Size of the file on disk.
    pub bytes: u64,
}

/// Writes `<final_path>.tmp`, fsyncs, renames to `final_path`, fsyncs the directory.
pub fn write_segment(
    final_path: &Path,
    id: SegmentId,
    tenant: &TenantId,
    partition: PartitionStart,
    chunks: &[ColumnSet],
    opts: &WriteOptions,
) -> Result<SegmentSummary> {
    let _ = (final_path, id, tenant, partition, chunks, opts);
    Err(StorageError::invalid("segment", "writer not built yet"))
}

/// An open sealed segment.
pub struct SegmentReader {
    tenant: TenantId,
}

impl SegmentReader {
    pub fn open(path: &Path, id: SegmentId) -> Result<Arc<SegmentReader>> {
        let _ = (path, id);
        Err(StorageError::invalid("segment", "reader not built yet"))
    }
}

impl ScanUnit for SegmentReader {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn time_range(&self) -> (Micros, Micros) {
        (Micros(0), Micros(0))
    }
    fn rows(&self) -> u64 {
        0
    }
    fn block_count(&self) -> usize {
        0
    }
    fn block_rows(&self, _block: usize) -> usize {
        0
    }
    fn block_time_range(&self, _block: usize) -> (Micros, Micros) {
        (Micros(0), Micros(0))
    }
    fn column_stats(&self, _block: Option<usize>, _key: &ColumnKey) -> Option<ColumnStats> {
        None
    }
    fn distinct_strings(&self, _key: &ColumnKey) -> Option<&[String]> {
        None
    }
    fn attribute_keys(&self) -> Vec<ColumnKey> {
        Vec::new()
    }
    fn time_sorted(&self) -> bool {
        true
    }
    fn read(&self, _block: usize, _keys: &[ColumnKey]) -> Result<ColumnSet> {
        Err(StorageError::invalid("segment", "reader not built yet"))
    }
    fn rollups(&self) -> Result<Option<Arc<Rollups>>> {
        Ok(None)
    }
}

/// Reads and checks every checksum and structure of the segment at `path`.
pub fn verify_segment(path: &Path) -> Result<u64> {
    let _ = path;
    Err(StorageError::invalid("segment", "verify not built yet"))
}
