//! Alerting's background work and its one lifecycle: `start` rebuilds the
//! windows from stored events, then runs the window thread (ingest into
//! windows, evaluation, baselines) and the delivery queue; the returned
//! handle's `shutdown` stops both.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError};
use pulsestream_storage::query::{
    AggOp, Aggregation, Field, Query, SearchRequest, TimeRange, Value as QValue,
};
use pulsestream_storage::{Micros, TenantId};

use super::engine::{Effects, Feed, group_key_string};
use super::filter::storage_fields;
use super::rules::{Metric, Rule};
use super::window::HORIZON_SECS;
use super::{Alerting, Msg};

/// Evaluation of every rule happens at least this often.
const TICK: Duration = Duration::from_secs(1);
/// Batches taken off the queue before evaluating what they touched: under
/// heavy ingest one evaluation covers many batches.
const DRAIN_BATCHES: usize = 256;
/// After-ingest evaluations are at least this far apart: a batch after a
/// quiet spell is evaluated at once, batches under heavy ingest within
/// this much of their acknowledgement, many per evaluation.
const EVAL_GAP: Duration = Duration::from_millis(50);
/// Baselines move slowly (they look a day or a week back); recomputing
/// them every 30 s keeps the store queries cheap.
const BASELINE_REFRESH_SECS: i64 = 30;
/// Events read back per search page when rebuilding windows.
const REBUILD_PAGE: usize = 50_000;
/// Length of the time slices windows are rebuilt by (see `read_sliced`).
const SLICE_SECS: i64 = 30;
/// Most events read back per tenant on start: beyond it the oldest part of
/// the hour is left out (and logged) rather than delaying start.
const MAX_REBUILD_EVENTS: usize = 5_000_000;
/// Most groups one baseline query may return.
const MAX_BASELINE_GROUPS: usize = 10_000;
/// How often the window memory figure is recomputed (it walks every bucket).
const MEMORY_EVERY_TICKS: u64 = 10;
/// Delivery log entries are kept this long (the audit trail of who was told
/// what), and pruned hourly.
const LOG_RETENTION_SECS: i64 = 30 * 86_400;
const PRUNE_EVERY_TICKS: u64 = 3600;

/// Stops the background work of alerting.
pub struct AlertingHandle {
    alerting: Arc<Alerting>,
    window_thread: Option<std::thread::JoinHandle<()>>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    notifier: Option<tokio::task::JoinHandle<()>>,
}

impl AlertingHandle {
    /// Stops the window thread and the delivery queue. Queued deliveries
    /// stay in the database and are sent after the next start.
    pub async fn shutdown(mut self) {
        self.alerting.send_stop();
        let _ = self.stop_tx.send(true);
        if let Some(t) = self.notifier.take() {
            let _ = t.await;
        }
        if let Some(t) = self.window_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Alerting {
    fn send_stop(&self) {
        // A full queue must not keep the thread running: retry briefly.
        for _ in 0..100 {
            match self.tx.try_send(Msg::Stop) {
                Ok(()) | Err(crossbeam::channel::TrySendError::Disconnected(_)) => return,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// Rebuilds the windows, then starts the window thread and the delivery
/// queue. The server may take ingest meanwhile: batches wait in the queue,
/// and receive times keep the rebuild and them from counting an event
/// twice (`Feed`).
pub async fn start(a: Arc<Alerting>) -> AlertingHandle {
    let started = Instant::now();
    let rebuilt = {
        let a = a.clone();
        tokio::task::spawn_blocking(move || {
            prune_log(&a);
            rebuild(&a)
        })
        .await
        .unwrap_or(0)
    };
    tracing::info!(
        events = rebuilt,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "alerting windows rebuilt from stored events"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let notifier = a
        .notify_rx
        .lock()
        .take()
        .map(|rx| tokio::spawn(super::notify::run(a.clone(), rx, stop_rx)));
    let window_thread = a.rx.lock().take().and_then(|rx| {
        let a = a.clone();
        std::thread::Builder::new()
            .name("alerting".into())
            .spawn(move || window_loop(&a, &rx))
            .map_err(|e| tracing::error!(error = %e, "cannot start the alerting thread"))
            .ok()
    });
    AlertingHandle {
        alerting: a,
        window_thread,
        stop_tx,
        notifier,
    }
}

fn window_loop(a: &Alerting, rx: &Receiver<Msg>) {
    let mut next_tick = Instant::now() + TICK;
    let mut ticks: u64 = 0;
    // Tenants with batches not yet evaluated, and when the last
    // after-ingest evaluation ran.
    let mut touched: HashSet<String> = HashSet::new();
    let mut last_eval = Instant::now();
    loop {
        let mut deadline = next_tick;
        if !touched.is_empty() {
            deadline = deadline.min(last_eval + EVAL_GAP);
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(m) => {
                if handle(a, m, &mut touched) {
                    return;
                }
                for _ in 0..DRAIN_BATCHES {
                    match rx.try_recv() {
                        Ok(m) => {
                            if handle(a, m, &mut touched) {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if !touched.is_empty() && last_eval.elapsed() >= EVAL_GAP {
            for t in touched.drain() {
                evaluate_tenant(a, &t, true);
            }
            last_eval = Instant::now();
        }
        if Instant::now() >= next_tick {
            ticks += 1;
            tick(a, ticks.is_multiple_of(MEMORY_EVERY_TICKS));
            // The pass evaluated every tenant: nothing touched is left.
            touched.clear();
            if ticks.is_multiple_of(PRUNE_EVERY_TICKS) {
                prune_log(a);
            }
            next_tick += TICK;
            if next_tick < Instant::now() {
                // Fell behind (a slow pass): do not try to catch up in a burst.
                next_tick = Instant::now() + TICK;
            }
        }
    }
}

fn prune_log(a: &Alerting) {
    let cutoff = a.clock.now().0 - LOG_RETENTION_SECS * Micros::SECOND;
    match a.persist.prune_log(cutoff) {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, "pruned old delivery log entries"),
        Err(e) => tracing::warn!(error = %e, "cannot prune the delivery log"),
    }
}

/// Handles one message; true on stop.
fn handle(a: &Alerting, m: Msg, touched: &mut HashSet<String>) -> bool {
    match m {
        Msg::Stop => return true,
        Msg::Batch(tenant, events) => {
            a.dequeued(events.len());
            let now = a.clock.now().0;
            let t = a.tenant(tenant.as_str());
            let hit = t
                .lock()
                .ingest(&events, now, a.settings.max_series_per_tenant);
            if hit {
                touched.insert(tenant.as_str().to_owned());
            }
        }
        Msg::Backfill(tenant, spec, window_secs) => {
            backfill(a, &tenant, &spec, window_secs);
            touched.insert(tenant);
        }
    }
    false
}

/// Once a second: refresh baselines, move windows, evaluate every rule.
fn tick(a: &Alerting, measure: bool) {
    let mut series = 0u64;
    let mut bytes = 0u64;
    let mut overflow = 0u64;
    for tenant in a.tenant_ids() {
        evaluate_tenant(a, &tenant, false);
        if let Some(t) = a.existing_tenant(&tenant) {
            let t = t.lock();
            series += t.series_count as u64;
            overflow += t.overflow_events;
            if measure {
                bytes += t.window_bytes() as u64;
            }
        }
    }
    a.metrics.window_series.store(series, Ordering::Relaxed);
    a.metrics.overflow_events.store(overflow, Ordering::Relaxed);
    if measure {
        a.metrics.window_bytes.store(bytes, Ordering::Relaxed);
    }
}

/// Evaluates one tenant (after moving its windows to now).
pub fn evaluate_tenant(a: &Alerting, tenant: &str, only_dirty: bool) {
    let Some(t) = a.existing_tenant(tenant) else {
        return;
    };
    if !only_dirty {
        refresh_baselines(a, tenant);
    }
    let started = Instant::now();
    let now = a.clock.now().0;
    let mut fx = Effects::default();
    {
        let mut t = t.lock();
        if t.rules.is_empty() && !only_dirty {
            t.advance(now);
            return;
        }
        if only_dirty {
            t.advance_touched(now);
        } else {
            t.advance(now);
        }
        t.evaluate(now, only_dirty, &a.settings.dashboard_url, &mut fx);
    }
    a.metrics.evaluation_seconds.observe(started.elapsed());
    a.commit(fx);
}

/// Recomputes stale baselines of a tenant's rules from stored data.
fn refresh_baselines(a: &Alerting, tenant: &str) {
    let Some(t) = a.existing_tenant(tenant) else {
        return;
    };
    let now = a.clock.now().0;
    let stale: Vec<Arc<Rule>> = {
        let t = t.lock();
        t.rules
            .values()
            .filter(|r| r.enabled && r.baseline.is_some())
            .filter(|r| {
                t.baselines
                    .get(&r.id)
                    .is_none_or(|(at, _)| now - at >= BASELINE_REFRESH_SECS * Micros::SECOND)
            })
            .cloned()
            .collect()
    };
    if stale.is_empty() {
        return;
    }
    let Some(tid) = TenantId::new(tenant) else {
        return;
    };
    for rule in stale {
        let values = match baseline_values(a, &tid, &rule, now) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(tenant, rule = %rule.id, error = %e, "baseline query failed");
                HashMap::new()
            }
        };
        t.lock().baselines.insert(rule.id.clone(), (now, values));
    }
}

/// The rule's metric per group over the same window `offset` ago, from
/// the store (rollups where they cover the range).
pub fn baseline_values(
    a: &Alerting,
    tenant: &TenantId,
    rule: &Rule,
    now: i64,
) -> Result<HashMap<String, f64>, String> {
    let Some(b) = rule.baseline else {
        return Ok(HashMap::new());
    };
    let to = now - b.offset_secs * Micros::SECOND;
    let from = to - rule.window_secs * Micros::SECOND;
    let agg = |op, field: Option<Field>, alias: &str| Aggregation {
        op,
        field,
        alias: alias.to_owned(),
    };
    let mut aggregations = vec![agg(AggOp::Count, None, "n")];
    let lat = Some(Field::LatencyMs);
    match rule.metric {
        Metric::ErrorRate | Metric::ErrorCount => {
            aggregations.push(agg(AggOp::ErrorRate, None, "v"))
        }
        Metric::AvgLatency => aggregations.push(agg(AggOp::Avg, lat, "v")),
        Metric::P50 => aggregations.push(agg(AggOp::P50, lat, "v")),
        Metric::P90 => aggregations.push(agg(AggOp::P90, lat, "v")),
        Metric::P95 => aggregations.push(agg(AggOp::P95, lat, "v")),
        Metric::P99 => aggregations.push(agg(AggOp::P99, lat, "v")),
        Metric::DistinctUsers => {
            aggregations.push(agg(AggOp::CountDistinct, Some(Field::UserId), "v"))
        }
        Metric::Count | Metric::Rate | Metric::NoData => {}
    }
    let q = Query {
        tenants: vec![tenant.clone()],
        range: TimeRange {
            from: Micros(from),
            to: Micros(to),
        },
        filter: rule.filter.predicates(),
        group_by: storage_fields(&rule.group_by),
        interval: None,
        aggregations,
        order_by: Vec::new(),
        limit: MAX_BASELINE_GROUPS,
    };
    let res = a.store.query(&q).map_err(|e| e.to_string())?;
    let ng = rule.group_by.len();
    let mut out = HashMap::new();
    for row in res.rows {
        let gk: Vec<Option<String>> = row[..ng.min(row.len())].iter().map(cell_text).collect();
        let n = row.get(ng).and_then(cell_f64).unwrap_or(0.0);
        if n <= 0.0 {
            continue;
        }
        let v = match rule.metric {
            Metric::Count | Metric::NoData => Some(n),
            Metric::Rate => Some(n / rule.window_secs.max(1) as f64),
            Metric::ErrorCount => row.get(ng + 1).and_then(cell_f64).map(|r| (r * n).round()),
            _ => row.get(ng + 1).and_then(cell_f64),
        };
        if let Some(v) = v {
            out.insert(group_key_string(&gk), v);
        }
    }
    Ok(out)
}

fn cell_text(v: &QValue) -> Option<String> {
    match v {
        QValue::Null => None,
        QValue::Bool(b) => Some(b.to_string()),
        QValue::Int(i) => Some(i.to_string()),
        QValue::Float(f) => Some(f.to_string()),
        QValue::Str(s) => Some(s.clone()),
        QValue::Time(t) => Some(t.0.to_string()),
    }
}

fn cell_f64(v: &QValue) -> Option<f64> {
    match v {
        QValue::Int(i) => Some(*i as f64),
        QValue::Float(f) => Some(*f),
        _ => None,
    }
}

/// Reads stored events of `[from, to)` for `tenant`, newest first, page by
/// page, handing each page to `f`, until `cap` events were read. Returns
/// the number of events read.
fn read_events(
    a: &Alerting,
    tenant: &TenantId,
    (from, to): (i64, i64),
    filter: Vec<pulsestream_storage::query::Predicate>,
    cap: usize,
    mut f: impl FnMut(&[pulsestream_storage::Event]),
) -> usize {
    let mut cursor = None;
    let mut total = 0;
    loop {
        let req = SearchRequest {
            tenant: tenant.clone(),
            range: TimeRange {
                from: Micros(from),
                to: Micros(to),
            },
            filter: filter.clone(),
            limit: REBUILD_PAGE,
            cursor,
        };
        let res = match a.store.search(&req) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "cannot read stored events for the alerting windows");
                return total;
            }
        };
        total += res.events.len();
        f(&res.events);
        match res.next_cursor {
            Some(c) if total < cap => cursor = Some(c),
            _ => return total,
        }
    }
}

/// Reads stored events of `[from, to)` like `read_events`, one time slice
/// after another (newest first: `[now, to)`, then `SLICE_SECS` at a time
/// back to `from`). A search pages by cursor from the newest event of its
/// range, so each page scans again what the range holds newer than it;
/// slicing keeps every search to the blocks of its slice. Stops at
/// `MAX_REBUILD_EVENTS` in all.
fn read_sliced(
    a: &Alerting,
    tenant: &TenantId,
    from: i64,
    to: i64,
    now: i64,
    filter: Vec<pulsestream_storage::query::Predicate>,
    mut f: impl FnMut(&[pulsestream_storage::Event]),
) -> usize {
    let mut total = 0;
    let mut hi = to;
    let mut lo = now.clamp(from, to);
    while hi > from && total < MAX_REBUILD_EVENTS {
        let cap = MAX_REBUILD_EVENTS - total;
        total += read_events(a, tenant, (lo, hi), filter.clone(), cap, &mut f);
        hi = lo;
        lo = (lo - SLICE_SECS * Micros::SECOND).max(from);
    }
    if total >= MAX_REBUILD_EVENTS {
        tracing::warn!(tenant = %tenant, events = total,
            "window rebuild stopped at its event cap; the oldest part of its horizon is missing");
    }
    total
}

/// Refills every tenant's windows with the stored events they cover: the
/// last five minutes, or more when a rule's window reaches further (at
/// most the hour).
pub fn rebuild(a: &Alerting) -> usize {
    let now = a.clock.now().0;
    // Events may be stamped up to an hour ahead (contract section 3).
    let to = now + HORIZON_SECS * Micros::SECOND;
    let mut tenants: Vec<TenantId> = a
        .store
        .stats()
        .tenants
        .into_iter()
        .filter_map(|t| t.tenant)
        .collect();
    tenants.sort();
    tenants.dedup();
    // The server already takes batches (they wait in the queue until the
    // window thread starts): those received from now on are the queue's,
    // the ones before are read here.
    for tid in &tenants {
        a.tenant(tid.as_str()).lock().set_cutoff(now);
    }
    let mut total = 0;
    for tid in tenants {
        let t = a.tenant(tid.as_str());
        let max = a.settings.max_series_per_tenant;
        let horizon = t.lock().longest_horizon().min(HORIZON_SECS);
        let from = now - horizon * Micros::SECOND;
        total += read_sliced(a, &tid, from, to, now, Vec::new(), |evs| {
            t.lock().ingest_into(evs, now, max, Feed::Rebuild);
        });
    }
    total
}

/// Fills a new rule spec with the stored events of its window.
fn backfill(a: &Alerting, tenant: &str, spec: &str, window_secs: i64) {
    let Some(tid) = TenantId::new(tenant) else {
        return;
    };
    let t = a.tenant(tenant);
    let filter = match t.lock().spec(spec) {
        Some(s) => s.filter.predicates(),
        None => return,
    };
    let now = a.clock.now().0;
    let from = now - window_secs.min(HORIZON_SECS) * Micros::SECOND;
    let max = a.settings.max_series_per_tenant;
    read_sliced(
        a,
        &tid,
        from,
        now + HORIZON_SECS * Micros::SECOND,
        now,
        filter,
        |evs| {
            t.lock().ingest_into(evs, now, max, Feed::Backfill(spec));
        },
    );
    if let Some(s) = t.lock().spec_mut(spec) {
        s.backfill_pending = false;
    }
}
