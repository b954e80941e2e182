//! The store's record of damage it met: WAL records skipped at replay,
//! segments that cannot be opened or read, rollup sections recomputed.
//! `/health` lists it and `/metrics` counts it per kind; it lives as long
//! as the open store (a restart finds what is still on disk again).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use parking_lot::Mutex;

/// What kind of thing is damaged (the `kind` of `/health` and `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DamageKind {
    /// A WAL record that failed its checksum (its events are lost), or a
    /// quarantined copy of a WAL file that held one.
    WalRecord,
    /// A segment that cannot be opened, or one of its blocks.
    Segment,
    /// A segment's rollup section (derived data: answers are recomputed
    /// from the column blocks and stay complete).
    Rollups,
}

impl DamageKind {
    pub const ALL: [DamageKind; 3] = [
        DamageKind::WalRecord,
        DamageKind::Segment,
        DamageKind::Rollups,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DamageKind::WalRecord => "wal_record",
            DamageKind::Segment => "segment",
            DamageKind::Rollups => "rollups",
        }
    }
}

/// One damaged item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageItem {
    pub kind: DamageKind,
    /// The damaged file.
    pub path: String,
    pub detail: String,
    /// When the store first met it.
    pub since: SystemTime,
}

/// Most items kept: a disk that is failing everywhere would otherwise grow
/// this list (and every `/health` answer) without bound. The per-kind
/// counts keep counting past it.
pub const MAX_DAMAGE_ITEMS: usize = 1000;

#[derive(Debug, Default)]
pub struct DamageLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    items: Vec<DamageItem>,
    /// Items past `MAX_DAMAGE_ITEMS`, per kind: counted, not listed.
    overflow: [u64; 3],
    /// Per segment id, blocks whose chunks fail their checks: reads skip
    /// them (and say so) instead of failing.
    blocks: HashMap<u64, BTreeSet<usize>>,
    /// Segments whose rollup section fails: queries read their rows.
    rollups: HashSet<u64>,
    /// Bumped whenever a block or rollup section is added, so a read that
    /// failed can tell whether retrying without it makes progress.
    generation: u64,
}

impl DamageLog {
    /// Records an item unless the same (kind, path, detail) is known.
    /// Returns whether it was new.
    pub fn add(&self, kind: DamageKind, path: &Path, detail: impl Into<String>) -> bool {
        let path = path.display().to_string();
        let detail = detail.into();
        let mut g = self.inner.lock();
        if g.items
            .iter()
            .any(|i| i.kind == kind && i.path == path && i.detail == detail)
        {
            return false;
        }
        if g.items.len() >= MAX_DAMAGE_ITEMS {
            g.overflow[kind as usize] += 1;
        } else {
            g.items.push(DamageItem {
                kind,
                path,
                detail,
                since: SystemTime::now(),
            });
        }
        true
    }

    /// Whether anything under `kind` is known for `path`.
    pub fn knows(&self, kind: DamageKind, path: &Path) -> bool {
        let path = path.display().to_string();
        self.inner
            .lock()
            .items
            .iter()
            .any(|i| i.kind == kind && i.path == path)
    }

    pub fn items(&self) -> Vec<DamageItem> {
        self.inner.lock().items.clone()
    }

    /// Items known per kind (every kind listed, zeros included).
    pub fn counts(&self) -> Vec<(DamageKind, u64)> {
        let g = self.inner.lock();
        DamageKind::ALL
            .iter()
            .map(|k| {
                let listed = g.items.iter().filter(|i| i.kind == *k).count() as u64;
                (*k, listed + g.overflow[*k as usize])
            })
            .collect()
    }

    /// Marks a block of segment `id` damaged (and logs it). Returns whether
    /// it was new.
    pub fn add_block(&self, id: u64, path: &Path, block: usize, detail: &str) -> bool {
        let new = self
            .inner
            .lock()
            .blocks
            .entry(id)
            .or_default()
            .insert(block);
        if new {
            self.inner.lock().generation += 1;
            self.add(
                DamageKind::Segment,
                path,
                format!("block {block}: {detail}"),
            );
        }
        new
    }

    /// Marks segment `id`'s rollup section damaged (and logs it).
    pub fn add_rollups(&self, id: u64, path: &Path, detail: &str) -> bool {
        let new = self.inner.lock().rollups.insert(id);
        if new {
            self.inner.lock().generation += 1;
            self.add(DamageKind::Rollups, path, detail.to_owned());
        }
        new
    }

    /// Damaged blocks of segment `id`.
    pub fn blocks_of(&self, id: u64) -> BTreeSet<usize> {
        self.inner
            .lock()
            .blocks
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn rollups_damaged(&self, id: u64) -> bool {
        self.inner.lock().rollups.contains(&id)
    }

    /// Changes whenever a block or rollup section is marked.
    pub fn generation(&self) -> u64 {
        self.inner.lock().generation
    }

    /// Forgets everything about a file that is gone (retention dropped it).
    pub fn forget(&self, id: u64, path: &Path) {
        let path = path.display().to_string();
        let mut g = self.inner.lock();
        g.blocks.remove(&id);
        g.rollups.remove(&id);
        g.items.retain(|i| i.path != path);
    }

    pub fn is_empty(&self) -> bool {
        let g = self.inner.lock();
        g.items.is_empty() && g.overflow.iter().all(|c| *c == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_kept_once_and_counted_per_kind() {
        let log = DamageLog::default();
        assert!(log.is_empty());
        assert!(log.add(DamageKind::WalRecord, Path::new("a.wal"), "offset 16"));
        assert!(!log.add(DamageKind::WalRecord, Path::new("a.wal"), "offset 16"));
        assert!(log.add(DamageKind::Rollups, Path::new("b.seg"), "crc"));
        assert!(log.knows(DamageKind::Rollups, Path::new("b.seg")));
        assert!(!log.knows(DamageKind::Segment, Path::new("b.seg")));
        assert_eq!(log.items().len(), 2);
        let counts = log.counts();
        assert_eq!(counts[0], (DamageKind::WalRecord, 1));
        assert_eq!(counts[1], (DamageKind::Segment, 0));
        assert_eq!(counts[2], (DamageKind::Rollups, 1));
    }
}
