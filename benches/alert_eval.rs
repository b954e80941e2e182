//! Alerting under load: the window thread's cost with 1,000 active rules
//! × 100 groups each.
//!
//! Target (issue 9): evaluating 1,000 rules × 100 groups costs at most
//! 10 % of one core.
//!
//! Data: 100 services × 100 endpoints; 1,000 rules over them (10 rules per
//! service filter, grouped by endpoint, with count, rate, error_rate,
//! avg_latency and p95_latency over 1 to 5 minutes). Every group receives
//! one event every `$PULSESTREAM_BENCH_EVERY` seconds (default 2) for the
//! last 5 minutes. Measured, as CPU time of the thread (the machine is
//! shared):
//! - intake: events/s the window thread takes in with those rules active,
//!   compared with no rules (it runs beside ingest, on its own thread);
//! - steady state, `$PULSESTREAM_BENCH_RUNS` seconds (default 11): each
//!   second the same traffic arrives in batches of 100 events, each batch
//!   followed by the evaluation of what it touched (as the window thread
//!   does), then the once-a-second pass over every rule. The evaluation
//!   CPU per second (after-batch evaluations + the pass) is the target's
//!   figure; the median second is printed.
//!
//! Run: `cargo bench --bench alert_eval`.

use std::sync::Arc;
use std::time::Duration;

use pulsestream::alerting::engine::{Effects, TenantState};
use pulsestream::alerting::rules::compile;
use pulsestream_storage::{Event, Micros};
use serde_json::json;

const SERVICES: usize = 100;
const ENDPOINTS: usize = 100;
const RULES_PER_SERVICE: usize = 10;
const HISTORY_SECS: i64 = 300;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of this thread so far (ns), from /proc: on a shared machine
/// wall time also counts the time other processes had the core.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn event(t: i64, svc: usize, ep: usize, i: usize) -> Event {
    Event {
        timestamp: Micros(t),
        received_at: Micros(t),
        event_type: "api_call".into(),
        service: Some(format!("svc{svc}")),
        endpoint: Some(format!("/api/v1/e{ep}")),
        status_code: Some(if i.is_multiple_of(50) { 503 } else { 200 }),
        latency_ms: Some(5.0 + (i % 200) as f64),
        user_id: Some(format!("u{}", i % 1000)),
        ..Event::default()
    }
}

fn tenant(rules: bool, now: i64) -> TenantState {
    let mut t = TenantState::new("bench", now - 3600 * Micros::SECOND);
    if !rules {
        return t;
    }
    let metrics = [
        ("count", "5m", 1e9),
        ("rate", "1m", 1e9),
        ("error_rate", "5m", 0.5),
        ("avg_latency", "5m", 1e6),
        ("p95_latency", "5m", 1e6),
        ("error_rate", "1m", 0.9),
        ("count", "1m", 1e9),
        ("p95_latency", "1m", 1e6),
        ("error_count", "5m", 1e9),
        ("avg_latency", "1m", 1e6),
    ];
    for s in 0..SERVICES {
        for (k, (metric, window, threshold)) in metrics.iter().enumerate().take(RULES_PER_SERVICE) {
            let rule = compile(
                &json!({"name": format!("r{s}-{k}"),
                        "condition": {"metric": metric, "filter": {"service": format!("svc{s}")},
                                      "window": window, "op": ">", "threshold": threshold},
                        "group_by": ["endpoint"]}),
                &format!("r_{s}_{k}"),
                0,
            )
            .expect("rule");
            t.put_rule(Arc::new(rule), now);
        }
    }
    t
}

/// Feeds the history; returns events and the CPU time it took (making
/// the events is not counted).
fn feed(t: &mut TenantState, now: i64, every: usize) -> (usize, Duration) {
    let mut cpu = 0;
    let mut n = 0;
    let mut batch = Vec::with_capacity(10_000);
    for sec in (0..HISTORY_SECS).rev().step_by(every) {
        let ts = now - sec * Micros::SECOND;
        for s in 0..SERVICES {
            for e in 0..ENDPOINTS {
                batch.push(event(ts, s, e, n));
                n += 1;
            }
        }
        if batch.len() >= 10_000 {
            let cpu0 = thread_cpu_ns();
            t.ingest(&batch, now, 1_000_000);
            cpu += thread_cpu_ns().saturating_sub(cpu0);
            batch.clear();
        }
    }
    let cpu0 = thread_cpu_ns();
    t.ingest(&batch, now, 1_000_000);
    cpu += thread_cpu_ns().saturating_sub(cpu0);
    (n, Duration::from_nanos(cpu))
}

fn main() {
    let every = env_usize("PULSESTREAM_BENCH_EVERY", 2);
    let runs = env_usize("PULSESTREAM_BENCH_RUNS", 11);
    let now = Micros::now().0;

    let mut bare = tenant(false, now);
    let (n0, d0) = feed(&mut bare, now, every);
    drop(bare);
    let mut t = tenant(true, now);
    let (n1, d1) = feed(&mut t, now, every);
    let eps0 = n0 as f64 / d0.as_secs_f64();
    let eps1 = n1 as f64 / d1.as_secs_f64();
    println!(
        "window intake (thread CPU): {eps0:.0} events/s without rules, {eps1:.0} events/s with {} rules ({:.0} %)",
        t.rules.len(),
        100.0 * eps1 / eps0
    );
    println!(
        "series: {}, window memory ≈ {:.1} MiB",
        t.series_count,
        t.window_bytes() as f64 / (1 << 20) as f64
    );

    // Steady state: one second of traffic at a time.
    let per_sec = SERVICES * ENDPOINTS / every;
    let mut pass = Vec::new();
    let mut after_batch = Vec::new();
    let mut total = Vec::new();
    let mut evaluations = 0;
    let mut n = 0usize;
    for i in 1..=runs as i64 {
        let at = now + i * Micros::SECOND;
        let mut batch_eval_ns = 0;
        let mut batch = Vec::with_capacity(100);
        for k in 0..per_sec {
            // Groups take turns: each gets one event every `every` seconds.
            let g = (k * every + (i as usize % every)) % (SERVICES * ENDPOINTS);
            let ts = at - Micros::SECOND + (k as i64 * Micros::SECOND) / per_sec as i64;
            batch.push(event(ts, g / ENDPOINTS, g % ENDPOINTS, n));
            n += 1;
            if batch.len() == 100 || k + 1 == per_sec {
                let ingest_at = ts;
                t.ingest(&batch, ingest_at, 1_000_000);
                batch.clear();
                let cpu0 = thread_cpu_ns();
                let mut fx = Effects::default();
                t.advance_touched(ingest_at);
                t.evaluate(ingest_at, true, "http://bench", &mut fx);
                batch_eval_ns += thread_cpu_ns().saturating_sub(cpu0);
            }
        }
        let cpu0 = thread_cpu_ns();
        let mut fx = Effects::default();
        t.advance(at);
        t.evaluate(at, false, "http://bench", &mut fx);
        let pass_ns = thread_cpu_ns().saturating_sub(cpu0);
        evaluations = fx.evaluations;
        pass.push(Duration::from_nanos(pass_ns));
        after_batch.push(Duration::from_nanos(batch_eval_ns));
        total.push(Duration::from_nanos(pass_ns + batch_eval_ns));
    }
    for v in [&mut pass, &mut after_batch, &mut total] {
        v.sort();
    }
    let mid = runs / 2;
    println!(
        "steady state, {per_sec} events/s in batches of 100: CPU per second median: \
         pass over {evaluations} rules × {ENDPOINTS} groups {:?} (max {:?}), \
         after-batch evaluations {:?}; evaluation CPU {:.1} % of one core (target ≤ 10 %)",
        pass[mid],
        pass[runs - 1],
        after_batch[mid],
        total[mid].as_secs_f64() * 100.0
    );
}
