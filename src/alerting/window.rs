//! Rolling windows: per tenant, per series, a ring of per-second buckets
//! (count, errors, latency sum, latency sketch, distinct-user sketch).
//!
//! The last `FINE_SECS` seconds are kept per second, so every window up to
//! five minutes is exact to the second; older data, up to `HORIZON_SECS`,
//! is folded into per-minute buckets (a window longer than five minutes is
//! exact at its near edge and to the minute at its far edge). A ring keeps
//! only what the longest window reading it needs: the real-time series
//! keep five minutes, a rule's series its window (the hour for `no_data`). Only seconds
//! and minutes that saw events hold a slot, so an idle series costs
//! almost nothing. Slots are compact (40 bytes): most seconds of a series
//! see one event, whose latency is kept as the value itself; up to
//! `FEW_MAX` latencies are kept as values, a sketch only beyond. Sketches
//! are kept only where a rule or the real-time endpoint needs them.
//!
//! Rules read windows of at most five minutes from *views*: per series, a
//! running sum of the window kept current by adding the seconds that enter
//! and taking out those that leave (counts, integer-nanosecond latency
//! sums and sketch bins are all exact under subtraction, so a view always
//! equals the sum of its seconds). Distinct users cannot be taken out of
//! their sketch; those windows, and windows beyond five minutes, are summed
//! from the slots when read.
//!
//! This module owns the arithmetic of windows; it never decides whether a
//! rule holds (that is `evaluate`).

use std::collections::VecDeque;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// A latency in integer nanoseconds (sums of these are exact in any
/// order, so a window can take out what it added). Saturates far beyond
/// any real latency (~292 years).
fn latency_ns(ms: f64) -> i64 {
    (ms * 1e6).round() as i64
}

/// A window's aggregate: the sum of the slots it covers (what metrics read).
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    pub count: u64,
    pub errors: u64,
    pub latency_n: u64,
    /// Sum of latencies in nanoseconds.
    pub latency_ns: i128,
    pub latency: LatencySketch,
    pub users: UserSketch,
}

impl Bucket {
    /// Mean latency in milliseconds (`None` without latencies).
    pub fn avg_latency(&self) -> Option<f64> {
        (self.latency_n > 0).then(|| self.latency_ns as f64 / 1e6 / self.latency_n as f64)
    }

    /// Adds a slot, with only the parts `needs` asks for (evaluation of a
    /// count-only rule never touches sketches).
    fn add_slot(&mut self, s: &Slot, needs: Needs) {
        self.count += u64::from(s.count);
        self.errors += u64::from(s.errors);
        self.latency_n += u64::from(s.latency_n);
        self.latency_ns += i128::from(s.latency_ns);
        match &s.detail {
            Detail::None => {}
            Detail::One(v) => {
                if needs.latency_sketch {
                    self.latency.add(*v);
                }
            }
            Detail::Few(vs) => {
                if needs.latency_sketch {
                    for v in vs.iter() {
                        self.latency.add(*v);
                    }
                }
            }
            Detail::Full(f) => {
                if needs.latency_sketch && !f.latency.is_empty() {
                    self.latency.merge(&f.latency);
                }
                if needs.users {
                    self.users.merge(&f.users);
                }
            }
        }
    }

    /// Takes out a slot added before (views only; never with users).
    fn sub_slot(&mut self, s: &Slot, needs: Needs) {
        self.count -= u64::from(s.count);
        self.errors -= u64::from(s.errors);
        self.latency_n -= u64::from(s.latency_n);
        self.latency_ns -= i128::from(s.latency_ns);
        if needs.latency_sketch {
            match &s.detail {
                Detail::None => {}
                Detail::One(v) => self.latency.remove(*v),
                Detail::Few(vs) => {
                    for v in vs.iter() {
                        self.latency.remove(*v);
                    }
                }
                Detail::Full(f) => self.latency.subtract(&f.latency),
            }
        }
    }

    /// Adds what one event changed in a slot, but its latency: that goes
    /// to the sketch later, in bulk (`Ring::pending`).
    fn apply(&mut self, d: &Delta) {
        self.count += u64::from(d.count);
        self.errors += u64::from(d.errors);
        self.latency_n += u64::from(d.latency_n);
        self.latency_ns += i128::from(d.latency_ns);
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Bucket>() + self.latency.heap_bytes() + self.users.heap_bytes()
    }
}

/// Sketches of a slot with more than one latency or with users.
#[derive(Debug, Clone, Default)]
struct Full {
    latency: LatencySketch,
    users: UserSketch,
}

/// Latencies a slot keeps as values before it keeps a sketch: a sketch's
/// bins span the spread of the latencies (a few hundred bins, kilobytes),
/// while a second of a service's series commonly holds a few dozen values.
/// Adding the values to a sketch gives the very bins the slot's sketch
/// would have held, so quantiles are unchanged.
const FEW_MAX: usize = 128;

#[derive(Debug, Clone, Default)]
enum Detail {
    #[default]
    None,
    /// The one latency the slot's sketch would hold.
    One(f64),
    /// Up to `FEW_MAX` latencies. Boxed so a slot stays 40 bytes (a
    /// `Vec` inline would make every slot, most of which hold one value,
    /// 48).
    #[allow(clippy::box_collection)]
    Few(Box<Vec<f64>>),
    Full(Box<Full>),
}

impl Detail {
    fn full(&mut self) -> &mut Full {
        if !matches!(self, Detail::Full(_)) {
            let mut f = Full::default();
            match self {
                Detail::One(v) => f.latency.add(*v),
                Detail::Few(vs) => vs.iter().for_each(|v| f.latency.add(*v)),
                _ => {}
            }
            *self = Detail::Full(Box::new(f));
        }
        match self {
            Detail::Full(f) => f,
            // Just made full above.
            _ => unreachable!("detail made full"),
        }
    }

    fn add_latency(&mut self, v: f64) {
        match self {
            Detail::None => *self = Detail::One(v),
            Detail::One(a) => *self = Detail::Few(Box::new(vec![*a, v])),
            Detail::Few(vs) if vs.len() < FEW_MAX => {
                if vs.len() == vs.capacity() {
                    vs.reserve_exact((vs.len() / 4).max(2));
                }
                vs.push(v);
            }
            _ => self.full().latency.add(v),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Detail::Few(vs) => std::mem::size_of::<Vec<f64>>() + vs.capacity() * 8,
            Detail::Full(f) => {
                std::mem::size_of::<Full>() + f.latency.heap_bytes() + f.users.heap_bytes()
            }
            _ => 0,
        }
    }
}

/// One second's (or minute's) aggregate in a ring.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// Second (fine) or minute (coarse) since the epoch.
    key: u32,
    pub count: u32,
    pub errors: u32,
    pub latency_n: u32,
    /// Sum of latencies in nanoseconds.
    pub latency_ns: i64,
    detail: Detail,
}

/// What adding one event changed in a slot.
struct Delta {
    count: u32,
    errors: u32,
    latency_n: u32,
    latency_ns: i64,
    /// The latency added to the slot's sketch.
    value: Option<f64>,
}

impl Slot {
    fn new(key: u32) -> Slot {
        Slot {
            key,
            ..Slot::default()
        }
    }

    fn add(&mut self, e: &Event, needs: Needs) -> Delta {
        let before = (self.count, self.errors, self.latency_n, self.latency_ns);
        self.count = self.count.saturating_add(1);
        if e.is_error() {
            self.errors = self.errors.saturating_add(1);
        }
        let mut value = None;
        if let Some(l) = e.latency_ms
            && l.is_finite()
            && l >= 0.0
        {
            self.latency_ns = self.latency_ns.saturating_add(latency_ns(l));
            self.latency_n = self.latency_n.saturating_add(1);
            if needs.latency_sketch {
                self.detail.add_latency(l);
                value = Some(l);
            }
        }
        if needs.users
            && let Some(u) = &e.user_id
        {
            self.detail.full().users.add(hash_user(u));
        }
        Delta {
            count: self.count - before.0,
            errors: self.errors - before.1,
            latency_n: self.latency_n - before.2,
            latency_ns: self.latency_ns - before.3,
            value,
        }
    }

    fn merge(&mut self, o: &Slot) {
        self.count = self.count.saturating_add(o.count);
        self.errors = self.errors.saturating_add(o.errors);
        self.latency_n = self.latency_n.saturating_add(o.latency_n);
        self.latency_ns = self.latency_ns.saturating_add(o.latency_ns);
        match &o.detail {
            Detail::None => {}
            Detail::One(v) => self.detail.add_latency(*v),
            Detail::Few(vs) => vs.iter().for_each(|v| self.detail.add_latency(*v)),
            Detail::Full(f) => {
                let mine = self.detail.full();
                mine.latency.merge(&f.latency);
                mine.users.merge(&f.users);
            }
        }
    }

    /// The slot as a window aggregate (with its sketches).
    pub fn to_bucket(&self) -> Bucket {
        let mut b = Bucket::default();
        b.add_slot(
            self,
            Needs {
                latency_sketch: true,
                users: true,
            },
        );
        b
    }

    fn bytes(&self) -> usize {
        self.detail.heap_bytes()
    }
}

/// A window rules read from a spec's series, kept as a running sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct View {
    /// Window length in seconds (≤ `FINE_SECS`).
    pub window: i64,
    /// Never asks for users (their sketch cannot be taken out).
    pub needs: Needs,
}

/// One series' ring.
#[derive(Debug, Default)]
pub struct Ring {
    /// Seconds > now − FINE_SECS, ascending.
    fine: VecDeque<Slot>,
    /// Minutes of seconds ≤ now − FINE_SECS, ascending.
    coarse: VecDeque<Slot>,
    /// Last second with an event (for `no_data` and series expiry).
    pub last_event_sec: i64,
    /// Running sums of the spec's views over `(view_sec − window, view_sec]`
    /// (empty until first needed, and after the spec's views change).
    views: Vec<Bucket>,
    view_sec: i64,
    /// Latencies (second, value) added to slots but not yet to the views'
    /// sketches: a sketch add touches a bin far from the rest of the ring,
    /// so they are added in bulk when the views are next moved.
    pending: Vec<(i64, f64)>,
    /// Received events since its rules were last evaluated.
    pub dirty: bool,
}

/// Makes room for one more slot, growing by a quarter rather than
/// doubling: rings are many and their length is bounded by the window.
fn reserve_one(q: &mut VecDeque<Slot>) {
    if q.len() == q.capacity() {
        q.reserve_exact((q.len() / 4).max(4));
    }
}

fn upsert(q: &mut VecDeque<Slot>, key: u32) -> &mut Slot {
    let pos = match q.back() {
        Some(s) if s.key == key => q.len() - 1,
        Some(s) if s.key > key => match q.binary_search_by_key(&key, |s| s.key) {
            Ok(i) => i,
            Err(i) => {
                reserve_one(q);
                q.insert(i, Slot::new(key));
                i
            }
        },
        _ => {
            reserve_one(q);
            q.push_back(Slot::new(key));
            q.len() - 1
        }
    };
    &mut q[pos]
}

/// Gives back the room of a ring that shrank (a busy series gone quiet).
fn trim(q: &mut VecDeque<Slot>) {
    if q.capacity() > 16 && q.capacity() > 2 * q.len() {
        q.shrink_to(q.len() + q.len() / 4);
    }
}

/// Slots of `q` with a key in `(lo, hi]`.
fn range(q: &VecDeque<Slot>, lo: i64, hi: i64) -> impl Iterator<Item = &Slot> {
    let start = q.partition_point(|s| i64::from(s.key) <= lo);
    let end = q.partition_point(|s| i64::from(s.key) <= hi).max(start);
    q.range(start..end)
}

impl Ring {
    /// Adds an event stamped `sec`, seen at `now_sec`. Events older than
    /// `horizon` (the longest window reading this ring) are not kept.
    pub fn add(
        &mut self,
        sec: i64,
        now_sec: i64,
        e: &Event,
        needs: Needs,
        horizon: i64,
        views: &[View],
    ) -> bool {
        if sec <= now_sec - horizon {
            return false;
        }
        let Ok(key) = u32::try_from(sec) else {
            return false;
        };
        self.sync_views(now_sec, views);
        let fine = sec > now_sec - FINE_SECS;
        let slot = if fine {
            upsert(&mut self.fine, key)
        } else {
            upsert(&mut self.coarse, key / 60)
        };
        let d = slot.add(e, needs);
        if fine && !self.views.is_empty() {
            let mut sketched = false;
            for (acc, v) in self.views.iter_mut().zip(views) {
                if sec > self.view_sec - v.window && sec <= self.view_sec {
                    acc.apply(&d);
                    sketched |= v.needs.latency_sketch;
                }
            }
            if sketched && let Some(v) = d.value {
                self.pending.push((sec, v));
            }
        }
        self.last_event_sec = self.last_event_sec.max(sec);
        self.dirty = true;
        true
    }

    /// Brings the views to `now_sec`: the seconds that entered are added,
    /// those that left taken out. Views never move back (a clock stepping
    /// back leaves them ahead; they are then not read, see `view`).
    fn sync_views(&mut self, now_sec: i64, views: &[View]) {
        if views.is_empty() {
            if !self.views.is_empty() {
                self.views = Vec::new();
                self.pending = Vec::new();
            }
            return;
        }
        if self.views.len() != views.len() {
            self.pending.clear();
            self.views = views
                .iter()
                .map(|v| self.summary(now_sec, v.window, v.needs))
                .collect();
            self.view_sec = now_sec;
            return;
        }
        if now_sec <= self.view_sec {
            return;
        }
        self.flush(views);
        let from = self.view_sec;
        for (i, v) in views.iter().enumerate() {
            if now_sec - from >= v.window {
                self.views[i] = self.summary(now_sec, v.window, v.needs);
                continue;
            }
            let acc = &mut self.views[i];
            for s in range(&self.fine, from - v.window, now_sec - v.window) {
                acc.sub_slot(s, v.needs);
            }
            for s in range(&self.fine, from, now_sec) {
                acc.add_slot(s, v.needs);
            }
        }
        self.view_sec = now_sec;
    }

    /// Adds the pending latencies to the sketches of the views whose
    /// window holds their second.
    fn flush(&mut self, views: &[View]) {
        if self.pending.is_empty() {
            return;
        }
        if self.views.len() == views.len() {
            for (acc, v) in self.views.iter_mut().zip(views) {
                if !v.needs.latency_sketch {
                    continue;
                }
                for &(sec, x) in &self.pending {
                    if sec > self.view_sec - v.window && sec <= self.view_sec {
                        acc.latency.add(x);
                    }
                }
            }
        }
        self.pending.clear();
        if self.pending.capacity() > 1024 {
            self.pending.shrink_to(64);
        }
    }

    /// Forgets the views (the spec's views changed); they are rebuilt from
    /// the slots when next needed.
    pub fn reset_views(&mut self) {
        self.views = Vec::new();
        self.pending = Vec::new();
    }

    /// View `i`'s window sum, when the views stand at `now_sec` with
    /// nothing pending (`advance` brings them there).
    pub fn view(&self, i: usize, now_sec: i64) -> Option<&Bucket> {
        if self.view_sec != now_sec || !self.pending.is_empty() {
            return None;
        }
        self.views.get(i)
    }

    /// Folds seconds that left the fine range into minutes and drops what
    /// left the horizon (after bringing the views to `now_sec`, so no
    /// second a view still has to take out has been folded).
    pub fn advance(&mut self, now_sec: i64, horizon: i64, views: &[View]) {
        self.sync_views(now_sec, views);
        self.flush(views);
        let mut moved = false;
        while let Some(s) = self.fine.front()
            && i64::from(s.key) <= now_sec - FINE_SECS
        {
            let Some(s) = self.fine.pop_front() else {
                break;
            };
            if i64::from(s.key) > now_sec - horizon {
                upsert(&mut self.coarse, s.key / 60).merge(&s);
            }
            moved = true;
        }
        while let Some(m) = self.coarse.front()
            && (i64::from(m.key) + 1) * 60 <= now_sec - horizon
        {
            self.coarse.pop_front();
            moved = true;
        }
        if moved {
            trim(&mut self.fine);
            trim(&mut self.coarse);
        }
    }

    /// The aggregate of seconds in `(now_sec − window, now_sec]`.
    pub fn summary(&self, now_sec: i64, window: i64, needs: Needs) -> Bucket {
        let mut out = Bucket::default();
        let from = now_sec - window;
        for s in range(&self.fine, from, now_sec) {
            out.add_slot(s, needs);
        }
        if window > FINE_SECS {
            for m in self.coarse.iter().rev() {
                if i64::from(m.key) * 60 + 59 <= from {
                    break;
                }
                out.add_slot(m, needs);
            }
        }
        out
    }

    /// Events in `(now_sec − window, now_sec]` (window ≤ FINE_SECS), the
    /// cheap part of `summary`.
    pub fn count(&self, now_sec: i64, window: i64) -> u64 {
        range(&self.fine, now_sec - window.min(FINE_SECS), now_sec)
            .map(|s| u64::from(s.count))
            .sum()
    }

    /// Per-second slots of `(now_sec − window, now_sec]` (window ≤ FINE_SECS).
    pub fn seconds(&self, now_sec: i64, window: i64) -> impl Iterator<Item = (i64, &Slot)> {
        range(&self.fine, now_sec - window.min(FINE_SECS), now_sec).map(|s| (i64::from(s.key), s))
    }

    pub fn is_empty(&self) -> bool {
        self.fine.is_empty() && self.coarse.is_empty()
    }

    /// Bytes held, counting reserved room (not only what is used).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Ring>()
            + (self.fine.capacity() + self.coarse.capacity()) * std::mem::size_of::<Slot>()
            + self.fine.iter().map(Slot::bytes).sum::<usize>()
            + self.coarse.iter().map(Slot::bytes).sum::<usize>()
            + self.views.iter().map(Bucket::bytes).sum::<usize>()
            + self.pending.capacity() * std::mem::size_of::<(i64, f64)>()
    }
}

/// A group's values, one per group-by field (`None` when the event had no
/// value for it).
pub type GroupKey = Vec<Option<String>>;

/// The value every group-by field takes in a tenant's overflow series.
pub const OTHER: &str = "__other__";

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
                &[],
            );
        }
        r.advance(now, HORIZON_SECS, &[]);
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
        assert!(r.add(now - 1000, now, &ev(200, 1.0), ALL, HORIZON_SECS, &[]));
        assert!(!r.add(
            now - HORIZON_SECS,
            now,
            &ev(200, 1.0),
            ALL,
            HORIZON_SECS,
            &[]
        ));
        assert_eq!(r.summary(now, 1800, ALL).count, 1);
        r.advance(now + HORIZON_SECS, HORIZON_SECS, &[]);
        assert!(r.is_empty());
    }

    #[test]
    fn future_stamped_events_count_when_their_second_comes() {
        let mut r = Ring::default();
        r.add(105, 100, &ev(200, 1.0), ALL, HORIZON_SECS, &[]);
        assert_eq!(r.summary(100, 60, ALL).count, 0);
        assert_eq!(r.summary(105, 60, ALL).count, 1);
    }
    /// Views equal the sum of their seconds whatever the order of events
    /// and time: late, future-stamped, same-second, a jump, a step back.
    #[test]
    fn views_equal_the_sum_of_their_seconds() {
        let views = [
            View {
                window: 60,
                needs: Needs {
                    latency_sketch: true,
                    users: false,
                },
            },
            View {
                window: 300,
                needs: Needs::default(),
            },
        ];
        let needs = Needs {
            latency_sketch: true,
            users: false,
        };
        let mut r = Ring::default();
        let mut now = 50_000;
        let mut checked = 0usize;
        let mut seed: u64 = 7;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        for step in 0..3000 {
            now += match step {
                1000 => 400, // a jump longer than every window
                2000 => -3,  // the clock steps back
                _ => (next() % 3) as i64,
            };
            for _ in 0..(next() % 4) {
                let offset = (next() % 400) as i64 - 340; // late, current and ahead
                let lat = (next() % 5000) as f64 / 7.0;
                r.add(
                    now + offset,
                    now,
                    &ev(if next() % 5 == 0 { 500 } else { 200 }, lat),
                    needs,
                    600,
                    &views,
                );
            }
            r.advance(now, 600, &views);
            for (i, v) in views.iter().enumerate() {
                let Some(got) = r.view(i, now) else {
                    continue;
                };
                checked += 1;
                let want = r.summary(now, v.window, v.needs);
                assert_eq!(got.count, want.count, "step {step} view {i}");
                assert_eq!(got.errors, want.errors);
                assert_eq!(got.latency_n, want.latency_n);
                assert_eq!(got.latency_ns, want.latency_ns);
                for q in [0.0, 0.5, 0.95, 1.0] {
                    assert_eq!(got.latency.quantile(q), want.latency.quantile(q));
                }
            }
        }
        // The views answered nearly every step (only those just after the
        // clock steps back rebuild): the fast path was checked, not skipped.
        assert!(checked > 3000, "views answered {checked} times");
    }

    #[test]
    fn a_slot_is_forty_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    #[test]
    fn slots_keep_one_latency_inline_and_sum_it_exactly() {
        let mut r = Ring::default();
        let needs = Needs {
            latency_sketch: true,
            users: false,
        };
        r.add(100, 100, &ev(200, 0.1), needs, HORIZON_SECS, &[]);
        r.add(100, 100, &ev(200, 0.2), needs, HORIZON_SECS, &[]);
        r.add(99, 100, &ev(200, 7.0), needs, HORIZON_SECS, &[]);
        let b = r.summary(100, 60, needs);
        assert_eq!(b.latency_ns, 7_300_000);
        assert_eq!(b.avg_latency(), Some(7.3 / 3.0));
        let one: Vec<_> = r.seconds(100, 60).collect();
        assert!(matches!(one[0].1.detail, Detail::One(_)));
        assert!(matches!(one[1].1.detail, Detail::Few(_)));
        for i in 0..FEW_MAX {
            r.add(100, 100, &ev(200, i as f64), needs, HORIZON_SECS, &[]);
        }
        let full: Vec<_> = r.seconds(100, 1).collect();
        assert!(matches!(full[0].1.detail, Detail::Full(_)));
        assert_eq!(r.summary(100, 1, needs).latency.count(), FEW_MAX as u64 + 2);
        let mut direct = LatencySketch::new();
        for v in [0.1, 0.2, 7.0] {
            direct.add(v);
        }
        assert_eq!(b.latency.quantile(0.5), direct.quantile(0.5));
    }
}
