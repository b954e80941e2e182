//! Group commit at the front door for single-event requests.
//!
//! Sixty-four agents each sending one event per request would otherwise
//! cost one blocking-pool hand-off and one `Store::append` (a WAL record,
//! an active-segment insert) per event. Instead, concurrent single events
//! of a tenant queue here; whoever finds no flush running starts one on the
//! blocking pool, which appends everything queued as one batch, answers
//! every waiter, and repeats until the queue is empty. Under light load a
//! flush holds one event (no added latency); under heavy load it holds
//! however many arrived during the previous fsync.
//!
//! Each waiter is answered only after the append that holds its event
//! returned, so acknowledgements stay durable.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pulsestream_storage::{Event, EventId, TenantId};
use tokio::sync::oneshot;

use crate::app::AppState;
use crate::http::ApiError;

/// Most events one flush appends: bounds the WAL record and the time the
/// first waiter of a very busy tenant waits for the rest.
const MAX_EVENTS_PER_FLUSH: usize = 4096;

type Waiter = oneshot::Sender<Result<EventId, ApiError>>;

#[derive(Default)]
struct Queue {
    events: Vec<Event>,
    waiters: Vec<Waiter>,
    /// A flush task is running for this tenant and will see new entries.
    flushing: bool,
}

/// The queues of every tenant.
#[derive(Default)]
pub struct Coalescer {
    tenants: Mutex<HashMap<TenantId, Arc<Mutex<Queue>>>>,
}

impl Coalescer {
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, tenant: &TenantId) -> Arc<Mutex<Queue>> {
        let mut m = self.tenants.lock();
        match m.get(tenant) {
            Some(q) => q.clone(),
            None => {
                let q = Arc::new(Mutex::new(Queue::default()));
                m.insert(tenant.clone(), q.clone());
                q
            }
        }
    }

    /// Appends `event` for `tenant` together with whatever else is queued;
    /// returns its id once durable.
    pub async fn submit(
        &self,
        state: &Arc<AppState>,
        tenant: &TenantId,
        event: Event,
    ) -> Result<EventId, ApiError> {
        let queue = self.queue(tenant);
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = queue.lock();
            q.events.push(event);
            q.waiters.push(tx);
            !std::mem::replace(&mut q.flushing, true)
        };
        if start {
            let state = state.clone();
            let tenant = tenant.clone();
            tokio::task::spawn_blocking(move || flush(&state, &tenant, &queue));
        }
        rx.await
            .map_err(|_| ApiError::internal("the append task ended without an answer"))?
    }
}

/// Clears `flushing` and fails the queued waiters if a flush unwinds, so a
/// panic in the store cannot leave a tenant's queue stuck forever.
struct FlushGuard<'a>(&'a Mutex<Queue>);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.lock();
            q.flushing = false;
            q.events.clear();
            q.waiters.clear();
        }
    }
}

fn flush(state: &AppState, tenant: &TenantId, queue: &Mutex<Queue>) {
    let _guard = FlushGuard(queue);
    loop {
        let (events, waiters) = {
            let mut q = queue.lock();
            if q.events.is_empty() {
                q.flushing = false;
                return;
            }
            let n = q.events.len().min(MAX_EVENTS_PER_FLUSH);
            let events: std::sync::Arc<[Event]> = q.events.drain(..n).collect();
            let waiters: Vec<Waiter> = q.waiters.drain(..n).collect();
            (events, waiters)
        };
        match super::commit(state, tenant, &events) {
            Ok(ids) => {
                for (w, id) in waiters.into_iter().zip(ids) {
                    let _ = w.send(Ok(id));
                }
            }
            Err(err) => {
                for w in waiters {
                    let _ = w.send(Err(err.clone()));
                }
            }
        }
    }
}
