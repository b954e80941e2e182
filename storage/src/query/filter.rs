//! Filter compilation, pruning and evaluation.
//!
//! A query's predicates are compiled once into `Test`s over physical columns
//! (`ColumnKey`s). A compiled filter answers three questions: which columns
//! it needs, whether a unit or block can hold a match at all (from
//! `column_stats` and `distinct_strings`), and which rows of a decoded block
//! match. String predicates are evaluated once per dictionary entry, then
//! rows only test their code. This module never reads data itself.

use std::collections::HashSet;

use crate::column::{Column, ColumnKey, ColumnSet, ColumnStats, NULL_CODE, NULL_INT, StrColumn};
use crate::error::{Result, StorageError};
use crate::event::{Method, Severity};
use crate::query::model::{CmpOp, Field, Predicate, Value};
use crate::scan::ScanUnit;

/// Where a query field's values live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// One physical column.
    Column(ColumnKey),
    /// The status class, derived from `StatusCode`.
    StatusClass,
    /// The unit's tenant (constant per unit).
    Tenant,
    /// An attribute: whichever of `AttrStr`/`AttrNum`/`AttrBool` is set.
    Attr(String),
}

/// Maps a query field onto the columns that hold it.
pub fn field_source(f: &Field) -> FieldSource {
    use ColumnKey as K;
    FieldSource::Column(match f {
        Field::Timestamp => K::Timestamp,
        Field::ReceivedAt => K::ReceivedAt,
        Field::EventType => K::EventType,
        Field::Service => K::Service,
        Field::Endpoint => K::Endpoint,
        Field::Method => K::Method,
        Field::StatusCode => K::StatusCode,
        Field::LatencyMs => K::LatencyMs,
        Field::Severity => K::Severity,
        Field::RequestBytes => K::RequestBytes,
        Field::ResponseBytes => K::ResponseBytes,
        Field::UserId => K::UserId,
        Field::Region => K::Region,
        Field::TraceId => K::TraceId,
        Field::Message => K::Message,
        Field::StatusClass => return FieldSource::StatusClass,
        Field::Tenant => return FieldSource::Tenant,
        Field::Attr(k) => return FieldSource::Attr(k.clone()),
    })
}

/// The three typed columns an attribute may live in.
pub fn attr_keys(k: &str) -> [ColumnKey; 3] {
    [
        ColumnKey::AttrStr(k.to_owned()),
        ColumnKey::AttrNum(k.to_owned()),
        ColumnKey::AttrBool(k.to_owned()),
    ]
}

/// How a string matches.
#[derive(Debug, Clone, PartialEq)]
pub enum StrMatch {
    Exact(Vec<String>),
    Prefix(String),
    Contains(String),
    /// Any non-null string.
    Any,
}

impl StrMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Exact(v) => v.iter().any(|x| x == s),
            StrMatch::Prefix(p) => s.starts_with(p.as_str()),
            StrMatch::Contains(p) => s.contains(p.as_str()),
            StrMatch::Any => true,
        }
    }

    /// Can some string in `[min, max]` (byte order) match?
    fn may_match_between(&self, min: &str, max: &str) -> bool {
        match self {
            StrMatch::Exact(v) => v.iter().any(|x| min <= x.as_str() && x.as_str() <= max),
            // The smallest string with prefix `p` is `p` itself; `min` above
            // `p` can still match if it carries the prefix.
            StrMatch::Prefix(p) => p.as_str() <= max && (min <= p.as_str() || min.starts_with(p)),
            StrMatch::Contains(_) | StrMatch::Any => true,
        }
    }
}

/// One compiled condition on physical columns. A row passes a filter when
/// it passes every test.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// A string column's value matches (`null_matches` for nulls).
    Str {
        key: ColumnKey,
        m: StrMatch,
        null_matches: bool,
    },
    /// An integer column's value lies in one of the inclusive ranges.
    Int {
        key: ColumnKey,
        ranges: Vec<(i64, i64)>,
        null_matches: bool,
    },
    /// A float column compared with a constant (nulls never match).
    FloatCmp { key: ColumnKey, op: CmpOp, v: f64 },
    /// A float column equals one of the values.
    FloatIn {
        key: ColumnKey,
        values: Vec<f64>,
        null_matches: bool,
    },
    /// The column is null.
    Null(ColumnKey),
    /// The column is not null.
    NotNull(ColumnKey),
    /// At least one of the tests passes.
    Any(Vec<Test>),
    /// Every one of the tests passes.
    All(Vec<Test>),
    /// The unit's tenant matches: decided per unit, never per row.
    Tenant(StrMatch),
}

fn invalid(detail: String) -> StorageError {
    StorageError::invalid("filter", detail)
}

/// Inclusive integer ranges a numeric comparison selects. `NULL_INT` is
/// never inside a range: ranges start at `NULL_INT + 1`.
fn int_ranges_for_cmp(op: CmpOp, v: f64) -> Vec<(i64, i64)> {
    const LO: i64 = NULL_INT + 1;
    const HI: i64 = i64::MAX;
    let integral = v.fract() == 0.0;
    // `as` saturates, which is what an out-of-range constant means here.
    let fl = v.floor() as i64;
    let ce = v.ceil() as i64;
    match op {
        CmpOp::Gt => vec![(fl.saturating_add(1), HI)],
        CmpOp::Gte => vec![(ce, HI)],
        CmpOp::Lt => vec![(LO, ce.saturating_sub(1))],
        CmpOp::Lte => vec![(LO, fl)],
        CmpOp::Eq if integral => vec![(fl, fl)],
        CmpOp::Eq => vec![],
        CmpOp::Ne if integral => vec![(LO, fl.saturating_sub(1)), (fl.saturating_add(1), HI)],
        CmpOp::Ne => vec![(LO, HI)],
    }
    .into_iter()
    .map(|(a, b)| (a.max(LO), b))
    .filter(|(a, b)| a <= b)
    .collect()
}

fn cmp_f64(x: f64, op: CmpOp, v: f64) -> bool {
    match op {
        CmpOp::Eq => x == v,
        CmpOp::Ne => x != v,
        CmpOp::Gt => x > v,
        CmpOp::Gte => x >= v,
        CmpOp::Lt => x < v,
        CmpOp::Lte => x <= v,
    }
}

fn status_class_name(c: i64) -> String {
    format!("{c}xx")
}

/// Parses a status class given as `"5xx"`, `"5"` or `5`.
fn parse_class(v: &Value) -> Option<i64> {
    let c = match v {
        Value::Int(i) => *i,
        Value::Float(f) if f.fract() == 0.0 => *f as i64,
        Value::Str(s) => s.strip_suffix("xx").unwrap_or(s).parse().ok()?,
        _ => return None,
    };
    (1..=5).contains(&c).then_some(c)
}

fn class_range(c: i64) -> (i64, i64) {
    (c * 100, c * 100 + 99)
}

/// Codes of an enum-valued field (method, severity) whose name matches.
fn enum_codes(field: &Field, m: &StrMatch) -> Vec<(i64, i64)> {
    let names: Vec<(i64, &str)> = match field {
        Field::Method => Method::ALL
            .iter()
            .map(|x| (i64::from(x.code()), x.as_str()))
            .collect(),
        _ => Severity::ALL
            .iter()
            .map(|x| (i64::from(x.code()), x.as_str()))
            .collect(),
    };
    names
        .into_iter()
        .filter(|(_, n)| match m {
            // Canonical spellings compare case-insensitively, as `parse` does.
            StrMatch::Exact(v) => v.iter().any(|x| x.eq_ignore_ascii_case(n)),
            _ => m.matches(n),
        })
        .map(|(c, _)| (c, c))
        .collect()
}

/// Compiles one predicate.
pub fn compile(p: &Predicate) -> Result<Test> {
    Ok(match p {
        Predicate::StatusClass(c) => {
            let c = i64::from(*c);
            if !(1..=5).contains(&c) {
                return Err(invalid(format!("status class {c} is not 1..5")));
            }
            Test::Int {
                key: ColumnKey::StatusCode,
                ranges: vec![class_range(c)],
                null_matches: false,
            }
        }
        Predicate::Exists(f) => match field_source(f) {
            FieldSource::Column(key) => Test::NotNull(key),
            FieldSource::StatusClass => Test::Int {
                key: ColumnKey::StatusCode,
                ranges: vec![(100, 599)],
                null_matches: false,
            },
            FieldSource::Tenant => Test::Tenant(StrMatch::Any),
            FieldSource::Attr(k) => Test::Any(attr_keys(&k).map(Test::NotNull).to_vec()),
        },
        Predicate::Prefix(f, s) => str_test(f, StrMatch::Prefix(s.clone()))?,
        Predicate::Contains(f, s) => str_test(f, StrMatch::Contains(s.clone()))?,
        Predicate::Cmp(f, op, v) => {
            if v.is_nan() {
                return Err(invalid(format!("{} compared with NaN", f.name())));
            }
            match field_source(f) {
                FieldSource::Column(key) => match key.kind() {
                    _ if matches!(f, Field::Method | Field::Severity) => {
                        return Err(invalid(format!("{} is not numeric", f.name())));
                    }
                    crate::column::ColumnKind::Int => Test::Int {
                        key,
                        ranges: int_ranges_for_cmp(*op, *v),
                        null_matches: false,
                    },
                    crate::column::ColumnKind::Float => Test::FloatCmp {
                        key,
                        op: *op,
                        v: *v,
                    },
                    crate::column::ColumnKind::Str => {
                        return Err(invalid(format!("{} is not numeric", f.name())));
                    }
                },
                FieldSource::Attr(k) => Test::FloatCmp {
                    key: ColumnKey::AttrNum(k),
                    op: *op,
                    v: *v,
                },
                FieldSource::StatusClass | FieldSource::Tenant => {
                    return Err(invalid(format!("{} is not numeric", f.name())));
                }
            }
        }
        Predicate::In(f, values) => in_test(f, values)?,
    })
}

/// A string-matching predicate (`Prefix`, `Contains`) on any field.
fn str_test(f: &Field, m: StrMatch) -> Result<Test> {
    Ok(match field_source(f) {
        FieldSource::Column(key) => match f {
            Field::Method | Field::Severity => Test::Int {
                key,
                ranges: enum_codes(f, &m),
                null_matches: false,
            },
            _ if key.kind() == crate::column::ColumnKind::Str => Test::Str {
                key,
                m,
                null_matches: false,
            },
            _ => return Err(invalid(format!("{} is not a string field", f.name()))),
        },
        FieldSource::StatusClass => Test::Int {
            key: ColumnKey::StatusCode,
            ranges: (1..=5)
                .filter(|c| m.matches(&status_class_name(*c)))
                .map(class_range)
                .collect(),
            null_matches: false,
        },
        FieldSource::Tenant => Test::Tenant(m),
        FieldSource::Attr(k) => Test::Str {
            key: ColumnKey::AttrStr(k),
            m,
            null_matches: false,
        },
    })
}

fn exact_ints(values: &[Value]) -> Vec<(i64, i64)> {
    values
        .iter()
        .filter_map(|v| match v {
            Value::Int(i) if *i != NULL_INT => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::Time(t) if t.0 != NULL_INT => Some(t.0),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        })
        .map(|i| (i, i))
        .collect()
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// `In(field, values)`: equality with any of the values.
fn in_test(f: &Field, values: &[Value]) -> Result<Test> {
    let null_matches = values.iter().any(|v| matches!(v, Value::Null));
    Ok(match field_source(f) {
        FieldSource::Column(key) => match (f, key.kind()) {
            (Field::Method | Field::Severity, _) => Test::Int {
                key,
                ranges: enum_codes(f, &StrMatch::Exact(strings(values))),
                null_matches,
            },
            (_, crate::column::ColumnKind::Str) => Test::Str {
                key,
                m: StrMatch::Exact(strings(values)),
                null_matches,
            },
            (_, crate::column::ColumnKind::Int) => Test::Int {
                key,
                ranges: exact_ints(values),
                null_matches,
            },
            (_, crate::column::ColumnKind::Float) => Test::FloatIn {
                key,
                values: floats(values),
                null_matches,
            },
        },
        FieldSource::StatusClass => Test::Int {
            key: ColumnKey::StatusCode,
            ranges: values
                .iter()
                .filter_map(parse_class)
                .map(class_range)
                .collect(),
            null_matches,
        },
        FieldSource::Tenant => Test::Tenant(StrMatch::Exact(strings(values))),
        FieldSource::Attr(k) => {
            let [ks, kn, kb] = attr_keys(&k);
            let mut any = vec![
                Test::Str {
                    key: ks.clone(),
                    m: StrMatch::Exact(strings(values)),
                    null_matches: false,
                },
                Test::FloatIn {
                    key: kn.clone(),
                    values: floats(values),
                    null_matches: false,
                },
                Test::Int {
                    key: kb.clone(),
                    ranges: values
                        .iter()
                        .filter_map(|v| match v {
                            Value::Bool(b) => Some((i64::from(*b), i64::from(*b))),
                            _ => None,
                        })
                        .collect(),
                    null_matches: false,
                },
            ];
            if null_matches {
                any.push(Test::All(vec![
                    Test::Null(ks),
                    Test::Null(kn),
                    Test::Null(kb),
                ]));
            }
            Test::Any(any)
        }
    })
}

fn floats(values: &[Value]) -> Vec<f64> {
    values
        .iter()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        })
        .collect()
}

/// Statistics lookup used for pruning: `None` means unknown.
pub trait StatsSource {
    fn stats(&self, key: &ColumnKey) -> Option<ColumnStats>;
    /// Distinct values of a string column, when known (whole units only).
    fn distinct(&self, key: &ColumnKey) -> Option<Vec<String>>;
}

/// Unit-level statistics; attribute columns the unit never saw are all-null.
pub struct UnitStats<'a> {
    pub unit: &'a dyn crate::scan::ScanUnit,
    pub attrs: HashSet<ColumnKey>,
}

impl<'a> UnitStats<'a> {
    pub fn new(unit: &'a dyn ScanUnit) -> Self {
        UnitStats {
            unit,
            attrs: unit.attribute_keys().into_iter().collect(),
        }
    }
    fn absent_attr(&self, key: &ColumnKey) -> bool {
        matches!(
            key,
            ColumnKey::AttrStr(_) | ColumnKey::AttrNum(_) | ColumnKey::AttrBool(_)
        ) && !self.attrs.contains(key)
    }
}

impl StatsSource for UnitStats<'_> {
    fn stats(&self, key: &ColumnKey) -> Option<ColumnStats> {
        if self.absent_attr(key) {
            return Some(ColumnStats::AllNull {
                nulls: self.unit.rows(),
            });
        }
        self.unit.column_stats(None, key)
    }
    fn distinct(&self, key: &ColumnKey) -> Option<Vec<String>> {
        if self.absent_attr(key) {
            return Some(Vec::new());
        }
        self.unit.distinct_strings(key)
    }
}

/// Block-level statistics.
pub struct BlockStats<'a> {
    pub unit: &'a dyn ScanUnit,
    pub block: usize,
}

impl StatsSource for BlockStats<'_> {
    fn stats(&self, key: &ColumnKey) -> Option<ColumnStats> {
        self.unit.column_stats(Some(self.block), key)
    }
    fn distinct(&self, _key: &ColumnKey) -> Option<Vec<String>> {
        None
    }
}

impl Test {
    /// Adds the columns this test reads to `out` (no duplicates).
    pub fn keys(&self, out: &mut Vec<ColumnKey>) {
        let mut push = |k: &ColumnKey| {
            if !out.contains(k) {
                out.push(k.clone());
            }
        };
        match self {
            Test::Str { key, .. }
            | Test::Int { key, .. }
            | Test::FloatCmp { key, .. }
            | Test::FloatIn { key, .. }
            | Test::Null(key)
            | Test::NotNull(key) => push(key),
            Test::Any(ts) | Test::All(ts) => {
                for t in ts {
                    t.keys(out);
                }
            }
            Test::Tenant(_) => {}
        }
    }

    /// False only when no row described by `src` can pass.
    pub fn may_match(&self, src: &dyn StatsSource, tenant: &str) -> bool {
        match self {
            Test::Tenant(m) => m.matches(tenant),
            Test::Any(ts) => ts.iter().any(|t| t.may_match(src, tenant)),
            Test::All(ts) => ts.iter().all(|t| t.may_match(src, tenant)),
            Test::Str {
                key,
                m,
                null_matches,
            } => {
                if let Some(list) = src.distinct(key)
                    && !*null_matches
                    && !list.iter().any(|s| m.matches(s))
                {
                    return false;
                }
                match src.stats(key) {
                    Some(ColumnStats::AllNull { .. }) => *null_matches,
                    Some(ColumnStats::Str { min, max, nulls }) => {
                        (*null_matches && nulls > 0) || m.may_match_between(&min, &max)
                    }
                    _ => true,
                }
            }
            Test::Int {
                key,
                ranges,
                null_matches,
            } => match src.stats(key) {
                Some(ColumnStats::AllNull { .. }) => *null_matches,
                Some(ColumnStats::Int { min, max, nulls }) => {
                    (*null_matches && nulls > 0)
                        || ranges.iter().any(|&(a, b)| a <= max && min <= b)
                }
                _ => true,
            },
            Test::FloatCmp { key, op, v } => match src.stats(key) {
                Some(ColumnStats::AllNull { .. }) => false,
                Some(ColumnStats::Float { min, max, .. }) => match op {
                    CmpOp::Gt => max > *v,
                    CmpOp::Gte => max >= *v,
                    CmpOp::Lt => min < *v,
                    CmpOp::Lte => min <= *v,
                    CmpOp::Eq => min <= *v && *v <= max,
                    CmpOp::Ne => !(min == *v && max == *v),
                },
                _ => true,
            },
            Test::FloatIn {
                key,
                values,
                null_matches,
            } => match src.stats(key) {
                Some(ColumnStats::AllNull { .. }) => *null_matches,
                Some(ColumnStats::Float { min, max, nulls }) => {
                    (*null_matches && nulls > 0) || values.iter().any(|v| min <= *v && *v <= max)
                }
                _ => true,
            },
            Test::NotNull(key) => !matches!(src.stats(key), Some(ColumnStats::AllNull { .. })),
            Test::Null(key) => !matches!(
                src.stats(key),
                Some(
                    ColumnStats::Int { nulls: 0, .. }
                        | ColumnStats::Float { nulls: 0, .. }
                        | ColumnStats::Str { nulls: 0, .. }
                )
            ),
        }
    }

    /// Keeps in `sel` only the rows (indices into `cols`) that pass.
    pub fn retain(&self, cols: &ColumnSet, sel: &mut Vec<u32>) {
        match self {
            Test::Tenant(_) => {}
            Test::All(ts) => {
                for t in ts {
                    t.retain(cols, sel);
                }
            }
            Test::Any(ts) => {
                let mut keep = vec![false; sel.len()];
                for t in ts {
                    let mut s = sel.clone();
                    t.retain(cols, &mut s);
                    // Both are ascending subsequences of `sel`: merge-walk.
                    let mut j = 0;
                    for (i, r) in sel.iter().enumerate() {
                        if j < s.len() && s[j] == *r {
                            keep[i] = true;
                            j += 1;
                        }
                    }
                }
                let mut i = 0;
                sel.retain(|_| {
                    i += 1;
                    keep[i - 1]
                });
            }
            Test::Str {
                key,
                m,
                null_matches,
            } => match cols.get(key) {
                Some(Column::Str(c)) => {
                    let hits = dict_hits(c, m);
                    sel.retain(|&r| match c.codes[r as usize] {
                        NULL_CODE => *null_matches,
                        code => hits.get(code as usize).copied().unwrap_or(false),
                    });
                }
                _ => retain_null(sel, *null_matches),
            },
            Test::Int {
                key,
                ranges,
                null_matches,
            } => match cols.get(key) {
                Some(Column::Int(v)) => {
                    if let [(a, b)] = ranges.as_slice() {
                        let (a, b) = (*a, *b);
                        sel.retain(|&r| {
                            let x = v[r as usize];
                            if x == NULL_INT {
                                *null_matches
                            } else {
                                a <= x && x <= b
                            }
                        });
                    } else {
                        sel.retain(|&r| {
                            let x = v[r as usize];
                            if x == NULL_INT {
                                *null_matches
                            } else {
                                ranges.iter().any(|&(a, b)| a <= x && x <= b)
                            }
                        });
                    }
                }
                _ => retain_null(sel, *null_matches),
            },
            Test::FloatCmp { key, op, v } => match cols.get(key) {
                Some(Column::Float(col)) => {
                    // NaN (null) fails every comparison, `Ne` included.
                    sel.retain(|&r| {
                        let x = col[r as usize];
                        !x.is_nan() && cmp_f64(x, *op, *v)
                    })
                }
                _ => sel.clear(),
            },
            Test::FloatIn {
                key,
                values,
                null_matches,
            } => match cols.get(key) {
                Some(Column::Float(col)) => sel.retain(|&r| {
                    let x = col[r as usize];
                    if x.is_nan() {
                        *null_matches
                    } else {
                        values.contains(&x)
                    }
                }),
                _ => retain_null(sel, *null_matches),
            },
            Test::Null(key) | Test::NotNull(key) => {
                let want_null = matches!(self, Test::Null(_));
                match cols.get(key) {
                    Some(c) => sel.retain(|&r| is_null(c, r as usize) == want_null),
                    None => retain_null(sel, want_null),
                }
            }
        }
    }
}

/// A column missing from the block reads as all-null.
fn retain_null(sel: &mut Vec<u32>, null_matches: bool) {
    if !null_matches {
        sel.clear();
    }
}

pub fn is_null(c: &Column, row: usize) -> bool {
    match c {
        Column::Int(v) => v[row] == NULL_INT,
        Column::Float(v) => v[row].is_nan(),
        Column::Str(s) => s.codes[row] == NULL_CODE,
    }
}

/// Which dictionary entries match: computed once per block.
fn dict_hits(c: &StrColumn, m: &StrMatch) -> Vec<bool> {
    c.dict.iter().map(|s| m.matches(s)).collect()
}

/// The AND of a query's predicates.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tests: Vec<Test>,
}

impl Filter {
    pub fn compile(preds: &[Predicate]) -> Result<Filter> {
        Ok(Filter {
            tests: preds.iter().map(compile).collect::<Result<_>>()?,
        })
    }
    pub fn keys(&self, out: &mut Vec<ColumnKey>) {
        for t in &self.tests {
            t.keys(out);
        }
    }
    pub fn may_match(&self, src: &dyn StatsSource, tenant: &str) -> bool {
        self.tests.iter().all(|t| t.may_match(src, tenant))
    }
    /// Narrows `sel` to matching rows. Tenant tests were settled when the
    /// unit was pruned, so they pass here.
    pub fn retain(&self, cols: &ColumnSet, sel: &mut Vec<u32>) {
        for t in &self.tests {
            if sel.is_empty() {
                return;
            }
            t.retain(cols, sel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn set(cols: Vec<(ColumnKey, Column)>) -> ColumnSet {
        let rows = cols.first().map_or(0, |c| c.1.len());
        ColumnSet {
            rows,
            columns: cols
                .into_iter()
                .map(|(k, c)| (k, Arc::new(c)))
                .collect::<HashMap<_, _>>(),
        }
    }

    fn run(p: Predicate, cs: &ColumnSet) -> Vec<u32> {
        let f = Filter::compile(&[p]).unwrap();
        let mut sel: Vec<u32> = (0..cs.rows as u32).collect();
        f.retain(cs, &mut sel);
        sel
    }

    #[test]
    fn int_comparisons_respect_fractions_and_nulls() {
        let cs = set(vec![(
            ColumnKey::StatusCode,
            Column::Int(vec![200, 499, 500, NULL_INT, 503]),
        )]);
        let p = |op, v| Predicate::Cmp(Field::StatusCode, op, v);
        assert_eq!(run(p(CmpOp::Gte, 500.0), &cs), vec![2, 4]);
        assert_eq!(run(p(CmpOp::Gt, 499.5), &cs), vec![2, 4]);
        assert_eq!(run(p(CmpOp::Lt, 499.5), &cs), vec![0, 1]);
        assert_eq!(run(p(CmpOp::Ne, 500.0), &cs), vec![0, 1, 4]);
        assert_eq!(run(p(CmpOp::Eq, 500.5), &cs), Vec::<u32>::new());
        assert_eq!(run(Predicate::StatusClass(5), &cs), vec![2, 4]);
        let cls = Predicate::In(Field::StatusClass, vec![Value::Str("4xx".into())]);
        assert_eq!(run(cls, &cs), vec![1]);
        assert_eq!(
            run(Predicate::Exists(Field::StatusCode), &cs),
            vec![0, 1, 2, 4]
        );
    }

    #[test]
    fn string_tests_use_the_dictionary() {
        let dict = Arc::new(vec!["/api/a".to_owned(), "/api/b".into(), "/x".into()]);
        let cs = set(vec![(
            ColumnKey::Endpoint,
            Column::Str(StrColumn {
                dict,
                codes: vec![0, 1, 2, NULL_CODE, 0],
            }),
        )]);
        let e = Field::Endpoint;
        assert_eq!(
            run(Predicate::Prefix(e.clone(), "/api".into()), &cs),
            vec![0, 1, 4]
        );
        assert_eq!(
            run(Predicate::Contains(e.clone(), "b".into()), &cs),
            vec![1]
        );
        let any = Predicate::In(e.clone(), vec![Value::Str("/x".into()), Value::Null]);
        assert_eq!(run(any, &cs), vec![2, 3]);
    }

    #[test]
    fn method_matches_by_canonical_name() {
        let cs = set(vec![(
            ColumnKey::Method,
            Column::Int(vec![1, 2, NULL_INT, 2]),
        )]);
        let p = Predicate::In(Field::Method, vec![Value::Str("post".into())]);
        assert_eq!(run(p, &cs), vec![1, 3]);
        assert!(Filter::compile(&[Predicate::Cmp(Field::Method, CmpOp::Gt, 1.0)]).is_err());
    }

    #[test]
    fn attribute_filters_pick_the_typed_column() {
        let cs = set(vec![
            (
                ColumnKey::AttrStr("tier".into()),
                Column::Str(StrColumn {
                    dict: Arc::new(vec!["gold".into()]),
                    codes: vec![0, NULL_CODE, NULL_CODE],
                }),
            ),
            (
                ColumnKey::AttrNum("tier".into()),
                Column::Float(vec![f64::NAN, 3.0, f64::NAN]),
            ),
        ]);
        let a = Field::Attr("tier".into());
        let s = Predicate::In(a.clone(), vec![Value::Str("gold".into())]);
        assert_eq!(run(s, &cs), vec![0]);
        assert_eq!(
            run(Predicate::In(a.clone(), vec![Value::Int(3)]), &cs),
            vec![1]
        );
        assert_eq!(
            run(Predicate::In(a.clone(), vec![Value::Null]), &cs),
            vec![2]
        );
        assert_eq!(run(Predicate::Exists(a.clone()), &cs), vec![0, 1]);
        assert_eq!(run(Predicate::Cmp(a, CmpOp::Gte, 2.0), &cs), vec![1]);
    }

    struct Fixed(Option<ColumnStats>, Option<Vec<String>>);
    impl StatsSource for Fixed {
        fn stats(&self, _: &ColumnKey) -> Option<ColumnStats> {
            self.0.clone()
        }
        fn distinct(&self, _: &ColumnKey) -> Option<Vec<String>> {
            self.1.clone()
        }
    }

    #[test]
    fn pruning_uses_min_max_and_distinct_lists() {
        let ints = Fixed(
            Some(ColumnStats::Int {
                min: 200,
                max: 404,
                nulls: 0,
            }),
            None,
        );
        let f = |p| Filter::compile(&[p]).unwrap();
        assert!(!f(Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0)).may_match(&ints, "t"));
        assert!(f(Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 400.0)).may_match(&ints, "t"));
        let strs = Fixed(
            Some(ColumnStats::Str {
                min: "auth".into(),
                max: "orders".into(),
                nulls: 0,
            }),
            Some(vec!["auth".into(), "orders".into()]),
        );
        let svc = |s: &str| Predicate::In(Field::Service, vec![Value::Str(s.into())]);
        assert!(f(svc("orders")).may_match(&strs, "t"));
        assert!(!f(svc("billing")).may_match(&strs, "t"));
        assert!(!f(svc("zebra")).may_match(&strs, "t"));
        assert!(!f(Predicate::Prefix(Field::Service, "p".into())).may_match(&strs, "t"));
        let ten = Predicate::In(Field::Tenant, vec![Value::Str("t1".into())]);
        assert!(f(ten.clone()).may_match(&strs, "t1"));
        assert!(!f(ten).may_match(&strs, "t2"));
    }

    #[test]
    fn prefix_ranges_are_conservative() {
        let m = StrMatch::Prefix("/api".into());
        assert!(m.may_match_between("/api/a", "/zz"));
        assert!(m.may_match_between("/a", "/api"));
        assert!(!m.may_match_between("/b", "/c"));
        assert!(!m.may_match_between("/", "/ap"));
    }
}
