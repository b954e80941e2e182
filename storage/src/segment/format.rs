//! The byte layout of a sealed segment file, its constants and its footer.
//!
//! ```text
//! offset 0        header   (HEADER_LEN = 16 bytes)
//!                   magic    8 bytes  b"PSSEGMNT"
//!                   version  u32 LE   FORMAT_VERSION
//!                   reserved u32 LE   0
//! HEADER_LEN      column chunks, block by block, column by column in footer
//!                 order; each chunk is a zstd frame (or the raw bytes when
//!                 that is smaller), checksummed (crc32 of the stored bytes)
//! ...             rollup section (same framing as a chunk; left out when
//!                 it would not be smaller than the rows it summarises)
//! ...             footer: zstd frame of the rkyv archive of `FooterV2`
//!                 (version 2: `Footer` and its `Provenance`) or of `Footer`
//!                 (version 1, still read)
//! len - 24        trailer  (TRAILER_LEN = 24 bytes)
//!                   footer_len      u32 LE  stored (compressed) footer bytes
//!                   footer_raw_len  u32 LE  archive bytes after decompression
//!                   footer_crc      u32 LE  crc32 of the stored footer bytes
//!                   version         u32 LE  FORMAT_VERSION again
//!                   magic           8 bytes b"PSSEGMNT"
//! ```
//!
//! Every chunk's offset, stored length, decoded length, checksum, encoding
//! and statistics live in the footer, so a reader touches only the chunks a
//! query needs. `storage/FORMAT.md` describes the encodings.

use crate::column::{ColumnKey, ColumnKind, ColumnStats};
use crate::error::{Result, StorageError};

/// First and last eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"PSSEGMNT";
/// The version this code writes.
pub const FORMAT_VERSION: u32 = 2;
/// Versions this code reads. A new version is added here together with a
/// compatibility test that reads a file written by the old one.
/// Version 2 adds `Provenance` to the footer (version 1 files read with
/// none).
pub const KNOWN_VERSIONS: &[u32] = &[1, 2];

pub const HEADER_LEN: u64 = 16;
const TRAILER_FOOTER_LEN_AT: usize = 0;
const TRAILER_FOOTER_RAW_LEN_AT: usize = TRAILER_FOOTER_LEN_AT + 4;
const TRAILER_FOOTER_CRC_AT: usize = TRAILER_FOOTER_RAW_LEN_AT + 4;
const TRAILER_VERSION_AT: usize = TRAILER_FOOTER_CRC_AT + 4;
const TRAILER_MAGIC_AT: usize = TRAILER_VERSION_AT + 4;
pub const TRAILER_LEN: u64 = (TRAILER_MAGIC_AT + MAGIC.len()) as u64;

/// Largest footer (stored or decoded) a reader accepts. A segment of a
/// million rows has a footer of a few hundred KB; this bound only stops a
/// forged length from making the reader allocate gigabytes.
pub const MAX_FOOTER_BYTES: u32 = 64 << 20;
/// Largest decoded column chunk or rollup section: the writer refuses to
/// write a bigger one (65,536 rows of messages would need to average 8 KiB,
/// the contract's maximum) and the reader refuses to decode one, so a
/// forged length cannot make it allocate more.
pub const MAX_CHUNK_RAW: u32 = 512 << 20;
/// Most rows one block may hold; bounds every per-block allocation.
pub const MAX_BLOCK_ROWS: u32 = 1 << 20;

/// Chunk stored as written (compression did not help).
pub const CODEC_NONE: u8 = 0;
/// Chunk stored as one zstd frame.
pub const CODEC_ZSTD: u8 = 1;

/// Column-key tags: the core columns are 0..16 in `ColumnKey::CORE` order.
const TAG_ATTR_STR: u8 = 16;
const TAG_ATTR_NUM: u8 = 17;
const TAG_ATTR_BOOL: u8 = 18;

/// The header bytes of a file of `version`.
pub fn header(version: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h
}

/// Checks a header; returns the version it names.
pub fn parse_header(h: &[u8], location: &str) -> Result<u32> {
    if h.len() < HEADER_LEN as usize || h[..8] != MAGIC {
        return Err(StorageError::corrupted(
            "segment header",
            location,
            "bad magic bytes",
        ));
    }
    Ok(u32::from_le_bytes([h[8], h[9], h[10], h[11]]))
}

/// The trailer's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub footer_len: u32,
    pub footer_raw_len: u32,
    pub footer_crc: u32,
    pub version: u32,
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN as usize] {
        let mut t = [0u8; TRAILER_LEN as usize];
        let mut put = |at: usize, v: u32| t[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put(TRAILER_FOOTER_LEN_AT, self.footer_len);
        put(TRAILER_FOOTER_RAW_LEN_AT, self.footer_raw_len);
        put(TRAILER_FOOTER_CRC_AT, self.footer_crc);
        put(TRAILER_VERSION_AT, self.version);
        t[TRAILER_MAGIC_AT..].copy_from_slice(&MAGIC);
        t
    }

    pub fn parse(t: &[u8], location: &str) -> Result<Trailer> {
        if t.len() != TRAILER_LEN as usize || t[TRAILER_MAGIC_AT..] != MAGIC {
            return Err(StorageError::corrupted(
                "segment trailer",
                location,
                "bad magic bytes (truncated or not a segment)",
            ));
        }
        let get = |at: usize| u32::from_le_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
        Ok(Trailer {
            footer_len: get(TRAILER_FOOTER_LEN_AT),
            footer_raw_len: get(TRAILER_FOOTER_RAW_LEN_AT),
            footer_crc: get(TRAILER_FOOTER_CRC_AT),
            version: get(TRAILER_VERSION_AT),
        })
    }
}

/// Where a stored byte range is and how to check and decode it.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ChunkRef {
    pub offset: u64,
    /// Stored bytes.
    pub len: u32,
    /// Bytes after decompression.
    pub raw_len: u32,
    /// crc32 of the stored bytes.
    pub crc: u32,
    pub codec: u8,
}

/// `ColumnStats` as stored; `Unknown` when a string bound was too long to keep.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum DiskStats {
    Int {
        min: i64,
        max: i64,
        nulls: u64,
    },
    Float {
        min: f64,
        max: f64,
        nulls: u64,
    },
    Str {
        min: String,
        max: String,
        nulls: u64,
    },
    AllNull {
        nulls: u64,
    },
    Unknown,
}

impl DiskStats {
    pub fn to_stats(&self) -> Option<ColumnStats> {
        Some(match self {
            DiskStats::Int { min, max, nulls } => ColumnStats::Int {
                min: *min,
                max: *max,
                nulls: *nulls,
            },
            DiskStats::Float { min, max, nulls } => ColumnStats::Float {
                min: *min,
                max: *max,
                nulls: *nulls,
            },
            DiskStats::Str { min, max, nulls } => ColumnStats::Str {
                min: min.clone(),
                max: max.clone(),
                nulls: *nulls,
            },
            DiskStats::AllNull { nulls } => ColumnStats::AllNull { nulls: *nulls },
            DiskStats::Unknown => return None,
        })
    }
}

fn add_nulls(s: DiskStats, x: u64) -> DiskStats {
    use DiskStats::*;
    match s {
        Int { min, max, nulls } => Int {
            min,
            max,
            nulls: nulls + x,
        },
        Float { min, max, nulls } => Float {
            min,
            max,
            nulls: nulls + x,
        },
        Str { min, max, nulls } => Str {
            min,
            max,
            nulls: nulls + x,
        },
        AllNull { nulls } => AllNull { nulls: nulls + x },
        Unknown => Unknown,
    }
}

/// Combines the statistics of two blocks of one column.
pub fn merge_stats(a: DiskStats, b: &DiskStats) -> DiskStats {
    use DiskStats::*;
    match (a, b) {
        (Unknown, _) | (_, Unknown) => Unknown,
        (AllNull { nulls: x }, AllNull { nulls: y }) => AllNull { nulls: x + y },
        (AllNull { nulls: x }, other) => add_nulls(other.clone(), x),
        (other, &AllNull { nulls: x }) => add_nulls(other, x),
        (
            Int { min, max, nulls },
            Int {
                min: m2,
                max: x2,
                nulls: n2,
            },
        ) => Int {
            min: min.min(*m2),
            max: max.max(*x2),
            nulls: nulls + n2,
        },
        (
            Float { min, max, nulls },
            Float {
                min: m2,
                max: x2,
                nulls: n2,
            },
        ) => Float {
            min: min.min(*m2),
            max: max.max(*x2),
            nulls: nulls + n2,
        },
        (
            Str { min, max, nulls },
            Str {
                min: m2,
                max: x2,
                nulls: n2,
            },
        ) => Str {
            min: if m2 < &min { m2.clone() } else { min },
            max: if x2 > &max { x2.clone() } else { max },
            nulls: nulls + n2,
        },
        _ => Unknown,
    }
}

/// One column chunk of one block.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ChunkMeta {
    pub at: ChunkRef,
    /// `encoding::ENC_*`; `ENC_ABSENT` when the block has no such column.
    pub encoding: u8,
    pub stats: DiskStats,
}

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct BlockMeta {
    pub rows: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// One per `Footer::columns`, same order.
    pub chunks: Vec<ChunkMeta>,
}

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ColumnMeta {
    /// Core columns: index in `ColumnKey::CORE`; attributes: 16 str, 17 num, 18 bool.
    pub tag: u8,
    /// Attribute key; empty for core columns.
    pub name: String,
    /// Every distinct value, sorted, for low-cardinality string columns.
    pub distinct: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Footer {
    pub segment_id: u64,
    pub tenant: String,
    pub partition: i64,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub columns: Vec<ColumnMeta>,
    pub blocks: Vec<BlockMeta>,
    /// The rollup section; `None` when the writer left it out because it
    /// would hold nearly a row per event (see `writer::MIN_EVENTS_PER_ROLLUP_ROW`).
    pub rollups: Option<ChunkRef>,
}

/// What a version-2 footer adds: what rebuilding the catalog from the
/// segment files needs besides the footer's own summary.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Provenance {
    /// The tenant's sealed-through LSN recorded together with this segment:
    /// every WAL record of the tenant up to it is in a segment (this one or
    /// an earlier one). Compaction output carries the largest of its inputs'.
    pub sealed_through: u64,
    /// The segment's compaction level (0 = sealed from active rows).
    pub level: u32,
}

/// The version-2 footer archive.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct FooterV2 {
    pub footer: Footer,
    pub provenance: Provenance,
}

/// A column key's on-disk tag and name.
pub fn key_to_tag(key: &ColumnKey) -> (u8, String) {
    match key {
        ColumnKey::AttrStr(k) => (TAG_ATTR_STR, k.clone()),
        ColumnKey::AttrNum(k) => (TAG_ATTR_NUM, k.clone()),
        ColumnKey::AttrBool(k) => (TAG_ATTR_BOOL, k.clone()),
        core => {
            let at = ColumnKey::CORE.iter().position(|c| c == core).unwrap_or(0);
            (at as u8, String::new())
        }
    }
}

/// The column key a tag and name stand for; `None` for an unknown tag.
pub fn tag_to_key(tag: u8, name: &str) -> Option<ColumnKey> {
    match tag {
        TAG_ATTR_STR => Some(ColumnKey::AttrStr(name.to_owned())),
        TAG_ATTR_NUM => Some(ColumnKey::AttrNum(name.to_owned())),
        TAG_ATTR_BOOL => Some(ColumnKey::AttrBool(name.to_owned())),
        t => ColumnKey::CORE.get(t as usize).cloned(),
    }
}

/// Serializes a footer to its archived bytes.
pub fn archive_footer(f: &Footer) -> Result<Vec<u8>> {
    rkyv::to_bytes::<rkyv::rancor::Error>(f)
        .map(|b| b.to_vec())
        .map_err(|e| StorageError::invalid("segment footer", e.to_string()))
}

/// Validates archived footer bytes (any alignment) and returns the footer.
pub fn unarchive_footer(bytes: &[u8], location: &str) -> Result<Footer> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    let archived = rkyv::access::<ArchivedFooter, rkyv::rancor::Error>(&aligned)
        .map_err(|e| StorageError::corrupted("segment footer", location, e.to_string()))?;
    rkyv::deserialize::<Footer, rkyv::rancor::Error>(archived)
        .map_err(|e| StorageError::corrupted("segment footer", location, e.to_string()))
}

/// Serializes a version-2 footer to its archived bytes.
pub fn archive_footer_v2(f: &FooterV2) -> Result<Vec<u8>> {
    rkyv::to_bytes::<rkyv::rancor::Error>(f)
        .map(|b| b.to_vec())
        .map_err(|e| StorageError::invalid("segment footer", e.to_string()))
}

/// Validates archived footer bytes of file format `version` (any
/// alignment); a version-1 footer has no provenance.
pub fn unarchive_versioned(
    bytes: &[u8],
    version: u32,
    location: &str,
) -> Result<(Footer, Option<Provenance>)> {
    if version == 1 {
        return unarchive_footer(bytes, location).map(|f| (f, None));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    let archived = rkyv::access::<ArchivedFooterV2, rkyv::rancor::Error>(&aligned)
        .map_err(|e| StorageError::corrupted("segment footer", location, e.to_string()))?;
    let v2 = rkyv::deserialize::<FooterV2, rkyv::rancor::Error>(archived)
        .map_err(|e| StorageError::corrupted("segment footer", location, e.to_string()))?;
    Ok((v2.footer, Some(v2.provenance)))
}

/// Checks a footer's structure against the file it came from: every block
/// has one chunk per column, every chunk lies inside the data region, sizes
/// are within bounds, tags and encodings are known. After this the reader
/// may index and allocate by the footer's numbers.
pub fn check_footer(f: &Footer, data_end: u64, location: &str) -> Result<()> {
    let bad = |detail: String| Err(StorageError::corrupted("segment footer", location, detail));
    let in_data = |c: &ChunkRef| {
        c.offset >= HEADER_LEN
            && c.offset
                .checked_add(u64::from(c.len))
                .is_some_and(|end| end <= data_end)
            && c.raw_len <= MAX_CHUNK_RAW
            && (c.codec == CODEC_ZSTD || (c.codec == CODEC_NONE && c.len == c.raw_len))
    };
    if crate::types::TenantId::new(&f.tenant).is_none() {
        return bad(format!("invalid tenant {:?}", f.tenant));
    }
    for (i, c) in f.columns.iter().enumerate() {
        let Some(key) = tag_to_key(c.tag, &c.name) else {
            return bad(format!("column {i}: unknown tag {}", c.tag));
        };
        if c.distinct.is_some() && key.kind() != ColumnKind::Str {
            return bad(format!("column {i}: distinct list on a non-string column"));
        }
    }
    for (i, k) in ColumnKey::CORE.iter().enumerate() {
        if f.columns
            .get(i)
            .and_then(|c| tag_to_key(c.tag, &c.name))
            .as_ref()
            != Some(k)
        {
            return bad(format!("core column {k:?} missing or out of place"));
        }
    }
    if f.rollups.as_ref().is_some_and(|r| !in_data(r)) {
        return bad("rollup section out of bounds".into());
    }
    let mut rows = 0u64;
    for (b, block) in f.blocks.iter().enumerate() {
        if block.rows == 0 || block.rows > MAX_BLOCK_ROWS {
            return bad(format!("block {b}: {} rows", block.rows));
        }
        if block.chunks.len() != f.columns.len() {
            return bad(format!("block {b}: {} chunks", block.chunks.len()));
        }
        for (c, chunk) in block.chunks.iter().enumerate() {
            let absent = chunk.encoding == super::encoding::ENC_ABSENT;
            if absent && c < ColumnKey::CORE.len() {
                return bad(format!("block {b}: core column {c} absent"));
            }
            if !absent && !in_data(&chunk.at) {
                return bad(format!("block {b} column {c}: chunk out of bounds"));
            }
        }
        rows += u64::from(block.rows);
    }
    if rows != f.rows || f.blocks.is_empty() {
        return bad(format!("blocks hold {rows} rows, footer says {}", f.rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_rejects_bad_magic() {
        let t = Trailer {
            footer_len: 7,
            footer_raw_len: 9,
            footer_crc: 0xdead_beef,
            version: FORMAT_VERSION,
        };
        let b = t.encode();
        assert_eq!(Trailer::parse(&b, "x").unwrap(), t);
        let mut bad = b;
        bad[TRAILER_LEN as usize - 1] ^= 1;
        assert!(Trailer::parse(&bad, "x").is_err());
        assert!(Trailer::parse(&b[1..], "x").is_err());
    }

    #[test]
    fn header_names_its_version() {
        assert_eq!(parse_header(&header(1), "x").unwrap(), 1);
        assert!(parse_header(b"NOTASEGMENT12345", "x").is_err());
    }

    #[test]
    fn every_column_key_has_a_tag_that_maps_back() {
        let mut keys = ColumnKey::CORE.to_vec();
        keys.push(ColumnKey::AttrStr("tier".into()));
        keys.push(ColumnKey::AttrNum("items".into()));
        keys.push(ColumnKey::AttrBool("retry".into()));
        for k in keys {
            let (t, n) = key_to_tag(&k);
            assert_eq!(tag_to_key(t, &n), Some(k));
        }
        assert_eq!(tag_to_key(19, ""), None);
    }

    #[test]
    fn footer_archive_round_trips_at_any_alignment() {
        let f = Footer {
            segment_id: 3,
            tenant: "t001".into(),
            partition: 0,
            rows: 1,
            min_ts: 5,
            max_ts: 5,
            min_seq: 1,
            max_seq: 1,
            columns: vec![ColumnMeta {
                tag: 0,
                name: String::new(),
                distinct: Some(vec!["a".into()]),
            }],
            blocks: vec![],
            rollups: Some(ChunkRef {
                offset: 16,
                len: 0,
                raw_len: 0,
                crc: 0,
                codec: CODEC_NONE,
            }),
        };
        let bytes = archive_footer(&f).unwrap();
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(unarchive_footer(&shifted[1..], "x").unwrap(), f);
        assert!(unarchive_footer(&bytes[..bytes.len() / 2], "x").is_err());
        assert_eq!(
            unarchive_versioned(&bytes, 1, "x").unwrap(),
            (f.clone(), None)
        );
        let prov = Provenance {
            sealed_through: 77,
            level: 2,
        };
        let v2 = archive_footer_v2(&FooterV2 {
            footer: f.clone(),
            provenance: prov,
        })
        .unwrap();
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&v2);
        assert_eq!(
            unarchive_versioned(&shifted[1..], 2, "x").unwrap(),
            (f, Some(prov))
        );
        assert!(unarchive_versioned(&v2[..v2.len() / 2], 2, "x").is_err());
    }
}
