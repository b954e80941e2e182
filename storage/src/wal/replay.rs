//! Reading the WAL back: replay on open (apply what is not sealed, cut off a
//! torn or damaged tail) and the read-only check used by `verify`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::record::{WalRecord, decode_record};
use super::writer::{WalFile, sync_dir};
use super::{WAL_HEADER_BYTES, WAL_MAGIC, WAL_VERSION};
use crate::error::{Result, StorageError};
use crate::paths;

/// What replay found.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    pub files: Vec<WalFile>,
    /// Largest LSN seen in any intact record (0 if none).
    pub max_lsn: u64,
    /// One past the largest sequence number any intact record used.
    pub next_seq: u64,
    /// Records handed to `apply`.
    pub applied: u64,
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

/// How far a file's bytes hold intact records.
struct Scan {
    /// Offset just past the last intact record.
    good_len: usize,
    /// Why reading stopped early, if it did.
    damage: Option<String>,
}

/// Walks the records of one file's bytes, calling `f` for each intact one.
fn scan_file(
    path: &Path,
    bytes: &[u8],
    last_lsn: &mut u64,
    mut f: impl FnMut(WalRecord) -> Result<()>,
) -> Result<Scan> {
    if bytes.len() < WAL_HEADER_BYTES {
        return Ok(Scan {
            good_len: 0,
            damage: (!bytes.is_empty()).then(|| "truncated file header".to_string()),
        });
    }
    if bytes[..8] != WAL_MAGIC {
        return Ok(Scan {
            good_len: 0,
            damage: Some("bad magic".into()),
        });
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != WAL_VERSION {
        return Err(StorageError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    let mut pos = WAL_HEADER_BYTES;
    while pos < bytes.len() {
        match decode_record(&bytes[pos..]) {
            Ok(Some((rec, used))) => {
                if rec.lsn.0 <= *last_lsn {
                    return Ok(Scan {
                        good_len: pos,
                        damage: Some(format!(
                            "record at offset {pos}: LSN {} not after {}",
                            rec.lsn.0, *last_lsn
                        )),
                    });
                }
                *last_lsn = rec.lsn.0;
                f(rec)?;
                pos += used;
            }
            Ok(None) => {
                return Ok(Scan {
                    good_len: pos,
                    damage: Some(format!("torn record at offset {pos}")),
                });
            }
            Err(e) => {
                return Ok(Scan {
                    good_len: pos,
                    damage: Some(format!("record at offset {pos}: {e}")),
                });
            }
        }
    }
    Ok(Scan {
        good_len: pos,
        damage: None,
    })
}

/// Replays every WAL file under `dir`: `apply` gets each intact record (the
/// caller skips sealed ones). A damaged or torn tail is cut off (and logged);
/// reading continues with the next file, which was started after the damage.
pub fn replay(dir: &Path, mut apply: impl FnMut(WalRecord) -> Result<()>) -> Result<ReplayOutcome> {
    let mut out = ReplayOutcome::default();
    let mut last_lsn = 0u64;
    let files = list_files(dir)?;
    for (first_lsn, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        let mut tenant_max = HashMap::new();
        let scan = scan_file(&path, &bytes, &mut last_lsn, |rec| {
            out.max_lsn = out.max_lsn.max(rec.lsn.0);
            out.next_seq = out.next_seq.max(rec.first_seq + rec.events.len() as u64);
            tenant_max.insert(rec.tenant.clone(), rec.lsn.0);
            out.applied += 1;
            apply(rec)
        })?;
        let mut len = bytes.len() as u64;
        if let Some(damage) = scan.damage {
            tracing::warn!(path = %path.display(), offset = scan.good_len, %damage,
                "WAL tail is torn or damaged; cutting it off (records past it were never acknowledged)");
            if scan.good_len < WAL_HEADER_BYTES {
                std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
                if let Some(parent) = path.parent() {
                    sync_dir(parent)?;
                }
                continue;
            }
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| StorageError::io(&path, e))?;
            f.set_len(scan.good_len as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| StorageError::io(&path, e))?;
            len = scan.good_len as u64;
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

/// Read-only check of every WAL file: returns (files, records, problems).
/// A torn record at the very end of the newest file is what a crash leaves
/// behind (it was never acknowledged) and is not a problem; damage anywhere
/// else is.
pub fn verify_wal(dir: &Path) -> Result<(u64, u64, Vec<String>)> {
    let files = list_files(dir)?;
    let n = files.len();
    let mut records = 0u64;
    let mut problems = Vec::new();
    let mut last_lsn = 0u64;
    for (i, (_, path)) in files.into_iter().enumerate() {
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        let scan = match scan_file(&path, &bytes, &mut last_lsn, |_| {
            records += 1;
            Ok(())
        }) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if let Some(damage) = scan.damage {
            let torn_end = i + 1 == n && damage.starts_with("torn");
            if !torn_end {
                problems.push(format!("{}: {damage}", path.display()));
            }
        }
    }
    Ok((n as u64, records, problems))
}
