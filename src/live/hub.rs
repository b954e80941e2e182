//! The hub: who is connected, what each subscribed to, and the fan-out of
//! acknowledged events, per-second metrics and alert changes to them.
//!
//! The ingest side (`on_ack`) takes one lock per acknowledged batch and
//! does O(batch) work at most, only for tenants someone watches: it adds
//! the batch to the tenant's per-second figures (when a `metrics`
//! subscriber exists) and keeps the batches that hold the first
//! `MAX_PENDING_EVENTS` events of the flush window for the `events`
//! subscribers (shared, never copied there), counting the rest.
//! Everything else happens on the hub's own task (`run`): every
//! `FLUSH_EVERY` each distinct filter of a tenant picks its newest
//! `MAX_EVENTS_PER_FLUSH` matching events, they are rendered to JSON once
//! (shared by every filter that picked them), and the one resulting
//! message is handed to every subscriber with that filter by a
//! non-blocking `try_send` into its bounded queue (the bytes are shared,
//! not copied). What a subscriber does not get (over the per-flush cap,
//! or a message that found its queue full) is counted; the connection's
//! writer reports the count as `lagged` before its next message. Nothing
//! here ever waits for a client, and the cost of a flush does not grow
//! with the ingest rate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use pulsestream_storage::sketch::LatencySketch;
use pulsestream_storage::{Ack, Event, Micros, TenantId};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::filter::EventFilter;
use crate::alerting::model::Alert;
use crate::app::IngestObserver;
use crate::read::render::write_event_json;
use crate::read::timeparse::format_rfc3339_millis;

/// Events are pushed at most this often per client (contract: batches at
/// most every 250 ms), which also bounds the push delay after an ack.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Messages waiting for one client at most: about two seconds of a flood
/// (two `events` messages per flush, metrics every second). A client
/// further behind is slow; it gets `lagged` instead of ever older events,
/// and the server does not buffer for it. The messages are shared with the
/// other subscribers, so a full queue costs pointers, not copies.
pub const CLIENT_QUEUE: usize = 16;

/// Events pushed to one subscriber per flush at most (the newest of those
/// its filter matches; fewer when many subscribe, see
/// `FLUSH_BYTES_PER_TENANT`): 400 events per second, more than a live tail can
/// show. This is what keeps a flood cheap: each flush renders and writes
/// at most this many events per distinct filter, whatever the ingest
/// rate. Raising it raises the bytes written per subscriber in a flood
/// (about 25 KiB per flush at this value).
pub const MAX_EVENTS_PER_FLUSH: usize = 100;

/// Bytes of `events` messages one flush hands out for one tenant at most,
/// counted once per subscriber (each connection writes its copy): 16 MiB/s
/// per tenant. With few subscribers each gets `MAX_EVENTS_PER_FLUSH`; with
/// many, each gets fewer (1,000 dashboards: 13 events per flush each), so
/// the server's write volume, and the time a flush keeps every writer busy,
/// stays bounded however many dashboards watch a flood.
pub const FLUSH_BYTES_PER_TENANT: usize = 4 * 1024 * 1024;

/// Events per flush a subscriber gets at least, however many watch: a tail
/// still moves (20 events per second). 10,000 subscribers of one tenant
/// then cost about 15 MiB per flush.
pub const MIN_EVENTS_PER_FLUSH: usize = 5;

/// Rendered size assumed per event for `FLUSH_BYTES_PER_TENANT` (the JSON of
/// a typical API call event).
const EVENT_BYTES_ESTIMATE: usize = 300;

/// Events in one `events` message at most (about 12 KiB of JSON): a
/// connection's write buffer keeps the capacity of the largest frame it
/// wrote, so this bounds what each of 10,000 dashboards holds; a flush of
/// `MAX_EVENTS_PER_FLUSH` is two messages, each droppable alone.
pub const EVENTS_PER_MESSAGE: usize = 50;

/// Events kept per tenant between two flushes at most (the first ones of
/// the window; later ones are only counted): enough for a filter that
/// matches one event in twenty to still find its `MAX_EVENTS_PER_FLUSH`.
/// The ingest side clones each kept event, so this bounds that cost per
/// flush whatever the ingest rate.
pub const MAX_PENDING_EVENTS: usize = 2_000;

/// The channels a client can subscribe to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    pub events: bool,
    pub metrics: bool,
    pub alerts: bool,
}

impl Channels {
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.events {
            v.push("events");
        }
        if self.metrics {
            v.push("metrics");
        }
        if self.alerts {
            v.push("alerts");
        }
        v
    }
}

/// A client's subscription.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub channels: Channels,
    pub filter: EventFilter,
    /// The filter as sent (canonical JSON): subscribers with the same text
    /// share one rendered message.
    pub filter_key: String,
}

/// One connected client, as the hub sees it.
pub struct Client {
    pub id: u64,
    pub tenant: String,
    /// Shared so that a flush reads every subscription without copying
    /// filters.
    sub: RwLock<Arc<Subscription>>,
    tx: mpsc::Sender<Utf8Bytes>,
    /// Events (and other messages) dropped since the last `lagged`.
    dropped: AtomicU64,
}

impl Client {
    pub fn subscription(&self) -> Arc<Subscription> {
        self.sub.read().clone()
    }

    fn channels(&self) -> Channels {
        self.sub.read().channels
    }

    /// Takes the count to report in `lagged` (zero: nothing was dropped).
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Counts events this client will not get.
    fn add_dropped(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Queues a message; when the queue is full the message is dropped and
    /// `weight` is added to the lag count: the events it carried, 1 for an
    /// alert change, 0 for a second's metrics (the next second's follow).
    pub fn offer(&self, msg: Utf8Bytes, weight: u64) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                self.add_dropped(weight);
                false
            }
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Global,
    Tenant,
}

/// Per-second figures of one tenant, accumulated by the ingest side.
#[derive(Default, Clone)]
struct Second {
    count: u64,
    errors: u64,
    latency_sum: f64,
    latency_n: u64,
    latency_max: f64,
    /// The same sketch the rolling windows keep, so the percentiles agree
    /// with the real-time endpoint's.
    latency: LatencySketch,
}

impl Second {
    fn add(&mut self, e: &Event) {
        self.count += 1;
        self.errors += u64::from(e.is_error());
        if let Some(l) = e.latency_ms
            && l.is_finite()
            && l >= 0.0
        {
            self.latency_sum += l;
            self.latency_n += 1;
            self.latency_max = self.latency_max.max(l);
            self.latency.add(l);
        }
    }

    /// The `metrics` message of this second.
    fn message(&self, at: &str) -> Utf8Bytes {
        let rate = if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        };
        let avg = (self.latency_n > 0).then(|| self.latency_sum / self.latency_n as f64);
        let max = (self.latency_n > 0).then_some(self.latency_max);
        let q = |p: f64| self.latency.quantile(p);
        Utf8Bytes::from(
            json!({
                "type": "metrics",
                "at": at,
                "interval": "1s",
                "count": self.count,
                "errors": self.errors,
                "error_rate": rate,
                "latency_ms": {
                    "avg": avg, "max": max,
                    "p50": q(0.5), "p95": q(0.95), "p99": q(0.99),
                },
            })
            .to_string(),
        )
    }
}

/// An acknowledged batch the ingest side keeps for the next flush: the
/// pipeline's shared events, their ack (for their ids), and how many of
/// them (from the first) are kept.
struct Kept {
    events: Arc<[Event]>,
    ack: Ack,
    keep: usize,
}

/// Rendered `events` messages with the events each carries.
type Messages = Vec<(Utf8Bytes, u64)>;

/// What the ingest side keeps for one watched tenant between flushes.
#[derive(Default)]
struct Watched {
    /// Subscribers of `events` / `metrics`: the ingest side skips the work
    /// nobody reads.
    events_subscribers: usize,
    metrics_subscribers: usize,
    second: Second,
    /// The first `MAX_PENDING_EVENTS` acknowledged events since the last
    /// flush: each batch shared as the pipeline handed it, with its ack
    /// (for the events' ids) and how many of its events are kept.
    pending: Vec<Kept>,
    /// Events in `pending`.
    pending_events: usize,
    /// Acknowledged events since the last flush beyond `pending`.
    overflow: u64,
}

/// The live connections and their fan-out.
pub struct Hub {
    max_total: usize,
    max_per_tenant: usize,
    /// Connections by tenant, then id: a flush looks at one tenant's only.
    clients: RwLock<HashMap<String, HashMap<u64, Arc<Client>>>>,
    total: AtomicUsize,
    next_id: AtomicU64,
    /// Tenants with at least one `events` or `metrics` subscriber: the
    /// one lock the ingest side takes.
    watched: Mutex<HashMap<String, Watched>>,
    gauge: Arc<crate::metrics::Metrics>,
}

/// Keeps a connection counted; unregisters it when dropped.
pub struct Registration {
    hub: Arc<Hub>,
    pub client: Arc<Client>,
    pub rx: Option<mpsc::Receiver<Utf8Bytes>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(&self.client);
    }
}

impl Hub {
    pub fn new(
        max_total: usize,
        max_per_tenant: usize,
        gauge: Arc<crate::metrics::Metrics>,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            max_total,
            max_per_tenant,
            clients: RwLock::new(HashMap::new()),
            total: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            watched: Mutex::new(HashMap::new()),
            gauge,
        })
    }

    /// Counts a new connection of `tenant`, within the caps.
    pub fn register(self: &Arc<Self>, tenant: &str) -> Result<Registration, Refusal> {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            tenant: tenant.to_owned(),
            sub: RwLock::new(Arc::new(Subscription::default())),
            tx,
            dropped: AtomicU64::new(0),
        });
        {
            let mut clients = self.clients.write();
            if self.total.load(Ordering::Relaxed) >= self.max_total {
                return Err(Refusal::Global);
            }
            let own = clients.entry(tenant.to_owned()).or_default();
            if own.len() >= self.max_per_tenant {
                if own.is_empty() {
                    clients.remove(tenant);
                }
                return Err(Refusal::Tenant);
            }
            own.insert(client.id, client.clone());
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        self.gauge
            .websocket_connections
            .fetch_add(1, Ordering::Relaxed);
        Ok(Registration {
            hub: self.clone(),
            client,
            rx: Some(rx),
        })
    }

    fn unregister(&self, c: &Client) {
        self.count_interest(&c.tenant, c.channels(), Channels::default());
        {
            let mut clients = self.clients.write();
            if let Some(own) = clients.get_mut(&c.tenant) {
                own.remove(&c.id);
                if own.is_empty() {
                    clients.remove(&c.tenant);
                }
            }
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        self.gauge
            .websocket_connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Replaces a client's subscription, keeping the interest counts of
    /// its tenant true.
    pub fn subscribe(&self, c: &Client, s: Subscription) {
        let after = s.channels;
        let before = std::mem::replace(&mut *c.sub.write(), Arc::new(s)).channels;
        self.count_interest(&c.tenant, before, after);
    }

    fn count_interest(&self, tenant: &str, before: Channels, after: Channels) {
        if before.events == after.events && before.metrics == after.metrics {
            return;
        }
        let mut w = self.watched.lock();
        let entry = w.entry(tenant.to_owned()).or_default();
        let step = |n: &mut usize, was: bool, is: bool| match (was, is) {
            (false, true) => *n += 1,
            (true, false) => *n = n.saturating_sub(1),
            _ => {}
        };
        step(&mut entry.events_subscribers, before.events, after.events);
        step(
            &mut entry.metrics_subscribers,
            before.metrics,
            after.metrics,
        );
        if entry.events_subscribers == 0 {
            entry.pending = Vec::new();
            entry.pending_events = 0;
            entry.overflow = 0;
        }
        if entry.metrics_subscribers == 0 {
            entry.second = Second::default();
        }
        if entry.events_subscribers == 0 && entry.metrics_subscribers == 0 {
            w.remove(tenant);
        }
    }

    /// Open connections in total and per tenant.
    pub fn connection_counts(&self) -> (usize, BTreeMap<String, usize>) {
        let clients = self.clients.read();
        (
            self.total.load(Ordering::Relaxed),
            clients.iter().map(|(k, v)| (k.clone(), v.len())).collect(),
        )
    }

    /// Subscriptions per channel, per tenant.
    pub fn channel_counts(&self) -> BTreeMap<String, [usize; 3]> {
        let mut out: BTreeMap<String, [usize; 3]> = BTreeMap::new();
        for (tenant, own) in self.clients.read().iter() {
            let e = out.entry(tenant.clone()).or_default();
            for c in own.values() {
                let ch = c.channels();
                e[0] += usize::from(ch.events);
                e[1] += usize::from(ch.metrics);
                e[2] += usize::from(ch.alerts);
            }
        }
        out
    }

    fn tenant_clients(&self, tenant: &str) -> Vec<Arc<Client>> {
        self.clients
            .read()
            .get(tenant)
            .map(|own| own.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Sends an alert state change to the tenant's `alerts` subscribers.
    pub fn on_alert(&self, a: &Alert) {
        let msg = json!({"type": "alert", "alert": a.to_json()}).to_string();
        let msg = Utf8Bytes::from(msg);
        for c in self.tenant_clients(&a.tenant) {
            if c.channels().alerts {
                c.offer(msg.clone(), 1);
            }
        }
    }

    /// Whether any acknowledged events wait for the next flush.
    pub fn has_pending(&self) -> bool {
        self.watched
            .lock()
            .values()
            .any(|w| !w.pending.is_empty() || w.overflow > 0)
    }

    /// Pushes the pending events of every tenant to their subscribers.
    pub fn flush_events(&self) {
        let work: Vec<(String, Vec<Kept>, u64)> = self
            .watched
            .lock()
            .iter_mut()
            .filter(|(_, w)| !w.pending.is_empty() || w.overflow > 0)
            .map(|(t, w)| {
                w.pending_events = 0;
                let pending = std::mem::take(&mut w.pending);
                (t.clone(), pending, std::mem::take(&mut w.overflow))
            })
            .collect();
        for (tenant, batches, overflow) in work {
            // The kept events with the ids the store gave them, copied here
            // on the hub's task rather than under the ack-side lock.
            let mut events = Vec::with_capacity(batches.iter().map(|b| b.keep).sum());
            for b in &batches {
                let kept = &b.events[..b.keep];
                let ids = crate::pipeline::ids(kept, &b.ack);
                events.extend(kept.iter().zip(ids).map(|(e, id)| Event {
                    id: Some(id),
                    ..e.clone()
                }));
            }
            self.fan_out(&tenant, &events, overflow);
        }
    }

    /// One tenant's flush: per distinct filter, its newest matching events
    /// (at most `MAX_EVENTS_PER_FLUSH`) as shared messages; what is left
    /// out is counted for each subscriber. `overflow` events were never
    /// kept, so they are counted for every subscriber (for a filtered one
    /// an upper bound: they were not tested against its filter).
    fn fan_out(&self, tenant: &str, events: &[Event], overflow: u64) {
        let subscribers: Vec<(Arc<Client>, Arc<Subscription>)> = self
            .tenant_clients(tenant)
            .into_iter()
            .map(|c| {
                let sub = c.subscription();
                (c, sub)
            })
            .filter(|(_, sub)| sub.channels.events)
            .collect();
        let cap = events_per_flush(subscribers.len());
        let mut rendered: Vec<Option<String>> = vec![None; events.len()];
        let mut by_filter: HashMap<&str, (Messages, u64)> = HashMap::new();
        for (c, sub) in &subscribers {
            let (msgs, left_out) = by_filter.entry(sub.filter_key.as_str()).or_insert_with(|| {
                let picked = pick(events, &sub.filter, cap);
                let left_out = picked.matched - picked.rows.len() as u64 + overflow;
                (
                    render_messages(events, &picked.rows, &mut rendered),
                    left_out,
                )
            });
            // Counted first, so `lagged` precedes the message it explains.
            c.add_dropped(*left_out);
            for (m, n) in msgs.iter() {
                c.offer(m.clone(), *n);
            }
        }
    }

    /// Sends the last second's figures to every `metrics` subscriber.
    pub fn flush_metrics(&self, now: Micros) {
        let seconds: HashMap<String, Second> = self
            .watched
            .lock()
            .iter_mut()
            .filter(|(_, w)| w.metrics_subscribers > 0)
            .map(|(t, w)| (t.clone(), std::mem::take(&mut w.second)))
            .collect();
        let at = format_rfc3339_millis(now);
        for (tenant, second) in &seconds {
            let msg = second.message(&at);
            for c in self.tenant_clients(tenant) {
                if c.channels().metrics {
                    c.offer(msg.clone(), 0);
                }
            }
        }
    }
}

/// Events per flush for each of `subscribers` events subscribers of a
/// tenant: `MAX_EVENTS_PER_FLUSH`, less when many share
/// `FLUSH_BYTES_PER_TENANT`, never under `MIN_EVENTS_PER_FLUSH`.
fn events_per_flush(subscribers: usize) -> usize {
    (FLUSH_BYTES_PER_TENANT / (subscribers.max(1) * EVENT_BYTES_ESTIMATE))
        .clamp(MIN_EVENTS_PER_FLUSH, MAX_EVENTS_PER_FLUSH)
}

/// The events a filter picks for one flush.
struct Picked {
    /// Indices into the flush's events, oldest first.
    rows: Vec<usize>,
    /// Events the filter matched, picked or not.
    matched: u64,
}

/// The newest `cap` of `events` that `filter` lets through.
fn pick(events: &[Event], filter: &EventFilter, cap: usize) -> Picked {
    let mut rows: Vec<usize> = Vec::with_capacity(cap.min(events.len()));
    let mut matched = 0u64;
    for (i, e) in events.iter().enumerate().rev() {
        if filter.matches(e) {
            matched += 1;
            if rows.len() < cap {
                rows.push(i);
            }
        }
    }
    rows.reverse();
    Picked { rows, matched }
}

/// The `events` messages for `rows` of `events`, with their event counts
/// (for the lag count when one is dropped). Each event is rendered at most
/// once per flush, whichever filters pick it (`rendered` is the cache).
fn render_messages(events: &[Event], rows: &[usize], rendered: &mut [Option<String>]) -> Messages {
    rows.chunks(EVENTS_PER_MESSAGE)
        .map(|chunk| {
            let mut s = String::with_capacity(32 + chunk.len() * 400);
            s.push_str("{\"type\":\"events\",\"events\":[");
            for (i, &r) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let json = rendered[r].get_or_insert_with(|| {
                    let mut j = String::with_capacity(400);
                    write_event_json(&mut j, &events[r]);
                    j
                });
                s.push_str(json);
            }
            s.push_str("]}");
            (Utf8Bytes::from(s), chunk.len() as u64)
        })
        .collect()
}

impl IngestObserver for Hub {
    fn on_ack(&self, tenant: &TenantId, events: &Arc<[Event]>, ack: &Ack) {
        let mut watched = self.watched.lock();
        let Some(w) = watched.get_mut(tenant.as_str()) else {
            return;
        };
        if w.metrics_subscribers > 0 {
            for e in events.iter() {
                w.second.add(e);
            }
        }
        if w.events_subscribers > 0 {
            let keep = MAX_PENDING_EVENTS
                .saturating_sub(w.pending_events)
                .min(events.len());
            if keep > 0 {
                w.pending.push(Kept {
                    events: Arc::clone(events),
                    ack: *ack,
                    keep,
                });
                w.pending_events += keep;
            }
            w.overflow += (events.len() - keep) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::{EventId, Lsn};

    /// A batch as the pipeline hands it to observers.
    fn shared(events: &[Event]) -> Arc<[Event]> {
        events.into()
    }

    fn ev(service: &str) -> Event {
        Event {
            id: None,
            timestamp: Micros(0),
            received_at: Micros(0),
            event_type: "api_call".into(),
            service: Some(service.into()),
            endpoint: None,
            method: None,
            status_code: Some(200),
            latency_ms: Some(3.0),
            severity: None,
            request_bytes: None,
            response_bytes: None,
            user_id: None,
            region: None,
            trace_id: None,
            message: None,
            attributes: Vec::new(),
        }
    }

    fn hub(total: usize, per: usize) -> Arc<Hub> {
        Hub::new(total, per, Arc::new(crate::metrics::Metrics::new()))
    }

    fn sub(events: bool, metrics: bool, filter: Option<serde_json::Value>) -> Subscription {
        Subscription {
            channels: Channels {
                events,
                metrics,
                alerts: false,
            },
            filter: EventFilter::parse(filter.as_ref()).expect("filter"),
            filter_key: filter.map(|f| f.to_string()).unwrap_or_default(),
        }
    }

    fn ack(n: usize) -> Ack {
        Ack {
            lsn: Lsn(1),
            first_seq: 0,
            count: n as u32,
        }
    }

    fn recv_json(reg: &mut Registration) -> serde_json::Value {
        let m = reg.rx.as_mut().expect("rx").try_recv().expect("a message");
        serde_json::from_str(m.as_str()).expect("json")
    }

    /// The events of every queued `events` message, in order.
    fn recv_events(reg: &mut Registration) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(m) = reg.rx.as_mut().expect("rx").try_recv() {
            let v: serde_json::Value = serde_json::from_str(m.as_str()).expect("json");
            assert_eq!(v["type"], "events", "{v}");
            let events = v["events"].as_array().expect("events");
            assert!(events.len() <= EVENTS_PER_MESSAGE);
            out.extend(events.iter().cloned());
        }
        out
    }

    #[test]
    fn caps_and_the_gauge_follow_registrations() {
        let h = hub(3, 2);
        let a1 = h.register("a").expect("first");
        let _a2 = h.register("a").expect("second");
        assert_eq!(h.register("a").err(), Some(Refusal::Tenant));
        let _b = h.register("b").expect("other tenant");
        assert_eq!(h.register("c").err(), Some(Refusal::Global));
        assert_eq!(h.gauge.websocket_connections.load(Ordering::Relaxed), 3);
        drop(a1);
        assert_eq!(h.gauge.websocket_connections.load(Ordering::Relaxed), 2);
        assert!(h.register("a").is_ok());
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let h = hub(10, 10);
        let mut reg = h.register("t").expect("reg");
        let c = reg.client.clone();
        h.subscribe(
            &c,
            Subscription {
                channels: Channels {
                    events: true,
                    ..Channels::default()
                },
                ..Subscription::default()
            },
        );
        let tenant = TenantId::new("t").expect("tenant");
        let ack = Ack {
            lsn: Lsn(1),
            first_seq: 0,
            count: 2,
        };
        for _ in 0..CLIENT_QUEUE + 5 {
            h.on_ack(&tenant, &shared(&[ev("api"), ev("web")]), &ack);
            h.flush_events();
        }
        // Five messages of two events each found the queue full.
        assert_eq!(c.take_dropped(), 10);
        assert_eq!(c.take_dropped(), 0);
        let rx = reg.rx.as_mut().expect("rx");
        let first = rx.try_recv().expect("queued");
        assert!(first.as_str().starts_with("{\"type\":\"events\""));
    }

    #[test]
    fn events_reach_only_matching_subscribers_of_their_tenant() {
        let h = hub(10, 10);
        let mut api = h.register("t").expect("reg");
        let mut other = h.register("u").expect("reg");
        let filter = serde_json::json!({"service": "api"});
        for r in [&api, &other] {
            h.subscribe(
                &r.client,
                Subscription {
                    channels: Channels {
                        events: true,
                        ..Channels::default()
                    },
                    filter: EventFilter::parse(Some(&filter)).expect("filter"),
                    filter_key: filter.to_string(),
                },
            );
        }
        let tenant = TenantId::new("t").expect("tenant");
        let ack = Ack {
            lsn: Lsn(1),
            first_seq: 0,
            count: 2,
        };
        h.on_ack(&tenant, &shared(&[ev("api"), ev("web"), ev("api")]), &ack);
        h.flush_events();
        let m = api.rx.as_mut().expect("rx").try_recv().expect("message");
        let v: serde_json::Value = serde_json::from_str(m.as_str()).expect("json");
        assert_eq!(v["events"].as_array().map(Vec::len), Some(2));
        assert!(other.rx.as_mut().expect("rx").try_recv().is_err());
    }

    #[test]
    fn pushed_events_carry_the_ids_the_store_gave_them() {
        let h = hub(10, 10);
        let mut reg = h.register("t").expect("reg");
        h.subscribe(&reg.client, sub(true, false, None));
        let tenant = TenantId::new("t").expect("tenant");
        // Same timestamps (events sent without one get the receive time):
        // only the sequence numbers tell them apart.
        let at = |first_seq, count| Ack {
            lsn: Lsn(1),
            first_seq,
            count,
        };
        h.on_ack(&tenant, &shared(&[ev("api"), ev("api")]), &at(40, 2));
        h.on_ack(&tenant, &shared(&[ev("web")]), &at(97, 1));
        h.flush_events();
        let v = recv_json(&mut reg);
        let ids: Vec<String> = v["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        let want: Vec<String> = [40, 41, 97]
            .iter()
            .map(|&seq| {
                EventId {
                    timestamp: ev("api").timestamp,
                    seq,
                }
                .to_string()
            })
            .collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn a_flood_pushes_the_newest_few_and_counts_the_rest() {
        let h = hub(10, 10);
        let mut reg = h.register("t").expect("reg");
        h.subscribe(&reg.client, sub(true, false, None));
        let tenant = TenantId::new("t").expect("tenant");
        let flood: Vec<Event> = (0..MAX_PENDING_EVENTS + 500)
            .map(|i| {
                let mut e = ev("api");
                e.message = Some(format!("m{i}"));
                e
            })
            .collect();
        let (first, rest) = flood.split_at(1000);
        h.on_ack(&tenant, &shared(first), &ack(first.len()));
        h.on_ack(&tenant, &shared(rest), &ack(rest.len()));
        h.flush_events();
        // Everything not pushed is counted, before the message.
        assert_eq!(
            reg.client.take_dropped(),
            (flood.len() - MAX_EVENTS_PER_FLUSH) as u64
        );
        let got = recv_events(&mut reg);
        assert_eq!(got.len(), MAX_EVENTS_PER_FLUSH);
        // The newest kept ones, oldest first.
        let last_kept = MAX_PENDING_EVENTS - 1;
        assert_eq!(got[got.len() - 1]["message"], format!("m{last_kept}"));
        assert_eq!(
            got[0]["message"],
            format!("m{}", last_kept + 1 - MAX_EVENTS_PER_FLUSH)
        );
        assert!(!h.has_pending());
    }

    #[test]
    fn many_subscribers_share_a_bounded_flush() {
        assert_eq!(events_per_flush(0), MAX_EVENTS_PER_FLUSH);
        assert_eq!(events_per_flush(1), MAX_EVENTS_PER_FLUSH);
        assert_eq!(events_per_flush(1_000), 13);
        assert_eq!(events_per_flush(10_000), MIN_EVENTS_PER_FLUSH);
        let mut last = MAX_EVENTS_PER_FLUSH;
        for n in 1..20_000 {
            let cap = events_per_flush(n);
            assert!(cap <= last, "{n} subscribers: {cap} > {last}");
            let over_budget = n * cap * EVENT_BYTES_ESTIMATE > FLUSH_BYTES_PER_TENANT;
            assert!(!over_budget || cap == MIN_EVENTS_PER_FLUSH, "{n}: {cap}");
            last = cap;
        }
        // A flood with 200 subscribers: each gets its share, the rest counted.
        let h = hub(1_000, 1_000);
        let mut regs: Vec<Registration> = (0..200).map(|_| h.register("t").expect("reg")).collect();
        for r in &regs {
            h.subscribe(&r.client, sub(true, false, None));
        }
        let tenant = TenantId::new("t").expect("tenant");
        let flood: Vec<Event> = (0..1_000).map(|_| ev("api")).collect();
        h.on_ack(&tenant, &shared(&flood), &ack(flood.len()));
        h.flush_events();
        let share = events_per_flush(200);
        assert!(share < MAX_EVENTS_PER_FLUSH);
        for r in &mut regs {
            assert_eq!(r.client.take_dropped(), (1_000 - share) as u64);
            assert_eq!(recv_events(r).len(), share);
        }
    }

    #[test]
    fn one_filter_one_message_shared_by_its_subscribers() {
        let h = hub(10, 10);
        let filter = serde_json::json!({"service": "web"});
        let mut a = h.register("t").expect("reg");
        let mut b = h.register("t").expect("reg");
        let mut all = h.register("t").expect("reg");
        h.subscribe(&a.client, sub(true, false, Some(filter.clone())));
        h.subscribe(&b.client, sub(true, false, Some(filter)));
        h.subscribe(&all.client, sub(true, false, None));
        let tenant = TenantId::new("t").expect("tenant");
        let batch: Vec<Event> = (0..300)
            .map(|i| ev(if i % 3 == 0 { "web" } else { "api" }))
            .collect();
        h.on_ack(&tenant, &shared(&batch), &ack(batch.len()));
        h.flush_events();
        let ma = a.rx.as_mut().expect("rx").try_recv().expect("message");
        let mb = b.rx.as_mut().expect("rx").try_recv().expect("message");
        assert_eq!(ma.as_str().as_ptr(), mb.as_str().as_ptr(), "not shared");
        let mut web: Vec<serde_json::Value> =
            serde_json::from_str::<serde_json::Value>(ma.as_str()).expect("json")["events"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        web.extend(recv_events(&mut a));
        assert_eq!(web.len(), 100);
        assert!(web.iter().all(|e| e["service"] == "web"));
        // 100 web events matched, all pushed; the unfiltered one saw 300.
        assert_eq!(a.client.take_dropped(), 0);
        assert_eq!(all.client.take_dropped(), 300 - MAX_EVENTS_PER_FLUSH as u64);
        assert_eq!(recv_events(&mut all).len(), MAX_EVENTS_PER_FLUSH);
    }

    #[test]
    fn unwatched_tenants_cost_nothing_on_ack() {
        let h = hub(10, 10);
        let reg = h.register("t").expect("reg");
        let tenant = TenantId::new("t").expect("tenant");
        // Connected but subscribed to nothing: nothing is kept.
        h.on_ack(&tenant, &shared(&[ev("api")]), &ack(1));
        assert!(!h.has_pending());
        assert!(h.watched.lock().is_empty());
        h.subscribe(&reg.client, sub(true, true, None));
        h.on_ack(&tenant, &shared(&[ev("api")]), &ack(1));
        assert!(h.has_pending());
        // Unsubscribing forgets the tenant and what it kept.
        h.subscribe(&reg.client, sub(false, false, None));
        assert!(!h.has_pending());
        assert!(h.watched.lock().is_empty());
        h.subscribe(&reg.client, sub(true, false, None));
        drop(reg);
        assert!(h.watched.lock().is_empty());
    }

    #[test]
    fn metrics_carry_the_seconds_percentiles() {
        let h = hub(10, 10);
        let mut reg = h.register("t").expect("reg");
        h.subscribe(&reg.client, sub(false, true, None));
        let tenant = TenantId::new("t").expect("tenant");
        let batch: Vec<Event> = (1..=100)
            .map(|i| {
                let mut e = ev("api");
                e.latency_ms = Some(f64::from(i));
                e.status_code = Some(if i % 10 == 0 { 500 } else { 200 });
                e
            })
            .collect();
        h.on_ack(&tenant, &shared(&batch), &ack(batch.len()));
        h.flush_metrics(Micros(0));
        let v = recv_json(&mut reg);
        assert_eq!(v["type"], "metrics");
        assert_eq!(v["count"], 100);
        assert_eq!(v["errors"], 10);
        let l = &v["latency_ms"];
        let near = |k: &str, want: f64| {
            let got = l[k].as_f64().unwrap_or(f64::NAN);
            assert!(
                (got - want).abs() <= want * 0.02,
                "{k}: {got} vs {want} in {v}"
            );
        };
        near("p50", 50.0);
        near("p95", 95.0);
        near("p99", 99.0);
        near("avg", 50.5);
        near("max", 100.0);
        // The next second starts empty: counts zero, percentiles null.
        h.flush_metrics(Micros(1_000_000));
        let v = recv_json(&mut reg);
        assert_eq!(v["count"], 0);
        assert!(v["latency_ms"]["p99"].is_null(), "{v}");
    }
}
