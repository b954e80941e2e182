//! One tenant's alerting state and the evaluation of its rules: the
//! rolling-window series (per rule spec, plus the real-time endpoint's
//! per-service and per-endpoint series), rules, alerts (one active per
//! (rule, group)), channels and silences.
//!
//! Everything here is synchronous and takes `now` as a parameter; the
//! caller holds the tenant's lock, persists the writes an evaluation
//! returns and hands its deliveries to the notifier. Nothing here does I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pulsestream_storage::{Event, Micros};
use serde_json::{Value, json};

use super::filter::{EventField, Filter};
use super::lifecycle::{self, Outcome};
use super::model::{Alert, AlertState, Channel, Delivery, Silence};
use super::persist::{self, Write};
use super::rules::{Metric, Rule};
use super::window::{Bucket, FINE_SECS, GroupKey, HORIZON_SECS, Needs, OTHER, Ring, View, sec_of};

/// Resolved alerts kept per tenant (memory and the list API); older ones
/// are deleted. Active alerts are never dropped.
pub const MAX_RESOLVED_PER_TENANT: usize = 1000;

/// The real-time endpoint's series specs (no filter; sketches kept).
pub const RT_ALL: &str = "rt:all";
pub const RT_SERVICE: &str = "rt:service";
pub const RT_ENDPOINT: &str = "rt:endpoint";

/// The series of one filter + group-by, shared by every rule that has it.
#[derive(Debug)]
pub struct Spec {
    pub key: String,
    pub filter: Filter,
    pub group_by: Vec<EventField>,
    pub needs: Needs,
    pub series: HashMap<GroupKey, Ring>,
    /// Rules using it (0 for the real-time specs, which always exist).
    pub rules: usize,
    /// When the spec started receiving events (epoch micros): `no_data`
    /// fires only once the spec has watched for a whole window.
    pub since: i64,
    /// Received events since the last evaluation of its rules.
    pub dirty: bool,
    /// How far back its rings keep data (seconds): the longest window of
    /// its rules (an hour with a `no_data` rule, which must remember silent
    /// groups), five minutes for the real-time series.
    pub horizon: i64,
    /// Live batches add only events received at or after this (epoch
    /// micros); older ones come from the store by a backfill, so none is
    /// counted twice.
    pub cutoff: i64,
    /// A backfill is queued for it (a rule created while the server runs):
    /// the stored events before `cutoff` are the backfill's, so the rebuild
    /// on start, which may still be running, leaves the spec alone.
    pub backfill_pending: bool,
    /// The windows of at most five minutes its rules read, kept as running
    /// sums in every ring (one per window length).
    pub views: Vec<View>,
    /// Index of its group-by in `TenantState::group_bys` (intake computes
    /// each distinct group key once per event).
    group: usize,
}

/// Which specs an event can match: specs whose filter requires one of a
/// few values of endpoint, service or event type are found by that value;
/// the others are visited for every event.
#[derive(Debug, Default)]
struct SpecIndex {
    /// By endpoint, service, event type.
    by: [HashMap<String, Vec<usize>>; 3],
    rest: Vec<usize>,
}

fn index_slot(f: &EventField) -> Option<usize> {
    match f {
        EventField::Endpoint => Some(0),
        EventField::Service => Some(1),
        EventField::EventType => Some(2),
        _ => None,
    }
}

impl SpecIndex {
    /// Adds to `out` the specs `e` may match.
    fn candidates(&self, e: &Event, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.rest);
        let values = [
            e.endpoint.as_deref(),
            e.service.as_deref(),
            Some(e.event_type.as_str()),
        ];
        for (map, v) in self.by.iter().zip(values) {
            if !map.is_empty()
                && let Some(v) = v
                && let Some(ids) = map.get(v)
            {
                out.extend_from_slice(ids);
            }
        }
    }
}

/// Which events an `ingest_into` takes. Live batches and stored events
/// are told apart by a spec's cutoff (receive time), so an event is
/// counted once even when the store is read while batches arrive.
#[derive(Debug, Clone, Copy)]
pub enum Feed<'a> {
    /// An acknowledged batch: every spec, events received at or after its
    /// cutoff.
    Live,
    /// A new spec's backfill: that spec only, events received before its
    /// cutoff.
    Backfill(&'a str),
    /// The rebuild on start: every spec, events received before its cutoff.
    Rebuild,
}

/// Everything alerting holds for one tenant.
pub struct TenantState {
    pub tenant: String,
    pub rules: BTreeMap<String, Arc<Rule>>,
    /// Specs by slot (`None`: a freed slot); `spec_ids` finds them by key.
    specs: Vec<Option<Spec>>,
    spec_ids: HashMap<String, usize>,
    index: SpecIndex,
    /// The distinct group-bys of the specs.
    group_bys: Vec<Vec<EventField>>,
    pub series_count: usize,
    /// Events that went to an `other` series because of the series cap.
    pub overflow_events: u64,
    pub alerts: HashMap<String, Alert>,
    /// (rule id, group key) → id of its active alert.
    pub active: HashMap<(String, String), String>,
    pub channels: BTreeMap<String, Channel>,
    pub silences: BTreeMap<String, Silence>,
    /// Rule id → (computed at, group key → baseline value).
    pub baselines: HashMap<String, (i64, HashMap<String, f64>)>,
}

/// What an evaluation or an action produced, for the caller to persist
/// and send.
#[derive(Default)]
pub struct Effects {
    pub writes: Vec<Write>,
    pub deliveries: Vec<Delivery>,
    pub evaluations: u64,
    /// Alerts whose state changed (for the live dashboard and metrics).
    pub changed: Vec<Alert>,
}

/// The text form of a group key (map key and persisted alert field).
pub fn group_key_string(gk: &GroupKey) -> String {
    let mut s = String::new();
    for (i, v) in gk.iter().enumerate() {
        if i > 0 {
            s.push('\u{1f}');
        }
        match v {
            Some(v) => s.push_str(v),
            None => s.push('\u{0}'),
        }
    }
    s
}

/// Value of `metric` over a window summary (`None`: undefined, e.g. an
/// error rate of nothing).
pub fn metric_value(metric: Metric, b: &Bucket, window_secs: i64) -> Option<f64> {
    match metric {
        Metric::Count | Metric::NoData => Some(b.count as f64),
        Metric::Rate => Some(b.count as f64 / window_secs.max(1) as f64),
        Metric::ErrorRate => (b.count > 0).then(|| b.errors as f64 / b.count as f64),
        Metric::ErrorCount => Some(b.errors as f64),
        Metric::AvgLatency => b.avg_latency(),
        Metric::DistinctUsers => Some(b.users.estimate()),
        Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 => {
            b.latency.quantile(metric.quantile().unwrap_or(0.5))
        }
    }
}

/// The webhook body of contract section 7.
pub fn payload(tenant: &str, a: &Alert, dashboard_base: &str) -> Value {
    json!({
        "version": "1",
        "tenant": tenant,
        "alert": a.webhook_json(),
        "dashboard_url": format!("{dashboard_base}/alerts/{}", a.id),
    })
}

/// A group key being made for one event, in buffers reused across events.
#[derive(Clone, Default)]
struct KeyBuf {
    key: GroupKey,
    made: bool,
}

impl KeyBuf {
    /// The event's key for `group_by`, made once per event.
    fn make(&mut self, group_by: &[EventField], e: &Event) -> &GroupKey {
        if !self.made {
            self.key.resize(group_by.len(), None);
            for (part, f) in self.key.iter_mut().zip(group_by) {
                match (f.text_ref(e), part.as_mut()) {
                    (Some(v), Some(buf)) => {
                        buf.clear();
                        buf.push_str(&v);
                    }
                    (Some(v), None) => *part = Some(v.into_owned()),
                    (None, _) => *part = None,
                }
            }
            self.made = true;
        }
        &self.key
    }
}

impl TenantState {
    pub fn new(tenant: &str, now: i64) -> TenantState {
        let mut t = TenantState {
            tenant: tenant.to_owned(),
            rules: BTreeMap::new(),
            specs: Vec::new(),
            spec_ids: HashMap::new(),
            index: SpecIndex::default(),
            group_bys: Vec::new(),
            series_count: 0,
            overflow_events: 0,
            alerts: HashMap::new(),
            active: HashMap::new(),
            channels: BTreeMap::new(),
            silences: BTreeMap::new(),
            baselines: HashMap::new(),
        };
        let rt = Needs {
            latency_sketch: true,
            users: false,
        };
        for (key, g) in [
            (RT_ALL, vec![]),
            (RT_SERVICE, vec![EventField::Service]),
            (RT_ENDPOINT, vec![EventField::Endpoint]),
        ] {
            t.insert_spec(Spec {
                key: key.to_owned(),
                filter: Filter::default(),
                group_by: g,
                needs: rt,
                series: HashMap::new(),
                rules: 0,
                since: now,
                dirty: false,
                horizon: FINE_SECS,
                cutoff: 0,
                backfill_pending: false,
                views: Vec::new(),
                group: 0,
            });
        }
        t
    }

    /// The spec of `key`.
    pub fn spec(&self, key: &str) -> Option<&Spec> {
        self.specs.get(*self.spec_ids.get(key)?)?.as_ref()
    }

    pub fn spec_mut(&mut self, key: &str) -> Option<&mut Spec> {
        self.specs.get_mut(*self.spec_ids.get(key)?)?.as_mut()
    }

    /// Every spec (the real-time ones and the rules').
    pub fn specs(&self) -> impl Iterator<Item = &Spec> {
        self.specs.iter().flatten()
    }

    fn insert_spec(&mut self, spec: Spec) {
        let slot = match self.specs.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.specs.push(None);
                self.specs.len() - 1
            }
        };
        self.spec_ids.insert(spec.key.clone(), slot);
        self.specs[slot] = Some(spec);
        self.reindex();
    }

    fn remove_spec(&mut self, key: &str) -> Option<Spec> {
        let slot = self.spec_ids.remove(key)?;
        let s = self.specs.get_mut(slot)?.take();
        self.reindex();
        s
    }

    /// Rebuilds the intake index and the group-by list (specs change only
    /// with rules).
    fn reindex(&mut self) {
        let mut index = SpecIndex::default();
        let mut group_bys: Vec<Vec<EventField>> = Vec::new();
        for (i, spec) in self.specs.iter_mut().enumerate() {
            let Some(spec) = spec else { continue };
            spec.group = match group_bys.iter().position(|g| *g == spec.group_by) {
                Some(g) => g,
                None => {
                    group_bys.push(spec.group_by.clone());
                    group_bys.len() - 1
                }
            };
            match spec
                .filter
                .equality_key()
                .and_then(|(f, vals)| Some((index_slot(f)?, vals)))
            {
                Some((slot, vals)) => {
                    for v in vals {
                        let ids = index.by[slot].entry(v.clone()).or_default();
                        if !ids.contains(&i) {
                            ids.push(i);
                        }
                    }
                }
                None => index.rest.push(i),
            }
        }
        self.index = index;
        self.group_bys = group_bys;
    }

    /// Recomputes the views of a spec from its rules; rings forget theirs
    /// when they change.
    fn refresh_views(&mut self, key: &str) {
        let mut views: Vec<View> = Vec::new();
        // Disabled rules are not evaluated, so they need no running sums;
        // enabling one goes through `put_rule`, which refreshes them.
        for r in self
            .rules
            .values()
            .filter(|r| r.spec_key == key && r.enabled)
        {
            let needs = r.metric.needs();
            if r.window_secs > FINE_SECS || needs.users {
                continue;
            }
            match views.iter_mut().find(|v| v.window == r.window_secs) {
                Some(v) => v.needs = v.needs.union(needs),
                None => views.push(View {
                    window: r.window_secs,
                    needs,
                }),
            }
        }
        views.sort();
        if let Some(spec) = self.spec_mut(key)
            && spec.views != views
        {
            spec.views = views;
            for r in spec.series.values_mut() {
                r.reset_views();
            }
        }
    }

    /// Adds a batch to every spec it matches. Returns true when a rule's
    /// series was touched (the caller then evaluates at once).
    pub fn ingest(&mut self, events: &[Event], now: i64, max_series: usize) -> bool {
        self.ingest_into(events, now, max_series, Feed::Live)
    }

    /// `ingest` of live batches, a backfill or the rebuild (see `Feed`).
    pub fn ingest_into(
        &mut self,
        events: &[Event],
        now: i64,
        max_series: usize,
        feed: Feed<'_>,
    ) -> bool {
        let now_sec = sec_of(Micros(now));
        let only = match feed {
            Feed::Backfill(k) => match self.spec_ids.get(k) {
                Some(i) => Some(*i),
                None => return false,
            },
            Feed::Live | Feed::Rebuild => None,
        };
        let mut touched = false;
        let TenantState {
            specs,
            index,
            group_bys,
            series_count,
            overflow_events,
            ..
        } = self;
        let mut visit: Vec<usize> = Vec::new();
        // The event's group key per distinct group-by, made on first use
        // into buffers kept across events: a lookup of a known series
        // allocates nothing (only a new series clones its key).
        let mut keys: Vec<KeyBuf> = vec![KeyBuf::default(); group_bys.len()];
        for e in events {
            let sec = sec_of(e.timestamp);
            visit.clear();
            match only {
                Some(i) => visit.push(i),
                None => index.candidates(e, &mut visit),
            }
            keys.iter_mut().for_each(|k| k.made = false);
            for &i in &visit {
                let Some(Some(spec)) = specs.get_mut(i) else {
                    continue;
                };
                let wanted = match feed {
                    Feed::Live => e.received_at.0 >= spec.cutoff,
                    Feed::Backfill(_) => e.received_at.0 < spec.cutoff,
                    Feed::Rebuild => e.received_at.0 < spec.cutoff && !spec.backfill_pending,
                };
                if !wanted || !spec.filter.matches(e) {
                    continue;
                }
                let Some(slot) = keys.get_mut(spec.group) else {
                    continue;
                };
                let gk = slot.make(&spec.group_by, e);
                let Spec {
                    series,
                    needs,
                    horizon,
                    views,
                    group_by,
                    rules,
                    dirty,
                    ..
                } = spec;
                let ring = match series.get_mut(gk) {
                    Some(r) => r,
                    None if *series_count < max_series => {
                        *series_count += 1;
                        series.entry(gk.clone()).or_default()
                    }
                    None => {
                        // At the cap: count in the spec's overflow series,
                        // never lose the event silently.
                        *overflow_events += 1;
                        let other: GroupKey = vec![Some(OTHER.to_owned()); group_by.len()];
                        if !series.contains_key(&other) {
                            *series_count += 1;
                        }
                        series.entry(other).or_default()
                    }
                };
                if ring.add(sec, now_sec, e, *needs, *horizon, views) && *rules > 0 {
                    *dirty = true;
                    touched = true;
                }
            }
        }
        touched
    }

    /// Moves every ring to `now` and forgets series with no data left.
    pub fn advance(&mut self, now: i64) {
        let now_sec = sec_of(Micros(now));
        let mut removed = 0;
        for spec in self.specs.iter_mut().flatten() {
            let horizon = spec.horizon;
            let views = &spec.views;
            spec.series.retain(|_, r| {
                r.advance(now_sec, horizon, views);
                let keep = !r.is_empty();
                if !keep {
                    removed += 1;
                }
                keep
            });
        }
        self.series_count = self.series_count.saturating_sub(removed);
    }

    /// From now on live batches add only events received at or after
    /// `cutoff`, to every spec; the rebuild adds those received before.
    pub fn set_cutoff(&mut self, cutoff: i64) {
        for s in self.specs.iter_mut().flatten() {
            s.cutoff = s.cutoff.max(cutoff);
        }
    }

    /// How far back any of the tenant's rings keeps data (seconds): what a
    /// rebuild has to read.
    pub fn longest_horizon(&self) -> i64 {
        self.specs().map(|s| s.horizon).max().unwrap_or(FINE_SECS)
    }

    /// Moves to `now` only the series that received events since the last
    /// evaluation (right after ingest: the others wait for the pass).
    pub fn advance_touched(&mut self, now: i64) {
        let now_sec = sec_of(Micros(now));
        for spec in self.specs.iter_mut().flatten().filter(|s| s.dirty) {
            for r in spec.series.values_mut().filter(|r| r.dirty) {
                r.advance(now_sec, spec.horizon, &spec.views);
            }
        }
    }

    /// Window memory of this tenant (bytes, approximate).
    pub fn window_bytes(&self) -> usize {
        self.specs()
            .flat_map(|s| s.series.iter())
            .map(|(k, r)| {
                r.bytes()
                    + k.iter()
                        .map(|v| v.as_ref().map_or(0, String::capacity) + 24)
                        .sum::<usize>()
            })
            .sum()
    }

    /// Registers a rule (new or updated) and the spec it reads.
    pub fn put_rule(&mut self, rule: Arc<Rule>, now: i64) -> bool {
        let mut new_spec = false;
        if let Some(old) = self.rules.remove(&rule.id) {
            self.release_spec(&old.spec_key);
            self.baselines.remove(&rule.id);
        }
        let needs = rule.metric.needs();
        // A minute beyond the window: the far edge is read per minute.
        let horizon = if rule.metric == Metric::NoData {
            HORIZON_SECS
        } else {
            (rule.window_secs + 60).min(HORIZON_SECS)
        };
        match self.spec_mut(&rule.spec_key) {
            Some(s) => {
                s.rules += 1;
                s.needs = s.needs.union(needs);
                s.horizon = s.horizon.max(horizon);
            }
            None => {
                new_spec = true;
                self.insert_spec(Spec {
                    key: rule.spec_key.clone(),
                    filter: rule.filter.clone(),
                    group_by: rule.group_by.clone(),
                    needs,
                    series: HashMap::new(),
                    rules: 1,
                    since: rule.created_at.min(now),
                    dirty: false,
                    horizon,
                    cutoff: 0,
                    backfill_pending: false,
                    views: Vec::new(),
                    group: 0,
                });
            }
        }
        let key = rule.spec_key.clone();
        self.rules.insert(rule.id.clone(), rule);
        self.refresh_views(&key);
        new_spec
    }

    fn release_spec(&mut self, key: &str) {
        let drop = match self.spec_mut(key) {
            Some(s) if s.rules > 0 => {
                s.rules -= 1;
                s.rules == 0
            }
            _ => false,
        };
        if drop {
            if let Some(s) = self.remove_spec(key) {
                self.series_count = self.series_count.saturating_sub(s.series.len());
            }
        } else {
            self.refresh_views(key);
        }
    }

    /// Removes a rule; its active alerts are resolved (and whoever was told
    /// they fired is told they resolved).
    pub fn remove_rule(&mut self, id: &str, now: i64, dashboard: &str, fx: &mut Effects) -> bool {
        let Some(rule) = self.rules.remove(id) else {
            return false;
        };
        self.resolve_rule_alerts(&rule, now, dashboard, fx);
        self.release_spec(&rule.spec_key);
        self.baselines.remove(id);
        true
    }

    /// Resolves every active alert of `rule` (deleted or disabled rule).
    pub fn resolve_rule_alerts(
        &mut self,
        rule: &Rule,
        now: i64,
        dashboard: &str,
        fx: &mut Effects,
    ) {
        let ids: Vec<String> = self
            .active
            .iter()
            .filter(|((r, _), _)| *r == rule.id)
            .map(|(_, a)| a.clone())
            .collect();
        for aid in ids {
            let mut out = Outcome::default();
            if let Some(a) = self.alerts.get_mut(&aid) {
                let silenced = a.silenced;
                lifecycle::resolve(a, now, None, silenced, &mut out);
            }
            self.apply(&aid, out, now, dashboard, fx);
        }
    }

    fn silenced(&self, a: &Alert, now: i64) -> bool {
        self.silences
            .values()
            .any(|s| s.is_active(now) && s.matches(a))
    }

    /// Persists and notifies the outcome of a step of alert `aid`.
    pub fn apply(&mut self, aid: &str, out: Outcome, now: i64, dashboard: &str, fx: &mut Effects) {
        let Some(a) = self.alerts.get(aid) else {
            return;
        };
        let k = persist::key(&self.tenant, aid);
        if out.drop {
            let key = (a.rule_id.clone(), a.group_key.clone());
            self.active.remove(&key);
            self.alerts.remove(aid);
            fx.writes.push(Write::Delete(persist::ALERTS, k));
            return;
        }
        if !a.state.is_active() {
            self.active
                .remove(&(a.rule_id.clone(), a.group_key.clone()));
        }
        for n in &out.notices {
            for ch in &n.channels {
                if !self.channels.contains_key(ch) {
                    tracing::warn!(tenant = %self.tenant, channel = %ch, alert = %aid,
                        "alert names a channel that does not exist; skipped");
                    continue;
                }
                let d = Delivery {
                    id: crate::auth::random::id("dl"),
                    tenant: self.tenant.clone(),
                    alert_id: Some(aid.to_owned()),
                    channel_id: ch.clone(),
                    kind: n.kind,
                    payload: payload(&self.tenant, a, dashboard),
                    attempts: 0,
                    next_at: now,
                    created_at: now,
                };
                fx.writes.push(persist::put(
                    persist::DELIVERIES,
                    persist::key(&self.tenant, &d.id),
                    &d,
                ));
                fx.deliveries.push(d);
            }
        }
        if out.changed {
            fx.writes.push(persist::put(persist::ALERTS, k, a));
            fx.changed.push(a.clone());
        }
    }

    /// Evaluates the tenant's enabled rules at `now`. With `only_dirty`
    /// (right after ingest) only the rules whose series received events
    /// are evaluated, and only for those series: the others have not
    /// changed since the last pass, which the once-a-second pass (time
    /// moving: `for`, windows sliding, `no_data`) covers.
    pub fn evaluate(&mut self, now: i64, only_dirty: bool, dashboard: &str, fx: &mut Effects) {
        let now_sec = sec_of(Micros(now));
        let rules: Vec<Arc<Rule>> = self
            .rules
            .values()
            .filter(|r| r.enabled)
            .filter(|r| !only_dirty || self.spec(&r.spec_key).is_some_and(|s| s.dirty))
            .cloned()
            .collect();
        let with_active: std::collections::HashSet<String> =
            self.active.keys().map(|(r, _)| r.clone()).collect();
        for rule in rules {
            fx.evaluations += 1;
            let Some(spec) = self.spec(&rule.spec_key) else {
                continue;
            };
            let needs = rule.metric.needs();
            let watched_long_enough = now - spec.since >= rule.window_secs * Micros::SECOND;
            let view = spec
                .views
                .iter()
                .position(|v| v.window == rule.window_secs && !needs.users);
            let has_active = with_active.contains(rule.id.as_str());
            // Only groups whose condition holds or that have an alert go
            // on (the common case, nothing holds, allocates nothing).
            let mut results: Vec<(GroupKey, Option<f64>, bool)> = Vec::new();
            let judge = |b: &Bucket| {
                let value = metric_value(rule.metric, b, rule.window_secs);
                let holds = if rule.metric == Metric::NoData {
                    b.count == 0 && watched_long_enough
                } else {
                    b.count >= rule.min_events.max(1)
                        && value.is_some_and(|v| rule.op.holds(v, rule.threshold))
                };
                (value, holds)
            };
            for (gk, ring) in &spec.series {
                if only_dirty && !ring.dirty {
                    continue;
                }
                let (value, holds) = match view.and_then(|i| ring.view(i, now_sec)) {
                    Some(b) => judge(b),
                    None => judge(&ring.summary(now_sec, rule.window_secs, needs)),
                };
                if holds || has_active {
                    results.push((gk.clone(), value, holds));
                }
            }
            if !only_dirty && rule.group_by.is_empty() && spec.series.is_empty() {
                let (value, holds) = judge(&Bucket::default());
                if holds || has_active {
                    results.push((Vec::new(), value, holds));
                }
            }
            let base = match rule.baseline {
                Some(_) => self.baselines.get(&rule.id).map(|(_, m)| m.clone()),
                None => None,
            };
            let mut seen = std::collections::HashSet::new();
            for (gk, value, mut holds) in results {
                let gks = group_key_string(&gk);
                let mut baseline_value = None;
                if let Some(b) = rule.baseline {
                    baseline_value = base.as_ref().and_then(|m| m.get(&gks)).copied();
                    holds = holds
                        && match (value, baseline_value) {
                            (Some(v), Some(bv)) => rule.op.holds(v, b.factor * bv),
                            _ => false,
                        };
                }
                seen.insert(gks.clone());
                let key = (rule.id.clone(), gks.clone());
                let aid = match self.active.get(&key) {
                    Some(aid) => aid.clone(),
                    None if holds => {
                        let group = rule
                            .group_by
                            .iter()
                            .zip(gk.iter())
                            .map(|(f, v)| (f.name(), v.clone()))
                            .collect();
                        let a = lifecycle::open(
                            crate::auth::random::id("al"),
                            &self.tenant,
                            &rule,
                            group,
                            gks.clone(),
                            now,
                        );
                        let aid = a.id.clone();
                        self.active.insert(key, aid.clone());
                        self.alerts.insert(aid.clone(), a);
                        aid
                    }
                    None => continue,
                };
                self.step_alert(
                    &aid,
                    &rule,
                    holds,
                    value,
                    baseline_value,
                    now,
                    dashboard,
                    fx,
                );
            }
            // Active alerts whose series is gone: no events in the horizon
            // (a pass over touched series only cannot tell).
            let orphans: Vec<String> = self
                .active
                .iter()
                .filter(|_| has_active && !only_dirty)
                .filter(|((r, g), _)| *r == rule.id && !seen.contains(g))
                .map(|(_, a)| a.clone())
                .collect();
            for aid in orphans {
                let holds = rule.metric == Metric::NoData;
                let value = holds.then_some(0.0);
                self.step_alert(&aid, &rule, holds, value, None, now, dashboard, fx);
            }
        }
        for s in self.specs.iter_mut().flatten() {
            if s.dirty || !only_dirty {
                s.dirty = false;
                for r in s.series.values_mut() {
                    r.dirty = false;
                }
            }
        }
        self.prune_resolved(fx);
    }

    #[allow(clippy::too_many_arguments)]
    fn step_alert(
        &mut self,
        aid: &str,
        rule: &Rule,
        holds: bool,
        value: Option<f64>,
        baseline_value: Option<f64>,
        now: i64,
        dashboard: &str,
        fx: &mut Effects,
    ) {
        let silenced = match self.alerts.get(aid) {
            Some(a) => self.silenced(a, now),
            None => return,
        };
        let Some(a) = self.alerts.get_mut(aid) else {
            return;
        };
        let before_value = a.value;
        a.value = value;
        a.baseline_value = baseline_value;
        let was_new = a.history.len() == 1 && a.state == AlertState::Pending && a.started_at == now;
        let mut out = lifecycle::step(a, rule, holds, now, silenced);
        if was_new {
            out.changed = true;
        }
        // The value is persisted with transitions, not on every change:
        // one write per second per alert would be pure overhead.
        let _ = before_value;
        self.apply(aid, out, now, dashboard, fx);
    }

    fn prune_resolved(&mut self, fx: &mut Effects) {
        let resolved = self.alerts.len() - self.active.len();
        if resolved <= MAX_RESOLVED_PER_TENANT {
            return;
        }
        let mut old: Vec<(i64, String)> = self
            .alerts
            .values()
            .filter(|a| !a.state.is_active())
            .map(|a| (a.resolved_at.unwrap_or(a.started_at), a.id.clone()))
            .collect();
        old.sort();
        for (_, id) in old.into_iter().take(resolved - MAX_RESOLVED_PER_TENANT) {
            self.alerts.remove(&id);
            fx.writes.push(Write::Delete(
                persist::ALERTS,
                persist::key(&self.tenant, &id),
            ));
        }
    }

    /// Acknowledges an alert for `by`. `Err(state)` when it cannot be.
    pub fn acknowledge(
        &mut self,
        aid: &str,
        by: &str,
        now: i64,
        fx: &mut Effects,
    ) -> Option<Result<(), AlertState>> {
        let a = self.alerts.get_mut(aid)?;
        if !lifecycle::acknowledge(a, now, by) {
            return Some(Err(a.state));
        }
        fx.writes.push(persist::put(
            persist::ALERTS,
            persist::key(&self.tenant, aid),
            &*a,
        ));
        fx.changed.push(a.clone());
        Some(Ok(()))
    }

    /// Resolves an alert by hand.
    pub fn resolve_by(
        &mut self,
        aid: &str,
        by: &str,
        now: i64,
        dashboard: &str,
        fx: &mut Effects,
    ) -> Option<Result<(), AlertState>> {
        let silenced = {
            let a = self.alerts.get(aid)?;
            if !a.state.is_active() {
                return Some(Err(a.state));
            }
            self.silenced(a, now)
        };
        let mut out = Outcome::default();
        if let Some(a) = self.alerts.get_mut(aid) {
            lifecycle::resolve(a, now, Some(by.to_owned()), silenced, &mut out);
        }
        self.apply(aid, out, now, dashboard, fx);
        Some(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::model::{Matcher, NoticeKind};
    use crate::alerting::rules::compile;

    const S: i64 = Micros::SECOND;
    const T0: i64 = 1_800_000_000 * S;

    fn ev(t: i64, endpoint: &str, status: u16) -> Event {
        Event {
            timestamp: Micros(t),
            event_type: "api_call".into(),
            service: Some("checkout".into()),
            endpoint: Some(endpoint.into()),
            status_code: Some(status),
            latency_ms: Some(20.0),
            ..Event::default()
        }
    }

    fn tenant_with(rule: Value) -> TenantState {
        let mut t = TenantState::new("t1", T0 - 3600 * S);
        t.channels.insert(
            "ch_a".into(),
            Channel {
                id: "ch_a".into(),
                tenant: "t1".into(),
                name: "a".into(),
                kind: "webhook".into(),
                config: json!({"url": "http://127.0.0.1:1/"}),
                created_at: 0,
            },
        );
        let r = compile(&rule, "r_1", 0).expect("rule");
        t.put_rule(Arc::new(r), T0 - 3600 * S);
        t
    }

    fn error_rule() -> Value {
        json!({"name": "5xx", "channels": ["ch_a"], "group_by": ["endpoint"],
               "condition": {"metric": "error_rate", "window": "1m", "op": ">",
                             "threshold": 0.5, "min_events": 5}})
    }

    #[test]
    fn group_keys_made_in_reused_buffers_keep_each_event_its_own() {
        // Keys of consecutive events share buffers: a missing value, a
        // shorter one and a longer one must each land in their own series.
        let mut t = TenantState::new("t1", T0);
        let mut batch = Vec::new();
        for (i, svc) in ["payments", "api", "", "payments-eu", "api"]
            .iter()
            .enumerate()
        {
            let mut e = ev(T0 + i as i64 * S, "/x", 200);
            e.service = (!svc.is_empty()).then(|| (*svc).to_owned());
            batch.push(e);
        }
        t.ingest(&batch, T0 + 5 * S, 100);
        let spec = t.spec(RT_SERVICE).expect("real-time spec");
        let mut got: Vec<(Option<String>, u64)> = spec
            .series
            .iter()
            .map(|(k, r)| (k[0].clone(), r.count(T0 / S + 10, 60)))
            .collect();
        got.sort();
        let want = vec![
            (None, 1),
            (Some("api".to_owned()), 2),
            (Some("payments".to_owned()), 1),
            (Some("payments-eu".to_owned()), 1),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_burst_on_one_endpoint_fires_one_alert_for_that_endpoint() {
        let mut t = tenant_with(error_rule());
        let mut batch = Vec::new();
        for i in 0..10 {
            batch.push(ev(T0 + i * S / 10, "/pay", 503));
            batch.push(ev(T0 + i * S / 10, "/list", 200));
        }
        assert!(t.ingest(&batch, T0 + S, 1000));
        let mut fx = Effects::default();
        t.evaluate(T0 + S, true, "http://x", &mut fx);
        assert_eq!(fx.deliveries.len(), 1);
        let d = &fx.deliveries[0];
        assert_eq!(d.payload["alert"]["group"]["endpoint"], "/pay");
        assert_eq!(d.payload["alert"]["state"], "firing");
        // Same condition a second later: still one alert, no new notice.
        let mut fx = Effects::default();
        t.ingest(&[ev(T0 + S + 1, "/pay", 500)], T0 + 2 * S, 1000);
        t.evaluate(T0 + 2 * S, false, "http://x", &mut fx);
        assert!(fx.deliveries.is_empty());
        assert_eq!(t.active.len(), 1);
        // The window passes without errors: resolved and notified.
        let mut fx = Effects::default();
        t.advance(T0 + 70 * S);
        t.evaluate(T0 + 70 * S, false, "http://x", &mut fx);
        assert_eq!(fx.deliveries.len(), 1);
        assert_eq!(fx.deliveries[0].kind, NoticeKind::Resolved);
        assert!(t.active.is_empty());
    }

    #[test]
    fn min_events_keeps_a_single_error_quiet() {
        let mut t = tenant_with(error_rule());
        t.ingest(&[ev(T0, "/pay", 500)], T0 + S, 1000);
        let mut fx = Effects::default();
        t.evaluate(T0 + S, false, "http://x", &mut fx);
        assert!(t.alerts.is_empty());
    }

    #[test]
    fn no_data_fires_for_a_silent_group_and_resolves_when_it_speaks() {
        let mut t = tenant_with(json!({"name": "silent", "channels": ["ch_a"],
            "group_by": ["service"], "condition": {"metric": "no_data", "window": "1m"}}));
        t.ingest(&[ev(T0, "/pay", 200)], T0, 1000);
        let mut fx = Effects::default();
        t.evaluate(T0 + 30 * S, false, "http://x", &mut fx);
        assert!(t.active.is_empty());
        t.evaluate(T0 + 61 * S, false, "http://x", &mut fx);
        assert_eq!(t.active.len(), 1);
        assert_eq!(fx.deliveries.len(), 1);
        t.ingest(&[ev(T0 + 62 * S, "/pay", 200)], T0 + 62 * S, 1000);
        let mut fx = Effects::default();
        t.evaluate(T0 + 62 * S, false, "http://x", &mut fx);
        assert!(t.active.is_empty());
        assert_eq!(fx.deliveries[0].kind, NoticeKind::Resolved);
    }

    #[test]
    fn a_silence_marks_the_alert_and_holds_back_its_notice() {
        let mut t = tenant_with(error_rule());
        t.silences.insert(
            "s1".into(),
            Silence {
                id: "s1".into(),
                tenant: "t1".into(),
                matchers: vec![Matcher {
                    name: "endpoint".into(),
                    value: "/pay".into(),
                }],
                starts_at: T0 - S,
                ends_at: T0 + 10 * S,
                comment: String::new(),
                created_by: "x".into(),
                created_at: T0,
            },
        );
        let batch: Vec<Event> = (0..6).map(|i| ev(T0 + i, "/pay", 500)).collect();
        t.ingest(&batch, T0 + S, 1000);
        let mut fx = Effects::default();
        t.evaluate(T0 + S, false, "http://x", &mut fx);
        assert!(fx.deliveries.is_empty());
        let a = t.alerts.values().next().expect("alert");
        assert!(a.silenced);
        assert_eq!(a.state, AlertState::Firing);
        // Silence over while still firing: told now.
        let mut fx = Effects::default();
        t.evaluate(T0 + 11 * S, false, "http://x", &mut fx);
        assert_eq!(fx.deliveries.len(), 1);
    }

    #[test]
    fn baselines_compare_against_the_offset_or_hold_false_without_data() {
        let mut t = tenant_with(json!({"name": "spike", "channels": ["ch_a"],
            "condition": {"metric": "count", "window": "1m", "op": ">", "threshold": 5,
                          "baseline": {"offset": "1d", "factor": 3.0}}}));
        let batch: Vec<Event> = (0..40).map(|i| ev(T0 + i * S / 40, "/pay", 200)).collect();
        t.ingest(&batch, T0 + S, 1000);
        // No baseline data: false, and nothing fires.
        let mut fx = Effects::default();
        t.evaluate(T0 + S, false, "http://x", &mut fx);
        assert!(t.active.is_empty());
        // Yesterday 20 in the same window: 40 is not above 3 × 20.
        t.baselines
            .insert("r_1".into(), (T0, HashMap::from([(String::new(), 20.0)])));
        t.evaluate(T0 + S, false, "http://x", &mut fx);
        assert!(t.active.is_empty());
        // Yesterday 10: 40 > 30, fires, and carries the baseline value.
        t.baselines
            .insert("r_1".into(), (T0, HashMap::from([(String::new(), 10.0)])));
        t.evaluate(T0 + S, false, "http://x", &mut fx);
        let a = t.alerts.values().next().expect("alert");
        assert_eq!(a.baseline_value, Some(10.0));
        assert_eq!(a.to_json()["baseline_value"], 10.0);
    }

    #[test]
    fn the_series_cap_sends_new_groups_to_other_and_counts_them() {
        let mut t = tenant_with(error_rule());
        let batch: Vec<Event> = (0..50).map(|i| ev(T0, &format!("/e{i}"), 200)).collect();
        t.ingest(&batch, T0, 20);
        assert!(t.overflow_events > 0);
        let spec = t.spec(&t.rules["r_1"].spec_key).expect("spec");
        let other = vec![Some(OTHER.to_owned())];
        let in_other = spec
            .series
            .get(&other)
            .map(|r| r.summary(sec_of(Micros(T0)), 60, Needs::default()).count);
        let total: u64 = spec
            .series
            .values()
            .map(|r| r.summary(sec_of(Micros(T0)), 60, Needs::default()).count)
            .sum();
        assert_eq!(total, 50, "nothing lost");
        assert!(in_other.unwrap_or(0) > 0);
    }
    fn count_rule(id: &str, filter: Value) -> Arc<Rule> {
        let r = compile(
            &json!({"name": id, "group_by": ["endpoint"],
                    "condition": {"metric": "count", "window": "1m", "op": ">", "threshold": 2,
                                  "filter": filter}}),
            id,
            0,
        )
        .expect("rule");
        Arc::new(r)
    }

    fn spec_count(t: &TenantState, rule: &str) -> u64 {
        let spec = t.spec(&t.rules[rule].spec_key).expect("spec");
        spec.series
            .values()
            .map(|r| r.summary(sec_of(Micros(T0)), 60, Needs::default()).count)
            .sum()
    }

    #[test]
    fn indexed_specs_see_exactly_the_events_their_filter_matches() {
        let mut t = TenantState::new("t1", T0 - 3600 * S);
        t.put_rule(count_rule("r_svc", json!({"service": "checkout"})), T0);
        t.put_rule(
            count_rule(
                "r_in",
                json!({"endpoint": ["/pay", "/list"], "status_code": "5xx"}),
            ),
            T0,
        );
        t.put_rule(
            count_rule("r_prefix", json!({"endpoint": {"prefix": "/p"}})),
            T0,
        );
        t.put_rule(count_rule("r_type", json!({"event_type": "api_call"})), T0);
        let mut other = ev(T0, "/pay", 500);
        other.service = Some("search".into());
        let batch = vec![
            ev(T0, "/pay", 500),
            ev(T0, "/list", 503),
            ev(T0, "/list", 200),
            ev(T0, "/other", 500),
            other,
        ];
        t.ingest(&batch, T0, 1000);
        assert_eq!(spec_count(&t, "r_svc"), 4);
        assert_eq!(spec_count(&t, "r_in"), 3);
        assert_eq!(spec_count(&t, "r_prefix"), 2);
        assert_eq!(spec_count(&t, "r_type"), 5);
        // Removing a rule re-indexes: the others still see their events.
        let mut fx = Effects::default();
        assert!(t.remove_rule("r_in", T0, "http://x", &mut fx));
        t.ingest(&[ev(T0, "/pay", 500)], T0, 1000);
        assert_eq!(spec_count(&t, "r_svc"), 5);
        assert_eq!(spec_count(&t, "r_prefix"), 3);
        assert_eq!(spec_count(&t, "r_type"), 6);
    }

    #[test]
    fn an_evaluation_after_ingest_leaves_untouched_groups_alone() {
        let mut t = tenant_with(error_rule());
        let batch: Vec<Event> = (0..6).map(|i| ev(T0 + i, "/pay", 500)).collect();
        t.ingest(&batch, T0 + S, 1000);
        let mut fx = Effects::default();
        t.evaluate(T0 + S, true, "http://x", &mut fx);
        assert_eq!(t.active.len(), 1);
        // A batch touching only another endpoint: the firing alert for
        // /pay is not taken for an orphan, nor resolved.
        t.ingest(&[ev(T0 + S, "/list", 200)], T0 + 2 * S, 1000);
        t.advance_touched(T0 + 2 * S);
        let mut fx = Effects::default();
        t.evaluate(T0 + 2 * S, true, "http://x", &mut fx);
        assert_eq!(t.active.len(), 1);
        assert!(fx.deliveries.is_empty());
        // The full pass sees every group.
        t.advance(T0 + 2 * S);
        let mut fx = Effects::default();
        t.evaluate(T0 + 2 * S, false, "http://x", &mut fx);
        assert_eq!(t.active.len(), 1);
    }
    #[test]
    fn a_rebuild_beside_live_batches_counts_every_event_once() {
        let mut t = tenant_with(error_rule());
        t.set_cutoff(T0);
        let mut before = ev(T0 - S, "/pay", 500);
        before.received_at = Micros(T0 - S);
        let mut after = ev(T0, "/pay", 500);
        after.received_at = Micros(T0);
        // The queue's batch and the store's read both hold both events.
        let both = [before, after];
        t.ingest(&both, T0, 1000);
        t.ingest_into(&both, T0, 1000, Feed::Rebuild);
        assert_eq!(spec_count(&t, "r_1"), 2);
    }

    #[test]
    fn a_rule_created_during_the_rebuild_is_filled_by_its_backfill_alone() {
        let mut t = tenant_with(error_rule());
        t.set_cutoff(T0);
        // Created over HTTP while the rebuild reads: its backfill is queued.
        let key = t.rules["r_1"].spec_key.clone();
        if let Some(s) = t.spec_mut(&key) {
            s.backfill_pending = true;
        }
        let mut stored = ev(T0 - S, "/pay", 500);
        stored.received_at = Micros(T0 - S);
        t.ingest_into(&[stored.clone()], T0, 1000, Feed::Rebuild);
        assert_eq!(spec_count(&t, "r_1"), 0);
        t.ingest_into(&[stored], T0, 1000, Feed::Backfill(&key));
        assert_eq!(spec_count(&t, "r_1"), 1);
    }
}
