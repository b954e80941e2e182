//! The two ingest endpoints (contract section 4):
//! `POST /api/v1/ingestion/events` (one event, 202) and
//! `POST /api/v1/ingestion/events/batch` (JSON array, `{"events": [...]}`
//! or NDJSON, 200 with per-event errors).
//!
//! A transport only: it reads the body through the pipeline, decodes and
//! validates, and hands the events to `pipeline::Ingestor`, which owns the
//! limits, the append, the observers and the ids.
//!
//! Order of checks, cheapest refusal first: credential and scope, content
//! type (415), body size while reading (413) and in-flight budget (503),
//! decompression with the same limit (413), JSON (400), rate limit and quota
//! (429), then per-event validation. An acknowledgement is sent only after
//! `Store::append` returned, which is after the WAL fsync.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use hyper::{Request, StatusCode};
use pulsestream_storage::{Event, Micros};

use super::decode::{self, BodyFormat, DecodeError, Item};
use super::validate::{EventLimits, FieldProblem, TimeWindow, validate_item};
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, FieldError, HttpResponse};
use crate::pipeline::IngestRequest;

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

/// A body decoded and validated: the valid events, each rejected event's
/// problems by index, and what decompression added to the body's size.
struct Decoded {
    events: Vec<Event>,
    errors: Vec<(usize, FieldProblem)>,
    rejected: u64,
    decompressed_bytes: usize,
}

/// Everything decoding needs, owned, so it can run on the blocking pool.
struct DecodeJob {
    body: Bytes,
    encoding: Option<String>,
    format: BodyFormat,
    max_body: usize,
    max_events: usize,
    limits: EventLimits,
    window: TimeWindow,
    metrics: Arc<crate::metrics::Metrics>,
}

impl DecodeJob {
    fn new(
        state: &AppState,
        r: &IngestRequest,
        req_headers: (Option<String>, BodyFormat),
        body: Bytes,
    ) -> Self {
        DecodeJob {
            body,
            encoding: req_headers.0,
            format: req_headers.1,
            max_body: state.config.server.max_body_bytes,
            max_events: state.config.ingest.max_batch_events,
            limits: event_limits(state),
            window: TimeWindow {
                now: Micros::now(),
                retention_days: r.retention_days,
            },
            metrics: state.metrics.clone(),
        }
    }

    /// Decompresses, parses (one event or a batch) and validates.
    fn run(self, single: bool) -> Result<Decoded, ApiError> {
        let bytes = decode::decompress(self.encoding.as_deref(), &self.body, self.max_body)?;
        let decompressed_bytes = match &bytes {
            std::borrow::Cow::Borrowed(_) => 0,
            std::borrow::Cow::Owned(v) => v.len(),
        };
        let mut out = Decoded {
            events: Vec::new(),
            errors: Vec::new(),
            rejected: 0,
            decompressed_bytes,
        };
        if single {
            let item = decode::parse_single(&bytes)?;
            match validate_item(item, &self.limits, &self.window) {
                Ok(ev) => out.events.push(ev),
                Err(problems) => {
                    self.metrics.record_rejected(reason(&problems), 1);
                    return Err(ApiError::validation(
                        problems
                            .into_iter()
                            .map(|pr| FieldError::new(pr.field, pr.message))
                            .collect(),
                    ));
                }
            }
            return Ok(out);
        }
        out.events = Vec::with_capacity((bytes.len() / 256).clamp(1, 4096));
        let mut index = 0usize;
        // Each element is typed as soon as it is parsed, so the raw form of
        // only one event exists at a time.
        let n = decode::for_each_item(&bytes, self.format, |item: Item| {
            match validate_item(item, &self.limits, &self.window) {
                Ok(ev) => out.events.push(ev),
                Err(problems) => {
                    out.rejected += 1;
                    self.metrics.record_rejected(reason(&problems), 1);
                    out.errors
                        .extend(problems.into_iter().map(|pr| (index, pr)));
                }
            }
            index += 1;
        })?;
        if n > self.max_events {
            return Err(
                ApiError::payload_too_large(self.max_body as u64).with_message(format!(
                    "a batch may hold at most {} events",
                    self.max_events
                )),
            );
        }
        Ok(out)
    }
}

/// Reads and decodes the body of an ingest request through the pipeline.
async fn read_and_decode(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    principal: &Principal,
    single: bool,
) -> Result<(IngestRequest, Decoded), ApiError> {
    let ing = &state.ingest;
    let mut r = ing.open(state, principal)?;
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = decode::body_format(header(CONTENT_TYPE), !single)?;
    let encoding = header(CONTENT_ENCODING).map(str::to_owned);
    let body = ing.read_body(state, &mut r, req).await?;
    let job = DecodeJob::new(state, &r, (encoding, format), body);
    let size = job.body.len();
    let decoded = ing.offload(size, move || job.run(single)).await??;
    ing.charge_decompressed(state, &mut r, decoded.decompressed_bytes)?;
    Ok((r, decoded))
}

/// `POST /api/v1/ingestion/events`: one event → `202 {"accepted": 1, "ids": [id]}`.
pub async fn handle_single(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let (mut r, decoded) = read_and_decode(&state, req, &principal, true).await?;
    let Some(event) = decoded.events.into_iter().next() else {
        return Err(ApiError::internal(
            "a valid single event decoded to nothing",
        ));
    };
    let id = state.ingest.submit_one(&state, &mut r, event).await?;
    let mut out = String::with_capacity(64);
    out.push_str("{\"accepted\":1,\"ids\":[\"");
    out.push_str(&id.to_hex());
    out.push_str("\"]}");
    Ok(r.with_rate_headers(http::text(StatusCode::ACCEPTED, "application/json", out)))
}

/// `POST /api/v1/ingestion/events/batch` → `200 {"accepted", "rejected", "errors"}`.
pub async fn handle_batch(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let (mut r, decoded) = read_and_decode(&state, req, &principal, false).await?;
    let Decoded {
        events,
        errors,
        rejected,
        ..
    } = decoded;
    let accepted = events.len();
    state.ingest.submit_batch(&state, &mut r, events).await?;
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
    Ok(r.with_rate_headers(http::text(StatusCode::OK, "application/json", out)))
}
