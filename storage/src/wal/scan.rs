//! Walking one WAL file's bytes: every intact record in order, every damaged
//! stretch between them, and the torn tail (if any) after the last one.
//!
//! A record whose checksum or contents fail is skipped; when its length
//! itself cannot be trusted, reading resynchronises on the next offset where
//! an intact record with a later LSN starts. Only a stretch with no intact
//! record after it is a tail, which replay may cut; anything else stays in
//! the file for `check` and the quarantine copy to show.

use std::path::Path;

use super::record::{
    Decoded, FRAME_HEADER_BYTES, MAX_RECORD_BYTES, RecordHead, decode_record, decode_record_unless,
};
use super::{WAL_HEADER_BYTES, WAL_MAGIC, WAL_VERSION};
use crate::codec::Reader;
use crate::error::{Result, StorageError};
use crate::types::TenantId;

/// How far past the last intact LSN a resynchronisation candidate's LSN may
/// be. LSNs of consecutive records differ by one, so the records a damaged
/// stretch hides are at most its bytes divided by the smallest record (a
/// 64 MiB file of ~30-byte records: ~2 M); 2^24 covers that with room, and
/// rejects almost every random offset before its checksum is computed.
pub const MAX_RESYNC_LSN_GAP: u64 = 1 << 24;

/// Largest sequence-number jump believed from a damaged record's header:
/// one record holds at most `MAX_RECORD_BYTES / 5` events, so anything
/// larger is the damage itself speaking.
const MAX_HINT_SEQ_GAP: u64 = (MAX_RECORD_BYTES / 5) as u64;

/// A stretch of a WAL file that holds no intact record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub offset: usize,
    pub len: usize,
    pub detail: String,
    /// The tenant the damaged record's header names, when it reads as one
    /// (unverified: the checksum failed; see `claimed_tenant`).
    pub tenant: Option<TenantId>,
}

/// What scanning one file found.
#[derive(Debug, Default)]
pub struct FileScan {
    /// Damaged stretches followed by an intact record (or the bad header).
    pub damaged: Vec<Damaged>,
    /// The stretch from here to the end holds no intact record.
    pub tail: Option<Damaged>,
    /// True when `tail` is only an incomplete last frame: what a crash
    /// during a write leaves behind (it was never acknowledged).
    pub tail_is_torn_write: bool,
    /// Largest LSN and one past the largest sequence number readable in the
    /// headers of damaged records (0 if none), so that neither is reissued.
    pub hint_lsn: u64,
    pub hint_next_seq: u64,
    /// Records handed to the callback.
    pub records: u64,
}

impl FileScan {
    /// Whether the file holds damage beyond a torn last write.
    pub fn is_damaged(&self) -> bool {
        !self.damaged.is_empty() || (self.tail.is_some() && !self.tail_is_torn_write)
    }
}

/// Walks the records of one file's bytes, calling `f` for each intact one
/// with an LSN after `*last_lsn` (which it advances); the events of those
/// `skip` selects are not decoded (`Decoded::Skipped`). `next_seq` is the
/// caller's current high-water mark, used to judge damaged headers.
pub fn scan_file(
    path: &Path,
    bytes: &[u8],
    last_lsn: &mut u64,
    next_seq: u64,
    skip: impl Fn(&RecordHead) -> bool,
    mut f: impl FnMut(Decoded) -> Result<()>,
) -> Result<FileScan> {
    let mut out = FileScan::default();
    if bytes.len() < WAL_HEADER_BYTES {
        if !bytes.is_empty() {
            out.tail = Some(Damaged {
                offset: 0,
                len: bytes.len(),
                detail: "truncated file header".into(),
                tenant: None,
            });
            // A file is created with its header in one write and synced
            // before any record goes in: a short one is a torn creation.
            out.tail_is_torn_write = true;
        }
        return Ok(out);
    }
    if bytes[..8] != WAL_MAGIC {
        out.damaged.push(Damaged {
            offset: 0,
            len: WAL_HEADER_BYTES,
            detail: "bad file magic".into(),
            tenant: None,
        });
    } else {
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != WAL_VERSION {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            });
        }
    }
    let mut pos = WAL_HEADER_BYTES;
    let mut seq_mark = next_seq;
    while pos < bytes.len() {
        let why = match decode_record_unless(&bytes[pos..], &skip) {
            Ok(Some((rec, used))) if rec.lsn().0 > *last_lsn => {
                *last_lsn = rec.lsn().0;
                seq_mark = seq_mark.max(rec.end_seq());
                out.records += 1;
                f(rec)?;
                pos += used;
                continue;
            }
            Ok(Some((rec, _))) => format!("LSN {} not after {}", rec.lsn().0, *last_lsn),
            Ok(None) => "incomplete record".to_string(),
            Err(e) => e.to_string(),
        };
        if let Some((lsn, end_seq)) = header_hint(&bytes[pos..], *last_lsn, seq_mark) {
            out.hint_lsn = out.hint_lsn.max(lsn);
            out.hint_next_seq = out.hint_next_seq.max(end_seq);
        }
        match resync(bytes, pos + 1, *last_lsn) {
            Some(next) => {
                out.damaged.push(Damaged {
                    offset: pos,
                    len: next - pos,
                    detail: why,
                    tenant: claimed_tenant(&bytes[pos..]),
                });
                pos = next;
            }
            None => {
                out.tail_is_torn_write = frame_runs_past_end(&bytes[pos..]);
                out.tail = Some(Damaged {
                    offset: pos,
                    len: bytes.len() - pos,
                    detail: why,
                    tenant: claimed_tenant(&bytes[pos..]),
                });
                break;
            }
        }
    }
    Ok(out)
}

/// True when the bytes start a frame whose claimed length is legal but runs
/// past the end: an append cut short by a crash.
fn frame_runs_past_end(bytes: &[u8]) -> bool {
    if bytes.len() < FRAME_HEADER_BYTES {
        return true;
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    (1..=MAX_RECORD_BYTES).contains(&len) && bytes.len() - FRAME_HEADER_BYTES < len
}

/// The first offset at or after `from` where an intact record with an LSN in
/// `(last_lsn, last_lsn + MAX_RESYNC_LSN_GAP]` starts.
fn resync(bytes: &[u8], from: usize, last_lsn: u64) -> Option<usize> {
    let end = bytes.len().checked_sub(FRAME_HEADER_BYTES + 1)?;
    (from..=end).find(|&p| {
        let b = &bytes[p..];
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len == 0 || len > MAX_RECORD_BYTES || len > b.len() - FRAME_HEADER_BYTES {
            return false;
        }
        let mut r = Reader::new(&b[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]);
        let plausible = r
            .uvarint("lsn")
            .is_ok_and(|lsn| lsn > last_lsn && lsn - last_lsn <= MAX_RESYNC_LSN_GAP);
        plausible && matches!(decode_record(b), Ok(Some(_)))
    })
}

/// The tenant a damaged record's header names, when its frame header and
/// first fields read and the name is a valid tenant id. The checksum
/// failed, so this is a claim: callers believe it only for a tenant they
/// know (a flipped byte turning one existing tenant's name into another's
/// is far less likely than into no tenant at all).
pub fn claimed_tenant(bytes: &[u8]) -> Option<TenantId> {
    let mut r = Reader::new(bytes.get(FRAME_HEADER_BYTES..)?);
    r.uvarint("lsn").ok()?;
    TenantId::new(r.str("tenant").ok()?)
}

/// The LSN and one past the last sequence number a damaged record's header
/// claims, when they read and are believable: the LSN after `last_lsn`
/// within the resync window, the sequence numbers not far past `seq_mark`.
fn header_hint(bytes: &[u8], last_lsn: u64, seq_mark: u64) -> Option<(u64, u64)> {
    let payload = bytes.get(FRAME_HEADER_BYTES..)?;
    let mut r = Reader::new(payload);
    let lsn = r.uvarint("lsn").ok()?;
    r.str("tenant").ok()?;
    let first_seq = r.uvarint("first_seq").ok()?;
    let count = r.uvarint("count").ok()?;
    let lsn_ok = lsn > last_lsn && lsn - last_lsn <= MAX_RESYNC_LSN_GAP;
    let end_seq = first_seq.checked_add(count)?;
    let seq_ok = count <= MAX_HINT_SEQ_GAP && end_seq <= seq_mark.saturating_add(MAX_HINT_SEQ_GAP);
    (lsn_ok && seq_ok).then_some((lsn, end_seq))
}
