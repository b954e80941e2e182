//! PulseStream's storage engine: an append-only, time-partitioned event
//! store with per-tenant column segments.
//!
//! Data path: `Store::append` encodes a batch into the write-ahead log
//! (group commit: one fdatasync for every append waiting), then adds the rows
//! to the tenant's in-memory active segment, where queries see them at once.
//! Active segments are sealed into immutable, compressed column segment files
//! per tenant and time partition, recorded in the catalog, and the WAL is
//! trimmed. Queries see sealed segments and active segments alike through
//! `scan::ScanUnit` and read only the blocks and columns they need.
//!
//! Module map: `types`, `event` (the model); `codec` (varints, bounded
//! reader); `column` (decoded columns); `sketch`, `rollup` (pre-aggregates);
//! `scan` (the query engine's view of data); `query` (model and engine);
//! `error`; `config`.

#![forbid(unsafe_code)]

pub mod active;
pub mod catalog;
pub mod codec;
pub mod column;
pub mod compaction;
pub mod config;
pub mod damage;
pub mod error;
pub mod event;
pub mod guarded;
pub mod io;
pub mod paths;
pub mod pressure;
pub mod query;
pub mod rebuild;
pub mod rollup;
pub mod scan;
pub mod segment;
pub mod sketch;
pub mod store;
pub mod types;
pub mod wal;

pub use config::StoreConfig;
pub use damage::{DamageItem, DamageKind};
pub use error::{Result, StorageError};
pub use event::{AttrValue, Event, Method, Severity};
pub use store::{Ack, Checked, DataWarning, Store, StoreStats, TenantStats, VerifyReport};
pub use types::{EventId, Lsn, Micros, SegmentId, TenantId};
