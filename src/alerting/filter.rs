//! Which events a rule looks at (`condition.filter`) and how it splits
//! them into groups (`group_by`): parsing with field-level errors, matching
//! one event, and the same filter as storage predicates for baselines and
//! window rebuilds (so the windows and the stored data agree on "matching").

use std::borrow::Cow;

use pulsestream_storage::event::AttrValue;
use pulsestream_storage::query::{CmpOp, Field, Predicate, Value as QValue};
use pulsestream_storage::{Event, Method, Severity};
use serde_json::Value;

use crate::http::FieldError;

/// Most conditions in one filter: each costs a comparison per event per
/// rule on the aggregation thread.
pub const MAX_FILTER_FIELDS: usize = 16;
/// Most values in one `IN` list.
pub const MAX_FILTER_VALUES: usize = 100;
/// Most group-by fields: each multiplies the number of series.
pub const MAX_GROUP_BY: usize = 4;

/// A field of an event a rule can filter or group on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventField {
    EventType,
    Service,
    Endpoint,
    Method,
    StatusCode,
    Severity,
    Region,
    UserId,
    Attr(String),
}

impl EventField {
    pub fn parse(s: &str) -> Option<EventField> {
        Some(match s {
            "event_type" => EventField::EventType,
            "service" => EventField::Service,
            "endpoint" => EventField::Endpoint,
            "method" => EventField::Method,
            "status_code" => EventField::StatusCode,
            "severity" => EventField::Severity,
            "region" => EventField::Region,
            "user_id" => EventField::UserId,
            _ => {
                let k = s
                    .strip_prefix("attributes.")
                    .or_else(|| s.strip_prefix("attr."))?;
                if k.is_empty() {
                    return None;
                }
                EventField::Attr(k.to_owned())
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            EventField::EventType => "event_type".into(),
            EventField::Service => "service".into(),
            EventField::Endpoint => "endpoint".into(),
            EventField::Method => "method".into(),
            EventField::StatusCode => "status_code".into(),
            EventField::Severity => "severity".into(),
            EventField::Region => "region".into(),
            EventField::UserId => "user_id".into(),
            EventField::Attr(k) => format!("attributes.{k}"),
        }
    }

    fn storage(&self) -> Field {
        match self {
            EventField::EventType => Field::EventType,
            EventField::Service => Field::Service,
            EventField::Endpoint => Field::Endpoint,
            EventField::Method => Field::Method,
            EventField::StatusCode => Field::StatusCode,
            EventField::Severity => Field::Severity,
            EventField::Region => Field::Region,
            EventField::UserId => Field::UserId,
            EventField::Attr(k) => Field::Attr(k.clone()),
        }
    }

    /// The event's value of this field as text, borrowed where it can be
    /// (filters run per event per rule spec: no allocation on that path).
    pub fn text_ref<'e>(&self, e: &'e Event) -> Option<Cow<'e, str>> {
        match self {
            EventField::EventType => Some(Cow::Borrowed(e.event_type.as_str())),
            EventField::Service => e.service.as_deref().map(Cow::Borrowed),
            EventField::Endpoint => e.endpoint.as_deref().map(Cow::Borrowed),
            EventField::Method => e.method.map(|m: Method| Cow::Borrowed(m.as_str())),
            EventField::StatusCode => e.status_code.map(|s| Cow::Owned(s.to_string())),
            EventField::Severity => e.severity.map(|s: Severity| Cow::Borrowed(s.as_str())),
            EventField::Region => e.region.as_deref().map(Cow::Borrowed),
            EventField::UserId => e.user_id.as_deref().map(Cow::Borrowed),
            EventField::Attr(k) => {
                e.attributes
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| match v {
                        AttrValue::Str(s) => Cow::Borrowed(s.as_str()),
                        other => Cow::Owned(attr_text(other)),
                    })
            }
        }
    }

    /// The event's value of this field as text (`None` when absent).
    pub fn text(&self, e: &Event) -> Option<String> {
        match self {
            EventField::EventType => Some(e.event_type.clone()),
            EventField::Service => e.service.clone(),
            EventField::Endpoint => e.endpoint.clone(),
            EventField::Method => e.method.map(|m: Method| m.as_str().to_owned()),
            EventField::StatusCode => e.status_code.map(|s| s.to_string()),
            EventField::Severity => e.severity.map(|s: Severity| s.as_str().to_owned()),
            EventField::Region => e.region.clone(),
            EventField::UserId => e.user_id.clone(),
            EventField::Attr(k) => e
                .attributes
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| attr_text(v)),
        }
    }

    fn number(&self, e: &Event) -> Option<f64> {
        match self {
            EventField::StatusCode => e.status_code.map(f64::from),
            EventField::Attr(k) => e
                .attributes
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| match v {
                    AttrValue::Num(n) => Some(*n),
                    _ => None,
                }),
            _ => None,
        }
    }
}

fn attr_text(v: &AttrValue) -> String {
    match v {
        AttrValue::Str(s) => s.clone(),
        AttrValue::Num(n) => n.to_string(),
        AttrValue::Bool(b) => b.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// Equal to any (as text).
    In(Vec<String>),
    /// `5xx`-style status class.
    Class(u16),
    Cmp(CmpOp, f64),
    Prefix(String),
    Contains(String),
}

/// A compiled filter: the AND of its conditions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    conds: Vec<(EventField, Test)>,
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Filter {
    /// Parses `{"field": value | [values] | {"gte": n, "prefix": s, ...}}`.
    pub fn parse(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) -> Filter {
        let mut f = Filter::default();
        let obj = match v {
            None | Some(Value::Null) => return f,
            Some(Value::Object(o)) => o,
            Some(_) => {
                errs.push(FieldError::new(path, "must be an object"));
                return f;
            }
        };
        if obj.len() > MAX_FILTER_FIELDS {
            errs.push(FieldError::new(
                path,
                format!("at most {MAX_FILTER_FIELDS} fields"),
            ));
            return f;
        }
        for (name, val) in obj {
            let fp = format!("{path}.{name}");
            let Some(field) = EventField::parse(name) else {
                errs.push(FieldError::new(fp, "unknown field"));
                continue;
            };
            match val {
                Value::Array(items) => {
                    if items.is_empty() || items.len() > MAX_FILTER_VALUES {
                        errs.push(FieldError::new(
                            fp,
                            format!("must list 1 to {MAX_FILTER_VALUES} values"),
                        ));
                        continue;
                    }
                    let vals: Option<Vec<String>> = items.iter().map(scalar_text).collect();
                    match vals {
                        Some(v) => f.conds.push((field, Test::In(v))),
                        None => errs.push(FieldError::new(fp, "values must be scalars")),
                    }
                }
                Value::Object(ops) => {
                    for (op, arg) in ops {
                        let op_path = format!("{fp}.{op}");
                        let cmp = match op.as_str() {
                            "gt" => Some(CmpOp::Gt),
                            "gte" => Some(CmpOp::Gte),
                            "lt" => Some(CmpOp::Lt),
                            "lte" => Some(CmpOp::Lte),
                            "ne" => Some(CmpOp::Ne),
                            _ => None,
                        };
                        if let Some(c) = cmp {
                            match arg.as_f64() {
                                Some(n) if n.is_finite() => {
                                    f.conds.push((field.clone(), Test::Cmp(c, n)))
                                }
                                _ => errs.push(FieldError::new(op_path, "must be a number")),
                            }
                            continue;
                        }
                        match (op.as_str(), arg.as_str()) {
                            ("prefix", Some(s)) => {
                                f.conds.push((field.clone(), Test::Prefix(s.to_owned())))
                            }
                            ("contains", Some(s)) => {
                                f.conds.push((field.clone(), Test::Contains(s.to_owned())))
                            }
                            ("prefix" | "contains", None) => {
                                errs.push(FieldError::new(op_path, "must be a string"))
                            }
                            _ => errs.push(FieldError::new(
                                op_path,
                                "unknown operator (gt gte lt lte ne prefix contains)",
                            )),
                        }
                    }
                }
                other => {
                    let Some(text) = scalar_text(other) else {
                        errs.push(FieldError::new(fp, "must be a scalar, list or object"));
                        continue;
                    };
                    if field == EventField::StatusCode
                        && let Some(c) = status_class(&text)
                    {
                        f.conds.push((field, Test::Class(c)));
                    } else {
                        f.conds.push((field, Test::In(vec![text])));
                    }
                }
            }
        }
        f
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.conds.iter().all(|(field, test)| match test {
            Test::In(vals) => field
                .text_ref(e)
                .is_some_and(|t| vals.iter().any(|v| v.as_str() == t.as_ref())),
            Test::Class(c) => e.status_code.is_some_and(|s| s / 100 == *c),
            Test::Cmp(op, n) => field.number(e).is_some_and(|v| match op {
                CmpOp::Gt => v > *n,
                CmpOp::Gte => v >= *n,
                CmpOp::Lt => v < *n,
                CmpOp::Lte => v <= *n,
                CmpOp::Ne => v != *n,
                CmpOp::Eq => v == *n,
            }),
            Test::Prefix(p) => field.text_ref(e).is_some_and(|t| t.starts_with(p.as_str())),
            Test::Contains(p) => field.text_ref(e).is_some_and(|t| t.contains(p.as_str())),
        })
    }

    /// An equality condition every matching event meets, on the most
    /// selective of endpoint, service and event type: (field, the values
    /// it may take). Intake indexes specs by it, so an event visits only
    /// the specs it can match.
    pub fn equality_key(&self) -> Option<(&EventField, &[String])> {
        [
            EventField::Endpoint,
            EventField::Service,
            EventField::EventType,
        ]
        .iter()
        .find_map(|want| {
            self.conds.iter().find_map(|(f, t)| match t {
                Test::In(vals) if f == want => Some((f, vals.as_slice())),
                _ => None,
            })
        })
    }

    /// The same filter for the store's query engine.
    pub fn predicates(&self) -> Vec<Predicate> {
        self.conds
            .iter()
            .map(|(field, test)| {
                let f = field.storage();
                match test {
                    Test::In(vals) => Predicate::In(
                        f,
                        vals.iter()
                            .map(|v| match (field, v.parse::<i64>()) {
                                (EventField::StatusCode, Ok(n)) => QValue::Int(n),
                                _ => QValue::Str(v.clone()),
                            })
                            .collect(),
                    ),
                    Test::Class(c) => Predicate::StatusClass(*c as u8),
                    Test::Cmp(op, n) => Predicate::Cmp(f, *op, *n),
                    Test::Prefix(p) => Predicate::Prefix(f, p.clone()),
                    Test::Contains(p) => Predicate::Contains(f, p.clone()),
                }
            })
            .collect()
    }
}

fn status_class(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    (b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"xx"))
        .then(|| u16::from(b[0] - b'0'))
}

/// Parses `group_by`: a list of field names.
pub fn parse_group_by(v: Option<&Value>, errs: &mut Vec<FieldError>) -> Vec<EventField> {
    let items = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => {
            errs.push(FieldError::new("group_by", "must be a list of field names"));
            return Vec::new();
        }
    };
    if items.len() > MAX_GROUP_BY {
        errs.push(FieldError::new(
            "group_by",
            format!("at most {MAX_GROUP_BY} fields"),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        match it.as_str().and_then(EventField::parse) {
            Some(f) if !out.contains(&f) => out.push(f),
            Some(_) => errs.push(FieldError::new(format!("group_by[{i}]"), "duplicate field")),
            None => errs.push(FieldError::new(
                format!("group_by[{i}]"),
                "unknown field (event_type service endpoint method status_code severity region user_id attributes.KEY)",
            )),
        }
    }
    out
}

/// Storage fields for a group-by list (baseline queries).
pub fn storage_fields(g: &[EventField]) -> Vec<Field> {
    g.iter().map(EventField::storage).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(service: &str, status: u16) -> Event {
        Event {
            event_type: "api_call".into(),
            service: Some(service.into()),
            endpoint: Some("/api/v1/orders".into()),
            status_code: Some(status),
            ..Event::default()
        }
    }

    #[test]
    fn filters_match_like_the_query_language() {
        let mut errs = Vec::new();
        let f = Filter::parse(
            Some(
                &json!({"service": ["checkout", "auth"], "status_code": "5xx",
                         "endpoint": {"prefix": "/api/v1/"}}),
            ),
            "condition.filter",
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert!(f.matches(&ev("checkout", 503)));
        assert!(!f.matches(&ev("checkout", 404)));
        assert!(!f.matches(&ev("search", 500)));
        assert_eq!(f.predicates().len(), 3);
    }

    #[test]
    fn the_equality_key_prefers_the_most_selective_field() {
        let mut errs = Vec::new();
        let f = Filter::parse(
            Some(
                &json!({"service": ["checkout", "auth"], "endpoint": {"prefix": "/a"},
                         "event_type": "api_call"}),
            ),
            "f",
            &mut errs,
        );
        let (field, vals) = f.equality_key().expect("key");
        assert_eq!(*field, EventField::Service);
        assert_eq!(vals, ["checkout".to_owned(), "auth".to_owned()]);
        let g = Filter::parse(Some(&json!({"status_code": "5xx"})), "f", &mut errs);
        assert!(g.equality_key().is_none());
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn bad_filters_name_the_field() {
        let mut errs = Vec::new();
        Filter::parse(
            Some(&json!({"nope": 1, "status_code": {"gte": "x"}})),
            "condition.filter",
            &mut errs,
        );
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"condition.filter.nope"), "{fields:?}");
        assert!(
            fields.contains(&"condition.filter.status_code.gte"),
            "{fields:?}"
        );
    }
}
