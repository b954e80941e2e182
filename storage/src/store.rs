//! The store: the public face of the engine. (API fixed; bodies being built.)

use std::sync::Arc;

use crate::config::StoreConfig;
use crate::error::Result;
use crate::event::Event;
use crate::query::{Query, QueryResult, SearchRequest, SearchResult};
use crate::types::{Lsn, Micros, TenantId};

/// A durable acknowledgement of one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// WAL record that holds the batch.
    pub lsn: Lsn,
    /// Sequence number of the batch's first event; event `i` got `first_seq + i`,
    /// so its id is `EventId { timestamp: events[i].timestamp, seq: first_seq + i }`.
    pub first_seq: u64,
    pub count: u32,
}

/// Per-tenant figures for `/metrics` and the health answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantStats {
    pub tenant: Option<TenantId>,
    pub sealed_segments: u64,
    pub sealed_rows: u64,
    pub sealed_bytes: u64,
    pub active_rows: u64,
    pub active_bytes: u64,
    pub partitions: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    pub tenants: Vec<TenantStats>,
    pub wal_bytes: u64,
    /// Last durable LSN.
    pub durable_lsn: Lsn,
    /// Histogram-ready fsync durations, seconds, since open (bounded ring).
    pub fsyncs: u64,
    pub fsync_seconds_total: f64,
    /// Set while the disk is full (writes answer `DiskFull`).
    pub disk_full: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    pub files_checked: u64,
    pub blocks_checked: u64,
    /// One line per damaged thing, naming it.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`, replaying the WAL.
    /// Fails with `Locked` if another process has it open.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>> {
        let _ = config;
        unimplemented!()
    }
    /// Appends a batch for `tenant`. Returns once the batch is fsynced (group
    /// commit). Thread-safe; many callers append at once.
    pub fn append(&self, tenant: &TenantId, events: &[Event]) -> Result<Ack> {
        let _ = (tenant, events);
        unimplemented!()
    }
    pub fn query(&self, q: &Query) -> Result<QueryResult> {
        let _ = q;
        unimplemented!()
    }
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResult> {
        let _ = req;
        unimplemented!()
    }
    /// Drops whole partitions of `tenant` that end at or before `cutoff`. Returns partitions dropped.
    pub fn drop_before(&self, tenant: &TenantId, cutoff: Micros) -> Result<u64> {
        let _ = (tenant, cutoff);
        unimplemented!()
    }
    /// Removes every event of `tenant` (tenant deletion).
    pub fn drop_tenant(&self, tenant: &TenantId) -> Result<()> {
        let _ = tenant;
        unimplemented!()
    }
    /// Seals every active segment now (tests, benchmarks, shutdown).
    pub fn seal_all(&self) -> Result<()> {
        unimplemented!()
    }
    /// Runs one compaction pass over every partition that needs it.
    pub fn compact(&self) -> Result<u64> {
        unimplemented!()
    }
    pub fn stats(&self) -> StoreStats {
        unimplemented!()
    }
    /// Seals what is active, stops background threads, releases the lock.
    pub fn close(&self) -> Result<()> {
        unimplemented!()
    }
}

/// Checks every checksum of the store in `dir` without opening it for writing.
pub fn verify(dir: &std::path::Path) -> Result<VerifyReport> {
    let _ = dir;
    unimplemented!()
}
