//! Newest-first event search with a cursor.
//!
//! Units are visited newest-first (by their latest timestamp) and their
//! blocks likewise; the best `limit + 1` candidates are kept in a heap, and
//! the walk stops as soon as the heap is full and no remaining unit or block
//! can hold a row newer than the oldest candidate. Only the filter's
//! columns (plus timestamp and sequence) are decoded while searching; every
//! column is decoded afterwards, once, for just the winning rows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use crate::column::{Column, ColumnKey, ColumnSet, NULL_INT};
use crate::error::Result;
use crate::event::{AttrValue, Event, Method, Severity};
use crate::query::control::QueryControl;
use crate::query::engine::{MAX_QUERY_THREADS, check_shape, join_all};
use crate::query::filter::{BlockStats, Filter, UnitStats};
use crate::query::model::{MAX_QUERY_LIMIT, QueryStats, SearchRequest, SearchResult};
use crate::scan::ScanUnit;
use crate::types::{EventId, Micros};

/// Where a matching row lives. Ordered by id: derived `Ord` compares
/// `id` first, and ids are unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    id: EventId,
    unit: usize,
    block: usize,
    row: u32,
}

/// The best `keep` matches so far (a min-heap: the top is the oldest kept).
struct Best {
    keep: usize,
    heap: BinaryHeap<Reverse<Candidate>>,
}

impl Best {
    fn full(&self) -> bool {
        self.heap.len() >= self.keep
    }
    /// Timestamp a unit or block must reach to possibly contribute.
    fn floor(&self) -> Option<Micros> {
        self.full()
            .then(|| self.heap.peek().map(|c| c.0.id.timestamp))
            .flatten()
    }
    fn wants(&self, id: EventId) -> bool {
        !self.full() || self.heap.peek().is_some_and(|c| id > c.0.id)
    }
    fn push(&mut self, c: Candidate) {
        self.heap.push(Reverse(c));
        if self.heap.len() > self.keep {
            self.heap.pop();
        }
    }
}

pub fn search(units: &[Arc<dyn ScanUnit>], req: &SearchRequest) -> Result<SearchResult> {
    search_controlled(units, req, &QueryControl::unlimited())
}

/// `search` that stops with `QueryCancelled` once `control` is cancelled or
/// past its deadline (checked per unit and per block).
pub fn search_controlled(
    units: &[Arc<dyn ScanUnit>],
    req: &SearchRequest,
    control: &QueryControl,
) -> Result<SearchResult> {
    let started = Instant::now();
    let filter = Filter::compile(&req.filter)?;
    let limit = req.limit.min(MAX_QUERY_LIMIT);
    let mut stats = QueryStats::default();
    if limit == 0 {
        return Ok(SearchResult {
            events: Vec::new(),
            next_cursor: None,
            stats,
        });
    }
    // One more than asked tells whether another page exists.
    let mut best = Best {
        keep: limit + 1,
        heap: BinaryHeap::new(),
    };
    let range = req.range;
    // Rows must be older than the cursor; its timestamp bounds units too.
    let newest = req.cursor.map_or(range.to, |c| {
        Micros(c.timestamp.0.saturating_add(1)).min(range.to)
    });
    let mut order: Vec<&Arc<dyn ScanUnit>> = units.iter().collect();
    order.sort_by_key(|u| Reverse(u.time_range().1));
    let mut probe = vec![ColumnKey::Timestamp, ColumnKey::Seq];
    filter.keys(&mut probe);

    // Phase 1: find the winners, reading only the probe columns.
    for (i, unit) in order.iter().enumerate() {
        control.check()?;
        let (lo, hi) = unit.time_range();
        if best.floor().is_some_and(|f| hi < f) {
            // Sorted by latest timestamp: nothing after this can be newer.
            stats.segments_pruned += (order.len() - i) as u64;
            break;
        }
        let tenant = unit.tenant().as_str().to_owned();
        if hi < range.from
            || lo >= newest
            || (!filter.tests.is_empty()
                && !filter.may_match(&UnitStats::new(unit.as_ref()), &tenant))
        {
            stats.segments_pruned += 1;
            continue;
        }
        stats.segments_scanned += 1;
        let mut blocks: Vec<usize> = (0..unit.block_count()).collect();
        blocks.sort_by_key(|&b| Reverse(unit.block_time_range(b).1));
        for b in blocks {
            control.check()?;
            control.count_block();
            let (blo, bhi) = unit.block_time_range(b);
            if best.floor().is_some_and(|f| bhi < f) {
                break;
            }
            if bhi < range.from || blo >= newest {
                continue;
            }
            let bs = BlockStats {
                unit: unit.as_ref(),
                block: b,
            };
            if !filter.may_match(&bs, &tenant) {
                continue;
            }
            let cols = unit.read(b, &probe)?;
            check_shape(unit.as_ref(), b, &cols)?;
            stats.scanned_rows += cols.rows as u64;
            let (Some(Column::Int(ts)), Some(Column::Int(seq))) =
                (cols.get(&ColumnKey::Timestamp), cols.get(&ColumnKey::Seq))
            else {
                continue;
            };
            let id_of = |r: u32| EventId {
                timestamp: Micros(ts[r as usize]),
                seq: seq[r as usize] as u64,
            };
            let mut sel: Vec<u32> = (0..cols.rows as u32)
                .filter(|&r| {
                    let id = id_of(r);
                    range.contains(id.timestamp) && req.cursor.is_none_or(|c| id < c)
                })
                .collect();
            filter.retain(&cols, &mut sel);
            for r in sel {
                let id = id_of(r);
                if best.wants(id) {
                    best.push(Candidate {
                        id,
                        unit: i,
                        block: b,
                        row: r,
                    });
                }
            }
        }
    }

    // Phase 2: decode every column of just the winning rows. The
    // extra candidate only says that another page exists.
    let mut winners: Vec<Candidate> = best.heap.into_iter().map(|c| c.0).collect();
    winners.sort_by_key(|c| Reverse(c.id));
    let next_cursor = if winners.len() > limit {
        winners.truncate(limit);
        winners.last().map(|c| c.id)
    } else {
        None
    };
    winners.sort_by_key(|c| (c.unit, c.block, c.row));
    let groups: Vec<&[Candidate]> = winners
        .chunk_by(|a, b| (a.unit, a.block) == (b.unit, b.block))
        .collect();
    let materialize = |group: &[Candidate]| -> Result<Vec<Event>> {
        let unit = order[group[0].unit];
        let mut keys = ColumnKey::CORE.to_vec();
        keys.extend(unit.attribute_keys());
        // Only the winners' rows: row `i` of `cols` is `group[i]`.
        let rows: Vec<u32> = group.iter().map(|c| c.row).collect();
        let cols = unit.read_rows(group[0].block, &keys, &rows)?;
        check_shape(unit.as_ref(), group[0].block, &cols)?;
        Ok((0..group.len()).map(|i| rebuild(&cols, &keys, i)).collect())
    };
    // Decoding every column of a block is the dearest step of a search;
    // winners usually span a few blocks, decoded side by side.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_QUERY_THREADS)
        .min(groups.len().max(1));
    let parts: Vec<Result<Vec<Event>>> = if threads <= 1 {
        groups.iter().map(|g| materialize(g)).collect()
    } else {
        let per = groups.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = groups
                .chunks(per)
                .map(|chunk| {
                    let materialize = &materialize;
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for g in chunk {
                            out.extend(materialize(g)?);
                        }
                        Ok(out)
                    })
                })
                .collect();
            join_all(handles)
        })
    };
    let mut events: Vec<Event> = Vec::with_capacity(winners.len());
    for part in parts {
        events.extend(part?);
    }
    events.sort_by_key(|e| Reverse(e.id));
    stats.truncated = next_cursor.is_some();
    stats.elapsed_micros = started.elapsed().as_micros() as u64;
    Ok(SearchResult {
        events,
        next_cursor,
        stats,
    })
}

fn int(cols: &ColumnSet, k: &ColumnKey, r: usize) -> Option<i64> {
    match cols.get(k) {
        Some(Column::Int(v)) if v[r] != NULL_INT => Some(v[r]),
        _ => None,
    }
}

fn float(cols: &ColumnSet, k: &ColumnKey, r: usize) -> Option<f64> {
    match cols.get(k) {
        Some(Column::Float(v)) if !v[r].is_nan() => Some(v[r]),
        _ => None,
    }
}

fn string(cols: &ColumnSet, k: &ColumnKey, r: usize) -> Option<String> {
    match cols.get(k) {
        Some(Column::Str(s)) => s.get(r).map(str::to_owned),
        _ => None,
    }
}

/// Rebuilds row `r` as a full event. Attributes come back sorted by key
/// (the store keeps them as columns, not in arrival order).
pub fn rebuild(cols: &ColumnSet, keys: &[ColumnKey], r: usize) -> Event {
    use ColumnKey as K;
    let ts = Micros(int(cols, &K::Timestamp, r).unwrap_or(0));
    let mut attributes: Vec<(String, AttrValue)> = keys
        .iter()
        .filter_map(|k| match k {
            K::AttrStr(name) => string(cols, k, r).map(|v| (name.clone(), AttrValue::Str(v))),
            K::AttrNum(name) => float(cols, k, r).map(|v| (name.clone(), AttrValue::Num(v))),
            K::AttrBool(name) => int(cols, k, r).map(|v| (name.clone(), AttrValue::Bool(v != 0))),
            _ => None,
        })
        .collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    Event {
        id: Some(EventId {
            timestamp: ts,
            seq: int(cols, &K::Seq, r).unwrap_or(0) as u64,
        }),
        timestamp: ts,
        received_at: Micros(int(cols, &K::ReceivedAt, r).unwrap_or(0)),
        event_type: string(cols, &K::EventType, r).unwrap_or_default(),
        service: string(cols, &K::Service, r),
        endpoint: string(cols, &K::Endpoint, r),
        method: int(cols, &K::Method, r)
            .and_then(|c| u8::try_from(c).ok())
            .and_then(Method::from_code),
        status_code: int(cols, &K::StatusCode, r).and_then(|c| u16::try_from(c).ok()),
        latency_ms: float(cols, &K::LatencyMs, r),
        severity: int(cols, &K::Severity, r)
            .and_then(|c| u8::try_from(c).ok())
            .and_then(Severity::from_code),
        request_bytes: int(cols, &K::RequestBytes, r).and_then(|c| u64::try_from(c).ok()),
        response_bytes: int(cols, &K::ResponseBytes, r).and_then(|c| u64::try_from(c).ok()),
        user_id: string(cols, &K::UserId, r),
        region: string(cols, &K::Region, r),
        trace_id: string(cols, &K::TraceId, r),
        message: string(cols, &K::Message, r),
        attributes,
    }
}
