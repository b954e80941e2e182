//! A sealed segment as queries see it once damage is known: blocks whose
//! chunks failed their checks are left out (the answer says it is partial),
//! a rollup section that failed is not used (its answers come from the
//! column blocks, complete). The first failure of a read is recorded in the
//! store's `DamageLog` and returned; the store then runs the read again,
//! and this time the damaged part is skipped.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::column::{Column, ColumnKey, ColumnSet, ColumnStats};
use crate::damage::DamageLog;
use crate::error::{Result, StorageError};
use crate::rollup::Rollups;
use crate::scan::ScanUnit;
use crate::segment::SegmentReader;
use crate::types::{Micros, TenantId};

pub struct Guarded {
    inner: Arc<SegmentReader>,
    damage: Arc<DamageLog>,
    /// Damaged blocks known when this view was made.
    hidden: BTreeSet<usize>,
    rollups_bad: bool,
}

impl Guarded {
    pub fn new(inner: Arc<SegmentReader>, damage: Arc<DamageLog>) -> Guarded {
        let id = inner.id().0;
        Guarded {
            hidden: damage.blocks_of(id),
            rollups_bad: damage.rollups_damaged(id),
            inner,
            damage,
        }
    }

    /// Blocks left out of this view.
    pub fn hidden(&self) -> &BTreeSet<usize> {
        &self.hidden
    }

    fn note(&self, block: usize, e: StorageError) -> StorageError {
        if matches!(
            e,
            StorageError::Corrupted { .. } | StorageError::Decode { .. }
        ) {
            let detail = e.to_string();
            self.damage
                .add_block(self.inner.id().0, self.inner.path(), block, &detail);
        }
        e
    }

    fn empty(keys: &[ColumnKey], rows: usize) -> ColumnSet {
        ColumnSet {
            rows,
            columns: keys
                .iter()
                .map(|k| (k.clone(), Arc::new(Column::nulls(k.kind(), rows))))
                .collect(),
        }
    }
}

impl ScanUnit for Guarded {
    fn tenant(&self) -> &TenantId {
        self.inner.tenant()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn time_range(&self) -> (Micros, Micros) {
        self.inner.time_range()
    }
    fn rows(&self) -> u64 {
        let hidden: u64 = self
            .hidden
            .iter()
            .map(|&b| self.inner.block_rows(b) as u64)
            .sum();
        self.inner.rows().saturating_sub(hidden)
    }
    fn block_count(&self) -> usize {
        self.inner.block_count()
    }
    fn block_rows(&self, block: usize) -> usize {
        if self.hidden.contains(&block) {
            0
        } else {
            self.inner.block_rows(block)
        }
    }
    fn block_time_range(&self, block: usize) -> (Micros, Micros) {
        if self.hidden.contains(&block) {
            // An empty range: every time filter prunes the block.
            (Micros::MAX, Micros::MIN)
        } else {
            self.inner.block_time_range(block)
        }
    }
    fn column_stats(&self, block: Option<usize>, key: &ColumnKey) -> Option<ColumnStats> {
        if self.hidden.is_empty() {
            return self.inner.column_stats(block, key);
        }
        match block {
            Some(b) if self.hidden.contains(&b) => Some(ColumnStats::AllNull { nulls: 0 }),
            Some(b) => self.inner.column_stats(Some(b), key),
            // The whole unit's figures count the hidden rows: unknown.
            None => None,
        }
    }
    fn distinct_strings(&self, key: &ColumnKey) -> Option<Vec<String>> {
        self.inner.distinct_strings(key)
    }
    fn attribute_keys(&self) -> Vec<ColumnKey> {
        self.inner.attribute_keys()
    }
    fn time_sorted(&self) -> bool {
        self.inner.time_sorted()
    }
    fn read(&self, block: usize, keys: &[ColumnKey]) -> Result<ColumnSet> {
        if self.hidden.contains(&block) {
            return Ok(Self::empty(keys, 0));
        }
        self.inner
            .read(block, keys)
            .map_err(|e| self.note(block, e))
    }
    fn read_rows(&self, block: usize, keys: &[ColumnKey], rows: &[u32]) -> Result<ColumnSet> {
        if self.hidden.contains(&block) {
            if rows.is_empty() {
                return Ok(Self::empty(keys, 0));
            }
            return Err(StorageError::invalid(
                "row",
                format!("block {block} is damaged and holds no readable rows"),
            ));
        }
        self.inner
            .read_rows(block, keys, rows)
            .map_err(|e| self.note(block, e))
    }
    fn rollups(&self) -> Result<Option<Arc<Rollups>>> {
        if self.rollups_bad || !self.hidden.is_empty() {
            return Ok(None);
        }
        match self.inner.rollups() {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!(segment = %self.inner.describe(), error = %e,
                    "rollup section damaged; answering from the column blocks");
                self.damage
                    .add_rollups(self.inner.id().0, self.inner.path(), &e.to_string());
                Ok(None)
            }
        }
    }
}
