//! Rolling windows: per tenant, per series, a ring of per-second buckets
//! (count, errors, latency sum, latency sketch, distinct-user sketch).
//!
//! The last `FINE_SECS` seconds are kept per second, so every window up to
//! five minutes is exact to the second; older data, up to `HORIZON_SECS`,
//! is folded into per-minute buckets (a window longer than five minutes is
//! exact at its near edge and to the minute at its far edge). A ring keeps
//! only what the longest window reading it needs: the real-time series
//! keep five minutes, a rule's series its window (the hour for `no_data`). Only seconds
//! and minutes that saw events hold a bucket, so an idle series costs
//! almost nothing. Sketches are kept only where a rule or the real-time
//! endpoint needs them.
//!
//! This module owns the arithmetic of windows; it never decides whether a
//! rule holds (that is `evaluate`).

use std::collections::{HashMap, VecDeque};

use pulsestream_storage::Micros;
use pulsestream_storage::sketch::LatencySketch;

use super::users::{UserSketch, hash_user};
use pulsestream_storage::Event;

/// Seconds kept at one-second resolution: the real-time endpoint's
/// longest window and the longest window evaluated exactly.
pub const FINE_SECS: i64 = 300;
/// Longest window a rule may use, and how far back the windows reach.
pub const HORIZON_SECS: i64 = 3600;

/// What a series must keep beyond counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub latency_sketch: bool,
    pub users: bool,
}

impl Needs {
    pub fn union(self, o: Needs) -> Needs {
        Needs {
            latency_sketch: self.latency_sketch || o.latency_sketch,
            users: self.users || o.users,
        }
    }
}

/// One second's (or minute's) aggregate.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    pub count: u64,
    pub errors: u64,
    pub latency_sum: f64,
    pub latency_n: u64,
    pub latency: LatencySketch,
    pub users: UserSketch,
}

impl Bucket {
    pub fn add(&mut self, e: &Event, needs: Needs) {
        self.count += 1;
        if e.is_error() {
            self.errors += 1;
        }
        if let Some(l) = e.latency_ms
            && l.is_finite()
            && l >= 0.0
        {
            self.latency_sum += l;
            self.latency_n += 1;
            if needs.latency_sketch {
                self.latency.add(l);
            }
        }
        if needs.users
            && let Some(u) = &e.user_id
        {
            self.users.add(hash_user(u));
        }
    }

    pub fn merge(&mut self, o: &Bucket) {
        self.count += o.count;
        self.errors += o.errors;
        self.latency_sum += o.latency_sum;
        self.latency_n += o.latency_n;
        if !o.latency.is_empty() {
            self.latency.merge(&o.latency);
        }
        self.users.merge(&o.users);
    }

    /// Merges only the parts `needs` asks for (evaluation of a count-only
    /// rule never touches sketches).
    fn merge_needed(&mut self, o: &Bucket, needs: Needs) {
        self.count += o.count;
        self.errors += o.errors;
        self.latency_sum += o.latency_sum;
        self.latency_n += o.latency_n;
        if needs.latency_sketch && !o.latency.is_empty() {
            self.latency.merge(&o.latency);
        }
        if needs.users {
            self.users.merge(&o.users);
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<(i64, Bucket)>() + self.latency.heap_bytes() + self.users.heap_bytes()
    }
}

/// One series' ring.
#[derive(Debug, Default)]
pub struct Ring {
    /// (second, bucket), ascending, only seconds > now − FINE_SECS.
    fine: VecDeque<(i64, Bucket)>,
    /// (minute, bucket), ascending, seconds ≤ now − FINE_SECS.
    coarse: VecDeque<(i64, Bucket)>,
    /// Last second with an event (for `no_data` and series expiry).
    pub last_event_sec: i64,
}

fn upsert(q: &mut VecDeque<(i64, Bucket)>, key: i64) -> &mut Bucket {
    let pos = match q.back() {
        Some((k, _)) if *k == key => q.len() - 1,
        Some((k, _)) if *k < key => {
            q.push_back((key, Bucket::default()));
            q.len() - 1
        }
        None => {
            q.push_back((key, Bucket::default()));
            0
        }
        _ => match q.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => i,
            Err(i) => {
                q.insert(i, (key, Bucket::default()));
                i
            }
        },
    };
    &mut q[pos].1
}

impl Ring {
    /// Adds an event stamped `sec`, seen at `now_sec`. Events older than
    /// `horizon` (the longest window reading this ring) are not kept.
    pub fn add(&mut self, sec: i64, now_sec: i64, e: &Event, needs: Needs, horizon: i64) -> bool {
        if sec <= now_sec - horizon {
            return false;
        }
        let b = if sec > now_sec - FINE_SECS {
            upsert(&mut self.fine, sec)
        } else {
            upsert(&mut self.coarse, sec.div_euclid(60))
        };
        b.add(e, needs);
        self.last_event_sec = self.last_event_sec.max(sec);
        true
    }

    /// Folds seconds that left the fine range into minutes and drops what
    /// left the horizon.
    pub fn advance(&mut self, now_sec: i64, horizon: i64) {
        while let Some((s, _)) = self.fine.front()
            && *s <= now_sec - FINE_SECS
        {
            let Some((s, b)) = self.fine.pop_front() else {
                break;
            };
            upsert(&mut self.coarse, s.div_euclid(60)).merge(&b);
        }
        while let Some((m, _)) = self.coarse.front()
            && (m + 1) * 60 <= now_sec - horizon
        {
            self.coarse.pop_front();
        }
    }

    /// The aggregate of seconds in `(now_sec − window, now_sec]`.
    pub fn summary(&self, now_sec: i64, window: i64, needs: Needs) -> Bucket {
        let mut out = Bucket::default();
        let from = now_sec - window;
        for (s, b) in self.fine.iter().rev() {
            if *s <= from {
                break;
            }
            if *s <= now_sec {
                out.merge_needed(b, needs);
            }
        }
        if window > FINE_SECS {
            for (m, b) in self.coarse.iter().rev() {
                if m * 60 + 59 <= from {
                    break;
                }
                out.merge_needed(b, needs);
            }
        }
        out
    }

    /// Per-second buckets of `(now_sec − window, now_sec]` (window ≤ FINE_SECS).
    pub fn seconds(&self, now_sec: i64, window: i64) -> impl Iterator<Item = &(i64, Bucket)> {
        let from = now_sec - window.min(FINE_SECS);
        self.fine
            .iter()
            .filter(move |(s, _)| *s > from && *s <= now_sec)
    }

    pub fn is_empty(&self) -> bool {
        self.fine.is_empty() && self.coarse.is_empty()
    }

    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Ring>()
            + self.fine.iter().map(|(_, b)| b.bytes()).sum::<usize>()
            + self.coarse.iter().map(|(_, b)| b.bytes()).sum::<usize>()
    }
}

/// A group's values, one per group-by field (`None` when the event had no
/// value for it).
pub type GroupKey = Vec<Option<String>>;

/// The value every group-by field takes in a tenant's overflow series.
pub const OTHER: &str = "__other__";

/// All series of one tenant for one series spec (filter + group-by).
#[derive(Debug, Default)]
pub struct SpecSeries {
    pub series: HashMap<GroupKey, Ring>,
}

/// Second of a time.
pub fn sec_of(t: Micros) -> i64 {
    t.0.div_euclid(Micros::SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(status: u16, latency: f64) -> Event {
        Event {
            event_type: "api_call".into(),
            status_code: Some(status),
            latency_ms: Some(latency),
            ..Event::default()
        }
    }
    const ALL: Needs = Needs {
        latency_sketch: true,
        users: true,
    };

    #[test]
    fn window_edges_are_exact_to_the_second() {
        let mut r = Ring::default();
        let now = 1_000_000;
        // One event per second over the last 10 minutes.
        for s in (now - 599)..=now {
            r.add(
                s,
                now,
                &ev(if s % 10 == 0 { 500 } else { 200 }, 10.0),
                ALL,
                HORIZON_SECS,
            );
        }
        r.advance(now, HORIZON_SECS);
        let w = r.summary(now, 60, ALL);
        assert_eq!(w.count, 60, "seconds now-59..=now");
        assert_eq!(w.errors, 6);
        // The second at now-60 is outside a 60 s window; one more second
        // later, the oldest in-window second drops out.
        assert_eq!(r.summary(now + 1, 60, ALL).count, 59);
        assert_eq!(r.summary(now, 300, ALL).count, 300);
        let hour = r.summary(now, 3600, ALL);
        assert_eq!(hour.count, 600);
        assert!((w.latency.quantile(0.95).unwrap_or(0.0) - 10.0).abs() < 0.2);
    }

    #[test]
    fn data_leaves_the_horizon_and_late_events_land_in_minutes() {
        let mut r = Ring::default();
        let now = 10_000;
        assert!(r.add(now - 1000, now, &ev(200, 1.0), ALL, HORIZON_SECS));
        assert!(!r.add(now - HORIZON_SECS, now, &ev(200, 1.0), ALL, HORIZON_SECS));
        assert_eq!(r.summary(now, 1800, ALL).count, 1);
        r.advance(now + HORIZON_SECS, HORIZON_SECS);
        assert!(r.is_empty());
    }

    #[test]
    fn future_stamped_events_count_when_their_second_comes() {
        let mut r = Ring::default();
        r.add(105, 100, &ev(200, 1.0), ALL, HORIZON_SECS);
        assert_eq!(r.summary(100, 60, ALL).count, 0);
        assert_eq!(r.summary(105, 60, ALL).count, 1);
    }
}
