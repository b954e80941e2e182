//! Writes a sealed segment: sorts the rows by (timestamp, seq), cuts them
//! into blocks, encodes and compresses each column chunk with the encoding
//! that comes out smallest, builds the rollups, and lays the file down
//! atomically (temporary name, fsync, rename, directory fsync).

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::encoding::{self, Candidate, Choice, ENC_ABSENT, NO_METHOD};
use super::format::{
    self, BlockMeta, CODEC_NONE, CODEC_ZSTD, ChunkMeta, ChunkRef, ColumnMeta, DiskStats,
    FORMAT_VERSION, Footer, HEADER_LEN, MAX_BLOCK_ROWS, MAX_CHUNK_RAW, Trailer,
};
use super::rollup_build::{RollupBuilder, RollupRow, encode_rollups};
use super::{SegmentSummary, WriteOptions};
use crate::column::{Column, ColumnKey, ColumnKind, ColumnSet, NULL_CODE, NULL_INT};
use crate::error::{Result, StorageError};
use crate::event::Method;
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

/// One column of a block, gathered from the input chunks in row order.
enum Gathered<'a> {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(Vec<Option<&'a str>>),
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

fn gather<'a>(
    chunks: &'a [ColumnSet],
    key: &ColumnKey,
    rows: &[(i64, i64, u32, u32)],
) -> Gathered<'a> {
    let col = |c: u32| chunks.get(c as usize).and_then(|cs| cs.get(key));
    match key.kind() {
        ColumnKind::Int => Gathered::Int(
            rows.iter()
                .map(|&(_, _, c, r)| match col(c) {
                    Some(Column::Int(v)) => v.get(r as usize).copied().unwrap_or(NULL_INT),
                    _ => NULL_INT,
                })
                .collect(),
        ),
        ColumnKind::Float => Gathered::Float(
            rows.iter()
                .map(|&(_, _, c, r)| match col(c) {
                    Some(Column::Float(v)) => v.get(r as usize).copied().unwrap_or(f64::NAN),
                    _ => f64::NAN,
                })
                .collect(),
        ),
        ColumnKind::Str => Gathered::Str(
            rows.iter()
                .map(|&(_, _, c, r)| match col(c) {
                    Some(Column::Str(s)) => s.get(r as usize),
                    _ => None,
                })
                .collect(),
        ),
    }
}

fn stats_of(g: &Gathered<'_>) -> DiskStats {
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
        Gathered::Int(v) => {
            let nulls = v.iter().filter(|&&x| x == NULL_INT).count() as u64;
            match fold(v.iter().copied().filter(|&x| x != NULL_INT), |a, b| a < b) {
                Some((min, max)) => DiskStats::Int { min, max, nulls },
                None => DiskStats::AllNull { nulls },
            }
        }
        Gathered::Float(v) => {
            let nulls = v.iter().filter(|x| x.is_nan()).count() as u64;
            match fold(v.iter().copied().filter(|x| !x.is_nan()), |a, b| a < b) {
                Some((min, max)) => DiskStats::Float { min, max, nulls },
                None => DiskStats::AllNull { nulls },
            }
        }
        Gathered::Str(v) => {
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

/// Compresses each candidate and keeps the smallest stored form.
/// Returns (choice, codec, stored bytes, raw length).
/// One compression context serves the whole segment: creating one per
/// chunk cost more than the compression itself.
fn choose(
    z: &mut zstd::bulk::Compressor<'static>,
    candidates: Vec<Candidate>,
    what: &str,
) -> Result<(Choice, u8, Vec<u8>, u32)> {
    let mut best: Option<(Choice, u8, Vec<u8>, u32)> = None;
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
        let pick = if packed.len() < raw.len() {
            (choice, CODEC_ZSTD, packed, raw_len)
        } else {
            (choice, CODEC_NONE, raw, raw_len)
        };
        if best.as_ref().is_none_or(|b| pick.2.len() < b.2.len()) {
            best = Some(pick);
        }
    }
    best.ok_or_else(|| invalid(format!("{what}: no encoding applies")))
}

/// Writes bytes and keeps the file offset.
struct Out {
    w: BufWriter<File>,
    offset: u64,
    path: PathBuf,
}

impl Out {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w
            .write_all(b)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.offset += b.len() as u64;
        Ok(())
    }
    /// Writes a stored chunk and returns where it is.
    fn chunk(&mut self, codec: u8, stored: &[u8], raw_len: u32) -> Result<ChunkRef> {
        let at = ChunkRef {
            offset: self.offset,
            len: stored.len() as u32,
            raw_len,
            crc: crc32fast::hash(stored),
            codec,
        };
        self.put(stored)?;
        Ok(at)
    }
}

/// Distinct values of one string column, given up once there are too many.
struct DistinctSet<'a> {
    values: HashSet<&'a str>,
    overflow: bool,
}

pub fn write_segment(
    final_path: &Path,
    id: SegmentId,
    tenant: &TenantId,
    partition: PartitionStart,
    chunks: &[ColumnSet],
    opts: &WriteOptions,
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
        w: BufWriter::with_capacity(1 << 20, file),
        offset: 0,
        path: tmp.clone(),
    };
    let result = write_body(&mut out, id, tenant, partition, chunks, &keys, &order, opts);
    let footer = match result {
        Ok(f) => f,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let file = out
        .w
        .into_inner()
        .map_err(|e| StorageError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
    drop(file);
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

#[allow(clippy::too_many_arguments)]
fn write_body<'a>(
    out: &mut Out,
    id: SegmentId,
    tenant: &TenantId,
    partition: PartitionStart,
    chunks: &'a [ColumnSet],
    keys: &[ColumnKey],
    order: &[(i64, i64, u32, u32)],
    opts: &WriteOptions,
) -> Result<Footer> {
    let mut z = zstd::bulk::Compressor::new(opts.zstd_level)
        .map_err(|e| StorageError::invalid("zstd level", e.to_string()))?;
    out.put(&format::header(FORMAT_VERSION))?;
    debug_assert_eq!(out.offset, HEADER_LEN);
    let mut blocks = Vec::new();
    let mut distinct: Vec<DistinctSet<'a>> = keys
        .iter()
        .map(|_| DistinctSet {
            values: HashSet::new(),
            overflow: false,
        })
        .collect();
    let mut rollups = RollupBuilder::default();
    let (mut min_seq, mut max_seq) = (i64::MAX, i64::MIN);

    // Per column, the previous block's winning encoding: a column's data
    // changes little from block to block, so between explorations only that
    // candidate is built and compressed, which makes writing several times
    // faster than building every candidate of every block.
    let mut hints: Vec<Option<Choice>> = vec![None; keys.len()];
    for (block_no, rows) in order.chunks(opts.block_rows).enumerate() {
        let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut metas = Vec::with_capacity(keys.len());
        let mut cols: Vec<Gathered<'a>> = Vec::with_capacity(keys.len());
        for (k, key) in keys.iter().enumerate() {
            let present = rows
                .iter()
                .any(|&(_, _, c, _)| chunks[c as usize].columns.contains_key(key));
            let g = gather(chunks, key, rows);
            let stats = stats_of(&g);
            if let (Gathered::Str(v), d) = (&g, &mut distinct[k])
                && !d.overflow
            {
                d.values.extend(v.iter().flatten().copied());
                d.overflow = d.values.len() > MAX_DISTINCT;
            }
            let meta = if present {
                if block_no % REEXPLORE_EVERY == 0 {
                    hints[k] = if rows.len() > SAMPLE_ROWS {
                        // Rank the candidates on a sample; the full block
                        // then only needs the winner.
                        let sample = candidates(&g, key, &ts, SAMPLE_ROWS, None);
                        Some(choose(&mut z, sample, "sample")?.0)
                    } else {
                        None
                    };
                }
                let mut cands = candidates(&g, key, &ts, rows.len(), hints[k]);
                if cands.is_empty() {
                    // The hinted encoding does not apply to this block (hex
                    // ids stopped being hex): try them all.
                    cands = candidates(&g, key, &ts, rows.len(), None);
                }
                let (choice, codec, stored, raw_len) = choose(&mut z, cands, &format!("{key:?}"))?;
                hints[k] = Some(choice);
                ChunkMeta {
                    at: out.chunk(codec, &stored, raw_len)?,
                    encoding: choice.enc,
                    stats,
                }
            } else {
                let at = ChunkRef {
                    offset: out.offset,
                    len: 0,
                    raw_len: 0,
                    crc: 0,
                    codec: CODEC_NONE,
                };
                ChunkMeta {
                    at,
                    encoding: ENC_ABSENT,
                    stats,
                }
            };
            metas.push(meta);
            cols.push(g);
        }
        add_rollup_rows(&mut rollups, &ts, keys, &cols);
        if let Some(Gathered::Int(seq)) = keys
            .iter()
            .position(|k| *k == ColumnKey::Seq)
            .map(|i| &cols[i])
        {
            for &s in seq {
                min_seq = min_seq.min(s);
                max_seq = max_seq.max(s);
            }
        }
        blocks.push(BlockMeta {
            rows: rows.len() as u32,
            min_ts: ts.first().copied().unwrap_or(0),
            max_ts: ts.last().copied().unwrap_or(0),
            chunks: metas,
        });
    }

    let rollups = rollups.finish();
    let rollup_rows = rollups.by_minute.len() + rollups.by_route.len();
    let rollups_at = if order.len() >= MIN_EVENTS_PER_ROLLUP_ROW * rollup_rows {
        let section = encode_rollups(&rollups);
        let only = Choice {
            enc: 0,
            method: NO_METHOD,
        };
        let (_, codec, stored, raw_len) = choose(&mut z, vec![(only, section)], "rollups")?;
        Some(out.chunk(codec, &stored, raw_len)?)
    } else {
        None
    };

    let rows_total = order.len() as u64;
    let columns = keys
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let (tag, name) = format::key_to_tag(key);
            let d = &distinct[k];
            let n = d.values.len();
            let keep = key.kind() == ColumnKind::Str
                && !d.overflow
                && (n <= DISTINCT_ALWAYS_KEEP || n * DISTINCT_MIN_REPEATS <= rows_total as usize);
            let distinct = keep.then(|| {
                let mut v: Vec<String> = d.values.iter().map(|s| (*s).to_owned()).collect();
                v.sort_unstable();
                v
            });
            ColumnMeta {
                tag,
                name,
                distinct,
            }
        })
        .collect();
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
        rollups: rollups_at,
    };
    let archived = format::archive_footer(&footer)?;
    let stored = z
        .compress(&archived)
        .map_err(|e| StorageError::invalid("zstd", e.to_string()))?;
    let trailer = Trailer {
        footer_len: stored.len() as u32,
        footer_raw_len: archived.len() as u32,
        footer_crc: crc32fast::hash(&stored),
        version: FORMAT_VERSION,
    };
    out.put(&stored)?;
    out.put(&trailer.encode())?;
    Ok(footer)
}

/// Candidate encodings of the first `n` rows of a gathered column; with
/// `only`, just that one (none when it does not apply).
fn candidates(
    g: &Gathered<'_>,
    key: &ColumnKey,
    ts: &[i64],
    n: usize,
    only: Option<Choice>,
) -> Vec<Candidate> {
    match g {
        Gathered::Int(v) => {
            let n = n.min(v.len());
            let rel = (*key == ColumnKey::ReceivedAt).then(|| &ts[..n.min(ts.len())]);
            encoding::int_candidates(&v[..n], rel, only)
        }
        Gathered::Float(v) => encoding::float_candidates(&v[..n.min(v.len())], only),
        Gathered::Str(v) => encoding::str_candidates(&v[..n.min(v.len())], only),
    }
}

/// Feeds a block's rows into the rollups (the block's columns are in `keys` order).
fn add_rollup_rows<'a>(
    b: &mut RollupBuilder<'a>,
    ts: &[i64],
    keys: &[ColumnKey],
    cols: &[Gathered<'a>],
) {
    let col = |k: ColumnKey| keys.iter().position(|x| *x == k).map(|i| &cols[i]);
    let (Some(Gathered::Str(svc)), Some(Gathered::Str(ep)), Some(Gathered::Str(et))) = (
        col(ColumnKey::Service),
        col(ColumnKey::Endpoint),
        col(ColumnKey::EventType),
    ) else {
        return;
    };
    let (Some(Gathered::Int(method)), Some(Gathered::Int(status)), Some(Gathered::Float(lat))) = (
        col(ColumnKey::Method),
        col(ColumnKey::StatusCode),
        col(ColumnKey::LatencyMs),
    ) else {
        return;
    };
    for i in 0..ts.len() {
        b.add(&RollupRow {
            timestamp: ts[i],
            service: svc[i],
            endpoint: ep[i],
            method: u8::try_from(method[i]).ok().and_then(Method::from_code),
            event_type: et[i].unwrap_or(""),
            status: u16::try_from(status[i]).ok(),
            latency: Some(lat[i]).filter(|l| !l.is_nan()),
        });
    }
}
