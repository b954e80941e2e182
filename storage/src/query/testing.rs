//! An in-memory `ScanUnit` built from events, for tests and benchmarks of
//! the query engine (and the store's model tests). It keeps full
//! statistics, distinct-value lists and, on request, rollups computed the
//! way sealed segments compute them, so every engine path can be exercised
//! without the on-disk formats. Not used by the store itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::column::{Column, ColumnKey, ColumnSet, ColumnStats, NULL_CODE, NULL_INT, StrColumn};
use crate::error::{Result, StorageError};
use crate::event::{AttrValue, Event};
use crate::rollup::{MinuteKey, RollupAgg, Rollups, RouteKey, status_class};
use crate::scan::ScanUnit;
use crate::types::{EventId, Micros, TenantId};

/// String columns with at most this many distinct values keep a distinct
/// list, like low-cardinality columns of a sealed segment.
const DISTINCT_LIST_MAX: usize = 1_000;

struct Block {
    cols: HashMap<ColumnKey, Arc<Column>>,
    rows: usize,
    range: (Micros, Micros),
    stats: HashMap<ColumnKey, ColumnStats>,
}

/// Rows of one tenant held in memory, in blocks.
pub struct MemUnit {
    tenant: TenantId,
    name: String,
    blocks: Vec<Block>,
    range: (Micros, Micros),
    attrs: Vec<ColumnKey>,
    stats: HashMap<ColumnKey, ColumnStats>,
    distinct: HashMap<ColumnKey, Vec<String>>,
    rollups: Option<Arc<Rollups>>,
    sorted: bool,
    corrupt_block: Option<usize>,
    reads: AtomicU64,
}

fn attr_key(name: &str, v: &AttrValue) -> ColumnKey {
    match v {
        AttrValue::Str(_) => ColumnKey::AttrStr(name.to_owned()),
        AttrValue::Num(_) => ColumnKey::AttrNum(name.to_owned()),
        AttrValue::Bool(_) => ColumnKey::AttrBool(name.to_owned()),
    }
}

/// The value of `key` in `e`, as one of the three column kinds.
enum Cell {
    Int(i64),
    Float(f64),
    Str(Option<String>),
}

fn cell(e: &Event, key: &ColumnKey) -> Cell {
    use ColumnKey as K;
    let id = e.id.unwrap_or(EventId {
        timestamp: e.timestamp,
        seq: 0,
    });
    let oi = |v: Option<i64>| Cell::Int(v.unwrap_or(NULL_INT));
    let attr = |name: &str| e.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    match key {
        K::Timestamp => Cell::Int(e.timestamp.0),
        K::Seq => Cell::Int(id.seq as i64),
        K::ReceivedAt => Cell::Int(e.received_at.0),
        K::EventType => Cell::Str(Some(e.event_type.clone())),
        K::Service => Cell::Str(e.service.clone()),
        K::Endpoint => Cell::Str(e.endpoint.clone()),
        K::Method => oi(e.method.map(|m| i64::from(m.code()))),
        K::StatusCode => oi(e.status_code.map(i64::from)),
        K::LatencyMs => Cell::Float(e.latency_ms.unwrap_or(f64::NAN)),
        K::Severity => oi(e.severity.map(|s| i64::from(s.code()))),
        K::RequestBytes => oi(e.request_bytes.map(|b| b as i64)),
        K::ResponseBytes => oi(e.response_bytes.map(|b| b as i64)),
        K::UserId => Cell::Str(e.user_id.clone()),
        K::Region => Cell::Str(e.region.clone()),
        K::TraceId => Cell::Str(e.trace_id.clone()),
        K::Message => Cell::Str(e.message.clone()),
        K::AttrStr(n) => Cell::Str(match attr(n) {
            Some(AttrValue::Str(s)) => Some(s.clone()),
            _ => None,
        }),
        K::AttrNum(n) => Cell::Float(match attr(n) {
            Some(AttrValue::Num(x)) => *x,
            _ => f64::NAN,
        }),
        K::AttrBool(n) => Cell::Int(match attr(n) {
            Some(AttrValue::Bool(b)) => i64::from(*b),
            _ => NULL_INT,
        }),
    }
}

fn build_column(events: &[Event], key: &ColumnKey) -> Column {
    match key.kind() {
        crate::column::ColumnKind::Int => Column::Int(
            events
                .iter()
                .map(|e| match cell(e, key) {
                    Cell::Int(i) => i,
                    _ => NULL_INT,
                })
                .collect(),
        ),
        crate::column::ColumnKind::Float => Column::Float(
            events
                .iter()
                .map(|e| match cell(e, key) {
                    Cell::Float(f) => f,
                    _ => f64::NAN,
                })
                .collect(),
        ),
        crate::column::ColumnKind::Str => {
            let mut ids: HashMap<String, u32> = HashMap::new();
            let mut dict = Vec::new();
            let codes = events
                .iter()
                .map(|e| match cell(e, key) {
                    Cell::Str(Some(s)) => *ids.entry(s.clone()).or_insert_with(|| {
                        dict.push(s);
                        dict.len() as u32 - 1
                    }),
                    _ => NULL_CODE,
                })
                .collect();
            Column::Str(StrColumn {
                dict: Arc::new(dict),
                codes,
            })
        }
    }
}

fn stats_of(c: &Column) -> ColumnStats {
    match c {
        Column::Int(v) => {
            let vals: Vec<i64> = v.iter().copied().filter(|x| *x != NULL_INT).collect();
            let nulls = (v.len() - vals.len()) as u64;
            match (vals.iter().min(), vals.iter().max()) {
                (Some(&min), Some(&max)) => ColumnStats::Int { min, max, nulls },
                _ => ColumnStats::AllNull { nulls },
            }
        }
        Column::Float(v) => {
            let vals: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            let nulls = (v.len() - vals.len()) as u64;
            if vals.is_empty() {
                return ColumnStats::AllNull { nulls };
            }
            ColumnStats::Float {
                min: vals.iter().copied().fold(f64::INFINITY, f64::min),
                max: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                nulls,
            }
        }
        Column::Str(s) => {
            let nulls = s.codes.iter().filter(|c| **c == NULL_CODE).count() as u64;
            let used: BTreeSet<&str> = s
                .codes
                .iter()
                .filter(|c| **c != NULL_CODE)
                .map(|c| s.dict[*c as usize].as_str())
                .collect();
            match (used.first(), used.last()) {
                (Some(min), Some(max)) => ColumnStats::Str {
                    min: (*min).to_owned(),
                    max: (*max).to_owned(),
                    nulls,
                },
                _ => ColumnStats::AllNull { nulls },
            }
        }
    }
}

fn add_nulls(mut s: ColumnStats, more: u64) -> ColumnStats {
    match &mut s {
        ColumnStats::Int { nulls, .. }
        | ColumnStats::Float { nulls, .. }
        | ColumnStats::Str { nulls, .. }
        | ColumnStats::AllNull { nulls } => *nulls += more,
    }
    s
}

fn merge_stats(a: Option<ColumnStats>, b: &ColumnStats) -> ColumnStats {
    use ColumnStats as S;
    match (a, b) {
        (None, b) => b.clone(),
        (Some(S::AllNull { nulls }), S::AllNull { nulls: n }) => S::AllNull { nulls: nulls + n },
        (Some(S::AllNull { nulls }), other) => add_nulls(other.clone(), nulls),
        (Some(other), S::AllNull { nulls }) => add_nulls(other, *nulls),
        (
            Some(S::Int { min, max, nulls }),
            S::Int {
                min: m,
                max: x,
                nulls: n,
            },
        ) => S::Int {
            min: min.min(*m),
            max: max.max(*x),
            nulls: nulls + n,
        },
        (
            Some(S::Float { min, max, nulls }),
            S::Float {
                min: m,
                max: x,
                nulls: n,
            },
        ) => S::Float {
            min: min.min(*m),
            max: max.max(*x),
            nulls: nulls + n,
        },
        (
            Some(S::Str { min, max, nulls }),
            S::Str {
                min: m,
                max: x,
                nulls: n,
            },
        ) => S::Str {
            min: min.min(m.clone()),
            max: max.max(x.clone()),
            nulls: nulls + n,
        },
        (Some(a), _) => a,
    }
}

/// Computes a segment's rollups from its events.
pub fn rollups_of(events: &[Event]) -> Rollups {
    let mut minute: BTreeMap<MinuteKey, RollupAgg> = BTreeMap::new();
    let mut route: BTreeMap<RouteKey, RollupAgg> = BTreeMap::new();
    for e in events {
        let class = status_class(e.status_code);
        let err = e.is_error();
        minute
            .entry(MinuteKey {
                minute: e.timestamp.floor_to(Micros::MINUTE),
                service: e.service.clone(),
                event_type: e.event_type.clone(),
                status_class: class,
            })
            .or_default()
            .add(e.latency_ms, err);
        route
            .entry(RouteKey {
                service: e.service.clone(),
                endpoint: e.endpoint.clone(),
                method: e.method,
                event_type: e.event_type.clone(),
                status_class: class,
            })
            .or_default()
            .add(e.latency_ms, err);
    }
    Rollups {
        by_minute: minute.into_iter().collect(),
        by_route: route.into_iter().collect(),
    }
}

impl MemUnit {
    /// Builds a unit from `events` (at least one) in blocks of
    /// `block_rows`. Events without an id get `seq` = their position.
    /// With `sort`, rows are ordered by (timestamp, seq) first.
    pub fn new(tenant: &TenantId, mut events: Vec<Event>, block_rows: usize, sort: bool) -> Self {
        assert!(
            !events.is_empty(),
            "BUG: a MemUnit needs at least one event"
        );
        for (i, e) in events.iter_mut().enumerate() {
            if e.id.is_none() {
                e.id = Some(EventId {
                    timestamp: e.timestamp,
                    seq: i as u64,
                });
            }
        }
        if sort {
            events.sort_by_key(|e| e.id);
        }
        let attrs: Vec<ColumnKey> = events
            .iter()
            .flat_map(|e| e.attributes.iter().map(|(k, v)| attr_key(k, v)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut keys = ColumnKey::CORE.to_vec();
        keys.extend(attrs.iter().cloned());
        let mut blocks = Vec::new();
        let mut stats: HashMap<ColumnKey, ColumnStats> = HashMap::new();
        for chunk in events.chunks(block_rows.max(1)) {
            let mut cols = HashMap::new();
            let mut bstats = HashMap::new();
            for k in &keys {
                let c = build_column(chunk, k);
                let s = stats_of(&c);
                let merged = merge_stats(stats.remove(k), &s);
                stats.insert(k.clone(), merged);
                bstats.insert(k.clone(), s);
                cols.insert(k.clone(), Arc::new(c));
            }
            let lo = chunk.iter().map(|e| e.timestamp).min().unwrap_or_default();
            let hi = chunk.iter().map(|e| e.timestamp).max().unwrap_or_default();
            blocks.push(Block {
                cols,
                rows: chunk.len(),
                range: (lo, hi),
                stats: bstats,
            });
        }
        let mut distinct = HashMap::new();
        for k in keys
            .iter()
            .filter(|k| k.kind() == crate::column::ColumnKind::Str)
        {
            let set: BTreeSet<String> = events
                .iter()
                .filter_map(|e| match cell(e, k) {
                    Cell::Str(s) => s,
                    _ => None,
                })
                .collect();
            if set.len() <= DISTINCT_LIST_MAX {
                distinct.insert(k.clone(), set.into_iter().collect());
            }
        }
        let lo = blocks.iter().map(|b| b.range.0).min().unwrap_or_default();
        let hi = blocks.iter().map(|b| b.range.1).max().unwrap_or_default();
        MemUnit {
            name: format!("memory unit {tenant} [{}..{}]", lo.0, hi.0),
            tenant: tenant.clone(),
            blocks,
            range: (lo, hi),
            attrs,
            stats,
            distinct,
            rollups: None,
            sorted: sort,
            corrupt_block: None,
            reads: AtomicU64::new(0),
        }
    }

    /// Adds rollups computed from the unit's own rows (as a sealed segment has).
    pub fn with_rollups(mut self, events: &[Event]) -> Self {
        self.rollups = Some(Arc::new(rollups_of(events)));
        self
    }

    /// Makes reads of `block` fail with `Corrupted`.
    pub fn with_corrupt_block(mut self, block: usize) -> Self {
        self.corrupt_block = Some(block);
        self
    }

    /// How many `read` calls were served.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn into_dyn(self) -> Arc<dyn ScanUnit> {
        Arc::new(self)
    }
}

impl ScanUnit for MemUnit {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn time_range(&self) -> (Micros, Micros) {
        self.range
    }
    fn rows(&self) -> u64 {
        self.blocks.iter().map(|b| b.rows as u64).sum()
    }
    fn block_count(&self) -> usize {
        self.blocks.len()
    }
    fn block_rows(&self, block: usize) -> usize {
        self.blocks.get(block).map_or(0, |b| b.rows)
    }
    fn block_time_range(&self, block: usize) -> (Micros, Micros) {
        self.blocks.get(block).map_or(self.range, |b| b.range)
    }
    fn column_stats(&self, block: Option<usize>, key: &ColumnKey) -> Option<ColumnStats> {
        match block {
            None => self.stats.get(key).cloned(),
            Some(b) => self.blocks.get(b)?.stats.get(key).cloned(),
        }
    }
    fn distinct_strings(&self, key: &ColumnKey) -> Option<Vec<String>> {
        self.distinct.get(key).cloned()
    }
    fn attribute_keys(&self) -> Vec<ColumnKey> {
        self.attrs.clone()
    }
    fn time_sorted(&self) -> bool {
        self.sorted
    }
    fn read(&self, block: usize, keys: &[ColumnKey]) -> Result<ColumnSet> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.corrupt_block == Some(block) {
            return Err(StorageError::corrupted(
                "column block",
                self.describe(),
                format!("block {block} checksum mismatch"),
            ));
        }
        let b = self
            .blocks
            .get(block)
            .ok_or_else(|| StorageError::invalid("block", format!("no block {block}")))?;
        let columns = keys
            .iter()
            .map(|k| {
                let c = b
                    .cols
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Column::nulls(k.kind(), b.rows)));
                (k.clone(), c)
            })
            .collect();
        Ok(ColumnSet {
            rows: b.rows,
            columns,
        })
    }
    fn rollups(&self) -> Result<Option<Arc<Rollups>>> {
        Ok(self.rollups.clone())
    }
}
