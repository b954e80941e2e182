//! Bounds on what decoding an OTLP body may allocate, enforced while the
//! bytes are read rather than after: an empty span or value costs two bytes
//! on the wire (three in JSON) but a few hundred bytes decoded, so a 16 MiB
//! body could otherwise become gigabytes before any check ran.
//!
//! Protobuf: a walk over the wire format (keys, lengths, nested messages of
//! the trace schema) counts spans and elements and limits nesting before
//! prost decodes anything. JSON: every span, key-value and value is
//! `Counted` against a per-decode budget as serde reaches it.

use std::cell::Cell;

use serde::de::{self, Deserialize, Deserializer};

use super::decode::{MAX_VALUE_DEPTH, OtlpDecodeError};

/// Spans, span events, links, key-values and values one request may
/// decode to, all together. A Collector batch of 8,192 spans with 40
/// attributes each is 336 k; 1 M elements decode to at most about 150 MiB,
/// the worst case one request can cost (charged to the ingest budget as
/// its body only, so this bound is what keeps it finite).
pub const MAX_ELEMENTS_PER_REQUEST: usize = 1_000_000;

/// Message nesting of a trace request with values nested
/// `MAX_VALUE_DEPTH` deep: request, resource spans, scope spans, span,
/// event or link, key-value, then two levels (value, array or list) per
/// value level.
const MAX_MESSAGE_DEPTH: usize = 6 + 2 * MAX_VALUE_DEPTH;

// ---- JSON: a budget per decode, on the decoding thread.

thread_local! {
    /// (elements left, spans left) while a JSON body is decoded here.
    static JSON_BUDGET: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Marks the serde error a budget refusal raised, to map it back.
const SPANS_EXCEEDED: &str = "otlp-budget: spans";
const ELEMENTS_EXCEEDED: &str = "otlp-budget: elements";

/// Runs `f` (a serde decode) with a fresh budget on this thread.
pub fn with_json_budget<T>(max_spans: usize, f: impl FnOnce() -> T) -> T {
    JSON_BUDGET.with(|b| b.set(Some((MAX_ELEMENTS_PER_REQUEST, max_spans))));
    let out = f();
    JSON_BUDGET.with(|b| b.set(None));
    out
}

/// The bound a serde error stands for, when it was a budget refusal of a
/// decode with `max_spans`.
pub fn json_budget_error(e: &serde_json::Error, max_spans: usize) -> Option<OtlpDecodeError> {
    let text = e.to_string();
    if text.starts_with(SPANS_EXCEEDED) {
        Some(OtlpDecodeError::TooManySpans {
            limit: max_spans,
            found: max_spans.saturating_add(1),
        })
    } else if text.starts_with(ELEMENTS_EXCEEDED) {
        Some(OtlpDecodeError::TooManyElements {
            limit: MAX_ELEMENTS_PER_REQUEST,
        })
    } else {
        None
    }
}

/// What a `Counted` element is.
pub trait Cost {
    const IS_SPAN: bool;
}

/// An element decoded only while the budget lasts.
pub struct Counted<T>(pub T);

impl<T: Default> Default for Counted<T> {
    fn default() -> Self {
        Counted(T::default())
    }
}

impl<'de, T: Deserialize<'de> + Cost> Deserialize<'de> for Counted<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let refused = JSON_BUDGET.with(|b| {
            let (elements, spans) = b.get()?;
            if elements == 0 {
                return Some(ELEMENTS_EXCEEDED);
            }
            if T::IS_SPAN && spans == 0 {
                return Some(SPANS_EXCEEDED);
            }
            b.set(Some((elements - 1, spans - usize::from(T::IS_SPAN))));
            None
        });
        if let Some(msg) = refused {
            return Err(de::Error::custom(msg));
        }
        T::deserialize(d).map(Counted)
    }
}

// ---- Protobuf: a walk over the wire format.

/// The messages of the trace schema whose children allocate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Msg {
    Request,
    ResourceSpans,
    Resource,
    Scope,
    ScopeSpans,
    Span,
    SpanEvent,
    SpanLink,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
}

/// The child message type of field `field` of `m`, if it is one that holds
/// repeated or nested elements.
fn child(m: Msg, field: u64) -> Option<Msg> {
    use Msg::*;
    Some(match (m, field) {
        (Request, 1) => ResourceSpans,
        (ResourceSpans, 1) => Resource,
        (ResourceSpans, 2) => ScopeSpans,
        (Resource, 1) => KeyValue,
        (ScopeSpans, 1) => Scope,
        (ScopeSpans, 2) => Span,
        (Scope, 3) => KeyValue,
        (Span, 9) => KeyValue,
        (Span, 11) => SpanEvent,
        (Span, 13) => SpanLink,
        (SpanEvent, 3) => KeyValue,
        (SpanLink, 4) => KeyValue,
        (KeyValue, 2) => AnyValue,
        (AnyValue, 5) => ArrayValue,
        (AnyValue, 6) => KvList,
        (ArrayValue, 1) => AnyValue,
        (KvList, 1) => KeyValue,
        _ => return None,
    })
}

fn counts_as_element(m: Msg) -> bool {
    matches!(
        m,
        Msg::Span | Msg::SpanEvent | Msg::SpanLink | Msg::KeyValue | Msg::AnyValue
    )
}

struct Walk {
    spans: usize,
    elements: usize,
    max_spans: usize,
}

fn malformed(what: &str) -> OtlpDecodeError {
    OtlpDecodeError::Protobuf(format!("{what} (checked before decoding)"))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, OtlpDecodeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

fn walk(buf: &[u8], m: Msg, depth: usize, w: &mut Walk) -> Result<(), OtlpDecodeError> {
    if depth > MAX_MESSAGE_DEPTH {
        return Err(OtlpDecodeError::NestedTooDeep);
    }
    let mut pos = 0usize;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                pos = pos
                    .checked_add(n)
                    .filter(|p| *p <= buf.len())
                    .ok_or_else(|| malformed("truncated fixed-size field"))?;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?)
                    .map_err(|_| malformed("length out of range"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| malformed("truncated length-delimited field"))?;
                if let Some(c) = child(m, field) {
                    if c == Msg::Span {
                        w.spans += 1;
                        if w.spans > w.max_spans {
                            return Err(OtlpDecodeError::TooManySpans {
                                limit: w.max_spans,
                                found: w.spans,
                            });
                        }
                    }
                    if counts_as_element(c) {
                        w.elements += 1;
                        if w.elements > MAX_ELEMENTS_PER_REQUEST {
                            return Err(OtlpDecodeError::TooManyElements {
                                limit: MAX_ELEMENTS_PER_REQUEST,
                            });
                        }
                    }
                    walk(&buf[pos..end], c, depth + 1, w)?;
                }
                pos = end;
            }
            _ => return Err(malformed("unsupported wire type")),
        }
    }
    Ok(())
}

/// Counts the spans and elements of a protobuf `ExportTraceServiceRequest`
/// and checks its nesting, without decoding it.
pub fn prescan_protobuf(body: &[u8], max_spans: usize) -> Result<(), OtlpDecodeError> {
    let mut w = Walk {
        spans: 0,
        elements: 0,
        max_spans,
    };
    walk(body, Msg::Request, 0, &mut w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited field.
    fn field(n: u64, body: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8];
        let mut len = body.len() as u64;
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn many_empty_spans_are_refused_before_decoding() {
        // 1,001 empty spans: two bytes each.
        let spans: Vec<u8> = (0..1001).flat_map(|_| field(2, &[])).collect();
        let body = field(1, &field(2, &spans));
        assert_eq!(
            prescan_protobuf(&body, 1000),
            Err(OtlpDecodeError::TooManySpans {
                limit: 1000,
                found: 1001
            })
        );
        assert!(prescan_protobuf(&body, 2000).is_ok());
    }

    #[test]
    fn many_empty_values_are_refused() {
        // One attribute whose array holds more values than the budget.
        let values: Vec<u8> = (0..=MAX_ELEMENTS_PER_REQUEST)
            .flat_map(|_| field(1, &[]))
            .collect();
        let any = field(5, &values);
        let kv = field(2, &any);
        let span = field(9, &kv);
        let body = field(1, &field(2, &field(2, &span)));
        assert_eq!(
            prescan_protobuf(&body, 10),
            Err(OtlpDecodeError::TooManyElements {
                limit: MAX_ELEMENTS_PER_REQUEST
            })
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_deep_recursion() {
        let mut v: Vec<u8> = Vec::new();
        for _ in 0..10_000 {
            v = field(5, &field(1, &v));
        }
        let body = field(1, &field(2, &field(2, &field(9, &field(2, &v)))));
        assert_eq!(
            prescan_protobuf(&body, 10),
            Err(OtlpDecodeError::NestedTooDeep)
        );
    }

    #[test]
    fn truncated_and_bad_wire_data_is_refused() {
        assert!(prescan_protobuf(&[0x0a, 0x05, 0x01], 10).is_err());
        assert!(prescan_protobuf(&[0x0b], 10).is_err());
        assert!(prescan_protobuf(&[0x08, 0xff], 10).is_err());
        assert!(prescan_protobuf(&[], 10).is_ok());
    }

    #[test]
    fn json_budget_refuses_spans_and_elements() {
        #[derive(serde::Deserialize)]
        struct S;
        impl Cost for S {
            const IS_SPAN: bool = true;
        }
        let r: Result<Vec<Counted<S>>, _> =
            with_json_budget(2, || serde_json::from_str("[null,null,null]"));
        let e = r.err().expect("refused");
        assert_eq!(
            json_budget_error(&e, 2),
            Some(OtlpDecodeError::TooManySpans { limit: 2, found: 3 })
        );
        let r: Result<Vec<Counted<S>>, _> =
            with_json_budget(5, || serde_json::from_str("[null,null,null]"));
        assert!(r.is_ok());
    }
}
