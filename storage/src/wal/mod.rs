//! The write-ahead log: every appended batch is made durable here before the
//! append is acknowledged, and replayed from here after a restart.
//!
//! Files: `<dir>/wal/<first-lsn:020>.wal`, each
//! ```text
//! header = magic "PSWAL\0\r\n" (8) | version:u32 LE | reserved:u32 (0)
//! then records (layout in `record.rs`), LSNs strictly increasing
//! ```
//! A new file is started when the current one reaches `wal_file_bytes`, and
//! after every open (replayed files are never appended to again).
//!
//! Damage (see `scan.rs`, `replay.rs`): a record whose checksum fails is
//! skipped and reading goes on with the next intact record (found by
//! resynchronising on a valid frame when the length is damaged); only a tail
//! with no intact record after it is cut. A damaged file is copied to
//! `<dir>/quarantine/` first. LSNs and sequence numbers readable in a damaged
//! record's header still count as used.
//!
//! Invariants (together with the catalog, see `catalog.rs`):
//! - An append is acknowledged only after `fdatasync` returned for a write
//!   that covered its whole record (group commit: one sync serves every
//!   record queued while the previous sync ran).
//! - A failed write is cut off again (`set_len` back to the last synced
//!   length, or a fresh file if that fails), so a later good record is never
//!   stranded behind garbage that replay would stop at.
//! - Records of one tenant are applied to its active segment in LSN order,
//!   so "everything of tenant T up to LSN n" is a prefix and the catalog's
//!   per-tenant sealed-through LSN says exactly what replay must skip.
//! - A file is deleted only when, for every tenant with records in it, the
//!   catalog's sealed-through LSN covers the tenant's last record there.

pub mod record;
pub mod replay;
pub mod scan;
pub mod writer;

pub use record::{WalRecord, decode_record, encode_events, encode_record};
pub use replay::{
    ReplayOutcome, WalCheck, WalDamage, damaged_records, quarantined_files, replay, verify_wal,
};
pub use writer::{Ticket, WalFile, WalWriter};

/// First bytes of every WAL file.
pub const WAL_MAGIC: [u8; 8] = *b"PSWAL\0\r\n";
/// The only format version written and read.
pub const WAL_VERSION: u32 = 1;
/// Magic + version + reserved.
pub const WAL_HEADER_BYTES: usize = 16;

pub fn file_header() -> [u8; WAL_HEADER_BYTES] {
    let mut h = [0u8; WAL_HEADER_BYTES];
    h[..8].copy_from_slice(&WAL_MAGIC);
    h[8..12].copy_from_slice(&WAL_VERSION.to_le_bytes());
    h
}
