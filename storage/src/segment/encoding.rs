//! Column chunk encodings: how one column of one block becomes bytes (before
//! zstd) and back.
//!
//! The writer produces every candidate encoding that applies to a column and
//! keeps the one that is smallest after compression, so the choice follows
//! the data rather than a guess. Decoders take untrusted bytes: they check
//! every count against the block's row count and what is left, and never
//! panic.
//!
//! Layouts (all varints are LEB128; "zz" is zigzag):
//! - nulls section (int and float chunks): uvarint null count; when some but
//!   not all rows are null, a bitmap of `rows` bits (LSB first, 1 = null).
//! - int values (of the non-null rows): method byte, then
//!   `PLAIN` zz-varints, `DELTA` zz-varint of the first value then of each
//!   wrapping difference, `PACKED` zz-varint minimum, width byte (0..=64)
//!   and each `value - min` in `width` bits, LSB first, `SHUFFLED`
//!   zz-varint minimum, width byte w (0..=8) and w byte planes of n bytes
//!   (plane j holds byte j of each `value - min`, little-endian), or
//!   `DELTA_SHUFFLED` zz-varint first value, then the n - 1 wrapping
//!   differences `SHUFFLED`.
//! - `ENC_INT`: nulls, int values. `ENC_INT_REL_TS`: nulls, int values of
//!   `value - timestamp` of the same row (received_at).
//! - `ENC_FLOAT_SCALED`: nulls, decimals byte `d` (0..=MAX_DECIMALS), int
//!   values of `value * 10^d`; exact (checked bit for bit when encoding).
//!   `ENC_FLOAT_RAW`: nulls, 8 LE bytes of each value.
//! - `ENC_STR_DICT`: uvarint dictionary size, each entry length-prefixed
//!   (most frequent first, so common values get small codes), then int
//!   values of every row's code + 1 (0 = null).
//!   `ENC_STR_PLAIN`: per row uvarint length + 1 (0 = null), then the bytes.
//!   `ENC_STR_HEX`: lowercase hex strings stored as their bytes (half the
//!   size): uvarint L + 1 when every value has L bytes, then nulls and L
//!   bytes per non-null row; or 0, then per row uvarint byte count + 1
//!   (0 = null) and the bytes.
//!   `ENC_STR_NUM`: every value is one prefix and a decimal number
//!   ("u-07147"): the prefix length-prefixed, uvarint digit width (0 =
//!   written without leading zeros), nulls, then int values of the numbers.

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{Reader, put_ivarint, put_uvarint};
use crate::column::{Column, NULL_CODE, NULL_INT, StrColumn};
use crate::error::{Result, StorageError};
use crate::query::hash::SeededHash;

/// The block has no such column (an attribute not seen there): all null.
pub const ENC_ABSENT: u8 = 0;
pub const ENC_INT: u8 = 1;
pub const ENC_INT_REL_TS: u8 = 2;
pub const ENC_FLOAT_SCALED: u8 = 3;
pub const ENC_FLOAT_RAW: u8 = 4;
pub const ENC_STR_DICT: u8 = 5;
pub const ENC_STR_PLAIN: u8 = 6;
pub const ENC_STR_HEX: u8 = 7;
pub const ENC_STR_NUM: u8 = 8;

/// A readable name of an encoding, for tools and statistics.
pub fn encoding_name(enc: u8) -> &'static str {
    match enc {
        ENC_ABSENT => "absent",
        ENC_INT => "int",
        ENC_INT_REL_TS => "int-rel-ts",
        ENC_FLOAT_SCALED => "float-scaled",
        ENC_FLOAT_RAW => "float-raw",
        ENC_STR_DICT => "str-dict",
        ENC_STR_PLAIN => "str-plain",
        ENC_STR_HEX => "str-hex",
        ENC_STR_NUM => "str-num",
        _ => "unknown",
    }
}

const METHOD_PLAIN: u8 = 0;
const METHOD_DELTA: u8 = 1;
const METHOD_PACKED: u8 = 2;
const METHOD_SHUFFLED: u8 = 3;
const METHOD_DELTA_SHUFFLED: u8 = 4;
const METHODS: [u8; 5] = [
    METHOD_PLAIN,
    METHOD_DELTA,
    METHOD_PACKED,
    METHOD_SHUFFLED,
    METHOD_DELTA_SHUFFLED,
];

/// Most decimals tried for the scaled float encoding: latencies come with
/// three (milliseconds to the microsecond); six still covers nanoseconds
/// while `value * 10^6` stays an exact integer for any sane latency.
const MAX_DECIMALS: u8 = 6;
/// Scaled floats must stay within f64's exact integer range.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

fn decode_err(what: &'static str, offset: usize) -> StorageError {
    StorageError::Decode { what, offset }
}

// ---------- nulls ----------

fn put_nulls(out: &mut Vec<u8>, is_null: &[bool]) {
    let nulls = is_null.iter().filter(|&&n| n).count();
    put_uvarint(out, nulls as u64);
    if nulls > 0 && nulls < is_null.len() {
        let mut bits = vec![0u8; is_null.len().div_ceil(8)];
        for (i, _) in is_null.iter().enumerate().filter(|(_, n)| **n) {
            bits[i / 8] |= 1 << (i % 8);
        }
        out.extend_from_slice(&bits);
    }
}

/// Reads a nulls section for `rows` rows: per-row null flags.
fn read_nulls(r: &mut Reader<'_>, rows: usize) -> Result<Vec<bool>> {
    let at = r.position();
    let nulls = r.uvarint("null count")?;
    if nulls > rows as u64 {
        return Err(decode_err("null count", at));
    }
    if nulls == 0 || nulls == rows as u64 {
        return Ok(vec![nulls > 0; rows]);
    }
    let bits = r.take(rows.div_ceil(8), "null bitmap")?;
    let flags: Vec<bool> = (0..rows)
        .map(|i| bits[i / 8] & (1 << (i % 8)) != 0)
        .collect();
    if flags.iter().filter(|&&n| n).count() as u64 != nulls {
        return Err(decode_err("null bitmap", at));
    }
    Ok(flags)
}

// ---------- integer value streams ----------

fn bit_width(v: u64) -> u8 {
    (64 - v.leading_zeros()) as u8
}

/// Frame of reference, then byte planes: zz-varint minimum, width byte
/// (0..=8), then byte 0 of every `value - min`, byte 1 of every one, ...
/// Grouping like bytes lets zstd model the high bytes (mostly alike) apart
/// from the low ones (mostly noise).
fn put_shuffled(out: &mut Vec<u8>, vals: &[i64]) {
    let min = vals.iter().copied().min().unwrap_or(0);
    let span = vals
        .iter()
        .map(|&v| v.wrapping_sub(min) as u64)
        .max()
        .unwrap_or(0);
    let width = bit_width(span).div_ceil(8);
    put_ivarint(out, min);
    out.push(width);
    for plane in 0..width {
        let shift = 8 * u32::from(plane);
        out.extend(
            vals.iter()
                .map(|&v| (v.wrapping_sub(min) as u64 >> shift) as u8),
        );
    }
}

fn read_shuffled(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>> {
    let at = r.position();
    let min = r.ivarint("shuffled minimum")?;
    let width = r.u8("shuffled width")?;
    if width > 8 {
        return Err(decode_err("shuffled width", at));
    }
    let need = n
        .checked_mul(usize::from(width))
        .filter(|&need| need <= r.remaining())
        .ok_or_else(|| decode_err("shuffled values", r.position()))?;
    let bytes = r.take(need, "shuffled values")?;
    let mut vals = vec![0u64; n];
    for (plane, chunk) in bytes.chunks_exact(n.max(1)).enumerate() {
        for (v, &b) in vals.iter_mut().zip(chunk) {
            *v |= u64::from(b) << (8 * plane);
        }
    }
    Ok(vals
        .into_iter()
        .map(|v| min.wrapping_add(v as i64))
        .collect())
}

fn put_int_values(out: &mut Vec<u8>, method: u8, vals: &[i64]) {
    out.push(method);
    match method {
        METHOD_SHUFFLED => put_shuffled(out, vals),
        METHOD_DELTA_SHUFFLED => {
            // The first value alone, so it does not widen every delta.
            put_ivarint(out, vals.first().copied().unwrap_or(0));
            let deltas: Vec<i64> = vals.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
            put_shuffled(out, &deltas);
        }
        METHOD_DELTA => {
            let mut prev = 0i64;
            for &v in vals {
                put_ivarint(out, v.wrapping_sub(prev));
                prev = v;
            }
        }
        METHOD_PACKED => {
            let min = vals.iter().copied().min().unwrap_or(0);
            let span = vals
                .iter()
                .map(|&v| v.wrapping_sub(min) as u64)
                .max()
                .unwrap_or(0);
            let width = bit_width(span);
            put_ivarint(out, min);
            out.push(width);
            let mut acc: u128 = 0;
            let mut nbits = 0u32;
            for &v in vals {
                acc |= u128::from(v.wrapping_sub(min) as u64) << nbits;
                nbits += u32::from(width);
                while nbits >= 8 {
                    out.push(acc as u8);
                    acc >>= 8;
                    nbits -= 8;
                }
            }
            if nbits > 0 {
                out.push(acc as u8);
            }
        }
        _ => {
            for &v in vals {
                put_ivarint(out, v);
            }
        }
    }
}

fn read_int_values(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>> {
    let at = r.position();
    let method = r.u8("int method")?;
    let mut vals = Vec::with_capacity(n.min(r.remaining().saturating_mul(8) + 8));
    match method {
        METHOD_PLAIN => {
            for _ in 0..n {
                vals.push(r.ivarint("int value")?);
            }
        }
        METHOD_SHUFFLED => vals = read_shuffled(r, n)?,
        METHOD_DELTA_SHUFFLED => {
            let first = r.ivarint("first value")?;
            let deltas = read_shuffled(r, n.saturating_sub(1))?;
            if n > 0 {
                vals.push(first);
                let mut prev = first;
                for d in deltas {
                    prev = prev.wrapping_add(d);
                    vals.push(prev);
                }
            }
        }
        METHOD_DELTA => {
            let mut prev = 0i64;
            for _ in 0..n {
                prev = prev.wrapping_add(r.ivarint("int delta")?);
                vals.push(prev);
            }
        }
        METHOD_PACKED => {
            let min = r.ivarint("packed minimum")?;
            let width = r.u8("packed width")?;
            if width > 64 {
                return Err(decode_err("packed width", at));
            }
            let need = (n as u64 * u64::from(width)).div_ceil(8);
            if need > r.remaining() as u64 {
                return Err(decode_err("packed values", r.position()));
            }
            let bytes = r.take(need as usize, "packed values")?;
            let mask: u128 = (1u128 << width) - 1;
            let mut acc: u128 = 0;
            let mut nbits = 0u32;
            let mut next = bytes.iter();
            for _ in 0..n {
                while nbits < u32::from(width) {
                    let b = next.next().copied().unwrap_or(0);
                    acc |= u128::from(b) << nbits;
                    nbits += 8;
                }
                let v = (acc & mask) as u64;
                acc >>= width;
                nbits -= u32::from(width);
                vals.push(min.wrapping_add(v as i64));
            }
        }
        _ => return Err(decode_err("int method", at)),
    }
    Ok(vals)
}

/// Identifies one candidate encoding of a chunk: the encoding byte and,
/// for encodings holding an int stream, its method (`NO_METHOD` for the
/// others). The writer remembers a column's winning choice so later blocks
/// build only that candidate instead of all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub enc: u8,
    pub method: u8,
}

/// `Choice::method` of encodings without an int stream.
pub const NO_METHOD: u8 = u8::MAX;

impl Choice {
    const fn new(enc: u8, method: u8) -> Choice {
        Choice { enc, method }
    }
    /// Whether a candidate of encoding `enc` with `method` is wanted when
    /// only `only` (if any) is.
    fn wanted(only: Option<Choice>, enc: u8, method: u8) -> bool {
        only.is_none_or(|c| c.enc == enc && c.method == method)
    }
    /// Whether any candidate of encoding `enc` is wanted.
    fn wants_enc(only: Option<Choice>, enc: u8) -> bool {
        only.is_none_or(|c| c.enc == enc)
    }
}

/// A candidate: which encoding, and the chunk bytes.
pub type Candidate = (Choice, Vec<u8>);

/// Candidate value streams for `vals` under encoding `enc`, one per
/// method (only `only`'s method when it is given).
fn int_value_candidates(
    enc: u8,
    prefix: &[u8],
    vals: &[i64],
    only: Option<Choice>,
) -> Vec<Candidate> {
    METHODS
        .iter()
        .filter(|&&m| Choice::wanted(only, enc, m))
        .map(|&m| {
            let mut out = prefix.to_vec();
            put_int_values(&mut out, m, vals);
            (Choice::new(enc, m), out)
        })
        .collect()
}

/// Scatters decoded non-null values into a column of `rows` with `null`
/// where flagged.
fn scatter<T: Copy>(flags: &[bool], vals: &[T], null: T) -> Option<Vec<T>> {
    let mut it = vals.iter();
    let out: Vec<T> = flags
        .iter()
        .map(|&n| if n { Some(null) } else { it.next().copied() })
        .collect::<Option<Vec<T>>>()?;
    it.next().is_none().then_some(out)
}

// ---------- int columns ----------

/// Candidate encodings of an integer column (`NULL_INT` = null). With
/// `timestamps`, also the encoding relative to each row's timestamp.
pub fn encode_int(values: &[i64], timestamps: Option<&[i64]>) -> Vec<(u8, Vec<u8>)> {
    without_choice(int_candidates(values, timestamps, None))
}

/// `encode_int`'s candidates with their choices; with `only`, just that
/// candidate (none when it does not apply).
pub fn int_candidates(
    values: &[i64],
    timestamps: Option<&[i64]>,
    only: Option<Choice>,
) -> Vec<Candidate> {
    let flags: Vec<bool> = values.iter().map(|&v| v == NULL_INT).collect();
    let mut prefix = Vec::new();
    put_nulls(&mut prefix, &flags);
    let mut out = Vec::new();
    if Choice::wants_enc(only, ENC_INT) {
        let nn: Vec<i64> = values.iter().copied().filter(|&v| v != NULL_INT).collect();
        out = int_value_candidates(ENC_INT, &prefix, &nn, only);
    }
    if let Some(ts) = timestamps.filter(|ts| ts.len() == values.len())
        && Choice::wants_enc(only, ENC_INT_REL_TS)
    {
        let rel: Vec<i64> = values
            .iter()
            .zip(ts)
            .filter(|(v, _)| **v != NULL_INT)
            .map(|(v, t)| v.wrapping_sub(*t))
            .collect();
        out.extend(int_value_candidates(ENC_INT_REL_TS, &prefix, &rel, only));
    }
    out
}

fn without_choice(c: Vec<Candidate>) -> Vec<(u8, Vec<u8>)> {
    c.into_iter().map(|(c, b)| (c.enc, b)).collect()
}

/// Decodes an integer chunk of `rows` rows. `ENC_INT_REL_TS` needs the
/// block's timestamps.
pub fn decode_int(
    enc: u8,
    data: &[u8],
    rows: usize,
    timestamps: Option<&[i64]>,
) -> Result<Vec<i64>> {
    let mut r = Reader::new(data);
    let flags = read_nulls(&mut r, rows)?;
    let n = flags.iter().filter(|&&f| !f).count();
    let mut nn = read_int_values(&mut r, n)?;
    if enc == ENC_INT_REL_TS {
        let ts = timestamps
            .filter(|t| t.len() == rows)
            .ok_or_else(|| decode_err("timestamps for relative ints", 0))?;
        let mut base = ts.iter().zip(&flags).filter(|(_, f)| !**f).map(|(t, _)| *t);
        for v in nn.iter_mut() {
            *v = v.wrapping_add(base.next().unwrap_or(0));
        }
    } else if enc != ENC_INT {
        return Err(decode_err("int encoding", 0));
    }
    if !r.is_empty() {
        return Err(decode_err("trailing bytes in int chunk", r.position()));
    }
    if nn.contains(&NULL_INT) {
        return Err(decode_err("null sentinel as a value", 0));
    }
    scatter(&flags, &nn, NULL_INT).ok_or_else(|| decode_err("int values", r.position()))
}

// ---------- float columns ----------

/// The fewest decimals that represent every value exactly, if any.
pub(crate) fn scale_for(vals: &[f64]) -> Option<u8> {
    (0..=MAX_DECIMALS).find(|&d| {
        let scale = 10f64.powi(i32::from(d));
        vals.iter().all(|&v| {
            let s = (v * scale).round();
            // Through i64, as the decoder does, so -0.0 is not taken for 0.
            s.abs() < MAX_EXACT_INT && ((s as i64) as f64 / scale).to_bits() == v.to_bits()
        })
    })
}

/// Candidate encodings of a float column (NaN = null).
pub fn encode_float(values: &[f64]) -> Vec<(u8, Vec<u8>)> {
    without_choice(float_candidates(values, None))
}

/// `encode_float`'s candidates with their choices; with `only`, just that
/// candidate (none when it does not apply).
pub fn float_candidates(values: &[f64], only: Option<Choice>) -> Vec<Candidate> {
    let flags: Vec<bool> = values.iter().map(|v| v.is_nan()).collect();
    let mut prefix = Vec::new();
    put_nulls(&mut prefix, &flags);
    let nn: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut out = Vec::new();
    if Choice::wanted(only, ENC_FLOAT_RAW, NO_METHOD) {
        let mut raw = prefix.clone();
        for v in &nn {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        out.push((Choice::new(ENC_FLOAT_RAW, NO_METHOD), raw));
    }
    if Choice::wants_enc(only, ENC_FLOAT_SCALED)
        && let Some(d) = scale_for(&nn)
    {
        let scale = 10f64.powi(i32::from(d));
        let ints: Vec<i64> = nn.iter().map(|v| (v * scale).round() as i64).collect();
        prefix.push(d);
        out.extend(int_value_candidates(ENC_FLOAT_SCALED, &prefix, &ints, only));
    }
    out
}

pub fn decode_float(enc: u8, data: &[u8], rows: usize) -> Result<Vec<f64>> {
    let mut r = Reader::new(data);
    let flags = read_nulls(&mut r, rows)?;
    let n = flags.iter().filter(|&&f| !f).count();
    let nn: Vec<f64> = match enc {
        ENC_FLOAT_RAW => {
            let mut v = Vec::with_capacity(n.min(r.remaining() / 8));
            for _ in 0..n {
                v.push(r.f64_le("float value")?);
            }
            v
        }
        ENC_FLOAT_SCALED => {
            let at = r.position();
            let d = r.u8("float decimals")?;
            if d > MAX_DECIMALS {
                return Err(decode_err("float decimals", at));
            }
            let scale = 10f64.powi(i32::from(d));
            read_int_values(&mut r, n)?
                .into_iter()
                .map(|i| i as f64 / scale)
                .collect()
        }
        _ => return Err(decode_err("float encoding", 0)),
    };
    if !r.is_empty() {
        return Err(decode_err("trailing bytes in float chunk", r.position()));
    }
    if nn.iter().any(|v| v.is_nan()) {
        return Err(decode_err("NaN as a value", 0));
    }
    scatter(&flags, &nn, f64::NAN).ok_or_else(|| decode_err("float values", r.position()))
}

// ---------- string columns ----------

fn is_hex(s: &str) -> bool {
    s.len().is_multiple_of(2)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex_nibble(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b - b'0'
    } else {
        b - b'a' + 10
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Longest digit run the numbered-string encoding takes: 18 digits always
/// fit an i64.
const MAX_NUM_DIGITS: usize = 18;

/// Dictionary candidates: distinct values most frequent first, then the
/// codes as an int stream (one candidate per int method).
fn encode_dict(values: &[Option<&str>], only: Option<Choice>) -> Vec<Candidate> {
    let mut counts: HashMap<&str, u64, SeededHash> = HashMap::default();
    for s in values.iter().flatten() {
        *counts.entry(s).or_default() += 1;
    }
    let mut dict: Vec<(&str, u64)> = counts.into_iter().collect();
    dict.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let index: HashMap<&str, i64, SeededHash> = dict
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (*s, i as i64 + 1))
        .collect();
    let mut head = Vec::new();
    put_uvarint(&mut head, dict.len() as u64);
    for (s, _) in &dict {
        put_uvarint(&mut head, s.len() as u64);
        head.extend_from_slice(s.as_bytes());
    }
    let codes: Vec<i64> = values
        .iter()
        .map(|v| v.map_or(0, |s| index.get(s).copied().unwrap_or(0)))
        .collect();
    int_value_candidates(ENC_STR_DICT, &head, &codes, only)
}

fn encode_plain(values: &[Option<&str>]) -> Vec<u8> {
    let mut plain = Vec::new();
    for v in values {
        put_uvarint(&mut plain, v.map_or(0, |s| s.len() as u64 + 1));
        plain.extend_from_slice(v.unwrap_or("").as_bytes());
    }
    plain
}

/// Lowercase hex strings as their bytes; one shared length when they all
/// have it (trace ids), else a length per row.
fn encode_hex(values: &[Option<&str>]) -> Option<Vec<u8>> {
    if !values.iter().flatten().all(|s| is_hex(s)) {
        return None;
    }
    let mut lens = values.iter().flatten().map(|s| s.len());
    let first = lens.next();
    let fixed = first.filter(|&f| lens.all(|l| l == f));
    let mut out = Vec::new();
    let put_bytes = |out: &mut Vec<u8>, s: &str| {
        for pair in s.as_bytes().chunks_exact(2) {
            out.push(hex_nibble(pair[0]) << 4 | hex_nibble(pair[1]));
        }
    };
    match fixed {
        Some(len) => {
            put_uvarint(&mut out, (len / 2) as u64 + 1);
            let flags: Vec<bool> = values.iter().map(Option::is_none).collect();
            put_nulls(&mut out, &flags);
            for s in values.iter().flatten() {
                put_bytes(&mut out, s);
            }
        }
        None => {
            put_uvarint(&mut out, 0);
            for v in values {
                put_uvarint(&mut out, v.map_or(0, |s| s.len() as u64 / 2 + 1));
                put_bytes(&mut out, v.unwrap_or(""));
            }
        }
    }
    Some(out)
}

/// Splits `s` into its prefix and trailing digit run (non-empty, at most
/// `MAX_NUM_DIGITS`).
fn split_number(s: &str) -> Option<(&str, &str)> {
    let at = s.len() - s.bytes().rev().take_while(u8::is_ascii_digit).count();
    let digits = &s[at..];
    (!digits.is_empty() && digits.len() <= MAX_NUM_DIGITS).then(|| (&s[..at], digits))
}

/// Strings that are one shared prefix and a number ("u-07147"): the prefix
/// once, the digit width (0 = written without padding), then the numbers
/// as an int stream.
fn encode_numbered(values: &[Option<&str>], only: Option<Choice>) -> Vec<Candidate> {
    let mut parts = Vec::new();
    for s in values.iter().flatten() {
        match split_number(s) {
            Some(p) => parts.push(p),
            None => return Vec::new(),
        }
    }
    let Some(&(prefix, first)) = parts.first() else {
        return Vec::new();
    };
    if parts.iter().any(|(p, _)| *p != prefix) {
        return Vec::new();
    }
    let padded = parts.iter().all(|(_, d)| d.len() == first.len());
    let canonical = parts
        .iter()
        .all(|(_, d)| !d.starts_with('0') || d.len() == 1);
    let width = match (padded, canonical) {
        (true, _) => first.len(),
        (false, true) => 0,
        (false, false) => return Vec::new(),
    };
    let nums: Vec<i64> = parts
        .iter()
        .map(|(_, d)| d.parse::<i64>().unwrap_or(0))
        .collect();
    let mut head = Vec::new();
    put_uvarint(&mut head, prefix.len() as u64);
    head.extend_from_slice(prefix.as_bytes());
    put_uvarint(&mut head, width as u64);
    let flags: Vec<bool> = values.iter().map(Option::is_none).collect();
    put_nulls(&mut head, &flags);
    int_value_candidates(ENC_STR_NUM, &head, &nums, only)
}

/// Candidate encodings of a string column (`None` = null).
pub fn encode_str(values: &[Option<&str>]) -> Vec<(u8, Vec<u8>)> {
    without_choice(str_candidates(values, None))
}

/// `encode_str`'s candidates with their choices; with `only`, just that
/// candidate (none when it does not apply).
pub fn str_candidates(values: &[Option<&str>], only: Option<Choice>) -> Vec<Candidate> {
    let mut out = Vec::new();
    if Choice::wants_enc(only, ENC_STR_DICT) {
        out = encode_dict(values, only);
    }
    if Choice::wanted(only, ENC_STR_PLAIN, NO_METHOD) {
        out.push((Choice::new(ENC_STR_PLAIN, NO_METHOD), encode_plain(values)));
    }
    if Choice::wanted(only, ENC_STR_HEX, NO_METHOD)
        && let Some(hex) = encode_hex(values)
    {
        out.push((Choice::new(ENC_STR_HEX, NO_METHOD), hex));
    }
    if Choice::wants_enc(only, ENC_STR_NUM) {
        out.extend(encode_numbered(values, only));
    }
    out
}

/// Builds a decoded string column row by row. Values are not deduplicated
/// (a dictionary may hold a value twice): the columns decoded this way are
/// mostly unique per row, and hashing every value would cost more than it
/// saves. Consumers compare or hash dictionary entries, never codes.
struct RowStrings {
    dict: Vec<String>,
    codes: Vec<u32>,
}

impl RowStrings {
    fn new(rows: usize) -> RowStrings {
        RowStrings {
            dict: Vec::with_capacity(rows),
            codes: Vec::with_capacity(rows),
        }
    }
    fn push(&mut self, s: Option<String>) {
        match s {
            None => self.codes.push(NULL_CODE),
            Some(s) => {
                self.codes.push(self.dict.len() as u32);
                self.dict.push(s);
            }
        }
    }
    fn finish(self) -> StrColumn {
        StrColumn {
            dict: Arc::new(self.dict),
            codes: self.codes,
        }
    }
}

fn hex_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX_DIGITS[usize::from(b >> 4)] as char);
        s.push(HEX_DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn decode_dict(r: &mut Reader<'_>, rows: usize) -> Result<StrColumn> {
    let n = r.len_prefix("dictionary size")?;
    let mut dict = Vec::with_capacity(n);
    for _ in 0..n {
        dict.push(r.str("dictionary entry")?.to_owned());
    }
    let at = r.position();
    let codes = read_int_values(r, rows)?
        .into_iter()
        .map(|c| match c {
            0 => Ok(NULL_CODE),
            c if c > 0 && c <= n as i64 => Ok((c - 1) as u32),
            _ => Err(decode_err("string code", at)),
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(StrColumn {
        dict: Arc::new(dict),
        codes,
    })
}

/// Plain strings (`hex` false) or variable-length hex strings, one
/// length-prefixed value per row.
fn decode_per_row(r: &mut Reader<'_>, rows: usize, hex: bool) -> Result<StrColumn> {
    let mut out = RowStrings::new(rows.min(r.remaining()));
    for _ in 0..rows {
        let at = r.position();
        let n = r.uvarint("string length")?;
        if n == 0 {
            out.push(None);
            continue;
        }
        let len = usize::try_from(n - 1).map_err(|_| decode_err("string length", at))?;
        let bytes = r.take(len, "string bytes")?;
        let s = if hex {
            hex_string(bytes)
        } else {
            std::str::from_utf8(bytes)
                .map_err(|_| decode_err("string bytes", at))?
                .to_owned()
        };
        out.push(Some(s));
    }
    Ok(out.finish())
}

fn decode_hex(r: &mut Reader<'_>, rows: usize) -> Result<StrColumn> {
    let at = r.position();
    let fixed = r.uvarint("hex width")?;
    if fixed == 0 {
        return decode_per_row(r, rows, true);
    }
    let len = usize::try_from(fixed - 1).map_err(|_| decode_err("hex width", at))?;
    let flags = read_nulls(r, rows)?;
    let mut out = RowStrings::new(rows);
    for null in flags {
        out.push(if null {
            None
        } else {
            Some(hex_string(r.take(len, "hex bytes")?))
        });
    }
    Ok(out.finish())
}

/// The parts of a numbered-string chunk: prefix, digit width (0 = no zero
/// padding), per-row null flags and the numbers of the non-null rows.
struct NumberedChunk<'a> {
    prefix: &'a str,
    width: usize,
    flags: Vec<bool>,
    nums: Vec<i64>,
}

fn read_numbered<'a>(r: &mut Reader<'a>, rows: usize) -> Result<NumberedChunk<'a>> {
    let prefix = r.str("number prefix")?;
    let at = r.position();
    let width = r.uvarint("number width")?;
    if width > MAX_NUM_DIGITS as u64 {
        return Err(decode_err("number width", at));
    }
    let flags = read_nulls(r, rows)?;
    let n = flags.iter().filter(|&&f| !f).count();
    let nums = read_int_values(r, n)?;
    Ok(NumberedChunk {
        prefix,
        width: width as usize,
        flags,
        nums,
    })
}

fn decode_numbered(r: &mut Reader<'_>, rows: usize) -> Result<StrColumn> {
    let NumberedChunk {
        prefix,
        width,
        flags,
        nums,
    } = read_numbered(r, rows)?;
    // Numbered values repeat (user ids): one string per distinct number.
    let mut dict: Vec<String> = Vec::new();
    let mut seen: HashMap<i64, u32, SeededHash> = HashMap::default();
    let mut codes = Vec::with_capacity(rows);
    let mut nums = nums.into_iter();
    for null in flags {
        if null {
            codes.push(NULL_CODE);
            continue;
        }
        let v = nums.next().unwrap_or(-1);
        if let Some(&c) = seen.get(&v) {
            codes.push(c);
            continue;
        }
        let digits = format!("{v:0width$}");
        let fits = if width > 0 {
            digits.len() == width
        } else {
            digits.len() <= MAX_NUM_DIGITS
        };
        if v < 0 || !fits {
            return Err(decode_err("numbered string", r.position()));
        }
        let c = dict.len() as u32;
        seen.insert(v, c);
        dict.push(format!("{prefix}{digits}"));
        codes.push(c);
    }
    Ok(StrColumn {
        dict: Arc::new(dict),
        codes,
    })
}

pub fn decode_str(enc: u8, data: &[u8], rows: usize) -> Result<StrColumn> {
    let mut r = Reader::new(data);
    let col = match enc {
        ENC_STR_DICT => decode_dict(&mut r, rows)?,
        ENC_STR_PLAIN => decode_per_row(&mut r, rows, false)?,
        ENC_STR_HEX => decode_hex(&mut r, rows)?,
        ENC_STR_NUM => decode_numbered(&mut r, rows)?,
        _ => return Err(decode_err("string encoding", 0)),
    };
    if !r.is_empty() {
        return Err(decode_err("trailing bytes in string chunk", r.position()));
    }
    Ok(col)
}

// ---------- selected rows of a string chunk ----------

/// Where each selected row sits in row order: `(row, index into selected)`
/// sorted by row, so one forward walk over a chunk finds them all.
fn walk_order(selected: &[u32]) -> Vec<(u32, usize)> {
    let mut order: Vec<(u32, usize)> = selected.iter().copied().zip(0..).collect();
    order.sort_unstable();
    order
}

/// A string column of just `selected` rows; `put(i, s)` fills output row
/// `i`, unfilled rows are null.
struct Picked {
    dict: Vec<String>,
    codes: Vec<u32>,
}

impl Picked {
    fn new(n: usize) -> Picked {
        Picked {
            dict: Vec::with_capacity(n),
            codes: vec![NULL_CODE; n],
        }
    }
    fn put(&mut self, i: usize, s: String) {
        self.codes[i] = self.dict.len() as u32;
        self.dict.push(s);
    }
    fn finish(self) -> StrColumn {
        StrColumn {
            dict: Arc::new(self.dict),
            codes: self.codes,
        }
    }
}

/// Dictionary chunk: entries are checked as `&str` and only the entries
/// the selected rows use are copied out. Every code is still checked.
fn decode_dict_rows(r: &mut Reader<'_>, rows: usize, selected: &[u32]) -> Result<StrColumn> {
    let n = r.len_prefix("dictionary size")?;
    let mut entries: Vec<&str> = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(r.str("dictionary entry")?);
    }
    let at = r.position();
    let codes = read_int_values(r, rows)?;
    if codes.iter().any(|&c| c < 0 || c > n as i64) {
        return Err(decode_err("string code", at));
    }
    let mut dict: Vec<String> = Vec::new();
    let mut remap: HashMap<i64, u32, SeededHash> = HashMap::default();
    let mut out = Vec::with_capacity(selected.len());
    for &row in selected {
        let c = codes[row as usize];
        if c == 0 {
            out.push(NULL_CODE);
            continue;
        }
        let code = *remap.entry(c).or_insert_with(|| {
            dict.push(entries[(c - 1) as usize].to_owned());
            (dict.len() - 1) as u32
        });
        out.push(code);
    }
    Ok(StrColumn {
        dict: Arc::new(dict),
        codes: out,
    })
}

/// Per-row strings (plain, or variable-length hex): every length and (for
/// plain) every value's UTF-8 is checked in place; only selected rows are
/// turned into `String`s.
fn decode_per_row_rows(
    r: &mut Reader<'_>,
    rows: usize,
    hex: bool,
    selected: &[u32],
) -> Result<StrColumn> {
    let order = walk_order(selected);
    let mut next = order.iter().peekable();
    let mut out = Picked::new(selected.len());
    for row in 0..rows {
        let at = r.position();
        let n = r.uvarint("string length")?;
        if n == 0 {
            while next.next_if(|(s, _)| *s as usize == row).is_some() {}
            continue;
        }
        let len = usize::try_from(n - 1).map_err(|_| decode_err("string length", at))?;
        let bytes = r.take(len, "string bytes")?;
        let text = if hex {
            None
        } else {
            Some(std::str::from_utf8(bytes).map_err(|_| decode_err("string bytes", at))?)
        };
        while let Some(&(_, i)) = next.next_if(|(s, _)| *s as usize == row) {
            out.put(i, text.map_or_else(|| hex_string(bytes), str::to_owned));
        }
    }
    Ok(out.finish())
}

/// Hex chunk: fixed-width values are sliced out directly by their rank
/// among the non-null rows.
fn decode_hex_rows(r: &mut Reader<'_>, rows: usize, selected: &[u32]) -> Result<StrColumn> {
    let at = r.position();
    let fixed = r.uvarint("hex width")?;
    if fixed == 0 {
        return decode_per_row_rows(r, rows, true, selected);
    }
    let len = usize::try_from(fixed - 1).map_err(|_| decode_err("hex width", at))?;
    let flags = read_nulls(r, rows)?;
    let present = flags.iter().filter(|&&f| !f).count();
    let total = present
        .checked_mul(len)
        .ok_or_else(|| decode_err("hex bytes", r.position()))?;
    let bytes = r.take(total, "hex bytes")?;
    let rank = present_ranks(&flags);
    let mut out = Picked::new(selected.len());
    for (i, &row) in selected.iter().enumerate() {
        let row = row as usize;
        if !flags[row] {
            let start = rank[row] * len;
            out.put(i, hex_string(&bytes[start..start + len]));
        }
    }
    Ok(out.finish())
}

/// For each row, how many non-null rows precede it: the index of its value
/// in a stream that stores only the non-null values.
fn present_ranks(null_flags: &[bool]) -> Vec<usize> {
    let mut seen = 0usize;
    null_flags
        .iter()
        .map(|&null| {
            let rank = seen;
            seen += usize::from(!null);
            rank
        })
        .collect()
}

/// Numbered strings: the int stream is decoded (cheap) and every number
/// checked as the full decoder does; only selected rows are formatted.
fn decode_numbered_rows(r: &mut Reader<'_>, rows: usize, selected: &[u32]) -> Result<StrColumn> {
    let NumberedChunk {
        prefix,
        width,
        flags,
        nums,
    } = read_numbered(r, rows)?;
    // The full decoder refuses negatives and numbers wider than the width
    // (or than MAX_NUM_DIGITS when unpadded): the same bound here.
    let digits = if width > 0 { width } else { MAX_NUM_DIGITS };
    let bound = 10i64.pow(digits as u32);
    if nums.iter().any(|&v| v < 0 || v >= bound) {
        return Err(decode_err("numbered string", r.position()));
    }
    let rank = present_ranks(&flags);
    let mut out = Picked::new(selected.len());
    for (i, &row) in selected.iter().enumerate() {
        let row = row as usize;
        if !flags[row] {
            let v = nums[rank[row]];
            out.put(i, format!("{prefix}{v:0width$}"));
        }
    }
    Ok(out.finish())
}

/// Decodes just `selected` rows (in that order, repeats allowed) of a
/// string chunk of `rows` rows: the same checks as `decode_str` (so a chunk
/// that one refuses, the other refuses too), but only the selected values
/// become `String`s. A selected row past `rows` is `Invalid`.
pub fn decode_str_rows(enc: u8, data: &[u8], rows: usize, selected: &[u32]) -> Result<StrColumn> {
    if let Some(&bad) = selected.iter().find(|&&s| s as usize >= rows) {
        return Err(StorageError::invalid("row", format!("{bad} of {rows}")));
    }
    let mut r = Reader::new(data);
    let col = match enc {
        ENC_STR_DICT => decode_dict_rows(&mut r, rows, selected)?,
        ENC_STR_PLAIN => decode_per_row_rows(&mut r, rows, false, selected)?,
        ENC_STR_HEX => decode_hex_rows(&mut r, rows, selected)?,
        ENC_STR_NUM => decode_numbered_rows(&mut r, rows, selected)?,
        _ => return Err(decode_err("string encoding", 0)),
    };
    if !r.is_empty() {
        return Err(decode_err("trailing bytes in string chunk", r.position()));
    }
    Ok(col)
}

/// Decodes a chunk into a `Column` of the given kind.
pub fn decode_column(
    kind: crate::column::ColumnKind,
    enc: u8,
    data: &[u8],
    rows: usize,
    timestamps: Option<&[i64]>,
) -> Result<Column> {
    use crate::column::ColumnKind;
    match (kind, enc) {
        (kind, ENC_ABSENT) => Ok(Column::nulls(kind, rows)),
        (ColumnKind::Int, _) => decode_int(enc, data, rows, timestamps).map(Column::Int),
        (ColumnKind::Float, _) => decode_float(enc, data, rows).map(Column::Float),
        (ColumnKind::Str, _) => decode_str(enc, data, rows).map(Column::Str),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_int_round_trip(vals: &[i64]) {
        let ts: Vec<i64> = (0..vals.len() as i64).map(|i| i * 1000 - 7).collect();
        for (enc, bytes) in encode_int(vals, Some(&ts)) {
            let got = decode_int(enc, &bytes, vals.len(), Some(&ts)).unwrap();
            assert_eq!(got, vals, "encoding {enc}");
        }
    }

    fn str_round_trip(vals: &[Option<String>]) {
        let refs: Vec<Option<&str>> = vals.iter().map(|v| v.as_deref()).collect();
        for (enc, bytes) in encode_str(&refs) {
            let col = decode_str(enc, &bytes, vals.len()).unwrap();
            let got: Vec<Option<&str>> = (0..vals.len()).map(|i| col.get(i)).collect();
            assert_eq!(got, refs, "encoding {enc}");
        }
    }

    #[test]
    fn ints_with_extremes_and_nulls_round_trip() {
        all_int_round_trip(&[]);
        all_int_round_trip(&[NULL_INT, NULL_INT]);
        all_int_round_trip(&[5, 5, 5]);
        all_int_round_trip(&[i64::MAX, NULL_INT, i64::MIN + 1, 0, -1]);
    }

    #[test]
    fn scaled_floats_are_exact_and_others_fall_back_to_raw() {
        let vals = [138.921, 0.001, 30111.139, f64::NAN, 0.0];
        let cands = encode_float(&vals);
        assert!(cands.iter().any(|(e, _)| *e == ENC_FLOAT_SCALED));
        for (enc, bytes) in cands {
            let got = decode_float(enc, &bytes, vals.len()).unwrap();
            for (a, b) in got.iter().zip(&vals) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        }
        let odd = [std::f64::consts::PI, -0.0, 1e300];
        let cands = encode_float(&odd);
        assert!(cands.iter().all(|(e, _)| *e == ENC_FLOAT_RAW));
        let got = decode_float(ENC_FLOAT_RAW, &cands[0].1, 3).unwrap();
        assert_eq!(got[1].to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn hex_strings_take_half_the_bytes() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        let cands = encode_str(&[Some(t), None, Some("")]);
        let hex = cands.iter().find(|(e, _)| *e == ENC_STR_HEX).unwrap();
        assert_eq!(hex.1.len(), 1 + 1 + 16 + 1 + 1);
        str_round_trip(&[Some(t.into()), None, Some("".into())]);
        assert!(
            !encode_str(&[Some("ABCD")])
                .iter()
                .any(|(e, _)| *e == ENC_STR_HEX)
        );
    }

    #[test]
    fn fixed_hex_and_numbered_strings_round_trip() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        let cands = encode_str(&[Some(t), None, Some(t)]);
        let hex = cands.iter().find(|(e, _)| *e == ENC_STR_HEX).unwrap();
        // Width, null count and bitmap, then 16 bytes per value.
        assert_eq!(hex.1.len(), 1 + 1 + 1 + 32);
        let users = [Some("u-07147"), None, Some("u-00001"), Some("u-50000")];
        assert!(encode_str(&users).iter().any(|(e, _)| *e == ENC_STR_NUM));
        let owned = |v: &[Option<&str>]| v.iter().map(|s| s.map(str::to_owned)).collect::<Vec<_>>();
        str_round_trip(&owned(&users));
        str_round_trip(&owned(&[Some("u-1842"), Some("u-7"), Some("u-0")]));
        str_round_trip(&owned(&[Some("12"), Some("7")]));
        // Mixed prefixes, padding that is not uniform, or no digits: not numbered.
        for v in [
            &[Some("a1"), Some("b1")][..],
            &[Some("x007"), Some("x12")],
            &[Some("abc")],
            &[Some("n1234567890123456789")],
        ] {
            assert!(
                !encode_str(v).iter().any(|(e, _)| *e == ENC_STR_NUM),
                "{v:?}"
            );
        }
    }

    #[test]
    fn decoders_reject_garbage_without_panicking() {
        for enc in 0..12u8 {
            for data in [&[][..], &[0xff; 3], &[1, 0, 2, 65], &[0, 2, 200, 1]] {
                let _ = decode_int(enc, data, 3, None);
                let _ = decode_float(enc, data, 3);
                let _ = decode_str(enc, data, 3);
            }
        }
        // A dictionary code past the dictionary.
        assert!(decode_str(ENC_STR_DICT, &[1, 1, b'a', METHOD_PLAIN, 4], 1).is_err());
        assert!(decode_str(ENC_STR_DICT, &[1, 1, b'a', METHOD_PLAIN, 2], 1).is_ok());
        // More nulls than rows.
        assert!(decode_int(ENC_INT, &[9, 0], 2, None).is_err());
        // Relative ints without timestamps.
        let c = encode_int(&[1, 2], Some(&[0, 0]));
        let rel = c.iter().find(|(e, _)| *e == ENC_INT_REL_TS).unwrap();
        assert!(decode_int(ENC_INT_REL_TS, &rel.1, 2, None).is_err());
    }

    /// `decode_str_rows` must give the values of `decode_str` at `sel`.
    fn rows_match_full_decode(enc: u8, bytes: &[u8], rows: usize, sel: &[u32]) {
        let full = decode_str(enc, bytes, rows).unwrap();
        let part = decode_str_rows(enc, bytes, rows, sel).unwrap();
        assert_eq!(part.codes.len(), sel.len());
        for (i, &r) in sel.iter().enumerate() {
            assert_eq!(part.get(i), full.get(r as usize), "encoding {enc} row {r}");
        }
    }

    #[test]
    fn selected_rows_of_every_string_encoding() {
        let vals: Vec<Option<String>> = (0..300u32)
            .map(|i| match i % 7 {
                0 => None,
                _ => Some(format!("{:08x}", i.wrapping_mul(2_654_435_761))),
            })
            .collect();
        let varied: Vec<Option<String>> = (0..300u32)
            .map(|i| (i % 5 != 0).then(|| "ab".repeat(1 + (i % 4) as usize)))
            .collect();
        let users: Vec<Option<String>> = (0..300u32)
            .map(|i| (i % 9 != 0).then(|| format!("u-{:05}", i * 37 % 1000)))
            .collect();
        let sel = [299u32, 0, 7, 7, 150, 1, 298, 14];
        let mut seen = Vec::new();
        for col in [&vals, &varied, &users] {
            let refs: Vec<Option<&str>> = col.iter().map(|v| v.as_deref()).collect();
            for (enc, bytes) in encode_str(&refs) {
                seen.push((enc, bytes.first().copied()));
                rows_match_full_decode(enc, &bytes, col.len(), &sel);
                rows_match_full_decode(enc, &bytes, col.len(), &[]);
                assert!(matches!(
                    decode_str_rows(enc, &bytes, col.len(), &[300]),
                    Err(StorageError::Invalid { .. })
                ));
            }
        }
        for enc in [ENC_STR_DICT, ENC_STR_PLAIN, ENC_STR_NUM] {
            assert!(seen.iter().any(|(e, _)| *e == enc), "no {enc}");
        }
        // Hex both fixed-width (first byte L + 1) and per row (0).
        assert!(seen.contains(&(ENC_STR_HEX, Some(0))));
        assert!(
            seen.iter()
                .any(|(e, b)| *e == ENC_STR_HEX && b.is_some_and(|b| b > 0))
        );
        // Same refusals as the full decoder.
        assert!(decode_str_rows(ENC_STR_DICT, &[1, 1, b'a', METHOD_PLAIN, 4], 1, &[0]).is_err());
        assert!(decode_str_rows(ENC_STR_DICT, &[1, 1, b'a', METHOD_PLAIN, 2, 0], 1, &[0]).is_err());
        assert!(decode_str_rows(9, &[], 0, &[]).is_err());
    }

    proptest! {
        #[test]
        fn selected_rows_equal_the_full_decode(
            vals in prop::collection::vec(
                prop::option::of(prop_oneof![".{0,12}", "[0-9a-f]{0,8}", "[0-9a-f]{6}",
                                             "u-[0-9]{1,6}", "u-[0-9]{4}", Just("x".to_string())]),
                1..80),
            picks in prop::collection::vec(any::<u32>(), 0..20)) {
            let refs: Vec<Option<&str>> = vals.iter().map(|v| v.as_deref()).collect();
            let sel: Vec<u32> = picks.iter().map(|p| p % vals.len() as u32).collect();
            for (enc, bytes) in encode_str(&refs) {
                rows_match_full_decode(enc, &bytes, vals.len(), &sel);
            }
        }

        #[test]
        fn damaged_string_chunks_fail_alike(
            vals in prop::collection::vec(
                prop::option::of(prop_oneof![".{0,6}", "[0-9a-f]{4}", "u-[0-9]{3}"]), 1..30),
            at in any::<usize>(), flip in 1u8..=255, cut in any::<bool>()) {
            let refs: Vec<Option<&str>> = vals.iter().map(|v| v.as_deref()).collect();
            let all: Vec<u32> = (0..vals.len() as u32).collect();
            for (enc, mut bytes) in encode_str(&refs) {
                if bytes.is_empty() {
                    continue;
                }
                let i = at % bytes.len();
                if cut {
                    bytes.truncate(i);
                } else {
                    bytes[i] ^= flip;
                }
                let full = decode_str(enc, &bytes, vals.len());
                let part = decode_str_rows(enc, &bytes, vals.len(), &all);
                prop_assert_eq!(full.is_ok(), part.is_ok(), "encoding {}", enc);
                if let (Ok(f), Ok(p)) = (full, part) {
                    for r in 0..vals.len() {
                        prop_assert_eq!(f.get(r), p.get(r));
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_ints_round_trip(vals in prop::collection::vec(
            prop_oneof![any::<i64>(), -1000i64..1000, Just(NULL_INT)], 0..200)) {
            all_int_round_trip(&vals);
        }

        #[test]
        fn any_floats_round_trip(vals in prop::collection::vec(
            prop_oneof![any::<f64>(), (0u32..10_000_000).prop_map(|i| f64::from(i) / 1000.0),
                        Just(f64::NAN)], 0..200)) {
            for (enc, bytes) in encode_float(&vals) {
                let got = decode_float(enc, &bytes, vals.len()).unwrap();
                for (a, b) in got.iter().zip(&vals) {
                    prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                }
            }
        }

        #[test]
        fn any_strings_round_trip(vals in prop::collection::vec(
            prop::option::of(prop_oneof![".{0,12}", "[0-9a-f]{0,8}", Just("x".to_string()),
                                         "u-[0-9]{1,6}", "[0-9]{1,3}"]),
            0..100)) {
            str_round_trip(&vals);
        }
    }
}
