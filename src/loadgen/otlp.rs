//! OTLP trace bodies for the load generator: the model's events (the same
//! traffic as the JSON modes) turned into SERVER spans, one resource per
//! service, encoded as protobuf or OTLP JSON.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use prost::Message;
use serde_json::{Value, json};

use super::Rng;

/// The OTLP encoding a load run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

impl OtlpEncoding {
    pub fn content_type(self) -> &'static str {
        match self {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }
}

fn attr(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn text(key: &str, v: &Value) -> Option<KeyValue> {
    v.as_str()
        .map(|s| attr(key, any_value::Value::StringValue(s.to_owned())))
}

/// One span per event of `events_json` (a JSON array the model wrote).
fn spans_by_service(events_json: &str, rng: &mut Rng) -> Vec<(String, Vec<Span>)> {
    let events: Vec<Value> = serde_json::from_str(events_json).unwrap_or_default();
    let mut out: Vec<(String, Vec<Span>)> = Vec::new();
    for e in events {
        let ts_ms = e["timestamp"]
            .as_str()
            .and_then(|t| crate::read::timeparse::parse_rfc3339(t).ok())
            .map_or(0, |m| m.0 / 1000);
        let start = (ts_ms.max(0) as u64) * 1_000_000;
        let lat_ns = (e["latency_ms"].as_f64().unwrap_or(0.0) * 1e6) as u64;
        let status = e["status_code"].as_i64().unwrap_or(200);
        let error = status >= 500 || e["event_type"] == "error";
        let mut attributes: Vec<KeyValue> = [
            text("http.route", &e["endpoint"]),
            text("http.request.method", &e["method"]),
            text("user.id", &e["user_id"]),
            text("customer_tier", &e["attributes"]["customer_tier"]),
            text("version", &e["attributes"]["version"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        attributes.push(attr(
            "http.response.status_code",
            any_value::Value::IntValue(status),
        ));
        let trace_id = e["trace_id"]
            .as_str()
            .and_then(|t| hex::decode(t).ok())
            .unwrap_or_default();
        let span = Span {
            trace_id,
            span_id: rng.next_u64().to_be_bytes().to_vec(),
            name: format!(
                "{} {}",
                e["method"].as_str().unwrap_or("GET"),
                e["endpoint"].as_str().unwrap_or("/")
            ),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + lat_ns,
            attributes,
            status: error.then(|| Status {
                message: e["message"].as_str().unwrap_or_default().to_owned(),
                code: StatusCode::Error as i32,
            }),
            ..Span::default()
        };
        let service = e["service"].as_str().unwrap_or("unknown").to_owned();
        match out.iter_mut().find(|(s, _)| *s == service) {
            Some((_, spans)) => spans.push(span),
            None => out.push((service, vec![span])),
        }
    }
    out
}

/// A request body of the spans of `events_json` in `encoding`.
pub fn body(events_json: &str, rng: &mut Rng, encoding: OtlpEncoding) -> Vec<u8> {
    let groups = spans_by_service(events_json, rng);
    match encoding {
        OtlpEncoding::Protobuf => ExportTraceServiceRequest {
            resource_spans: groups
                .into_iter()
                .map(|(service, spans)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![attr(
                            "service.name",
                            any_value::Value::StringValue(service),
                        )],
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                })
                .collect(),
        }
        .encode_to_vec(),
        OtlpEncoding::Json => {
            let resource_spans: Vec<Value> = groups
                .into_iter()
                .map(|(service, spans)| {
                    json!({
                        "resource": {"attributes": [
                            {"key": "service.name", "value": {"stringValue": service}}]},
                        "scopeSpans": [{"scope": {"name": "pulsestream-loadgen"},
                                        "spans": spans.iter().map(span_json).collect::<Vec<_>>()}]
                    })
                })
                .collect();
            json!({ "resourceSpans": resource_spans })
                .to_string()
                .into_bytes()
        }
    }
}

/// A span in the OTLP JSON mapping, as the OpenTelemetry SDKs write it.
fn span_json(s: &Span) -> Value {
    let attrs: Vec<Value> = s
        .attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
                Some(any_value::Value::StringValue(t)) => json!({"stringValue": t}),
                _ => json!({}),
            };
            json!({"key": kv.key, "value": v})
        })
        .collect();
    let mut v = json!({
        "traceId": hex::encode(&s.trace_id),
        "spanId": hex::encode(&s.span_id),
        "name": s.name,
        "kind": s.kind,
        "startTimeUnixNano": s.start_time_unix_nano.to_string(),
        "endTimeUnixNano": s.end_time_unix_nano.to_string(),
        "attributes": attrs,
        "status": {},
    });
    if let Some(st) = &s.status {
        v["status"] = json!({"code": st.code, "message": st.message});
    }
    v
}

/// Spans accepted by an OTLP answer to a request of `sent` spans: all but
/// `partial_success.rejected_spans`.
pub fn accepted(sent: u64, body: &[u8], encoding: OtlpEncoding) -> (u64, u64) {
    let rejected = match encoding {
        OtlpEncoding::Protobuf => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map_or(0, |p| p.rejected_spans.max(0) as u64),
        OtlpEncoding::Json => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                let r = &v["partialSuccess"]["rejectedSpans"];
                r.as_u64()
                    .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0),
    };
    (sent.saturating_sub(rejected), rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::validate::{EventLimits, TimeWindow};
    use crate::otlp::decode::{Encoding, decode};
    use crate::otlp::map::map_request;
    use pulsestream_storage::Micros;

    #[test]
    fn generated_spans_map_back_to_the_models_events() {
        let mut rng = Rng::new(7);
        let model = super::super::Model::new(&mut rng);
        let now = Micros::now();
        let events = model.body(&mut rng, 200, now, false);
        let window = TimeWindow {
            now,
            retention_days: 30,
        };
        for (enc, dec) in [
            (OtlpEncoding::Protobuf, Encoding::Protobuf),
            (OtlpEncoding::Json, Encoding::Json),
        ] {
            let b = body(&events, &mut rng, enc);
            let req = decode(&b, dec, 1000).expect("decodes");
            let m = map_request(&req, &EventLimits::default(), &window);
            assert_eq!((m.events.len(), m.rejected), (200, 0), "{:?}", m.reasons);
        }
    }
}
