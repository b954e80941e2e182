//! Group-by, time buckets and aggregations.
//!
//! `AggPlan` is the validated shape of a query's output; `GroupTable` holds
//! the partial state of one worker (group keys interned to small ids, one
//! accumulator per (group, bucket)) and is fed either decoded rows or
//! rollup rows, merged with other workers' tables, then rendered, ordered
//! and limited. Nothing here reads data or knows where rows come from.

use std::cmp::Ordering;

use crate::column::{Column, ColumnKey, ColumnKind, ColumnSet, NULL_CODE, NULL_INT, StrColumn};
use crate::error::{Result, StorageError};
use crate::event::{Method, Severity};
use crate::query::control::{Meter, QueryControl, UNLIMITED};
use crate::query::distinct::Distinct;
use crate::query::filter::{FieldSource, attr_keys, field_source};
use crate::query::hash::{FxHashMap, hash_str, mix64};
use crate::query::model::{
    AggOp, DEFAULT_QUERY_LIMIT, Field, MAX_APDEX_T_MICROS, MAX_QUERY_LIMIT, OrderBy, Query, Value,
};
use crate::rollup::RollupAgg;
use crate::sketch::LatencySketch;

/// Most time buckets one query may span: a day at one-second resolution
/// still fits; beyond it the zero-filled output alone would be huge.
pub const MAX_BUCKETS: usize = 100_000;
/// Most (group x bucket) cells the zero-fill may produce before ordering and
/// limiting. Each cell costs a row of values (~100 bytes), so this bounds a
/// query's output memory to a few hundred MB.
pub const MAX_OUTPUT_CELLS: usize = 2_000_000;

fn invalid(detail: String) -> StorageError {
    StorageError::invalid("query", detail)
}

/// What an aggregation reads.
#[derive(Debug, Clone, PartialEq)]
enum AggInput {
    /// Nothing beyond the row count and the error flag.
    None,
    /// A numeric column (Int or Float).
    Num(ColumnKey),
    /// Any field (count of non-null values, distinct values).
    Field(FieldSource),
}

#[derive(Debug, Clone)]
struct AggSpec {
    op: AggOp,
    input: AggInput,
}

/// The validated output shape of a query.
#[derive(Debug, Clone)]
pub struct AggPlan {
    pub group_by: Vec<Field>,
    group_src: Vec<FieldSource>,
    pub interval: Option<i64>,
    /// Start of the first bucket (aligned to the interval since the epoch).
    pub first_bucket: i64,
    pub nbuckets: usize,
    aggs: Vec<AggSpec>,
    pub need_errors: bool,
    /// Whether an aggregation needs each row's error flag beside its value
    /// (`apdex`), not only the group's error count.
    row_errors: bool,
    /// Columns the group keys, buckets, aggregations and error flag read.
    pub columns: Vec<ColumnKey>,
    /// Columns the group keys and buckets alone read.
    pub group_columns: Vec<ColumnKey>,
    columns_out: Vec<String>,
    order_by: Vec<(usize, bool)>,
    limit: usize,
}

fn push_key(out: &mut Vec<ColumnKey>, k: ColumnKey) {
    if !out.contains(&k) {
        out.push(k);
    }
}

fn push_source(out: &mut Vec<ColumnKey>, s: &FieldSource) {
    match s {
        FieldSource::Column(k) => push_key(out, k.clone()),
        FieldSource::StatusClass => push_key(out, ColumnKey::StatusCode),
        FieldSource::Tenant => {}
        FieldSource::Attr(k) => {
            for key in attr_keys(k) {
                push_key(out, key);
            }
        }
    }
}

impl AggPlan {
    pub fn new(q: &Query) -> Result<AggPlan> {
        let group_src: Vec<FieldSource> = q.group_by.iter().map(field_source).collect();
        let mut columns = Vec::new();
        for s in &group_src {
            push_source(&mut columns, s);
        }
        let (first_bucket, nbuckets) = match q.interval {
            None => (0, 1),
            Some(w) if w <= 0 => return Err(invalid(format!("interval {w} must be positive"))),
            Some(w) => {
                push_key(&mut columns, ColumnKey::Timestamp);
                let first = q.range.from.floor_to(w).0;
                let span = i128::from(q.range.to.0) - i128::from(first);
                let n = if q.range.to <= q.range.from {
                    0
                } else {
                    (span + i128::from(w) - 1) / i128::from(w)
                };
                if n > MAX_BUCKETS as i128 {
                    return Err(invalid(format!(
                        "{n} buckets exceed the limit of {MAX_BUCKETS}; widen the interval"
                    )));
                }
                (first, n as usize)
            }
        };
        let group_columns = columns.clone();
        let mut aggs = Vec::new();
        let mut need_errors = false;
        let mut row_errors = false;
        let numeric = |f: &Field| match field_source(f) {
            FieldSource::Attr(k) => Ok(ColumnKey::AttrNum(k)),
            FieldSource::Column(k)
                if k.kind() != ColumnKind::Str && !matches!(f, Field::Method | Field::Severity) =>
            {
                Ok(k)
            }
            _ => Err(invalid(format!("{} is not numeric", f.name()))),
        };
        for a in &q.aggregations {
            let input = match (a.op, &a.field) {
                (AggOp::Count, None) => AggInput::None,
                (AggOp::ErrorRate, _) => {
                    need_errors = true;
                    AggInput::None
                }
                (AggOp::Apdex(t), field) => {
                    if t == 0 || t > MAX_APDEX_T_MICROS {
                        return Err(invalid(format!(
                            "apdex threshold of {} must be above 0 and at most {} ms",
                            a.alias,
                            MAX_APDEX_T_MICROS / 1000
                        )));
                    }
                    need_errors = true;
                    row_errors = true;
                    let key = numeric(field.as_ref().unwrap_or(&Field::LatencyMs))?;
                    push_key(&mut columns, key.clone());
                    AggInput::Num(key)
                }
                (AggOp::Count | AggOp::CountDistinct, Some(f)) => {
                    let s = field_source(f);
                    push_source(&mut columns, &s);
                    AggInput::Field(s)
                }
                (op, None) => {
                    return Err(invalid(format!("{op:?} of {} needs a field", a.alias)));
                }
                (_, Some(f)) => {
                    let key = numeric(f)?;
                    push_key(&mut columns, key.clone());
                    AggInput::Num(key)
                }
            };
            aggs.push(AggSpec { op: a.op, input });
        }
        if need_errors {
            push_key(&mut columns, ColumnKey::StatusCode);
            push_key(&mut columns, ColumnKey::EventType);
        }
        let mut columns_out: Vec<String> = q.group_by.iter().map(Field::name).collect();
        if q.interval.is_some() {
            columns_out.push("bucket".into());
        }
        columns_out.extend(q.aggregations.iter().map(|a| a.alias.clone()));
        let order_by = q
            .order_by
            .iter()
            .map(|OrderBy { column, desc }| {
                columns_out
                    .iter()
                    .position(|c| c == column)
                    .map(|i| (i, *desc))
                    .ok_or_else(|| invalid(format!("order_by names unknown column {column}")))
            })
            .collect::<Result<_>>()?;
        let limit = match q.limit {
            0 => DEFAULT_QUERY_LIMIT,
            n => n.min(MAX_QUERY_LIMIT),
        };
        Ok(AggPlan {
            group_by: q.group_by.clone(),
            group_src,
            interval: q.interval,
            first_bucket,
            nbuckets,
            aggs,
            need_errors,
            row_errors,
            columns,
            group_columns,
            columns_out,
            order_by,
            limit,
        })
    }

    /// True when the plan reads no column at all (a plain count, possibly
    /// per tenant): blocks can then be counted without decoding them.
    pub fn counts_only(&self) -> bool {
        self.columns.is_empty()
    }
}

/// A group-by value as interned: hashable, typed as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GroupValue {
    Null,
    Str(String),
    Int(i64),
    /// Bits of a finite float.
    Float(u64),
    Bool(bool),
}

impl GroupValue {
    /// Heap bytes the value owns (for the query memory budget).
    fn heap_bytes(&self) -> usize {
        match self {
            GroupValue::Str(s) => s.len(),
            _ => 0,
        }
    }
}

fn render(field: &Field, v: &GroupValue) -> Value {
    match (field, v) {
        (_, GroupValue::Null) => Value::Null,
        (Field::Method, GroupValue::Int(c)) => u8::try_from(*c)
            .ok()
            .and_then(Method::from_code)
            .map_or(Value::Null, |m| Value::Str(m.as_str().into())),
        (Field::Severity, GroupValue::Int(c)) => u8::try_from(*c)
            .ok()
            .and_then(Severity::from_code)
            .map_or(Value::Null, |m| Value::Str(m.as_str().into())),
        (Field::StatusClass, GroupValue::Int(c)) => Value::Str(format!("{c}xx")),
        (Field::Timestamp | Field::ReceivedAt, GroupValue::Int(t)) => {
            Value::Time(crate::types::Micros(*t))
        }
        (_, GroupValue::Str(s)) => Value::Str(s.clone()),
        (_, GroupValue::Int(i)) => Value::Int(*i),
        (_, GroupValue::Float(b)) => Value::Float(f64::from_bits(*b)),
        (_, GroupValue::Bool(b)) => Value::Bool(*b),
    }
}

/// Reads one field's values out of a decoded block.
enum FieldReader<'a> {
    Str(&'a StrColumn),
    Int(&'a [i64]),
    Float(&'a [f64]),
    Class(&'a [i64]),
    Const(GroupValue),
    Attr(Option<&'a StrColumn>, Option<&'a [f64]>, Option<&'a [i64]>),
}

fn class_of(code: i64) -> Option<i64> {
    (100..600).contains(&code).then_some(code / 100)
}

impl<'a> FieldReader<'a> {
    fn new(src: &FieldSource, cols: &'a ColumnSet, tenant: &str) -> FieldReader<'a> {
        let col = |k: &ColumnKey| cols.get(k);
        match src {
            FieldSource::Tenant => FieldReader::Const(GroupValue::Str(tenant.to_owned())),
            FieldSource::StatusClass => match col(&ColumnKey::StatusCode) {
                Some(Column::Int(v)) => FieldReader::Class(v),
                _ => FieldReader::Const(GroupValue::Null),
            },
            FieldSource::Column(k) => match col(k) {
                Some(Column::Str(s)) => FieldReader::Str(s),
                Some(Column::Int(v)) => FieldReader::Int(v),
                Some(Column::Float(v)) => FieldReader::Float(v),
                None => FieldReader::Const(GroupValue::Null),
            },
            FieldSource::Attr(k) => {
                let [ks, kn, kb] = attr_keys(k);
                FieldReader::Attr(
                    match col(&ks) {
                        Some(Column::Str(s)) => Some(s),
                        _ => None,
                    },
                    match col(&kn) {
                        Some(Column::Float(v)) => Some(v.as_slice()),
                        _ => None,
                    },
                    match col(&kb) {
                        Some(Column::Int(v)) => Some(v.as_slice()),
                        _ => None,
                    },
                )
            }
        }
    }

    fn value(&self, r: usize) -> GroupValue {
        match self {
            FieldReader::Str(s) => s
                .get(r)
                .map_or(GroupValue::Null, |x| GroupValue::Str(x.to_owned())),
            FieldReader::Int(v) => match v[r] {
                NULL_INT => GroupValue::Null,
                x => GroupValue::Int(x),
            },
            FieldReader::Float(v) if v[r].is_nan() => GroupValue::Null,
            // `+ 0.0` folds -0.0 into 0.0 so both group together.
            FieldReader::Float(v) => GroupValue::Float((v[r] + 0.0).to_bits()),
            FieldReader::Class(v) => class_of(v[r]).map_or(GroupValue::Null, GroupValue::Int),
            FieldReader::Const(g) => g.clone(),
            FieldReader::Attr(s, n, b) => {
                if let Some(x) = s.and_then(|s| s.get(r)) {
                    GroupValue::Str(x.to_owned())
                } else if let Some(x) = n.map(|n| n[r]).filter(|x| !x.is_nan()) {
                    GroupValue::Float((x + 0.0).to_bits())
                } else if let Some(x) = b.map(|b| b[r]).filter(|x| *x != NULL_INT) {
                    GroupValue::Bool(x != 0)
                } else {
                    GroupValue::Null
                }
            }
        }
    }

    fn is_null(&self, r: usize) -> bool {
        match self {
            FieldReader::Str(s) => s.codes[r] == NULL_CODE,
            FieldReader::Int(v) => v[r] == NULL_INT,
            FieldReader::Float(v) => v[r].is_nan(),
            FieldReader::Class(v) => class_of(v[r]).is_none(),
            FieldReader::Const(g) => *g == GroupValue::Null,
            FieldReader::Attr(..) => self.value(r) == GroupValue::Null,
        }
    }
}

/// Interns one group-by field's values to dense ids.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<GroupValue, u32>,
    values: Vec<GroupValue>,
    /// Integer values seen before, so integer columns skip building a
    /// `GroupValue` per row.
    ints: FxHashMap<i64, u32>,
}

impl Interner {
    fn intern(&mut self, v: GroupValue) -> u32 {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }

    /// Ids of `reader`'s values at the rows of `sel`.
    fn ids_for(&mut self, reader: &FieldReader<'_>, sel: &[u32], out: &mut Vec<u32>) {
        out.clear();
        match reader {
            FieldReader::Str(s) => {
                // Dictionary entries are interned once per block, lazily.
                let mut trans = vec![u32::MAX; s.dict.len()];
                let null = self.intern(GroupValue::Null);
                for &r in sel {
                    let code = s.codes[r as usize];
                    let id = match trans.get(code as usize) {
                        None => null,
                        Some(&u32::MAX) => {
                            let id = self.intern(GroupValue::Str(s.dict[code as usize].clone()));
                            trans[code as usize] = id;
                            id
                        }
                        Some(&id) => id,
                    };
                    out.push(id);
                }
            }
            FieldReader::Int(v) | FieldReader::Class(v) => {
                let class = matches!(reader, FieldReader::Class(_));
                for &r in sel {
                    let x = v[r as usize];
                    let key = if class {
                        class_of(x).unwrap_or(NULL_INT)
                    } else {
                        x
                    };
                    let id = match self.ints.get(&key) {
                        Some(&id) => id,
                        None => {
                            let g = if key == NULL_INT {
                                GroupValue::Null
                            } else {
                                GroupValue::Int(key)
                            };
                            let id = self.intern(g);
                            self.ints.insert(key, id);
                            id
                        }
                    };
                    out.push(id);
                }
            }
            FieldReader::Const(g) => {
                let id = self.intern(g.clone());
                out.resize(sel.len(), id);
            }
            FieldReader::Float(_) | FieldReader::Attr(..) => {
                for &r in sel {
                    let id = self.intern(reader.value(r as usize));
                    out.push(id);
                }
            }
        }
    }
}

/// One aggregation's running state.
#[derive(Debug, Clone)]
enum AggAcc {
    /// count (no field) and error_rate read the group's own counters.
    Derived,
    NonNull(u64),
    Sum {
        sum: f64,
        n: u64,
    },
    Min(f64),
    Max(f64),
    Sketch(LatencySketch),
    Distinct(Distinct),
    /// Apdex counts: values within t, within 4t (not within t), and every
    /// value or error considered.
    Apdex {
        satisfied: u64,
        tolerating: u64,
        total: u64,
    },
}

impl AggAcc {
    fn new(s: &AggSpec) -> AggAcc {
        match (s.op, &s.input) {
            (AggOp::Count, AggInput::None) | (AggOp::ErrorRate, _) => AggAcc::Derived,
            (AggOp::Count, _) => AggAcc::NonNull(0),
            (AggOp::Sum | AggOp::Avg, _) => AggAcc::Sum { sum: 0.0, n: 0 },
            (AggOp::Min, _) => AggAcc::Min(f64::NAN),
            (AggOp::Max, _) => AggAcc::Max(f64::NAN),
            (AggOp::P50 | AggOp::P90 | AggOp::P95 | AggOp::P99, _) => {
                AggAcc::Sketch(LatencySketch::new())
            }
            (AggOp::CountDistinct, _) => AggAcc::Distinct(Distinct::default()),
            (AggOp::Apdex(_), _) => AggAcc::Apdex {
                satisfied: 0,
                tolerating: 0,
                total: 0,
            },
        }
    }

    #[inline]
    fn add(&mut self, v: f64) {
        match self {
            AggAcc::Derived => {}
            AggAcc::NonNull(n) => *n += 1,
            AggAcc::Sum { sum, n } => {
                *sum += v;
                *n += 1;
            }
            // `f64::min` ignores a NaN operand, so NaN works as "no value yet".
            AggAcc::Min(m) => *m = m.min(v),
            AggAcc::Max(m) => *m = m.max(v),
            AggAcc::Sketch(s) => s.add(v),
            AggAcc::Distinct(s) => {
                s.insert(v.to_bits());
            }
            // Values reach apdex through `add_apdex`, with their error flag.
            AggAcc::Apdex { .. } => {}
        }
    }

    /// Counts one row for `apdex` with threshold `t` (ms): an error is
    /// frustrated whatever its value; a row with neither a value nor an
    /// error is not a sample.
    #[inline]
    fn add_apdex(&mut self, v: f64, error: bool, t: f64) {
        if let AggAcc::Apdex {
            satisfied,
            tolerating,
            total,
        } = self
        {
            if error {
                *total += 1;
            } else if !v.is_nan() {
                *total += 1;
                *satisfied += u64::from(v <= t);
                *tolerating += u64::from(v > t && v <= 4.0 * t);
            }
        }
    }

    fn merge(&mut self, o: &AggAcc) {
        match (self, o) {
            (AggAcc::NonNull(a), AggAcc::NonNull(b)) => *a += b,
            (AggAcc::Sum { sum, n }, AggAcc::Sum { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (AggAcc::Min(a), AggAcc::Min(b)) => *a = a.min(*b),
            (AggAcc::Max(a), AggAcc::Max(b)) => *a = a.max(*b),
            (AggAcc::Sketch(a), AggAcc::Sketch(b)) => a.merge(b),
            (AggAcc::Distinct(a), AggAcc::Distinct(b)) => a.merge(b),
            (
                AggAcc::Apdex {
                    satisfied,
                    tolerating,
                    total,
                },
                AggAcc::Apdex {
                    satisfied: s2,
                    tolerating: t2,
                    total: n2,
                },
            ) => {
                *satisfied += s2;
                *tolerating += t2;
                *total += n2;
            }
            _ => {}
        }
    }

    /// Folds a rollup row's latency aggregates in (only latency aggregations
    /// are ever answered from rollups).
    fn merge_rollup(&mut self, r: &RollupAgg) {
        match self {
            AggAcc::NonNull(n) => *n += r.latency_count,
            AggAcc::Sum { sum, n } => {
                *sum += r.latency_sum;
                *n += r.latency_count;
            }
            AggAcc::Min(m) if r.latency_count > 0 => *m = m.min(r.latency_min),
            AggAcc::Max(m) if r.latency_count > 0 => *m = m.max(r.latency_max),
            AggAcc::Sketch(s) => s.merge(&r.sketch),
            _ => {}
        }
    }
}

/// The state of one (group, bucket) cell.
#[derive(Debug, Clone)]
struct Acc {
    count: u64,
    errors: u64,
    aggs: Vec<AggAcc>,
}

impl Acc {
    fn new(plan: &AggPlan) -> Acc {
        Acc {
            count: 0,
            errors: 0,
            aggs: plan.aggs.iter().map(AggAcc::new).collect(),
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.count += o.count;
        self.errors += o.errors;
        for (a, b) in self.aggs.iter_mut().zip(&o.aggs) {
            a.merge(b);
        }
    }

    fn render(&self, plan: &AggPlan, out: &mut Vec<Value>) {
        let float = |x: f64| {
            if x.is_nan() {
                Value::Null
            } else {
                Value::Float(x)
            }
        };
        for (spec, acc) in plan.aggs.iter().zip(&self.aggs) {
            out.push(match (spec.op, acc) {
                (AggOp::ErrorRate, _) if self.count == 0 => Value::Float(0.0),
                (AggOp::ErrorRate, _) => Value::Float(self.errors as f64 / self.count as f64),
                (_, AggAcc::Derived) => Value::Int(self.count as i64),
                (_, AggAcc::NonNull(n)) => Value::Int(*n as i64),
                (_, AggAcc::Sum { n: 0, .. }) => Value::Null,
                (AggOp::Avg, AggAcc::Sum { sum, n }) => Value::Float(sum / *n as f64),
                (_, AggAcc::Sum { sum, .. }) => Value::Float(*sum),
                (_, AggAcc::Min(m) | AggAcc::Max(m)) => float(*m),
                (op, AggAcc::Sketch(s)) => {
                    let q = match op {
                        AggOp::P50 => 0.5,
                        AggOp::P90 => 0.9,
                        AggOp::P95 => 0.95,
                        _ => 0.99,
                    };
                    s.quantile(q).map_or(Value::Null, Value::Float)
                }
                (_, AggAcc::Distinct(s)) => Value::Int(s.count() as i64),
                (_, AggAcc::Apdex { total: 0, .. }) => Value::Null,
                (
                    _,
                    AggAcc::Apdex {
                        satisfied,
                        tolerating,
                        total,
                    },
                ) => Value::Float((*satisfied as f64 + *tolerating as f64 / 2.0) / *total as f64),
            });
        }
    }
}

/// Where one block's rows go: single rows, or rollup rows carrying
/// pre-aggregated counts.
pub enum Feed<'a> {
    Rows,
    Rollup(&'a [&'a RollupAgg]),
}

/// One worker's partial answer.
pub struct GroupTable<'p> {
    plan: &'p AggPlan,
    interners: Vec<Interner>,
    /// Composite keys (only with two or more group-by fields).
    keys: FxHashMap<Box<[u32]>, u32>,
    key_list: Vec<Box<[u32]>>,
    /// (group id << 32 | bucket) -> index in `states` (with group-by).
    slots: FxHashMap<u64, u32>,
    slot_keys: Vec<(u32, u32)>,
    /// Without group-by: one state per bucket, allocated up front.
    states: Vec<Acc>,
    scratch: Vec<u32>,
    /// The query's deadline and memory budget.
    control: &'p QueryControl,
    /// Growth not yet charged to `control`.
    meter: Meter,
    /// Estimated bytes of one new (group, bucket) cell.
    slot_bytes: usize,
    /// Whether growth is charged (off while merging finished workers:
    /// their growth was charged already).
    charging: bool,
    /// The first budget or limit error met while adding; rows keep being
    /// accepted until the caller collects it after the block.
    error: Option<StorageError>,
}

/// Bytes one percentile sketch is assumed to take in the memory budget:
/// a few dozen occupied bins of the log-scale histogram plus its header.
const SKETCH_ESTIMATE_BYTES: usize = 512;
/// Hash-map entry overhead assumed per cell, group key and interned value.
const ENTRY_OVERHEAD_BYTES: usize = 32;

impl<'p> GroupTable<'p> {
    pub fn new(plan: &'p AggPlan) -> GroupTable<'p> {
        Self::with_control(plan, &UNLIMITED)
    }

    /// A table whose growth is charged to `control`'s memory budget.
    pub fn with_control(plan: &'p AggPlan, control: &'p QueryControl) -> GroupTable<'p> {
        let sketches = plan
            .aggs
            .iter()
            .filter(|a| matches!(a.op, AggOp::P50 | AggOp::P90 | AggOp::P95 | AggOp::P99))
            .count();
        let slot_bytes = std::mem::size_of::<Acc>()
            + plan.aggs.len() * std::mem::size_of::<AggAcc>()
            + sketches * SKETCH_ESTIMATE_BYTES
            + ENTRY_OVERHEAD_BYTES
            + std::mem::size_of::<(u32, u32)>();
        let states = if plan.group_by.is_empty() {
            (0..plan.nbuckets).map(|_| Acc::new(plan)).collect()
        } else {
            Vec::new()
        };
        GroupTable {
            plan,
            interners: plan.group_by.iter().map(|_| Interner::default()).collect(),
            keys: FxHashMap::default(),
            key_list: Vec::new(),
            slots: FxHashMap::default(),
            slot_keys: Vec::new(),
            states,
            scratch: Vec::new(),
            control,
            meter: Meter::default(),
            slot_bytes,
            charging: true,
            error: None,
        }
    }

    /// Adds `bytes` to the query's memory; remembers the first error.
    #[inline]
    fn grow(&mut self, bytes: usize) {
        if self.charging
            && self.error.is_none()
            && let Err(e) = self.meter.grow(self.control, bytes)
        {
            self.error = Some(e);
        }
    }

    /// The first budget or limit error met since the last call.
    pub fn take_error(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn group_of(&mut self, comps: &[u32]) -> u32 {
        match comps {
            [] => 0,
            [one] => *one,
            _ => {
                if let Some(&g) = self.keys.get(comps) {
                    return g;
                }
                let g = self.key_list.len() as u32;
                self.key_list.push(comps.into());
                self.keys.insert(comps.into(), g);
                self.grow(2 * (comps.len() * 4 + ENTRY_OVERHEAD_BYTES));
                g
            }
        }
    }

    fn slot_of(&mut self, gid: u32, bucket: u32) -> usize {
        if self.plan.group_by.is_empty() {
            return bucket as usize;
        }
        let key = (u64::from(gid) << 32) | u64::from(bucket);
        if let Some(&s) = self.slots.get(&key) {
            return s as usize;
        }
        let s = self.states.len();
        self.states.push(Acc::new(self.plan));
        self.slot_keys.push((gid, bucket));
        self.slots.insert(key, s as u32);
        self.grow(self.slot_bytes);
        if self.charging && self.error.is_none() && self.states.len() > MAX_OUTPUT_CELLS {
            self.error = Some(invalid(format!(
                "more than {MAX_OUTPUT_CELLS} result cells; \
                 narrow the group-by or widen the interval"
            )));
        }
        s
    }

    /// Slot of each row of `sel`; rows outside every bucket are dropped
    /// from `sel` first (they are outside the range, which the caller
    /// normally already excluded).
    fn slots_for(&mut self, cols: &ColumnSet, sel: &mut Vec<u32>, tenant: &str) -> Vec<u32> {
        let mut buckets: Vec<u32> = Vec::new();
        if let Some(w) = self.plan.interval {
            let Some(Column::Int(ts)) = cols.get(&ColumnKey::Timestamp) else {
                sel.clear();
                return Vec::new();
            };
            let (first, n) = (self.plan.first_bucket, self.plan.nbuckets as i64);
            sel.retain(|&r| {
                let b = (ts[r as usize] - first).div_euclid(w);
                (0..n).contains(&b)
            });
            buckets = sel
                .iter()
                .map(|&r| (ts[r as usize] - first).div_euclid(w) as u32)
                .collect();
        }
        let nf = self.plan.group_by.len();
        let mut comps: Vec<Vec<u32>> = Vec::with_capacity(nf);
        for i in 0..nf {
            let reader = FieldReader::new(&self.plan.group_src[i], cols, tenant);
            let mut ids = std::mem::take(&mut self.scratch);
            let before = self.interners[i].values.len();
            self.interners[i].ids_for(&reader, sel, &mut ids);
            let added = self.interners[i].values.len() - before;
            if added > 0 {
                let text: usize = self.interners[i].values[before..]
                    .iter()
                    .map(GroupValue::heap_bytes)
                    .sum();
                self.grow(added * (2 * ENTRY_OVERHEAD_BYTES) + 2 * text);
            }
            comps.push(ids.clone());
            self.scratch = ids;
        }
        let mut key = vec![0u32; nf];
        (0..sel.len())
            .map(|j| {
                for (f, c) in comps.iter().enumerate() {
                    key[f] = c[j];
                }
                let gid = self.group_of(&key);
                let b = buckets.get(j).copied().unwrap_or(0);
                self.slot_of(gid, b) as u32
            })
            .collect()
    }

    /// Adds `n` rows that need no column (a plain count, grouped at most
    /// by tenant).
    pub fn add_uniform(&mut self, n: u64, tenant: &str) {
        let empty = ColumnSet::default();
        let mut sel = vec![0u32];
        if self.plan.interval.is_some() || self.plan.nbuckets == 0 {
            return;
        }
        let slots = self.slots_for(&empty, &mut sel, tenant);
        if let Some(&s) = slots.first() {
            self.states[s as usize].count += n;
        }
    }

    /// Adds the rows `sel` of `cols` (decoded rows, or rollup rows with
    /// their aggregates in `feed`).
    pub fn add(&mut self, cols: &ColumnSet, sel: &[u32], tenant: &str, feed: Feed<'_>) {
        let mut sel = sel.to_vec();
        let slots = self.slots_for(cols, &mut sel, tenant);
        match feed {
            Feed::Rollup(aggs) => {
                for (&s, &r) in slots.iter().zip(&sel) {
                    let (acc, ra) = (&mut self.states[s as usize], aggs[r as usize]);
                    acc.count += ra.count;
                    acc.errors += ra.errors;
                    for a in &mut acc.aggs {
                        a.merge_rollup(ra);
                    }
                }
            }
            Feed::Rows => self.add_rows(cols, &sel, &slots, tenant),
        }
    }

    fn add_rows(&mut self, cols: &ColumnSet, sel: &[u32], slots: &[u32], tenant: &str) {
        let mut grown = 0usize;
        let states = &mut self.states;
        // Each selected row's error flag, when an aggregation needs it.
        let mut row_errors: Vec<bool> = Vec::new();
        for &s in slots {
            states[s as usize].count += 1;
        }
        if self.plan.need_errors {
            let status = match cols.get(&ColumnKey::StatusCode) {
                Some(Column::Int(v)) => Some(v),
                _ => None,
            };
            let (types, error_code) = match cols.get(&ColumnKey::EventType) {
                Some(Column::Str(c)) => (Some(c), c.dict.iter().position(|s| s == "error")),
                _ => (None, None),
            };
            for (&s, &r) in slots.iter().zip(sel) {
                let r = r as usize;
                let err = match status.map_or(NULL_INT, |v| v[r]) {
                    NULL_INT => error_code
                        .zip(types)
                        .is_some_and(|(e, t)| t.codes[r] as usize == e),
                    code => code >= 500,
                };
                states[s as usize].errors += u64::from(err);
                if self.plan.row_errors {
                    row_errors.push(err);
                }
            }
        }
        for (i, spec) in self.plan.aggs.iter().enumerate() {
            match (&spec.input, spec.op) {
                (AggInput::None, _) => {}
                (AggInput::Num(key), AggOp::Apdex(t)) => {
                    let t = t as f64 / 1000.0;
                    let column = cols.get(key);
                    let value = |r: usize| match column {
                        Some(Column::Float(v)) => v[r],
                        Some(Column::Int(v)) if v[r] != NULL_INT => v[r] as f64,
                        _ => f64::NAN,
                    };
                    for (j, (&s, &r)) in slots.iter().zip(sel).enumerate() {
                        let err = row_errors.get(j).copied().unwrap_or(false);
                        states[s as usize].aggs[i].add_apdex(value(r as usize), err, t);
                    }
                }
                (AggInput::Num(key), _) => match cols.get(key) {
                    Some(Column::Float(v)) => {
                        for (&s, &r) in slots.iter().zip(sel) {
                            let x = v[r as usize];
                            if !x.is_nan() {
                                states[s as usize].aggs[i].add(x);
                            }
                        }
                    }
                    Some(Column::Int(v)) => {
                        for (&s, &r) in slots.iter().zip(sel) {
                            let x = v[r as usize];
                            if x != NULL_INT {
                                states[s as usize].aggs[i].add(x as f64);
                            }
                        }
                    }
                    _ => {}
                },
                (AggInput::Field(src), _) => {
                    let reader = FieldReader::new(src, cols, tenant);
                    let distinct = spec.op == AggOp::CountDistinct;
                    // Distinct strings hash once per dictionary entry.
                    let dict_hashes: Vec<u64> = match (&reader, distinct) {
                        (FieldReader::Str(c), true) => c.dict.iter().map(|s| hash_str(s)).collect(),
                        _ => Vec::new(),
                    };
                    for (&s, &r) in slots.iter().zip(sel) {
                        let r = r as usize;
                        if reader.is_null(r) {
                            continue;
                        }
                        let acc = &mut states[s as usize].aggs[i];
                        if !distinct {
                            acc.add(0.0);
                            continue;
                        }
                        let h = match &reader {
                            FieldReader::Str(c) => dict_hashes[c.codes[r] as usize],
                            other => hash_value(&other.value(r)),
                        };
                        if let AggAcc::Distinct(set) = acc {
                            grown += set.insert(h);
                        }
                    }
                }
            }
        }
        self.grow(grown);
    }

    /// Folds another worker's table into this one (its growth was charged
    /// by that worker).
    pub fn merge(&mut self, other: GroupTable<'_>) {
        self.charging = false;
        self.merge_uncharged(other);
        self.charging = true;
    }

    fn merge_uncharged(&mut self, other: GroupTable<'_>) {
        if self.plan.group_by.is_empty() {
            for (a, b) in self.states.iter_mut().zip(&other.states) {
                a.merge(b);
            }
            return;
        }
        let nf = self.plan.group_by.len();
        let mut comps = vec![0u32; nf];
        for (i, acc) in other.states.iter().enumerate() {
            let (ogid, bucket) = other.slot_keys[i];
            let ocomps = other.components(ogid);
            for f in 0..nf {
                let v = other.interners[f].values[ocomps[f] as usize].clone();
                comps[f] = self.interners[f].intern(v);
            }
            let gid = self.group_of(&comps);
            let s = self.slot_of(gid, bucket);
            self.states[s].merge(acc);
        }
    }

    fn components(&self, gid: u32) -> Vec<u32> {
        match self.plan.group_by.len() {
            0 => Vec::new(),
            1 => vec![gid],
            _ => self.key_list[gid as usize].to_vec(),
        }
    }

    fn group_count(&self) -> usize {
        match self.plan.group_by.len() {
            0 => 1,
            1 => self.interners[0].values.len(),
            _ => self.key_list.len(),
        }
    }

    /// Renders, orders and limits the rows. Returns (columns, rows, truncated).
    pub fn finish(self) -> Result<(Vec<String>, Vec<Vec<Value>>, bool)> {
        let plan = self.plan;
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let has_bucket = plan.interval.is_some();
        let bucket_value = |b: usize| {
            let w = plan.interval.unwrap_or(0);
            Value::Time(crate::types::Micros(plan.first_bucket + b as i64 * w))
        };
        let empty = Acc::new(plan);
        if plan.group_by.is_empty() {
            for (b, acc) in self.states.iter().enumerate() {
                let mut row = Vec::with_capacity(plan.columns_out.len());
                if has_bucket {
                    row.push(bucket_value(b));
                }
                acc.render(plan, &mut row);
                rows.push(row);
            }
        } else {
            let groups = self.group_count();
            // Only groups that own a cell were seen (interners can hold
            // values of other fields' combinations).
            let mut seen = vec![false; groups];
            for &(g, _) in &self.slot_keys {
                seen[g as usize] = true;
            }
            let cells = seen.iter().filter(|s| **s).count() * plan.nbuckets;
            if cells > MAX_OUTPUT_CELLS {
                return Err(invalid(format!(
                    "{cells} result cells exceed the limit of {MAX_OUTPUT_CELLS}; \
                     narrow the group-by or widen the interval"
                )));
            }
            for (g, _) in seen.iter().enumerate().filter(|(_, s)| **s) {
                let comps = self.components(g as u32);
                let head: Vec<Value> = comps
                    .iter()
                    .enumerate()
                    .map(|(f, &c)| render(&plan.group_by[f], &self.interners[f].values[c as usize]))
                    .collect();
                for b in 0..plan.nbuckets {
                    let key = ((g as u64) << 32) | b as u64;
                    let acc = self
                        .slots
                        .get(&key)
                        .map_or(&empty, |&s| &self.states[s as usize]);
                    let mut row = head.clone();
                    if has_bucket {
                        row.push(bucket_value(b));
                    }
                    acc.render(plan, &mut row);
                    rows.push(row);
                }
            }
        }
        let keys = plan.group_by.len() + usize::from(has_bucket);
        rows.sort_by(|a, b| {
            for &(c, desc) in &plan.order_by {
                let o = cmp_values(&a[c], &b[c], desc);
                if o != Ordering::Equal {
                    return o;
                }
            }
            (0..keys)
                .map(|c| cmp_values(&a[c], &b[c], false))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        let truncated = rows.len() > plan.limit;
        rows.truncate(plan.limit);
        Ok((plan.columns_out.clone(), rows, truncated))
    }
}

fn hash_value(v: &GroupValue) -> u64 {
    match v {
        GroupValue::Null => 0,
        GroupValue::Str(s) => hash_str(s),
        // Tags keep an attribute's 1.0 and true apart.
        GroupValue::Int(i) => mix64(*i as u64 ^ 0x1111),
        GroupValue::Float(b) => mix64(*b ^ 0x2222),
        GroupValue::Bool(b) => mix64(u64::from(*b) ^ 0x3333),
    }
}

/// Orders result cells: numbers numerically, strings byte-wise, times by
/// time; nulls last in either direction.
pub fn cmp_values(a: &Value, b: &Value, desc: bool) -> Ordering {
    let num = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    let o = match (a, b) {
        (Value::Null, Value::Null) => return Ordering::Equal,
        (Value::Null, _) => return Ordering::Greater,
        (_, Value::Null) => return Ordering::Less,
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Time(x), Value::Time(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            // Mixed kinds (an attribute holding strings and numbers):
            // numbers before strings, deterministically.
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => format!("{a:?}").cmp(&format!("{b:?}")),
        },
    };
    if desc { o.reverse() } else { o }
}
