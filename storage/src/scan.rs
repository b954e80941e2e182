//! The boundary between where rows live and the query engine.
//!
//! Sealed segments and active (in-memory) segments both present themselves
//! as a `ScanUnit`: a tenant's run of rows in blocks, with statistics to
//! prune by and, for sealed segments, rollups. The query engine sees nothing
//! else, so it cannot tell (or care) where rows come from.

use crate::column::{ColumnKey, ColumnSet, ColumnStats};
use crate::error::{Result, StorageError};
use crate::rollup::Rollups;
use crate::types::{Micros, TenantId};

pub trait ScanUnit: Send + Sync {
    /// Whose rows these are.
    fn tenant(&self) -> &TenantId;
    /// Human-readable name for errors and stats ("segment 42 (t001/2026112510)", "active t001").
    fn describe(&self) -> String;
    /// Smallest and largest event timestamp held (inclusive). Empty units are never handed out.
    fn time_range(&self) -> (Micros, Micros);
    /// Total rows.
    fn rows(&self) -> u64;
    /// Number of blocks; rows are read a block at a time.
    fn block_count(&self) -> usize;
    /// Rows in `block`.
    fn block_rows(&self, block: usize) -> usize;
    /// Time range of `block` (inclusive).
    fn block_time_range(&self, block: usize) -> (Micros, Micros);
    /// Statistics of `key` in `block` (`Some(b)`) or in the whole unit (`None`).
    /// `None` when unknown: the caller must then assume anything may match.
    fn column_stats(&self, block: Option<usize>, key: &ColumnKey) -> Option<ColumnStats>;
    /// Every distinct value of a string column in the unit, when the unit keeps
    /// that list (low-cardinality columns); `None` when it does not. Owned:
    /// a sealed segment keeps its lists packed (one buffer per column, not
    /// a `String` per value), which is most of what an open segment holds.
    fn distinct_strings(&self, key: &ColumnKey) -> Option<Vec<String>>;
    /// Every attribute column present anywhere in the unit
    /// (`AttrStr`/`AttrNum`/`AttrBool` keys), so a search can rebuild events.
    fn attribute_keys(&self) -> Vec<ColumnKey>;
    /// True when the rows of every block are sorted by (timestamp, seq).
    fn time_sorted(&self) -> bool;
    /// Decodes the requested columns of one block. Checksums are verified;
    /// damage is `Err(Corrupted)` naming the segment.
    fn read(&self, block: usize, keys: &[ColumnKey]) -> Result<ColumnSet>;
    /// Decodes the requested columns of just `rows` of one block: row `i`
    /// of the result is `rows[i]` of the block (repeats allowed). The
    /// default reads the whole block and gathers; units that can decode
    /// less override it. A row past the block's end is an error.
    fn read_rows(&self, block: usize, keys: &[ColumnKey], rows: &[u32]) -> Result<ColumnSet> {
        let full = self.read(block, keys)?;
        let mut columns = std::collections::HashMap::with_capacity(full.columns.len());
        for (key, col) in &full.columns {
            if col.len() != full.rows {
                return Err(StorageError::corrupted(
                    "column block",
                    self.describe(),
                    format!(
                        "block {block}: column {key:?} has {} values for {} rows",
                        col.len(),
                        full.rows
                    ),
                ));
            }
            columns.insert(key.clone(), std::sync::Arc::new(col.gather(rows)?));
        }
        Ok(ColumnSet {
            rows: rows.len(),
            columns,
        })
    }
    /// Pre-aggregates, for sealed segments.
    fn rollups(&self) -> Result<Option<std::sync::Arc<Rollups>>>;
    /// A pre-aggregate of one whole block, for units that keep one (frozen
    /// in-memory chunks): its `by_minute` table keyed by (service,
    /// event_type, status class) over the entire block, every row carrying
    /// the block's first minute. It answers queries without time buckets
    /// only; `by_route` is empty. `None` (the default) when not kept.
    fn block_summary(&self, _block: usize) -> Option<std::sync::Arc<Rollups>> {
        None
    }
}
