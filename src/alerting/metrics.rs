//! Alerting's self-monitoring series for `/metrics`: evaluations and their
//! duration, active alerts by state, notification attempts, failures and
//! delivery latency, window series and memory, dropped batches.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::Histogram;

use super::notify::AttemptResult;

/// Evaluation passes: from a handful of rules to thousands.
const EVAL_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Transition → delivered: the promise is about a second.
const DELIVERY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

pub struct AlertMetrics {
    pub evaluations: AtomicU64,
    pub evaluation_seconds: Histogram,
    pub notifications_sent: AtomicU64,
    pub notification_failures: AtomicU64,
    pub delivery_seconds: Histogram,
    /// Batches the window thread could not take (its queue was full).
    pub dropped_batches: AtomicU64,
    pub dropped_events: AtomicU64,
    /// Set by the window thread (series, bytes, overflow events).
    pub window_series: AtomicU64,
    pub window_bytes: AtomicU64,
    pub overflow_events: AtomicU64,
}

impl Default for AlertMetrics {
    fn default() -> Self {
        AlertMetrics {
            evaluations: AtomicU64::new(0),
            evaluation_seconds: Histogram::new(EVAL_BUCKETS),
            notifications_sent: AtomicU64::new(0),
            notification_failures: AtomicU64::new(0),
            delivery_seconds: Histogram::new(DELIVERY_BUCKETS),
            dropped_batches: AtomicU64::new(0),
            dropped_events: AtomicU64::new(0),
            window_series: AtomicU64::new(0),
            window_bytes: AtomicU64::new(0),
            overflow_events: AtomicU64::new(0),
        }
    }
}

impl AlertMetrics {
    /// `since_transition` is the time from the transition to now (micros).
    pub fn record_attempt(&self, r: &AttemptResult, since_transition: i64) {
        if r.ok {
            self.notifications_sent.fetch_add(1, Ordering::Relaxed);
            self.delivery_seconds
                .observe(Duration::from_micros(since_transition.max(0) as u64));
        } else {
            self.notification_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Appends the series; `by_state` are the active alerts per state.
    pub fn render(&self, out: &mut String, by_state: &[(&str, u64)]) {
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            out,
            "pulsestream_alert_evaluations_total",
            "Rule evaluations.",
            ld(&self.evaluations),
        );
        self.evaluation_seconds.render(
            out,
            "pulsestream_alert_evaluation_seconds",
            "Duration of one evaluation pass over a tenant's rules.",
        );
        let name = "pulsestream_alerts_active";
        let _ = writeln!(
            out,
            "# HELP {name} Alerts not yet resolved, by state.\n# TYPE {name} gauge"
        );
        for (s, n) in by_state {
            let _ = writeln!(out, "{name}{{state=\"{s}\"}} {n}");
        }
        counter(
            out,
            "pulsestream_notifications_sent_total",
            "Notifications delivered.",
            ld(&self.notifications_sent),
        );
        counter(
            out,
            "pulsestream_notification_failures_total",
            "Failed notification attempts.",
            ld(&self.notification_failures),
        );
        self.delivery_seconds.render(
            out,
            "pulsestream_notification_delivery_seconds",
            "From the alert transition to the notification's delivery.",
        );
        gauge(
            out,
            "pulsestream_alert_window_series",
            "Series held in the rolling windows.",
            ld(&self.window_series),
        );
        gauge(
            out,
            "pulsestream_alert_window_bytes",
            "Approximate memory of the rolling windows.",
            ld(&self.window_bytes),
        );
        counter(
            out,
            "pulsestream_alert_window_overflow_events_total",
            "Events counted in a tenant's overflow series because of the series cap.",
            ld(&self.overflow_events),
        );
        counter(
            out,
            "pulsestream_alert_window_dropped_events_total",
            "Acknowledged events the window thread could not take (queue full).",
            ld(&self.dropped_events),
        );
    }
}
