//! Alerting: rolling windows fed by every acknowledged batch, rules
//! evaluated continuously over them, the alert lifecycle, and
//! notifications with retries, all persisted in `meta.redb`.
//!
//! Threads of work:
//! - the window thread (`service`) owns ingestion into the windows and
//!   evaluation: it takes batches from the ingest observer through a
//!   bounded queue (the observer never blocks; a full queue is counted),
//!   evaluates a tenant's rules right after a batch touches their series
//!   and every rule once a second;
//! - the delivery queue (`notify`) sends notifications on the tokio
//!   runtime, one task per delivery, never holding up evaluation.
//!
//! Module map: `clock`, `window`, `users` (distinct-user sketch),
//! `filter`, `rules`, `lifecycle` (the state machine), `engine` (one
//! tenant's state and evaluation), `model`, `persist`, `notify/`,
//! `service` (threads, rebuild, baselines), `handlers`, `realtime`,
//! `summary`, `metrics`.
//!
//! This module never touches the store's write path; it reads stored
//! events only to rebuild windows and compute baselines.

pub mod clock;
pub mod engine;
pub mod filter;
pub mod handlers;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod persist;
pub mod realtime;
pub mod rules;
pub mod service;
pub mod summary;
pub mod users;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use pulsestream_storage::{Ack, Event, Store, TenantId};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::app::IngestObserver;
use crate::config::Config;
use crate::meta::Meta;
use clock::Clock;
use engine::{Effects, TenantState};
use metrics::AlertMetrics;
use model::{AlertState, Channel, Delivery};
use persist::Persist;

pub use service::{AlertingHandle, start};

/// Batches waiting for the window thread at most. At ~1,000 events per
/// batch that is seconds of peak ingest; beyond it batches are counted as
/// dropped rather than slowing the acknowledgement path.
pub const QUEUE_BATCHES: usize = 4096;

/// Events waiting for the window thread at most, whatever the batch sizes:
/// the queue holds the batches themselves, so this bounds its memory (about
/// 100 MB of events) where batches of many thousand events would let 4,096
/// of them hold gigabytes. Beyond it batches are dropped and counted.
pub const QUEUE_EVENTS: usize = 256 << 10;

/// Settings from `[alerting]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_series_per_tenant: usize,
    pub dashboard_url: String,
    pub retry_base: Duration,
    pub max_attempts: u32,
    pub send_timeout: Duration,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        let a = &c.alerting;
        Settings {
            max_series_per_tenant: a.max_series_per_tenant,
            dashboard_url: a
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", c.server.listen))
                .trim_end_matches('/')
                .to_owned(),
            retry_base: a.retry_base,
            max_attempts: a.max_attempts,
            send_timeout: a.send_timeout,
        }
    }
}

/// Work for the window thread.
pub enum Msg {
    Batch(TenantId, Arc<[Event]>),
    /// Fill a new rule spec from stored events (tenant, spec key, window
    /// seconds): those received before the spec's cutoff.
    Backfill(String, String, i64),
    Stop,
}

/// The alerting subsystem's shared state.
pub struct Alerting {
    pub clock: Arc<dyn Clock>,
    pub store: Arc<Store>,
    pub persist: Persist,
    pub settings: Settings,
    pub metrics: AlertMetrics,
    pub http: notify::http::HttpClient,
    /// `None` without an `[smtp]` host: email channels then fail (logged).
    pub email: Option<notify::email::Mailer>,
    tenants: RwLock<HashMap<String, Arc<Mutex<TenantState>>>>,
    tx: Sender<Msg>,
    rx: Mutex<Option<Receiver<Msg>>>,
    /// Events in the batches of the queue (`QUEUE_EVENTS`).
    queued_events: std::sync::atomic::AtomicUsize,
    notify_tx: UnboundedSender<Delivery>,
    notify_rx: Mutex<Option<UnboundedReceiver<Delivery>>>,
    /// Told of every alert state change after it is persisted (the live
    /// dashboard). Must not block.
    listeners: RwLock<Vec<AlertListener>>,
}

/// Receives alerts whose state changed.
pub type AlertListener = Arc<dyn Fn(&model::Alert) + Send + Sync>;

impl Alerting {
    /// Loads rules, channels, silences, alerts and queued deliveries.
    pub fn open(
        store: Arc<Store>,
        meta: Meta,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Arc<Alerting>> {
        let persist = Persist::open(meta)?;
        let (tx, rx) = crossbeam::channel::bounded(QUEUE_BATCHES);
        let (notify_tx, notify_rx) = tokio::sync::mpsc::unbounded_channel();
        let settings = Settings::from_config(config);
        let http = notify::http::client(settings.send_timeout)
            .map_err(|e| anyhow::anyhow!("cannot set up the notification HTTP client: {e}"))?;
        let email = notify::email::Mailer::from_config(&config.smtp)?;
        let a = Arc::new(Alerting {
            clock,
            store,
            persist,
            http,
            email,
            settings,
            metrics: AlertMetrics::default(),
            tenants: RwLock::new(HashMap::new()),
            tx,
            queued_events: std::sync::atomic::AtomicUsize::new(0),
            rx: Mutex::new(Some(rx)),
            notify_tx,
            notify_rx: Mutex::new(Some(notify_rx)),
            listeners: RwLock::new(Vec::new()),
        });
        a.load()?;
        Ok(a)
    }

    fn load(&self) -> anyhow::Result<()> {
        let loaded = self.persist.load()?;
        let now = self.clock.now().0;
        for c in loaded.channels {
            let t = self.tenant(&c.tenant);
            t.lock().channels.insert(c.id.clone(), c);
        }
        for s in loaded.silences {
            let t = self.tenant(&s.tenant);
            t.lock().silences.insert(s.id.clone(), s);
        }
        for r in loaded.rules {
            match rules::compile(&r.doc, &r.id, r.created_at) {
                Ok(rule) => {
                    let t = self.tenant(&r.tenant);
                    t.lock().put_rule(Arc::new(rule), now);
                }
                Err(e) => {
                    tracing::error!(rule = %r.id, errors = ?e, "stored rule no longer validates; skipped")
                }
            }
        }
        for al in loaded.alerts {
            let t = self.tenant(&al.tenant);
            let mut t = t.lock();
            if al.state.is_active() {
                t.active
                    .insert((al.rule_id.clone(), al.group_key.clone()), al.id.clone());
            }
            t.alerts.insert(al.id.clone(), al);
        }
        for d in loaded.deliveries {
            let _ = self.notify_tx.send(d);
        }
        Ok(())
    }

    /// The tenant's state, created on first use.
    pub fn tenant(&self, tenant: &str) -> Arc<Mutex<TenantState>> {
        if let Some(t) = self.tenants.read().get(tenant) {
            return t.clone();
        }
        let now = self.clock.now().0;
        self.tenants
            .write()
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(TenantState::new(tenant, now))))
            .clone()
    }

    /// The tenant's state if it has any.
    pub fn existing_tenant(&self, tenant: &str) -> Option<Arc<Mutex<TenantState>>> {
        self.tenants.read().get(tenant).cloned()
    }

    pub fn tenant_ids(&self) -> Vec<String> {
        self.tenants.read().keys().cloned().collect()
    }

    /// Forgets a deleted tenant: its windows, rules, alerts, channels,
    /// silences, queued deliveries and delivery log.
    pub fn forget_tenant(&self, tenant: &str) -> crate::meta::MetaResult<()> {
        self.tenants.write().remove(tenant);
        self.persist.delete_tenant(tenant)
    }

    pub fn channel(&self, tenant: &str, id: &str) -> Option<Channel> {
        self.existing_tenant(tenant)?
            .lock()
            .channels
            .get(id)
            .cloned()
    }

    /// Persists what an evaluation or action produced, then queues its
    /// deliveries (after the write, so a crash cannot send something the
    /// database does not know was queued).
    pub fn commit(&self, fx: Effects) {
        self.metrics
            .evaluations
            .fetch_add(fx.evaluations, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = self.persist.write(fx.writes) {
            tracing::error!(error = %e, "cannot persist alert state; notifications still go out");
        }
        for d in fx.deliveries {
            let _ = self.notify_tx.send(d);
        }
        if !fx.changed.is_empty() {
            let listeners = self.listeners.read();
            for a in &fx.changed {
                for l in listeners.iter() {
                    l(a);
                }
            }
        }
    }

    /// Registers a listener for alert state changes (see `listeners`).
    pub fn on_change(&self, l: AlertListener) {
        self.listeners.write().push(l);
    }

    /// Active alerts of a tenant by severity: pending, firing and
    /// acknowledged ones (an acknowledged alert is still a problem).
    pub fn active_by_severity(&self, tenant: &str) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        let Some(t) = self.existing_tenant(tenant) else {
            return out;
        };
        let t = t.lock();
        for id in t.active.values() {
            if let Some(a) = t.alerts.get(id)
                && a.state.is_active()
            {
                *out.entry(a.severity.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Hands a message to the window thread without ever blocking.
    pub fn send(&self, m: Msg) {
        use std::sync::atomic::Ordering::Relaxed;
        let batch = match &m {
            Msg::Batch(_, evs) => evs.len(),
            _ => 0,
        };
        if batch > 0 && self.queued_events.fetch_add(batch, Relaxed) + batch > QUEUE_EVENTS {
            self.queued_events.fetch_sub(batch, Relaxed);
            self.count_dropped(batch);
            return;
        }
        match self.tx.try_send(m) {
            Ok(()) => {}
            Err(TrySendError::Full(Msg::Batch(_, evs))) => {
                self.queued_events.fetch_sub(evs.len(), Relaxed);
                self.count_dropped(evs.len());
            }
            Err(TrySendError::Full(_)) => {
                tracing::warn!("alerting queue full; a backfill request was dropped");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn count_dropped(&self, events: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.dropped_batches.fetch_add(1, Relaxed);
        self.metrics
            .dropped_events
            .fetch_add(events as u64, Relaxed);
    }

    /// The window thread took a batch of `events` off the queue.
    pub(crate) fn dequeued(&self, events: usize) {
        self.queued_events
            .fetch_sub(events, std::sync::atomic::Ordering::Relaxed);
    }

    /// Active alerts per state over all tenants (for `/metrics`).
    pub fn active_by_state(&self) -> Vec<(&'static str, u64)> {
        let mut counts = [0u64; 3];
        for t in self.tenants.read().values() {
            let t = t.lock();
            for id in t.active.values() {
                match t.alerts.get(id).map(|a| a.state) {
                    Some(AlertState::Pending) => counts[0] += 1,
                    Some(AlertState::Firing) => counts[1] += 1,
                    Some(AlertState::Acknowledged) => counts[2] += 1,
                    _ => {}
                }
            }
        }
        vec![
            ("pending", counts[0]),
            ("firing", counts[1]),
            ("acknowledged", counts[2]),
        ]
    }

    /// The alerting series of `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        self.metrics.render(out, &self.active_by_state());
    }
}

impl IngestObserver for Alerting {
    fn on_ack(&self, tenant: &TenantId, events: &Arc<[Event]>, _ack: &Ack) {
        self.send(Msg::Batch(tenant.clone(), Arc::clone(events)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alerting over a fresh store and metadata; its window thread is not
    /// started, so everything sent stays queued.
    fn idle_alerting(dir: &std::path::Path) -> Arc<Alerting> {
        let mut config = Config::default();
        config.storage.data_dir = dir.to_path_buf();
        let store = Store::open(config.store_config()).expect("store");
        let meta = crate::meta::Meta::open(dir).expect("meta");
        Alerting::open(store, meta, &config, Arc::new(clock::SystemClock)).expect("alerting")
    }

    #[test]
    fn the_queue_is_bounded_by_events_not_only_by_batches() {
        use std::sync::atomic::Ordering::Relaxed;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = idle_alerting(dir.path());
        let t = TenantId::new("t1").expect("tenant");
        let batch: Arc<[Event]> = vec![Event::default(); 50_000].into();
        // Far fewer batches than QUEUE_BATCHES, yet past QUEUE_EVENTS.
        let sent = QUEUE_EVENTS / batch.len() + 3;
        for _ in 0..sent {
            a.send(Msg::Batch(t.clone(), batch.clone()));
        }
        let kept = QUEUE_EVENTS / batch.len();
        assert_eq!(
            a.metrics.dropped_batches.load(Relaxed),
            (sent - kept) as u64
        );
        assert_eq!(
            a.metrics.dropped_events.load(Relaxed),
            ((sent - kept) * batch.len()) as u64
        );
        assert_eq!(a.queued_events.load(Relaxed), kept * batch.len());
        // Taking a batch off makes room for one more.
        let taken = a.rx.lock().as_ref().and_then(|rx| rx.try_recv().ok());
        match taken {
            Some(Msg::Batch(_, evs)) => a.dequeued(evs.len()),
            _ => panic!("a batch was queued"),
        }
        a.send(Msg::Batch(t.clone(), batch.clone()));
        assert_eq!(
            a.metrics.dropped_batches.load(Relaxed),
            (sent - kept) as u64
        );
    }
}
