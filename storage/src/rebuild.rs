//! Rebuilding a missing or unreadable catalog from what the segment files
//! say about themselves (`pulsestream check --rebuild-catalog`).
//!
//! The catalog is the source of truth while it exists; when it is gone the
//! segment footers are: each names its id, tenant, partition, rows, time and
//! sequence ranges, and (format version 2) its compaction level and the
//! tenant's sealed-through LSN when it was written. Nothing is deleted
//! here: an unreadable catalog is moved aside, a segment that cannot be
//! opened or that a compaction output fully contains (the crash left both)
//! is moved to `<dir>/quarantine/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, Change, SegmentMeta, TenantMeta};
use crate::column::{Column, ColumnKey};
use crate::error::{Result, StorageError};
use crate::paths;
use crate::scan::ScanUnit;
use crate::segment::{SegmentFacts, SegmentReader};
use crate::types::{SegmentId, TenantId};
use crate::wal;

/// What a rebuild did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    pub segments: u64,
    pub tenants: u64,
    /// Where an unreadable catalog was moved.
    pub moved_aside: Option<PathBuf>,
    /// Files moved to the quarantine, with why.
    pub quarantined: Vec<(PathBuf, String)>,
    /// Tenants whose sealed-through LSN came (also) from matching the WAL
    /// against their segments' sequence numbers (version-1 segments).
    pub from_wal: Vec<TenantId>,
}

struct Found {
    facts: SegmentFacts,
    rel: String,
    path: PathBuf,
    bytes: u64,
}

/// Rebuilds `<dir>/catalog.redb`. Fails, changing nothing, when the data
/// directory is in use or the catalog is there and readable.
pub fn rebuild_catalog(dir: &Path) -> Result<RebuildReport> {
    let _lock = crate::store::lock_dir(dir)?;
    let cat_path = paths::catalog_file(dir);
    let mut report = RebuildReport::default();
    if cat_path.exists() {
        match crate::catalog::load_read_only(&cat_path) {
            Ok(_) => {
                return Err(StorageError::invalid(
                    "catalog",
                    format!(
                        "{} is readable; nothing to rebuild (move it away first to rebuild anyway)",
                        cat_path.display()
                    ),
                ));
            }
            Err(e) => {
                let aside = free_name(dir, "catalog.redb.unreadable");
                std::fs::rename(&cat_path, &aside).map_err(|e| StorageError::io(&cat_path, e))?;
                tracing::warn!(error = %e, moved_to = %aside.display(), "unreadable catalog moved aside");
                report.moved_aside = Some(aside);
            }
        }
    }
    let mut found = Vec::new();
    for path in segment_files(dir)? {
        match read_facts(dir, &path) {
            Ok(f) => found.push(f),
            Err(e) => {
                let to = quarantine_segment(dir, &path)?;
                report
                    .quarantined
                    .push((to, format!("{}: cannot be opened: {e}", path.display())));
            }
        }
    }
    let mut dropped = HashSet::new();
    for (i, why) in redundant(&found)? {
        let to = quarantine_segment(dir, &found[i].path)?;
        report.quarantined.push((to, why));
        dropped.insert(i);
    }
    let kept: Vec<&Found> = found
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, f)| f)
        .collect();

    let mut tenants: BTreeMap<TenantId, TenantMeta> = BTreeMap::new();
    let mut max_seq: HashMap<TenantId, u64> = HashMap::new();
    let mut has_v1: HashSet<TenantId> = HashSet::new();
    for f in &kept {
        let t = f.facts.tenant.clone();
        let m = tenants.entry(t.clone()).or_default();
        match f.facts.provenance {
            Some(p) => m.sealed_through = m.sealed_through.max(p.sealed_through),
            None => {
                has_v1.insert(t.clone());
            }
        }
        let s = max_seq.entry(t).or_default();
        *s = (*s).max(f.facts.max_seq);
    }
    // A tenant's sealed records are a prefix of its records by LSN, and
    // sequence numbers grow with LSN: a record whose first sequence number
    // is at most the largest one in the tenant's segments is sealed. This is
    // what version-1 footers (no sealed-through LSN) are rebuilt from.
    let mut wal_seq_max = 0u64;
    let mut wal_lsn_max = 0u64;
    let mut last = 0u64;
    for (_, path) in wal::replay::list_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        // Only the records' heads matter here: no event is decoded.
        let scan = wal::scan::scan_file(
            &path,
            &bytes,
            &mut last,
            wal_seq_max,
            |_| true,
            |rec| {
                wal_seq_max = wal_seq_max.max(rec.end_seq());
                wal_lsn_max = wal_lsn_max.max(rec.lsn().0);
                let tenant = rec.tenant();
                if let Some(&top) = max_seq.get(tenant)
                    && rec.first_seq() <= top
                    && let Some(m) = tenants.get_mut(tenant)
                    && rec.lsn().0 > m.sealed_through
                {
                    m.sealed_through = rec.lsn().0;
                    if has_v1.contains(tenant) && !report.from_wal.contains(tenant) {
                        report.from_wal.push(tenant.clone());
                    }
                }
                Ok(())
            },
        );
        if let Err(e) = scan {
            tracing::warn!(path = %path.display(), error = %e, "WAL file not readable while rebuilding");
        }
    }

    let metas: Vec<SegmentMeta> = kept
        .iter()
        .map(|f| SegmentMeta {
            id: f.facts.segment_id,
            tenant: f.facts.tenant.as_str().to_owned(),
            partition: f.facts.partition,
            file: f.rel.clone(),
            rows: f.facts.rows,
            min_ts: f.facts.min_ts,
            max_ts: f.facts.max_ts,
            min_seq: f.facts.min_seq,
            max_seq: f.facts.max_seq,
            bytes: f.bytes,
            level: f.facts.provenance.map_or(0, |p| p.level),
        })
        .collect();
    let change = Change {
        next_segment_id: metas.iter().map(|m| m.id + 1).max().unwrap_or(1),
        next_seq: metas
            .iter()
            .map(|m| m.max_seq + 1)
            .max()
            .unwrap_or(1)
            .max(wal_seq_max),
        next_lsn: tenants
            .values()
            .map(|m| m.sealed_through + 1)
            .max()
            .unwrap_or(1)
            .max(wal_lsn_max + 1),
        add: metas,
        remove: Vec::new(),
        tenants: tenants.into_iter().collect(),
    };
    report.segments = change.add.len() as u64;
    report.tenants = change.tenants.len() as u64;
    // Built under another name and renamed, so a crash midway leaves no
    // half-filled catalog that `serve` would trust.
    let building = dir.join(format!("{}.rebuilding", paths::CATALOG_FILE));
    let _ = std::fs::remove_file(&building);
    {
        let cat = Catalog::open(&building)?;
        cat.commit(&change)?;
    }
    std::fs::rename(&building, &cat_path).map_err(|e| StorageError::io(&cat_path, e))?;
    wal::writer::sync_dir(dir)?;
    Ok(report)
}

fn read_facts(dir: &Path, path: &Path) -> Result<Found> {
    let name_id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| StorageError::invalid("segment file name", path.display().to_string()))?;
    let reader = SegmentReader::open(path, SegmentId(name_id))?;
    let facts = reader.facts();
    if facts.segment_id != name_id {
        return Err(StorageError::corrupted(
            "segment footer",
            path.display().to_string(),
            format!(
                "names segment {} but the file is {name_id}",
                facts.segment_id
            ),
        ));
    }
    let rel = path
        .strip_prefix(dir)
        .map_err(|_| StorageError::invalid("segment path", path.display().to_string()))?
        .to_string_lossy()
        .into_owned();
    let bytes = std::fs::metadata(path)
        .map_err(|e| StorageError::io(path, e))?
        .len();
    Ok(Found {
        facts,
        rel,
        path: path.to_path_buf(),
        bytes,
    })
}

/// Segments whose every row is also in another segment of the same tenant
/// and partition (a compaction's inputs next to its output: the crash came
/// between writing the output and removing them). Judged on the sequence
/// numbers themselves, not on ranges, since a partition's segments from
/// different seals interleave.
fn redundant(found: &[Found]) -> Result<Vec<(usize, String)>> {
    let mut groups: BTreeMap<(&str, i64), Vec<usize>> = BTreeMap::new();
    for (i, f) in found.iter().enumerate() {
        groups
            .entry((f.facts.tenant.as_str(), f.facts.partition))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        let mut seqs: HashMap<usize, HashSet<i64>> = HashMap::new();
        for &i in members {
            seqs.insert(i, seq_set(&found[i].path, found[i].facts.segment_id)?);
        }
        for &b in members {
            let container = members.iter().copied().find(|&a| {
                a != b
                    && (found[a].facts.rows > found[b].facts.rows
                        || (found[a].facts.rows == found[b].facts.rows
                            && found[a].facts.segment_id > found[b].facts.segment_id))
                    && seqs[&b].is_subset(&seqs[&a])
            });
            if let Some(a) = container {
                out.push((
                    b,
                    format!(
                        "{}: every row is also in {} (a compaction's input)",
                        found[b].rel, found[a].rel
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn seq_set(path: &Path, id: u64) -> Result<HashSet<i64>> {
    let r = SegmentReader::open(path, SegmentId(id))?;
    let mut out = HashSet::new();
    for b in 0..r.block_count() {
        let set = r.read(b, &[ColumnKey::Seq])?;
        if let Some(Column::Int(v)) = set.get(&ColumnKey::Seq) {
            out.extend(v.iter().copied());
        }
    }
    Ok(out)
}

/// Every `.seg` file under `<dir>/tenants/<tenant>/<partition>/`.
pub(crate) fn segment_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for tenant in crate::store::read_dir_paths(&paths::tenants_dir(dir))? {
        if !tenant.is_dir() {
            continue;
        }
        for part in crate::store::read_dir_paths(&tenant)? {
            if !part.is_dir() {
                continue;
            }
            for f in crate::store::read_dir_paths(&part)? {
                if paths::is_segment(&f) {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A name in `dir` that does not exist yet: `base`, else `base.1`, ...
fn free_name(dir: &Path, base: &str) -> PathBuf {
    let mut p = dir.join(base);
    let mut n = 1u32;
    while p.exists() {
        p = dir.join(format!("{base}.{n}"));
        n += 1;
    }
    p
}

/// Moves a segment file into the quarantine (named after its relative path).
fn quarantine_segment(dir: &Path, path: &Path) -> Result<PathBuf> {
    let qdir = paths::quarantine_dir(dir);
    crate::store::ensure_dir(&qdir)?;
    let flat = path
        .strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('/', "_");
    let to = free_name(&qdir, &flat);
    std::fs::rename(path, &to).map_err(|e| StorageError::io(path, e))?;
    wal::writer::sync_dir(&qdir)?;
    tracing::warn!(from = %path.display(), to = %to.display(), "segment moved to quarantine");
    Ok(to)
}
