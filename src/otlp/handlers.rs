//! `POST /v1/traces`: OTLP/HTTP trace export (contract section 4). A
//! transport like the JSON endpoints: the body goes through the ingest
//! pipeline (budget, deadline, rate limit, durable append, observers), only
//! decoding and mapping are OTLP's own.
//!
//! The answer is the OTLP `ExportTraceServiceResponse` in the request's
//! encoding, with `partial_success` when spans were rejected (count and
//! reasons) or when nothing was accepted because every span was of a kind
//! that does not become an event. Refusals of the whole request use the
//! contract's error body and statuses, like every other endpoint.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use hyper::{Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use pulsestream_storage::Micros;

use super::decode::{self, Encoding, OtlpDecodeError};
use super::map::{Mapped, map_request};
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, HttpResponse};
use crate::ingest::validate::{EventLimits, TimeWindow};

impl From<OtlpDecodeError> for ApiError {
    fn from(e: OtlpDecodeError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// `POST /v1/traces`.
pub async fn handle_traces(
    state: Arc<AppState>,
    req: Request<Incoming>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let ing = &state.ingest;
    let mut r = ing.open(&state, &principal)?;
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let ct = header(CONTENT_TYPE);
    let encoding = Encoding::from_content_type(ct).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "expected application/x-protobuf or application/json, got {}",
            ct.unwrap_or("no content type")
        ))
    })?;
    let content_encoding = header(CONTENT_ENCODING).map(str::to_owned);
    let body = ing.read_body(&state, &mut r, req).await?;

    let c = &state.config.ingest;
    let limits = EventLimits {
        max_service: c.max_service_bytes,
        max_endpoint: c.max_endpoint_bytes,
        max_message: c.max_message_bytes,
        max_attributes: c.max_attributes,
        max_event_bytes: c.max_event_bytes,
    };
    let window = TimeWindow {
        now: Micros::now(),
        retention_days: r.retention_days,
    };
    let max_body = state.config.server.max_body_bytes;
    let max_spans = c.max_batch_events;
    let size = body.len();
    let (mapped, decompressed) = ing
        .offload(size, move || -> Result<(Mapped, usize), ApiError> {
            let bytes =
                crate::ingest::decode::decompress(content_encoding.as_deref(), &body, max_body)?;
            let decompressed = match &bytes {
                std::borrow::Cow::Borrowed(_) => 0,
                std::borrow::Cow::Owned(v) => v.len(),
            };
            let request = decode::decode(&bytes, encoding, max_spans)?;
            Ok((map_request(&request, &limits, &window), decompressed))
        })
        .await??;
    ing.charge_decompressed(&state, &mut r, decompressed)?;
    if mapped.rejected > 0 {
        state.metrics.record_rejected("validation", mapped.rejected);
    }
    let message = mapped.message();
    let rejected = mapped.rejected;
    ing.submit_batch(&state, &mut r, mapped.events).await?;
    let resp = ExportTraceServiceResponse {
        partial_success: message.map(|error_message| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message,
        }),
    };
    Ok(r.with_rate_headers(encode_response(&resp, encoding)))
}

/// The response message in the request's encoding.
fn encode_response(resp: &ExportTraceServiceResponse, encoding: Encoding) -> HttpResponse {
    let body = match encoding {
        Encoding::Protobuf => resp.encode_to_vec(),
        Encoding::Json => json_response(resp).into_bytes(),
    };
    http::text(StatusCode::OK, encoding.content_type(), body)
}

/// OTLP JSON of the response: `{}` on full success, else
/// `{"partialSuccess":{"rejectedSpans":"N","errorMessage":"..."}}` (64-bit
/// integers as strings, as the OTLP JSON mapping writes them).
fn json_response(resp: &ExportTraceServiceResponse) -> String {
    let Some(p) = &resp.partial_success else {
        return "{}".to_owned();
    };
    let mut out = format!(
        "{{\"partialSuccess\":{{\"rejectedSpans\":\"{}\",\"errorMessage\":",
        p.rejected_spans
    );
    crate::read::render::write_json_str(&mut out, &p.error_message);
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_response_shapes() {
        assert_eq!(json_response(&ExportTraceServiceResponse::default()), "{}");
        let r = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "2 spans \"bad\"".into(),
            }),
        };
        let v: serde_json::Value = serde_json::from_str(&json_response(&r)).expect("json");
        assert_eq!(v["partialSuccess"]["rejectedSpans"], "2");
        assert_eq!(v["partialSuccess"]["errorMessage"], "2 spans \"bad\"");
    }
}
