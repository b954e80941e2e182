//! Spans to events (contract section 4): each SERVER or CONSUMER span
//! becomes an `api_call` event; spans of other kinds are counted and left
//! out. Old and new HTTP semantic conventions both work:
//!
//! | event field | span or resource attribute (first found) |
//! |---|---|
//! | `service` | resource `service.name` |
//! | `endpoint` | `http.route`; else `url.path` / `http.target` / the path of `url.full` / `http.url`, with obvious ids templated (`/orders/123` → `/orders/{id}`); else `messaging.destination.name` (CONSUMER); else the span name |
//! | `method` | `http.request.method`, `http.method` |
//! | `status_code` | `http.response.status_code`, `http.status_code` |
//! | `latency_ms` | end − start |
//! | `timestamp` | start |
//! | `trace_id` | the span's trace id, lowercase hex |
//! | `user_id` | `user.id`, `enduser.id` |
//! | `request_bytes` / `response_bytes` | `http.request.body.size` / `http.request_content_length`, `http.response.body.size` / `http.response_content_length` |
//! | `region` | resource `cloud.region` |
//! | `message` | the status message |
//! | `attributes` | `span.name`, `otel.status_code`, the span's other scalar attributes, resource `service.version` and `deployment.environment(.name)`, at most `ingest.max_attributes` |
//!
//! A span with status ERROR counts as an error. Errors are counted by the
//! contract's one rule (`status_code >= 500`, or `event_type == "error"`
//! when no status is set), so: an ERROR span without an HTTP status becomes
//! an event with `event_type: "error"` and no `status_code` (all its other
//! api-call fields kept); one with an HTTP status keeps `api_call` and is an
//! error exactly when that status is (a server span whose 404 was marked
//! ERROR is the client's fault, not the service's, as the semantic
//! conventions say for server spans). Every ERROR span also gets
//! `severity: "error"` and `otel.status_code: "ERROR"`.
//!
//! Every event then passes the same validation as JSON events
//! (`ingest::validate`), so the limits and time window are the same; a span
//! that fails is rejected with its reason and the others are kept.

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use pulsestream_storage::{Event, Micros};

use crate::ingest::decode::{RawAttributes, RawEvent, Scalar};
use crate::ingest::validate::{EventLimits, TimeWindow, validate_event};

/// Reasons quoted in `partial_success.error_message`: enough to see what is
/// wrong, bounded so a request of 100 k bad spans answers a short message.
const MAX_REASONS: usize = 5;

/// Longest text kept from one attribute value: a stack trace's head or a
/// full URL fits; a multi-megabyte blob would only push the event past its
/// size limit and get the whole span rejected.
const MAX_ATTRIBUTE_TEXT: usize = 4096;

/// What a request mapped to.
#[derive(Debug, Default)]
pub struct Mapped {
    pub events: Vec<Event>,
    /// Spans that should have become events but were invalid.
    pub rejected: u64,
    /// Spans of kinds that do not become events (INTERNAL, CLIENT, ...).
    pub ignored: u64,
    /// The first few rejection reasons.
    pub reasons: Vec<String>,
}

impl Mapped {
    /// The `partial_success` message, if there is anything to say: the
    /// rejections, or (only when nothing was accepted) the ignored kinds.
    pub fn message(&self) -> Option<String> {
        if self.rejected > 0 {
            let mut m = format!(
                "{} spans rejected: {}",
                self.rejected,
                self.reasons.join("; ")
            );
            if self.rejected as usize > self.reasons.len() {
                m.push_str("; ...");
            }
            Some(m)
        } else if self.events.is_empty() && self.ignored > 0 {
            Some(format!(
                "{} spans ignored: only SERVER and CONSUMER spans become events",
                self.ignored
            ))
        } else {
            None
        }
    }
}

/// Maps every span of `req`.
pub fn map_request(
    req: &ExportTraceServiceRequest,
    limits: &EventLimits,
    window: &TimeWindow,
) -> Mapped {
    let mut out = Mapped::default();
    let mut index = 0usize;
    for rs in &req.resource_spans {
        let resource = ResourceInfo::of(rs.resource.as_ref().map(|r| &r.attributes[..]));
        for ss in &rs.scope_spans {
            out.events.reserve(ss.spans.len());
            for span in &ss.spans {
                let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
                if !matches!(kind, SpanKind::Server | SpanKind::Consumer) {
                    out.ignored += 1;
                } else {
                    match map_span(&resource, span, kind, limits, window) {
                        Ok(ev) => out.events.push(ev),
                        Err(reason) => {
                            out.rejected += 1;
                            if out.reasons.len() < MAX_REASONS {
                                out.reasons.push(format!("span {index}: {reason}"));
                            }
                        }
                    }
                }
                index += 1;
            }
        }
    }
    out
}

/// What the resource contributes to each of its spans.
#[derive(Default)]
struct ResourceInfo<'a> {
    service: Option<&'a str>,
    region: Option<&'a str>,
    extra: Vec<(&'a str, &'a AnyValue)>,
}

impl<'a> ResourceInfo<'a> {
    fn of(attrs: Option<&'a [KeyValue]>) -> Self {
        let mut r = ResourceInfo::default();
        for kv in attrs.unwrap_or_default() {
            let Some(v) = &kv.value else { continue };
            match kv.key.as_str() {
                "service.name" => r.service = str_of(v),
                "cloud.region" => r.region = str_of(v),
                "service.version" | "deployment.environment" | "deployment.environment.name" => {
                    r.extra.push((&kv.key, v))
                }
                _ => {}
            }
        }
        r
    }
}

fn str_of(v: &AnyValue) -> Option<&str> {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// An integer attribute, also from a decimal string (some SDKs send
/// status codes as strings).
fn int_of(v: &AnyValue) -> Option<i64> {
    match &v.value {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        Some(any_value::Value::DoubleValue(d)) if d.fract() == 0.0 && d.abs() < 9.0e15 => {
            Some(*d as i64)
        }
        Some(any_value::Value::StringValue(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The span's attributes sorted into the event's fields, both convention
/// generations at once (the newer name wins when both are present).
#[derive(Default)]
struct SpanFields<'a> {
    route: Option<&'a str>,
    path: Option<&'a str>,
    target: Option<&'a str>,
    url: Option<&'a str>,
    destination: Option<&'a str>,
    method: Option<&'a str>,
    old_method: Option<&'a str>,
    status: Option<&'a AnyValue>,
    old_status: Option<&'a AnyValue>,
    user: Option<&'a str>,
    request_bytes: Option<&'a AnyValue>,
    response_bytes: Option<&'a AnyValue>,
    rest: Vec<(&'a str, &'a AnyValue)>,
}

impl<'a> SpanFields<'a> {
    fn of(attrs: &'a [KeyValue]) -> Self {
        let mut f = SpanFields::default();
        for kv in attrs {
            let Some(v) = &kv.value else { continue };
            match kv.key.as_str() {
                "http.route" => f.route = str_of(v),
                "url.path" => f.path = str_of(v),
                "http.target" => f.target = str_of(v),
                "url.full" | "http.url" => f.url = f.url.or(str_of(v)),
                "messaging.destination.name" | "messaging.destination" => {
                    f.destination = f.destination.or(str_of(v))
                }
                "http.request.method" => f.method = str_of(v),
                "http.method" => f.old_method = str_of(v),
                "http.response.status_code" => f.status = Some(v),
                "http.status_code" => f.old_status = Some(v),
                "user.id" => f.user = str_of(v).or(f.user),
                "enduser.id" => f.user = f.user.or(str_of(v)),
                "http.request.body.size" | "http.request_content_length" => {
                    f.request_bytes = f.request_bytes.or(Some(v))
                }
                "http.response.body.size" | "http.response_content_length" => {
                    f.response_bytes = f.response_bytes.or(Some(v))
                }
                key => f.rest.push((key, v)),
            }
        }
        f
    }

    fn endpoint(&self, span: &'a Span, kind: SpanKind) -> Cow<'a, str> {
        if let Some(r) = self.route.filter(|r| !r.is_empty()) {
            return Cow::Borrowed(r);
        }
        let path = self
            .path
            .or(self.target)
            .or_else(|| self.url.map(path_of_url))
            .map(strip_query)
            .filter(|p| !p.is_empty());
        if let Some(p) = path {
            return template_path(p);
        }
        if kind == SpanKind::Consumer
            && let Some(d) = self.destination
        {
            return Cow::Borrowed(d);
        }
        Cow::Borrowed(&span.name)
    }
}

fn map_span(
    resource: &ResourceInfo<'_>,
    span: &Span,
    kind: SpanKind,
    limits: &EventLimits,
    window: &TimeWindow,
) -> Result<Event, String> {
    if span.start_time_unix_nano == 0 {
        return Err("no start time".into());
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err("ends before it starts".into());
    }
    let f = SpanFields::of(&span.attributes);
    let status = span.status.as_ref();
    let is_error_status = status.is_some_and(|s| s.code == StatusCode::Error as i32);
    let status_code = f.status.or(f.old_status).map(|v| match int_of(v) {
        Some(i) => Scalar::Int(i),
        // Reported by validation as "must be an integer between 100 and 599".
        None => Scalar::Str(Cow::Borrowed("")),
    });
    let event_type = if is_error_status && status_code.is_none() {
        "error"
    } else {
        "api_call"
    };
    let method = f
        .method
        .or(f.old_method)
        .filter(|m| pulsestream_storage::Method::parse(m).is_some());
    let endpoint = truncate(f.endpoint(span, kind), limits.max_endpoint);
    let message = status
        .map(|s| s.message.as_str())
        .filter(|m| !m.is_empty())
        .map(|m| truncate(Cow::Borrowed(m), limits.max_message));
    let trace_id = (!span.trace_id.is_empty() && span.trace_id.iter().any(|b| *b != 0))
        .then(|| hex::encode(&span.trace_id));

    let mut attrs: Vec<(Cow<'_, str>, Scalar<'_>)> = Vec::new();
    let mut approx = 256 + endpoint.len() + message.as_ref().map_or(0, |m| m.len());
    if !span.name.is_empty() {
        let name = truncate(Cow::Borrowed(&span.name), MAX_ATTRIBUTE_TEXT);
        approx += name.len() + 16;
        attrs.push((Cow::Borrowed("span.name"), Scalar::Str(name)));
    }
    let mut push =
        |attrs: &mut Vec<(Cow<'_, str>, Scalar<'_>)>, k: &'static str, v: Scalar<'static>| {
            approx += k.len() + 16;
            attrs.push((Cow::Borrowed(k), v));
        };
    if let Some(s) = status
        && s.code != StatusCode::Unset as i32
    {
        let name = if is_error_status { "ERROR" } else { "OK" };
        push(
            &mut attrs,
            "otel.status_code",
            Scalar::Str(Cow::Borrowed(name)),
        );
    }
    if kind == SpanKind::Consumer {
        push(
            &mut attrs,
            "span.kind",
            Scalar::Str(Cow::Borrowed("consumer")),
        );
    }
    for (k, v) in f.rest.iter().chain(resource.extra.iter()) {
        if attrs.len() >= limits.max_attributes {
            break;
        }
        if k.is_empty() || attrs.iter().any(|(have, _)| have == k) {
            continue;
        }
        if let Some(s) = scalar_of(v) {
            approx += k.len() + scalar_len(&s);
            attrs.push((Cow::Borrowed(*k), s));
        }
    }

    let raw = RawEvent {
        // Only the window is checked from here; the exact time is set below.
        timestamp: Some(Scalar::Int((span.start_time_unix_nano / 1_000_000) as i64)),
        event_type: Some(Scalar::Str(Cow::Borrowed(event_type))),
        service: resource.service.map(|s| Scalar::Str(Cow::Borrowed(s))),
        endpoint: Some(Scalar::Str(endpoint)),
        method: method.map(|m| Scalar::Str(Cow::Borrowed(m))),
        status_code,
        latency_ms: Some(Scalar::Float(
            (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6,
        )),
        severity: is_error_status.then_some(Scalar::Str(Cow::Borrowed("error"))),
        request_bytes: f.request_bytes.and_then(int_of).map(Scalar::Int),
        response_bytes: f.response_bytes.and_then(int_of).map(Scalar::Int),
        user_id: f.user.map(|u| Scalar::Str(Cow::Borrowed(u))),
        region: resource.region.map(|r| Scalar::Str(Cow::Borrowed(r))),
        trace_id: trace_id.map(|t| Scalar::Str(Cow::Owned(t))),
        message: message.map(Scalar::Str),
        attributes: Some(RawAttributes::Map(attrs)),
        approx_bytes: approx,
    };
    let mut ev = validate_event(raw, limits, window).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{} {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join(", ")
    })?;
    // Microsecond precision (the window check above saw milliseconds).
    ev.timestamp = Micros((span.start_time_unix_nano / 1_000) as i64);
    Ok(ev)
}

/// A scalar attribute value; arrays become their compact text, nested
/// lists and bytes are left out (no event field can show them).
fn scalar_of(v: &AnyValue) -> Option<Scalar<'_>> {
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => {
            Some(Scalar::Str(truncate(Cow::Borrowed(s), MAX_ATTRIBUTE_TEXT)))
        }
        any_value::Value::BoolValue(b) => Some(Scalar::Bool(*b)),
        any_value::Value::IntValue(i) => Some(Scalar::Int(*i)),
        any_value::Value::DoubleValue(d) if d.is_finite() => Some(Scalar::Float(*d)),
        any_value::Value::ArrayValue(a) => {
            let mut text = String::from("[");
            for (i, item) in a.values.iter().enumerate() {
                if text.len() > MAX_ATTRIBUTE_TEXT {
                    break;
                }
                if i > 0 {
                    text.push(',');
                }
                match item.value.as_ref() {
                    Some(any_value::Value::StringValue(s)) => {
                        crate::read::render::write_json_str(&mut text, s)
                    }
                    Some(any_value::Value::BoolValue(b)) => text.push_str(&b.to_string()),
                    Some(any_value::Value::IntValue(n)) => text.push_str(&n.to_string()),
                    Some(any_value::Value::DoubleValue(d)) if d.is_finite() => {
                        text.push_str(&d.to_string())
                    }
                    _ => text.push_str("null"),
                }
            }
            text.push(']');
            Some(Scalar::Str(truncate(Cow::Owned(text), MAX_ATTRIBUTE_TEXT)))
        }
        _ => None,
    }
}

fn scalar_len(s: &Scalar<'_>) -> usize {
    match s {
        Scalar::Str(s) => s.len() + 2,
        _ => 8,
    }
}

fn truncate(s: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return s;
    }
    Cow::Owned(truncate_str(&s, max))
}

fn truncate_str(s: &str, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The path of an absolute URL (`https://h:8080/a/b?q` → `/a/b?q`); a
/// relative one is returned as it is.
fn path_of_url(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => url,
    }
}

fn strip_query(p: &str) -> &str {
    let end = p.find(['?', '#']).unwrap_or(p.len());
    &p[..end]
}

/// Replaces path segments that are obviously ids with `{id}`, so
/// `/orders/8812/items` and `/orders/8813/items` are one endpoint.
pub fn template_path(path: &str) -> Cow<'_, str> {
    if !path.split('/').any(is_id) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(seg) { "{id}" } else { seg });
    }
    Cow::Owned(out)
}

/// Shortest segment of letters and digits taken for an opaque token
/// (ULIDs are 26, base62 keys 20 and more); shorter mixed segments such as
/// `v1` or `oauth2` are names.
const MIN_TOKEN_ID_LEN: usize = 16;

/// Shortest all-hex segment taken for an id (object ids are 24, hashes 32
/// and more); shorter ones such as `cafe` or `add` are words.
const MIN_HEX_ID_LEN: usize = 8;

fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let b = seg.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let is_uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if is_uuid {
        return true;
    }
    let has_digit = b.iter().any(u8::is_ascii_digit);
    if b.len() >= MIN_HEX_ID_LEN && has_digit && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    b.len() >= MIN_TOKEN_ID_LEN
        && has_digit
        && b.iter().any(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
    use pulsestream_storage::{AttrValue, Method};

    const NOW_NS: u64 = 1_800_000_000_000_000_000;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..KeyValue::default()
        }
    }
    fn s(k: &str, v: &str) -> KeyValue {
        kv(k, any_value::Value::StringValue(v.into()))
    }
    fn i(k: &str, v: i64) -> KeyValue {
        kv(k, any_value::Value::IntValue(v))
    }

    fn span(kind: SpanKind, attrs: Vec<KeyValue>, code: StatusCode) -> Span {
        Span {
            trace_id: vec![0x4b; 16],
            span_id: vec![1; 8],
            name: "GET /orders/{id}".into(),
            kind: kind as i32,
            start_time_unix_nano: NOW_NS - 5_000_000_000,
            end_time_unix_nano: NOW_NS - 5_000_000_000 + 42_500_000,
            attributes: attrs,
            status: Some(Status {
                message: if code == StatusCode::Error {
                    "boom".into()
                } else {
                    String::new()
                },
                code: code as i32,
            }),
            ..Span::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        s("service.name", "checkout"),
                        s("cloud.region", "eu-west-1"),
                        s("service.version", "1.4.2"),
                        s("host.name", "not-copied"),
                    ],
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

    fn map(spans: Vec<Span>) -> Mapped {
        let window = TimeWindow {
            now: Micros((NOW_NS / 1000) as i64),
            retention_days: 30,
        };
        map_request(&request(spans), &EventLimits::default(), &window)
    }

    fn attr<'a>(ev: &'a Event, k: &str) -> Option<&'a AttrValue> {
        ev.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v)
    }

    #[test]
    fn new_conventions_map_to_every_field() {
        let m = map(vec![span(
            SpanKind::Server,
            vec![
                s("http.route", "/orders/{id}"),
                s("url.path", "/orders/7"),
                s("http.request.method", "POST"),
                i("http.response.status_code", 201),
                s("user.id", "u-1842"),
                i("http.request.body.size", 512),
                i("http.response.body.size", 2048),
                s("customer.tier", "gold"),
                kv("retry", any_value::Value::BoolValue(false)),
            ],
            StatusCode::Unset,
        )]);
        assert_eq!((m.rejected, m.ignored, m.events.len()), (0, 0, 1));
        let ev = &m.events[0];
        assert_eq!(ev.event_type, "api_call");
        assert_eq!(ev.service.as_deref(), Some("checkout"));
        assert_eq!(ev.endpoint.as_deref(), Some("/orders/{id}"));
        assert_eq!(ev.method, Some(Method::Post));
        assert_eq!(ev.status_code, Some(201));
        assert_eq!(ev.latency_ms, Some(42.5));
        assert_eq!(ev.timestamp.0, ((NOW_NS - 5_000_000_000) / 1000) as i64);
        assert_eq!(ev.trace_id.as_deref(), Some("4b".repeat(16).as_str()));
        assert_eq!(ev.user_id.as_deref(), Some("u-1842"));
        assert_eq!(
            (ev.request_bytes, ev.response_bytes),
            (Some(512), Some(2048))
        );
        assert_eq!(ev.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            attr(ev, "customer.tier"),
            Some(&AttrValue::Str("gold".into()))
        );
        assert_eq!(attr(ev, "retry"), Some(&AttrValue::Bool(false)));
        assert_eq!(
            attr(ev, "service.version"),
            Some(&AttrValue::Str("1.4.2".into()))
        );
        assert_eq!(
            attr(ev, "span.name"),
            Some(&AttrValue::Str("GET /orders/{id}".into()))
        );
        assert!(attr(ev, "host.name").is_none());
        // Mapped fields are not repeated as attributes.
        assert!(attr(ev, "http.route").is_none());
        assert!(!ev.is_error());
    }

    #[test]
    fn old_conventions_map_too_with_ids_templated() {
        let m = map(vec![span(
            SpanKind::Server,
            vec![
                s(
                    "http.target",
                    "/users/12345/orders/0f8fad5b-d9cb-469f-a165-70867728950e?x=1",
                ),
                s("http.method", "GET"),
                s("http.status_code", "503"),
                s("enduser.id", "alice"),
                i("http.response_content_length", 99),
            ],
            StatusCode::Error,
        )]);
        assert_eq!(m.events.len(), 1, "{:?}", m.reasons);
        let ev = &m.events[0];
        assert_eq!(ev.endpoint.as_deref(), Some("/users/{id}/orders/{id}"));
        assert_eq!(ev.method, Some(Method::Get));
        assert_eq!(ev.status_code, Some(503));
        assert_eq!(ev.user_id.as_deref(), Some("alice"));
        assert_eq!(ev.response_bytes, Some(99));
        // ERROR with an HTTP status: the status decides, the event stays an api_call.
        assert_eq!(ev.event_type, "api_call");
        assert!(ev.is_error());
        assert_eq!(ev.message.as_deref(), Some("boom"));
    }

    #[test]
    fn error_status_without_http_status_counts_as_error() {
        let m = map(vec![span(
            SpanKind::Server,
            vec![s("http.route", "/pay"), s("http.request.method", "POST")],
            StatusCode::Error,
        )]);
        let ev = &m.events[0];
        assert_eq!(ev.status_code, None);
        assert_eq!(ev.event_type, "error");
        assert!(ev.is_error());
        assert_eq!(ev.endpoint.as_deref(), Some("/pay"));
        assert_eq!(ev.method, Some(Method::Post));
        assert_eq!(ev.latency_ms, Some(42.5));
        assert_eq!(
            attr(ev, "otel.status_code"),
            Some(&AttrValue::Str("ERROR".into()))
        );
        assert_eq!(ev.severity, Some(pulsestream_storage::Severity::Error));
    }

    #[test]
    fn other_kinds_are_ignored_and_consumers_kept() {
        let m = map(vec![
            span(SpanKind::Client, vec![], StatusCode::Unset),
            span(SpanKind::Internal, vec![], StatusCode::Unset),
            span(
                SpanKind::Consumer,
                vec![s("messaging.destination.name", "orders")],
                StatusCode::Ok,
            ),
        ]);
        assert_eq!((m.events.len(), m.ignored, m.rejected), (1, 2, 0));
        assert_eq!(m.events[0].endpoint.as_deref(), Some("orders"));
        assert_eq!(m.message(), None);
        let m = map(vec![span(SpanKind::Client, vec![], StatusCode::Unset)]);
        assert!(m.message().expect("said").contains("1 spans ignored"));
    }

    #[test]
    fn invalid_spans_are_rejected_with_reasons_and_others_kept() {
        let mut no_start = span(SpanKind::Server, vec![], StatusCode::Unset);
        no_start.start_time_unix_nano = 0;
        let mut backwards = span(SpanKind::Server, vec![], StatusCode::Unset);
        backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
        let bad_status = span(
            SpanKind::Server,
            vec![i("http.response.status_code", 999)],
            StatusCode::Unset,
        );
        let mut too_old = span(SpanKind::Server, vec![], StatusCode::Unset);
        too_old.start_time_unix_nano = 1_000_000_000;
        too_old.end_time_unix_nano = 2_000_000_000;
        let good = span(SpanKind::Server, vec![], StatusCode::Unset);
        let m = map(vec![no_start, backwards, bad_status, too_old, good]);
        assert_eq!((m.events.len(), m.rejected), (1, 4));
        let msg = m.message().expect("message");
        assert!(msg.starts_with("4 spans rejected"), "{msg}");
        assert!(msg.contains("span 0: no start time"), "{msg}");
        assert!(msg.contains("span 1: ends before it starts"), "{msg}");
        assert!(msg.contains("span 2: status_code"), "{msg}");
        assert!(msg.contains("span 3: timestamp"), "{msg}");
    }

    #[test]
    fn attributes_are_bounded() {
        let attrs = (0..500).map(|n| i(&format!("k{n}"), n)).collect();
        let m = map(vec![span(SpanKind::Server, attrs, StatusCode::Unset)]);
        assert_eq!(m.events.len(), 1, "{:?}", m.reasons);
        assert_eq!(
            m.events[0].attributes.len(),
            EventLimits::default().max_attributes
        );
    }

    #[test]
    fn templating_keeps_names_and_replaces_ids() {
        for (path, want) in [
            ("/api/v1/orders/123", "/api/v1/orders/{id}"),
            ("/api/v2/oauth2/token", "/api/v2/oauth2/token"),
            ("/files/5f2b7c1e9d3a4b6c8e0f1a2b", "/files/{id}"),
            ("/u/01HF8Z3K4M5N6P7Q8R9S0T1V2W/feed", "/u/{id}/feed"),
            ("/cafe/add", "/cafe/add"),
            ("/", "/"),
        ] {
            assert_eq!(template_path(path), want, "{path}");
        }
        assert_eq!(path_of_url("https://h:8080/a/1?q=2"), "/a/1?q=2");
        assert_eq!(path_of_url("https://h"), "/");
    }
}
