//! Typing and checking one event: `decode::RawEvent` in, the store's `Event`
//! out, or every problem found, each naming its field (contract section 3).
//!
//! The limits are the contract's defaults; `EventLimits` lets configuration
//! change them. The time window (tenant retention, at most 1 h ahead) comes
//! from the caller with `now`, so tests need no clock.

use std::borrow::Cow;

use pulsestream_storage::{AttrValue, Event, Method, Micros, Severity};

use super::decode::{Item, RawAttributes, RawEvent, Scalar};
use crate::read::timeparse;

/// Longest `event_type`.
pub const MAX_EVENT_TYPE_LEN: usize = 64;
/// How far in the future an event may be stamped: clocks drift, but an event
/// from tomorrow is a bug on the agent's side and would sit in a partition
/// no one reads yet.
pub const MAX_FUTURE_MICROS: i64 = Micros::HOUR;

/// Per-field limits. The defaults are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// `service` bytes: a name, not a sentence.
    pub max_service: usize,
    /// `endpoint` bytes: a route template or path.
    pub max_endpoint: usize,
    /// `message` bytes: 8 KiB is a stack trace's head, not a log file.
    pub max_message: usize,
    /// Keys in `attributes`: each becomes a column in its segment.
    pub max_attributes: usize,
    /// Whole event, JSON bytes.
    pub max_event_bytes: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_service: 128,
            max_endpoint: 512,
            max_message: 8 * 1024,
            max_attributes: 64,
            max_event_bytes: 64 * 1024,
        }
    }
}

/// The time window events must fall in, and the stamp for events without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Receive time: `received_at`, and `timestamp` when none is sent.
    pub now: Micros,
    /// Tenant retention in days; older events are refused.
    pub retention_days: u32,
}

impl TimeWindow {
    fn oldest(&self) -> Micros {
        Micros(
            self.now
                .0
                .saturating_sub(i64::from(self.retention_days).saturating_mul(24 * Micros::HOUR)),
        )
    }
}

/// One problem with one field of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The contract's field name (`status_code`, `attributes.tier`), or
    /// `event` for the event as a whole.
    pub field: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

impl FieldProblem {
    fn new(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        FieldProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Validates one batch element. `Err` holds at least one problem.
pub fn validate_item(
    item: Item<'_>,
    limits: &EventLimits,
    window: &TimeWindow,
) -> Result<Event, Vec<FieldProblem>> {
    match item {
        Item::Event(raw) => validate_event(raw, limits, window),
        Item::NotObject(kind) => Err(vec![FieldProblem::new(
            "event",
            format!("must be a JSON object, not {kind}"),
        )]),
    }
}

/// Validates one event, collecting every problem rather than stopping at the
/// first, so an agent fixes its payload in one round.
pub fn validate_event(
    raw: RawEvent<'_>,
    limits: &EventLimits,
    window: &TimeWindow,
) -> Result<Event, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut ev = Event {
        received_at: window.now,
        timestamp: window.now,
        ..Event::default()
    };

    if raw.approx_bytes > limits.max_event_bytes {
        problems.push(FieldProblem::new(
            "event",
            format!("must be at most {} bytes", limits.max_event_bytes),
        ));
    }

    match present(raw.event_type) {
        None => problems.push(FieldProblem::new("event_type", "is required")),
        Some(Scalar::Str(s)) if valid_event_type(&s) => ev.event_type = s.into_owned(),
        Some(_) => problems.push(FieldProblem::new(
            "event_type",
            "must match [a-z0-9_.-]{1,64}",
        )),
    }

    if let Some(ts) = present(raw.timestamp) {
        match parse_timestamp(&ts) {
            Ok(t) if t < window.oldest() => problems.push(FieldProblem::new(
                "timestamp",
                format!(
                    "is older than the tenant's retention of {} days",
                    window.retention_days
                ),
            )),
            Ok(t) if t.0 > window.now.0.saturating_add(MAX_FUTURE_MICROS) => problems.push(
                FieldProblem::new("timestamp", "is more than 1 h in the future"),
            ),
            Ok(t) => ev.timestamp = t,
            Err(msg) => problems.push(FieldProblem::new("timestamp", msg)),
        }
    }

    ev.service = string(raw.service, "service", limits.max_service, &mut problems);
    ev.endpoint = string(raw.endpoint, "endpoint", limits.max_endpoint, &mut problems);
    ev.message = string(raw.message, "message", limits.max_message, &mut problems);
    ev.user_id = string(raw.user_id, "user_id", usize::MAX, &mut problems);
    ev.region = string(raw.region, "region", usize::MAX, &mut problems);
    ev.trace_id = string(raw.trace_id, "trace_id", usize::MAX, &mut problems);

    if let Some(m) = present(raw.method) {
        match &m {
            Scalar::Str(s) => match Method::parse(s) {
                Some(m) => ev.method = Some(m),
                None => problems.push(FieldProblem::new(
                    "method",
                    "must be an HTTP method (GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE, CONNECT)",
                )),
            },
            other => problems.push(FieldProblem::new(
                "method",
                format!("must be a string, not {}", other.kind()),
            )),
        }
    }

    if let Some(s) = present(raw.severity) {
        match &s {
            Scalar::Str(v) => match Severity::parse(v) {
                Some(s) => ev.severity = Some(s),
                None => problems.push(FieldProblem::new(
                    "severity",
                    "must be one of debug, info, warning, error, critical",
                )),
            },
            other => problems.push(FieldProblem::new(
                "severity",
                format!("must be a string, not {}", other.kind()),
            )),
        }
    }

    if let Some(s) = present(raw.status_code) {
        match integer(&s) {
            Some(code @ 100..=599) => ev.status_code = Some(code as u16),
            _ => problems.push(FieldProblem::new(
                "status_code",
                "must be an integer between 100 and 599",
            )),
        }
    }

    if let Some(l) = present(raw.latency_ms) {
        let v = match l {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        };
        match v {
            Some(v) if v.is_finite() && v >= 0.0 => ev.latency_ms = Some(v),
            _ => problems.push(FieldProblem::new(
                "latency_ms",
                "must be a finite number >= 0",
            )),
        }
    }

    ev.request_bytes = byte_count(raw.request_bytes, "request_bytes", &mut problems);
    ev.response_bytes = byte_count(raw.response_bytes, "response_bytes", &mut problems);

    match raw.attributes {
        None => {}
        Some(RawAttributes::NotObject(kind)) => problems.push(FieldProblem::new(
            "attributes",
            format!("must be an object, not {kind}"),
        )),
        Some(RawAttributes::Map(members)) => {
            if members.len() > limits.max_attributes {
                problems.push(FieldProblem::new(
                    "attributes",
                    format!("must have at most {} keys", limits.max_attributes),
                ));
            } else {
                ev.attributes = attributes(members, &mut problems);
            }
        }
    }

    if problems.is_empty() {
        Ok(ev)
    } else {
        Err(problems)
    }
}

/// `null` counts as absent for every optional field.
fn present(v: Option<Scalar<'_>>) -> Option<Scalar<'_>> {
    v.filter(|s| *s != Scalar::Null)
}

fn valid_event_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_EVENT_TYPE_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

fn parse_timestamp(v: &Scalar<'_>) -> Result<Micros, &'static str> {
    const MSG: &str =
        "must be an RFC 3339 time (2026-11-25T10:00:00.123Z) or integer epoch milliseconds";
    match v {
        Scalar::Str(s) => timeparse::parse_rfc3339(s).map_err(|_| MSG),
        Scalar::Int(ms) => timeparse::from_epoch_millis(*ms).map_err(|_| "is out of range"),
        _ => Err(MSG),
    }
}

/// An integer, also from a float with no fraction (`200.0`), which some
/// JSON encoders emit for every number.
fn integer(v: &Scalar<'_>) -> Option<i64> {
    match *v {
        Scalar::Int(i) => Some(i),
        Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
        _ => None,
    }
}

fn string(
    v: Option<Scalar<'_>>,
    field: &'static str,
    max: usize,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    match present(v)? {
        Scalar::Str(s) if s.len() <= max => Some(s.into_owned()),
        Scalar::Str(_) => {
            problems.push(FieldProblem::new(
                field,
                format!("must be at most {max} bytes"),
            ));
            None
        }
        other => {
            problems.push(FieldProblem::new(
                field,
                format!("must be a string, not {}", other.kind()),
            ));
            None
        }
    }
}

fn byte_count(
    v: Option<Scalar<'_>>,
    field: &'static str,
    problems: &mut Vec<FieldProblem>,
) -> Option<u64> {
    let v = present(v)?;
    match integer(&v) {
        Some(n) if n >= 0 => Some(n as u64),
        _ => {
            problems.push(FieldProblem::new(field, "must be an integer >= 0"));
            None
        }
    }
}

fn attributes(
    members: Vec<(Cow<'_, str>, Scalar<'_>)>,
    problems: &mut Vec<FieldProblem>,
) -> Vec<(String, AttrValue)> {
    let mut out: Vec<(String, AttrValue)> = Vec::with_capacity(members.len());
    for (k, v) in members {
        if k.is_empty() {
            problems.push(FieldProblem::new("attributes", "keys must not be empty"));
            continue;
        }
        let value = match v {
            Scalar::Str(s) => AttrValue::Str(s.into_owned()),
            Scalar::Int(i) => AttrValue::Num(i as f64),
            Scalar::Float(f) => AttrValue::Num(f),
            Scalar::Bool(b) => AttrValue::Bool(b),
            other => {
                problems.push(FieldProblem::new(
                    format!("attributes.{k}"),
                    format!("must be a string, number or boolean, not {}", other.kind()),
                ));
                continue;
            }
        };
        // At most 64 keys, so the quadratic check costs less than a map.
        if out.iter().any(|(have, _)| *have == k) {
            problems.push(FieldProblem::new(
                format!("attributes.{k}"),
                "is duplicated",
            ));
            continue;
        }
        out.push((k.into_owned(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::parse_single;

    const NOW: Micros = Micros(1_795_600_800_000_000); // 2026-11-25T10:00:00Z

    fn window() -> TimeWindow {
        TimeWindow {
            now: NOW,
            retention_days: 30,
        }
    }

    fn check(body: &str) -> Result<Event, Vec<FieldProblem>> {
        let item = parse_single(body.as_bytes()).expect("json");
        validate_item(item, &EventLimits::default(), &window())
    }

    fn fields(r: Result<Event, Vec<FieldProblem>>) -> Vec<String> {
        r.expect_err("should fail")
            .into_iter()
            .map(|p| p.field.into_owned())
            .collect()
    }

    #[test]
    fn full_event_is_typed() {
        let ev = check(
            r#"{"timestamp":"2026-11-25T09:59:00.123Z","event_type":"api_call","service":"checkout",
               "endpoint":"/api/v1/orders/{id}","method":"post","status_code":201,"latency_ms":42.7,
               "severity":"info","request_bytes":512,"response_bytes":2048,"user_id":"u-1",
               "region":"eu-west-1","trace_id":"abc","message":"hi","tenant":"evil","id":"x",
               "attributes":{"tier":"gold","retry":false,"items":3}}"#,
        )
        .expect("valid");
        assert_eq!(ev.timestamp, Micros(NOW.0 - 60_000_000 + 123_000));
        assert_eq!(ev.received_at, NOW);
        assert_eq!(ev.method, Some(Method::Post));
        assert_eq!(ev.status_code, Some(201));
        assert_eq!(ev.latency_ms, Some(42.7));
        assert_eq!(ev.severity, Some(Severity::Info));
        assert_eq!(ev.response_bytes, Some(2048));
        assert_eq!(ev.id, None);
        assert_eq!(
            ev.attributes,
            vec![
                ("tier".into(), AttrValue::Str("gold".into())),
                ("retry".into(), AttrValue::Bool(false)),
                ("items".into(), AttrValue::Num(3.0)),
            ]
        );
    }

    #[test]
    fn defaults_and_epoch_millis() {
        let ev = check(r#"{"event_type":"error","service":null}"#).expect("valid");
        assert_eq!(ev.timestamp, NOW);
        assert_eq!(ev.service, None);
        let ev = check(r#"{"event_type":"x","timestamp":1795600790000}"#).expect("valid");
        assert_eq!(ev.timestamp, Micros(NOW.0 - 10_000_000));
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(fields(check(r#"{}"#)), ["event_type"]);
        assert_eq!(
            fields(check(r#"{"event_type":"Api Call"}"#)),
            ["event_type"]
        );
        let long = "a".repeat(65);
        assert_eq!(
            fields(check(&format!(r#"{{"event_type":"{long}"}}"#))),
            ["event_type"]
        );
        for (body, field) in [
            (r#""status_code":99"#, "status_code"),
            (r#""status_code":600"#, "status_code"),
            (r#""status_code":"200""#, "status_code"),
            (r#""status_code":200.5"#, "status_code"),
            (r#""latency_ms":-1"#, "latency_ms"),
            (r#""latency_ms":"5""#, "latency_ms"),
            (r#""method":"FETCH""#, "method"),
            (r#""severity":"loud""#, "severity"),
            (r#""timestamp":"yesterday""#, "timestamp"),
            (r#""timestamp":"2026-10-01T00:00:00Z""#, "timestamp"),
            (r#""timestamp":"2026-11-25T11:00:01Z""#, "timestamp"),
            (r#""request_bytes":-3"#, "request_bytes"),
            (r#""service":5"#, "service"),
            (r#""attributes":[1]"#, "attributes"),
            (r#""attributes":{"a":{"b":1}}"#, "attributes.a"),
            (r#""attributes":{"a":1,"a":2}"#, "attributes.a"),
        ] {
            let r = check(&format!(r#"{{"event_type":"x",{body}}}"#));
            assert_eq!(fields(r), [field], "{body}");
        }
        assert!(check(r#"{"event_type":"x","timestamp":"2026-11-25T10:59:59Z"}"#).is_ok());
        assert!(check(r#"{"event_type":"x","status_code":200.0,"latency_ms":0}"#).is_ok());
    }

    #[test]
    fn size_limits() {
        let svc = "s".repeat(129);
        assert_eq!(
            fields(check(&format!(r#"{{"event_type":"x","service":"{svc}"}}"#))),
            ["service"]
        );
        let msg = "m".repeat(8 * 1024);
        assert!(check(&format!(r#"{{"event_type":"x","message":"{msg}"}}"#)).is_ok());
        let msg = "m".repeat(8 * 1024 + 1);
        assert_eq!(
            fields(check(&format!(r#"{{"event_type":"x","message":"{msg}"}}"#))),
            ["message"]
        );
        let attrs: Vec<String> = (0..65).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let body = format!(
            r#"{{"event_type":"x","attributes":{{{}}}}}"#,
            attrs.join(",")
        );
        assert_eq!(fields(check(&body)), ["attributes"]);
        let big: Vec<String> = (0..40)
            .map(|i| format!(r#""k{i}":"{}""#, "v".repeat(2000)))
            .collect();
        let body = format!(r#"{{"event_type":"x","attributes":{{{}}}}}"#, big.join(","));
        assert_eq!(fields(check(&body)), ["event"]);
    }

    #[test]
    fn problems_are_all_reported() {
        let r = check(r#"{"status_code":1,"latency_ms":-2,"method":"NOPE"}"#);
        let mut f = fields(r);
        f.sort();
        assert_eq!(f, ["event_type", "latency_ms", "method", "status_code"]);
        let r = validate_item(
            Item::NotObject("a number"),
            &EventLimits::default(),
            &window(),
        );
        assert_eq!(fields(r), ["event"]);
    }
}
