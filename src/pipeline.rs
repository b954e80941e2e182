//! The one ingest pipeline every transport feeds (the JSON and NDJSON
//! endpoints in `ingest`, OTLP in `otlp`): admission of the request's bytes
//! (in-flight budget per tenant and global), decoding off the async
//! workers, the tenant's rate limit and quota, the bound on appends waiting
//! for the store, coalescing of single events, the durable append, the
//! ingest observers and the event ids.
//!
//! `Ingestor::commit` holds the only call of `Store::append` in the
//! application. Transports only decode and validate; they never touch the
//! store, the observers or the limiter directly.
//!
//! Order for one request: `Ingestor::open` (credential → tenant and its
//! limits), `read_body` (413 by size, 503 by budget, charged as bytes
//! arrive), `offload` (decompress and parse; large bodies on the blocking
//! pool), then `submit_batch` / `submit_one` (429, 503 before anything is
//! stored, then the append, whose true outcome the request answers even
//! past its deadline: see `http::deadline`).

pub mod budget;
pub mod coalesce;
pub mod order;
pub mod ratelimit;

use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use pulsestream_storage::{Ack, Event, EventId, Micros, TenantId};

use self::budget::{IngestBudget, Reservation};
use self::coalesce::Coalescer;
use self::order::AckOrder;
use self::ratelimit::{Limits, RateLimiter, Refused};
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, HttpResponse};

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

/// Seconds a client is told to wait after a 503: long enough for a group
/// commit or two to drain the queue.
const OVERLOADED_RETRY_SECS: u64 = 1;

/// Bodies at least this large are decompressed and parsed on the blocking
/// pool: parsing 256 KiB of JSON takes about a millisecond, the most an
/// async worker should be kept from its other connections; smaller bodies
/// cost less than the hand-off.
pub const OFFLOAD_MIN_BYTES: usize = 256 << 10;

/// Large bodies decoded on the blocking pool at once: two per core keeps
/// both cores busy while one waits for memory, and bounds the threads and
/// the decompressed buffers in flight (a request beyond it waits its turn,
/// within its deadline).
fn max_blocking_decodes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// The pipeline's shared state, one per server (held in `AppState`).
pub struct Ingestor {
    /// Per-tenant token buckets and daily quotas.
    limiter: RateLimiter,
    /// Bytes of request bodies in flight, per tenant and global.
    budget: IngestBudget,
    /// Appends handed to the store and not yet acknowledged.
    queue: Arc<tokio::sync::Semaphore>,
    /// Large-body decodes running on the blocking pool.
    decoders: Arc<tokio::sync::Semaphore>,
    /// Joins concurrent single-event requests into one append.
    coalescer: Coalescer,
    /// Hands batches to the observers in each tenant's ack order.
    order: AckOrder,
}

/// One ingest request after its credential was checked: who it is for and
/// the bytes it holds in the budget (released when it is dropped).
pub struct IngestRequest {
    pub tenant: TenantId,
    pub retention_days: u32,
    limits: Limits,
    reservation: Reservation,
    /// Bytes of the decoded payload (after decompression), for `/metrics`.
    payload_bytes: usize,
    /// `X-RateLimit-Limit` and `-Remaining` after admission.
    rate: Option<(u64, u64)>,
}

impl IngestRequest {
    /// Adds the rate-limit headers when the tenant has limits.
    pub fn with_rate_headers(&self, mut resp: HttpResponse) -> HttpResponse {
        if let Some((limit, remaining)) = self.rate
            && (self.limits.eps > 0 || self.limits.quota_per_day > 0)
        {
            let h = resp.headers_mut();
            h.insert(X_RATELIMIT_LIMIT, HeaderValue::from(limit));
            h.insert(X_RATELIMIT_REMAINING, HeaderValue::from(remaining));
        }
        resp
    }
}

fn rate_limited(r: Refused) -> ApiError {
    let msg = if r.quota {
        "daily event quota exhausted"
    } else {
        "rate limit exceeded"
    };
    ApiError::rate_limited(r.retry_after_secs)
        .with_message(msg)
        .with_header(X_RATELIMIT_LIMIT, HeaderValue::from(r.limit))
        .with_header(X_RATELIMIT_REMAINING, HeaderValue::from(r.remaining))
}

/// The 503 of a request refused before anything was stored.
pub fn overloaded(state: &AppState) -> ApiError {
    state.metrics.record_rejected("overloaded", 1);
    ApiError::overloaded(OVERLOADED_RETRY_SECS)
}

impl Ingestor {
    pub fn new(config: &crate::config::Config) -> Self {
        let c = &config.ingest;
        Ingestor {
            limiter: RateLimiter::new(),
            budget: IngestBudget::new(c.inflight_bytes, c.tenant_inflight_bytes),
            queue: Arc::new(tokio::sync::Semaphore::new(c.queue_depth.max(1))),
            decoders: Arc::new(tokio::sync::Semaphore::new(max_blocking_decodes())),
            coalescer: Coalescer::new(),
            order: AckOrder::default(),
        }
    }

    /// Forgets a tenant's rate-limit and budget state (its limits changed
    /// or it was deleted); the next request starts from a full bucket.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.limiter.forget(tenant);
        self.budget.forget(tenant);
        self.order.forget(tenant);
    }

    /// Bytes free in the global in-flight budget.
    pub fn budget_available_bytes(&self) -> usize {
        self.budget.available_bytes()
    }

    /// Checks the `ingest` scope and the tenant, and opens the request's
    /// (empty) budget reservation.
    pub fn open(&self, state: &AppState, principal: &Principal) -> Result<IngestRequest, ApiError> {
        let scope = principal.require_ingest()?;
        let tenant = scope.tenant().clone();
        let tl = state
            .tenant_limits(&tenant)
            .ok_or_else(|| ApiError::unauthorized("invalid credentials"))?;
        let limits = Limits {
            eps: tl.rate_limit_eps,
            burst: if tl.rate_limit_burst == 0 {
                tl.rate_limit_eps
            } else {
                tl.rate_limit_burst
            },
            quota_per_day: tl.quota_events_per_day,
        };
        let reservation = self.budget.open(&tenant);
        Ok(IngestRequest {
            tenant,
            retention_days: tl.retention_days,
            limits,
            reservation,
            payload_bytes: 0,
            rate: None,
        })
    }

    /// Reads the body (413 past `server.max_body_bytes`), charging each
    /// piece to the request's budgets as it arrives (503 when either is
    /// exhausted).
    pub async fn read_body(
        &self,
        state: &AppState,
        r: &mut IngestRequest,
        req: Request<Incoming>,
    ) -> Result<bytes::Bytes, ApiError> {
        let limit = state.config.server.max_body_bytes;
        let budget = &self.budget;
        let reservation = &mut r.reservation;
        http::read_body_charged(req, limit, |n| {
            budget.charge(reservation, n).map_err(|_| overloaded(state))
        })
        .await
    }

    /// Charges the decompressed size of the body to the request (0 when
    /// it was not compressed).
    pub fn charge_decompressed(
        &self,
        state: &AppState,
        r: &mut IngestRequest,
        bytes: usize,
    ) -> Result<(), ApiError> {
        if bytes == 0 {
            return Ok(());
        }
        r.payload_bytes = bytes;
        self.budget
            .charge(&mut r.reservation, bytes)
            .map_err(|_| overloaded(state))
    }

    /// Runs `decode` (decompression and parsing of a body of `size` bytes)
    /// inline for small bodies and on the blocking pool, at most
    /// `max_blocking_decodes()` at once, for large ones.
    pub async fn offload<T: Send + 'static>(
        &self,
        size: usize,
        decode: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        if size < OFFLOAD_MIN_BYTES {
            return Ok(decode());
        }
        let turn = self
            .decoders
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("decoder pool closed"))?;
        // The permit moves into the task: a request dropped at its deadline
        // leaves its decode running, and that decode still counts.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            decode()
        })
        .await
        .map_err(|e| ApiError::internal(format!("decode task failed: {e}")))
    }

    /// Takes `n` events from the tenant's allowance (429 when refused).
    fn admit(&self, state: &AppState, r: &mut IngestRequest, n: usize) -> Result<(), ApiError> {
        match self
            .limiter
            .check(&r.tenant, n as u64, &r.limits, Micros::now())
        {
            Ok(a) => {
                r.rate = Some((a.limit, a.remaining));
                Ok(())
            }
            Err(refused) => {
                state.metrics.record_rejected(
                    if refused.quota {
                        "quota"
                    } else {
                        "rate_limited"
                    },
                    n as u64,
                );
                Err(rate_limited(refused))
            }
        }
    }

    /// Admits, appends durably and notifies the observers; answers the ids
    /// in the order of `events`. An empty batch stores nothing.
    pub async fn submit_batch(
        &self,
        state: &Arc<AppState>,
        r: &mut IngestRequest,
        events: Vec<Event>,
    ) -> Result<Vec<EventId>, ApiError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.admit(state, r, events.len())?;
        let slot = self
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| overloaded(state))?;
        let n = events.len() as u64;
        let st = state.clone();
        let tenant = r.tenant.clone();
        // Moved (not copied) into a shared slice the observers can keep.
        let events: Arc<[Event]> = events.into();
        // From here the events will be stored (the blocking task runs to
        // its end even if this request is dropped, holding its queue slot),
        // so the request answers the append's outcome, not its deadline.
        http::deadline::commit_begun();
        let ids = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            commit(&st, &tenant, &events)
        })
        .await
        .map_err(|e| ApiError::internal(format!("append task failed: {e}")))??;
        state.metrics.record_ingest(n, r.payload_bytes as u64);
        Ok(ids)
    }

    /// One event, appended together with the tenant's other concurrent
    /// single events (see `coalesce`).
    pub async fn submit_one(
        &self,
        state: &Arc<AppState>,
        r: &mut IngestRequest,
        event: Event,
    ) -> Result<EventId, ApiError> {
        self.admit(state, r, 1)?;
        let _slot = self
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| overloaded(state))?;
        http::deadline::commit_begun();
        let id = self.coalescer.submit(state, &r.tenant, event).await?;
        state.metrics.record_ingest(1, r.payload_bytes as u64);
        Ok(id)
    }
}

/// The durable append: `Store::append` (which returns after the WAL
/// fsync), then the observers in the tenant's ack order (`order`), then the
/// ids. Blocking; runs on the blocking pool.
///
/// A failed append stored nothing: the store refuses before writing when
/// it is closed (503, retry) and answers a full disk before the WAL record
/// is durable (507); anything else is a server fault (500). The mapping is
/// `ApiError`'s `From<StorageError>`, the one place statuses are chosen.
fn commit(
    state: &AppState,
    tenant: &TenantId,
    events: &Arc<[Event]>,
) -> Result<Vec<EventId>, ApiError> {
    let ack: Ack = if state.ingest_observers.is_empty() {
        state.store.append(tenant, events)?
    } else {
        state.ingest.order.run(
            tenant,
            || state.store.append(tenant, events),
            |ack| state.notify_ack(tenant, events, ack),
        )?
    };
    Ok(ids(events, &ack))
}

/// The ids the store gave `events` in `ack` (the first `events.len()` of
/// the acknowledged batch).
pub(crate) fn ids(events: &[Event], ack: &Ack) -> Vec<EventId> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| EventId {
            timestamp: e.timestamp,
            seq: ack.first_seq + i as u64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn large_bodies_are_decoded_off_the_async_thread() {
        let ing = Ingestor::new(&crate::config::Config::default());
        let here = std::thread::current().id();
        let small = ing
            .offload(OFFLOAD_MIN_BYTES - 1, || std::thread::current().id())
            .await
            .expect("ran");
        let large = ing
            .offload(OFFLOAD_MIN_BYTES, || std::thread::current().id())
            .await
            .expect("ran");
        assert_eq!(small, here);
        assert_ne!(large, here);
    }
}
