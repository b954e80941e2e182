//! The query language of the contract (section 5) as Rust values. The front
//! door parses JSON into these; the engine executes them.

use crate::event::Method;
use crate::types::{EventId, Micros, TenantId};

/// A field a query can filter on, group by or aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Timestamp,
    ReceivedAt,
    EventType,
    Service,
    Endpoint,
    Method,
    StatusCode,
    /// `"1xx"`..`"5xx"` (null when there is no status code).
    StatusClass,
    LatencyMs,
    Severity,
    RequestBytes,
    ResponseBytes,
    UserId,
    Region,
    TraceId,
    Message,
    /// `attributes.KEY`.
    Attr(String),
    /// The tenant id (platform administrator only; the front door enforces that).
    Tenant,
}

impl Field {
    /// Parses the contract's field names (`attributes.KEY` for attributes).
    pub fn parse(s: &str) -> Option<Field> {
        Some(match s {
            "timestamp" => Field::Timestamp,
            "received_at" => Field::ReceivedAt,
            "event_type" => Field::EventType,
            "service" => Field::Service,
            "endpoint" => Field::Endpoint,
            "method" => Field::Method,
            "status_code" => Field::StatusCode,
            "status_class" => Field::StatusClass,
            "latency_ms" => Field::LatencyMs,
            "severity" => Field::Severity,
            "request_bytes" => Field::RequestBytes,
            "response_bytes" => Field::ResponseBytes,
            "user_id" => Field::UserId,
            "region" => Field::Region,
            "trace_id" => Field::TraceId,
            "message" => Field::Message,
            "tenant" => Field::Tenant,
            _ => {
                let key = s
                    .strip_prefix("attributes.")
                    .or_else(|| s.strip_prefix("attr."))?;
                if key.is_empty() {
                    return None;
                }
                Field::Attr(key.to_owned())
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Field::Timestamp => "timestamp".into(),
            Field::ReceivedAt => "received_at".into(),
            Field::EventType => "event_type".into(),
            Field::Service => "service".into(),
            Field::Endpoint => "endpoint".into(),
            Field::Method => "method".into(),
            Field::StatusCode => "status_code".into(),
            Field::StatusClass => "status_class".into(),
            Field::LatencyMs => "latency_ms".into(),
            Field::Severity => "severity".into(),
            Field::RequestBytes => "request_bytes".into(),
            Field::ResponseBytes => "response_bytes".into(),
            Field::UserId => "user_id".into(),
            Field::Region => "region".into(),
            Field::TraceId => "trace_id".into(),
            Field::Message => "message".into(),
            Field::Attr(k) => format!("attributes.{k}"),
            Field::Tenant => "tenant".into(),
        }
    }
}

/// A scalar in a filter or a result cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A time (rendered RFC 3339 by the front door).
    Time(Micros),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One condition; a query's filter is the AND of its predicates.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// Field equals any of the values (one value: plain equality). Strings
    /// compare exactly; `Method`/`Severity` take their canonical spelling.
    In(Field, Vec<Value>),
    /// Numeric (or time) comparison.
    Cmp(Field, CmpOp, f64),
    /// String starts with.
    Prefix(Field, String),
    /// String contains (case-sensitive substring).
    Contains(Field, String),
    /// Status code within a class, e.g. 5 for `5xx`.
    StatusClass(u8),
    /// Field is present (not null).
    Exists(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    P50,
    P90,
    P95,
    P99,
    CountDistinct,
    ErrorRate,
    /// The Apdex score against a threshold `t` in microseconds:
    /// `(satisfied + tolerating / 2) / total`, where a value ≤ t is
    /// satisfied, ≤ 4t tolerating, and an error event is frustrated.
    Apdex(u64),
}

/// The Apdex threshold used when a query names none (the contract's
/// default `apdex_t_ms`), in microseconds.
pub const DEFAULT_APDEX_T_MICROS: u64 = 300_000;
/// The largest Apdex threshold a query may ask for: one hour.
pub const MAX_APDEX_T_MICROS: u64 = 3_600_000_000;

impl AggOp {
    pub fn parse(s: &str) -> Option<AggOp> {
        Some(match s {
            "count" => AggOp::Count,
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "p50" => AggOp::P50,
            "p90" => AggOp::P90,
            "p95" => AggOp::P95,
            "p99" => AggOp::P99,
            "count_distinct" => AggOp::CountDistinct,
            "error_rate" => AggOp::ErrorRate,
            "apdex" => AggOp::Apdex(DEFAULT_APDEX_T_MICROS),
            _ => return None,
        })
    }
    /// True when the op needs a `field` (`apdex` reads `latency_ms` when it
    /// names none).
    pub fn needs_field(self) -> bool {
        !matches!(self, AggOp::Count | AggOp::ErrorRate | AggOp::Apdex(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub op: AggOp,
    pub field: Option<Field>,
    /// Output column name.
    pub alias: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// An output column name (a group-by field's name, `bucket`, or an alias).
    pub column: String,
    pub desc: bool,
}

/// Time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Micros,
    pub to: Micros,
}

impl TimeRange {
    pub fn contains(&self, t: Micros) -> bool {
        self.from <= t && t < self.to
    }
}

/// Most rows a query may return.
pub const MAX_QUERY_LIMIT: usize = 100_000;
/// Rows returned when the query names no limit.
pub const DEFAULT_QUERY_LIMIT: usize = 1_000;

/// An aggregate query. Output columns: the group-by fields (by `Field::name`),
/// then `bucket` when `interval` is set, then the aggregation aliases.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Tenants to read (one, except for the platform administrator).
    pub tenants: Vec<TenantId>,
    pub range: TimeRange,
    pub filter: Vec<Predicate>,
    pub group_by: Vec<Field>,
    /// Bucket width in micros; empty buckets in range are returned with zero counts.
    pub interval: Option<i64>,
    pub aggregations: Vec<Aggregation>,
    pub order_by: Vec<OrderBy>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    pub scanned_rows: u64,
    pub segments_scanned: u64,
    pub segments_pruned: u64,
    /// Segments answered from rollups rather than rows.
    pub segments_from_rollups: u64,
    pub elapsed_micros: u64,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub stats: QueryStats,
}

/// Newest-first event search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub tenant: TenantId,
    pub range: TimeRange,
    pub filter: Vec<Predicate>,
    pub limit: usize,
    /// Continue strictly after (older than) this id.
    pub cursor: Option<EventId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub events: Vec<crate::event::Event>,
    /// Set when more events may follow; pass back as `cursor`.
    pub next_cursor: Option<EventId>,
    pub stats: QueryStats,
}

/// Keeps `Method` reachable from this module for parsers of filter values.
pub fn parse_method(s: &str) -> Option<Method> {
    Method::parse(s)
}
