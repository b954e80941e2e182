//! One login at a time per account, so the lockout is decided atomically:
//! the lock state is read, the password checked and the failure recorded
//! while no other attempt for the same account is in between. Without it,
//! N concurrent guesses all read "not locked" and all get evaluated.
//!
//! Entries exist only while an attempt holds or waits for them, so the
//! table is bounded by the attempts in flight (themselves bounded by the
//! connection caps), not by the number of accounts.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The per-account serialisers.
#[derive(Debug, Default)]
pub struct AccountLocks {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Held while one attempt decides; the slot is removed when the last
/// holder or waiter is gone.
pub struct AccountGuard<'a> {
    locks: &'a AccountLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl AccountLocks {
    pub fn new() -> AccountLocks {
        AccountLocks::default()
    }

    /// Waits until no other attempt for `account` is deciding.
    pub async fn lock(&self, account: &str) -> AccountGuard<'_> {
        let slot = self
            .slots
            .lock()
            .entry(account.to_owned())
            .or_default()
            .clone();
        let guard = slot.lock_owned().await;
        AccountGuard {
            locks: self,
            key: account.to_owned(),
            guard: Some(guard),
        }
    }

    /// Accounts with an attempt in flight.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for AccountGuard<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut slots = self.locks.slots.lock();
        // Strong count 1: only the table holds it, nobody waits.
        if slots
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serialises_one_account_and_cleans_up() {
        let locks = Arc::new(AccountLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (locks, inside, max_seen) = (locks.clone(), inside.clone(), max_seen.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("u_1").await;
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(n, Ordering::SeqCst);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.expect("join");
        }
        assert_eq!(max_seen.load(Ordering::SeqCst), 1);
        assert!(locks.is_empty());
    }
}
