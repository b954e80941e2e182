//! Answering whole units from their rollups instead of their rows.
//!
//! A query qualifies when everything it filters and groups on is a rollup
//! dimension and every aggregation is one a `RollupAgg` carries. A unit
//! qualifies when it lies entirely inside the query's range. The rollup
//! table is then presented as a small synthetic block (one row per rollup
//! row, its dimensions as columns) so the very same filter and group-by code
//! runs over it; only the accumulation differs (`Feed::Rollup`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::column::{Column, ColumnKey, ColumnSet, NULL_CODE, NULL_INT, StrColumn};
use crate::query::aggregate::{Feed, GroupTable};
use crate::query::filter::{Filter, Test};
use crate::query::hash::FxHashMap;
use crate::query::model::{AggOp, Field, Query};
use crate::rollup::{RollupAgg, Rollups};
use crate::types::Micros;

/// Which rollup table answers a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `by_minute`: (minute, service, event_type, status class).
    Minute,
    /// `by_route`: (service, endpoint, method, event_type, status class).
    Route,
}

impl Table {
    fn dims(self) -> &'static [ColumnKey] {
        match self {
            Table::Minute => &[
                ColumnKey::EventType,
                ColumnKey::Service,
                ColumnKey::StatusCode,
            ],
            Table::Route => &[
                ColumnKey::EventType,
                ColumnKey::Service,
                ColumnKey::Endpoint,
                ColumnKey::Method,
                ColumnKey::StatusCode,
            ],
        }
    }
}

/// The first status code of each class stands for the whole class in the
/// synthetic block; class 0 (no status) is null.
fn class_representative(class: u8) -> i64 {
    if class == 0 {
        NULL_INT
    } else {
        i64::from(class) * 100
    }
}

/// True when `t` (a test on `StatusCode` alone) selects whole status
/// classes: for each class, all of its codes or none.
fn selects_whole_classes(t: &Test) -> bool {
    let mut codes = vec![NULL_INT];
    codes.extend(100..600);
    let cols = ColumnSet {
        rows: codes.len(),
        columns: [(ColumnKey::StatusCode, Arc::new(Column::Int(codes)))].into(),
    };
    let mut sel: Vec<u32> = (0..cols.rows as u32).collect();
    t.retain(&cols, &mut sel);
    (1..=5).all(|c: u32| {
        // Row 1 + k holds code 100 + k.
        let lo = 1 + (c - 1) * 100;
        let n = sel.iter().filter(|&&r| (lo..lo + 100).contains(&r)).count();
        n == 0 || n == 100
    })
}

/// The table that can answer `q`, or `None` when rows must be read.
pub fn choose(q: &Query, filter: &Filter) -> Option<Table> {
    let table = match q.interval {
        Some(w) if w % Micros::MINUTE != 0 => return None,
        Some(_) => Table::Minute,
        None => Table::Route,
    };
    answers(q, filter, table).then_some(table)
}

/// True when a whole-block summary (`ScanUnit::block_summary`: the
/// `by_minute` dimensions without the minute) can answer `q`: no time
/// buckets, and nothing filtered or grouped beyond service, event type,
/// status class and tenant.
pub fn summary_answers(q: &Query, filter: &Filter) -> bool {
    q.interval.is_none() && answers(q, filter, Table::Minute)
}

/// True when `table`'s dimensions and aggregates can answer `q` (time
/// buckets aside, which the caller checks).
fn answers(q: &Query, filter: &Filter, table: Table) -> bool {
    let latency = |f: &Option<Field>| matches!(f, Some(Field::LatencyMs));
    let aggs_ok = q.aggregations.iter().all(|a| match a.op {
        AggOp::Count => a.field.is_none() || latency(&a.field),
        AggOp::ErrorRate => true,
        AggOp::Sum
        | AggOp::Avg
        | AggOp::Min
        | AggOp::Max
        | AggOp::P50
        | AggOp::P90
        | AggOp::P95
        | AggOp::P99 => latency(&a.field),
        // Rollups keep no per-event error flag beside the latency.
        AggOp::CountDistinct | AggOp::Apdex(_) => false,
    });
    if !aggs_ok {
        return false;
    }
    let group_ok = q.group_by.iter().all(|f| match f {
        Field::EventType | Field::Service | Field::StatusClass | Field::Tenant => true,
        Field::Endpoint | Field::Method => table == Table::Route,
        _ => false,
    });
    if !group_ok {
        return false;
    }
    let dims = table.dims();
    filter.tests.iter().all(|t| {
        let mut keys = Vec::new();
        t.keys(&mut keys);
        keys.iter().all(|k| dims.contains(k))
            && (!keys.contains(&ColumnKey::StatusCode)
                || (keys.len() == 1 && selects_whole_classes(t)))
    })
}

/// True when answering from `table` beats reading `rows` rows: the unit
/// holds at least `min_ratio` rows per rollup row.
pub fn pays(r: &Rollups, table: Table, rows: u64, min_ratio: u64) -> bool {
    let n = match table {
        Table::Minute => r.by_minute.len(),
        Table::Route => r.by_route.len(),
    } as u64;
    n.saturating_mul(min_ratio) <= rows
}

/// Builds dictionary-coded string columns row by row.
#[derive(Default)]
struct StrBuilder {
    ids: FxHashMap<String, u32>,
    dict: Vec<String>,
    codes: Vec<u32>,
}

impl StrBuilder {
    fn push(&mut self, s: Option<&str>) {
        let code = match s {
            None => NULL_CODE,
            Some(s) => match self.ids.get(s) {
                Some(&c) => c,
                None => {
                    let c = self.dict.len() as u32;
                    self.dict.push(s.to_owned());
                    self.ids.insert(s.to_owned(), c);
                    c
                }
            },
        };
        self.codes.push(code);
    }
    fn finish(self) -> Arc<Column> {
        Arc::new(Column::Str(StrColumn {
            dict: Arc::new(self.dict),
            codes: self.codes,
        }))
    }
}

/// The dimensions of one rollup row.
struct Dims<'a> {
    minute: i64,
    event_type: &'a str,
    service: Option<&'a str>,
    endpoint: Option<&'a str>,
    method: i64,
    class: u8,
}

/// The rollup table as a block: the dimensions in `keys` as columns (only
/// those: building string columns is most of the cost), plus the
/// aggregates row for row (borrowed: sketches are not copied).
fn synthetic_block<'r>(
    r: &'r Rollups,
    table: Table,
    keys: &[ColumnKey],
) -> (ColumnSet, Vec<&'r RollupAgg>) {
    let rows: Vec<(Dims<'r>, &'r RollupAgg)> = match table {
        Table::Minute => r
            .by_minute
            .iter()
            .map(|(k, a)| {
                let d = Dims {
                    minute: k.minute.0,
                    event_type: &k.event_type,
                    service: k.service.as_deref(),
                    endpoint: None,
                    method: NULL_INT,
                    class: k.status_class,
                };
                (d, a)
            })
            .collect(),
        Table::Route => r
            .by_route
            .iter()
            .map(|(k, a)| {
                let d = Dims {
                    minute: 0,
                    event_type: &k.event_type,
                    service: k.service.as_deref(),
                    endpoint: k.endpoint.as_deref(),
                    method: k.method.map_or(NULL_INT, |m| i64::from(m.code())),
                    class: k.status_class,
                };
                (d, a)
            })
            .collect(),
    };
    let strs = |f: &dyn Fn(&Dims<'r>) -> Option<&'r str>| {
        let mut b = StrBuilder::default();
        for (d, _) in &rows {
            b.push(f(d));
        }
        b.finish()
    };
    let ints = |f: &dyn Fn(&Dims<'r>) -> i64| {
        Arc::new(Column::Int(rows.iter().map(|(d, _)| f(d)).collect()))
    };
    let mut columns: HashMap<ColumnKey, Arc<Column>> = HashMap::new();
    for k in keys {
        let col = match k {
            ColumnKey::EventType => strs(&|d| Some(d.event_type)),
            ColumnKey::Service => strs(&|d| d.service),
            ColumnKey::Endpoint => strs(&|d| d.endpoint),
            ColumnKey::Method => ints(&|d| d.method),
            ColumnKey::StatusCode => ints(&|d| class_representative(d.class)),
            ColumnKey::Timestamp => ints(&|d| d.minute),
            // `choose` admits no other column.
            _ => continue,
        };
        columns.insert(k.clone(), col);
    }
    let n = rows.len();
    (
        ColumnSet { rows: n, columns },
        rows.into_iter().map(|(_, a)| a).collect(),
    )
}

/// Folds a unit's rollups into `out` through the query's filter; `keys`
/// are the dimensions the filter, group-by and buckets read. Returns the
/// number of rollup rows read.
pub fn feed(
    rollups: &Rollups,
    table: Table,
    keys: &[ColumnKey],
    filter: &Filter,
    tenant: &str,
    out: &mut GroupTable<'_>,
) -> u64 {
    let (cols, aggs) = synthetic_block(rollups, table, keys);
    let mut sel: Vec<u32> = (0..cols.rows as u32).collect();
    filter.retain(&cols, &mut sel);
    out.add(&cols, &sel, tenant, Feed::Rollup(&aggs));
    cols.rows as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::model::{CmpOp, Predicate, Value};

    fn test_of(p: Predicate) -> Test {
        crate::query::filter::compile(&p).unwrap()
    }

    #[test]
    fn whole_class_status_filters_are_recognised() {
        let sc = Field::StatusCode;
        assert!(selects_whole_classes(&test_of(Predicate::Cmp(
            sc.clone(),
            CmpOp::Gte,
            500.0
        ))));
        assert!(selects_whole_classes(&test_of(Predicate::Cmp(
            sc.clone(),
            CmpOp::Lt,
            400.0
        ))));
        assert!(selects_whole_classes(&test_of(Predicate::StatusClass(4))));
        assert!(!selects_whole_classes(&test_of(Predicate::Cmp(
            sc.clone(),
            CmpOp::Gte,
            503.0
        ))));
        assert!(!selects_whole_classes(&test_of(Predicate::In(
            sc,
            vec![Value::Int(500)]
        ))));
    }
}
