//! `POST /v1/traces` over real HTTP (contract section 4): protobuf and
//! JSON, gzip, API key auth, partial success, whole-request refusals, and
//! the events as search and statistics show them.

mod common;

use std::io::Write;

use common::TestServer;
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

fn now_ns() -> u64 {
    (pulsestream_storage::Micros::now().0 as u64) * 1000
}

fn str_attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..KeyValue::default()
    }
}

fn int_attr(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..KeyValue::default()
    }
}

/// A SERVER span that ended 2 s ago and took `ms` milliseconds.
fn server_span(attrs: Vec<KeyValue>, ms: u64, error: bool) -> Span {
    let end = now_ns() - 2_000_000_000;
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![1; 8],
        name: "request".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: end - ms * 1_000_000,
        end_time_unix_nano: end,
        attributes: attrs,
        status: error.then(|| Status {
            message: "failed".into(),
            code: StatusCode::Error as i32,
        }),
        ..Span::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![str_attr("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

async fn post(s: &TestServer, key: &str, ct: &str, body: Vec<u8>) -> common::Resp {
    s.req(
        "POST",
        "/v1/traces",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", ct),
        ],
        body,
    )
    .await
}

async fn search(s: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let r = s
        .req(
            "GET",
            &format!("/api/v1/ingestion/events/search?{query}"),
            &[("x-api-key", key)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["events"].as_array().expect("events").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_spans_become_events_with_their_fields() {
    let s = TestServer::start().await;
    let t = s.tenant("otel").await;
    let req = request(
        "checkout",
        vec![
            server_span(
                vec![
                    str_attr("http.route", "/orders/{id}"),
                    str_attr("http.request.method", "POST"),
                    int_attr("http.response.status_code", 201),
                    str_attr("user.id", "u-7"),
                ],
                40,
                false,
            ),
            // Old conventions, id in the path templated.
            server_span(
                vec![
                    str_attr("http.target", "/orders/991?x=1"),
                    str_attr("http.method", "GET"),
                    int_attr("http.status_code", 503),
                ],
                120,
                true,
            ),
            // ERROR without an HTTP status: an error event without status_code.
            server_span(vec![str_attr("http.route", "/pay")], 80, true),
            // A CLIENT span: counted and ignored.
            Span {
                kind: SpanKind::Client as i32,
                ..server_span(vec![], 5, false)
            },
        ],
    );
    let r = post(
        &s,
        &t.ingest_key,
        "application/x-protobuf",
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    let resp = ExportTraceServiceResponse::decode(r.body.clone()).expect("OTLP response");
    assert_eq!(resp.partial_success, None);

    let events = search(&s, &t.read_key, "service=checkout&limit=10").await;
    assert_eq!(events.len(), 3, "{events:?}");
    let by_endpoint = |e: &str| {
        events
            .iter()
            .find(|v| v["endpoint"] == e)
            .unwrap_or_else(|| panic!("no event for {e}: {events:?}"))
            .clone()
    };
    let a = by_endpoint("/orders/{id}");
    assert_eq!(a["event_type"], "api_call");
    assert_eq!(a["method"], "POST");
    assert_eq!(a["status_code"], 201);
    assert_eq!(a["latency_ms"], 40.0);
    assert_eq!(a["user_id"], "u-7");
    assert_eq!(a["trace_id"], "ab".repeat(16));
    let b = events
        .iter()
        .find(|v| v["status_code"] == 503)
        .expect("503 event");
    assert_eq!(b["endpoint"], "/orders/{id}");
    assert_eq!(b["method"], "GET");
    let c = by_endpoint("/pay");
    assert_eq!(c["event_type"], "error");
    assert!(c.get("status_code").is_none_or(Value::is_null), "{c}");
    assert_eq!(c["latency_ms"], 80.0);

    let st = s
        .req(
            "GET",
            "/api/v1/ingestion/events/statistics?service=checkout",
            &[("x-api-key", &t.read_key)],
            "",
        )
        .await
        .json();
    assert_eq!(st["total"], 3, "{st}");
    // The 503 and the ERROR span without status are errors; the 201 is not.
    let rate = st["error_rate"].as_f64().expect("rate");
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{st}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_gzip_with_partial_success() {
    let s = TestServer::start().await;
    let t = s.tenant("otel-json").await;
    let end = now_ns() - 1_000_000_000;
    let body = json!({"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
    "scopeSpans": [{"scope": {"name": "test"}, "spans": [
        {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
         "name": "GET /items", "kind": "SPAN_KIND_SERVER",
         "startTimeUnixNano": (end - 12_000_000).to_string(), "endTimeUnixNano": end.to_string(),
         "attributes": [{"key": "http.route", "value": {"stringValue": "/items"}},
                        {"key": "http.response.status_code", "value": {"intValue": "200"}},
                        {"key": "http.request.method", "value": {"stringValue": "GET"}}],
         "status": {}},
        {"name": "bad", "kind": 2, "startTimeUnixNano": end.to_string(), "endTimeUnixNano": "1"}
    ]}]}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.to_string().as_bytes()).expect("gzip");
    let r = s
        .req(
            "POST",
            "/v1/traces",
            &[
                ("x-api-key", &t.ingest_key),
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gz.finish().expect("gzip"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    let msg = v["partialSuccess"]["errorMessage"]
        .as_str()
        .expect("message");
    assert!(msg.contains("ends before it starts"), "{msg}");
    let events = search(&s, &t.read_key, "service=web").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["endpoint"], "/items");
    assert_eq!(events[0]["status_code"], 200);
    assert_eq!(events[0]["latency_ms"], 12.0);
    assert_eq!(events[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // Only ignored kinds: said in partial_success, nothing stored.
    let only_client = request(
        "web",
        vec![Span {
            kind: SpanKind::Client as i32,
            ..server_span(vec![], 1, false)
        }],
    );
    let r = post(
        &s,
        &t.ingest_key,
        "application/x-protobuf",
        only_client.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    let resp = ExportTraceServiceResponse::decode(r.body.clone()).expect("response");
    let p = resp.partial_success.expect("partial success");
    assert_eq!(p.rejected_spans, 0);
    assert!(p.error_message.contains("ignored"), "{}", p.error_message);
    assert_eq!(s.count_events(&t.read_key).await, Some(1));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_request_refusals() {
    let s = TestServer::start().await;
    let t = s.tenant("otel-bad").await;
    let good = request("x", vec![server_span(vec![], 1, false)]).encode_to_vec();

    let r = s
        .req(
            "POST",
            "/v1/traces",
            &[("content-type", "application/x-protobuf")],
            good.clone(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"));
    let r = post(&s, &t.read_key, "application/x-protobuf", good.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(&s, &t.ingest_key, "text/plain", good.clone()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    let r = post(
        &s,
        &t.ingest_key,
        "application/x-protobuf",
        good[..good.len() - 3].to_vec(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("protobuf")
    );
    let r = post(
        &s,
        &t.ingest_key,
        "application/json",
        br#"{"resourceSpans": {"no": 1}}"#.to_vec(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    let r = s
        .req("GET", "/v1/traces", &[("x-api-key", &t.ingest_key)], "")
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(s.count_events(&t.read_key).await.unwrap_or(0), 0);
    s.stop().await;
}
