//! Alerting under load: the window thread's cost with 1,000 active rules
//! × 100 groups each.
//!
//! Target (issue 9): evaluating 1,000 rules × 100 groups every second costs
//! at most 10 % of one core, i.e. one full evaluation pass ≤ 100 ms.
//!
//! Data: 100 services × 100 endpoints; 1,000 rules over them (10 rules per
//! service filter, grouped by endpoint, with count, rate, error_rate,
//! avg_latency and p95_latency over 1 to 5 minutes). Every group receives
//! one event every `$PULSESTREAM_BENCH_EVERY` seconds (default 2) for the
//! last 5 minutes. Also measured: events/s the window thread takes in with
//! those rules active, compared with no rules (it runs beside ingest, on
//! its own thread).
//! Run: `cargo bench --bench alert_eval` (prints the median and max of
//! `$PULSESTREAM_BENCH_RUNS` passes, default 11).

use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Feeds the history; returns events and the time it took.
fn feed(t: &mut TenantState, now: i64, every: usize) -> (usize, Duration) {
    let started = Instant::now();
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
            t.ingest(&batch, now, 1_000_000);
            batch.clear();
        }
    }
    t.ingest(&batch, now, 1_000_000);
    (n, started.elapsed())
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
        "window intake: {eps0:.0} events/s without rules, {eps1:.0} events/s with {} rules ({:.0} %)",
        t.rules.len(),
        100.0 * eps1 / eps0
    );
    println!(
        "series: {}, window memory ≈ {:.1} MiB",
        t.series_count,
        t.window_bytes() as f64 / (1 << 20) as f64
    );

    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut evaluations = 0;
    for i in 0..runs {
        let mut fx = Effects::default();
        let at = now + i as i64 * Micros::SECOND;
        let started = Instant::now();
        let cpu0 = thread_cpu_ns();
        t.advance(at);
        t.evaluate(at, false, "http://bench", &mut fx);
        times.push(started.elapsed());
        cpu.push(Duration::from_nanos(thread_cpu_ns().saturating_sub(cpu0)));
        evaluations = fx.evaluations;
    }
    times.sort();
    cpu.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    let cpu_median = cpu[cpu.len() / 2];
    println!(
        "evaluation pass over {evaluations} rules × {ENDPOINTS} groups: wall median {median:?}, max {max:?}; \
         CPU median {cpu_median:?} → {:.1} % of one core at one pass per second (target ≤ 10 %)",
        cpu_median.as_secs_f64() * 100.0
    );
}
