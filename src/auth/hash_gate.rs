//! The gate every argon2 hash and verification passes: at most
//! `auth.max_concurrent_hashes` run at once, a short queue waits, and
//! everything beyond the queue is refused at once.
//!
//! Each hash holds its memory cost (19 MiB by default) for tens of
//! milliseconds; unbounded, a login flood turns into gigabytes of RSS and
//! hundreds of blocking threads. The gate owns only admission; the hashing
//! itself stays in `password`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// Waiting hashes allowed per running one. Four keeps the wait of the last
/// one in line to about four hash times (well under a second with the
/// default cost) while absorbing a browser's burst of a few logins.
pub const QUEUE_PER_PERMIT: usize = 4;

/// The queue was full: the caller answers 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateFull;

/// Bounded concurrency plus a bounded queue for password hashing.
#[derive(Debug)]
pub struct HashGate {
    /// One permit per hash allowed to run.
    running: Arc<Semaphore>,
    /// Hashes running or waiting; admission compares it with `capacity`.
    admitted: AtomicUsize,
    /// `running` permits plus the queue.
    capacity: usize,
    /// Hashes refused because the queue was full (for `/metrics` and tests).
    refused: AtomicUsize,
}

impl HashGate {
    /// A gate running `permits` hashes at once (at least one).
    pub fn new(permits: usize) -> HashGate {
        let permits = permits.max(1);
        HashGate {
            running: Arc::new(Semaphore::new(permits)),
            admitted: AtomicUsize::new(0),
            capacity: permits + permits * QUEUE_PER_PERMIT,
            refused: AtomicUsize::new(0),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free; `GateFull`
    /// without waiting when the queue is already full.
    pub async fn run<T, F>(&self, work: F) -> Result<Option<T>, GateFull>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let ticket = self.admit()?;
        let permit = self.running.clone().acquire_owned().await;
        let Ok(permit) = permit else {
            // The semaphore is never closed; treat it as full rather than panic.
            drop(ticket);
            return Err(GateFull);
        };
        // The permit moves into the blocking closure: a request abandoned by
        // its client cannot free the slot while its hash still runs.
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .ok();
        drop(ticket);
        Ok(out)
    }

    fn admit(&self) -> Result<Ticket<'_>, GateFull> {
        let mut now = self.admitted.load(Ordering::Relaxed);
        loop {
            if now >= self.capacity {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(GateFull);
            }
            match self.admitted.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Ticket(&self.admitted)),
                Err(seen) => now = seen,
            }
        }
    }

    /// Hashes refused since start.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Hashes running or queued right now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Relaxed)
    }
}

/// A place in the gate, given back on drop (also when the request future
/// is dropped while it waits).
struct Ticket<'a>(&'a AtomicUsize);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_beyond_running_plus_queue() {
        let gate = Arc::new(HashGate::new(1));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(parking_lot::Mutex::new(release_rx));
        let mut tasks = Vec::new();
        for _ in 0..(1 + QUEUE_PER_PERMIT) {
            let g = gate.clone();
            let rx = release_rx.clone();
            tasks.push(tokio::spawn(async move {
                g.run(move || {
                    let _ = rx.lock().recv_timeout(Duration::from_secs(10));
                })
                .await
            }));
        }
        // Wait until every task holds its place.
        for _ in 0..1000 {
            if gate.admitted() == 1 + QUEUE_PER_PERMIT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(gate.admitted(), 1 + QUEUE_PER_PERMIT);
        assert_eq!(gate.run(|| ()).await, Err(GateFull));
        assert_eq!(gate.refused(), 1);
        for _ in 0..(1 + QUEUE_PER_PERMIT) {
            let _ = release_tx.send(());
        }
        for t in tasks {
            assert_eq!(t.await.expect("join"), Ok(Some(())));
        }
        assert_eq!(gate.admitted(), 0);
        assert_eq!(gate.run(|| 7).await, Ok(Some(7)));
    }
}
