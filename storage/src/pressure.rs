//! Backpressure and the bounds on memory and WAL: what an append waits for
//! before anything is written, and which tenants are sealed when active
//! memory or the WAL grow past their limits.
//!
//! - Memory: `active_bytes` (rows being filled, with their chunk summaries
//!   and per-chunk overhead) plus `sealing_bytes` (rows frozen and being
//!   written out, still in memory) is what the budget bounds. Past three
//!   quarters of `memory_budget` the background thread seals the largest
//!   tenants; past the budget an append waits (at most `max_append_wait`)
//!   for room *before* it writes the WAL, then gives up with `Overloaded`:
//!   nothing was stored, the client retries. An append checks before it
//!   adds its rows, so the bound is exceeded by at most the batches being
//!   applied at that moment.
//! - WAL: past `max_wal_bytes` the tenants whose unsealed records pin the
//!   oldest WAL file are sealed so the file can be deleted (as a database
//!   flushes the memtables that pin its oldest log); past it plus one file,
//!   appends wait for that like they wait for memory.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Result, StorageError};
use crate::store::Store;

/// How long one wait for room sleeps before looking again: a seal that
/// finishes wakes waiters at once; this only covers a wakeup lost between
/// the check and the wait.
const ROOM_POLL: Duration = Duration::from_millis(50);

/// Most tenants sealed in one pass for the WAL bound: each seal can delete
/// at most the files it unpins, and a pass must not hold up the background
/// thread's other work for long.
const MAX_WAL_SEALS_PER_PASS: usize = 64;

impl Store {
    /// Memory held by rows not yet in segments: being filled and being
    /// written.
    pub(crate) fn held_bytes(&self) -> usize {
        self.active_bytes.load(Ordering::Relaxed) + self.sealing_bytes.load(Ordering::Relaxed)
    }

    fn hard_limit(&self) -> usize {
        self.config.memory_budget
    }

    /// Waits until an append may write: held memory under the hard limit.
    /// Without a background thread (tests, offline tools) the caller seals
    /// instead. Fails with `Overloaded` after `max_append_wait`; nothing has
    /// been written then.
    pub(crate) fn wait_for_room(&self) -> Result<()> {
        let full = || self.held_bytes() > self.hard_limit() || self.wal_past_bound();
        if !full() {
            return Ok(());
        }
        if !self.has_background() {
            self.seal_over_budget();
            self.seal_for_wal();
            return Ok(());
        }
        self.request_budget_seal();
        self.request_wal_seal();
        let deadline = Instant::now() + self.config.max_append_wait;
        let mut g = self.room.lock();
        while full() {
            if self.closed() {
                return Err(StorageError::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StorageError::Overloaded {
                    detail: format!(
                        "unsealed data holds {} bytes (budget {}), the WAL {} bytes (bound {}); sealing has not caught up within {:?}",
                        self.held_bytes(),
                        self.config.memory_budget,
                        self.wal.wal_bytes(),
                        self.config.max_wal_bytes,
                        self.config.max_append_wait
                    ),
                });
            }
            self.room_cv.wait_for(
                &mut g,
                ROOM_POLL.min(deadline.saturating_duration_since(now)),
            );
        }
        Ok(())
    }

    /// Wakes appenders waiting for room (memory was freed).
    pub(crate) fn notify_room(&self) {
        let _g = self.room.lock();
        self.room_cv.notify_all();
    }

    /// Whether the WAL is past `max_wal_bytes` (sealing should start).
    pub(crate) fn wal_over_limit(&self) -> bool {
        self.wal.wal_bytes() > self.config.max_wal_bytes
    }

    /// Whether the WAL is past `max_wal_bytes` plus one file: appends wait
    /// (before writing) until sealing has freed a file, so the bound holds
    /// whatever the sealing speed.
    fn wal_past_bound(&self) -> bool {
        self.wal.wal_bytes()
            > self
                .config
                .max_wal_bytes
                .saturating_add(self.config.wal_file_bytes)
    }

    /// Seals the tenants that pin the oldest WAL file until the WAL is
    /// within `max_wal_bytes` (or nothing more can be freed).
    pub(crate) fn seal_for_wal(&self) {
        let mut sealed = 0;
        while self.wal_over_limit() && sealed < MAX_WAL_SEALS_PER_PASS {
            // A snapshot: the WAL's locks are leaves (see `store.rs`).
            let through = self.sealed_through_snapshot();
            let pinning = self
                .wal
                .oldest_pins(|t| through.get(t).copied().unwrap_or(0));
            if pinning.is_empty() {
                // The oldest file is the one being written, or a seal is
                // still running: the next pass looks again.
                self.trim_wal();
                return;
            }
            for t in pinning {
                let slot = self.slot(&t);
                if let Err(e) = self.seal_tenant(&slot) {
                    tracing::warn!(tenant = %t, error = %e, "seal for the WAL bound failed");
                    return;
                }
                sealed += 1;
            }
            self.trim_wal();
        }
        if sealed > 0 {
            tracing::debug!(
                sealed,
                wal_bytes = self.wal.wal_bytes(),
                "sealed for the WAL bound"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::StoreConfig;
    use crate::error::StorageError;
    use crate::event::Event;
    use crate::store::Store;
    use crate::types::{Micros, TenantId};

    /// 2026-11-25T10:00:00Z
    const T0: i64 = 1_795_600_800 * Micros::SECOND;

    fn batch(n: usize, k: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                timestamp: Micros(T0 + ((k * n + i) as i64) * 1000),
                received_at: Micros(T0),
                event_type: "api_call".into(),
                service: Some(format!("svc-{}", i % 5)),
                message: Some(format!("message {k} {i} with some text to take room")),
                ..Event::default()
            })
            .collect()
    }

    /// Appends batches of `n` until the store refuses one, which must be
    /// `Overloaded` before `cap` batches; answers how many went in.
    fn append_until_refused(store: &Store, t: &TenantId, n: usize, cap: usize) -> usize {
        let mut k = 0;
        let err = loop {
            match store.append(t, &batch(n, k)) {
                Ok(_) => k += 1,
                Err(e) => break e,
            }
            assert!(k < cap, "never pushed back");
        };
        assert!(matches!(err, StorageError::Overloaded { .. }), "{err:?}");
        k
    }

    #[test]
    fn an_append_past_the_hard_limit_waits_then_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StoreConfig::new(dir.path());
        c.memory_budget = 64 << 10;
        c.seal_bytes = usize::MAX;
        c.seal_rows = usize::MAX;
        c.max_append_wait = Duration::from_millis(200);
        let store = Store::open(c).unwrap();
        let t = TenantId::new("t").unwrap();
        let slot = store.slot(&t);
        // Sealing cannot run while its lock is held: memory piles up.
        let guard = slot.seal_lock.lock();
        let k = append_until_refused(&store, &t, 200, 1000);
        assert!(store.held_bytes() > 64 << 10);
        let durable = store.wal.durable_lsn();
        assert_eq!(durable, k as u64, "the refused batch was not logged");
        // Once sealing runs again the same batch goes in.
        drop(guard);
        store.append(&t, &batch(200, k)).unwrap();
        assert_eq!(store.wal.durable_lsn(), durable + 1);
        store.close().unwrap();
    }

    #[test]
    fn appends_wait_for_the_wal_bound_when_sealing_falls_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StoreConfig::new(dir.path());
        c.wal_file_bytes = 16 << 10;
        c.max_wal_bytes = 64 << 10;
        c.seal_rows = usize::MAX;
        c.seal_bytes = usize::MAX;
        c.max_append_wait = Duration::from_millis(200);
        let store = Store::open(c).unwrap();
        let t = TenantId::new("t").unwrap();
        let slot = store.slot(&t);
        let guard = slot.seal_lock.lock();
        let k = append_until_refused(&store, &t, 20, 2000);
        let wal = store.wal.wal_bytes();
        assert!(
            wal <= (64 << 10) + (16 << 10) + 8192,
            "WAL at {wal} bytes when appends were refused"
        );
        drop(guard);
        store.append(&t, &batch(20, k)).unwrap();
        store.close().unwrap();
    }

    #[test]
    fn replay_seals_as_it_goes_when_memory_passes_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::new("t").unwrap();
        {
            // Written with room to spare, then a crash: all of it is in
            // the WAL only.
            let mut c = StoreConfig::new(dir.path());
            c.background = false;
            let store = Store::open(c).unwrap();
            for k in 0..100 {
                store.append(&t, &batch(100, k)).unwrap();
            }
        }
        let mut c = StoreConfig::new(dir.path());
        c.background = false;
        c.memory_budget = 64 << 10;
        let store = Store::open(c).unwrap();
        let stats = store.stats();
        let s = &stats.tenants[0];
        assert_eq!(s.sealed_rows + s.active_rows, 100 * 100);
        // One partition: more than one segment means replay sealed along
        // the way instead of holding everything until it ended.
        assert!(s.sealed_segments > 2, "{} segments", s.sealed_segments);
        assert!(store.held_bytes() <= 64 << 10);
    }

    #[test]
    fn the_wal_stays_within_its_bound_whatever_the_tenant_mix() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StoreConfig::new(dir.path());
        c.background = false;
        c.wal_file_bytes = 16 << 10;
        c.max_wal_bytes = 64 << 10;
        c.seal_rows = usize::MAX;
        c.seal_bytes = usize::MAX;
        let store = Arc::new(Store::open(c).unwrap());
        let quiet = TenantId::new("quiet").unwrap();
        let busy = TenantId::new("busy").unwrap();
        // One early record of a quiet tenant would pin the first file
        // (and every later one) until its seal age.
        store.append(&quiet, &batch(5, 0)).unwrap();
        for k in 0..200 {
            store.append(&busy, &batch(20, k)).unwrap();
            let wal = store.wal.wal_bytes();
            assert!(
                wal <= (64 << 10) + (16 << 10) + 8192,
                "WAL at {wal} bytes after {k} appends"
            );
        }
        let stats = store.stats();
        let quiet_stats = stats
            .tenants
            .iter()
            .find(|s| s.tenant.as_ref() == Some(&quiet))
            .unwrap();
        assert_eq!(quiet_stats.sealed_rows, 5, "the pinning tenant was sealed");
        drop(stats);
        // Nothing was lost on the way.
        drop(store);
        let mut c = StoreConfig::new(dir.path());
        c.background = false;
        let store = Store::open(c).unwrap();
        let rows: u64 = store
            .stats()
            .tenants
            .iter()
            .map(|s| s.sealed_rows + s.active_rows)
            .sum();
        assert_eq!(rows, 5 + 200 * 20);
    }
}
