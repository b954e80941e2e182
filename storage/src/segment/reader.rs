//! Reads a sealed segment for queries.
//!
//! Opening reads only the trailer and footer (checked: bounded sizes, crc,
//! validated archive, structure). Each `read` then fetches just the
//! requested column chunks of one block with positioned reads, checks their
//! crc, decompresses with a bounded output and decodes. Any damage is
//! `Corrupted`, naming the file, block and column; nothing here panics on
//! bad bytes.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::encoding::{self, ENC_ABSENT};
use super::format::{
    self, CODEC_NONE, ChunkRef, DiskStats, Footer, HEADER_LEN, KNOWN_VERSIONS, MAX_FOOTER_BYTES,
    Provenance, TRAILER_LEN, Trailer,
};
use super::rollup_build::decode_rollups;
use super::rollup_cache;
use crate::column::{Column, ColumnKey, ColumnKind, ColumnSet, ColumnStats};
use crate::error::{Result, StorageError};
use crate::rollup::Rollups;
use crate::scan::ScanUnit;
use crate::types::{Micros, SegmentId, TenantId};

/// Where the segment's bytes come from.
enum Source {
    File(File),
    /// The whole file in memory (fuzzing, tests).
    Bytes(Vec<u8>),
}

impl Source {
    fn len(&self, path: &Path) -> Result<u64> {
        match self {
            Source::File(f) => f
                .metadata()
                .map(|m| m.len())
                .map_err(|e| StorageError::io(path, e)),
            Source::Bytes(b) => Ok(b.len() as u64),
        }
    }

    /// Reads exactly `len` bytes at `offset` (callers have bounded both by
    /// the file's length).
    fn read_at(&self, offset: u64, len: usize, path: &Path) -> Result<Vec<u8>> {
        match self {
            Source::File(f) => {
                let mut buf = vec![0u8; len];
                f.read_exact_at(&mut buf, offset)
                    .map_err(|e| StorageError::io(path, e))?;
                Ok(buf)
            }
            Source::Bytes(b) => usize::try_from(offset)
                .ok()
                .and_then(|o| b.get(o..o.checked_add(len)?))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    StorageError::corrupted("segment", path.display().to_string(), "read past end")
                }),
        }
    }
}

/// Where a segment file's bytes go (`SegmentReader::layout`).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentLayout {
    /// Per column: stored bytes over all blocks and the usual encoding.
    pub columns: Vec<(ColumnKey, u64, &'static str)>,
    pub rollups: u64,
    /// Header, footer and trailer.
    pub overhead: u64,
}

/// A checked, decompressed chunk: its encoding and raw bytes.
type RawChunk = (u8, Vec<u8>);

/// An open sealed segment; a `ScanUnit` for the query engine.
pub struct SegmentReader {
    path: PathBuf,
    id: SegmentId,
    tenant: TenantId,
    source: Source,
    footer: Footer,
    /// Column index in the footer by key.
    index: HashMap<ColumnKey, usize>,
    /// Per column, its blocks' statistics merged (the footer keeps only
    /// the blocks': most segments have one block, so storing both would
    /// double that part of the footer).
    seg_stats: Vec<Option<ColumnStats>>,
    /// Per footer column, its distinct values (taken out of `footer`),
    /// packed: a few hundred short strings per column of every open
    /// segment cost ~2.5x their bytes as `String`s.
    distinct: Vec<Option<PackedStrings>>,
    /// Decoded rollups while someone holds them; the process's bounded
    /// cache (`rollup_cache`) holds them between uses, under `cache_key`.
    rollups: Mutex<Weak<Rollups>>,
    cache_key: u64,
    /// From a version-2 footer; `None` for version 1.
    provenance: Option<Provenance>,
}

/// What a segment's footer says about it: enough to list it in a catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFacts {
    pub segment_id: u64,
    pub tenant: TenantId,
    pub partition: i64,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    /// `None` for a version-1 file.
    pub provenance: Option<Provenance>,
}

thread_local! {
    /// One zstd decompression context per thread, reused for every chunk:
    /// creating a context per chunk (it allocates and clears ~100 KB of
    /// tables) was a visible share of a search's time, which reads dozens of
    /// small chunks. `None` until first use, or if creating one failed.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses one zstd frame into at most `raw_len` bytes with the
/// thread's reused context.
fn decompress(stored: &[u8], raw_len: usize) -> std::result::Result<Vec<u8>, String> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        match slot.as_mut() {
            Some(d) => d
                .decompress(stored, raw_len)
                .map_err(|e| format!("decompression failed: {e}")),
            None => Err("BUG: decompression context missing".into()),
        }
    })
}

/// Verifies and decompresses a stored chunk; `raw_len` bounds the output.
fn unpack(stored: &[u8], at: &ChunkRef) -> std::result::Result<Vec<u8>, String> {
    if crc32fast::hash(stored) != at.crc {
        return Err("checksum mismatch".into());
    }
    if at.codec == CODEC_NONE {
        return Ok(stored.to_vec());
    }
    let out = decompress(stored, at.raw_len as usize)?;
    if out.len() != at.raw_len as usize {
        return Err(format!(
            "decompressed to {} bytes, expected {}",
            out.len(),
            at.raw_len
        ));
    }
    Ok(out)
}

impl SegmentReader {
    /// Opens the segment file at `path`.
    pub fn open(path: &Path, id: SegmentId) -> Result<Arc<SegmentReader>> {
        let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
        Self::with_source(path.to_path_buf(), id, Source::File(file)).map(Arc::new)
    }

    /// Opens a segment held in memory (`path` only names it in errors).
    pub fn from_bytes(bytes: Vec<u8>, path: &Path, id: SegmentId) -> Result<Arc<SegmentReader>> {
        Self::with_source(path.to_path_buf(), id, Source::Bytes(bytes)).map(Arc::new)
    }

    fn with_source(path: PathBuf, id: SegmentId, source: Source) -> Result<SegmentReader> {
        let loc = path.display().to_string();
        let len = source.len(&path)?;
        if len < HEADER_LEN + TRAILER_LEN {
            return Err(StorageError::corrupted(
                "segment",
                &loc,
                format!("file of {len} bytes is truncated"),
            ));
        }
        let version = format::parse_header(&source.read_at(0, HEADER_LEN as usize, &path)?, &loc)?;
        if !KNOWN_VERSIONS.contains(&version) {
            return Err(StorageError::UnsupportedVersion { path, version });
        }
        let trailer = Trailer::parse(
            &source.read_at(len - TRAILER_LEN, TRAILER_LEN as usize, &path)?,
            &loc,
        )?;
        if trailer.version != version {
            return Err(StorageError::corrupted(
                "segment trailer",
                &loc,
                "version differs from the header",
            ));
        }
        let footer_start = (len - TRAILER_LEN)
            .checked_sub(u64::from(trailer.footer_len))
            .filter(|&s| s >= HEADER_LEN && trailer.footer_len <= MAX_FOOTER_BYTES)
            .ok_or_else(|| {
                StorageError::corrupted("segment trailer", &loc, "footer length out of bounds")
            })?;
        if trailer.footer_raw_len > MAX_FOOTER_BYTES {
            return Err(StorageError::corrupted(
                "segment trailer",
                &loc,
                "footer length out of bounds",
            ));
        }
        let stored = source.read_at(footer_start, trailer.footer_len as usize, &path)?;
        let at = ChunkRef {
            offset: footer_start,
            len: trailer.footer_len,
            raw_len: trailer.footer_raw_len,
            crc: trailer.footer_crc,
            codec: format::CODEC_ZSTD,
        };
        let raw =
            unpack(&stored, &at).map_err(|d| StorageError::corrupted("segment footer", &loc, d))?;
        let (mut footer, provenance) = format::unarchive_versioned(&raw, version, &loc)?;
        format::check_footer(&footer, footer_start, &loc)?;
        let tenant = TenantId::new(&footer.tenant)
            .ok_or_else(|| StorageError::corrupted("segment footer", &loc, "invalid tenant"))?;
        let index = footer
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| format::tag_to_key(c.tag, &c.name).map(|k| (k, i)))
            .collect();
        let seg_stats = (0..footer.columns.len())
            .map(|c| {
                let mut blocks = footer.blocks.iter().map(|b| &b.chunks[c].stats);
                let first = blocks.next().cloned().unwrap_or(DiskStats::Unknown);
                blocks.fold(first, format::merge_stats).to_stats()
            })
            .collect();
        let distinct = footer
            .columns
            .iter_mut()
            .map(|c| c.distinct.take().map(|v| PackedStrings::new(&v)))
            .collect();
        Ok(SegmentReader {
            path,
            id,
            tenant,
            source,
            footer,
            distinct,
            index,
            seg_stats,
            rollups: Mutex::new(Weak::new()),
            cache_key: rollup_cache::next_key(),
            provenance,
        })
    }

    /// Where the file's bytes go: per column (with the encoding chosen most
    /// often), the rollup section, and the footer with header and trailer.
    pub fn layout(&self) -> SegmentLayout {
        let columns = self
            .footer
            .columns
            .iter()
            .enumerate()
            .filter_map(|(c, meta)| {
                let key = format::tag_to_key(meta.tag, &meta.name)?;
                let mut encodings = [0u64; 16];
                let mut bytes = 0u64;
                for b in &self.footer.blocks {
                    bytes += u64::from(b.chunks[c].at.len);
                    encodings[usize::from(b.chunks[c].encoding).min(15)] += 1;
                }
                let (common, _) = encodings.iter().enumerate().max_by_key(|(_, n)| **n)?;
                Some((key, bytes, encoding::encoding_name(common as u8)))
            })
            .collect();
        let data: u64 = self
            .footer
            .blocks
            .iter()
            .flat_map(|b| &b.chunks)
            .map(|c| u64::from(c.at.len))
            .sum();
        let rollups = self.footer.rollups.as_ref().map_or(0, |r| u64::from(r.len));
        let total = self.source.len(&self.path).unwrap_or(0);
        SegmentLayout {
            columns,
            rollups,
            overhead: total.saturating_sub(data + rollups),
        }
    }

    /// The validated footer (tests look at chunk positions).
    #[cfg(test)]
    pub(crate) fn footer(&self) -> &Footer {
        &self.footer
    }
    pub fn id(&self) -> SegmentId {
        self.id
    }
    /// The footer's summary of the segment.
    pub fn facts(&self) -> SegmentFacts {
        SegmentFacts {
            segment_id: self.footer.segment_id,
            tenant: self.tenant.clone(),
            partition: self.footer.partition,
            rows: self.footer.rows,
            min_ts: self.footer.min_ts,
            max_ts: self.footer.max_ts,
            min_seq: self.footer.min_seq,
            max_seq: self.footer.max_seq,
            provenance: self.provenance,
        }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The segment's time partition.
    pub fn partition(&self) -> crate::types::PartitionStart {
        crate::types::PartitionStart(Micros(self.footer.partition))
    }
    /// Smallest and largest sequence number held.
    pub fn seq_range(&self) -> (u64, u64) {
        (self.footer.min_seq, self.footer.max_seq)
    }
    /// Every column key of the segment (core columns first).
    pub fn column_keys(&self) -> Vec<ColumnKey> {
        self.footer
            .columns
            .iter()
            .filter_map(|c| format::tag_to_key(c.tag, &c.name))
            .collect()
    }

    fn corrupted(
        &self,
        what: &'static str,
        block: usize,
        key: &ColumnKey,
        detail: impl Into<String>,
    ) -> StorageError {
        StorageError::corrupted(
            what,
            format!(
                "segment {} ({}) block {block} column {key:?}",
                self.id.0,
                self.path.display()
            ),
            detail,
        )
    }

    /// Fetches, checks and decompresses one column chunk of one block:
    /// the block's row count and, unless the column is absent there, the
    /// chunk's encoding and raw bytes.
    fn load_chunk(&self, block: usize, key: &ColumnKey) -> Result<(usize, Option<RawChunk>)> {
        let b = self.footer.blocks.get(block).ok_or_else(|| {
            StorageError::invalid("block", format!("{block} of {}", self.footer.blocks.len()))
        })?;
        let rows = b.rows as usize;
        let Some(&c) = self.index.get(key) else {
            return Ok((rows, None));
        };
        let chunk = &b.chunks[c];
        if chunk.encoding == ENC_ABSENT {
            return Ok((rows, None));
        }
        let stored = self
            .source
            .read_at(chunk.at.offset, chunk.at.len as usize, &self.path)?;
        let raw = unpack(&stored, &chunk.at)
            .map_err(|d| self.corrupted("segment chunk", block, key, d))?;
        Ok((rows, Some((chunk.encoding, raw))))
    }

    /// Decodes one column of one block.
    fn read_column(&self, block: usize, key: &ColumnKey, ts: Option<&[i64]>) -> Result<Column> {
        let (rows, chunk) = self.load_chunk(block, key)?;
        let Some((enc, raw)) = chunk else {
            return Ok(Column::nulls(key.kind(), rows));
        };
        encoding::decode_column(key.kind(), enc, &raw, rows, ts)
            .map_err(|e| self.corrupted("segment chunk", block, key, e.to_string()))
    }

    /// Decodes `sel` rows of one column of one block: string chunks decode
    /// only those rows, numeric ones (cheap) decode fully, then gather.
    fn read_column_rows(
        &self,
        block: usize,
        key: &ColumnKey,
        ts: Option<&[i64]>,
        sel: &[u32],
    ) -> Result<Column> {
        if key.kind() != ColumnKind::Str {
            return self.read_column(block, key, ts)?.gather(sel);
        }
        let (rows, chunk) = self.load_chunk(block, key)?;
        let Some((enc, raw)) = chunk else {
            return Ok(Column::nulls(key.kind(), sel.len()));
        };
        encoding::decode_str_rows(enc, &raw, rows, sel)
            .map(Column::Str)
            .map_err(|e| self.corrupted("segment chunk", block, key, e.to_string()))
    }

    /// The block's timestamps when `keys` asks for received_at stored
    /// relative to them (it cannot be decoded without them).
    fn timestamps_for(&self, block: usize, keys: &[ColumnKey]) -> Result<Option<Arc<Column>>> {
        let needs_ts = keys.contains(&ColumnKey::ReceivedAt)
            && self.index.get(&ColumnKey::ReceivedAt).is_some_and(|&c| {
                self.footer.blocks[block].chunks[c].encoding == encoding::ENC_INT_REL_TS
            });
        if !needs_ts {
            return Ok(None);
        }
        Ok(Some(Arc::new(self.read_column(
            block,
            &ColumnKey::Timestamp,
            None,
        )?)))
    }

    /// Rows of `block`, or `Invalid` when there is no such block.
    fn checked_block_rows(&self, block: usize) -> Result<usize> {
        self.footer
            .blocks
            .get(block)
            .map(|b| b.rows as usize)
            .ok_or_else(|| {
                StorageError::invalid("block", format!("{block} of {}", self.footer.blocks.len()))
            })
    }

    /// Reads and decodes the rollup section (no caching); `None` when the
    /// segment has none.
    fn load_rollups(&self) -> Result<Option<Rollups>> {
        let Some(at) = &self.footer.rollups else {
            return Ok(None);
        };
        let loc = format!("segment {} ({}) rollups", self.id.0, self.path.display());
        let stored = self
            .source
            .read_at(at.offset, at.len as usize, &self.path)?;
        let raw =
            unpack(&stored, at).map_err(|d| StorageError::corrupted("segment rollups", &loc, d))?;
        decode_rollups(&raw)
            .map(Some)
            .map_err(|e| StorageError::corrupted("segment rollups", &loc, e.to_string()))
    }

    /// Decodes every chunk and the rollups; returns the blocks checked.
    pub fn verify_all(&self) -> Result<u64> {
        let keys = self.column_keys();
        for block in 0..self.footer.blocks.len() {
            self.read(block, &keys)?;
        }
        self.load_rollups()?;
        Ok(self.footer.blocks.len() as u64)
    }
}

impl ScanUnit for SegmentReader {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn describe(&self) -> String {
        format!(
            "segment {} ({}/{})",
            self.id.0,
            self.tenant,
            self.path
                .parent()
                .and_then(|p| p.file_name())
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        )
    }
    fn time_range(&self) -> (Micros, Micros) {
        (Micros(self.footer.min_ts), Micros(self.footer.max_ts))
    }
    fn rows(&self) -> u64 {
        self.footer.rows
    }
    fn block_count(&self) -> usize {
        self.footer.blocks.len()
    }
    fn block_rows(&self, block: usize) -> usize {
        self.footer.blocks.get(block).map_or(0, |b| b.rows as usize)
    }
    fn block_time_range(&self, block: usize) -> (Micros, Micros) {
        self.footer
            .blocks
            .get(block)
            .map_or((Micros::MAX, Micros::MIN), |b| {
                (Micros(b.min_ts), Micros(b.max_ts))
            })
    }
    fn column_stats(&self, block: Option<usize>, key: &ColumnKey) -> Option<ColumnStats> {
        let Some(&c) = self.index.get(key) else {
            // Never written here: every row is null.
            let rows = block.map_or(self.footer.rows, |b| {
                u64::from(self.footer.blocks.get(b).map_or(0, |b| b.rows))
            });
            return Some(ColumnStats::AllNull { nulls: rows });
        };
        match block {
            None => self.seg_stats.get(c).cloned().flatten(),
            Some(b) => self.footer.blocks.get(b)?.chunks[c].stats.to_stats(),
        }
    }
    fn distinct_strings(&self, key: &ColumnKey) -> Option<Vec<String>> {
        let &c = self.index.get(key)?;
        self.distinct.get(c)?.as_ref().map(PackedStrings::to_vec)
    }
    fn attribute_keys(&self) -> Vec<ColumnKey> {
        self.column_keys()
            .into_iter()
            .skip(ColumnKey::CORE.len())
            .collect()
    }
    fn time_sorted(&self) -> bool {
        true
    }
    fn read(&self, block: usize, keys: &[ColumnKey]) -> Result<ColumnSet> {
        let rows = self.checked_block_rows(block)?;
        // received_at is stored relative to the timestamp, so it may need
        // the block's timestamps too.
        let ts_col = self.timestamps_for(block, keys)?;
        let ts = match ts_col.as_deref() {
            Some(Column::Int(v)) => Some(v.as_slice()),
            _ => None,
        };
        let mut set = ColumnSet {
            rows,
            columns: HashMap::with_capacity(keys.len()),
        };
        for key in keys {
            if set.columns.contains_key(key) {
                continue;
            }
            let col = match (key, &ts_col) {
                (ColumnKey::Timestamp, Some(t)) => t.clone(),
                _ => Arc::new(self.read_column(block, key, ts)?),
            };
            set.columns.insert(key.clone(), col);
        }
        Ok(set)
    }
    fn read_rows(&self, block: usize, keys: &[ColumnKey], rows: &[u32]) -> Result<ColumnSet> {
        let block_rows = self.checked_block_rows(block)?;
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= block_rows) {
            return Err(StorageError::invalid(
                "row",
                format!("{bad} of {block_rows} in block {block}"),
            ));
        }
        let ts_col = self.timestamps_for(block, keys)?;
        let ts = match ts_col.as_deref() {
            Some(Column::Int(v)) => Some(v.as_slice()),
            _ => None,
        };
        let mut set = ColumnSet {
            rows: rows.len(),
            columns: HashMap::with_capacity(keys.len()),
        };
        for key in keys {
            if set.columns.contains_key(key) {
                continue;
            }
            let col = match (key, &ts_col) {
                (ColumnKey::Timestamp, Some(t)) => t.gather(rows)?,
                _ => self.read_column_rows(block, key, ts, rows)?,
            };
            set.columns.insert(key.clone(), Arc::new(col));
        }
        Ok(set)
    }
    fn rollups(&self) -> Result<Option<Arc<Rollups>>> {
        if self.footer.rollups.is_none() {
            return Ok(None);
        }
        let mut cached = self.rollups.lock();
        if let Some(r) = cached.upgrade() {
            rollup_cache::global().touch(self.cache_key);
            return Ok(Some(r));
        }
        let Some(r) = self.load_rollups()?.map(Arc::new) else {
            return Ok(None);
        };
        *cached = Arc::downgrade(&r);
        rollup_cache::global().insert(self.cache_key, r.clone());
        Ok(Some(r))
    }
}

/// Strings in one buffer with their end offsets.
struct PackedStrings {
    bytes: Box<str>,
    ends: Box<[u32]>,
}

impl PackedStrings {
    fn new(values: &[String]) -> PackedStrings {
        let mut bytes = String::with_capacity(values.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(values.len());
        for v in values {
            bytes.push_str(v);
            // A footer is at most MAX_FOOTER_BYTES, far below 4 GiB.
            ends.push(bytes.len() as u32);
        }
        PackedStrings {
            bytes: bytes.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    fn to_vec(&self) -> Vec<String> {
        let mut start = 0usize;
        self.ends
            .iter()
            .map(|&end| {
                let end = end as usize;
                let s = self.bytes.get(start..end).unwrap_or_default().to_owned();
                start = end;
                s
            })
            .collect()
    }
}

impl Drop for SegmentReader {
    fn drop(&mut self) {
        rollup_cache::global().remove(self.cache_key);
    }
}

/// Reads and checks every checksum and structure of the segment at `path`.
pub fn verify_segment(path: &Path) -> Result<u64> {
    SegmentReader::open(path, SegmentId(0))?.verify_all()
}

#[cfg(test)]
mod packed_tests {
    use super::PackedStrings;

    #[test]
    fn packed_strings_give_back_every_value_in_order() {
        let values: Vec<String> = ["", "auth", "é€ orders", "", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = PackedStrings::new(&values);
        assert_eq!(p.to_vec(), values);
        assert_eq!(p.bytes.len(), values.iter().map(String::len).sum::<usize>());
        assert!(PackedStrings::new(&[]).to_vec().is_empty());
    }
}
