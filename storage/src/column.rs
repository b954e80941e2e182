//! Decoded columns: the one in-memory shape shared by active segments, the
//! sealed-segment reader and the query engine.
//!
//! Nulls are sentinels, not bitmaps, so that scans stay tight loops:
//! `NULL_INT` for integers, NaN for floats (the contract forbids non-finite
//! latencies, so NaN never is a real value), `NULL_CODE` for strings.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, StorageError};

/// Null in an integer column.
pub const NULL_INT: i64 = i64::MIN;
/// Null in a dictionary-coded string column.
pub const NULL_CODE: u32 = u32::MAX;

/// Which column. Core fields are fixed; attributes are discovered per
/// segment, one typed column per (key, value type) seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnKey {
    /// Event time, micros (Int, never null).
    Timestamp,
    /// Store-wide sequence number (Int, never null).
    Seq,
    /// Receive time, micros (Int, never null).
    ReceivedAt,
    /// Str, never null.
    EventType,
    Service,
    Endpoint,
    /// Int: `Method::code()`.
    Method,
    /// Int.
    StatusCode,
    /// Float.
    LatencyMs,
    /// Int: `Severity::code()`.
    Severity,
    RequestBytes,
    ResponseBytes,
    UserId,
    Region,
    TraceId,
    Message,
    /// String-valued attribute `key` (Str).
    AttrStr(String),
    /// Number-valued attribute `key` (Float).
    AttrNum(String),
    /// Bool-valued attribute `key` (Int 0/1).
    AttrBool(String),
}

impl ColumnKey {
    /// The core columns in their on-disk order.
    pub const CORE: [ColumnKey; 16] = [
        ColumnKey::Timestamp,
        ColumnKey::Seq,
        ColumnKey::ReceivedAt,
        ColumnKey::EventType,
        ColumnKey::Service,
        ColumnKey::Endpoint,
        ColumnKey::Method,
        ColumnKey::StatusCode,
        ColumnKey::LatencyMs,
        ColumnKey::Severity,
        ColumnKey::RequestBytes,
        ColumnKey::ResponseBytes,
        ColumnKey::UserId,
        ColumnKey::Region,
        ColumnKey::TraceId,
        ColumnKey::Message,
    ];

    /// What kind of column this key holds.
    pub fn kind(&self) -> ColumnKind {
        use ColumnKey::*;
        match self {
            Timestamp | Seq | ReceivedAt | Method | StatusCode | Severity | RequestBytes
            | ResponseBytes | AttrBool(_) => ColumnKind::Int,
            LatencyMs | AttrNum(_) => ColumnKind::Float,
            EventType | Service | Endpoint | UserId | Region | TraceId | Message | AttrStr(_) => {
                ColumnKind::Str
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Float,
    Str,
}

/// Dictionary-coded strings: `dict[codes[row]]`, `NULL_CODE` for null.
/// Filters compare against the (small) dictionary once, then test codes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StrColumn {
    pub dict: Arc<Vec<String>>,
    pub codes: Vec<u32>,
}

impl StrColumn {
    pub fn get(&self, row: usize) -> Option<&str> {
        match self.codes[row] {
            NULL_CODE => None,
            c => self.dict.get(c as usize).map(String::as_str),
        }
    }
}

/// One decoded column of a block.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(StrColumn),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Str(s) => s.codes.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values of `rows` (in that order, repeats allowed) as a new
    /// column; a string column keeps sharing its dictionary. A row past the
    /// end is `Invalid`, never a panic.
    pub fn gather(&self, rows: &[u32]) -> Result<Column> {
        fn pick<T: Copy>(vals: &[T], rows: &[u32]) -> Result<Vec<T>> {
            rows.iter()
                .map(|&r| {
                    vals.get(r as usize).copied().ok_or_else(|| {
                        StorageError::invalid("row", format!("{r} of {}", vals.len()))
                    })
                })
                .collect()
        }
        Ok(match self {
            Column::Int(v) => Column::Int(pick(v, rows)?),
            Column::Float(v) => Column::Float(pick(v, rows)?),
            Column::Str(s) => Column::Str(StrColumn {
                dict: s.dict.clone(),
                codes: pick(&s.codes, rows)?,
            }),
        })
    }
    /// A column of `rows` nulls of `kind` (an attribute absent from a block).
    pub fn nulls(kind: ColumnKind, rows: usize) -> Column {
        match kind {
            ColumnKind::Int => Column::Int(vec![NULL_INT; rows]),
            ColumnKind::Float => Column::Float(vec![f64::NAN; rows]),
            ColumnKind::Str => Column::Str(StrColumn {
                dict: Arc::new(Vec::new()),
                codes: vec![NULL_CODE; rows],
            }),
        }
    }
}

/// The columns of one block that a query asked for. A key that the block
/// does not have (an attribute never seen there) reads as all-null.
#[derive(Debug, Clone, Default)]
pub struct ColumnSet {
    pub rows: usize,
    pub columns: HashMap<ColumnKey, Arc<Column>>,
}

impl ColumnSet {
    pub fn get(&self, key: &ColumnKey) -> Option<&Column> {
        self.columns.get(key).map(|c| c.as_ref())
    }
}

/// Min/max/null statistics of a column over a block or a whole segment,
/// used to skip data a filter cannot match.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnStats {
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
    /// Byte-wise min/max of the non-null strings.
    Str {
        min: String,
        max: String,
        nulls: u64,
    },
    /// Every value is null.
    AllNull {
        nulls: u64,
    },
}
