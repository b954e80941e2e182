//! The search filters of the query string (contract section 5), shared by
//! search, statistics and export: `from to event_type service endpoint
//! method status_code min_latency_ms user_id trace_id q attr.KEY`, plus
//! `limit` and `cursor`.
//!
//! Pure: pairs in, storage predicates out, every bad value reported with
//! its parameter name. Unknown parameters are ignored (export's `format`
//! travels in the same string).

use pulsestream_storage::query::{CmpOp, Field, Predicate, TimeRange, Value};
use pulsestream_storage::{EventId, Method, Micros, Severity};

use super::timeparse;

/// Events a search answers when no `limit` is given (contract section 2).
pub const DEFAULT_SEARCH_LIMIT: usize = 100;
/// Most events one search page holds: a page is buffered whole, and 1000
/// events are about 400 KB of JSON.
pub const MAX_SEARCH_LIMIT: usize = 1000;
/// Range used when `from` is not given: the last hour.
pub const DEFAULT_RANGE_MICROS: i64 = Micros::HOUR;

/// One bad parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a search-like request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    pub range: TimeRange,
    pub filter: Vec<Predicate>,
    pub limit: usize,
    pub cursor: Option<EventId>,
}

/// Resolves `from`/`to` (either may be absent) against `now`: the default
/// is the last hour, and `from` must come before `to`.
pub fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    now: Micros,
    errors: &mut Vec<ParamError>,
) -> TimeRange {
    let mut bound = |name: &str, v: Option<&str>, default: Micros| match v {
        None => default,
        Some(s) => timeparse::parse_range_bound(s, now).unwrap_or_else(|e| {
            errors.push(ParamError::new(name, e.to_string()));
            default
        }),
    };
    let to_t = bound("to", to, now);
    let from_t = bound(
        "from",
        from,
        Micros(to_t.0.saturating_sub(DEFAULT_RANGE_MICROS)),
    );
    if from_t >= to_t && errors.is_empty() {
        errors.push(ParamError::new("from", "must be before `to`"));
    }
    TimeRange {
        from: from_t,
        to: to_t,
    }
}

/// Parses the search parameters from decoded query-string pairs.
pub fn parse_search(
    pairs: &[(String, String)],
    now: Micros,
) -> Result<SearchParams, Vec<ParamError>> {
    let mut errors = Vec::new();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let range = time_range(get("from"), get("to"), now, &mut errors);
    let filter = parse_filters(pairs, &mut errors);

    let limit = match get("limit") {
        None => DEFAULT_SEARCH_LIMIT,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_SEARCH_LIMIT),
            _ => {
                errors.push(ParamError::new(
                    "limit",
                    format!("must be an integer between 1 and {MAX_SEARCH_LIMIT}"),
                ));
                DEFAULT_SEARCH_LIMIT
            }
        },
    };
    let cursor = match get("cursor") {
        None | Some("") => None,
        Some(c) => {
            let id = EventId::from_hex(c);
            if id.is_none() {
                errors.push(ParamError::new(
                    "cursor",
                    "is not a cursor this server issued",
                ));
            }
            id
        }
    };
    if errors.is_empty() {
        Ok(SearchParams {
            range,
            filter,
            limit,
            cursor,
        })
    } else {
        Err(errors)
    }
}

/// Appends `v` to the `In` predicate on `field` in `out`, creating it: a
/// repeated parameter (`service=a&service=b`) means either value.
fn push_in(out: &mut Vec<Predicate>, field: Field, v: Value) {
    for p in out.iter_mut() {
        if let Predicate::In(f, vs) = p
            && *f == field
        {
            vs.push(v);
            return;
        }
    }
    out.push(Predicate::In(field, vec![v]));
}

/// The filter parameters among `pairs`, as predicates (ANDed).
pub fn parse_filters(pairs: &[(String, String)], errors: &mut Vec<ParamError>) -> Vec<Predicate> {
    let mut out = Vec::new();
    let mut classes: Vec<u8> = Vec::new();
    for (k, v) in pairs {
        let k = k.as_str();
        match k {
            "event_type" | "service" | "endpoint" | "user_id" | "trace_id" | "region" => {
                if let Some(field) = Field::parse(k) {
                    push_in(&mut out, field, Value::Str(v.clone()));
                }
            }
            "method" => match Method::parse(v.trim()) {
                Some(m) => push_in(&mut out, Field::Method, Value::Str(m.as_str().to_owned())),
                None => errors.push(ParamError::new(k, "must be an HTTP method")),
            },
            "severity" => match Severity::parse(v.trim()) {
                Some(s) => push_in(&mut out, Field::Severity, Value::Str(s.as_str().to_owned())),
                None => errors.push(ParamError::new(
                    k,
                    "must be one of debug, info, warning, error, critical",
                )),
            },
            "status_code" => match parse_status(v) {
                Some(Status::Code(c)) => push_in(&mut out, Field::StatusCode, Value::Int(c)),
                Some(Status::Class(c)) => classes.push(c),
                None => errors.push(ParamError::new(
                    k,
                    "must be a status code (500) or a class (5xx)",
                )),
            },
            "min_latency_ms" => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => out.push(Predicate::Cmp(Field::LatencyMs, CmpOp::Gte, x)),
                _ => errors.push(ParamError::new(k, "must be a number")),
            },
            "q" => {
                if !v.is_empty() {
                    out.push(Predicate::Contains(Field::Message, v.clone()));
                }
            }
            _ => {
                if let Some(key) = k
                    .strip_prefix("attr.")
                    .or_else(|| k.strip_prefix("attributes."))
                {
                    if key.is_empty() {
                        errors.push(ParamError::new(
                            k,
                            "needs an attribute name (attr.KEY=VALUE)",
                        ));
                        continue;
                    }
                    for value in attr_values(v) {
                        push_in(&mut out, Field::Attr(key.to_owned()), value);
                    }
                }
            }
        }
    }
    match classes.as_slice() {
        [] => {}
        [c] => out.push(Predicate::StatusClass(*c)),
        // Several classes mean any of them: `status_code >= lo AND < hi`
        // cannot say that, so spell the codes of the classes out.
        many => {
            let codes = many
                .iter()
                .flat_map(|c| (u16::from(*c) * 100)..(u16::from(*c) * 100 + 100))
                .map(|c| Value::Int(i64::from(c)))
                .collect();
            out.push(Predicate::In(Field::StatusCode, codes));
        }
    }
    out
}

enum Status {
    Code(i64),
    Class(u8),
}

fn parse_status(v: &str) -> Option<Status> {
    let v = v.trim();
    let b = v.as_bytes();
    if b.len() == 3 && b[1..].eq_ignore_ascii_case(b"xx") && (b'1'..=b'5').contains(&b[0]) {
        return Some(Status::Class(b[0] - b'0'));
    }
    match v.parse::<i64>() {
        Ok(c) if (100..=599).contains(&c) => Some(Status::Code(c)),
        _ => None,
    }
}

/// An attribute value from a query string matches the string and, when it
/// reads as one, the number or boolean the agent may have sent instead.
pub fn attr_values(v: &str) -> Vec<Value> {
    let mut vs = vec![Value::Str(v.to_owned())];
    match v {
        "true" => vs.push(Value::Bool(true)),
        "false" => vs.push(Value::Bool(false)),
        _ => {
            if let Ok(x) = v.parse::<f64>()
                && x.is_finite()
            {
                vs.push(Value::Float(x));
            }
        }
    }
    vs
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = Micros(1_795_600_800_000_000);

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let p = parse_search(&[], NOW).expect("ok");
        assert_eq!(p.range.to, NOW);
        assert_eq!(p.range.from, Micros(NOW.0 - Micros::HOUR));
        assert_eq!(p.limit, DEFAULT_SEARCH_LIMIT);
        assert!(p.filter.is_empty() && p.cursor.is_none());
    }

    #[test]
    fn every_filter_maps_to_a_predicate() {
        let p = parse_search(
            &pairs(&[
                ("from", "now-15m"),
                ("to", "now"),
                ("event_type", "api_call"),
                ("service", "a"),
                ("service", "b"),
                ("endpoint", "/x"),
                ("method", "get"),
                ("status_code", "5xx"),
                ("min_latency_ms", "100"),
                ("user_id", "u1"),
                ("trace_id", "t1"),
                ("q", "timeout"),
                ("attr.tier", "gold"),
                ("limit", "5000"),
                ("format", "csv"),
            ]),
            NOW,
        )
        .expect("ok");
        assert_eq!(p.range.from, Micros(NOW.0 - 15 * Micros::MINUTE));
        assert_eq!(p.limit, MAX_SEARCH_LIMIT);
        let f = &p.filter;
        assert!(f.contains(&Predicate::In(
            Field::Service,
            vec![Value::Str("a".into()), Value::Str("b".into())]
        )));
        assert!(f.contains(&Predicate::In(
            Field::Method,
            vec![Value::Str("GET".into())]
        )));
        assert!(f.contains(&Predicate::StatusClass(5)));
        assert!(f.contains(&Predicate::Cmp(Field::LatencyMs, CmpOp::Gte, 100.0)));
        assert!(f.contains(&Predicate::Contains(Field::Message, "timeout".into())));
        assert!(f.contains(&Predicate::In(
            Field::Attr("tier".into()),
            vec![Value::Str("gold".into())]
        )));
        assert_eq!(f.len(), 10);
    }

    #[test]
    fn status_codes_and_classes() {
        let mut e = Vec::new();
        let f = parse_filters(&pairs(&[("status_code", "404")]), &mut e);
        assert_eq!(
            f,
            vec![Predicate::In(Field::StatusCode, vec![Value::Int(404)])]
        );
        let f = parse_filters(
            &pairs(&[("status_code", "4xx"), ("status_code", "5XX")]),
            &mut e,
        );
        let Predicate::In(Field::StatusCode, codes) = &f[0] else {
            panic!("codes expected")
        };
        assert_eq!(codes.len(), 200);
        assert!(e.is_empty());
        parse_filters(&pairs(&[("status_code", "6xx")]), &mut e);
        parse_filters(&pairs(&[("status_code", "abc")]), &mut e);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let e = parse_search(
            &pairs(&[
                ("from", "yesterday"),
                ("limit", "0"),
                ("cursor", "nope"),
                ("method", "FETCH"),
                ("min_latency_ms", "x"),
            ]),
            NOW,
        )
        .expect_err("bad");
        let names: Vec<&str> = e.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            names,
            ["from", "method", "min_latency_ms", "limit", "cursor"]
        );
        let e = parse_search(&pairs(&[("from", "now"), ("to", "now-1h")]), NOW).expect_err("order");
        assert_eq!(e[0].field, "from");
    }

    #[test]
    fn attribute_values_try_other_types() {
        assert_eq!(
            attr_values("3"),
            vec![Value::Str("3".into()), Value::Float(3.0)]
        );
        assert_eq!(
            attr_values("true"),
            vec![Value::Str("true".into()), Value::Bool(true)]
        );
        assert_eq!(attr_values("x"), vec![Value::Str("x".into())]);
    }
}
