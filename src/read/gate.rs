//! Admission of heavy reads (queries, statistics, searches, exports): at
//! most `limits.max_concurrent_queries` run at once across tenants, one
//! tenant at most half of them (at least one), and a bounded queue waits
//! for a bounded time; beyond it the read answers 503 with `Retry-After`.
//!
//! Each running read holds a blocking-pool thread and its group state, so
//! without this a burst of dashboards or exports takes every core and the
//! ingest path's threads with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use pulsestream_storage::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reads allowed to wait, per running slot. Four keeps the last one in
/// line behind about four reads' time.
pub const QUEUE_PER_SLOT: usize = 4;

/// Longest wait for a slot before the read answers 503: a dashboard
/// retries sooner than a user gives up.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// `Retry-After` of a refused read (seconds).
pub const BUSY_RETRY_SECS: u64 = 1;

/// A refused read: the queue was full or the wait too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The admission state.
#[derive(Debug)]
pub struct ReadGate {
    global: Arc<Semaphore>,
    per_tenant_slots: usize,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
    /// Reads running or waiting.
    admitted: AtomicUsize,
    capacity: usize,
    wait: Duration,
    /// Reads refused since start.
    refused: AtomicUsize,
}

/// Held while a read runs; frees its slots on drop.
#[derive(Debug)]
pub struct ReadPermit {
    _tenant: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    _ticket: Ticket,
}

#[derive(Debug)]
struct Ticket(Arc<ReadGate>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ReadGate {
    pub fn new(slots: usize, wait: Duration) -> Arc<ReadGate> {
        let slots = slots.max(1);
        Arc::new(ReadGate {
            global: Arc::new(Semaphore::new(slots)),
            per_tenant_slots: (slots / 2).max(1),
            tenants: Mutex::new(HashMap::new()),
            admitted: AtomicUsize::new(0),
            capacity: slots + slots * QUEUE_PER_SLOT,
            wait,
            refused: AtomicUsize::new(0),
        })
    }

    /// Waits for a slot for `tenant`: first the tenant's own, then a global
    /// one, within the wait bound.
    pub async fn enter(self: &Arc<Self>, tenant: &TenantId) -> Result<ReadPermit, Busy> {
        let ticket = self.admit()?;
        let sem = self
            .tenants
            .lock()
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant_slots)))
            .clone();
        let acquire = async {
            let t = sem.acquire_owned().await.map_err(|_| Busy)?;
            let g = self
                .global
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Busy)?;
            Ok::<_, Busy>((t, g))
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok((t, g))) => Ok(ReadPermit {
                _tenant: t,
                _global: g,
                _ticket: ticket,
            }),
            _ => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(Busy)
            }
        }
    }

    fn admit(self: &Arc<Self>) -> Result<Ticket, Busy> {
        let mut now = self.admitted.load(Ordering::Relaxed);
        loop {
            if now >= self.capacity {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Busy);
            }
            match self.admitted.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Ticket(self.clone())),
                Err(seen) => now = seen,
            }
        }
    }

    /// Reads refused since start.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Reads holding a slot now (running, not waiting).
    pub fn running(&self) -> usize {
        self.capacity / (1 + QUEUE_PER_SLOT) - self.global.available_permits()
    }

    /// Reads running or waiting now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).expect("tenant")
    }

    #[tokio::test]
    async fn a_tenant_gets_half_and_the_queue_is_bounded() {
        let gate = ReadGate::new(2, Duration::from_millis(50));
        let a1 = gate.enter(&t("a")).await.expect("a first slot");
        // Tenant a has used its half: its next read waits, then is refused.
        assert_eq!(gate.enter(&t("a")).await.err(), Some(Busy));
        // Another tenant still gets the other slot.
        let b1 = gate.enter(&t("b")).await.expect("b slot");
        drop(a1);
        let a2 = gate.enter(&t("a")).await.expect("a again");
        drop((a2, b1));
        assert_eq!(gate.admitted(), 0);
        assert_eq!(gate.refused(), 1);
    }

    #[tokio::test]
    async fn beyond_the_queue_is_refused_at_once() {
        let gate = ReadGate::new(1, Duration::from_secs(30));
        let _held = gate.enter(&t("a")).await.expect("slot");
        let mut waiting = Vec::new();
        for _ in 0..QUEUE_PER_SLOT {
            let g = gate.clone();
            waiting.push(tokio::spawn(async move { g.enter(&t("b")).await.is_ok() }));
        }
        while gate.admitted() < 1 + QUEUE_PER_SLOT {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert_eq!(gate.enter(&t("c")).await.err(), Some(Busy));
        assert!(started.elapsed() < Duration::from_secs(5));
        for w in waiting {
            w.abort();
        }
    }
}
