//! The rolling windows' memory and the real-time endpoint's cost.
//!
//! Targets (issue 9): window memory for 100 tenants × 500 series × 1 h
//! reported and ≤ 1 GiB; `GET /api/v1/dashboard/metrics/real-time`
//! (5 min window, group by endpoint, top tenant) p99 ≤ 5 ms.
//!
//! Data: `$PULSESTREAM_BENCH_TENANTS` tenants (default 4; the figure for
//! 100 is extrapolated per tenant, as tenants share nothing), each with 10
//! services and 489 endpoints (with the overall series, 500 series), every
//! endpoint receiving one event every `$PULSESTREAM_BENCH_EVERY` seconds
//! (default 1) for the last hour. The real-time answer is rendered from the
//! first tenant 200 times (the handler's work without the HTTP layer;
//! also shown: the part done under the tenant's lock).
//! Run: `cargo bench --bench alert_windows`.

use std::time::Instant;

use pulsestream::alerting::engine::{RT_ENDPOINT, TenantState};
use pulsestream::alerting::realtime::{render, snapshot};
use pulsestream_storage::{Event, Micros};

const SERVICES: usize = 10;
const ENDPOINTS: usize = 489;
const HOUR: i64 = 3600;
const TARGET_TENANTS: usize = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process (bytes), from /proc.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() {
    let tenants = env_usize("PULSESTREAM_BENCH_TENANTS", 4);
    let every = env_usize("PULSESTREAM_BENCH_EVERY", 1).max(1);
    let now = Micros::now().0;
    let rss0 = rss();
    let started = Instant::now();
    let mut states = Vec::new();
    let mut events = 0usize;
    for t in 0..tenants {
        let mut st = TenantState::new(&format!("t{t}"), now - HOUR * Micros::SECOND);
        let mut batch = Vec::with_capacity(ENDPOINTS);
        for sec in (0..HOUR).rev().step_by(every) {
            let ts = now - sec * Micros::SECOND;
            batch.clear();
            for e in 0..ENDPOINTS {
                batch.push(Event {
                    timestamp: Micros(ts),
                    received_at: Micros(ts),
                    event_type: "api_call".into(),
                    service: Some(format!("svc{}", e % SERVICES)),
                    endpoint: Some(format!("/api/v1/e{e}")),
                    status_code: Some(if (e + sec as usize).is_multiple_of(40) {
                        500
                    } else {
                        200
                    }),
                    latency_ms: Some(3.0 + ((e * 7 + sec as usize) % 400) as f64),
                    ..Event::default()
                });
            }
            // The window thread moves time as it goes.
            st.advance(ts);
            st.ingest(&batch, ts, 10_000);
            events += batch.len();
        }
        st.advance(now);
        states.push(st);
    }
    let fed = started.elapsed();
    let rss1 = rss();
    let counted: usize = states.iter().map(TenantState::window_bytes).sum();
    let series: usize = states.iter().map(|s| s.series_count).sum();
    let per_tenant_counted = counted as f64 / tenants as f64;
    let per_tenant_rss = rss1.saturating_sub(rss0) as f64 / tenants as f64;
    let mib = (1 << 20) as f64;
    println!(
        "{tenants} tenants, {series} series, {events} events in {fed:?} ({:.0} events/s into the windows)",
        events as f64 / fed.as_secs_f64()
    );
    println!(
        "per tenant: {:.1} MiB counted by the windows, {:.1} MiB resident; \
         × {TARGET_TENANTS} tenants ≈ {:.0} MiB counted, {:.0} MiB resident (target ≤ 1024 MiB)",
        per_tenant_counted / mib,
        per_tenant_rss / mib,
        per_tenant_counted * TARGET_TENANTS as f64 / mib,
        per_tenant_rss * TARGET_TENANTS as f64 / mib,
    );

    let end = now / Micros::SECOND - 1;
    let mut times = Vec::new();
    let mut locked = Vec::new();
    let mut size = 0;
    for _ in 0..200 {
        let t = Instant::now();
        // What the handler does under the tenant's lock, then without it.
        let snaps = snapshot(&states[0], RT_ENDPOINT, end, 300, 10);
        locked.push(t.elapsed());
        let v = render(snaps, Some("endpoint"), end, 300);
        let body = serde_json::to_vec(&v).unwrap_or_default();
        times.push(t.elapsed());
        size = body.len();
    }
    times.sort();
    locked.sort();
    println!(
        "real-time answer (5 min, by endpoint, top 10 of {ENDPOINTS}, {size} bytes): median {:?}, p99 {:?} \
         (target p99 ≤ 5 ms); of which under the tenant lock: median {:?}, p99 {:?}",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        locked[locked.len() / 2],
        locked[locked.len() * 99 / 100]
    );
}
