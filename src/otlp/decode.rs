//! OTLP/HTTP trace request bodies: protobuf (the published proto messages,
//! decoded with prost) and the OTLP JSON mapping (hex trace and span ids,
//! 64-bit integers as numbers or decimal strings, lowerCamelCase or the
//! proto's snake_case field names, enum values as numbers or names), both
//! into the same `ExportTraceServiceRequest`, so mapping is written once.
//!
//! Bounds are checked here, before mapping: spans per request, attributes
//! per span and nesting of attribute values. A body that breaks one, or is
//! not a valid message at all, is refused whole (400) and nothing is
//! stored. Everything here is a pure function of bytes and never panics;
//! the fuzz target `otlp_traces` holds it to that.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use prost::Message;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::bounds::{self, Counted};

/// Attributes one span or resource may carry. SDKs cap spans at 128 by
/// default; 1,024 leaves room for generous configurations while a map of
/// millions (a few MiB of protobuf) is refused before it is walked.
pub const MAX_ATTRIBUTES_PER_SPAN: usize = 1024;

/// Nesting of attribute values (arrays and key-value lists in each other).
/// Real instrumentation nests one or two levels; deeper is refused so no
/// walk over a value can recurse without bound.
pub const MAX_VALUE_DEPTH: usize = 8;

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` value; `None` for anything else (415).
    pub fn from_content_type(ct: Option<&str>) -> Option<Encoding> {
        let essence = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Why a body was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpDecodeError {
    /// Not a valid protobuf `ExportTraceServiceRequest`.
    #[error("invalid OTLP protobuf body: {0}")]
    Protobuf(String),
    /// Not valid OTLP JSON (syntax, or a member of the wrong type).
    #[error("invalid OTLP JSON body: {0}")]
    Json(String),
    /// More spans than one request may carry.
    #[error("a request may hold at most {limit} spans, this one holds {found}")]
    TooManySpans { limit: usize, found: usize },
    /// A span or resource with too many attributes.
    #[error("{what} has {found} attributes, at most {MAX_ATTRIBUTES_PER_SPAN} are accepted")]
    TooManyAttributes { what: &'static str, found: usize },
    /// Attribute values nested too deeply.
    #[error("attribute `{key}` nests values deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep { key: String },
    /// Messages nested too deeply to be OTLP traces with bounded values.
    #[error(
        "the body nests messages deeper than OTLP traces with values of at most {MAX_VALUE_DEPTH} levels"
    )]
    NestedTooDeep,
    /// More spans, span events, links, attributes and values together than
    /// one request may carry.
    #[error(
        "a request may hold at most {limit} spans, events, links, attributes and values together"
    )]
    TooManyElements { limit: usize },
}

/// Decodes a (decompressed) body and checks its bounds; `max_spans` is the
/// batch limit of the ingest configuration.
pub fn decode(
    body: &[u8],
    encoding: Encoding,
    max_spans: usize,
) -> Result<ExportTraceServiceRequest, OtlpDecodeError> {
    let req = match encoding {
        Encoding::Protobuf => {
            // Counted on the wire first: prost would allocate every empty
            // span or value (two bytes each on the wire) before any check.
            bounds::prescan_protobuf(body, max_spans)?;
            ExportTraceServiceRequest::decode(body)
                .map_err(|e| OtlpDecodeError::Protobuf(e.to_string()))?
        }
        Encoding::Json => {
            bounds::with_json_budget(max_spans, || serde_json::from_slice::<JRequest>(body))
                .map_err(|e| match bounds::json_budget_error(&e, max_spans) {
                    Some(limit) => limit,
                    None => OtlpDecodeError::Json(e.to_string()),
                })?
                .into_proto()
        }
    };
    check_bounds(&req, max_spans)?;
    Ok(req)
}

fn check_bounds(req: &ExportTraceServiceRequest, max_spans: usize) -> Result<(), OtlpDecodeError> {
    let mut spans = 0usize;
    for rs in &req.resource_spans {
        if let Some(r) = &rs.resource {
            check_attributes("the resource", &r.attributes)?;
        }
        for ss in &rs.scope_spans {
            spans = spans.saturating_add(ss.spans.len());
            for s in &ss.spans {
                check_attributes("a span", &s.attributes)?;
            }
        }
    }
    if spans > max_spans {
        return Err(OtlpDecodeError::TooManySpans {
            limit: max_spans,
            found: spans,
        });
    }
    Ok(())
}

fn check_attributes(what: &'static str, attrs: &[KeyValue]) -> Result<(), OtlpDecodeError> {
    if attrs.len() > MAX_ATTRIBUTES_PER_SPAN {
        return Err(OtlpDecodeError::TooManyAttributes {
            what,
            found: attrs.len(),
        });
    }
    for kv in attrs {
        if let Some(v) = &kv.value
            && depth(v, 0) > MAX_VALUE_DEPTH
        {
            return Err(OtlpDecodeError::TooDeep {
                key: kv.key.chars().take(64).collect(),
            });
        }
    }
    Ok(())
}

/// Nesting depth of a value, stopping as soon as it passes the limit (so
/// the walk itself is bounded by `MAX_VALUE_DEPTH` frames).
fn depth(v: &AnyValue, level: usize) -> usize {
    if level > MAX_VALUE_DEPTH {
        return level;
    }
    let children: Box<dyn Iterator<Item = &AnyValue>> = match &v.value {
        Some(any_value::Value::ArrayValue(a)) => Box::new(a.values.iter()),
        Some(any_value::Value::KvlistValue(l)) => {
            Box::new(l.values.iter().filter_map(|kv| kv.value.as_ref()))
        }
        _ => return level + 1,
    };
    let mut deepest = level + 1;
    for c in children {
        deepest = deepest.max(depth(c, level + 1));
        if deepest > MAX_VALUE_DEPTH {
            break;
        }
    }
    deepest
}

// ---- The OTLP JSON mapping (proto3 JSON with OTLP's exceptions). Unknown
// members are ignored, as the protocol asks of receivers.

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JRequest {
    #[serde(alias = "resource_spans")]
    resource_spans: Vec<JResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JResourceSpans {
    resource: Option<JResource>,
    #[serde(alias = "scope_spans")]
    scope_spans: Vec<JScopeSpans>,
    #[serde(alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JResource {
    attributes: Vec<Counted<JKeyValue>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JScopeSpans {
    spans: Vec<Counted<JSpan>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JSpan {
    #[serde(alias = "trace_id")]
    trace_id: JHexId,
    #[serde(alias = "span_id")]
    span_id: JHexId,
    #[serde(alias = "parent_span_id")]
    parent_span_id: JHexId,
    name: String,
    kind: JEnum,
    #[serde(alias = "start_time_unix_nano")]
    start_time_unix_nano: JU64,
    #[serde(alias = "end_time_unix_nano")]
    end_time_unix_nano: JU64,
    attributes: Vec<Counted<JKeyValue>>,
    status: Option<JStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JStatus {
    message: String,
    code: JEnum,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JKeyValue {
    key: String,
    value: Option<Counted<JAnyValue>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JAnyValue {
    #[serde(alias = "string_value")]
    string_value: Option<String>,
    #[serde(alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(alias = "int_value")]
    int_value: Option<JI64>,
    #[serde(alias = "double_value")]
    double_value: Option<f64>,
    #[serde(alias = "array_value")]
    array_value: Option<JArray>,
    #[serde(alias = "kvlist_value")]
    kvlist_value: Option<JKvList>,
    #[serde(alias = "bytes_value")]
    bytes_value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JArray {
    values: Vec<Counted<JAnyValue>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JKvList {
    values: Vec<Counted<JKeyValue>>,
}

impl bounds::Cost for JSpan {
    const IS_SPAN: bool = true;
}
impl bounds::Cost for JKeyValue {
    const IS_SPAN: bool = false;
}
impl bounds::Cost for JAnyValue {
    const IS_SPAN: bool = false;
}

/// A trace or span id: hex in OTLP JSON (empty or absent means none).
#[derive(Default)]
struct JHexId(Vec<u8>);

impl<'de> Deserialize<'de> for JHexId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
        match s {
            None => Ok(JHexId(Vec::new())),
            Some(s) => hex::decode(s.as_ref())
                .map(JHexId)
                .map_err(|_| de::Error::custom(format!("`{}` is not a hex id", short(&s)))),
        }
    }
}

/// An enum value: its number, or its name (`SPAN_KIND_SERVER`).
#[derive(Default, Clone, Copy)]
struct JEnum(Option<i32>, Option<EnumName>);

#[derive(Clone, Copy)]
enum EnumName {
    Kind(SpanKind),
    Status(StatusCode),
}

impl JEnum {
    fn value(self) -> i32 {
        match (self.0, self.1) {
            (Some(n), _) => n,
            (None, Some(EnumName::Kind(k))) => k as i32,
            (None, Some(EnumName::Status(s))) => s as i32,
            (None, None) => 0,
        }
    }
}

impl<'de> Deserialize<'de> for JEnum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JEnum;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an enum value as a number or a name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JEnum, E> {
                i32::try_from(v)
                    .map(|n| JEnum(Some(n), None))
                    .map_err(|_| E::custom(format!("enum value {v} is out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JEnum, E> {
                i32::try_from(v)
                    .map(|n| JEnum(Some(n), None))
                    .map_err(|_| E::custom(format!("enum value {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JEnum, E> {
                if let Some(k) = SpanKind::from_str_name(v) {
                    return Ok(JEnum(None, Some(EnumName::Kind(k))));
                }
                if let Some(s) = StatusCode::from_str_name(v) {
                    return Ok(JEnum(None, Some(EnumName::Status(s))));
                }
                Err(E::custom(format!("unknown enum value `{}`", short(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<JEnum, E> {
                Ok(JEnum::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A 64-bit unsigned integer: a number or a decimal string.
#[derive(Default)]
struct JU64(u64);

impl<'de> Deserialize<'de> for JU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JU64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an unsigned integer or a string holding one")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JU64, E> {
                Ok(JU64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JU64, E> {
                u64::try_from(v)
                    .map(JU64)
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JU64, E> {
                v.parse()
                    .map(JU64)
                    .map_err(|_| E::custom(format!("`{}` is not an unsigned integer", short(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<JU64, E> {
                Ok(JU64(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A 64-bit signed integer: a number or a decimal string.
struct JI64(i64);

impl<'de> Deserialize<'de> for JI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JI64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JI64, E> {
                Ok(JI64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JI64, E> {
                i64::try_from(v)
                    .map(JI64)
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JI64, E> {
                v.parse()
                    .map(JI64)
                    .map_err(|_| E::custom(format!("`{}` is not an integer", short(v))))
            }
        }
        d.deserialize_any(V)
    }
}

/// The head of client text quoted in an error message.
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

impl JRequest {
    fn into_proto(self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: self
                .resource_spans
                .into_iter()
                .map(|rs| ResourceSpans {
                    resource: rs.resource.map(|r| Resource {
                        attributes: r.attributes.into_iter().map(|c| c.0.into_proto()).collect(),
                        ..Resource::default()
                    }),
                    scope_spans: rs
                        .scope_spans
                        .into_iter()
                        .map(|ss| ScopeSpans {
                            spans: ss.spans.into_iter().map(|c| c.0.into_proto()).collect(),
                            ..ScopeSpans::default()
                        })
                        .collect(),
                    schema_url: rs.schema_url,
                })
                .collect(),
        }
    }
}

impl JSpan {
    fn into_proto(self) -> Span {
        Span {
            trace_id: self.trace_id.0,
            span_id: self.span_id.0,
            parent_span_id: self.parent_span_id.0,
            name: self.name,
            kind: self.kind.value(),
            start_time_unix_nano: self.start_time_unix_nano.0,
            end_time_unix_nano: self.end_time_unix_nano.0,
            attributes: self
                .attributes
                .into_iter()
                .map(|c| c.0.into_proto())
                .collect(),
            status: self.status.map(|s| Status {
                message: s.message,
                code: s.code.value(),
            }),
            ..Span::default()
        }
    }
}

impl JKeyValue {
    fn into_proto(self) -> KeyValue {
        KeyValue {
            key: self.key,
            value: self.value.map(|c| c.0.into_proto()),
            ..KeyValue::default()
        }
    }
}

impl JAnyValue {
    fn into_proto(self) -> AnyValue {
        use any_value::Value;
        let value = if let Some(s) = self.string_value {
            Some(Value::StringValue(s))
        } else if let Some(b) = self.bool_value {
            Some(Value::BoolValue(b))
        } else if let Some(i) = self.int_value {
            Some(Value::IntValue(i.0))
        } else if let Some(d) = self.double_value {
            Some(Value::DoubleValue(d))
        } else if let Some(a) = self.array_value {
            Some(Value::ArrayValue(ArrayValue {
                values: a.values.into_iter().map(|c| c.0.into_proto()).collect(),
            }))
        } else if let Some(l) = self.kvlist_value {
            Some(Value::KvlistValue(KeyValueList {
                values: l.values.into_iter().map(|c| c.0.into_proto()).collect(),
            }))
        } else {
            // Bytes values carry nothing an event can show; kept as absent.
            self.bytes_value.map(|_| Value::BytesValue(Vec::new()))
        };
        AnyValue { value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type(Some("application/x-protobuf")),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type(Some("text/plain")), None);
        assert_eq!(Encoding::from_content_type(None), None);
    }

    #[test]
    fn json_accepts_names_numbers_strings_and_snake_case() {
        let body = br#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
            "scopeSpans":[{"scope":{"name":"x"},"spans":[
              {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"GET /a",
               "kind":"SPAN_KIND_SERVER","startTimeUnixNano":"1000000000","end_time_unix_nano":2000000000,
               "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"d","value":{"doubleValue":1.5}}],
               "status":{"code":"STATUS_CODE_ERROR","message":"boom"}},
              {"name":"b","kind":3,"status":{"code":2}}]}]}]}"#;
        let req = decode(body, Encoding::Json, 10).expect("valid");
        let rs = &req.resource_spans[0];
        let s = &rs.scope_spans[0].spans[0];
        assert_eq!(hex::encode(&s.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.kind, SpanKind::Server as i32);
        assert_eq!(
            (s.start_time_unix_nano, s.end_time_unix_nano),
            (1_000_000_000, 2_000_000_000)
        );
        assert_eq!(
            s.attributes[0].value.as_ref().and_then(|v| v.value.clone()),
            Some(any_value::Value::IntValue(42))
        );
        assert_eq!(
            s.status.as_ref().map(|st| st.code),
            Some(StatusCode::Error as i32)
        );
        let b = &rs.scope_spans[0].spans[1];
        assert_eq!((b.kind, b.status.as_ref().map(|st| st.code)), (3, Some(2)));
    }

    #[test]
    fn bad_json_is_a_clear_error() {
        for (body, want) in [
            (&br#"{"resourceSpans": 3}"#[..], "invalid type"),
            (
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
                "not a hex id",
            ),
            (
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_NOPE"}]}]}]}"#,
                "unknown enum value",
            ),
            (
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}]}"#,
                "not an unsigned integer",
            ),
            (
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"#,
                "EOF",
            ),
        ] {
            let e = decode(body, Encoding::Json, 10).unwrap_err();
            assert!(matches!(e, OtlpDecodeError::Json(_)), "{e}");
            assert!(e.to_string().contains(want), "{e} should mention {want}");
        }
    }

    fn one_span(attrs: Vec<KeyValue>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        attributes: attrs,
                        ..Span::default()
                    }],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn truncated_protobuf_is_refused() {
        let body = one_span(vec![KeyValue {
            key: "k".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("v".repeat(100))),
            }),
            ..KeyValue::default()
        }])
        .encode_to_vec();
        for cut in [1, body.len() / 2, body.len() - 1] {
            let e = decode(&body[..cut], Encoding::Protobuf, 10).unwrap_err();
            assert!(matches!(e, OtlpDecodeError::Protobuf(_)), "{e}");
        }
        assert!(decode(&body, Encoding::Protobuf, 10).is_ok());
        // Wrong wire types for a field: not a valid message either.
        assert!(decode(&[0x0a, 0x05, 0xff, 0xff], Encoding::Protobuf, 10).is_err());
    }

    #[test]
    fn huge_attribute_maps_and_deep_nesting_are_refused() {
        let many = (0..=MAX_ATTRIBUTES_PER_SPAN)
            .map(|i| KeyValue {
                key: format!("k{i}"),
                value: None,
                ..KeyValue::default()
            })
            .collect();
        let e = decode(&one_span(many).encode_to_vec(), Encoding::Protobuf, 10).unwrap_err();
        assert!(
            matches!(e, OtlpDecodeError::TooManyAttributes { .. }),
            "{e}"
        );

        let mut v = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        // One level too deep: found after decoding, named by its key.
        for _ in 0..MAX_VALUE_DEPTH {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let deep = |v: AnyValue| {
            one_span(vec![KeyValue {
                key: "deep".into(),
                value: Some(v),
                ..KeyValue::default()
            }])
            .encode_to_vec()
        };
        let e = decode(&deep(v.clone()), Encoding::Protobuf, 10).unwrap_err();
        assert_eq!(e, OtlpDecodeError::TooDeep { key: "deep".into() });
        // Far deeper: refused on the wire, before prost recurses.
        for _ in 0..50 {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let e = decode(&deep(v), Encoding::Protobuf, 10).unwrap_err();
        assert_eq!(e, OtlpDecodeError::NestedTooDeep);

        // JSON nested far beyond the parser's own recursion limit: an
        // error, not a stack overflow.
        let mut json = String::from(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"x","value":"#,
        );
        for _ in 0..10_000 {
            json.push_str(r#"{"arrayValue":{"values":["#);
        }
        assert!(decode(json.as_bytes(), Encoding::Json, 10).is_err());
    }

    #[test]
    fn span_count_is_bounded() {
        let mut req = one_span(Vec::new());
        req.resource_spans[0].scope_spans[0].spans = vec![Span::default(); 11];
        let e = decode(&req.encode_to_vec(), Encoding::Protobuf, 10).unwrap_err();
        assert_eq!(
            e,
            OtlpDecodeError::TooManySpans {
                limit: 10,
                found: 11
            }
        );
    }

    proptest::proptest! {
        /// Any bytes, and valid bodies with bytes changed or cut: `Err` or
        /// a request within bounds, never a panic (the fuzz target
        /// `otlp_traces` does the same for longer).
        #[test]
        fn arbitrary_and_mutated_bodies_never_panic(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            at in 0usize..4096,
            cut in 0usize..4096,
        ) {
            for enc in [Encoding::Protobuf, Encoding::Json] {
                if let Ok(r) = decode(&noise, enc, 50) {
                    let n: usize = r.resource_spans.iter()
                        .flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
                    proptest::prop_assert!(n <= 50);
                }
            }
            let mut valid = one_span(vec![KeyValue {
                key: "http.route".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue("/a/{id}".into())) }),
                ..KeyValue::default()
            }])
            .encode_to_vec();
            if !valid.is_empty() {
                let i = at % valid.len();
                valid[i] ^= noise.first().copied().unwrap_or(0xff);
                valid.truncate(valid.len() - cut % valid.len());
            }
            let _ = decode(&valid, Encoding::Protobuf, 50);
        }
    }
}
