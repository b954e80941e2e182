//! Reading the WAL back: replay on open (apply every intact record not
//! sealed, skip damaged ones, cut only a torn tail) and the read-only check
//! used by `verify`.
//!
//! A file with damage (anything beyond a torn last write) is copied to
//! `<dir>/quarantine/` before anything in it is changed, so the evidence
//! outlives the trimming of the file.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::WAL_HEADER_BYTES;
use super::record::{Decoded, RecordHead, WalRecord};
use super::scan::{Damaged, FileScan, scan_file};
use super::writer::{WalFile, sync_dir};
use crate::error::{Result, StorageError};
use crate::paths;
use crate::types::TenantId;

/// A damaged stretch of a WAL file met by replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalDamage {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub detail: String,
    /// The tenant the damaged record claims (`scan::claimed_tenant`).
    pub tenant: Option<TenantId>,
    /// Where the file was copied before it was changed (if it was).
    pub quarantined: Option<PathBuf>,
}

/// What replay found.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    pub files: Vec<WalFile>,
    /// Largest LSN seen in any intact record, or readable in a damaged
    /// one's header (0 if none).
    pub max_lsn: u64,
    /// One past the largest sequence number any record used (intact, or
    /// readable in a damaged one's header).
    pub next_seq: u64,
    /// Records handed to `apply`.
    pub applied: u64,
    /// Every damaged stretch skipped or cut.
    pub damage: Vec<WalDamage>,
}

/// The WAL files in `dir/wal`, oldest first.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let wal_dir = paths::wal_dir(dir);
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&wal_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StorageError::io(&wal_dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| StorageError::io(&wal_dir, e))?;
        let name = entry.file_name();
        if let Some(lsn) = name.to_str().and_then(paths::parse_wal_file_name) {
            out.push((lsn, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Replays every WAL file under `dir`: `apply` gets each intact record but
/// those `sealed` selects, which are only checksummed, not decoded.
/// Damaged records are skipped and reported; a torn tail is cut off; a
/// damaged file is quarantined first.
pub fn replay(
    dir: &Path,
    sealed: impl Fn(&RecordHead) -> bool,
    mut apply: impl FnMut(WalRecord) -> Result<()>,
) -> Result<ReplayOutcome> {
    let mut out = ReplayOutcome::default();
    let mut last_lsn = 0u64;
    for (first_lsn, path) in list_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        let mut tenant_max: HashMap<TenantId, u64> = HashMap::new();
        let mut next_seq = out.next_seq;
        let scan = scan_file(&path, &bytes, &mut last_lsn, out.next_seq, &sealed, |rec| {
            out.max_lsn = out.max_lsn.max(rec.lsn().0);
            next_seq = next_seq.max(rec.end_seq());
            tenant_max.insert(rec.tenant().clone(), rec.lsn().0);
            match rec {
                Decoded::Record(rec) => {
                    out.applied += 1;
                    apply(rec)
                }
                Decoded::Skipped(_) => Ok(()),
            }
        })?;
        out.next_seq = next_seq.max(scan.hint_next_seq);
        out.max_lsn = out.max_lsn.max(scan.hint_lsn);
        // A hinted LSN is never issued again, and later records must be
        // above it anyway to be in order.
        last_lsn = last_lsn.max(scan.hint_lsn);
        let quarantined = if scan.is_damaged() {
            Some(quarantine(dir, &path, &bytes)?)
        } else {
            None
        };
        report_damage(&path, &scan, quarantined.as_ref(), &mut out.damage);
        let mut len = bytes.len() as u64;
        if let Some(tail) = &scan.tail {
            tracing::warn!(path = %path.display(), offset = tail.offset, detail = %tail.detail,
                torn_write = scan.tail_is_torn_write,
                "WAL file ends without an intact record; cutting the tail off");
            if tail.offset < WAL_HEADER_BYTES || (scan.records == 0 && !scan.damaged.is_empty()) {
                // Nothing intact in the file (and a copy in quarantine if it
                // was more than a torn creation).
                remove_wal_file(&path)?;
                continue;
            }
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| StorageError::io(&path, e))?;
            f.set_len(tail.offset as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| StorageError::io(&path, e))?;
            len = tail.offset as u64;
        }
        out.files.push(WalFile {
            first_lsn,
            path,
            bytes: len,
            tenant_max,
        });
    }
    Ok(out)
}

fn report_damage(
    path: &Path,
    scan: &FileScan,
    quarantined: Option<&PathBuf>,
    out: &mut Vec<WalDamage>,
) {
    let tail = scan.tail.iter().filter(|_| !scan.tail_is_torn_write);
    for d in scan.damaged.iter().chain(tail) {
        tracing::error!(path = %path.display(), offset = d.offset, len = d.len, detail = %d.detail,
            "damaged WAL record skipped; the events it held are lost");
        out.push(WalDamage {
            path: path.to_path_buf(),
            offset: d.offset as u64,
            len: d.len as u64,
            detail: d.detail.clone(),
            tenant: d.tenant.clone(),
            quarantined: quarantined.cloned(),
        });
    }
}

fn remove_wal_file(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Copies a damaged WAL file's bytes to `<dir>/quarantine/<name>` (a copy
/// already there with the same bytes is kept as is), synced.
fn quarantine(dir: &Path, path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let qdir = paths::quarantine_dir(dir);
    crate::store::ensure_dir(&qdir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unnamed.wal".into());
    let mut target = qdir.join(&name);
    let mut n = 1u32;
    while target.exists() {
        if std::fs::read(&target).is_ok_and(|b| b == bytes) {
            return Ok(target);
        }
        target = qdir.join(format!("{name}.{n}"));
        n += 1;
    }
    let tmp = target.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &target))
        .map_err(|e| StorageError::io(&target, e))?;
    sync_dir(&qdir)?;
    tracing::warn!(path = %path.display(), copy = %target.display(), "damaged WAL file quarantined");
    Ok(target)
}

/// What `verify_wal` found.
#[derive(Debug, Default)]
pub struct WalCheck {
    pub files: u64,
    pub records: u64,
    /// One line per damaged stretch, naming file and offset.
    pub problems: Vec<String>,
}

/// Read-only check of every WAL record, then of the quarantine. A torn last
/// write at the end of the newest file is what a crash leaves behind (it was
/// never acknowledged) and is not a problem; every other damaged stretch is
/// one. Files in `quarantine/` are damage kept for review: each is listed
/// until an operator removes it.
pub fn verify_wal(dir: &Path) -> Result<WalCheck> {
    let files = list_files(dir)?;
    let n = files.len();
    let mut out = WalCheck {
        files: n as u64,
        ..WalCheck::default()
    };
    let mut last_lsn = 0u64;
    let mut next_seq = 0u64;
    for (i, (_, path)) in files.into_iter().enumerate() {
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        let scan = match scan_file(
            &path,
            &bytes,
            &mut last_lsn,
            next_seq,
            |_| false,
            |r| {
                next_seq = next_seq.max(r.end_seq());
                Ok(())
            },
        ) {
            Ok(s) => s,
            Err(e) => {
                out.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        last_lsn = last_lsn.max(scan.hint_lsn);
        out.records += scan.records;
        let newest = i + 1 == n;
        let tail = scan
            .tail
            .iter()
            .filter(|_| !(newest && scan.tail_is_torn_write));
        for d in scan.damaged.iter().chain(tail) {
            out.problems.push(describe(&path, d));
        }
    }
    for q in quarantined_files(dir)? {
        out.problems.push(format!(
            "{}: damaged file kept in quarantine for review (remove it once reviewed)",
            q.display()
        ));
    }
    Ok(out)
}

fn describe(path: &Path, d: &Damaged) -> String {
    format!(
        "{}: damaged WAL record(s) at offset {} ({} bytes): {}",
        path.display(),
        d.offset,
        d.len,
        d.detail
    )
}

/// The damaged stretches of a WAL file (a quarantined copy), without
/// changing it.
pub fn damaged_records(path: &Path) -> Result<Vec<Damaged>> {
    let bytes = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
    let mut last_lsn = 0;
    let scan = scan_file(path, &bytes, &mut last_lsn, 0, |_| true, |_| Ok(()))?;
    let tail = scan.tail.filter(|_| !scan.tail_is_torn_write);
    Ok(scan.damaged.into_iter().chain(tail).collect())
}

/// Files in `<dir>/quarantine/` (not the `.tmp` of an interrupted copy).
pub fn quarantined_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let qdir = paths::quarantine_dir(dir);
    let rd = match std::fs::read_dir(&qdir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(&qdir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let p = entry.map_err(|e| StorageError::io(&qdir, e))?.path();
        if p.is_file() && !paths::is_tmp(&p) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
