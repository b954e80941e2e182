//! Tunables of the store. Every limit is named here with why it has its value.

use std::path::PathBuf;
use std::time::Duration;

/// How the store is opened. `StoreConfig::new(dir)` gives the defaults.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Root data directory (holds `wal/`, `tenants/`, `catalog.redb`).
    pub dir: PathBuf,
    /// Width of a time partition. An hour keeps partitions few (24 a day per
    /// tenant) while retention can still drop data with hour precision.
    pub partition_micros: i64,
    /// Seal a tenant's active segment at this many rows: about 1 M rows gives
    /// segments of tens of MB on disk, big enough to compress well.
    pub seal_rows: usize,
    /// ...or at this many bytes of active memory for the tenant, and never
    /// past a quarter of `memory_budget`: the rows being sealed and the rows
    /// arriving meanwhile then stay well within the budget.
    pub seal_bytes: usize,
    /// ...or when its oldest row is this old, so the WAL stays short and a
    /// crash replays little.
    pub seal_age: Duration,
    /// All tenants' unsealed rows together (being filled or being written
    /// out, with their summaries and per-chunk overhead) may hold this
    /// much: past three quarters of it the largest tenants are sealed,
    /// past it appends wait (`max_append_wait`). Beside it, an eighth of it
    /// caches decoded rollups of sealed segments (`store::ROLLUP_CACHE_DIVISOR`)
    /// and an eighth bounds a compaction merge.
    pub memory_budget: usize,
    /// Rows per column block in sealed segments: the unit of reading,
    /// checksumming and pruning.
    pub block_rows: usize,
    /// zstd level for column blocks of compacted segments (3 is the usual
    /// balance).
    pub zstd_level: i32,
    /// zstd level for column blocks of freshly sealed segments. Sealing is
    /// on the ingest path and, with many tenants, writes many small
    /// segments that compaction rewrites later at `zstd_level`; level 1
    /// writes them about 30 % faster for 0.3 % more bytes (FORMAT.md).
    pub seal_zstd_level: i32,
    /// Start a new WAL file after this many bytes.
    pub wal_file_bytes: u64,
    /// Past this many WAL bytes the tenants pinning the oldest file are
    /// sealed so it can go: recovery after a crash replays at most about
    /// this much, whatever the tenant mix. 512 MiB replays in a few
    /// seconds.
    pub max_wal_bytes: u64,
    /// How long an append waits for memory when unsealed data is past the
    /// budget, before it answers `Overloaded` (nothing stored).
    /// Well under a request timeout, long enough for a seal or two.
    pub max_append_wait: Duration,
    /// Compaction merges a partition's segments when it has at least this many.
    pub compaction_min_segments: usize,
    /// Turn background threads (sealing by age, compaction) on. Tests that
    /// drive these by hand turn it off.
    pub background: bool,
    /// The file operations under the WAL and the segment writer
    /// (`io::OsIo`; tests put `io::Faulty` here).
    pub io: std::sync::Arc<dyn crate::io::FileIo>,
}

impl StoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            partition_micros: 3_600_000_000,
            seal_rows: 1 << 20,
            seal_bytes: 256 << 20,
            seal_age: Duration::from_secs(600),
            memory_budget: 1 << 30,
            block_rows: 1 << 16,
            zstd_level: 3,
            seal_zstd_level: 1,
            wal_file_bytes: 64 << 20,
            max_wal_bytes: 512 << 20,
            max_append_wait: Duration::from_secs(10),
            compaction_min_segments: 4,
            background: true,
            io: crate::io::os(),
        }
    }
}
