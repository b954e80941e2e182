//! Sealed segments: immutable, compressed column files, one per tenant and
//! time partition (the layout is in `format.rs` and `storage/FORMAT.md`).
//!
//! This module owns the segment file format: writing a segment at seal time
//! (`write_segment`), reading it for queries (`SegmentReader`, a
//! `scan::ScanUnit`) and checking it (`verify_segment`). It never changes a
//! file once written.

pub mod encoding;
pub mod format;
mod reader;
pub mod rollup_build;
pub mod rollup_cache;
mod writer;

use crate::types::Micros;

/// How a segment is written.
///
/// `write_segment(final_path, id, tenant, partition, chunks, opts)` writes
/// `<final_path>.tmp`, fsyncs it, renames it to `final_path` and fsyncs the
/// directory. `chunks` each hold every core column (`ColumnKey::CORE`) and
/// any attribute columns (a chunk may lack an attribute another has: its
/// rows read as null). Rows may come in any order; the segment is sorted by
/// (timestamp, seq).
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Rows per block (the unit of reading, checksumming and pruning).
    pub block_rows: usize,
    /// zstd level applied to every column chunk.
    pub zstd_level: i32,
    /// Threads encoding columns at once (at least one). The file is the
    /// same whatever the number.
    pub threads: usize,
    /// The tenant's sealed-through LSN recorded with this segment, kept in
    /// the footer for `check --rebuild-catalog` (`format::Provenance`).
    pub sealed_through: u64,
    /// Compaction level, kept in the footer likewise.
    pub level: u32,
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

pub use reader::{SegmentFacts, SegmentLayout, SegmentReader, verify_segment};
pub use writer::{tmp_path, write_segment, write_segment_dyn};

impl WriteOptions {
    /// The options a store configuration asks for.
    pub fn from_config(c: &crate::config::StoreConfig) -> WriteOptions {
        WriteOptions {
            block_rows: c.block_rows,
            zstd_level: c.zstd_level,
            threads: default_threads(),
            sealed_through: 0,
            level: 0,
        }
    }
}

/// Encoding threads for a segment: the machine's cores, up to four (a
/// segment has about twenty columns; more threads mostly contend).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

#[cfg(test)]
mod tests;
