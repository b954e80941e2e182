//! The two ingest endpoints (contract section 4):
//! `POST /api/v1/ingestion/events` (one event, 202) and
//! `POST /api/v1/ingestion/events/batch` (JSON array, `{"events": [...]}`
//! or NDJSON, 200 with per-event errors).
//!
//! Order of checks, cheapest refusal first: credential and scope, content
//! type (415), in-flight budget (503), body size while reading (413),
//! decompression with the same limit (413), JSON (400), rate limit and quota
//! (429), then per-event validation. An acknowledgement is sent only after
//! `Store::append` returned, which is after the WAL fsync.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use pulsestream_storage::{Ack, Event, EventId, Micros, StorageError, TenantId};

use super::backpressure::{IngestBudget, Reservation};
use super::coalesce::Coalescer;
use super::decode::{self, BodyFormat, DecodeError, Item};
use super::ratelimit::{Limits, RateLimiter, Refused};
use super::validate::{EventLimits, FieldProblem, TimeWindow, validate_item};
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, FieldError, HttpResponse};

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

/// Seconds a client is told to wait after a 503: long enough for a group
/// commit or two to drain the queue.
const OVERLOADED_RETRY_SECS: u64 = 1;

/// Ingest admission state, one per server (held in `AppState`): the
/// per-tenant limiter, the in-flight byte budget and the bound on appends
/// waiting for the store.
pub struct IngestState {
    limiter: RateLimiter,
    budget: IngestBudget,
    /// Appends handed to the blocking pool and not yet acknowledged.
    queue: Arc<tokio::sync::Semaphore>,
    /// Joins concurrent single-event requests into one append.
    coalescer: Coalescer,
}

impl IngestState {
    pub fn new(config: &crate::config::Config) -> Self {
        IngestState {
            limiter: RateLimiter::new(),
            budget: IngestBudget::default(),
            queue: Arc::new(tokio::sync::Semaphore::new(
                config.ingest.queue_depth.max(1),
            )),
            coalescer: Coalescer::new(),
        }
    }

    /// Forgets a tenant's rate-limit state (its limits changed or it was
    /// deleted); the next request starts from a full bucket.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.limiter.forget(tenant);
    }
}

fn ingest_state(state: &AppState) -> &IngestState {
    &state.ingest
}

fn event_limits(state: &AppState) -> EventLimits {
    let c = &state.config.ingest;
    EventLimits {
        max_service: c.max_service_bytes,
        max_endpoint: c.max_endpoint_bytes,
        max_message: c.max_message_bytes,
        max_attributes: c.max_attributes,
        max_event_bytes: c.max_event_bytes,
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Malformed(m) => ApiError::bad_request(m),
            DecodeError::TooLarge { limit } => ApiError::payload_too_large(limit as u64),
            DecodeError::TooManyEvents => {
                ApiError::payload_too_large(0).with_message(e.to_string())
            }
            DecodeError::UnsupportedEncoding(_) | DecodeError::UnsupportedMediaType(_) => {
                ApiError::unsupported_media_type(e.to_string())
            }
        }
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

/// What both endpoints share up to parsed, rate-limited items.
struct Prepared {
    tenant: TenantId,
    limits: Limits,
    retention_days: u32,
    body: bytes::Bytes,
    decompressed: Option<Vec<u8>>,
    _reservation: Reservation,
    headers: (u64, u64),
}

impl Prepared {
    fn bytes(&self) -> &[u8] {
        self.decompressed.as_deref().unwrap_or(&self.body)
    }
}

async fn prepare(
    state: &AppState,
    req: Request<Incoming>,
    principal: &Principal,
    allow_ndjson: bool,
) -> Result<(Prepared, BodyFormat), ApiError> {
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

    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = decode::body_format(header(CONTENT_TYPE), allow_ndjson)?;
    let encoding = header(CONTENT_ENCODING).map(str::to_owned);
    let max_body = state.config.server.max_body_bytes;
    let declared = header(CONTENT_LENGTH)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(max_body)
        .min(max_body);

    let is = ingest_state(state);
    let mut reservation = is
        .budget
        .try_reserve(declared)
        .map_err(|_| overloaded(state))?;
    let body = http::read_body_limited(req, max_body).await?;
    let decompressed = match decode::decompress(encoding.as_deref(), &body, max_body)? {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(v) => {
            is.budget
                .grow(&mut reservation, v.len())
                .map_err(|_| overloaded(state))?;
            Some(v)
        }
    };
    Ok((
        Prepared {
            tenant,
            limits,
            retention_days: tl.retention_days,
            body,
            decompressed,
            _reservation: reservation,
            headers: (0, 0),
        },
        format,
    ))
}

fn overloaded(state: &AppState) -> ApiError {
    state.metrics.record_rejected("overloaded", 1);
    ApiError::overloaded(OVERLOADED_RETRY_SECS)
}

/// Takes `n` events from the tenant's allowance.
fn admit(state: &AppState, p: &mut Prepared, n: usize) -> Result<(), ApiError> {
    let is = ingest_state(state);
    match is
        .limiter
        .check(&p.tenant, n as u64, &p.limits, Micros::now())
    {
        Ok(a) => {
            p.headers = (a.limit, a.remaining);
            Ok(())
        }
        Err(r) => {
            state
                .metrics
                .record_rejected(if r.quota { "quota" } else { "rate_limited" }, n as u64);
            Err(rate_limited(r))
        }
    }
}

/// The metrics reason of an event's problems.
fn reason(problems: &[FieldProblem]) -> &'static str {
    for p in problems {
        if p.field == "timestamp" {
            if p.message.contains("retention") {
                return "too_old";
            }
            if p.message.contains("future") {
                return "too_new";
            }
        }
    }
    "validation"
}

/// Appends on the blocking pool (the store fsyncs) and hands the batch to
/// the observers. Returns the events' ids.
async fn append(
    state: &Arc<AppState>,
    tenant: &TenantId,
    events: Vec<Event>,
) -> Result<Vec<EventId>, ApiError> {
    let is = ingest_state(state);
    let _slot = is
        .queue
        .clone()
        .try_acquire_owned()
        .map_err(|_| overloaded(state))?;
    let st = state.clone();
    let t = tenant.clone();
    let (events, result): (Vec<Event>, Result<Ack, StorageError>) =
        tokio::task::spawn_blocking(move || {
            let r = st.store.append(&t, &events);
            (events, r)
        })
        .await
        .map_err(|e| ApiError::internal(format!("append task failed: {e}")))?;
    let ack = result?;
    state.notify_ack(tenant, &events, &ack);
    Ok(events
        .iter()
        .enumerate()
        .map(|(i, e)| EventId {
            timestamp: e.timestamp,
            seq: ack.first_seq + i as u64,
        })
        .collect())
}

fn with_rate_headers(mut resp: HttpResponse, p: &Prepared) -> HttpResponse {
    if p.limits.eps > 0 || p.limits.quota_per_day > 0 {
        let h = resp.headers_mut();
        h.insert(X_RATELIMIT_LIMIT, HeaderValue::from(p.headers.0));
        h.insert(X_RATELIMIT_REMAINING, HeaderValue::from(p.headers.1));
    }
    resp
}

/// `POST /api/v1/ingestion/events`: one event → `202 {"accepted": 1, "ids": [id]}`.
pub async fn handle_single(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let (mut p, _) = prepare(&state, req, &principal, false).await?;
    let window = TimeWindow {
        now: Micros::now(),
        retention_days: p.retention_days,
    };
    let limits = event_limits(&state);
    let item = decode::parse_single(p.bytes())?;
    let event = match validate_item(item, &limits, &window) {
        Ok(ev) => ev,
        Err(problems) => {
            state.metrics.record_rejected(reason(&problems), 1);
            return Err(ApiError::validation(
                problems
                    .into_iter()
                    .map(|pr| FieldError::new(pr.field, pr.message))
                    .collect(),
            ));
        }
    };
    admit(&state, &mut p, 1)?;
    let body_len = p.bytes().len() as u64;
    let tenant = p.tenant.clone();
    let is = ingest_state(&state);
    let _slot = is
        .queue
        .clone()
        .try_acquire_owned()
        .map_err(|_| overloaded(&state))?;
    let ids = [is.coalescer.submit(&state, &tenant, event).await?];
    state.metrics.record_ingest(1, body_len);
    let mut out = String::with_capacity(64);
    out.push_str("{\"accepted\":1,\"ids\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&id.to_hex());
        out.push('"');
    }
    out.push_str("]}");
    Ok(with_rate_headers(
        http::text(StatusCode::ACCEPTED, "application/json", out),
        &p,
    ))
}

/// `POST /api/v1/ingestion/events/batch` → `200 {"accepted", "rejected", "errors"}`.
pub async fn handle_batch(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let (mut p, format) = prepare(&state, req, &principal, true).await?;
    let limits = event_limits(&state);
    let window = TimeWindow {
        now: Micros::now(),
        retention_days: p.retention_days,
    };
    // Parse and validate before touching the limiter: a malformed body
    // costs the tenant nothing, and the parse borrows the body, so the
    // owned events must exist before `p` is used mutably.
    let (events, errors, rejected) = {
        let mut events = Vec::with_capacity((p.bytes().len() / 256).clamp(1, 4096));
        let mut errors: Vec<(usize, FieldProblem)> = Vec::new();
        let mut rejected = 0u64;
        let mut index = 0usize;
        // Each element is typed as soon as it is parsed, so the raw form of
        // only one event exists at a time.
        let n = decode::for_each_item(p.bytes(), format, |item: Item| {
            match validate_item(item, &limits, &window) {
                Ok(ev) => events.push(ev),
                Err(problems) => {
                    rejected += 1;
                    state.metrics.record_rejected(reason(&problems), 1);
                    errors.extend(problems.into_iter().map(|pr| (index, pr)));
                }
            }
            index += 1;
        })?;
        if n > state.config.ingest.max_batch_events {
            return Err(
                ApiError::payload_too_large(state.config.server.max_body_bytes as u64)
                    .with_message(format!(
                        "a batch may hold at most {} events",
                        state.config.ingest.max_batch_events
                    )),
            );
        }
        (events, errors, rejected)
    };
    let accepted = events.len();
    if accepted > 0 {
        admit(&state, &mut p, accepted)?;
        let body_len = p.bytes().len() as u64;
        let tenant = p.tenant.clone();
        append(&state, &tenant, events).await?;
        state.metrics.record_ingest(accepted as u64, body_len);
    }
    let mut out = String::with_capacity(64 + errors.len() * 80);
    {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{{\"accepted\":{accepted},\"rejected\":{rejected},\"errors\":["
        );
        for (n, (i, pr)) in errors.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"index\":{i},\"field\":");
            crate::read::render::write_json_str(&mut out, &pr.field);
            out.push_str(",\"message\":");
            crate::read::render::write_json_str(&mut out, &pr.message);
            out.push('}');
        }
        out.push_str("]}");
    }
    Ok(with_rate_headers(
        http::text(StatusCode::OK, "application/json", out),
        &p,
    ))
}
