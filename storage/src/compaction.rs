//! Background maintenance of a store: merging a partition's small segments
//! into one time-sorted segment, retention (dropping whole partitions or a
//! whole tenant), and the background threads: one seals by age, by size,
//! under the memory budget and for the WAL bound; the other compacts.
//!
//! Every catalog change here is one transaction; files are deleted only
//! after it committed (a crash in between leaves files the catalog does not
//! list, which the next open removes). Readers holding an old
//! `Arc<SegmentReader>` keep reading it: unlinking an open file is fine.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};

use crate::catalog::{Change, SegmentMeta, TenantMeta};
use crate::column::ColumnKey;
use crate::error::{Result, StorageError};
use crate::scan::ScanUnit;
use crate::store::{Sealed, Store};
use crate::types::{Micros, PartitionStart, SegmentId, TenantId};

/// How often the background thread checks ages. Sealing by age has minute
/// granularity in practice (`seal_age` defaults to 10 min), so a second is
/// plenty and costs nothing.
const TICK: Duration = Duration::from_secs(1);

/// How often the background thread runs a compaction pass.
const COMPACT_EVERY: Duration = Duration::from_secs(30);

/// Most rows merged into one segment by compaction, whatever the budget.
/// Segments sealed by size are about this large already; compaction is for
/// the small ones sealed by age or under memory pressure.
pub const MAX_COMPACTION_ROWS: u64 = 1 << 20;

/// Fewest rows a merge may take, however small the budget.
const MIN_COMPACTION_ROWS: u64 = 16 << 10;

/// Memory a merge holds per input row: the row decoded (up to ~250 B with
/// unique trace ids and messages) and the writer's sort order and
/// flattened column (~50 B).
const COMPACTION_BYTES_PER_ROW: u64 = 320;

/// A merge holds at most `memory_budget` divided by this: an eighth (32 MiB
/// at the default budget, ~100 k rows), beside the budget itself. Merges
/// of a million rows held ~300 MB and made RSS peak at 2.3x the budget.
const COMPACTION_BUDGET_DIVISOR: u64 = 8;

/// Rows one merge may take under `config`'s memory budget.
pub fn max_compaction_rows(config: &crate::config::StoreConfig) -> u64 {
    (config.memory_budget as u64 / COMPACTION_BUDGET_DIVISOR / COMPACTION_BYTES_PER_ROW)
        .clamp(MIN_COMPACTION_ROWS, MAX_COMPACTION_ROWS)
}

/// Pending requests the background thread's channel holds.
const REQUEST_SLOTS: usize = 4;

enum Msg {
    /// Some tenant crossed a size limit.
    Seal,
    /// Active memory is over the budget.
    Budget,
    /// The WAL is over `max_wal_bytes`.
    Wal,
    Stop,
}

/// The background threads' handles: one seals (by age, size, budget and
/// the WAL bound), one compacts. Apart, so that a long merge never holds
/// up a seal while appends wait for memory.
pub(crate) struct Background {
    tx: Sender<Msg>,
    handle: Option<std::thread::JoinHandle<()>>,
    compact_tx: Sender<()>,
    compact_handle: Option<std::thread::JoinHandle<()>>,
}

pub(crate) fn start_background(store: &Arc<Store>) {
    // Room for one request of each kind plus Stop: a request already
    // queued covers any that arrive before it is handled (the handler
    // re-checks the limits), so appends never queue unboundedly.
    let (tx, rx) = channel::bounded(REQUEST_SLOTS);
    let weak = Arc::downgrade(store);
    let handle = match std::thread::Builder::new()
        .name("pulsestream-maint".into())
        .spawn(move || run(weak, rx))
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the storage background thread");
            return;
        }
    };
    let (compact_tx, compact_rx) = channel::bounded(1);
    let weak = Arc::downgrade(store);
    let compact_handle = std::thread::Builder::new()
        .name("pulsestream-compact".into())
        .spawn(move || run_compaction(weak, compact_rx))
        .map_err(|e| tracing::error!(error = %e, "cannot start the compaction thread"))
        .ok();
    *store.background.lock() = Some(Background {
        tx,
        handle: Some(handle),
        compact_tx,
        compact_handle,
    });
}

/// Compacts every `COMPACT_EVERY` until told to stop (or the store is gone).
fn run_compaction(weak: Weak<Store>, rx: Receiver<()>) {
    loop {
        match rx.recv_timeout(COMPACT_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(store) = weak.upgrade() else {
            return;
        };
        if let Err(e) = compact(&store) {
            tracing::warn!(error = %e, "compaction failed");
        }
    }
}

/// Holds only a weak reference between ticks, so dropping the last `Arc`
/// of the store ends the thread.
fn run(weak: Weak<Store>, rx: Receiver<Msg>) {
    loop {
        let msg = rx.recv_timeout(TICK);
        let Some(store) = weak.upgrade() else {
            return;
        };
        match msg {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            // Re-checks the limits, so duplicate requests cost nothing.
            Ok(Msg::Seal) => store.seal_over_limits(),
            Ok(Msg::Budget) => store.seal_over_budget(),
            Ok(Msg::Wal) => store.seal_for_wal(),
            Err(RecvTimeoutError::Timeout) => {}
        }
        store.seal_aged();
        // A request may have been dropped while the channel was full.
        store.seal_over_budget();
        store.seal_for_wal();
    }
}

/// Asks the background thread to seal; false when there is none.
pub(crate) fn request_seal(store: &Store, _tenant: &TenantId) -> bool {
    send(store, Msg::Seal)
}

pub(crate) fn request_budget(store: &Store) -> bool {
    send(store, Msg::Budget)
}

pub(crate) fn request_wal(store: &Store) -> bool {
    send(store, Msg::Wal)
}

fn send(store: &Store, msg: Msg) -> bool {
    match store.background.lock().as_ref() {
        // Full: an earlier request is still queued and covers this one.
        Some(bg) => !matches!(
            bg.tx.try_send(msg),
            Err(channel::TrySendError::Disconnected(_))
        ),
        None => false,
    }
}

pub(crate) fn stop_background(store: &Store) {
    let bg = store.background.lock().take();
    if let Some(mut bg) = bg {
        let _ = bg.tx.send(Msg::Stop);
        let _ = bg.compact_tx.try_send(());
        for h in [bg.handle.take(), bg.compact_handle.take()]
            .into_iter()
            .flatten()
        {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

/// For `Drop`: the last reference may be dropped on the thread itself.
pub(crate) fn stop_background_no_join(store: &Store) {
    if let Some(bg) = store.background.lock().take() {
        let _ = bg.tx.send(Msg::Stop);
        let _ = bg.compact_tx.try_send(());
    }
}

/// One compaction pass: every (tenant, partition) with at least
/// `compaction_min_segments` segments gets its smallest ones merged.
/// Returns the number of merges. A partition whose merge fails (a damaged
/// segment) is logged and skipped.
pub(crate) fn compact(store: &Store) -> Result<u64> {
    let _m = store.maintenance.lock();
    let min = store.config.compaction_min_segments.max(2);
    let max_rows = max_compaction_rows(&store.config);
    let mut groups: Vec<(TenantId, i64, Vec<Sealed>)> = Vec::new();
    {
        let view = store.view.read();
        for (t, segs) in &view.sealed {
            let mut by_part: BTreeMap<i64, Vec<Sealed>> = BTreeMap::new();
            for s in segs.values() {
                by_part.entry(s.meta.partition).or_default().push(s.clone());
            }
            for (p, mut list) in by_part {
                if list.len() < min {
                    continue;
                }
                list.sort_by_key(|s| (s.meta.rows, s.meta.id));
                let mut total = 0u64;
                let pick: Vec<Sealed> = list
                    .into_iter()
                    .take_while(|s| {
                        total += s.meta.rows;
                        total <= max_rows
                    })
                    .collect();
                if pick.len() >= min {
                    groups.push((t.clone(), p, pick));
                }
            }
        }
    }
    let mut merged = 0;
    for (t, p, inputs) in groups {
        if store.closed() {
            // Closing waits for this thread: the rest can wait for the next open.
            break;
        }
        match merge(store, &t, PartitionStart(Micros(p)), &inputs) {
            Ok(()) => merged += 1,
            Err(e @ StorageError::Closed) => return Err(e),
            Err(e) => tracing::warn!(tenant = %t, partition = p, error = %e, "merge failed"),
        }
    }
    Ok(merged)
}

fn merge(store: &Store, tenant: &TenantId, p: PartitionStart, inputs: &[Sealed]) -> Result<()> {
    let mut sets = Vec::new();
    for s in inputs {
        let mut keys: Vec<ColumnKey> = ColumnKey::CORE.to_vec();
        keys.extend(s.reader.attribute_keys());
        for b in 0..s.reader.block_count() {
            sets.push(s.reader.read(b, &keys)?);
        }
    }
    let level = inputs.iter().map(|s| s.meta.level).max().unwrap_or(0) + 1;
    let id = SegmentId(
        store
            .next_segment_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    // Every input is sealed, so the tenant's sealed-through LSN now is
    // true of the output (what a catalog rebuild reads from its footer).
    let through = store.sealed_through_of(tenant);
    // A merge is background work that nothing waits for: one core, so
    // ingest, seals and queries keep the others.
    let new = store.write_segment_file(tenant, p, id, &sets, level, through, 1)?;
    let old_ids: Vec<u64> = inputs.iter().map(|s| s.meta.id).collect();
    if let Err(e) = store.commit(&Change {
        add: vec![new.meta.clone()],
        remove: old_ids.clone(),
        ..store.marks()
    }) {
        let _ = std::fs::remove_file(new.meta.path(&store.dir));
        return Err(e);
    }
    {
        let mut view = store.view.write();
        let segs = view.sealed.entry(tenant.clone()).or_default();
        for id in &old_ids {
            segs.remove(id);
        }
        segs.insert(new.meta.id, new);
    }
    for s in inputs {
        remove_file_logged(&s.meta.path(&store.dir));
    }
    Ok(())
}

/// Retention: drops `tenant`'s partitions that end at or before `cutoff`.
/// If active rows are among them the tenant is sealed first, so no dropped
/// row can come back from the WAL;
/// if the disk is full that seal fails and only sealed partitions are
/// dropped (which is what frees space).
pub(crate) fn drop_before(store: &Store, tenant: &TenantId, cutoff: Micros) -> Result<u64> {
    let _m = store.maintenance.lock();
    let slot = store.slot(tenant);
    let pm = store.config.partition_micros;
    // Retention runs often; seal only when active rows would be dropped,
    // or every call would cut a small segment.
    let active_doomed = slot
        .state
        .lock()
        .active
        .partition_keys()
        .any(|k| k.saturating_add(pm) <= cutoff.0);
    let sealed = if active_doomed {
        store.seal_tenant(&slot).map(|_| ())
    } else {
        Ok(())
    };
    match sealed {
        Ok(()) => {}
        Err(e @ StorageError::DiskFull { .. }) => {
            tracing::warn!(tenant = %tenant, error = %e, "retention: cannot seal; dropping sealed partitions only")
        }
        Err(e) => return Err(e),
    }
    let expired = |m: &SegmentMeta| m.partition.saturating_add(pm) <= cutoff.0;
    let mut doomed: Vec<SegmentMeta> = {
        let view = store.view.read();
        view.sealed
            .get(tenant)
            .map(|segs| {
                segs.values()
                    .filter(|s| expired(&s.meta))
                    .map(|s| s.meta.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Segments that could not be opened expire like the others.
    doomed.extend(
        store
            .unopened
            .lock()
            .iter()
            .filter(|m| m.tenant == tenant.as_str() && expired(m))
            .cloned(),
    );
    if doomed.is_empty() {
        return Ok(0);
    }
    store.commit(&Change {
        remove: doomed.iter().map(|s| s.id).collect(),
        ..store.marks()
    })?;
    {
        let mut view = store.view.write();
        if let Some(segs) = view.sealed.get_mut(tenant) {
            for s in &doomed {
                segs.remove(&s.id);
            }
        }
    }
    store.forget_segments(&doomed);
    let mut parts: Vec<i64> = doomed.iter().map(|s| s.partition).collect();
    parts.sort_unstable();
    parts.dedup();
    for s in &doomed {
        let path = s.path(&store.dir);
        remove_file_logged(&path);
        if let Some(dir) = path.parent() {
            // Fails (harmlessly) while another segment lives there.
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(parts.len() as u64)
}

/// Removes everything of `tenant`: active rows, segments, files. The
/// catalog's sealed-through LSN is moved past the tenant's last record, so
/// replay never brings the rows back.
pub(crate) fn drop_tenant(store: &Store, tenant: &TenantId) -> Result<()> {
    let _m = store.maintenance.lock();
    let slot = store.slot(tenant);
    let _one = slot.seal_lock.lock();
    let last = store.wal.tenant_last(tenant);
    let (through, doomed) = {
        let mut view = store.view.write();
        let mut st = slot.state.lock();
        // Appends already logged must land (and be dropped) here, not after.
        while st.applied_through < last {
            slot.applied.wait(&mut st);
        }
        let bytes = st.active.bytes();
        st.active.take_all();
        store.note_active_removed(bytes);
        view.sealing.remove(tenant);
        let doomed: Vec<u64> = view
            .sealed
            .remove(tenant)
            .map(|m| m.into_keys().collect())
            .unwrap_or_default();
        let through = st.applied_through.max(store.sealed_through_of(tenant));
        (through, doomed)
    };
    let mut doomed = doomed;
    // Segments that failed to open at startup are in the catalog only.
    doomed.extend(store.catalog_segments_of(tenant)?);
    doomed.sort_unstable();
    doomed.dedup();
    store.commit(&Change {
        remove: doomed,
        tenants: vec![(
            tenant.clone(),
            TenantMeta {
                sealed_through: through,
            },
        )],
        ..store.marks()
    })?;
    store.set_sealed_through(tenant, through);
    let unopened: Vec<SegmentMeta> = store
        .unopened
        .lock()
        .iter()
        .filter(|m| m.tenant == tenant.as_str())
        .cloned()
        .collect();
    store.forget_segments(&unopened);
    let dir = crate::paths::tenant_dir(&store.dir, tenant);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(&dir, e)),
    }
    store.trim_wal();
    Ok(())
}

fn remove_file_logged(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot delete file");
    }
}
