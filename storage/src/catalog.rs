//! The catalog: the store's source of truth for what is sealed.
//!
//! One redb database, `<dir>/catalog.redb`, three tables:
//! ```text
//! segments: u64 (segment id) -> rkyv(SegmentMeta)
//! tenants:  &str (tenant id) -> rkyv(TenantMeta)   sealed-through LSN per tenant
//! meta:     &str             -> u64                next_segment_id, next_seq, next_lsn
//! ```
//! Values are rkyv archives, read with validation after being copied into an
//! aligned buffer (redb gives no alignment guarantee).
//!
//! Invariants:
//! - A segment file is recorded here only after it was fsynced and renamed
//!   into place; a `.seg` file not recorded here is a leftover of a crash and
//!   is removed on open.
//! - A seal records its segments and the tenant's new sealed-through LSN in
//!   one transaction (redb commits are durable): replay skips exactly the
//!   tenant's records with LSN <= sealed-through, so a crash either side of
//!   the commit neither loses nor duplicates rows.
//! - `next_seq` / `next_lsn` are high-water marks written with every commit,
//!   so sequence numbers never repeat even when the WAL files that held the
//!   largest ones were trimmed and the segments holding them were dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use rkyv::rancor;

use crate::error::{Result, StorageError};
use crate::types::{Micros, PartitionStart, SegmentId, TenantId};

const SEGMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("segments");
const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const NEXT_SEGMENT_ID: &str = "next_segment_id";
const NEXT_SEQ: &str = "next_seq";
const NEXT_LSN: &str = "next_lsn";

/// One sealed segment as the catalog records it.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SegmentMeta {
    pub id: u64,
    pub tenant: String,
    /// Partition start, micros.
    pub partition: i64,
    /// Path relative to the data directory.
    pub file: String,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub bytes: u64,
    /// 0 for a sealed active segment; compaction output is one more than its
    /// highest input.
    pub level: u32,
}

impl SegmentMeta {
    pub fn segment_id(&self) -> SegmentId {
        SegmentId(self.id)
    }
    pub fn partition_start(&self) -> PartitionStart {
        PartitionStart(Micros(self.partition))
    }
    pub fn tenant_id(&self) -> Option<TenantId> {
        TenantId::new(&self.tenant)
    }
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.file)
    }
}

/// Per-tenant durable state.
#[derive(
    Debug, Clone, Copy, PartialEq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct TenantMeta {
    /// Every WAL record of the tenant with LSN <= this is in a segment (or
    /// was dropped); replay skips them.
    pub sealed_through: u64,
}

/// Everything the catalog holds, loaded at open.
#[derive(Debug, Default)]
pub struct CatalogState {
    pub segments: Vec<SegmentMeta>,
    pub tenants: HashMap<TenantId, TenantMeta>,
    pub next_segment_id: u64,
    pub next_seq: u64,
    pub next_lsn: u64,
}

/// One atomic change.
#[derive(Debug, Default)]
pub struct Change {
    pub add: Vec<SegmentMeta>,
    pub remove: Vec<u64>,
    pub tenants: Vec<(TenantId, TenantMeta)>,
    /// High-water marks; stored as the max of old and new.
    pub next_segment_id: u64,
    pub next_seq: u64,
    pub next_lsn: u64,
}

pub struct Catalog {
    db: redb::Database,
    path: PathBuf,
}

fn err(path: &Path, e: impl Into<redb::Error>) -> StorageError {
    match e.into() {
        redb::Error::Io(io) => StorageError::io(path, io),
        redb::Error::DatabaseAlreadyOpen => StorageError::Locked(path.to_path_buf()),
        other => StorageError::Catalog(other.to_string()),
    }
}

fn encode<T>(v: &T) -> Result<Vec<u8>>
where
    T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                rkyv::util::AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rancor::Error,
            >,
        >,
{
    rkyv::to_bytes::<rancor::Error>(v)
        .map(|b| b.to_vec())
        .map_err(|e| StorageError::Catalog(format!("encode: {e}")))
}

fn decode_segment(bytes: &[u8], key: u64) -> Result<SegmentMeta> {
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(bytes);
    let archived =
        rkyv::access::<rkyv::Archived<SegmentMeta>, rancor::Error>(&aligned).map_err(|e| {
            StorageError::corrupted("catalog entry", format!("segment {key}"), e.to_string())
        })?;
    rkyv::deserialize::<SegmentMeta, rancor::Error>(archived).map_err(|e| {
        StorageError::corrupted("catalog entry", format!("segment {key}"), e.to_string())
    })
}

fn decode_tenant(bytes: &[u8], key: &str) -> Result<TenantMeta> {
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(bytes);
    let archived =
        rkyv::access::<rkyv::Archived<TenantMeta>, rancor::Error>(&aligned).map_err(|e| {
            StorageError::corrupted("catalog entry", format!("tenant {key}"), e.to_string())
        })?;
    Ok(TenantMeta {
        sealed_through: archived.sealed_through.to_native(),
    })
}

impl Catalog {
    /// Opens or creates `path`.
    pub fn open(path: &Path) -> Result<Catalog> {
        let db = redb::Database::create(path).map_err(|e| err(path, e))?;
        let cat = Catalog {
            db,
            path: path.to_path_buf(),
        };
        // Create the tables so that readers never meet a missing table.
        let txn = cat.db.begin_write().map_err(|e| err(path, e))?;
        {
            txn.open_table(SEGMENTS).map_err(|e| err(path, e))?;
            txn.open_table(TENANTS).map_err(|e| err(path, e))?;
            txn.open_table(META).map_err(|e| err(path, e))?;
        }
        txn.commit().map_err(|e| err(path, e))?;
        Ok(cat)
    }

    /// Reads everything.
    pub fn load(&self) -> Result<CatalogState> {
        load_from(&self.db, &self.path)
    }

    /// Applies `change` in one durable transaction.
    pub fn commit(&self, change: &Change) -> Result<()> {
        let p = &self.path;
        let txn = self.db.begin_write().map_err(|e| err(p, e))?;
        {
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| err(p, e))?;
            for id in &change.remove {
                segs.remove(*id).map_err(|e| err(p, e))?;
            }
            for s in &change.add {
                let bytes = encode(s)?;
                segs.insert(s.id, bytes.as_slice()).map_err(|e| err(p, e))?;
            }
            let mut tenants = txn.open_table(TENANTS).map_err(|e| err(p, e))?;
            for (t, m) in &change.tenants {
                // Sealed-through only moves forward: a lower value would
                // make replay apply records that are already sealed.
                let old = match tenants.get(t.as_str()).map_err(|e| err(p, e))? {
                    Some(g) => decode_tenant(g.value(), t.as_str())?.sealed_through,
                    None => 0,
                };
                let m = TenantMeta {
                    sealed_through: m.sealed_through.max(old),
                };
                let bytes = encode(&m)?;
                tenants
                    .insert(t.as_str(), bytes.as_slice())
                    .map_err(|e| err(p, e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| err(p, e))?;
            for (k, v) in [
                (NEXT_SEGMENT_ID, change.next_segment_id),
                (NEXT_SEQ, change.next_seq),
                (NEXT_LSN, change.next_lsn),
            ] {
                let old = meta.get(k).map_err(|e| err(p, e))?.map_or(0, |g| g.value());
                meta.insert(k, old.max(v)).map_err(|e| err(p, e))?;
            }
        }
        txn.commit().map_err(|e| err(p, e))
    }
}

fn load_from(db: &impl ReadableDatabase, p: &Path) -> Result<CatalogState> {
    let txn = db.begin_read().map_err(|e| err(p, e))?;
    let mut out = CatalogState::default();
    let segs = txn.open_table(SEGMENTS).map_err(|e| err(p, e))?;
    for item in segs.iter().map_err(|e| err(p, e))? {
        let (k, v) = item.map_err(|e| err(p, e))?;
        out.segments.push(decode_segment(v.value(), k.value())?);
    }
    let tenants = txn.open_table(TENANTS).map_err(|e| err(p, e))?;
    for item in tenants.iter().map_err(|e| err(p, e))? {
        let (k, v) = item.map_err(|e| err(p, e))?;
        let name = k.value();
        let t = TenantId::new(name).ok_or_else(|| {
            StorageError::corrupted(
                "catalog entry",
                format!("tenant {name:?}"),
                "not a tenant id",
            )
        })?;
        out.tenants.insert(t, decode_tenant(v.value(), name)?);
    }
    let meta = txn.open_table(META).map_err(|e| err(p, e))?;
    let get = |k: &str| -> Result<u64> {
        Ok(meta.get(k).map_err(|e| err(p, e))?.map_or(0, |g| g.value()))
    };
    out.next_segment_id = get(NEXT_SEGMENT_ID)?.max(1);
    out.next_seq = get(NEXT_SEQ)?.max(1);
    out.next_lsn = get(NEXT_LSN)?.max(1);
    for s in &out.segments {
        out.next_segment_id = out.next_segment_id.max(s.id + 1);
        out.next_seq = out.next_seq.max(s.max_seq + 1);
    }
    Ok(out)
}

/// Reads a catalog without opening it for writing (for `verify`).
pub fn load_read_only(path: &Path) -> Result<CatalogState> {
    let db = redb::ReadOnlyDatabase::open(path).map_err(|e| err(path, e))?;
    load_from(&db, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            tenant: "t1".into(),
            partition: 3_600_000_000,
            file: format!("tenants/t1/1970010101/{id:020}.seg"),
            rows: 10,
            min_ts: 3_600_000_001,
            max_ts: 3_600_000_009,
            min_seq: 5,
            max_seq: 14,
            bytes: 999,
            level: 0,
        }
    }

    #[test]
    fn changes_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        let t1 = TenantId::new("t1").unwrap();
        {
            let c = Catalog::open(&path).unwrap();
            c.commit(&Change {
                add: vec![seg(1), seg(2)],
                tenants: vec![(t1.clone(), TenantMeta { sealed_through: 7 })],
                next_segment_id: 3,
                next_seq: 15,
                next_lsn: 8,
                ..Change::default()
            })
            .unwrap();
            c.commit(&Change {
                add: vec![seg(3)],
                remove: vec![1],
                // Lower than stored: ignored.
                tenants: vec![(t1.clone(), TenantMeta { sealed_through: 3 })],
                next_segment_id: 4,
                next_seq: 2, // lower than stored: ignored
                ..Change::default()
            })
            .unwrap();
        }
        let st = Catalog::open(&path).unwrap().load().unwrap();
        let ids: Vec<u64> = st.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![2, 3]);
        assert_eq!(st.segments[0], seg(2));
        assert_eq!(st.tenants[&t1].sealed_through, 7);
        assert_eq!((st.next_segment_id, st.next_seq, st.next_lsn), (4, 15, 8));
        let ro = load_read_only(&path).unwrap();
        assert_eq!(ro.segments.len(), 2);
    }
}
