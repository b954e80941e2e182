//! What bounds one query's work: a deadline and a cancel flag checked per
//! unit and per block (so the work stops, not only the answer), and a
//! memory budget charged as groups and their aggregate states are created.
//!
//! The caller keeps an `Arc<QueryControl>`, hands it to the engine, and may
//! `cancel` it from another thread (a timed-out or abandoned request).
//! Counters record what happened so the caller, and tests, can see it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::error::{Result, StorageError};

/// A worker charges its memory growth to the shared budget in steps of at
/// least this much, so the shared atomic is touched once per 64 KiB of
/// growth rather than per group.
pub const CHARGE_STEP_BYTES: usize = 64 << 10;

/// The control of work that has no limits (group tables built outside a
/// controlled query, e.g. in tests and merges).
pub static UNLIMITED: QueryControl = QueryControl::new(None, usize::MAX);

/// Limits of one query and what its workers did.
#[derive(Debug)]
pub struct QueryControl {
    deadline: Option<Instant>,
    cancelled: AtomicBool,
    /// Bytes of group state the query may hold across its workers.
    memory_limit: usize,
    memory_used: AtomicUsize,
    /// Blocks read (or answered from summaries) so far.
    blocks: AtomicU64,
    /// Set when a check found the query cancelled or past its deadline.
    stopped: AtomicBool,
    /// Set by a worker that failed (e.g. over budget) so its siblings stop;
    /// not a cancellation, so `stopped` stays false.
    halted: AtomicBool,
}

impl QueryControl {
    /// No deadline and no memory limit (internal callers, tests).
    pub fn unlimited() -> QueryControl {
        QueryControl::new(None, usize::MAX)
    }

    pub const fn new(deadline: Option<Instant>, memory_limit: usize) -> QueryControl {
        QueryControl {
            deadline,
            cancelled: AtomicBool::new(false),
            memory_limit,
            memory_used: AtomicUsize::new(0),
            blocks: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            halted: AtomicBool::new(false),
        }
    }

    /// Asks the workers to stop at their next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Stops the other workers of a query that has already failed.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Release);
    }

    /// `Err(QueryCancelled)` when cancelled, past the deadline or halted.
    /// Called before each unit and each block.
    pub fn check(&self) -> Result<()> {
        if self.halted.load(Ordering::Acquire) {
            return Err(StorageError::QueryCancelled);
        }
        let late = self.deadline.is_some_and(|d| Instant::now() >= d);
        if late || self.cancelled.load(Ordering::Acquire) {
            self.stopped.store(true, Ordering::Release);
            return Err(StorageError::QueryCancelled);
        }
        Ok(())
    }

    /// Adds `bytes` to the query's memory; `Err(QueryTooLarge)` past the limit.
    pub fn charge(&self, bytes: usize) -> Result<()> {
        let used = self.memory_used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if used > self.memory_limit {
            return Err(StorageError::QueryTooLarge {
                limit_bytes: self.memory_limit,
            });
        }
        Ok(())
    }

    /// One block (or block summary) was processed.
    pub fn count_block(&self) {
        self.blocks.fetch_add(1, Ordering::Relaxed);
    }

    /// Blocks processed so far.
    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    /// True when a worker stopped because of `cancel` or the deadline.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Bytes charged so far.
    pub fn memory_used(&self) -> usize {
        self.memory_used.load(Ordering::Relaxed)
    }
}

/// A worker's local tally, flushed to the shared budget in steps.
#[derive(Debug, Default)]
pub struct Meter {
    pending: usize,
}

impl Meter {
    /// Records growth; charges the control once `CHARGE_STEP_BYTES` gathered.
    #[inline]
    pub fn grow(&mut self, control: &QueryControl, bytes: usize) -> Result<()> {
        self.pending += bytes;
        if self.pending >= CHARGE_STEP_BYTES {
            let n = std::mem::take(&mut self.pending);
            control.charge(n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cancel_and_deadline_stop_checks() {
        let c = QueryControl::unlimited();
        assert!(c.check().is_ok());
        c.cancel();
        assert!(matches!(c.check(), Err(StorageError::QueryCancelled)));
        assert!(c.stopped());
        let past = QueryControl::new(Some(Instant::now() - Duration::from_millis(1)), 1);
        assert!(past.check().is_err());
    }

    #[test]
    fn memory_is_charged_in_steps() {
        let c = QueryControl::new(None, 3 * CHARGE_STEP_BYTES);
        let mut m = Meter::default();
        m.grow(&c, CHARGE_STEP_BYTES - 1).expect("below a step");
        assert_eq!(c.memory_used(), 0);
        m.grow(&c, 1).expect("one step");
        assert_eq!(c.memory_used(), CHARGE_STEP_BYTES);
        m.grow(&c, 2 * CHARGE_STEP_BYTES).expect("at the limit");
        assert!(matches!(
            m.grow(&c, CHARGE_STEP_BYTES),
            Err(StorageError::QueryTooLarge { .. })
        ));
    }
}
