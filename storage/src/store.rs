//! The store: the public face of the engine. It owns the data directory
//! (locked while open), the WAL writer, every tenant's active segment, the
//! open sealed segments and the catalog, and keeps them consistent:
//!
//! - `append`: WAL (group commit) → the tenant's active segment, in LSN
//!   order per tenant (`TenantSlot::applied_through` + condvar), so that
//!   "sealed through LSN n" is always a prefix of the tenant's records.
//! - seal: freeze a tenant's active rows (they stay visible as "sealing"
//!   units), write one segment per partition, record segments + sealed-through
//!   in one catalog transaction, swap the units for segment readers, trim
//!   the WAL.
//! - open: lock, clean leftovers (catalog is the truth), open segments,
//!   replay the WAL records not sealed.
//!
//! Lock order (never take an earlier one while holding a later one):
//! `maintenance` → `TenantSlot::seal_lock` → `view` → `tenants` map →
//! `TenantSlot::state`. The WAL's own locks are leaves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::active::{ActiveTenant, ActiveUnit, Frozen};
use crate::catalog::{Catalog, Change, SegmentMeta, TenantMeta};
use crate::column::ColumnSet;
use crate::config::StoreConfig;
use crate::damage::{DamageItem, DamageKind, DamageLog};
use crate::error::{Result, StorageError};
use crate::event::Event;
use crate::guarded::Guarded;
use crate::paths;
use crate::query::control::QueryControl;
use crate::query::{Query, QueryResult, SearchRequest, SearchResult, TimeRange};
use crate::scan::ScanUnit;
use crate::segment::{self, SegmentReader, WriteOptions};
use crate::types::{Lsn, Micros, SegmentId, TenantId};
use crate::wal::{self, WalWriter};

/// Largest |timestamp| accepted: 9999-12-31, well inside what partition
/// arithmetic can handle without overflow. The front door applies the
/// contract's much tighter window; this only keeps the engine's math sound.
pub const MAX_ABS_TIMESTAMP: i64 = 253_402_300_800 * Micros::SECOND;

/// Unsealed memory (filling and being written) past `memory_budget` times
/// `SEAL_START_NUM / SEAL_START_DEN` makes the background thread seal the
/// largest tenants; past the budget itself appends wait before they write
/// (`pressure.rs`). The quarter between is room for the rows that arrive
/// while a seal runs, so appends rarely wait and the budget is a bound.
pub const SEAL_START_NUM: usize = 3;
pub const SEAL_START_DEN: usize = 4;

/// A tenant's own rows are sealed at `memory_budget` divided by this (or
/// `seal_bytes`, whichever is smaller): a quarter, so one tenant's rows
/// being sealed and those arriving meanwhile stay under where sealing of
/// the largest starts.
pub const TENANT_SEAL_DIVISOR: usize = 4;

/// Decoded rollups of sealed segments are cached within `memory_budget`
/// divided by this (`segment::rollup_cache`), beside the budget: 32 MiB at
/// the default 256 MiB budget (the rollups of some 110 segments of the
/// many-tenant backfill, ~280 KB each decoded). With a merge's eighth
/// (`compaction::max_compaction_rows`) that keeps what the engine charges
/// within 1.25 times the budget; segment footers and indexes of open
/// readers, seal writers' buffers and zstd contexts are not charged (with
/// 50 tenants' day of backfill, server RSS is about 2.4 times the budget).
pub const ROLLUP_CACHE_DIVISOR: usize = 8;

/// Partitions of one seal written at once. A small segment's cost is
/// mostly its two fsyncs (file, then directory after the rename), and
/// concurrent fsyncs overlap: on the development VM a segment file took
/// 8.3 ms one at a time and 0.6 ms per file with 8 at once. A seal under
/// a day's backfill writes 16-24 partitions. Each writer encodes on one
/// thread then (a lone partition gets `segment::default_threads`).
pub const SEAL_WRITERS: usize = 8;

/// Most times one read is run again after meeting damage it had not seen:
/// each run leaves out at least one more damaged block, so a read that
/// meets more than this many fails (the next read goes further, since what
/// was found stays known).
pub const MAX_DAMAGE_RETRIES: usize = 32;

/// Most warnings listed in one answer; the rest are summed up in one more.
pub const MAX_WARNINGS: usize = 20;

/// Data a read had to leave out (contract §11: `damaged_data`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataWarning {
    pub message: String,
    /// The damaged segment file, relative to the data directory.
    pub segment: Option<String>,
    /// Time range of the events left out, when known.
    pub from: Option<Micros>,
    pub to: Option<Micros>,
}

/// An answer and what it had to leave out (`partial` when not empty).
#[derive(Debug, Clone)]
pub struct Checked<T> {
    pub value: T,
    pub warnings: Vec<DataWarning>,
}

impl<T> Checked<T> {
    pub fn is_partial(&self) -> bool {
        !self.warnings.is_empty()
    }
}

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
    /// Fsyncs per latency bucket (`wal::writer::FSYNC_BUCKETS`, then
    /// +Inf), not cumulative; empty when unknown.
    pub fsync_buckets: Vec<u64>,
    /// Set while the disk is full (writes answer `DiskFull`).
    pub disk_full: bool,
    /// Damaged items met since open, per kind (every kind, zeros included).
    pub damaged_items: Vec<(DamageKind, u64)>,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    pub files_checked: u64,
    pub blocks_checked: u64,
    pub wal_records_checked: u64,
    /// One line per damaged thing, naming it.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One tenant's live state.
pub(crate) struct TenantSlot {
    pub(crate) tenant: TenantId,
    pub(crate) state: Mutex<TenantState>,
    /// Signalled whenever `applied_through` advances.
    pub(crate) applied: Condvar,
    /// One seal (or drop) of this tenant at a time, so sealed-through only
    /// moves forward and the "sealing" units are unambiguous.
    pub(crate) seal_lock: Mutex<()>,
}

pub(crate) struct TenantState {
    /// Every record of the tenant up to this LSN is in `active` (or sealed).
    pub(crate) applied_through: u64,
    pub(crate) active: ActiveTenant,
}

/// An open sealed segment.
#[derive(Clone)]
pub(crate) struct Sealed {
    pub(crate) meta: SegmentMeta,
    pub(crate) reader: Arc<SegmentReader>,
}

/// What queries can see besides active rows. Changed only under its write
/// lock, so a query never sees rows twice or not at all while they move
/// from active to sealing to sealed.
#[derive(Default)]
pub(crate) struct View {
    pub(crate) sealed: HashMap<TenantId, BTreeMap<u64, Sealed>>,
    pub(crate) sealing: HashMap<TenantId, Vec<Arc<ActiveUnit>>>,
}

pub struct Store {
    pub(crate) config: StoreConfig,
    pub(crate) dir: PathBuf,
    /// The flock'ed LOCK file; dropped by `close`.
    lock: Mutex<Option<File>>,
    /// `None` after `close` (so the same process can reopen the directory).
    pub(crate) catalog: Mutex<Option<Catalog>>,
    pub(crate) wal: WalWriter,
    tenants: RwLock<HashMap<TenantId, Arc<TenantSlot>>>,
    pub(crate) view: RwLock<View>,
    /// In-memory copy of the catalog's per-tenant sealed-through LSNs.
    sealed_through: Mutex<HashMap<TenantId, u64>>,
    pub(crate) next_segment_id: AtomicU64,
    /// Bytes held by all active segments (for `memory_budget`).
    pub(crate) active_bytes: AtomicUsize,
    /// Bytes of rows frozen for sealing, still in memory until written.
    pub(crate) sealing_bytes: AtomicUsize,
    /// Appenders waiting for memory wait here (`pressure.rs`).
    pub(crate) room: Mutex<()>,
    pub(crate) room_cv: Condvar,
    /// Serialises compaction, retention and tenant drops.
    pub(crate) maintenance: Mutex<()>,
    closed: AtomicBool,
    pub(crate) background: Mutex<Option<crate::compaction::Background>>,
    /// Damage met since open (see `damage.rs`).
    pub(crate) damage: Arc<DamageLog>,
    /// Segments the catalog lists that could not be opened: left out of
    /// reads (which say so), still dropped by retention and tenant drops.
    pub(crate) unopened: Mutex<Vec<SegmentMeta>>,
    /// WAL records skipped as damaged (at this replay, or found in the
    /// quarantine copies of earlier ones): their events are missing, so
    /// reads of their tenant (of every tenant, when the record's tenant
    /// cannot be told) answer `partial`.
    lost_records: Mutex<Vec<LostRecord>>,
}

/// A damaged WAL record whose events are missing from every answer.
#[derive(Debug, Clone)]
struct LostRecord {
    /// `None` when the damaged header names no tenant the store knows.
    tenant: Option<TenantId>,
    /// The WAL file (or its quarantine copy) and the record's offset.
    file: String,
    offset: u64,
}

fn overlaps(min: Micros, max: Micros, range: &TimeRange) -> bool {
    min < range.to && max >= range.from
}

impl Store {
    /// Opens (creating if needed) the store in `config.dir`, replaying the WAL.
    /// Fails with `Locked` if another process has it open.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>> {
        if config.partition_micros <= 0 {
            return Err(StorageError::invalid("partition_micros", "must be > 0"));
        }
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let lock = lock_dir(&dir)?;
        crate::segment::rollup_cache::global()
            .set_capacity(config.memory_budget / ROLLUP_CACHE_DIVISOR);
        let (catalog, state) = open_catalog(&dir)?;
        remove_leftovers(&dir, &state.segments)?;

        let damage = Arc::new(DamageLog::default());
        let mut unopened = Vec::new();
        let mut view = View::default();
        for meta in &state.segments {
            let Some(tenant) = meta.tenant_id() else {
                tracing::error!(
                    segment = meta.id,
                    "catalog names an invalid tenant; segment skipped"
                );
                continue;
            };
            match SegmentReader::open(&meta.path(&dir), meta.segment_id()) {
                Ok(reader) => {
                    view.sealed.entry(tenant).or_default().insert(
                        meta.id,
                        Sealed {
                            meta: meta.clone(),
                            reader,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(segment = meta.id, file = %meta.file, error = %e,
                        "cannot open segment; it is left out of queries (see `check`)");
                    damage.add(DamageKind::Segment, &meta.path(&dir), e.to_string());
                    unopened.push(meta.clone());
                }
            }
        }

        let sealed_through: HashMap<TenantId, u64> = state
            .tenants
            .iter()
            .map(|(t, m)| (t.clone(), m.sealed_through))
            .collect();
        let max_sealed = sealed_through.values().copied().max().unwrap_or(0);
        // The store exists before replay so that replay can seal when
        // memory passes the budget, as appends do. Its WAL writer starts
        // from the catalog's high-water marks and learns replay's below,
        // before anything can append.
        let wal = WalWriter::with_io(
            &dir,
            config.wal_file_bytes,
            state.next_lsn.max(max_sealed + 1),
            state.next_seq.max(1),
            Vec::new(),
            config.io.clone(),
        );
        let store = Arc::new(Store {
            dir: dir.clone(),
            lock: Mutex::new(Some(lock)),
            catalog: Mutex::new(Some(catalog)),
            wal,
            tenants: RwLock::new(HashMap::new()),
            view: RwLock::new(view),
            sealed_through: Mutex::new(sealed_through),
            next_segment_id: AtomicU64::new(state.next_segment_id),
            active_bytes: AtomicUsize::new(0),
            sealing_bytes: AtomicUsize::new(0),
            room: Mutex::new(()),
            room_cv: Condvar::new(),
            maintenance: Mutex::new(()),
            closed: AtomicBool::new(false),
            background: Mutex::new(None),
            damage,
            unopened: Mutex::new(unopened),
            lost_records: Mutex::new(Vec::new()),
            config,
        });
        let pm = store.config.partition_micros;
        let mut sealed_in_replay = 0u64;
        // Sealed records are only checksummed, not decoded.
        let sealed = |h: &wal::record::RecordHead| h.lsn.0 <= store.sealed_through_of(&h.tenant);
        let outcome = wal::replay(&dir, sealed, |rec| {
            if rec.lsn.0 <= store.sealed_through_of(&rec.tenant) {
                return Ok(());
            }
            if rec
                .events
                .iter()
                .any(|e| e.timestamp.0.abs() > MAX_ABS_TIMESTAMP)
            {
                tracing::error!(
                    lsn = rec.lsn.0,
                    "WAL record with an impossible timestamp skipped"
                );
                return Ok(());
            }
            let slot = store.slot(&rec.tenant);
            {
                let mut st = slot.state.lock();
                let added = st.active.insert(&rec.events, rec.first_seq, pm);
                store.active_bytes.fetch_add(added, Ordering::Relaxed);
                st.applied_through = rec.lsn.0;
            }
            if store.held_bytes() > store.seal_start() {
                // Records of a tenant arrive in LSN order, so what is
                // applied is a prefix and may be sealed like at run time.
                store.seal_over_budget();
                sealed_in_replay += 1;
            }
            Ok(())
        })?;
        for d in &outcome.damage {
            let copy = d
                .quarantined
                .as_ref()
                .map(|q| format!("; copy in {}", q.display()))
                .unwrap_or_default();
            store.damage.add(
                DamageKind::WalRecord,
                &d.path,
                format!("offset {} ({} bytes): {}{copy}", d.offset, d.len, d.detail),
            );
        }
        for d in &outcome.damage {
            store.record_lost(d.tenant.clone(), &d.path, d.offset);
        }
        for q in wal::quarantined_files(&dir)? {
            if !outcome
                .damage
                .iter()
                .any(|d| d.quarantined.as_ref() == Some(&q))
            {
                if !q.to_string_lossy().contains(".seg") {
                    // A copy kept from an earlier start: its damaged records'
                    // events are still missing.
                    match wal::damaged_records(&q) {
                        Ok(found) => {
                            for d in found {
                                store.record_lost(d.tenant, &q, d.offset as u64);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(path = %q.display(), error = %e, "cannot read a quarantined WAL file");
                            store.record_lost(None, &q, 0);
                        }
                    }
                }
                // Rebuilding the catalog quarantines segments; replay, WAL files.
                let kind = if q.to_string_lossy().contains(".seg") {
                    DamageKind::Segment
                } else {
                    DamageKind::WalRecord
                };
                store.damage.add(
                    kind,
                    &q,
                    "damaged file kept in quarantine for review (remove it once reviewed)",
                );
            }
        }
        let max_sealed = store
            .sealed_through_snapshot()
            .values()
            .copied()
            .max()
            .unwrap_or(0);
        let next_lsn = outcome
            .max_lsn
            .max(max_sealed)
            .max(state.next_lsn.saturating_sub(1))
            + 1;
        let next_seq = outcome.next_seq.max(state.next_seq).max(1);
        tracing::info!(
            records = outcome.applied,
            sealed_in_replay,
            next_lsn,
            next_seq,
            "WAL replayed"
        );
        store.wal.restart(next_lsn, next_seq, outcome.files);
        if !outcome.damage.is_empty() {
            // The numbers read from damaged headers may be cut away with a
            // torn tail: record them now so no restart can reissue them.
            store.commit(&store.marks())?;
        }
        store.trim_wal();
        if store.config.background {
            crate::compaction::start_background(&store);
        } else {
            store.seal_over_limits();
        }
        Ok(store)
    }

    /// Appends a batch for `tenant`. Returns once the batch is fsynced (group
    /// commit). Thread-safe; many callers append at once. An empty batch
    /// writes nothing and answers `count: 0`.
    pub fn append(&self, tenant: &TenantId, events: &[Event]) -> Result<Ack> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        if events.is_empty() {
            return Ok(Ack {
                lsn: Lsn(self.wal.durable_lsn()),
                first_seq: 0,
                count: 0,
            });
        }
        let count = u32::try_from(events.len())
            .map_err(|_| StorageError::invalid("batch", "more than 2^32 events"))?;
        if let Some(i) = events
            .iter()
            .position(|e| e.timestamp.0.abs() > MAX_ABS_TIMESTAMP)
        {
            return Err(StorageError::invalid(
                "timestamp",
                format!("event {i}: {} is outside years 0..9999", e_ts(&events[i])),
            ));
        }
        // Backpressure comes before the WAL write: past the hard limit the
        // append waits for room, then gives up with nothing stored.
        self.wait_for_room()?;
        let encoded = wal::encode_events(events);
        let slot = self.slot(tenant);
        let (ticket, durable) = self.wal.append(tenant, encoded)?;
        let need_seal = {
            let mut st = slot.state.lock();
            // Apply in LSN order per tenant (see the module doc).
            while st.applied_through < ticket.prev_lsn {
                slot.applied.wait(&mut st);
            }
            if durable.is_ok() {
                let added =
                    st.active
                        .insert(events, ticket.first_seq, self.config.partition_micros);
                self.active_bytes.fetch_add(added, Ordering::Relaxed);
            }
            st.applied_through = st.applied_through.max(ticket.lsn);
            slot.applied.notify_all();
            self.over_limits(&st.active)
        };
        durable?;
        if need_seal {
            self.request_seal(&slot);
        }
        if self.held_bytes() > self.seal_start() {
            self.request_budget_seal();
        }
        if self.wal_over_limit() {
            self.request_wal_seal();
        }
        Ok(Ack {
            lsn: Lsn(ticket.lsn),
            first_seq: ticket.first_seq,
            count,
        })
    }

    /// Runs a query over what is readable (see `query_checked`).
    pub fn query(&self, q: &Query) -> Result<QueryResult> {
        self.query_checked(q).map(|c| c.value)
    }

    /// Runs a search over what is readable (see `search_checked`).
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResult> {
        self.search_checked(req).map(|c| c.value)
    }

    /// Runs a query; damaged data it meets is left out and named in the
    /// warnings (a damaged rollup section is replaced by the rows: no
    /// warning, the answer is complete).
    pub fn query_checked(&self, q: &Query) -> Result<Checked<QueryResult>> {
        self.query_checked_controlled(q, &QueryControl::unlimited())
    }

    /// `query_checked` under a deadline, cancel flag and memory budget.
    pub fn query_checked_controlled(
        &self,
        q: &Query,
        control: &QueryControl,
    ) -> Result<Checked<QueryResult>> {
        self.around_damage(&q.tenants, q.range, |units| {
            crate::query::engine::execute_controlled(units, q, Default::default(), control)
        })
    }

    /// Runs a search; like `query_checked`.
    pub fn search_checked(&self, req: &SearchRequest) -> Result<Checked<SearchResult>> {
        self.search_checked_controlled(req, &QueryControl::unlimited())
    }

    /// `search_checked` under a deadline and cancel flag.
    pub fn search_checked_controlled(
        &self,
        req: &SearchRequest,
        control: &QueryControl,
    ) -> Result<Checked<SearchResult>> {
        self.around_damage(std::slice::from_ref(&req.tenant), req.range, |units| {
            crate::query::search::search_controlled(units, req, control)
        })
    }

    /// Runs `f` over the units of `tenants` in `range`; when it fails on
    /// damage it just recorded, runs it again without that damage (at most
    /// `MAX_DAMAGE_RETRIES` times), then lists what was left out.
    fn around_damage<T>(
        &self,
        tenants: &[TenantId],
        range: TimeRange,
        f: impl Fn(&[Arc<dyn ScanUnit>]) -> Result<T>,
    ) -> Result<Checked<T>> {
        let mut attempt = 0;
        loop {
            let generation = self.damage.generation();
            let units = self.units(tenants, range);
            match f(&units) {
                Ok(value) => {
                    return Ok(Checked {
                        value,
                        warnings: self.warnings(tenants, range),
                    });
                }
                Err(e @ (StorageError::Corrupted { .. } | StorageError::Decode { .. }))
                    if attempt < MAX_DAMAGE_RETRIES && self.damage.generation() != generation =>
                {
                    tracing::warn!(error = %e, "read met damaged data; answering without it");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Notes a damaged WAL record met at open. Its claimed tenant counts
    /// only when the store knows that tenant.
    fn record_lost(&self, tenant: Option<TenantId>, file: &Path, offset: u64) {
        let tenant = tenant.filter(|t| {
            self.tenants.read().contains_key(t) || self.sealed_through.lock().contains_key(t)
        });
        let file = file
            .strip_prefix(&self.dir)
            .unwrap_or(file)
            .display()
            .to_string();
        self.lost_records.lock().push(LostRecord {
            tenant,
            file,
            offset,
        });
    }

    /// What a read of `tenants` over `range` leaves out: damaged blocks of
    /// sealed segments, segments that could not be opened and damaged WAL
    /// records (whose time range cannot be told, so every range).
    pub fn warnings(&self, tenants: &[TenantId], range: TimeRange) -> Vec<DataWarning> {
        let mut out = Vec::new();
        for lost in self.lost_records.lock().iter() {
            let what = match &lost.tenant {
                Some(t) if tenants.contains(t) => "the events it held are missing",
                Some(_) => continue,
                None => "its tenant cannot be told, so events of this read may be missing",
            };
            out.push(DataWarning {
                message: format!(
                    "a damaged write-ahead log record ({}, offset {}) was skipped at start; {what}",
                    lost.file, lost.offset
                ),
                segment: None,
                from: None,
                to: None,
            });
        }
        {
            let view = self.view.read();
            for t in tenants {
                for s in view.sealed.get(t).into_iter().flat_map(|m| m.values()) {
                    if !overlaps(Micros(s.meta.min_ts), Micros(s.meta.max_ts), &range) {
                        continue;
                    }
                    for b in self.damage.blocks_of(s.meta.id) {
                        let (lo, hi) = s.reader.block_time_range(b);
                        if lo <= hi && !overlaps(lo, hi, &range) {
                            continue;
                        }
                        out.push(DataWarning {
                            message: format!(
                                "block {b} of segment {} is damaged; its {} events are left out",
                                s.meta.id,
                                s.reader.block_rows(b)
                            ),
                            segment: Some(s.meta.file.clone()),
                            from: (lo <= hi).then_some(lo),
                            to: (lo <= hi).then_some(hi),
                        });
                    }
                }
            }
        }
        for m in self.unopened.lock().iter() {
            if tenants.iter().any(|t| t.as_str() == m.tenant)
                && overlaps(Micros(m.min_ts), Micros(m.max_ts), &range)
            {
                out.push(DataWarning {
                    message: format!(
                        "segment {} cannot be opened; its {} events are left out",
                        m.id, m.rows
                    ),
                    segment: Some(m.file.clone()),
                    from: Some(Micros(m.min_ts)),
                    to: Some(Micros(m.max_ts)),
                });
            }
        }
        if out.len() > MAX_WARNINGS {
            let more = out.len() - MAX_WARNINGS;
            out.truncate(MAX_WARNINGS);
            out.push(DataWarning {
                message: format!("and {more} more damaged items"),
                segment: None,
                from: None,
                to: None,
            });
        }
        out
    }

    /// Every scan unit (sealed segments, rows being sealed, active rows) of
    /// `tenants` that may hold rows in `range`.
    pub fn units(&self, tenants: &[TenantId], range: TimeRange) -> Vec<Arc<dyn ScanUnit>> {
        let mut out: Vec<Arc<dyn ScanUnit>> = Vec::new();
        let view = self.view.read();
        let slots = self.tenants.read();
        for t in tenants {
            if let Some(segs) = view.sealed.get(t) {
                for s in segs.values() {
                    if overlaps(Micros(s.meta.min_ts), Micros(s.meta.max_ts), &range) {
                        out.push(Arc::new(Guarded::new(
                            s.reader.clone(),
                            self.damage.clone(),
                        )));
                    }
                }
            }
            if let Some(units) = view.sealing.get(t) {
                for u in units {
                    let (lo, hi) = u.time_range();
                    if overlaps(lo, hi, &range) {
                        out.push(u.clone());
                    }
                }
            }
            if let Some(slot) = slots.get(t) {
                let mut st = slot.state.lock();
                for u in st
                    .active
                    .snapshot(t, range.from, range.to, self.config.partition_micros)
                {
                    let (lo, hi) = u.time_range();
                    if overlaps(lo, hi, &range) {
                        out.push(u);
                    }
                }
            }
        }
        out
    }

    /// Drops whole partitions of `tenant` that end at or before `cutoff`. Returns partitions dropped.
    pub fn drop_before(&self, tenant: &TenantId, cutoff: Micros) -> Result<u64> {
        crate::compaction::drop_before(self, tenant, cutoff)
    }

    /// Removes every event of `tenant` (tenant deletion).
    pub fn drop_tenant(&self, tenant: &TenantId) -> Result<()> {
        crate::compaction::drop_tenant(self, tenant)
    }

    /// Seals every active segment now (tests, benchmarks, shutdown).
    pub fn seal_all(&self) -> Result<()> {
        let slots: Vec<Arc<TenantSlot>> = self.tenants.read().values().cloned().collect();
        let mut first_err = None;
        for slot in slots {
            if let Err(e) = self.seal_tenant(&slot) {
                tracing::warn!(tenant = %slot.tenant, error = %e, "seal failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runs one compaction pass over every partition that needs it.
    pub fn compact(&self) -> Result<u64> {
        crate::compaction::compact(self)
    }

    pub fn stats(&self) -> StoreStats {
        let mut per: BTreeMap<TenantId, (TenantStats, HashSet<i64>)> = BTreeMap::new();
        {
            let view = self.view.read();
            for (t, segs) in &view.sealed {
                let (ts, parts) = per.entry(t.clone()).or_default();
                for s in segs.values() {
                    ts.sealed_segments += 1;
                    ts.sealed_rows += s.meta.rows;
                    ts.sealed_bytes += s.meta.bytes;
                    parts.insert(s.meta.partition);
                }
            }
        }
        for (t, slot) in self.tenants.read().iter() {
            let st = slot.state.lock();
            if st.active.is_empty() {
                continue;
            }
            let (ts, parts) = per.entry(t.clone()).or_default();
            ts.active_rows += st.active.rows() as u64;
            ts.active_bytes += st.active.bytes() as u64;
            parts.extend(st.active.partition_keys());
        }
        let (fsyncs, fsync_seconds_total) = self.wal.fsyncs();
        StoreStats {
            tenants: per
                .into_iter()
                .map(|(t, (mut s, parts))| {
                    s.tenant = Some(t);
                    s.partitions = parts.len() as u64;
                    s
                })
                .collect(),
            wal_bytes: self.wal.wal_bytes(),
            durable_lsn: Lsn(self.wal.durable_lsn()),
            fsyncs,
            fsync_seconds_total,
            fsync_buckets: self.wal.fsync_buckets(),
            disk_full: self.wal.disk_full(),
            damaged_items: self.damage.counts(),
        }
    }

    /// Seals what is active, stops background threads, releases the lock.
    /// Appends afterwards answer `Closed`; reads of what was sealed still work.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.wal.close();
        self.notify_room();
        crate::compaction::stop_background(self);
        let sealed = self.seal_all();
        self.trim_wal();
        *self.catalog.lock() = None;
        *self.lock.lock() = None;
        sealed
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Damage met since open, for `/health`.
    pub fn damage(&self) -> Vec<DamageItem> {
        self.damage.items()
    }

    /// Damaged items met since open, per kind, for `/metrics`.
    pub fn damage_counts(&self) -> Vec<(DamageKind, u64)> {
        self.damage.counts()
    }

    // ---- internals -------------------------------------------------------

    pub(crate) fn slot(&self, tenant: &TenantId) -> Arc<TenantSlot> {
        if let Some(s) = self.tenants.read().get(tenant) {
            return s.clone();
        }
        // A tenant seen first since open has applied nothing in this
        // process, but everything up to its sealed-through LSN is settled;
        // starting there keeps sealed-through from ever moving backwards.
        let sealed = self.sealed_through_of(tenant);
        self.tenants
            .write()
            .entry(tenant.clone())
            .or_insert_with(|| {
                let slot = new_slot(tenant);
                slot.state.lock().applied_through = sealed;
                slot
            })
            .clone()
    }

    pub(crate) fn slots(&self) -> Vec<Arc<TenantSlot>> {
        self.tenants.read().values().cloned().collect()
    }

    /// A tenant crossed a size limit: seal it now (no background thread) or
    /// let the background thread do it (so the append is not delayed).
    fn request_seal(&self, slot: &Arc<TenantSlot>) {
        if !crate::compaction::request_seal(self, &slot.tenant)
            && let Err(e) = self.seal_tenant(slot)
        {
            tracing::warn!(tenant = %slot.tenant, error = %e, "seal failed");
        }
    }

    pub(crate) fn request_budget_seal(&self) {
        if !crate::compaction::request_budget(self) {
            self.seal_over_budget();
        }
    }

    /// The WAL passed `max_wal_bytes`: seal what pins its oldest file, in
    /// the background when there is a background thread.
    pub(crate) fn request_wal_seal(&self) {
        if !crate::compaction::request_wal(self) {
            self.seal_for_wal();
        }
    }

    pub(crate) fn has_background(&self) -> bool {
        self.background.lock().is_some()
    }

    pub(crate) fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Where sealing of the largest tenants starts (`SEAL_START_NUM`).
    pub(crate) fn seal_start(&self) -> usize {
        self.config.memory_budget / SEAL_START_DEN * SEAL_START_NUM
    }

    /// Seals the largest tenants until what is not yet being sealed is
    /// under `seal_start`. (Rows another thread is sealing are not this
    /// loop's to seal again: counting them, a second caller would seal
    /// every tenant down to nothing while the first seal ran.)
    pub(crate) fn seal_over_budget(&self) {
        while self.active_bytes.load(Ordering::Relaxed) > self.seal_start() {
            let largest = self
                .slots()
                .into_iter()
                .map(|s| {
                    let b = s.state.lock().active.bytes();
                    (b, s)
                })
                .max_by_key(|(b, _)| *b);
            match largest {
                Some((b, slot)) if b > 0 => {
                    if let Err(e) = self.seal_tenant(&slot) {
                        tracing::warn!(tenant = %slot.tenant, error = %e, "seal for memory budget failed");
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Whether a tenant's active rows are due for sealing by size: its
    /// rows, or its bytes past `StoreConfig::seal_bytes` or a quarter of
    /// the budget (`TENANT_SEAL_DIVISOR`).
    fn over_limits(&self, active: &ActiveTenant) -> bool {
        active.rows() >= self.config.seal_rows
            || active.bytes()
                >= self
                    .config
                    .seal_bytes
                    .min(self.config.memory_budget / TENANT_SEAL_DIVISOR)
    }

    /// Seals tenants over the row/byte limits, then enforces the budget.
    pub(crate) fn seal_over_limits(&self) {
        for slot in self.slots() {
            let over = {
                let st = slot.state.lock();
                self.over_limits(&st.active)
            };
            if over && let Err(e) = self.seal_tenant(&slot) {
                tracing::warn!(tenant = %slot.tenant, error = %e, "seal failed");
            }
        }
        self.seal_over_budget();
    }

    /// Seals tenants whose oldest active row is older than `seal_age`.
    pub(crate) fn seal_aged(&self) {
        for slot in self.slots() {
            let old = slot
                .state
                .lock()
                .active
                .since()
                .is_some_and(|t| t.elapsed() >= self.config.seal_age);
            if old && let Err(e) = self.seal_tenant(&slot) {
                tracing::warn!(tenant = %slot.tenant, error = %e, "seal by age failed");
            }
        }
    }

    /// Seals every active row of one tenant. Returns segments written.
    pub(crate) fn seal_tenant(&self, slot: &Arc<TenantSlot>) -> Result<u64> {
        let _one_seal = slot.seal_lock.lock();
        let tenant = &slot.tenant;
        let (frozen, through, bytes) = {
            let mut view = self.view.write();
            let mut st = slot.state.lock();
            if st.active.is_empty() {
                return Ok(0);
            }
            let bytes = st.active.bytes();
            let frozen = st.active.take_all();
            let units = frozen
                .iter()
                .filter_map(|(p, chunks)| {
                    ActiveUnit::new(tenant.clone(), *p, chunks.clone(), "sealing")
                })
                .map(Arc::new)
                .collect();
            view.sealing.insert(tenant.clone(), units);
            self.sealing_bytes.fetch_add(bytes, Ordering::Relaxed);
            self.active_bytes.fetch_sub(bytes, Ordering::Relaxed);
            let through = st.applied_through.max(self.sealed_through_of(tenant));
            (frozen, through, bytes)
        };
        let started = std::time::Instant::now();
        let res = self.write_and_record(tenant, &frozen, through);
        tracing::debug!(
            %tenant,
            rows = frozen
                .iter()
                .flat_map(|(_, c)| c.iter().map(|c| c.set.rows))
                .sum::<usize>(),
            active_bytes = bytes,
            partitions = frozen.len(),
            ms = started.elapsed().as_millis() as u64,
            ok = res.is_ok(),
            held_bytes = self.held_bytes(),
            rollup_cache_bytes = crate::segment::rollup_cache::global().held(),
            "sealed"
        );
        match res {
            Ok(sealed) => {
                let n = sealed.len() as u64;
                let mut view = self.view.write();
                view.sealing.remove(tenant);
                let segs = view.sealed.entry(tenant.clone()).or_default();
                for s in sealed {
                    segs.insert(s.meta.id, s);
                }
                drop(view);
                self.sealing_bytes.fetch_sub(bytes, Ordering::Relaxed);
                self.notify_room();
                self.set_sealed_through(tenant, through);
                self.trim_wal();
                Ok(n)
            }
            Err(e) => {
                let mut view = self.view.write();
                let mut st = slot.state.lock();
                view.sealing.remove(tenant);
                st.active.restore(frozen);
                self.active_bytes.fetch_add(bytes, Ordering::Relaxed);
                self.sealing_bytes.fetch_sub(bytes, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Writes one segment per partition and records them with the tenant's
    /// new sealed-through LSN in one catalog transaction.
    fn write_and_record(
        &self,
        tenant: &TenantId,
        frozen: &Frozen,
        through: u64,
    ) -> Result<Vec<Sealed>> {
        let work: Vec<(crate::types::PartitionStart, Vec<ColumnSet>, SegmentId)> = frozen
            .iter()
            .filter_map(|(p, chunks)| {
                let sets: Vec<ColumnSet> = chunks.iter().map(|c| c.set.clone()).collect();
                if sets.iter().all(|s| s.rows == 0) {
                    return None;
                }
                let id = SegmentId(self.next_segment_id.fetch_add(1, Ordering::Relaxed));
                Some((*p, sets, id))
            })
            .collect();
        let (mut done, failed) = self.write_segments(tenant, &work, through);
        let res = failed.map_or_else(|| Ok(()), Err).and_then(|()| {
            self.commit(&Change {
                add: done.iter().map(|s| s.meta.clone()).collect(),
                tenants: vec![(
                    tenant.clone(),
                    TenantMeta {
                        sealed_through: through,
                    },
                )],
                ..self.marks()
            })
        });
        match res {
            Ok(()) => Ok(done),
            Err(e) => {
                for s in done.drain(..) {
                    let _ = std::fs::remove_file(s.meta.path(&self.dir));
                }
                Err(e)
            }
        }
    }

    /// Writes one segment per entry of `work`, up to `SEAL_WRITERS` at once
    /// (each encoding on one thread then). Returns what was written, in
    /// `work`'s order, and the first error if any entry failed.
    fn write_segments(
        &self,
        tenant: &TenantId,
        work: &[(crate::types::PartitionStart, Vec<ColumnSet>, SegmentId)],
        through: u64,
    ) -> (Vec<Sealed>, Option<StorageError>) {
        let writers = SEAL_WRITERS.min(work.len());
        let threads = if writers > 1 {
            1
        } else {
            segment::default_threads()
        };
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, Result<Sealed>)>> = Mutex::new(Vec::new());
        let worker = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((p, sets, id)) = work.get(i) else {
                    return;
                };
                let r = self.write_segment_file(tenant, *p, *id, sets, 0, through, threads);
                let failed = r.is_err();
                results.lock().push((i, r));
                if failed {
                    // The others finish what they started; nothing new.
                    next.store(work.len(), Ordering::Relaxed);
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..writers {
                if let Err(e) = std::thread::Builder::new()
                    .name("pulsestream-seal".into())
                    .spawn_scoped(scope, worker)
                {
                    // Fewer writers only make the seal slower.
                    tracing::warn!(error = %e, "cannot start a segment writer thread");
                }
            }
            worker();
        });
        let mut results = results.into_inner();
        results.sort_by_key(|(i, _)| *i);
        let mut done = Vec::with_capacity(results.len());
        let mut first_err = None;
        for (_, r) in results {
            match r {
                Ok(s) => done.push(s),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        (done, first_err)
    }

    /// Writes (and opens) one segment file, encoding on `threads` threads;
    /// not yet in the catalog.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_segment_file(
        &self,
        tenant: &TenantId,
        partition: crate::types::PartitionStart,
        id: SegmentId,
        sets: &[ColumnSet],
        level: u32,
        sealed_through: u64,
        threads: usize,
    ) -> Result<Sealed> {
        let rel = paths::segment_rel_path(tenant, partition, id);
        let path = self.dir.join(&rel);
        if let Some(parent) = path.parent() {
            ensure_dir(parent)?;
        }
        let mut opts = WriteOptions::from_config(&self.config);
        opts.sealed_through = sealed_through;
        opts.level = level;
        if level == 0 {
            opts.zstd_level = self.config.seal_zstd_level;
        }
        opts.threads = threads.max(1);
        let summary = segment::write_segment_dyn(
            &path,
            id,
            tenant,
            partition,
            sets,
            &opts,
            self.config.io.clone(),
        )?;
        let reader = match SegmentReader::open(&path, id) {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        // Load a sealed segment's rollups now, on the sealing thread: the
        // first query over fresh segments would otherwise read and decode
        // them all. Not a merge's output: its inputs' rollups are cached
        // already, and with a bounded cache loading it would evict them.
        if level == 0
            && let Err(e) = reader.rollups()
        {
            tracing::warn!(segment = id.0, error = %e, "reading a new segment's rollups failed");
        }
        Ok(Sealed {
            meta: SegmentMeta {
                id: id.0,
                tenant: tenant.as_str().to_owned(),
                partition: partition.0.0,
                file: rel.to_string_lossy().into_owned(),
                rows: summary.rows,
                min_ts: summary.min_ts.0,
                max_ts: summary.max_ts.0,
                min_seq: summary.min_seq,
                max_seq: summary.max_seq,
                bytes: summary.bytes,
                level,
            },
            reader,
        })
    }

    /// The high-water marks every catalog change carries.
    pub(crate) fn marks(&self) -> Change {
        Change {
            next_segment_id: self.next_segment_id.load(Ordering::Relaxed),
            next_seq: self.wal.next_seq(),
            next_lsn: self.wal.next_lsn(),
            ..Change::default()
        }
    }

    /// Ids of every segment the catalog lists for `tenant`, including any
    /// that could not be opened (and so are not in the view).
    pub(crate) fn catalog_segments_of(&self, tenant: &TenantId) -> Result<Vec<u64>> {
        let guard = self.catalog.lock();
        let cat = guard.as_ref().ok_or(StorageError::Closed)?;
        Ok(cat
            .load()?
            .segments
            .iter()
            .filter(|s| s.tenant == tenant.as_str())
            .map(|s| s.id)
            .collect())
    }

    pub(crate) fn commit(&self, change: &Change) -> Result<()> {
        match self.catalog.lock().as_ref() {
            Some(c) => c.commit(change),
            None => Err(StorageError::Closed),
        }
    }

    /// Records a tenant's new sealed-through LSN (never lowering it).
    pub(crate) fn set_sealed_through(&self, tenant: &TenantId, lsn: u64) {
        let mut map = self.sealed_through.lock();
        let e = map.entry(tenant.clone()).or_insert(0);
        *e = (*e).max(lsn);
    }

    pub(crate) fn sealed_through_snapshot(&self) -> HashMap<TenantId, u64> {
        self.sealed_through.lock().clone()
    }

    pub(crate) fn sealed_through_of(&self, tenant: &TenantId) -> u64 {
        self.sealed_through.lock().get(tenant).copied().unwrap_or(0)
    }

    /// Segments removed from the catalog: no longer unopened, their damage
    /// no longer known.
    pub(crate) fn forget_segments(&self, gone: &[SegmentMeta]) {
        self.unopened
            .lock()
            .retain(|m| !gone.iter().any(|g| g.id == m.id));
        for g in gone {
            self.damage.forget(g.id, &g.path(&self.dir));
        }
    }

    pub(crate) fn note_active_removed(&self, bytes: usize) {
        self.active_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.notify_room();
    }

    /// Deletes WAL files whose records are all sealed.
    pub(crate) fn trim_wal(&self) {
        let st = self.sealed_through.lock();
        let removed = self.wal.trim(|t| st.get(t).copied().unwrap_or(0));
        drop(st);
        if removed > 0 {
            tracing::debug!(removed, "WAL files trimmed");
            self.notify_room();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Without `close` this is like a crash: the WAL holds what is active.
        crate::compaction::stop_background_no_join(self);
    }
}

fn e_ts(e: &Event) -> i64 {
    e.timestamp.0
}

fn new_slot(tenant: &TenantId) -> Arc<TenantSlot> {
    Arc::new(TenantSlot {
        tenant: tenant.clone(),
        state: Mutex::new(TenantState {
            applied_through: 0,
            active: ActiveTenant::default(),
        }),
        applied: Condvar::new(),
        seal_lock: Mutex::new(()),
    })
}

pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let path = paths::lock_file(dir);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(StorageError::io(&path, e)),
    }
}

/// Creates `dir` (and parents) and fsyncs each new entry's parent, so a
/// segment's directory survives a crash together with the segment.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(StorageError::io(dir, e)),
    }
    if let Some(parent) = dir.parent() {
        wal::writer::sync_dir(parent)?;
    }
    Ok(())
}

/// Opens the catalog, refusing (and deleting nothing) when it is missing
/// while segment files exist, or cannot be read: opening on an empty
/// catalog would make every segment an unlisted leftover.
fn open_catalog(dir: &Path) -> Result<(Catalog, crate::catalog::CatalogState)> {
    let path = paths::catalog_file(dir);
    let unusable = |detail: String| StorageError::CatalogUnusable {
        dir: dir.to_path_buf(),
        path: path.clone(),
        detail,
    };
    if !path.exists() {
        let segments = crate::rebuild::segment_files(dir)?;
        if !segments.is_empty() {
            return Err(unusable(format!(
                "the catalog {} is missing while {} segment file(s) exist",
                path.display(),
                segments.len()
            )));
        }
    }
    let catalog = match Catalog::open(&path) {
        Ok(c) => c,
        Err(e @ (StorageError::Locked(_) | StorageError::DiskFull { .. })) => return Err(e),
        Err(e) => return Err(unusable(format!("the catalog cannot be opened: {e}"))),
    };
    let state = catalog
        .load()
        .map_err(|e| unusable(format!("the catalog cannot be read: {e}")))?;
    Ok((catalog, state))
}

/// The catalog is the source of truth: `*.tmp` files and segment files it
/// does not list are leftovers of a crash (or of a drop interrupted after
/// its commit) and are removed, as are directories left empty.
fn remove_leftovers(dir: &Path, segments: &[SegmentMeta]) -> Result<()> {
    let known: HashSet<PathBuf> = segments.iter().map(|s| s.path(dir)).collect();
    let root = paths::tenants_dir(dir);
    let mut removed = 0u64;
    for tenant in read_dir_paths(&root)? {
        if !tenant.is_dir() {
            continue;
        }
        for part in read_dir_paths(&tenant)? {
            if !part.is_dir() {
                continue;
            }
            for f in read_dir_paths(&part)? {
                let stale = paths::is_tmp(&f) || (paths::is_segment(&f) && !known.contains(&f));
                if stale {
                    std::fs::remove_file(&f).map_err(|e| StorageError::io(&f, e))?;
                    removed += 1;
                }
            }
            // Fails (harmlessly) unless empty.
            let _ = std::fs::remove_dir(&part);
        }
        let _ = std::fs::remove_dir(&tenant);
    }
    for f in read_dir_paths(&paths::wal_dir(dir))? {
        if paths::is_tmp(&f) {
            std::fs::remove_file(&f).map_err(|e| StorageError::io(&f, e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed leftover files not in the catalog");
    }
    Ok(())
}

pub(crate) fn read_dir_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()).map_err(|e| StorageError::io(dir, e)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io(dir, e)),
    }
}

/// Checks every checksum of the store in `dir` without opening it for
/// writing: every WAL record, the catalog, every segment it lists (each
/// block, via `segment::verify_segment`) and that the files match it.
pub fn verify(dir: &std::path::Path) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    if !dir.is_dir() {
        return Err(StorageError::invalid(
            "data directory",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let wal_check = wal::verify_wal(dir)?;
    report.files_checked += wal_check.files;
    report.wal_records_checked = wal_check.records;
    report.problems.extend(wal_check.problems);
    let cat_path = paths::catalog_file(dir);
    if !cat_path.exists() {
        let segments = crate::rebuild::segment_files(dir)?;
        if !segments.is_empty() {
            report.problems.push(format!(
                "{}: missing while {} segment file(s) exist (run `pulsestream check --rebuild-catalog`)",
                cat_path.display(),
                segments.len()
            ));
        }
        return Ok(report);
    }
    report.files_checked += 1;
    let state = match crate::catalog::load_read_only(&cat_path) {
        Ok(s) => s,
        Err(e) => {
            report.problems.push(format!("{}: {e}", cat_path.display()));
            return Ok(report);
        }
    };
    for meta in &state.segments {
        let path = meta.path(dir);
        report.files_checked += 1;
        match std::fs::metadata(&path) {
            Err(e) => {
                report.problems.push(format!(
                    "segment {} ({}): listed in the catalog but unreadable: {e}",
                    meta.id, meta.file
                ));
                continue;
            }
            Ok(m) if m.len() != meta.bytes => report.problems.push(format!(
                "segment {} ({}): {} bytes on disk, catalog says {}",
                meta.id,
                meta.file,
                m.len(),
                meta.bytes
            )),
            Ok(_) => {}
        }
        match segment::verify_segment(&path) {
            Ok(blocks) => report.blocks_checked += blocks,
            Err(e) => report
                .problems
                .push(format!("segment {} ({}): {e}", meta.id, meta.file)),
        }
    }
    Ok(report)
}
