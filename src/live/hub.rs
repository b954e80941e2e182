//! The hub: who is connected, what each subscribed to, and the fan-out of
//! acknowledged events, per-second metrics and alert changes to them.
//!
//! The ingest side only appends the acknowledged events of tenants that
//! have an events subscriber to a pending list (one short lock, no I/O);
//! everything else happens on the hub's own task (`run`): every
//! `FLUSH_EVERY` the pending events are rendered to JSON once, matched
//! against each distinct filter once, and the resulting message is handed
//! to every subscriber with that filter by a non-blocking `try_send` into
//! its bounded queue. A full queue drops the message and counts it; the
//! connection's writer reports the count as `lagged` before its next
//! message. Nothing here ever waits for a client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
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

/// Messages waiting for one client at most. A dashboard reading at a
/// normal pace never has more than a couple queued; beyond this the client
/// is slow and gets `lagged` instead of making the server buffer for it.
pub const CLIENT_QUEUE: usize = 64;

/// Events in one `events` message at most: bounds one frame's size (a few
/// hundred KiB) so a burst becomes several messages, each droppable alone.
pub const EVENTS_PER_MESSAGE: usize = 500;

/// Pending events per tenant at most between two flushes: a flood beyond
/// this in 250 ms is more than any screen shows; the excess is counted as
/// dropped for every events subscriber of the tenant.
pub const MAX_PENDING_EVENTS: usize = 20_000;

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
    sub: RwLock<Subscription>,
    tx: mpsc::Sender<Utf8Bytes>,
    /// Events (and other messages) dropped since the last `lagged`.
    dropped: AtomicU64,
}

impl Client {
    pub fn set_subscription(&self, s: Subscription) {
        *self.sub.write() = s;
    }

    pub fn subscription(&self) -> Subscription {
        self.sub.read().clone()
    }

    /// Takes the count to report in `lagged` (zero: nothing was dropped).
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Queues a message; when the queue is full the message is dropped and
    /// `weight` (its events, or 1) is added to the lag count.
    pub fn offer(&self, msg: Utf8Bytes, weight: u64) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(weight.max(1), Ordering::Relaxed);
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
#[derive(Default, Clone, Copy)]
struct Second {
    count: u64,
    errors: u64,
    latency_sum: f64,
    latency_n: u64,
    latency_max: f64,
}

/// The live connections and their fan-out.
pub struct Hub {
    max_total: usize,
    max_per_tenant: usize,
    clients: RwLock<HashMap<u64, Arc<Client>>>,
    per_tenant: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    next_id: AtomicU64,
    /// Tenants with at least one events subscriber and the count of them:
    /// the ingest side looks here first and skips everyone else.
    event_subscribers: RwLock<HashMap<String, usize>>,
    pending: Mutex<HashMap<String, Vec<Event>>>,
    seconds: Mutex<HashMap<String, Second>>,
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
            per_tenant: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            event_subscribers: RwLock::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            seconds: Mutex::new(HashMap::new()),
            gauge,
        })
    }

    /// Counts a new connection of `tenant`, within the caps.
    pub fn register(self: &Arc<Self>, tenant: &str) -> Result<Registration, Refusal> {
        {
            let mut per = self.per_tenant.lock();
            if self.total.load(Ordering::Relaxed) >= self.max_total {
                return Err(Refusal::Global);
            }
            let n = per.entry(tenant.to_owned()).or_insert(0);
            if *n >= self.max_per_tenant {
                return Err(Refusal::Tenant);
            }
            *n += 1;
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        self.gauge
            .websocket_connections
            .fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            tenant: tenant.to_owned(),
            sub: RwLock::new(Subscription::default()),
            tx,
            dropped: AtomicU64::new(0),
        });
        self.clients.write().insert(client.id, client.clone());
        Ok(Registration {
            hub: self.clone(),
            client,
            rx: Some(rx),
        })
    }

    fn unregister(&self, c: &Client) {
        if c.subscription().channels.events {
            self.set_events_interest(c, false);
        }
        self.clients.write().remove(&c.id);
        let mut per = self.per_tenant.lock();
        if let Some(n) = per.get_mut(&c.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&c.tenant);
            }
        }
        self.total.fetch_sub(1, Ordering::Relaxed);
        self.gauge
            .websocket_connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Replaces a client's subscription, keeping the events interest count
    /// of its tenant true.
    pub fn subscribe(&self, c: &Client, s: Subscription) {
        let before = c.subscription().channels.events;
        let after = s.channels.events;
        c.set_subscription(s);
        if before != after {
            self.set_events_interest(c, after);
        }
    }

    fn set_events_interest(&self, c: &Client, on: bool) {
        let mut m = self.event_subscribers.write();
        if on {
            *m.entry(c.tenant.clone()).or_insert(0) += 1;
        } else if let Some(n) = m.get_mut(&c.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&c.tenant);
            }
        }
    }

    /// Open connections in total and per tenant.
    pub fn connection_counts(&self) -> (usize, BTreeMap<String, usize>) {
        let per = self.per_tenant.lock();
        (
            self.total.load(Ordering::Relaxed),
            per.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        )
    }

    /// Subscriptions per channel, per tenant.
    pub fn channel_counts(&self) -> BTreeMap<String, [usize; 3]> {
        let mut out: BTreeMap<String, [usize; 3]> = BTreeMap::new();
        for c in self.clients.read().values() {
            let ch = c.subscription().channels;
            let e = out.entry(c.tenant.clone()).or_default();
            e[0] += usize::from(ch.events);
            e[1] += usize::from(ch.metrics);
            e[2] += usize::from(ch.alerts);
        }
        out
    }

    fn tenant_clients(&self, tenant: &str) -> Vec<Arc<Client>> {
        self.clients
            .read()
            .values()
            .filter(|c| c.tenant == tenant)
            .cloned()
            .collect()
    }

    /// Sends an alert state change to the tenant's `alerts` subscribers.
    pub fn on_alert(&self, a: &Alert) {
        let msg = json!({"type": "alert", "alert": a.to_json()}).to_string();
        let msg = Utf8Bytes::from(msg);
        for c in self.tenant_clients(&a.tenant) {
            if c.subscription().channels.alerts {
                c.offer(msg.clone(), 1);
            }
        }
    }

    /// Whether any acknowledged events wait for the next flush.
    pub fn has_pending(&self) -> bool {
        !self.pending.lock().is_empty()
    }

    /// Pushes the pending events of every tenant to their subscribers.
    pub fn flush_events(&self) {
        if self.pending.lock().is_empty() {
            return;
        }
        let pending = std::mem::take(&mut *self.pending.lock());
        for (tenant, events) in pending {
            self.fan_out(&tenant, &events);
        }
    }

    fn fan_out(&self, tenant: &str, events: &[Event]) {
        let clients = self.tenant_clients(tenant);
        // One rendering per event, one message list per distinct filter.
        let rendered: Vec<String> = events
            .iter()
            .map(|e| {
                let mut s = String::with_capacity(400);
                write_event_json(&mut s, e);
                s
            })
            .collect();
        let mut by_filter: HashMap<String, Vec<(Utf8Bytes, u64)>> = HashMap::new();
        for c in clients {
            let sub = c.subscription();
            if !sub.channels.events {
                continue;
            }
            let msgs = by_filter
                .entry(sub.filter_key.clone())
                .or_insert_with(|| render_messages(events, &rendered, &sub.filter));
            for (m, n) in msgs.iter() {
                c.offer(m.clone(), *n);
            }
        }
    }

    /// Sends the last second's figures to every `metrics` subscriber.
    pub fn flush_metrics(&self, now: Micros) {
        let seconds = std::mem::take(&mut *self.seconds.lock());
        let clients: Vec<Arc<Client>> = self.clients.read().values().cloned().collect();
        let mut msgs: HashMap<String, Utf8Bytes> = HashMap::new();
        let at = format_rfc3339_millis(now);
        for c in clients {
            if !c.subscription().channels.metrics {
                continue;
            }
            let m = msgs.entry(c.tenant.clone()).or_insert_with(|| {
                let s = seconds.get(&c.tenant).copied().unwrap_or_default();
                let rate = if s.count == 0 {
                    0.0
                } else {
                    s.errors as f64 / s.count as f64
                };
                let avg = (s.latency_n > 0).then(|| s.latency_sum / s.latency_n as f64);
                let max = (s.latency_n > 0).then_some(s.latency_max);
                Utf8Bytes::from(
                    json!({
                        "type": "metrics",
                        "at": at,
                        "interval": "1s",
                        "count": s.count,
                        "errors": s.errors,
                        "error_rate": rate,
                        "latency_ms": {"avg": avg, "max": max},
                    })
                    .to_string(),
                )
            });
            c.offer(m.clone(), 1);
        }
    }
}

/// The `events` messages for the events `filter` lets through, with their
/// event counts (for the lag count when one is dropped).
fn render_messages(
    events: &[Event],
    rendered: &[String],
    filter: &EventFilter,
) -> Vec<(Utf8Bytes, u64)> {
    let picked: Vec<&str> = events
        .iter()
        .zip(rendered)
        .filter(|(e, _)| filter.matches(e))
        .map(|(_, r)| r.as_str())
        .collect();
    picked
        .chunks(EVENTS_PER_MESSAGE)
        .map(|chunk| {
            let len: usize = chunk.iter().map(|s| s.len() + 1).sum();
            let mut s = String::with_capacity(len + 32);
            s.push_str("{\"type\":\"events\",\"events\":[");
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(r);
            }
            s.push_str("]}");
            (Utf8Bytes::from(s), chunk.len() as u64)
        })
        .collect()
}

impl IngestObserver for Hub {
    fn on_ack(&self, tenant: &TenantId, events: &[Event], _ack: &Ack) {
        let t = tenant.as_str();
        {
            let mut secs = self.seconds.lock();
            let s = secs.entry(t.to_owned()).or_default();
            for e in events {
                s.count += 1;
                s.errors += u64::from(e.is_error());
                if let Some(l) = e.latency_ms {
                    s.latency_sum += l;
                    s.latency_n += 1;
                    s.latency_max = s.latency_max.max(l);
                }
            }
        }
        if !self.event_subscribers.read().contains_key(t) {
            return;
        }
        let mut pending = self.pending.lock();
        let list = pending.entry(t.to_owned()).or_default();
        let room = MAX_PENDING_EVENTS.saturating_sub(list.len());
        list.extend(events.iter().take(room).cloned());
        let over = events.len().saturating_sub(room) as u64;
        drop(pending);
        if over > 0 {
            for c in self.tenant_clients(t) {
                if c.subscription().channels.events {
                    c.dropped.fetch_add(over, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::Lsn;

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
            h.on_ack(&tenant, &[ev("api"), ev("web")], &ack);
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
        h.on_ack(&tenant, &[ev("api"), ev("web"), ev("api")], &ack);
        h.flush_events();
        let m = api.rx.as_mut().expect("rx").try_recv().expect("message");
        let v: serde_json::Value = serde_json::from_str(m.as_str()).expect("json");
        assert_eq!(v["events"].as_array().map(Vec::len), Some(2));
        assert!(other.rx.as_mut().expect("rx").try_recv().is_err());
    }
}
