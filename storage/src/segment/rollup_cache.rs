//! The decoded rollups of sealed segments, kept within a byte bound.
//!
//! Decoded rollups are large next to the rows they summarise (a segment of
//! a day's backfill over many tenants holds a few hundred routes, each with
//! a latency sketch: ~65 bytes per row in memory, several times the
//! compressed column data), and their number grows with every seal. Each
//! reader used to keep its own for good, so memory grew with the data
//! stored (226 MB of rollups after 3.4 M events over 50 tenants). Now one
//! cache per process holds them, least recently used out first, within
//! `capacity` bytes; a reader keeps only a weak reference, so rollups a
//! query still holds stay shared and evicted ones are decoded again on the
//! next use (a few hundred µs per segment).
//!
//! One cache per process rather than per store: readers are opened by
//! compaction, checks and tests without a store at hand. `Store::open`
//! sets the capacity from its memory budget.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::rollup::Rollups;

/// Capacity until a store sets one: 64 MiB.
pub const DEFAULT_CAPACITY: usize = 64 << 20;

struct Entry {
    rollups: Arc<Rollups>,
    bytes: usize,
    used: u64,
}

struct Inner {
    capacity: usize,
    held: usize,
    tick: u64,
    entries: HashMap<u64, Entry>,
}

/// A byte-bounded LRU of decoded rollups, keyed by reader (`next_key`).
pub struct RollupCache {
    inner: Mutex<Inner>,
}

static GLOBAL: OnceLock<RollupCache> = OnceLock::new();
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The process's cache.
pub fn global() -> &'static RollupCache {
    GLOBAL.get_or_init(|| RollupCache::new(DEFAULT_CAPACITY))
}

/// A key no other reader has.
pub fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

impl RollupCache {
    pub fn new(capacity: usize) -> RollupCache {
        RollupCache {
            inner: Mutex::new(Inner {
                capacity,
                held: 0,
                tick: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// Changes the bound (evicting at once if now over it).
    pub fn set_capacity(&self, capacity: usize) {
        let mut g = self.inner.lock();
        g.capacity = capacity;
        g.evict();
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.inner.lock().held
    }

    /// Marks `key`'s rollups used (it is evicted last).
    pub fn touch(&self, key: u64) {
        let mut g = self.inner.lock();
        g.tick += 1;
        let tick = g.tick;
        if let Some(e) = g.entries.get_mut(&key) {
            e.used = tick;
        }
    }

    /// Keeps `rollups` for `key` (replacing what it had), then evicts the
    /// least recently used entries until within capacity.
    pub fn insert(&self, key: u64, rollups: Arc<Rollups>) {
        let bytes = rollups.heap_bytes();
        let mut g = self.inner.lock();
        g.tick += 1;
        let used = g.tick;
        if let Some(old) = g.entries.insert(
            key,
            Entry {
                rollups,
                bytes,
                used,
            },
        ) {
            g.held -= old.bytes;
        }
        g.held += bytes;
        g.evict();
    }

    /// Forgets `key` (its reader is gone).
    pub fn remove(&self, key: u64) {
        let mut g = self.inner.lock();
        if let Some(old) = g.entries.remove(&key) {
            g.held -= old.bytes;
        }
    }

    #[cfg(test)]
    fn contains(&self, key: u64) -> bool {
        self.inner.lock().entries.contains_key(&key)
    }
}

impl Inner {
    fn evict(&mut self) {
        while self.held > self.capacity {
            // Linear in the entries (thousands at most): eviction happens
            // only on insert, after a decode that costs far more.
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
            else {
                return;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.held -= e.bytes;
                drop(e.rollups);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::{MinuteKey, RollupAgg};
    use crate::types::Micros;

    fn rollups(n: usize) -> Arc<Rollups> {
        Arc::new(Rollups {
            by_minute: (0..n)
                .map(|i| {
                    let mut agg = RollupAgg::default();
                    agg.add(Some(1.0 + i as f64), false);
                    let key = MinuteKey {
                        minute: Micros(i as i64 * Micros::MINUTE),
                        service: Some(format!("svc{i}")),
                        event_type: "api_call".into(),
                        status_class: 2,
                    };
                    (key, agg)
                })
                .collect(),
            by_route: Vec::new(),
        })
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bound_holds() {
        let one = rollups(100).heap_bytes();
        let cache = RollupCache::new(3 * one + one / 2);
        for k in 1..=3 {
            cache.insert(k, rollups(100));
        }
        assert_eq!(cache.held(), 3 * one);
        cache.touch(1);
        cache.insert(4, rollups(100));
        assert!(cache.held() <= 3 * one + one / 2);
        assert!(!cache.contains(2), "2 was the least recently used");
        assert!(cache.contains(1) && cache.contains(3) && cache.contains(4));
        cache.remove(3);
        assert_eq!(cache.held(), 2 * one);
        cache.set_capacity(one);
        assert_eq!(cache.held(), one);
        assert!(cache.contains(4), "the newest stays");
    }

    #[test]
    fn an_evicted_entry_stays_alive_while_someone_holds_it() {
        let cache = RollupCache::new(0);
        let r = rollups(10);
        cache.insert(1, r.clone());
        assert_eq!(cache.held(), 0, "over capacity: evicted at once");
        assert_eq!(
            Arc::strong_count(&r),
            1,
            "the caller's copy is all that is left"
        );
    }
}
