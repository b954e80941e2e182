//! Writes a sealed segment: sorts the rows by (timestamp, seq), cuts them
//! into blocks, encodes and compresses each column chunk with the encoding
//! that comes out smallest, builds the rollups, and lays the file down
//! atomically (temporary name, fsync, rename, directory fsync).

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam::channel;
use parking_lot::Mutex;

use super::encoding::{self, Candidate, Choice, ENC_ABSENT, NO_METHOD};
use super::format::{
    self, BlockMeta, CODEC_NONE, CODEC_ZSTD, ChunkMeta, ChunkRef, ColumnMeta, DiskStats,
    FORMAT_VERSION, Footer, FooterV2, HEADER_LEN, MAX_BLOCK_ROWS, MAX_CHUNK_RAW, Provenance,
    Trailer,
};
use super::rollup_build::{ChunkColumns, RollupBuilder, encode_rollups};
use super::{SegmentSummary, WriteOptions};
use crate::column::{Column, ColumnKey, ColumnKind, ColumnSet, NULL_CODE, NULL_INT};
use crate::error::{Result, StorageError};
use crate::io::FileIo;
use crate::query::hash::SeededHash;
use crate::types::{Micros, PartitionStart, SegmentId, TenantId};

/// A string column keeps its distinct-value list in the footer when it has
/// at most this many values: enough for services, endpoints, regions and
/// event types, small enough that the footer stays a few KB.
pub const MAX_DISTINCT: usize = 4096;
/// ...and either this few values, or on average at least
/// `DISTINCT_MIN_REPEATS` rows per value: a list of nearly-unique values
/// (user ids in a small segment) costs footer bytes and prunes nothing.
const DISTINCT_ALWAYS_KEEP: usize = 64;
const DISTINCT_MIN_REPEATS: usize = 4;
/// Rollups are kept only when they hold at least this many events per
/// row on average. Below it (small segments: a tenant's quiet hour) they
/// cost about as many bytes as the rows themselves and a query reads the
/// rows just as fast; measured on the generated data they were a quarter
/// of the file in such segments.
pub const MIN_EVENTS_PER_ROLLUP_ROW: usize = 2;
/// String statistics longer than this are not kept (the column then has
/// unknown bounds): messages can be KBs and would bloat every footer.
const MAX_STAT_STR: usize = 256;

/// Every this many blocks the writer tries every candidate encoding of a
/// column again instead of the previous block's winner, so a column whose
/// data changes character midway gets a better encoding within a few blocks.
const REEXPLORE_EVERY: usize = 8;

/// A block's first rows used to rank candidate encodings before encoding
/// the whole block with the winner alone: large enough to show a column's
/// character, an eighth of a default block.
const SAMPLE_ROWS: usize = 8192;

/// The temporary name a segment is written under before its rename.
pub fn tmp_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// One column's values, strings borrowed from the input chunks: every
/// input row flat in input order (chunk after chunk), or one block of them
/// gathered in sorted order. Flat first, so gathering a block is one
/// indexed load per row instead of a per-row lookup of the chunk's column.
enum Values<'a> {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(Vec<Option<&'a str>>),
}

impl<'a> Values<'a> {
    /// Every input row's value, in input order; a chunk lacking the column
    /// contributes nulls.
    fn flat(chunks: &'a [ColumnSet], key: &ColumnKey, total: usize) -> Values<'a> {
        match key.kind() {
            ColumnKind::Int => {
                let mut v = Vec::with_capacity(total);
                for cs in chunks {
                    match cs.get(key) {
                        Some(Column::Int(c)) => v.extend_from_slice(c),
                        _ => v.resize(v.len() + cs.rows, NULL_INT),
                    }
                }
                Values::Int(v)
            }
            ColumnKind::Float => {
                let mut v = Vec::with_capacity(total);
                for cs in chunks {
                    match cs.get(key) {
                        Some(Column::Float(c)) => v.extend_from_slice(c),
                        _ => v.resize(v.len() + cs.rows, f64::NAN),
                    }
                }
                Values::Float(v)
            }
            ColumnKind::Str => {
                let mut v = Vec::with_capacity(total);
                for cs in chunks {
                    match cs.get(key) {
                        Some(Column::Str(c)) => v.extend((0..cs.rows).map(|r| c.get(r))),
                        _ => v.resize(v.len() + cs.rows, None),
                    }
                }
                Values::Str(v)
            }
        }
    }

    /// The values at indexes `idx` (bounded by `check_input`).
    fn gather(&self, idx: &[u32]) -> Values<'a> {
        match self {
            Values::Int(v) => Values::Int(idx.iter().map(|&i| v[i as usize]).collect()),
            Values::Float(v) => Values::Float(idx.iter().map(|&i| v[i as usize]).collect()),
            Values::Str(v) => Values::Str(idx.iter().map(|&i| v[i as usize]).collect()),
        }
    }
}

fn invalid(detail: String) -> StorageError {
    StorageError::invalid("segment input", detail)
}

/// Checks the input and returns the attribute keys it holds, sorted.
fn check_input(chunks: &[ColumnSet]) -> Result<Vec<ColumnKey>> {
    let mut attrs = BTreeSet::new();
    for (i, cs) in chunks.iter().enumerate() {
        for key in &ColumnKey::CORE {
            if !cs.columns.contains_key(key) {
                return Err(invalid(format!("chunk {i} lacks core column {key:?}")));
            }
        }
        for (key, col) in &cs.columns {
            let kind_ok = matches!(
                (key.kind(), col.as_ref()),
                (ColumnKind::Int, Column::Int(_))
                    | (ColumnKind::Float, Column::Float(_))
                    | (ColumnKind::Str, Column::Str(_))
            );
            if !kind_ok || col.len() != cs.rows {
                return Err(invalid(format!(
                    "chunk {i} column {key:?}: wrong kind or {} rows of {}",
                    col.len(),
                    cs.rows
                )));
            }
            if let Column::Str(s) = col.as_ref()
                && s.codes
                    .iter()
                    .any(|&c| c != NULL_CODE && c as usize >= s.dict.len())
            {
                return Err(invalid(format!(
                    "chunk {i} column {key:?}: code past dictionary"
                )));
            }
            if !ColumnKey::CORE.contains(key) {
                attrs.insert(key.clone());
            }
        }
    }
    Ok(attrs.into_iter().collect())
}

fn ints<'a>(cs: &'a ColumnSet, key: &ColumnKey) -> &'a [i64] {
    match cs.get(key) {
        Some(Column::Int(v)) => v,
        _ => &[],
    }
}

fn stats_of(g: &Values<'_>) -> DiskStats {
    fn fold<T: Copy>(vals: impl Iterator<Item = T>, lt: impl Fn(T, T) -> bool) -> Option<(T, T)> {
        vals.fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((
                if lt(v, lo) { v } else { lo },
                if lt(hi, v) { v } else { hi },
            )),
        })
    }
    match g {
        Values::Int(v) => {
            let nulls = v.iter().filter(|&&x| x == NULL_INT).count() as u64;
            match fold(v.iter().copied().filter(|&x| x != NULL_INT), |a, b| a < b) {
                Some((min, max)) => DiskStats::Int { min, max, nulls },
                None => DiskStats::AllNull { nulls },
            }
        }
        Values::Float(v) => {
            let nulls = v.iter().filter(|x| x.is_nan()).count() as u64;
            match fold(v.iter().copied().filter(|x| !x.is_nan()), |a, b| a < b) {
                Some((min, max)) => DiskStats::Float { min, max, nulls },
                None => DiskStats::AllNull { nulls },
            }
        }
        Values::Str(v) => {
            let nulls = v.iter().filter(|x| x.is_none()).count() as u64;
            match fold(v.iter().flatten().copied(), |a, b| a < b) {
                Some((min, max)) if min.len().max(max.len()) <= MAX_STAT_STR => DiskStats::Str {
                    min: min.to_owned(),
                    max: max.to_owned(),
                    nulls,
                },
                Some(_) => DiskStats::Unknown,
                None => DiskStats::AllNull { nulls },
            }
        }
    }
}

/// A chunk as it goes into the file.
struct Stored {
    codec: u8,
    bytes: Vec<u8>,
    /// Length before compression.
    raw_len: u32,
}

impl Stored {
    /// The chunk of a column a block does not have.
    fn absent() -> Stored {
        Stored {
            codec: CODEC_NONE,
            bytes: Vec::new(),
            raw_len: 0,
        }
    }
}

/// Compresses each candidate and keeps the smallest stored form.
/// One compression context serves the whole segment: creating one per
/// chunk cost more than the compression itself.
fn choose(
    z: &mut zstd::bulk::Compressor<'static>,
    candidates: Vec<Candidate>,
    what: &str,
) -> Result<(Choice, Stored)> {
    let mut best: Option<(Choice, Stored)> = None;
    for (choice, raw) in candidates {
        if raw.len() > MAX_CHUNK_RAW as usize {
            return Err(invalid(format!(
                "{what}: chunk of {} bytes is too large",
                raw.len()
            )));
        }
        let raw_len = raw.len() as u32;
        let packed = z
            .compress(&raw)
            .map_err(|e| StorageError::invalid("zstd", e.to_string()))?;
        let stored = if packed.len() < raw.len() {
            Stored {
                codec: CODEC_ZSTD,
                bytes: packed,
                raw_len,
            }
        } else {
            Stored {
                codec: CODEC_NONE,
                bytes: raw,
                raw_len,
            }
        };
        let pick = (choice, stored);
        if best
            .as_ref()
            .is_none_or(|b| pick.1.bytes.len() < b.1.bytes.len())
        {
            best = Some(pick);
        }
    }
    best.ok_or_else(|| invalid(format!("{what}: no encoding applies")))
}

/// Bytes buffered before a write to the file: large writes, few calls.
const OUT_BUFFER_BYTES: usize = 1 << 20;

/// Writes bytes (buffered, through the `FileIo`) and keeps the file offset.
struct Out {
    file: File,
    fs: Arc<dyn FileIo>,
    buf: Vec<u8>,
    /// Bytes handed to `put` so far (written or buffered).
    offset: u64,
    /// Bytes already written to the file.
    written: u64,
    path: PathBuf,
}

impl Out {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(b);
        self.offset += b.len() as u64;
        if self.buf.len() >= OUT_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.fs
            .write_at(&self.file, &self.buf, self.written)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
    /// Writes a stored chunk and returns where it is.
    fn chunk(&mut self, stored: &Stored) -> Result<ChunkRef> {
        let at = ChunkRef {
            offset: self.offset,
            len: stored.bytes.len() as u32,
            raw_len: stored.raw_len,
            crc: crc32fast::hash(&stored.bytes),
            codec: stored.codec,
        };
        self.put(&stored.bytes)?;
        Ok(at)
    }
}

pub fn write_segment(
    final_path: &Path,
    id: SegmentId,
    tenant: &TenantId,
    partition: PartitionStart,
    chunks: &[ColumnSet],
    opts: &WriteOptions,
) -> Result<SegmentSummary> {
    write_segment_dyn(
        final_path,
        id,
        tenant,
        partition,
        chunks,
        opts,
        crate::io::os(),
    )
}

/// `write_segment` with a shared `FileIo` (what the store holds).
pub fn write_segment_dyn(
    final_path: &Path,
    id: SegmentId,
    tenant: &TenantId,
    partition: PartitionStart,
    chunks: &[ColumnSet],
    opts: &WriteOptions,
    fs: Arc<dyn FileIo>,
) -> Result<SegmentSummary> {
    if opts.block_rows == 0 || opts.block_rows > MAX_BLOCK_ROWS as usize {
        return Err(StorageError::invalid(
            "block_rows",
            format!("{} is out of range", opts.block_rows),
        ));
    }
    let attrs = check_input(chunks)?;
    let keys: Vec<ColumnKey> = ColumnKey::CORE.iter().cloned().chain(attrs).collect();

    // Sort order over every input row: (timestamp, seq, chunk, row).
    let mut order: Vec<(i64, i64, u32, u32)> =
        Vec::with_capacity(chunks.iter().map(|c| c.rows).sum());
    for (c, cs) in chunks.iter().enumerate() {
        let (ts, seq) = (ints(cs, &ColumnKey::Timestamp), ints(cs, &ColumnKey::Seq));
        for r in 0..cs.rows {
            order.push((ts[r], seq[r], c as u32, r as u32));
        }
    }
    if order.is_empty() {
        return Err(invalid("a segment needs at least one row".into()));
    }
    if order.iter().any(|&(t, s, _, _)| t == NULL_INT || s < 0) {
        return Err(invalid("null timestamp or negative seq".into()));
    }
    order.sort_unstable();

    let tmp = tmp_path(final_path);
    let file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    let mut out = Out {
        file,
        fs,
        buf: Vec::with_capacity(OUT_BUFFER_BYTES),
        offset: 0,
        written: 0,
        path: tmp.clone(),
    };
    let result = write_body(&mut out, id, tenant, partition, chunks, &keys, &order, opts).and_then(
        |footer| {
            out.flush()?;
            out.fs
                .sync_all(&out.file)
                .map_err(|e| StorageError::io(&tmp, e))?;
            Ok(footer)
        },
    );
    let footer = match result {
        Ok(f) => f,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    drop(out.file);
    std::fs::rename(&tmp, final_path).map_err(|e| StorageError::io(final_path, e))?;
    if let Some(dir) = final_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(SegmentSummary {
        rows: footer.rows,
        min_ts: Micros(footer.min_ts),
        max_ts: Micros(footer.max_ts),
        min_seq: footer.min_seq,
        max_seq: footer.max_seq,
        bytes: out.offset,
    })
}

/// The input of one segment, shared by the encoding workers.
struct Input<'a> {
    chunks: &'a [ColumnSet],
    keys: &'a [ColumnKey],
    /// Every row as (timestamp, seq, chunk, row), sorted.
    order: &'a [(i64, i64, u32, u32)],
    /// `order` as indexes into a flat column (`Values::flat`).
    flat_idx: Vec<u32>,
    /// `order`'s timestamps.
    ts: Vec<i64>,
    opts: &'a WriteOptions,
}

/// What an encoding worker hands the thread that writes the file.
enum Piece {
    /// One column chunk of block `block`.
    Chunk {
        block: usize,
        encoding: u8,
        stats: DiskStats,
        stored: Stored,
    },
    /// A column is complete; its distinct values when the footer keeps them.
    ColumnDone(Option<Vec<String>>),
    /// The rollup section, when kept.
    Rollups(Option<Stored>),
}

/// Lays pieces down in task order (column 0's chunks block by block, then
/// column 1's, ..., then the rollups), so the file does not depend on
/// which worker finished first.
struct Assembler<'o> {
    out: &'o mut Out,
    metas: Vec<Vec<Option<ChunkMeta>>>,
    distinct: Vec<Option<Vec<String>>>,
    rollups_at: Option<ChunkRef>,
    /// Pieces of tasks after `next`, held until their turn.
    pending: Vec<Vec<Piece>>,
    done: Vec<bool>,
    next: usize,
}

impl Assembler<'_> {
    fn receive(&mut self, task: usize, piece: Piece) -> Result<()> {
        let finished = !matches!(piece, Piece::Chunk { .. });
        if task == self.next {
            self.apply(task, piece)?;
        } else {
            self.pending[task].push(piece);
        }
        if finished {
            self.done[task] = true;
        }
        while self.next < self.done.len() && self.done[self.next] {
            self.next += 1;
            if self.next < self.done.len() {
                for p in std::mem::take(&mut self.pending[self.next]) {
                    self.apply(self.next, p)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, task: usize, piece: Piece) -> Result<()> {
        match piece {
            Piece::Chunk {
                block,
                encoding,
                stats,
                stored,
            } => {
                let at = self.out.chunk(&stored)?;
                self.metas[block][task] = Some(ChunkMeta {
                    at,
                    encoding,
                    stats,
                });
            }
            Piece::ColumnDone(d) => self.distinct[task] = d,
            Piece::Rollups(Some(stored)) => {
                self.rollups_at = Some(self.out.chunk(&stored)?);
            }
            Piece::Rollups(None) => {}
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn write_body(
    out: &mut Out,
    id: SegmentId,
    tenant: &TenantId,
    partition: PartitionStart,
    chunks: &[ColumnSet],
    keys: &[ColumnKey],
    order: &[(i64, i64, u32, u32)],
    opts: &WriteOptions,
) -> Result<Footer> {
    out.put(&format::header(FORMAT_VERSION))?;
    debug_assert_eq!(out.offset, HEADER_LEN);
    let mut starts = Vec::with_capacity(chunks.len());
    let mut total = 0u32;
    for cs in chunks {
        starts.push(total);
        total += cs.rows as u32;
    }
    let input = Input {
        chunks,
        keys,
        order,
        flat_idx: order
            .iter()
            .map(|&(_, _, c, r)| starts[c as usize] + r)
            .collect(),
        ts: order.iter().map(|r| r.0).collect(),
        opts,
    };
    let block_count = order.len().div_ceil(opts.block_rows);
    // Tasks 0..keys.len() encode one column each; the last builds rollups.
    let tasks = keys.len() + 1;
    let mut asm = Assembler {
        out,
        metas: vec![vec![None; keys.len()]; block_count],
        distinct: vec![None; keys.len()],
        rollups_at: None,
        pending: (0..tasks).map(|_| Vec::new()).collect(),
        done: vec![false; tasks],
        next: 0,
    };
    let next_task = AtomicUsize::new(0);
    if opts.threads <= 1 {
        // One encoder: this thread, straight into the assembler, tasks in
        // order. A thread per segment cost more than the encoding when a
        // many-tenant seal writes thousands of small segments (and every
        // short-lived thread leaves allocator pages to be reclaimed).
        let mut failed = None;
        encode_worker(&input, &next_task, tasks, &mut |task, piece| match piece
            .and_then(|p| asm.receive(task, p))
        {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if asm.next < tasks {
            return Err(invalid("the encoder stopped early".into()));
        }
    } else {
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = channel::bounded::<(usize, Result<Piece>)>(64);
            for _ in 0..opts.threads.max(1) {
                let tx = tx.clone();
                let (input, next_task) = (&input, &next_task);
                let spawned = std::thread::Builder::new()
                    .name("pulsestream-seal".into())
                    .spawn_scoped(scope, move || {
                        encode_worker(input, next_task, tasks, &mut |task, piece| {
                            tx.send((task, piece)).is_ok()
                        })
                    });
                if let Err(e) = spawned {
                    // Fewer workers only make it slower; none at all is an error.
                    tracing::warn!(error = %e, "cannot start a segment encoding thread");
                }
            }
            drop(tx);
            // Returning early drops `rx`: the workers' next send fails and
            // they stop.
            for (task, piece) in rx {
                asm.receive(task, piece?)?;
            }
            if asm.next < tasks {
                // Every worker stopped (or none started) before the last task.
                return Err(invalid("an encoding worker stopped early".into()));
            }
            Ok(())
        })?;
    }

    let rows_total = order.len() as u64;
    let blocks = order
        .chunks(opts.block_rows)
        .zip(asm.metas)
        .map(|(rows, metas)| {
            let chunks = metas
                .into_iter()
                .collect::<Option<Vec<ChunkMeta>>>()
                .ok_or_else(|| invalid("a column chunk is missing".into()))?;
            Ok(BlockMeta {
                rows: rows.len() as u32,
                min_ts: rows.first().map_or(0, |r| r.0),
                max_ts: rows.last().map_or(0, |r| r.0),
                chunks,
            })
        })
        .collect::<Result<Vec<BlockMeta>>>()?;
    let columns = keys
        .iter()
        .zip(asm.distinct)
        .map(|(key, distinct)| {
            let (tag, name) = format::key_to_tag(key);
            ColumnMeta {
                tag,
                name,
                distinct,
            }
        })
        .collect();
    let (min_seq, max_seq) = order.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.1), hi.max(r.1))
    });
    let footer = Footer {
        segment_id: id.0,
        tenant: tenant.as_str().to_owned(),
        partition: partition.0.0,
        rows: rows_total,
        min_ts: order.first().map_or(0, |r| r.0),
        max_ts: order.last().map_or(0, |r| r.0),
        min_seq: min_seq as u64,
        max_seq: max_seq as u64,
        columns,
        blocks,
        rollups: asm.rollups_at,
    };
    let v2 = FooterV2 {
        footer,
        provenance: Provenance {
            sealed_through: opts.sealed_through,
            level: opts.level,
        },
    };
    let archived = format::archive_footer_v2(&v2)?;
    let footer = v2.footer;
    let mut z = take_compressor(opts.zstd_level)
        .map_err(|e| StorageError::invalid("zstd level", e.to_string()))?;
    let stored = z
        .compress(&archived)
        .map_err(|e| StorageError::invalid("zstd", e.to_string()))?;
    give_back_compressor(opts.zstd_level, z);
    let trailer = Trailer {
        footer_len: stored.len() as u32,
        footer_raw_len: archived.len() as u32,
        footer_crc: crc32fast::hash(&stored),
        version: FORMAT_VERSION,
    };
    asm.out.put(&stored)?;
    asm.out.put(&trailer.encode())?;
    Ok(footer)
}

/// Takes tasks until none is left, sending what each produces. Stops at
/// the first error (sent on) or when the writing thread has gone.
/// Takes tasks until none is left, handing every piece to `emit` (which
/// answers false once nobody listens: the worker stops).
fn encode_worker(
    input: &Input<'_>,
    next_task: &AtomicUsize,
    tasks: usize,
    emit: &mut dyn FnMut(usize, Result<Piece>) -> bool,
) {
    let level = input.opts.zstd_level;
    let mut z = match take_compressor(level) {
        Ok(z) => z,
        Err(e) => {
            emit(0, Err(StorageError::invalid("zstd level", e.to_string())));
            return;
        }
    };
    loop {
        let task = next_task.fetch_add(1, Ordering::Relaxed);
        if task >= tasks {
            give_back_compressor(level, z);
            return;
        }
        let result = if task < input.keys.len() {
            let mut chunk = |p: Piece| emit(task, Ok(p));
            encode_column(input, task, &mut z, &mut chunk).map(Piece::ColumnDone)
        } else {
            build_rollups(input, &mut z).map(Piece::Rollups)
        };
        let failed = result.is_err();
        if !emit(task, result) || failed {
            return;
        }
    }
}

/// zstd contexts kept between segment writes, with their level. A context
/// allocates (and the kernel zeroes) megabytes of workspace on first use;
/// made afresh for every small segment of a many-tenant seal, that was a
/// sixth of the sealing threads' time.
static COMPRESSORS: Mutex<Vec<(i32, zstd::bulk::Compressor<'static>)>> = Mutex::new(Vec::new());

/// Contexts kept at most: one per concurrent segment writer
/// (`store::SEAL_WRITERS`); more are made when needed and dropped after.
const MAX_POOLED_COMPRESSORS: usize = 8;

fn take_compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let pooled = {
        let mut pool = COMPRESSORS.lock();
        pool.iter()
            .position(|(l, _)| *l == level)
            .map(|i| pool.swap_remove(i).1)
    };
    match pooled {
        Some(z) => Ok(z),
        None => zstd::bulk::Compressor::new(level),
    }
}

fn give_back_compressor(level: i32, z: zstd::bulk::Compressor<'static>) {
    let mut pool = COMPRESSORS.lock();
    if pool.len() < MAX_POOLED_COMPRESSORS {
        pool.push((level, z));
    }
}

/// Encodes column `k` block by block, handing each chunk to `emit` (which
/// answers false once nobody listens). Returns the distinct values the
/// footer keeps for it.
fn encode_column(
    input: &Input<'_>,
    k: usize,
    z: &mut zstd::bulk::Compressor<'static>,
    emit: &mut dyn FnMut(Piece) -> bool,
) -> Result<Option<Vec<String>>> {
    let key = &input.keys[k];
    let block_rows = input.opts.block_rows;
    let flat = Values::flat(input.chunks, key, input.order.len());
    let has: Vec<bool> = input
        .chunks
        .iter()
        .map(|cs| cs.columns.contains_key(key))
        .collect();
    let everywhere = has.iter().all(|&h| h);
    // The previous block's winning encoding: a column's data changes
    // little from block to block, so between explorations only that
    // candidate is built and compressed, which makes writing several times
    // faster than building every candidate of every block.
    let mut hint: Option<Choice> = None;
    for (b, rows) in input.order.chunks(block_rows).enumerate() {
        let lo = b * block_rows;
        let ts = &input.ts[lo..lo + rows.len()];
        let g = flat.gather(&input.flat_idx[lo..lo + rows.len()]);
        let stats = stats_of(&g);
        let present = everywhere || rows.iter().any(|r| has[r.2 as usize]);
        let piece = if present {
            if b % REEXPLORE_EVERY == 0 {
                hint = if rows.len() > SAMPLE_ROWS {
                    // Rank the candidates on a sample; the full block
                    // then only needs the winner.
                    let sample = candidates(&g, key, ts, SAMPLE_ROWS, None);
                    Some(choose(z, sample, "sample")?.0)
                } else {
                    None
                };
            }
            let mut cands = candidates(&g, key, ts, rows.len(), hint);
            if cands.is_empty() {
                // The hinted encoding does not apply to this block (hex
                // ids stopped being hex): try them all.
                cands = candidates(&g, key, ts, rows.len(), None);
            }
            let (choice, stored) = choose(z, cands, &format!("{key:?}"))?;
            hint = Some(choice);
            Piece::Chunk {
                block: b,
                encoding: choice.enc,
                stats,
                stored,
            }
        } else {
            Piece::Chunk {
                block: b,
                encoding: ENC_ABSENT,
                stats,
                stored: Stored::absent(),
            }
        };
        if !emit(piece) {
            return Ok(None);
        }
    }
    Ok(distinct_values(input.chunks, key, input.order.len()))
}

/// A string column's distinct values, sorted, when the footer keeps them:
/// the union of the input chunks' dictionaries (entries some row uses), so
/// each distinct string is hashed once per chunk rather than once per row.
fn distinct_values(chunks: &[ColumnSet], key: &ColumnKey, rows: usize) -> Option<Vec<String>> {
    if key.kind() != ColumnKind::Str {
        return None;
    }
    let mut values: HashSet<&str, SeededHash> = HashSet::default();
    let mut used = Vec::new();
    for cs in chunks {
        let Some(Column::Str(c)) = cs.get(key) else {
            continue;
        };
        used.clear();
        used.resize(c.dict.len(), false);
        for &code in &c.codes {
            if let Some(u) = used.get_mut(code as usize) {
                *u = true;
            }
        }
        values.extend(
            c.dict
                .iter()
                .zip(&used)
                .filter(|(_, u)| **u)
                .map(|(s, _)| s.as_str()),
        );
        if values.len() > MAX_DISTINCT {
            return None;
        }
    }
    let n = values.len();
    let keep = n <= DISTINCT_ALWAYS_KEEP || n * DISTINCT_MIN_REPEATS <= rows;
    keep.then(|| {
        let mut v: Vec<String> = values.into_iter().map(str::to_owned).collect();
        v.sort_unstable();
        v
    })
}

/// Builds the rollups chunk by chunk, in input order (the tables do not
/// depend on row order, except the rare latency sums that cannot be kept
/// exact, which are then summed in that order), and their stored section
/// when the segment is large enough to keep them.
fn build_rollups(
    input: &Input<'_>,
    z: &mut zstd::bulk::Compressor<'static>,
) -> Result<Option<Stored>> {
    let mut b = RollupBuilder::default();
    // `check_input` made sure every chunk has these columns.
    for cols in input.chunks.iter().filter_map(ChunkColumns::of) {
        b.add_chunk(&cols);
    }
    let rollups = b.finish();
    let rollup_rows = rollups.by_minute.len() + rollups.by_route.len();
    if input.order.len() < MIN_EVENTS_PER_ROLLUP_ROW * rollup_rows {
        return Ok(None);
    }
    let only = Choice {
        enc: 0,
        method: NO_METHOD,
    };
    let (_, stored) = choose(z, vec![(only, encode_rollups(&rollups))], "rollups")?;
    Ok(Some(stored))
}

/// Candidate encodings of the first `n` rows of a gathered column; with
/// `only`, just that one (none when it does not apply).
fn candidates(
    g: &Values<'_>,
    key: &ColumnKey,
    ts: &[i64],
    n: usize,
    only: Option<Choice>,
) -> Vec<Candidate> {
    match g {
        Values::Int(v) => {
            let n = n.min(v.len());
            let rel = (*key == ColumnKey::ReceivedAt).then(|| &ts[..n.min(ts.len())]);
            encoding::int_candidates(&v[..n], rel, only)
        }
        Values::Float(v) => encoding::float_candidates(&v[..n.min(v.len())], only),
        Values::Str(v) => encoding::str_candidates(&v[..n.min(v.len())], only),
    }
}
