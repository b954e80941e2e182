//! A subscription's event filter: the search filters of
//! `GET /api/v1/ingestion/events/search` (same names, same meaning), given
//! as a JSON object, and their test against one event in memory.
//!
//! Parsing goes through `read::filters::parse_filters`, so a name the search
//! API accepts is accepted here with the same semantics, and matching
//! implements the storage predicates it yields.

use pulsestream_storage::Event;
use pulsestream_storage::event::AttrValue;
use pulsestream_storage::query::{CmpOp, Field, Predicate, Value};
use serde_json::Value as Json;

use crate::read::filters::{ParamError, parse_filters};

/// Most filter entries in one subscription: each costs a test per event per
/// subscriber on the fan-out task.
pub const MAX_FILTER_ENTRIES: usize = 32;

/// A compiled filter: every predicate must hold.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    preds: Vec<Predicate>,
}

impl EventFilter {
    /// Parses `{"service": "api", "status_code": "5xx", "attr.plan": ["a","b"]}`.
    /// A list means any of its values; `null` or `{}` matches everything.
    pub fn parse(v: Option<&Json>) -> Result<EventFilter, String> {
        let obj = match v {
            None | Some(Json::Null) => return Ok(EventFilter::default()),
            Some(Json::Object(o)) => o,
            Some(_) => return Err("filter must be an object".into()),
        };
        let mut pairs = Vec::new();
        for (k, v) in obj {
            let items: Vec<&Json> = match v {
                Json::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let text = match item {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    Json::Bool(b) => b.to_string(),
                    // The UI sends empty fields as null: no condition.
                    Json::Null => continue,
                    _ => return Err(format!("filter.{k}: values must be scalars")),
                };
                if text.is_empty() {
                    continue;
                }
                pairs.push((k.clone(), text));
            }
        }
        if pairs.len() > MAX_FILTER_ENTRIES {
            return Err(format!("filter: at most {MAX_FILTER_ENTRIES} entries"));
        }
        let mut errors: Vec<ParamError> = Vec::new();
        let preds = parse_filters(&pairs, &mut errors);
        if let Some(e) = errors.first() {
            return Err(format!("filter.{}: {}", e.field, e.message));
        }
        Ok(EventFilter { preds })
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.preds.iter().all(|p| holds(p, e))
    }
}

/// A field's value on an event, in the query engine's terms.
fn value_of(f: &Field, e: &Event) -> Value {
    let s = |o: &Option<String>| o.clone().map_or(Value::Null, Value::Str);
    match f {
        Field::Timestamp => Value::Time(e.timestamp),
        Field::ReceivedAt => Value::Time(e.received_at),
        Field::EventType => Value::Str(e.event_type.clone()),
        Field::Service => s(&e.service),
        Field::Endpoint => s(&e.endpoint),
        Field::Method => e
            .method
            .map_or(Value::Null, |m| Value::Str(m.as_str().to_owned())),
        Field::StatusCode => e
            .status_code
            .map_or(Value::Null, |c| Value::Int(i64::from(c))),
        Field::StatusClass => e
            .status_code
            .map_or(Value::Null, |c| Value::Str(format!("{}xx", c / 100))),
        Field::LatencyMs => e.latency_ms.map_or(Value::Null, Value::Float),
        Field::Severity => e
            .severity
            .map_or(Value::Null, |v| Value::Str(v.as_str().to_owned())),
        Field::RequestBytes => e
            .request_bytes
            .map_or(Value::Null, |b| Value::Float(b as f64)),
        Field::ResponseBytes => e
            .response_bytes
            .map_or(Value::Null, |b| Value::Float(b as f64)),
        Field::UserId => s(&e.user_id),
        Field::Region => s(&e.region),
        Field::TraceId => s(&e.trace_id),
        Field::Message => s(&e.message),
        Field::Attr(k) => match e.attributes.iter().find(|(key, _)| key == k) {
            Some((_, AttrValue::Str(v))) => Value::Str(v.clone()),
            Some((_, AttrValue::Num(n))) => Value::Float(*n),
            Some((_, AttrValue::Bool(b))) => Value::Bool(*b),
            None => Value::Null,
        },
        Field::Tenant => Value::Null,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Time(t) => Some(t.0 as f64),
        _ => None,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, _) | (_, Value::Null) => false,
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

fn holds(p: &Predicate, e: &Event) -> bool {
    match p {
        Predicate::In(f, vals) => {
            let v = value_of(f, e);
            vals.iter().any(|x| same(&v, x))
        }
        Predicate::Cmp(f, op, n) => number(&value_of(f, e)).is_some_and(|v| match op {
            CmpOp::Gt => v > *n,
            CmpOp::Gte => v >= *n,
            CmpOp::Lt => v < *n,
            CmpOp::Lte => v <= *n,
            CmpOp::Ne => v != *n,
            CmpOp::Eq => v == *n,
        }),
        Predicate::Prefix(f, p) => {
            matches!(value_of(f, e), Value::Str(s) if s.starts_with(p.as_str()))
        }
        Predicate::Contains(f, p) => {
            matches!(value_of(f, e), Value::Str(s) if s.contains(p.as_str()))
        }
        Predicate::StatusClass(c) => e.status_code.is_some_and(|s| s / 100 == u16::from(*c)),
        Predicate::Exists(f) => !matches!(value_of(f, e), Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::Micros;
    use serde_json::json;

    fn ev(service: &str, status: u16, latency: f64) -> Event {
        Event {
            id: None,
            timestamp: Micros(0),
            received_at: Micros(0),
            event_type: "api_call".into(),
            service: Some(service.into()),
            endpoint: Some("/x".into()),
            method: None,
            status_code: Some(status),
            latency_ms: Some(latency),
            severity: None,
            request_bytes: None,
            response_bytes: None,
            user_id: None,
            region: None,
            trace_id: None,
            message: Some("payment declined".into()),
            attributes: vec![("plan".into(), AttrValue::Str("pro".into()))],
        }
    }

    #[test]
    fn search_filters_match_like_the_search_api() {
        let f = EventFilter::parse(Some(
            &json!({"service": ["api", "web"], "status_code": "5xx"}),
        ))
        .expect("valid");
        assert!(f.matches(&ev("api", 503, 1.0)));
        assert!(!f.matches(&ev("api", 200, 1.0)));
        assert!(!f.matches(&ev("db", 500, 1.0)));
        let f = EventFilter::parse(Some(
            &json!({"min_latency_ms": 100, "q": "declined", "attr.plan": "pro"}),
        ))
        .expect("valid");
        assert!(f.matches(&ev("api", 200, 150.0)));
        assert!(!f.matches(&ev("api", 200, 50.0)));
        assert!(
            EventFilter::parse(None)
                .expect("none")
                .matches(&ev("x", 200, 0.0))
        );
    }

    #[test]
    fn bad_filters_are_refused_with_the_field() {
        let e = EventFilter::parse(Some(&json!({"status_code": "abc"}))).expect_err("bad");
        assert!(e.contains("status_code"), "{e}");
        assert!(EventFilter::parse(Some(&json!([1]))).is_err());
    }
}
