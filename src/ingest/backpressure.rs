//! Bounded ingest: how many bytes of request bodies (raw and decompressed)
//! may be in flight at once. A request that would exceed the budget is
//! answered 503 with `Retry-After` at once instead of queueing, so memory
//! stays bounded however many agents push at the same time, and nothing is
//! acknowledged that was not stored.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Accounting unit: permits are KiB so a 4 GiB budget fits the semaphore's
/// `u32` permit counts.
const UNIT: usize = 1024;

/// Default budget: 64 MiB of bodies in flight. Parsed events cost about
/// twice their JSON size, so ingest buffers stay near 200 MiB at worst,
/// inside the 512 MiB RSS target next to the store's active segments; four
/// full-size (16 MiB) batches, or hundreds of typical ones, fit at once.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

/// The budget shared by every ingest request.
#[derive(Debug, Clone)]
pub struct IngestBudget {
    sem: Arc<Semaphore>,
    units: u32,
}

/// Bytes held by one request; released on drop.
#[derive(Debug)]
pub struct Reservation {
    _permits: Vec<OwnedSemaphorePermit>,
}

/// The budget is exhausted: answer 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ingest budget exhausted")]
pub struct Overloaded;

fn units_for(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX)
}

impl IngestBudget {
    pub fn new(budget_bytes: usize) -> Self {
        let units = units_for(budget_bytes).min(Semaphore::MAX_PERMITS as u32);
        IngestBudget {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Reserves `bytes` (capped at the whole budget, so one request larger
    /// than the budget can still run alone).
    pub fn try_reserve(&self, bytes: usize) -> Result<Reservation, Overloaded> {
        let n = units_for(bytes).min(self.units);
        match self.sem.clone().try_acquire_many_owned(n) {
            Ok(p) => Ok(Reservation { _permits: vec![p] }),
            Err(TryAcquireError::NoPermits) | Err(TryAcquireError::Closed) => Err(Overloaded),
        }
    }

    /// Adds `bytes` to an existing reservation (a body grew when decompressed).
    pub fn grow(&self, r: &mut Reservation, bytes: usize) -> Result<(), Overloaded> {
        let n = units_for(bytes).min(self.units);
        match self.sem.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                r._permits.push(p);
                Ok(())
            }
            Err(_) => Err(Overloaded),
        }
    }

    /// Bytes currently free (for `/metrics` and tests).
    pub fn available_bytes(&self) -> usize {
        self.sem.available_permits() * UNIT
    }
}

impl Default for IngestBudget {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_budget_and_frees_on_drop() {
        let b = IngestBudget::new(10 * 1024);
        let r1 = b.try_reserve(6 * 1024).expect("fits");
        assert_eq!(b.try_reserve(5 * 1024).unwrap_err(), Overloaded);
        let mut r2 = b.try_reserve(4 * 1024).expect("fits");
        assert_eq!(b.available_bytes(), 0);
        drop(r1);
        b.grow(&mut r2, 6 * 1024).expect("room again");
        assert!(b.grow(&mut r2, 1).is_err());
        drop(r2);
        assert_eq!(b.available_bytes(), 10 * 1024);
        // Larger than the whole budget: runs alone.
        let big = b.try_reserve(1 << 30).expect("alone");
        assert!(b.try_reserve(1).is_err());
        drop(big);
    }
}
