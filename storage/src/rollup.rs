//! Per-segment pre-aggregates that let long-range dashboards read a few
//! thousand rows instead of millions.
//!
//! Two tables, each sized to what the dashboard asks:
//! - `by_minute`: per (minute, service, event_type, status class): the
//!   series and the overview.
//! - `by_route`: per (service, endpoint, method, event_type, status class)
//!   over the whole segment: top endpoints and per-service breakdowns.
//!
//! A full per-minute x per-route table was measured against the generated
//! data: it holds about seven events per row, so it would cost more bytes
//! than the rows it summarises and be slower to merge than to scan.

use crate::event::Method;
use crate::sketch::LatencySketch;
use crate::types::Micros;

/// Status class: 0 when the event has no status code, else 1..=5 (`1xx`..`5xx`).
pub fn status_class(status: Option<u16>) -> u8 {
    match status {
        Some(s) if (100..600).contains(&s) => (s / 100) as u8,
        _ => 0,
    }
}

/// Aggregates of one rollup row. Latency fields cover the rows that had a latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupAgg {
    pub count: u64,
    pub errors: u64,
    pub latency_count: u64,
    pub latency_sum: f64,
    /// NaN when `latency_count == 0`.
    pub latency_min: f64,
    pub latency_max: f64,
    pub sketch: LatencySketch,
}

impl RollupAgg {
    pub fn add(&mut self, latency_ms: Option<f64>, is_error: bool) {
        self.count += 1;
        self.errors += u64::from(is_error);
        if let Some(l) = latency_ms.filter(|l| !l.is_nan()) {
            if self.latency_count == 0 {
                self.latency_min = l;
                self.latency_max = l;
            } else {
                self.latency_min = self.latency_min.min(l);
                self.latency_max = self.latency_max.max(l);
            }
            self.latency_count += 1;
            self.latency_sum += l;
            self.sketch.add(l);
        }
    }

    pub fn merge(&mut self, o: &RollupAgg) {
        if o.latency_count > 0 {
            if self.latency_count == 0 {
                self.latency_min = o.latency_min;
                self.latency_max = o.latency_max;
            } else {
                self.latency_min = self.latency_min.min(o.latency_min);
                self.latency_max = self.latency_max.max(o.latency_max);
            }
        }
        self.count += o.count;
        self.errors += o.errors;
        self.latency_count += o.latency_count;
        self.latency_sum += o.latency_sum;
        self.sketch.merge(&o.sketch);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinuteKey {
    pub minute: Micros,
    pub service: Option<String>,
    pub event_type: String,
    pub status_class: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub service: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<Method>,
    pub event_type: String,
    pub status_class: u8,
}

/// The rollups of one sealed segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollups {
    pub by_minute: Vec<(MinuteKey, RollupAgg)>,
    pub by_route: Vec<(RouteKey, RollupAgg)>,
}

fn opt_heap(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::capacity)
}

impl Rollups {
    /// Memory held, heap included (the table entries, their strings and
    /// sketch bins): what the memory budget charges for an active chunk's
    /// summary.
    pub fn heap_bytes(&self) -> usize {
        let minute = self.by_minute.capacity() * std::mem::size_of::<(MinuteKey, RollupAgg)>()
            + self
                .by_minute
                .iter()
                .map(|(k, a)| {
                    opt_heap(&k.service) + k.event_type.capacity() + a.sketch.heap_bytes()
                })
                .sum::<usize>();
        let route = self.by_route.capacity() * std::mem::size_of::<(RouteKey, RollupAgg)>()
            + self
                .by_route
                .iter()
                .map(|(k, a)| {
                    opt_heap(&k.service)
                        + opt_heap(&k.endpoint)
                        + k.event_type.capacity()
                        + a.sketch.heap_bytes()
                })
                .sum::<usize>();
        std::mem::size_of::<Rollups>() + minute + route
    }
}
