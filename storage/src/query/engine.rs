//! Entry points of the query engine: aggregate queries and newest-first
//! search over a set of `ScanUnit`s.
//!
//! `execute` prunes units by time and statistics, answers units that lie
//! wholly inside the range from their rollups when the query allows it, and
//! scans the rest block by block, in parallel across units. The engine owns
//! no data and no locks: callers hand it the units to read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::column::{Column, ColumnKey, ColumnSet};
use crate::error::{Result, StorageError};
use crate::query::aggregate::{AggPlan, Feed, GroupTable};
use crate::query::control::QueryControl;
use crate::query::filter::{BlockStats, Filter, UnitStats};
use crate::query::model::{Query, QueryResult, QueryStats, SearchRequest, SearchResult};
use crate::query::rollup_plan::{self, Table};
use crate::scan::ScanUnit;

/// Most worker threads one query uses. The appliance runs on small
/// machines where ingest shares the cores; more threads than cores only
/// adds merge work.
pub const MAX_QUERY_THREADS: usize = 8;

/// A unit is answered from its rollups only when it holds at least this
/// many rows per rollup row. Measured on sealed segments of the generated
/// 1 M set (top tenant, 24 h, 2 busy cores): overview 8 ms from rollups vs
/// 29 ms from rows, top-10 endpoints 9 vs 31 ms, per-minute series 11 vs
/// 28 ms, with rollups about a quarter of the rows. Decoding a row costs
/// more than merging a rollup row, so rollups win whenever they are not
/// larger than the rows (segments leave them out where they would be).
/// In-memory units decode nothing: there rows win below ~8 rows per
/// rollup row, which is why this is a knob.
pub const ROLLUP_MIN_ROWS_PER_ROLLUP_ROW: u64 = 1;

/// Tuning of one execution; `Default` is what `execute` uses.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    /// See `ROLLUP_MIN_ROWS_PER_ROLLUP_ROW`; 0 answers from rollups
    /// whenever a query and unit allow it; `u64::MAX` never does.
    pub rollup_min_ratio: u64,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            rollup_min_ratio: ROLLUP_MIN_ROWS_PER_ROLLUP_ROW,
        }
    }
}

/// Everything a worker needs to answer its share of units.
struct Ctx<'a> {
    q: &'a Query,
    /// Deadline, cancel flag and memory budget, checked per unit and block.
    control: &'a QueryControl,
    opts: ExecOptions,
    filter: Filter,
    plan: AggPlan,
    rollup: Option<Table>,
    /// True when whole-block summaries can answer the query.
    summary: bool,
    /// Columns the row path reads (filter + plan), without `Timestamp`
    /// unless something needs it.
    keys: Vec<ColumnKey>,
    /// Columns the rollup path reads (filter + group keys + buckets).
    rollup_keys: Vec<ColumnKey>,
}

/// Answers an aggregate query over `units` (already restricted to the
/// query's tenants by the caller; pruned by time here).
pub fn execute(units: &[Arc<dyn ScanUnit>], q: &Query) -> Result<QueryResult> {
    execute_with(units, q, ExecOptions::default())
}

/// `execute` with explicit tuning (tests force or forbid the rollup path).
pub fn execute_with(
    units: &[Arc<dyn ScanUnit>],
    q: &Query,
    opts: ExecOptions,
) -> Result<QueryResult> {
    execute_controlled(units, q, opts, &QueryControl::unlimited())
}

/// `execute_with` under `control`: the work stops with `QueryCancelled`
/// once it is cancelled or past its deadline, and with `QueryTooLarge` once
/// its groups outgrow the memory budget.
pub fn execute_controlled(
    units: &[Arc<dyn ScanUnit>],
    q: &Query,
    opts: ExecOptions,
    control: &QueryControl,
) -> Result<QueryResult> {
    control.check()?;
    let started = Instant::now();
    let filter = Filter::compile(&q.filter)?;
    let plan = AggPlan::new(q)?;
    let rollup = rollup_plan::choose(q, &filter);
    let summary = rollup_plan::summary_answers(q, &filter);
    let mut keys = plan.columns.clone();
    filter.keys(&mut keys);
    let mut rollup_keys = plan.group_columns.clone();
    filter.keys(&mut rollup_keys);
    let ctx = Ctx {
        q,
        control,
        opts,
        filter,
        plan,
        rollup,
        summary,
        keys,
        rollup_keys,
    };

    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_QUERY_THREADS)
        .min(units.len().max(1));
    let (table, mut stats) = if threads <= 1 {
        run_worker(&ctx, units, &AtomicUsize::new(0))?
    } else {
        let next = AtomicUsize::new(0);
        let parts: Vec<Result<(GroupTable<'_>, QueryStats)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| run_worker(&ctx, units, &next)))
                .collect();
            join_all(handles)
        });
        // A sibling halted by another worker's failure reports a
        // cancellation; the failure itself is the answer.
        let mut parts = parts;
        if let Some(i) = parts
            .iter()
            .position(|p| matches!(p, Err(e) if !matches!(e, StorageError::QueryCancelled)))
        {
            parts.swap(0, i);
        }
        let mut merged: Option<(GroupTable<'_>, QueryStats)> = None;
        for part in parts {
            let (t, s) = part?;
            match &mut merged {
                None => merged = Some((t, s)),
                Some((mt, ms)) => {
                    mt.merge(t);
                    add_stats(ms, &s);
                }
            }
        }
        merged.unwrap_or_else(|| {
            (
                GroupTable::with_control(&ctx.plan, control),
                QueryStats::default(),
            )
        })
    };
    control.check()?;
    let (columns, rows, truncated) = table.finish()?;
    stats.truncated = truncated;
    stats.elapsed_micros = started.elapsed().as_micros() as u64;
    Ok(QueryResult {
        columns,
        rows,
        stats,
    })
}

fn add_stats(a: &mut QueryStats, b: &QueryStats) {
    a.scanned_rows += b.scanned_rows;
    a.segments_scanned += b.segments_scanned;
    a.segments_pruned += b.segments_pruned;
    a.segments_from_rollups += b.segments_from_rollups;
}

/// Takes units off the shared counter until none are left.
fn run_worker<'c>(
    ctx: &'c Ctx<'_>,
    units: &[Arc<dyn ScanUnit>],
    next: &AtomicUsize,
) -> Result<(GroupTable<'c>, QueryStats)> {
    let mut table = GroupTable::with_control(&ctx.plan, ctx.control);
    let mut stats = QueryStats::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(unit) = units.get(i) else {
            break;
        };
        let r = ctx
            .control
            .check()
            .and_then(|()| scan_unit(ctx, unit.as_ref(), &mut table, &mut stats))
            .and_then(|()| table.take_error());
        if let Err(e) = r {
            // Stop the other workers at their next check too.
            ctx.control.halt();
            return Err(e);
        }
    }
    Ok((table, stats))
}

fn scan_unit(
    ctx: &Ctx<'_>,
    unit: &dyn ScanUnit,
    table: &mut GroupTable<'_>,
    stats: &mut QueryStats,
) -> Result<()> {
    let range = ctx.q.range;
    let (lo, hi) = unit.time_range();
    let tenant = unit.tenant().as_str();
    let prune = |u: &dyn ScanUnit| {
        // Unit statistics cost an attribute-key listing: skip them when
        // there is nothing to test.
        !ctx.filter.tests.is_empty() && !ctx.filter.may_match(&UnitStats::new(u), tenant)
    };
    if hi < range.from || lo >= range.to || prune(unit) {
        stats.segments_pruned += 1;
        return Ok(());
    }
    let whole = range.from <= lo && hi < range.to;
    if whole && ctx.keys.is_empty() && ctx.plan.counts_only() {
        // A plain count over a whole unit: its row count is the answer.
        table.add_uniform(unit.rows(), tenant);
        stats.segments_scanned += 1;
        stats.scanned_rows += unit.rows();
        return Ok(());
    }
    if let (true, Some(t)) = (whole, ctx.rollup)
        && let Some(r) = unit.rollups()?
        && rollup_plan::pays(&r, t, unit.rows(), ctx.opts.rollup_min_ratio)
    {
        rollup_plan::feed(&r, t, &ctx.rollup_keys, &ctx.filter, tenant, table);
        stats.segments_from_rollups += 1;
        return Ok(());
    }
    stats.segments_scanned += 1;
    for b in 0..unit.block_count() {
        ctx.control.check()?;
        table.take_error()?;
        ctx.control.count_block();
        let (blo, bhi) = unit.block_time_range(b);
        if bhi < range.from || blo >= range.to {
            continue;
        }
        let bs = BlockStats { unit, block: b };
        if !ctx.filter.may_match(&bs, tenant) {
            continue;
        }
        let inside = range.from <= blo && bhi < range.to;
        let rows = unit.block_rows(b);
        if inside && ctx.keys.is_empty() && ctx.plan.counts_only() {
            // A plain count: the block's row count is the answer.
            table.add_uniform(rows as u64, tenant);
            stats.scanned_rows += rows as u64;
            continue;
        }
        if inside
            && ctx.summary
            && let Some(r) = unit.block_summary(b)
        {
            // A frozen in-memory chunk: its (service, type, class)
            // pre-aggregate stands for its rows.
            rollup_plan::feed(
                &r,
                Table::Minute,
                &ctx.rollup_keys,
                &ctx.filter,
                tenant,
                table,
            );
            stats.scanned_rows += rows as u64;
            continue;
        }
        let mut keys = ctx.keys.clone();
        if !inside && !keys.contains(&ColumnKey::Timestamp) {
            keys.push(ColumnKey::Timestamp);
        }
        let cols = unit.read(b, &keys)?;
        check_shape(unit, b, &cols)?;
        stats.scanned_rows += cols.rows as u64;
        let mut sel: Vec<u32> = if inside {
            (0..cols.rows as u32).collect()
        } else {
            match cols.get(&ColumnKey::Timestamp) {
                Some(Column::Int(ts)) => (0..cols.rows as u32)
                    .filter(|&r| range.contains(crate::types::Micros(ts[r as usize])))
                    .collect(),
                _ => Vec::new(),
            }
        };
        ctx.filter.retain(&cols, &mut sel);
        if !sel.is_empty() {
            table.add(&cols, &sel, tenant, Feed::Rows);
        }
    }
    Ok(())
}

/// Every column of a decoded block must hold one value per row and every
/// string code must name a dictionary entry; the engine indexes by row
/// without further checks, so a unit that breaks this is reported as
/// corrupted instead of panicking a query.
pub(crate) fn check_shape(unit: &dyn ScanUnit, block: usize, cols: &ColumnSet) -> Result<()> {
    for (key, col) in &cols.columns {
        let codes_ok = match col.as_ref() {
            Column::Str(s) => s
                .codes
                .iter()
                .all(|&c| c == crate::column::NULL_CODE || (c as usize) < s.dict.len()),
            _ => true,
        };
        if col.len() != cols.rows || !codes_ok {
            return Err(StorageError::corrupted(
                "column block",
                unit.describe(),
                format!(
                    "block {block}: column {key:?} has {} values for {} rows or codes outside its dictionary",
                    col.len(),
                    cols.rows
                ),
            ));
        }
    }
    Ok(())
}

/// Newest-first event search with a cursor.
pub fn search(units: &[Arc<dyn ScanUnit>], req: &SearchRequest) -> Result<SearchResult> {
    crate::query::search::search(units, req)
}

/// Joins scoped worker threads in order; a worker's panic continues in
/// the caller, as if the work had run there.
pub(crate) fn join_all<T>(handles: Vec<std::thread::ScopedJoinHandle<'_, T>>) -> Vec<T> {
    handles
        .into_iter()
        .map(|h| match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::StrColumn;
    use crate::event::Event;
    use crate::query::testing::MemUnit;
    use crate::types::TenantId;

    #[test]
    fn malformed_blocks_are_corruption_not_panics() {
        let tenant = TenantId::new("t1").expect("valid");
        let unit = MemUnit::new(&tenant, vec![Event::default()], 4, true);
        let set = |col: Column| ColumnSet {
            rows: 2,
            columns: [(ColumnKey::EventType, Arc::new(col))].into(),
        };
        let good = set(Column::Str(StrColumn {
            dict: Arc::new(vec!["a".into()]),
            codes: vec![0, crate::column::NULL_CODE],
        }));
        assert!(check_shape(&unit, 0, &good).is_ok());
        let short = set(Column::Int(vec![1]));
        assert!(matches!(
            check_shape(&unit, 0, &short),
            Err(StorageError::Corrupted { .. })
        ));
        let bad_code = set(Column::Str(StrColumn {
            dict: Arc::new(vec!["a".into()]),
            codes: vec![0, 1],
        }));
        assert!(matches!(
            check_shape(&unit, 0, &bad_code),
            Err(StorageError::Corrupted { .. })
        ));
    }
}
