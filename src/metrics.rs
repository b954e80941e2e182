//! Self-monitoring: the counters and histograms of the contract's
//! `/metrics` series (section 9), rendered in Prometheus text format.
//!
//! Counters are lock-free atomics so the ingest path pays a few
//! nanoseconds. Per-tenant storage figures and fsync timings are not kept
//! here; they are read from `Store::stats()` at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use pulsestream_storage::StoreStats;
use pulsestream_storage::wal::writer::FSYNC_BUCKETS;

/// Query latency buckets (seconds): from cache hits to slow scans.
const QUERY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of seconds.
pub struct Histogram {
    bounds: &'static [f64],
    /// Per-bucket (non-cumulative) counts; the last slot is +Inf.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// `pulsestream_wal_fsync_seconds` from the store's per-bucket counts
/// (`FSYNC_BUCKETS`, then +Inf; not cumulative). Buckets and count are read
/// separately, so +Inf and `_count` take the larger of the two: the
/// series stays cumulative even mid-update or when buckets are unknown.
fn render_fsyncs(out: &mut String, stats: &StoreStats) {
    let name = "pulsestream_wal_fsync_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} WAL fsync latency.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0u64;
    for (i, b) in FSYNC_BUCKETS.iter().enumerate() {
        cumulative += stats.fsync_buckets.get(i).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
    }
    cumulative += stats
        .fsync_buckets
        .get(FSYNC_BUCKETS.len())
        .copied()
        .unwrap_or(0);
    let count = cumulative.max(stats.fsyncs);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {}", stats.fsync_seconds_total);
    let _ = writeln!(out, "{name}_count {count}");
}

/// Every series the server exports. Shared as `Arc<Metrics>` in `AppState`.
pub struct Metrics {
    pub ingest_events: AtomicU64,
    pub ingest_bytes: AtomicU64,
    /// Rejected events by reason (`validation`, `rate_limited`, `quota`,
    /// `too_old`, ...). A mutex: rejections are the uncommon path.
    rejected: Mutex<BTreeMap<String, u64>>,
    pub query_seconds: Histogram,
    pub websocket_connections: AtomicI64,
    pub alert_evaluations: AtomicU64,
    pub notification_failures: AtomicU64,
    pub http_requests: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            ingest_events: AtomicU64::new(0),
            ingest_bytes: AtomicU64::new(0),
            rejected: Mutex::new(BTreeMap::new()),
            query_seconds: Histogram::new(QUERY_BUCKETS),
            websocket_connections: AtomicI64::new(0),
            alert_evaluations: AtomicU64::new(0),
            notification_failures: AtomicU64::new(0),
            http_requests: AtomicU64::new(0),
        }
    }

    /// Counts accepted events and their body bytes.
    pub fn record_ingest(&self, events: u64, bytes: u64) {
        self.ingest_events.fetch_add(events, Ordering::Relaxed);
        self.ingest_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `n` rejected events for `reason`.
    pub fn record_rejected(&self, reason: &str, n: u64) {
        if n == 0 {
            return;
        }
        let mut m = self.rejected.lock();
        match m.get_mut(reason) {
            Some(c) => *c += n,
            None => {
                m.insert(reason.to_owned(), n);
            }
        }
    }

    /// Prometheus text exposition, with `stats` for storage series.
    pub fn render(&self, stats: &StoreStats) -> String {
        let mut out = String::with_capacity(4096);
        counter(
            &mut out,
            "pulsestream_ingest_events_total",
            "Events accepted (durably acknowledged).",
            self.ingest_events.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "pulsestream_ingest_bytes_total",
            "Request body bytes of accepted ingest requests.",
            self.ingest_bytes.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP pulsestream_ingest_rejected_events_total Events rejected, by reason.\n# TYPE pulsestream_ingest_rejected_events_total counter"
        );
        let rejected = self.rejected.lock().clone();
        if rejected.is_empty() {
            let _ = writeln!(
                out,
                "pulsestream_ingest_rejected_events_total{{reason=\"validation\"}} 0"
            );
        }
        for (reason, n) in rejected {
            let _ = writeln!(
                out,
                "pulsestream_ingest_rejected_events_total{{reason=\"{}\"}} {n}",
                escape(&reason)
            );
        }

        render_fsyncs(&mut out, stats);

        let _ = writeln!(
            out,
            "# HELP pulsestream_storage_bytes Bytes stored per tenant (sealed and active).\n# TYPE pulsestream_storage_bytes gauge"
        );
        for t in &stats.tenants {
            if let Some(id) = &t.tenant {
                let _ = writeln!(
                    out,
                    "pulsestream_storage_bytes{{tenant=\"{}\"}} {}",
                    escape(id.as_str()),
                    t.sealed_bytes + t.active_bytes
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pulsestream_segments Sealed segments per tenant.\n# TYPE pulsestream_segments gauge"
        );
        for t in &stats.tenants {
            if let Some(id) = &t.tenant {
                let _ = writeln!(
                    out,
                    "pulsestream_segments{{tenant=\"{}\"}} {}",
                    escape(id.as_str()),
                    t.sealed_segments
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pulsestream_wal_bytes Bytes in the write-ahead log.\n# TYPE pulsestream_wal_bytes gauge\npulsestream_wal_bytes {}",
            stats.wal_bytes
        );
        let _ = writeln!(
            out,
            "# HELP pulsestream_damaged_items Damaged items the store knows of, by kind (see /health).\n# TYPE pulsestream_damaged_items gauge"
        );
        for (kind, n) in &stats.damaged_items {
            let _ = writeln!(
                out,
                "pulsestream_damaged_items{{kind=\"{}\"}} {n}",
                kind.as_str()
            );
        }

        self.query_seconds.render(
            &mut out,
            "pulsestream_query_seconds",
            "Query, search and statistics latency.",
        );
        let _ = writeln!(
            out,
            "# HELP pulsestream_websocket_connections Open WebSocket connections.\n# TYPE pulsestream_websocket_connections gauge\npulsestream_websocket_connections {}",
            self.websocket_connections.load(Ordering::Relaxed).max(0)
        );
        counter(
            &mut out,
            "pulsestream_alert_evaluations_total",
            "Alert rule evaluations.",
            self.alert_evaluations.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "pulsestream_notification_failures_total",
            "Failed notification deliveries.",
            self.notification_failures.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "pulsestream_http_requests_total",
            "HTTP requests served.",
            self.http_requests.load(Ordering::Relaxed),
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// Escapes a label value (backslash, quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::{TenantId, TenantStats};

    /// `(le, value)` of every `name_bucket` line, in order.
    fn buckets(text: &str, name: &str) -> Vec<(String, u64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (le, v) = rest.split_once("\"} ")?;
                Some((le.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn fsync_histogram_is_cumulative_and_fed_by_real_fsyncs() {
        let name = "pulsestream_wal_fsync_seconds";
        let m = Metrics::new();
        let mut counts = vec![0u64; FSYNC_BUCKETS.len() + 1];
        (counts[0], counts[3], counts[FSYNC_BUCKETS.len()]) = (2, 5, 1);
        let stats = StoreStats {
            fsyncs: 8,
            fsync_seconds_total: 2.5,
            fsync_buckets: counts,
            ..Default::default()
        };
        let text = m.render(&stats);
        let b = buckets(&text, name);
        assert_eq!(b.len(), FSYNC_BUCKETS.len() + 1);
        assert_eq!(b[0], ("0.0001".to_owned(), 2));
        assert_eq!(b[2].1, 2);
        assert_eq!(b[3], ("0.001".to_owned(), 7));
        assert_eq!(b[FSYNC_BUCKETS.len() - 1], ("1".to_owned(), 7));
        assert_eq!(b[FSYNC_BUCKETS.len()], ("+Inf".to_owned(), 8));
        assert!(text.contains(&format!("{name}_count 8\n")));
        assert!(text.contains(&format!("{name}_sum 2.5\n")));

        // A real store: its appends' fsyncs show up in the buckets.
        let dir = tempfile::tempdir().unwrap();
        let mut config = pulsestream_storage::StoreConfig::new(dir.path());
        config.background = false;
        let store = pulsestream_storage::Store::open(config).unwrap();
        let tenant = TenantId::new("t_a").unwrap();
        let event = pulsestream_storage::Event {
            event_type: "api_call".into(),
            timestamp: pulsestream_storage::Micros::now(),
            ..Default::default()
        };
        for _ in 0..3 {
            store.append(&tenant, std::slice::from_ref(&event)).unwrap();
        }
        let stats = store.stats();
        assert!(stats.fsyncs >= 3);
        let b = buckets(&m.render(&stats), name);
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {b:?}");
        assert_eq!(b[FSYNC_BUCKETS.len()].1, stats.fsyncs);
        assert_eq!(stats.fsync_buckets.iter().sum::<u64>(), stats.fsyncs);
    }

    #[test]
    fn renders_every_contract_series() {
        let m = Metrics::new();
        m.record_ingest(10, 1000);
        m.record_rejected("validation", 2);
        m.query_seconds.observe(Duration::from_millis(3));
        let stats = StoreStats {
            tenants: vec![TenantStats {
                tenant: TenantId::new("t_a"),
                sealed_segments: 3,
                sealed_bytes: 100,
                active_bytes: 5,
                ..Default::default()
            }],
            fsyncs: 4,
            fsync_seconds_total: 0.01,
            ..Default::default()
        };
        let text = m.render(&stats);
        for needle in [
            "pulsestream_ingest_events_total 10",
            "pulsestream_ingest_rejected_events_total{reason=\"validation\"} 2",
            "pulsestream_wal_fsync_seconds_count 4",
            "pulsestream_storage_bytes{tenant=\"t_a\"} 105",
            "pulsestream_segments{tenant=\"t_a\"} 3",
            "pulsestream_query_seconds_bucket{le=\"0.005\"} 1",
            "pulsestream_query_seconds_count 1",
            "pulsestream_websocket_connections 0",
            "pulsestream_alert_evaluations_total 0",
            "pulsestream_notification_failures_total 0",
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
    }
}
