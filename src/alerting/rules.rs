//! Alert rules: the contract's rule document (section 7 and the baselines
//! of section 12), validated into a `Rule` the evaluator can run.
//!
//! A rule is stored as the normalised JSON it was created with (plus `id`
//! and times) and compiled again on load, so what the API answers is what
//! was accepted, and there is one parser.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::filter::{EventField, Filter, parse_group_by};
use super::window::{HORIZON_SECS, Needs};
use crate::http::FieldError;

/// Longest rule name (bytes).
pub const MAX_NAME_BYTES: usize = 200;
/// Most labels on a rule; they travel in every notification.
pub const MAX_LABELS: usize = 32;
/// Most channels on a rule or an escalation step.
pub const MAX_CHANNELS: usize = 16;
/// Most escalation steps.
pub const MAX_ESCALATION_STEPS: usize = 8;
/// Longest baseline offset: rollups of older data may be gone by retention,
/// and a month covers "same time last week" with room to spare.
pub const MAX_BASELINE_OFFSET_SECS: i64 = 31 * 86_400;
/// Longest `for`, `keep_firing_for`, `repeat_interval` or escalation delay.
pub const MAX_DELAY_SECS: i64 = 30 * 86_400;
/// Longest label key/value or URL (bytes).
pub const MAX_TEXT_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Count,
    Rate,
    ErrorRate,
    ErrorCount,
    AvgLatency,
    P50,
    P90,
    P95,
    P99,
    DistinctUsers,
    NoData,
}

impl Metric {
    pub fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "count" => Metric::Count,
            "rate" => Metric::Rate,
            "error_rate" => Metric::ErrorRate,
            "error_count" => Metric::ErrorCount,
            "avg_latency" => Metric::AvgLatency,
            "p50_latency" => Metric::P50,
            "p90_latency" => Metric::P90,
            "p95_latency" => Metric::P95,
            "p99_latency" => Metric::P99,
            "count_distinct_users" => Metric::DistinctUsers,
            "no_data" => Metric::NoData,
            _ => return None,
        })
    }

    pub fn needs(self) -> Needs {
        Needs {
            latency_sketch: matches!(self, Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99),
            users: self == Metric::DistinctUsers,
        }
    }

    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.5),
            Metric::P90 => Some(0.9),
            Metric::P95 => Some(0.95),
            Metric::P99 => Some(0.99),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Ne,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Gte,
            "<" => Op::Lt,
            "<=" => Op::Lte,
            "==" | "=" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Gte => a >= b,
            Op::Lt => a < b,
            Op::Lte => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub offset_secs: i64,
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub struct EscalationStep {
    pub after_secs: i64,
    pub channels: Vec<String>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub severity: String,
    pub metric: Metric,
    pub filter: Filter,
    pub window_secs: i64,
    pub op: Op,
    pub threshold: f64,
    pub min_events: u64,
    pub baseline: Option<Baseline>,
    pub group_by: Vec<EventField>,
    pub for_secs: i64,
    pub keep_firing_secs: i64,
    pub repeat_secs: i64,
    pub channels: Vec<String>,
    pub escalation: Vec<EscalationStep>,
    pub labels: BTreeMap<String, String>,
    pub runbook_url: Option<String>,
    /// Rules with the same key share their series (filter + group-by).
    pub spec_key: String,
    pub created_at: i64,
    /// The stored document (what the API answers).
    pub doc: Value,
}

fn dur(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    max: i64,
    errs: &mut Vec<FieldError>,
) -> Option<i64> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match crate::config::parse_duration(s) {
            Ok(d) if (d.as_secs() as i64) <= max => Some(d.as_secs() as i64),
            Ok(_) => {
                errs.push(FieldError::new(path, format!("must be at most {max}s")));
                None
            }
            Err(m) => {
                errs.push(FieldError::new(path, m));
                None
            }
        },
        Some(_) => {
            errs.push(FieldError::new(path, "must be a duration like 30s, 5m, 1h"));
            None
        }
    }
}

fn channel_list(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_CHANNELS => {
            let mut out = Vec::new();
            for (i, c) in a.iter().enumerate() {
                match c.as_str() {
                    Some(s) if !s.is_empty() && s.len() <= 64 => out.push(s.to_owned()),
                    _ => errs.push(FieldError::new(
                        format!("{path}[{i}]"),
                        "must be a channel id",
                    )),
                }
            }
            out
        }
        Some(_) => {
            errs.push(FieldError::new(
                path,
                format!("must be a list of at most {MAX_CHANNELS} channel ids"),
            ));
            Vec::new()
        }
    }
}

/// Is `s` an absolute http(s) URL with a host?
pub fn is_http_url(s: &str) -> bool {
    match s.parse::<hyper::Uri>() {
        Ok(u) => matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some(),
        Err(_) => false,
    }
}

/// Validates a rule document. `id` and `created_at` are kept from the
/// stored rule on update. Unknown channel ids are the caller's check.
pub fn compile(body: &Value, id: &str, created_at: i64) -> Result<Rule, Vec<FieldError>> {
    let mut errs = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let name = match obj.get("name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() && n.len() <= MAX_NAME_BYTES => n.trim().to_owned(),
        _ => {
            errs.push(FieldError::new(
                "name",
                format!("required, 1 to {MAX_NAME_BYTES} bytes"),
            ));
            String::new()
        }
    };
    let enabled = match obj.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errs.push(FieldError::new("enabled", "must be true or false"));
            true
        }
    };
    let severity = match obj.get("severity") {
        None | Some(Value::Null) => "warning".to_owned(),
        Some(Value::String(s)) if matches!(s.as_str(), "critical" | "warning" | "info") => {
            s.clone()
        }
        Some(_) => {
            errs.push(FieldError::new(
                "severity",
                "must be one of critical, warning, info",
            ));
            "warning".to_owned()
        }
    };
    let empty = Map::new();
    let cond = match obj.get("condition") {
        Some(Value::Object(c)) => c,
        _ => {
            errs.push(FieldError::new("condition", "required object"));
            &empty
        }
    };
    let metric = match cond
        .get("metric")
        .and_then(Value::as_str)
        .map(Metric::parse)
    {
        Some(Some(m)) => m,
        _ => {
            errs.push(FieldError::new(
                "condition.metric",
                "must be one of count, rate, error_rate, error_count, avg_latency, p50_latency, p90_latency, p95_latency, p99_latency, count_distinct_users, no_data",
            ));
            Metric::Count
        }
    };
    let filter = Filter::parse(cond.get("filter"), "condition.filter", &mut errs);
    let window_secs = match dur(cond, "window", "condition.window", HORIZON_SECS, &mut errs) {
        Some(w) if w >= 1 => w,
        Some(_) => {
            errs.push(FieldError::new("condition.window", "must be at least 1s"));
            60
        }
        None => {
            if !matches!(cond.get("window"), Some(v) if !v.is_null()) {
                errs.push(FieldError::new(
                    "condition.window",
                    "required, a duration like 5m (at most 1h)",
                ));
            }
            60
        }
    };
    let no_data = metric == Metric::NoData;
    let op = match cond.get("op") {
        None | Some(Value::Null) if no_data => Op::Gt,
        Some(Value::String(s)) if Op::parse(s).is_some() => Op::parse(s).unwrap_or(Op::Gt),
        _ => {
            errs.push(FieldError::new(
                "condition.op",
                "required, one of > >= < <= == !=",
            ));
            Op::Gt
        }
    };
    let threshold = match cond.get("threshold") {
        None | Some(Value::Null) if no_data => 0.0,
        Some(v) if v.as_f64().is_some_and(f64::is_finite) => v.as_f64().unwrap_or(0.0),
        _ => {
            errs.push(FieldError::new("condition.threshold", "required number"));
            0.0
        }
    };
    let min_events = match cond.get("min_events") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_u64() {
            Some(n) => n,
            None => {
                errs.push(FieldError::new(
                    "condition.min_events",
                    "must be a non-negative integer",
                ));
                0
            }
        },
    };
    let baseline = match cond.get("baseline") {
        None | Some(Value::Null) => None,
        Some(Value::Object(b)) => {
            if no_data {
                errs.push(FieldError::new(
                    "condition.baseline",
                    "not allowed with no_data",
                ));
            }
            let offset = dur(
                b,
                "offset",
                "condition.baseline.offset",
                MAX_BASELINE_OFFSET_SECS,
                &mut errs,
            );
            let factor = b.get("factor").and_then(Value::as_f64);
            match (offset, factor) {
                (Some(o), Some(f)) if o >= 1 && f.is_finite() && f > 0.0 => Some(Baseline {
                    offset_secs: o,
                    factor: f,
                }),
                (o, f) => {
                    if o.is_none_or(|o| o < 1) {
                        errs.push(FieldError::new(
                            "condition.baseline.offset",
                            "required, a duration like 1d",
                        ));
                    }
                    if !f.is_some_and(|f| f.is_finite() && f > 0.0) {
                        errs.push(FieldError::new(
                            "condition.baseline.factor",
                            "required positive number",
                        ));
                    }
                    None
                }
            }
        }
        Some(_) => {
            errs.push(FieldError::new(
                "condition.baseline",
                "must be an object {offset, factor}",
            ));
            None
        }
    };
    let group_by = parse_group_by(obj.get("group_by"), &mut errs);
    let for_secs = dur(obj, "for", "for", MAX_DELAY_SECS, &mut errs).unwrap_or(0);
    let keep_firing_secs = dur(
        obj,
        "keep_firing_for",
        "keep_firing_for",
        MAX_DELAY_SECS,
        &mut errs,
    )
    .unwrap_or(0);
    let repeat_secs = dur(
        obj,
        "repeat_interval",
        "repeat_interval",
        MAX_DELAY_SECS,
        &mut errs,
    )
    .unwrap_or(0);
    let channels = channel_list(obj.get("channels"), "channels", &mut errs);
    let mut escalation = Vec::new();
    match obj.get("escalation") {
        None | Some(Value::Null) => {}
        Some(Value::Array(steps)) if steps.len() <= MAX_ESCALATION_STEPS => {
            for (i, s) in steps.iter().enumerate() {
                let path = format!("escalation[{i}]");
                let Some(so) = s.as_object() else {
                    errs.push(FieldError::new(path, "must be {after, channels}"));
                    continue;
                };
                let after = dur(
                    so,
                    "after",
                    &format!("{path}.after"),
                    MAX_DELAY_SECS,
                    &mut errs,
                );
                let ch = channel_list(so.get("channels"), &format!("{path}.channels"), &mut errs);
                match after {
                    Some(a) if !ch.is_empty() => escalation.push(EscalationStep {
                        after_secs: a,
                        channels: ch,
                    }),
                    Some(_) => errs.push(FieldError::new(
                        format!("{path}.channels"),
                        "at least one channel",
                    )),
                    None => errs.push(FieldError::new(format!("{path}.after"), "required")),
                }
            }
        }
        Some(_) => errs.push(FieldError::new(
            "escalation",
            format!("must be a list of at most {MAX_ESCALATION_STEPS} steps"),
        )),
    }
    let mut labels = BTreeMap::new();
    match obj.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(l)) if l.len() <= MAX_LABELS => {
            for (k, v) in l {
                match v.as_str() {
                    Some(s)
                        if !k.is_empty()
                            && k.len() <= MAX_TEXT_BYTES
                            && s.len() <= MAX_TEXT_BYTES =>
                    {
                        labels.insert(k.clone(), s.to_owned());
                    }
                    _ => errs.push(FieldError::new(format!("labels.{k}"), "must be a string")),
                }
            }
        }
        Some(_) => errs.push(FieldError::new(
            "labels",
            format!("must be an object of at most {MAX_LABELS} strings"),
        )),
    }
    let runbook_url = match obj.get("runbook_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_TEXT_BYTES && is_http_url(s) => Some(s.clone()),
        Some(_) => {
            errs.push(FieldError::new("runbook_url", "must be an http(s) URL"));
            None
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let spec_key = spec_key(&filter, &group_by);
    let mut doc = body.clone();
    if let Some(d) = doc.as_object_mut() {
        d.insert("id".into(), json!(id));
        d.insert("name".into(), json!(name));
        d.insert("enabled".into(), json!(enabled));
        d.insert("severity".into(), json!(severity));
    }
    Ok(Rule {
        id: id.to_owned(),
        name,
        enabled,
        severity,
        metric,
        filter,
        window_secs,
        op,
        threshold,
        min_events,
        baseline,
        group_by,
        for_secs,
        keep_firing_secs,
        repeat_secs,
        channels,
        escalation,
        labels,
        runbook_url,
        spec_key,
        created_at,
        doc,
    })
}

/// The identity of a rule's series: its filter and group-by fields.
pub fn spec_key(filter: &Filter, group_by: &[EventField]) -> String {
    let g: Vec<String> = group_by.iter().map(EventField::name).collect();
    format!("{filter:?}|{}", g.join(","))
}

impl Rule {
    /// Every channel the rule can notify (its own and its escalations').
    pub fn all_channels(&self) -> impl Iterator<Item = &String> {
        self.channels
            .iter()
            .chain(self.escalation.iter().flat_map(|s| s.channels.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Result<Rule, Vec<FieldError>> {
        compile(&v, "r_1", 0)
    }

    #[test]
    fn the_contract_example_compiles() {
        let r = rule(json!({
            "name": "Checkout error rate", "enabled": true, "severity": "critical",
            "condition": {"metric": "error_rate", "filter": {"service": "checkout"}, "window": "5m",
                          "op": ">", "threshold": 0.05, "min_events": 20},
            "group_by": ["endpoint"], "for": "1m", "keep_firing_for": "0s", "repeat_interval": "4h",
            "channels": ["ch_a"], "escalation": [{"after": "15m", "channels": ["ch_oncall"]}],
            "labels": {"team": "payments"}, "runbook_url": "https://runbooks.example/checkout"
        }))
        .expect("valid");
        assert_eq!(r.window_secs, 300);
        assert_eq!(r.for_secs, 60);
        assert_eq!(r.repeat_secs, 4 * 3600);
        assert_eq!(r.escalation[0].after_secs, 900);
        assert_eq!(r.doc["id"], "r_1");
    }

    #[test]
    fn no_data_needs_no_op_or_threshold() {
        let r = rule(json!({"name": "silent", "condition": {"metric": "no_data", "window": "2m"}}))
            .expect("valid");
        assert_eq!(r.metric, Metric::NoData);
    }

    #[test]
    fn errors_name_every_bad_field() {
        let errs = rule(
            json!({"condition": {"metric": "nope", "window": "2h", "op": "~"},
                               "for": 5, "runbook_url": "ftp://x"}),
        )
        .expect_err("invalid");
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "name",
            "condition.metric",
            "condition.window",
            "condition.op",
            "condition.threshold",
            "for",
            "runbook_url",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn baselines_are_checked() {
        let errs = rule(
            json!({"name": "b", "condition": {"metric": "p95_latency", "window": "5m",
            "op": ">", "threshold": 300, "baseline": {"offset": "1d", "factor": -1}}}),
        )
        .expect_err("invalid");
        assert_eq!(errs[0].field, "condition.baseline.factor");
    }
}
