//! Request bodies of the ingestion endpoints: content encoding (gzip, zstd),
//! content type (JSON object, JSON array, `{"events": [...]}`, NDJSON) and a
//! lenient, borrowing JSON model of each event.
//!
//! Lenient on purpose: a batch whose third event has `"status_code": "abc"`
//! must keep the other events and report that one field, so every field is
//! read as whatever JSON it is (`Scalar`) and typed later by `validate`. Only
//! bytes that are not JSON at all fail the whole body. Strings borrow from
//! the request buffer when they hold no escapes, so parsing allocates one
//! `Vec` per event for its attributes and nothing per string.
//!
//! Everything here is a pure function of bytes and never panics; the fuzz
//! target `ingest_body` holds it to that.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most events one batch request may carry. A 16 MiB body of realistic
/// events holds about 55 k; the cap keeps a body of tiny `{}` elements from
/// making millions of parsed events (hundreds of bytes each) out of a few MiB.
pub const MAX_BATCH_EVENTS: usize = 100_000;

/// Why a body was refused as a whole. Per-event problems are not here; they
/// are `validate::FieldProblem`s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Bytes that are not the JSON the endpoint expects (400, nothing stored).
    #[error("{0}")]
    Malformed(String),
    /// The body, after decompression, exceeds the limit (413).
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// More than `MAX_BATCH_EVENTS` events in one request (413).
    #[error("a batch may hold at most {MAX_BATCH_EVENTS} events")]
    TooManyEvents,
    /// A `Content-Encoding` other than identity, gzip or zstd (415).
    #[error("unsupported content encoding `{0}` (use gzip or zstd)")]
    UnsupportedEncoding(String),
    /// A content type the endpoint does not take (415).
    #[error("unsupported content type `{0}`")]
    UnsupportedMediaType(String),
}

/// The body formats the batch endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
}

/// Maps a `Content-Type` header value to a format. A missing header means
/// JSON (curl and many scripts omit it).
pub fn body_format(
    content_type: Option<&str>,
    allow_ndjson: bool,
) -> Result<BodyFormat, DecodeError> {
    let Some(ct) = content_type else {
        return Ok(BodyFormat::Json);
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/json" | "" => Ok(BodyFormat::Json),
        e if e.ends_with("+json") => Ok(BodyFormat::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines"
            if allow_ndjson =>
        {
            Ok(BodyFormat::Ndjson)
        }
        _ => Err(DecodeError::UnsupportedMediaType(essence)),
    }
}

/// Undoes `Content-Encoding`, refusing output larger than `limit` bytes (a
/// gzip bomb stops after `limit + 1` bytes of output, not at its full size).
pub fn decompress<'a>(
    encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    match enc.as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            Ok(Cow::Borrowed(body))
        }
        Some("gzip") | Some("x-gzip") => {
            read_bounded(flate2::read::MultiGzDecoder::new(body), body.len(), limit)
        }
        Some("zstd") => {
            let dec = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|e| DecodeError::Malformed(format!("invalid zstd body: {e}")))?;
            read_bounded(dec, body.len(), limit)
        }
        Some(other) => Err(DecodeError::UnsupportedEncoding(other.to_owned())),
    }
}

/// Ratio of decompressed to compressed size used to pre-size the output:
/// JSON events compress about 8:1; guessing avoids most reallocations.
const EXPECTED_COMPRESSION_RATIO: usize = 8;

fn read_bounded<R: Read>(
    r: R,
    compressed: usize,
    limit: usize,
) -> Result<Cow<'static, [u8]>, DecodeError> {
    let mut out = Vec::with_capacity(
        compressed
            .saturating_mul(EXPECTED_COMPRESSION_RATIO)
            .min(limit),
    );
    let mut taken = r.take(limit as u64 + 1);
    taken
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Malformed(format!("cannot decompress body: {e}")))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
}

/// A JSON value as read from an event, before typing. Containers are not
/// kept (no event field takes one except `attributes`, read separately).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A number that is not an `i64` (fraction, exponent or too large).
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    /// What the client sent, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) | Scalar::Float(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }
    /// Approximate bytes this value took in the JSON text.
    fn json_size(&self) -> usize {
        match self {
            Scalar::Null | Scalar::Bool(_) => 5,
            Scalar::Int(_) | Scalar::Float(_) => 8,
            Scalar::Str(s) => s.len() + 2,
            Scalar::Array | Scalar::Object => 2,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The `attributes` member as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum RawAttributes<'a> {
    /// An object: its members in order, values not yet typed.
    Map(Vec<(Cow<'a, str>, Scalar<'a>)>),
    /// Anything else (reported by `validate`).
    NotObject(&'static str),
}

impl<'de> Deserialize<'de> for RawAttributes<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAttributes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attributes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4).min(16));
                while let Some(Key(k)) = map.next_key()? {
                    let v: Scalar = map.next_value()?;
                    out.push((k, v));
                }
                Ok(RawAttributes::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_seq(seq)?;
                Ok(RawAttributes::NotObject("an array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawAttributes::NotObject("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawAttributes::NotObject("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawAttributes::NotObject("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawAttributes::NotObject("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawAttributes::NotObject("a string"))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawAttributes::Map(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(RawAttributes::Map(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One event as sent: each known member as whatever JSON it held. Unknown
/// members (including `id`, `received_at` and `tenant`, which the server
/// decides) are skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEvent<'a> {
    pub timestamp: Option<Scalar<'a>>,
    pub event_type: Option<Scalar<'a>>,
    pub service: Option<Scalar<'a>>,
    pub endpoint: Option<Scalar<'a>>,
    pub method: Option<Scalar<'a>>,
    pub status_code: Option<Scalar<'a>>,
    pub latency_ms: Option<Scalar<'a>>,
    pub severity: Option<Scalar<'a>>,
    pub request_bytes: Option<Scalar<'a>>,
    pub response_bytes: Option<Scalar<'a>>,
    pub user_id: Option<Scalar<'a>>,
    pub region: Option<Scalar<'a>>,
    pub trace_id: Option<Scalar<'a>>,
    pub message: Option<Scalar<'a>>,
    pub attributes: Option<RawAttributes<'a>>,
    /// Approximate size of the event's JSON text, for the per-event limit
    /// (the exact span is not known for elements of a JSON array).
    pub approx_bytes: usize,
}

/// One element of a batch: an event, or something that is not an object.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "items are handed on one at a time, never stored in bulk on the hot path"
)]
pub enum Item<'a> {
    Event(RawEvent<'a>),
    NotObject(&'static str),
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ev = RawEvent::default();
        let mut size = 2usize;
        while let Some(Key(k)) = map.next_key()? {
            size += k.len() + 4;
            let slot = match k.as_ref() {
                "timestamp" => &mut ev.timestamp,
                "event_type" => &mut ev.event_type,
                "service" => &mut ev.service,
                "endpoint" => &mut ev.endpoint,
                "method" => &mut ev.method,
                "status_code" => &mut ev.status_code,
                "latency_ms" => &mut ev.latency_ms,
                "severity" => &mut ev.severity,
                "request_bytes" => &mut ev.request_bytes,
                "response_bytes" => &mut ev.response_bytes,
                "user_id" => &mut ev.user_id,
                "region" => &mut ev.region,
                "trace_id" => &mut ev.trace_id,
                "message" => &mut ev.message,
                "attributes" => {
                    let attrs: RawAttributes = map.next_value()?;
                    if let RawAttributes::Map(m) = &attrs {
                        size += m
                            .iter()
                            .map(|(k, v)| k.len() + 4 + v.json_size())
                            .sum::<usize>();
                    }
                    ev.attributes = Some(attrs);
                    continue;
                }
                _ => {
                    // Unknown members still count towards the event's size.
                    let v: Scalar = map.next_value()?;
                    size += v.json_size();
                    continue;
                }
            };
            let v: Scalar = map.next_value()?;
            size += v.json_size();
            *slot = Some(v);
        }
        ev.approx_bytes = size;
        Ok(Item::Event(ev))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq)?;
        Ok(Item::NotObject("an array"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Item::NotObject("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Item::NotObject("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Item::NotObject("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Item::NotObject("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Item::NotObject("a string"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Item::NotObject("null"))
    }
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

/// Marker in serde errors for a batch over `MAX_BATCH_EVENTS`, so the caller
/// can answer 413 rather than 400.
const TOO_MANY_MARKER: &str = "pulsestream: too many events";

/// Reads a JSON array of items, handing each to `f` as soon as it is
/// parsed (no intermediate vector), stopping at `MAX_BATCH_EVENTS`.
struct ItemsSeed<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(Item<'de>)> DeserializeSeed<'de> for ItemsSeed<'_, F> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Item<'de>)> Visitor<'de> for ItemsSeed<'_, F> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0;
        while let Some(item) = seq.next_element::<Item>()? {
            if n == MAX_BATCH_EVENTS {
                return Err(de::Error::custom(TOO_MANY_MARKER));
            }
            (self.f)(item);
            n += 1;
        }
        Ok(n)
    }
}

/// A batch body: a JSON array, or an object whose `events` member is one.
/// `None` when an object has no `events`.
struct BatchVisitor<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(Item<'de>)> Visitor<'de> for BatchVisitor<'_, F> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a JSON array of events or {"events": [...]}"#)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ItemsSeed { f: self.f }.visit_seq(seq).map(Some)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = Some(self.f);
        let mut events = None;
        while let Some(Key(k)) = map.next_key()? {
            match f.take() {
                Some(f) if k == "events" => {
                    events = Some(map.next_value_seed(ItemsSeed { f })?);
                }
                other => {
                    f = other;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(events)
    }
}

fn json_error(e: serde_json::Error, what: &str) -> DecodeError {
    if e.to_string().contains(TOO_MANY_MARKER) {
        DecodeError::TooManyEvents
    } else {
        DecodeError::Malformed(format!("{what} is not valid JSON: {e}"))
    }
}

/// Checks UTF-8 once for the whole body, so the JSON reader need not check
/// every string again (a measurable share of parse time).
fn utf8(body: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(body).map_err(|e| DecodeError::Malformed(format!("body is not UTF-8: {e}")))
}

/// Parses the body of the single-event endpoint.
pub fn parse_single(body: &[u8]) -> Result<Item<'_>, DecodeError> {
    serde_json::from_str::<Item>(utf8(body)?).map_err(|e| json_error(e, "body"))
}

/// Parses a batch body in `format`, handing each element to `f` in order.
/// On `Err` the body as a whole is refused (the caller must then store
/// nothing, whatever `f` already saw). Returns the number of elements.
pub fn for_each_item<'a>(
    body: &'a [u8],
    format: BodyFormat,
    mut f: impl FnMut(Item<'a>),
) -> Result<usize, DecodeError> {
    let text = utf8(body)?;
    match format {
        BodyFormat::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let n = de
                .deserialize_any(BatchVisitor { f: &mut f })
                .map_err(|e| json_error(e, "body"))?;
            de.end().map_err(|e| json_error(e, "body"))?;
            n.ok_or_else(|| {
                DecodeError::Malformed(r#"expected a JSON array or {"events": [...]}"#.to_owned())
            })
        }
        BodyFormat::Ndjson => {
            let mut n = 0;
            for (lineno, line) in text.split('\n').enumerate() {
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                if n == MAX_BATCH_EVENTS {
                    return Err(DecodeError::TooManyEvents);
                }
                let mut item = serde_json::from_str::<Item>(line)
                    .map_err(|e| json_error(e, &format!("line {}", lineno + 1)))?;
                if let Item::Event(ev) = &mut item {
                    // In NDJSON the exact size is known: the line.
                    ev.approx_bytes = line.len();
                }
                f(item);
                n += 1;
            }
            Ok(n)
        }
    }
}

/// Parses a batch body into a vector of its elements (tests, fuzzing).
pub fn parse_batch(body: &[u8], format: BodyFormat) -> Result<Vec<Item<'_>>, DecodeError> {
    let mut out = Vec::new();
    for_each_item(body, format, |i| out.push(i))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    proptest::proptest! {
        /// Any bytes, and any corruption of a valid body, give Ok or Err.
        #[test]
        fn never_panics(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            cut in 0usize..200,
            flip in 0usize..200,
            byte in proptest::num::u8::ANY,
        ) {
            let _ = parse_single(&data);
            let _ = parse_batch(&data, BodyFormat::Json);
            let _ = parse_batch(&data, BodyFormat::Ndjson);
            let _ = decompress(Some("gzip"), &data, 4096);
            let _ = decompress(Some("zstd"), &data, 4096);
            let mut valid = br#"{"events":[{"event_type":"a","status_code":200,"attributes":{"k":"v\u0041"}},[1,{"x":null}]]}"#.to_vec();
            valid.truncate(cut.min(valid.len()));
            if let Some(b) = valid.get_mut(flip) {
                *b = byte;
            }
            let _ = parse_batch(&valid, BodyFormat::Json);
            let _ = parse_batch(&valid, BodyFormat::Ndjson);
        }
    }

    #[test]
    fn reads_the_three_batch_shapes() {
        let arr = br#"[{"event_type":"a","status_code":200},{"event_type":"b"}]"#;
        let obj = br#"{"other":[1,2],"events":[{"event_type":"a","status_code":200},{"event_type":"b"}]}"#;
        let nd = b"{\"event_type\":\"a\",\"status_code\":200}\r\n\n  {\"event_type\":\"b\"}\n";
        for (body, fmt) in [
            (&arr[..], BodyFormat::Json),
            (&obj[..], BodyFormat::Json),
            (&nd[..], BodyFormat::Ndjson),
        ] {
            let items = parse_batch(body, fmt).expect("parses");
            assert_eq!(items.len(), 2);
            let Item::Event(first) = &items[0] else {
                panic!("object expected")
            };
            assert_eq!(first.status_code, Some(Scalar::Int(200)));
        }
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let body =
            br#"{"event_type":"api_call","service":"a\"b","attributes":{"k":"v","n":3,"x":[1]}}"#;
        let Item::Event(ev) = parse_single(body).expect("parses") else {
            panic!("object expected")
        };
        assert!(matches!(
            ev.event_type,
            Some(Scalar::Str(Cow::Borrowed("api_call")))
        ));
        assert!(matches!(&ev.service, Some(Scalar::Str(Cow::Owned(s))) if s == "a\"b"));
        let Some(RawAttributes::Map(attrs)) = &ev.attributes else {
            panic!("attributes expected")
        };
        assert_eq!(attrs[1], (Cow::Borrowed("n"), Scalar::Int(3)));
        assert_eq!(attrs[2].1, Scalar::Array);
    }

    #[test]
    fn malformed_bodies_fail_whole() {
        assert!(matches!(
            parse_single(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(b"[{}] trailing", BodyFormat::Json),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(br#"{"nope":[]}"#, BodyFormat::Json),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(b"{}\n{oops\n", BodyFormat::Ndjson),
            Err(DecodeError::Malformed(m)) if m.contains("line 2")
        ));
        assert!(matches!(
            parse_single(b"{\"event_type\":\"\xff\"}"),
            Err(DecodeError::Malformed(m)) if m.contains("UTF-8")
        ));
        let items = parse_batch(b"[1, \"x\", null, {}]", BodyFormat::Json).expect("parses");
        assert_eq!(items[0], Item::NotObject("a number"));
        assert!(matches!(items[3], Item::Event(_)));
    }

    #[test]
    fn too_many_events_is_its_own_error() {
        let mut body = String::from("[");
        for i in 0..=MAX_BATCH_EVENTS {
            if i > 0 {
                body.push(',');
            }
            body.push_str("{}");
        }
        body.push(']');
        assert_eq!(
            parse_batch(body.as_bytes(), BodyFormat::Json),
            Err(DecodeError::TooManyEvents)
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(body_format(None, true), Ok(BodyFormat::Json));
        assert_eq!(
            body_format(Some("application/json; charset=utf-8"), true),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some("application/x-ndjson"), true),
            Ok(BodyFormat::Ndjson)
        );
        assert!(body_format(Some("application/x-ndjson"), false).is_err());
        assert!(body_format(Some("text/plain"), true).is_err());
    }

    #[test]
    fn decompression_is_bounded() {
        let plain = vec![b'a'; 100_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        assert_eq!(
            decompress(Some("gzip"), &gz, 100_000).expect("fits").len(),
            100_000
        );
        assert_eq!(
            decompress(Some("gzip"), &gz, 99_999),
            Err(DecodeError::TooLarge { limit: 99_999 })
        );
        let zs = zstd::encode_all(&plain[..], 3).expect("zstd");
        assert_eq!(
            decompress(Some("zstd"), &zs, 100_000).expect("fits").len(),
            100_000
        );
        assert!(matches!(
            decompress(Some("zstd"), &zs, 10),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(Some("gzip"), b"not gzip", 100),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decompress(Some("br"), b"x", 100),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decompress(None, b"xyz", 2),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
