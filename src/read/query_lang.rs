//! The JSON query language of `POST /api/v1/query` (contract section 5):
//! bytes in, a validated storage `Query` out, or every problem found, each
//! naming the member at fault (`filter.status_code`, `aggregations[2].op`).
//!
//! Pure and total: any bytes give `Ok` or `Err`, never a panic (the fuzz
//! target `query_lang` holds it to that). Who may read which tenants is
//! decided here too, from the caller's `QueryScope`, so no handler can
//! forget it.

use pulsestream_storage::TenantId;
use pulsestream_storage::query::{
    AggOp, Aggregation, CmpOp, DEFAULT_APDEX_T_MICROS, DEFAULT_QUERY_LIMIT, Field,
    MAX_APDEX_T_MICROS, MAX_QUERY_LIMIT, OrderBy, Predicate, Query, Value,
};
use pulsestream_storage::{Method, Micros, Severity};
use serde_json::{Map, Value as Json};

use super::filters::{ParamError, attr_values, time_range};
use super::timeparse;

/// Most `group_by` fields: each multiplies the groups a query can make.
pub const MAX_GROUP_BY: usize = 8;
/// Most aggregations in one query.
pub const MAX_AGGREGATIONS: usize = 32;
/// Most buckets an `interval` may cut the range into: empty buckets are
/// returned too, so this bounds the answer (10 000 is a week of minutes).
pub const MAX_BUCKETS: i64 = 10_080;
/// Most values in one `in` list or array filter.
pub const MAX_IN_VALUES: usize = 1000;
/// Most tenants one cross-tenant query may name.
pub const MAX_TENANTS: usize = 1000;

/// Who is asking, which decides which tenants a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryScope {
    /// A tenant's user or read key: exactly that tenant.
    Tenant(TenantId),
    /// The platform administrator: tenants named in `tenants`, or every
    /// tenant (`all_tenants` in the result) when grouping by tenant.
    PlatformAdmin,
}

/// A parsed query, plus whether the caller must fill `query.tenants` with
/// every tenant (the platform administrator grouping by `tenant` without
/// naming tenants).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedQuery {
    pub query: Query,
    pub all_tenants: bool,
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Not JSON, or not an object (400 `bad_request`).
    Malformed(String),
    /// Members with bad values (400 `validation_failed` with details).
    Invalid(Vec<ParamError>),
    /// Asking for tenants the caller may not read (403).
    Forbidden(String),
}

/// Parses a query body; `apdex` without `t` uses the contract's default
/// threshold.
pub fn parse_query(
    body: &[u8],
    scope: &QueryScope,
    now: Micros,
) -> Result<ParsedQuery, QueryError> {
    parse_query_with_apdex(body, scope, now, (DEFAULT_APDEX_T_MICROS / 1000) as u32)
}

/// Parses a query body; `apdex` without `t` uses `apdex_t_ms` (the
/// tenant's setting).
pub fn parse_query_with_apdex(
    body: &[u8],
    scope: &QueryScope,
    now: Micros,
    apdex_t_ms: u32,
) -> Result<ParsedQuery, QueryError> {
    let v: Json = serde_json::from_slice(body)
        .map_err(|e| QueryError::Malformed(format!("body is not valid JSON: {e}")))?;
    let Json::Object(obj) = v else {
        return Err(QueryError::Malformed("body must be a JSON object".into()));
    };
    let mut errors = Vec::new();

    let bound = |name: &str, errors: &mut Vec<ParamError>| -> Option<String> {
        match obj.get(name) {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            Some(_) => {
                errors.push(ParamError::new(
                    name,
                    "must be a time string or epoch milliseconds",
                ));
                None
            }
        }
    };
    let from = bound("from", &mut errors);
    let to = bound("to", &mut errors);
    let range = time_range(from.as_deref(), to.as_deref(), now, &mut errors);

    let filter = match obj.get("filter") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Object(f)) => parse_filter(f, &mut errors),
        Some(_) => {
            errors.push(ParamError::new("filter", "must be an object"));
            Vec::new()
        }
    };

    let is_admin = *scope == QueryScope::PlatformAdmin;
    let group_by = parse_group_by(obj.get("group_by"), is_admin, &mut errors);

    let interval = match obj.get("interval") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => match timeparse::parse_duration(s) {
            Some(w) if range.to.0.saturating_sub(range.from.0) / w <= MAX_BUCKETS => Some(w),
            Some(_) => {
                errors.push(ParamError::new(
                    "interval",
                    format!("makes more than {MAX_BUCKETS} buckets over the range"),
                ));
                None
            }
            None => {
                errors.push(ParamError::new(
                    "interval",
                    "must be a duration like 30s, 5m, 1h, 1d",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(ParamError::new(
                "interval",
                "must be a duration string like 1m",
            ));
            None
        }
    };

    let aggregations = parse_aggregations(obj.get("aggregations"), apdex_t_ms, &mut errors);

    let mut columns: Vec<String> = group_by.iter().map(Field::name).collect();
    if interval.is_some() {
        columns.push("bucket".into());
    }
    columns.extend(aggregations.iter().map(|a| a.alias.clone()));
    let order_by = parse_order_by(obj.get("order_by"), &columns, &mut errors);

    let limit = match obj.get("limit") {
        None | Some(Json::Null) => DEFAULT_QUERY_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => (n.min(MAX_QUERY_LIMIT as u64)) as usize,
            _ => {
                errors.push(ParamError::new(
                    "limit",
                    format!("must be an integer between 1 and {MAX_QUERY_LIMIT}"),
                ));
                DEFAULT_QUERY_LIMIT
            }
        },
    };

    let named = parse_tenants(obj.get("tenants"), &mut errors);

    if !errors.is_empty() {
        return Err(QueryError::Invalid(errors));
    }

    let (tenants, all_tenants) = match (scope, named) {
        (QueryScope::Tenant(own), None) => (vec![own.clone()], false),
        (QueryScope::Tenant(own), Some(named)) => {
            if named.iter().all(|t| t == own) {
                (vec![own.clone()], false)
            } else {
                return Err(QueryError::Forbidden(
                    "only the platform administrator may query other tenants".into(),
                ));
            }
        }
        (QueryScope::PlatformAdmin, Some(named)) => (named, false),
        (QueryScope::PlatformAdmin, None) => {
            if group_by.contains(&Field::Tenant) {
                (Vec::new(), true)
            } else {
                return Err(QueryError::Invalid(vec![ParamError::new(
                    "tenants",
                    "the platform administrator belongs to no tenant: name `tenants` or group by `tenant`",
                )]));
            }
        }
    };

    Ok(ParsedQuery {
        query: Query {
            tenants,
            range,
            filter,
            group_by,
            interval,
            aggregations,
            order_by,
            limit,
        },
        all_tenants,
    })
}

fn parse_tenants(v: Option<&Json>, errors: &mut Vec<ParamError>) -> Option<Vec<TenantId>> {
    let v = v?;
    let Json::Array(items) = v else {
        if !v.is_null() {
            errors.push(ParamError::new("tenants", "must be an array of tenant ids"));
        }
        return None;
    };
    if items.is_empty() || items.len() > MAX_TENANTS {
        errors.push(ParamError::new(
            "tenants",
            format!("must name between 1 and {MAX_TENANTS} tenants"),
        ));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        match t.as_str().and_then(TenantId::new) {
            Some(id) => {
                if !out.contains(&id) {
                    out.push(id)
                }
            }
            None => errors.push(ParamError::new(
                format!("tenants[{i}]"),
                "is not a tenant id",
            )),
        }
    }
    Some(out)
}

fn parse_field(name: &str, at: &str, errors: &mut Vec<ParamError>) -> Option<Field> {
    let f = Field::parse(name);
    if f.is_none() {
        errors.push(ParamError::new(at, format!("unknown field `{name}`")));
    }
    f
}

fn parse_group_by(v: Option<&Json>, is_admin: bool, errors: &mut Vec<ParamError>) -> Vec<Field> {
    let items: Vec<&Json> = match v {
        None | Some(Json::Null) => return Vec::new(),
        Some(Json::String(_)) => vec![v.unwrap_or(&Json::Null)],
        Some(Json::Array(a)) => a.iter().collect(),
        Some(_) => {
            errors.push(ParamError::new(
                "group_by",
                "must be an array of field names",
            ));
            return Vec::new();
        }
    };
    if items.len() > MAX_GROUP_BY {
        errors.push(ParamError::new(
            "group_by",
            format!("may name at most {MAX_GROUP_BY} fields"),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("group_by[{i}]");
        let Some(name) = item.as_str() else {
            errors.push(ParamError::new(at, "must be a field name"));
            continue;
        };
        match parse_field(name, &at, errors) {
            Some(Field::Tenant) if !is_admin => {
                errors.push(ParamError::new(at, "`tenant` is not a groupable field"))
            }
            Some(Field::Timestamp | Field::ReceivedAt) => errors.push(ParamError::new(
                at,
                "cannot group by a time; use `interval`",
            )),
            Some(f) if out.contains(&f) => {
                errors.push(ParamError::new(at, format!("`{name}` is named twice")))
            }
            Some(f) => out.push(f),
            None => {}
        }
    }
    out
}

/// Fields an arithmetic aggregation (sum, avg, min, max, percentiles) can read.
fn is_numeric(f: &Field) -> bool {
    matches!(
        f,
        Field::LatencyMs
            | Field::StatusCode
            | Field::RequestBytes
            | Field::ResponseBytes
            | Field::Attr(_)
    )
}

fn op_name(op: AggOp) -> &'static str {
    match op {
        AggOp::Count => "count",
        AggOp::Sum => "sum",
        AggOp::Avg => "avg",
        AggOp::Min => "min",
        AggOp::Max => "max",
        AggOp::P50 => "p50",
        AggOp::P90 => "p90",
        AggOp::P95 => "p95",
        AggOp::P99 => "p99",
        AggOp::CountDistinct => "count_distinct",
        AggOp::ErrorRate => "error_rate",
        AggOp::Apdex(_) => "apdex",
    }
}

/// The `t` of an `apdex` aggregation, in microseconds.
fn apdex_threshold(a: &Map<String, Json>, default_ms: u32) -> Result<u64, String> {
    let max_ms = MAX_APDEX_T_MICROS / 1000;
    match a.get("t") {
        None | Some(Json::Null) => Ok(u64::from(default_ms.max(1)) * 1000),
        Some(Json::Number(n)) => match n.as_f64() {
            Some(t) if t > 0.0 && t <= max_ms as f64 => Ok(((t * 1000.0).round() as u64).max(1)),
            _ => Err(format!(
                "must be a threshold in ms above 0 and at most {max_ms}"
            )),
        },
        Some(_) => Err("must be a number of milliseconds".into()),
    }
}

fn parse_aggregations(
    v: Option<&Json>,
    apdex_t_ms: u32,
    errors: &mut Vec<ParamError>,
) -> Vec<Aggregation> {
    let items = match v {
        None | Some(Json::Null) => {
            return vec![Aggregation {
                op: AggOp::Count,
                field: None,
                alias: "count".into(),
            }];
        }
        Some(Json::Array(a)) if !a.is_empty() && a.len() <= MAX_AGGREGATIONS => a,
        Some(_) => {
            errors.push(ParamError::new(
                "aggregations",
                format!("must be an array of 1 to {MAX_AGGREGATIONS} aggregations"),
            ));
            return Vec::new();
        }
    };
    let mut out: Vec<Aggregation> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Json::Object(a) = item else {
            errors.push(ParamError::new(
                format!("aggregations[{i}]"),
                r#"must be an object like {"op": "count"}"#,
            ));
            continue;
        };
        let op = match a.get("op").and_then(Json::as_str) {
            Some(s) => match AggOp::parse(s) {
                Some(op) => op,
                None => {
                    errors.push(ParamError::new(
                        format!("aggregations[{i}].op"),
                        format!(
                            "unknown op `{s}` (count sum avg min max p50 p90 p95 p99 count_distinct error_rate apdex)"
                        ),
                    ));
                    continue;
                }
            },
            None => {
                errors.push(ParamError::new(
                    format!("aggregations[{i}].op"),
                    "is required",
                ));
                continue;
            }
        };
        let op = match op {
            AggOp::Apdex(_) => match apdex_threshold(a, apdex_t_ms) {
                Ok(t) => AggOp::Apdex(t),
                Err(m) => {
                    errors.push(ParamError::new(format!("aggregations[{i}].t"), m));
                    continue;
                }
            },
            op => op,
        };
        let field = match a.get("field") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => {
                match parse_field(s, &format!("aggregations[{i}].field"), errors) {
                    Some(f) => Some(f),
                    None => continue,
                }
            }
            Some(_) => {
                errors.push(ParamError::new(
                    format!("aggregations[{i}].field"),
                    "must be a field name",
                ));
                continue;
            }
        };
        let at = format!("aggregations[{i}].field");
        match (&field, op.needs_field()) {
            (None, true) => {
                errors.push(ParamError::new(
                    at,
                    format!("is required for `{}`", op_name(op)),
                ));
                continue;
            }
            (Some(f), needs)
                if (needs || matches!(op, AggOp::Apdex(_)))
                    && op != AggOp::CountDistinct
                    && !is_numeric(f) =>
            {
                errors.push(ParamError::new(
                    at,
                    format!(
                        "`{}` needs a numeric field, not `{}`",
                        op_name(op),
                        f.name()
                    ),
                ));
                continue;
            }
            (Some(Field::Tenant), _) => {
                errors.push(ParamError::new(at, "`tenant` cannot be aggregated"));
                continue;
            }
            _ => {}
        }
        let alias = match a.get("as") {
            None | Some(Json::Null) => match &field {
                Some(f) => format!("{}_{}", op_name(op), f.name()),
                None => op_name(op).to_owned(),
            },
            Some(Json::String(s)) if !s.is_empty() && s.len() <= 64 => s.clone(),
            Some(_) => {
                errors.push(ParamError::new(
                    format!("aggregations[{i}].as"),
                    "must be a name of 1 to 64 bytes",
                ));
                continue;
            }
        };
        if out.iter().any(|o| o.alias == alias) {
            errors.push(ParamError::new(
                format!("aggregations[{i}].as"),
                format!("`{alias}` is used twice"),
            ));
            continue;
        }
        out.push(Aggregation { op, field, alias });
    }
    out
}

fn parse_order_by(
    v: Option<&Json>,
    columns: &[String],
    errors: &mut Vec<ParamError>,
) -> Vec<OrderBy> {
    let items: Vec<&Json> = match v {
        None | Some(Json::Null) => return Vec::new(),
        Some(Json::Array(a)) => a.iter().collect(),
        Some(other @ (Json::Object(_) | Json::String(_))) => vec![other],
        Some(_) => {
            errors.push(ParamError::new("order_by", "must be an array"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("order_by[{i}]");
        let (column, desc) = match item {
            Json::String(s) => match s.strip_prefix('-') {
                Some(c) => (c.to_owned(), true),
                None => (s.clone(), false),
            },
            Json::Object(o) => {
                let Some(c) = o.get("field").and_then(Json::as_str) else {
                    errors.push(ParamError::new(format!("{at}.field"), "is required"));
                    continue;
                };
                let desc = match o.get("desc") {
                    None | Some(Json::Null) => false,
                    Some(Json::Bool(b)) => *b,
                    Some(_) => {
                        errors.push(ParamError::new(format!("{at}.desc"), "must be a boolean"));
                        continue;
                    }
                };
                (c.to_owned(), desc)
            }
            _ => {
                errors.push(ParamError::new(
                    at,
                    r#"must be {"field": ..., "desc": bool}"#,
                ));
                continue;
            }
        };
        if !columns.contains(&column) {
            errors.push(ParamError::new(
                at,
                format!(
                    "`{column}` is not an output column ({})",
                    columns.join(", ")
                ),
            ));
            continue;
        }
        out.push(OrderBy { column, desc });
    }
    out
}

fn scalar(v: &Json) -> Option<Value> {
    Some(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Json::String(s) => Value::Str(s.clone()),
        _ => return None,
    })
}

/// Normalises a value compared with `field`: canonical spellings for
/// methods and severities, numbers for numeric fields given as strings,
/// and the alternatives an attribute value may have been sent as.
fn values_for(field: &Field, v: &Json, at: &str, errors: &mut Vec<ParamError>) -> Vec<Value> {
    let Some(val) = scalar(v) else {
        errors.push(ParamError::new(
            at,
            "must be a string, number, boolean or null",
        ));
        return Vec::new();
    };
    match (field, &val) {
        (Field::Method, Value::Str(s)) => match Method::parse(s) {
            Some(m) => vec![Value::Str(m.as_str().into())],
            None => {
                errors.push(ParamError::new(at, "must be an HTTP method"));
                Vec::new()
            }
        },
        (Field::Severity, Value::Str(s)) => match Severity::parse(s) {
            Some(x) => vec![Value::Str(x.as_str().into())],
            None => {
                errors.push(ParamError::new(at, "must be a severity"));
                Vec::new()
            }
        },
        (Field::StatusCode | Field::RequestBytes | Field::ResponseBytes, Value::Str(s)) => {
            match s.trim().parse::<i64>() {
                Ok(n) => vec![Value::Int(n)],
                Err(_) => {
                    errors.push(ParamError::new(at, "must be an integer"));
                    Vec::new()
                }
            }
        }
        (Field::Attr(_), Value::Str(s)) => attr_values(s),
        (Field::Timestamp | Field::ReceivedAt, Value::Str(s)) => {
            match timeparse::parse_rfc3339(s) {
                Ok(t) => vec![Value::Time(t)],
                Err(e) => {
                    errors.push(ParamError::new(at, e.to_string()));
                    Vec::new()
                }
            }
        }
        _ => vec![val],
    }
}

/// A comparison bound: a number, or for time fields also an RFC 3339 time.
fn number_for(field: &Field, v: &Json, at: &str, errors: &mut Vec<ParamError>) -> Option<f64> {
    match (field, v) {
        (_, Json::Number(n)) => n.as_f64(),
        (Field::Timestamp | Field::ReceivedAt, Json::String(s)) => {
            match timeparse::parse_rfc3339(s) {
                Ok(t) => Some(t.0 as f64),
                Err(e) => {
                    errors.push(ParamError::new(at, e.to_string()));
                    None
                }
            }
        }
        _ => {
            errors.push(ParamError::new(at, "must be a number"));
            None
        }
    }
}

fn parse_filter(obj: &Map<String, Json>, errors: &mut Vec<ParamError>) -> Vec<Predicate> {
    let mut out = Vec::new();
    for (name, cond) in obj {
        let at = format!("filter.{name}");
        let Some(field) = parse_field(name, &at, errors) else {
            continue;
        };
        if field == Field::Tenant {
            errors.push(ParamError::new(
                at,
                "filter tenants with the `tenants` member",
            ));
            continue;
        }
        match cond {
            Json::Array(vs) => {
                if vs.is_empty() || vs.len() > MAX_IN_VALUES {
                    errors.push(ParamError::new(
                        at,
                        format!("must list 1 to {MAX_IN_VALUES} values"),
                    ));
                    continue;
                }
                let mut all = Vec::new();
                for (i, v) in vs.iter().enumerate() {
                    all.extend(values_for(&field, v, &format!("{at}[{i}]"), errors));
                }
                out.push(Predicate::In(field, all));
            }
            Json::Object(ops) => {
                if ops.is_empty() {
                    errors.push(ParamError::new(at.clone(), "needs at least one operator"));
                }
                for (op, arg) in ops {
                    let op_at = format!("{at}.{op}");
                    if let Some(p) = parse_op(&field, op, arg, &op_at, errors) {
                        out.push(p);
                    }
                }
            }
            Json::String(s) if field == Field::StatusCode && is_status_class(s) => {
                out.push(Predicate::StatusClass(s.as_bytes()[0] - b'0'));
            }
            v => {
                let vs = values_for(&field, v, &at, errors);
                if !vs.is_empty() {
                    out.push(Predicate::In(field, vs));
                }
            }
        }
    }
    out
}

fn is_status_class(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"xx")
}

fn parse_op(
    field: &Field,
    op: &str,
    arg: &Json,
    at: &str,
    errors: &mut Vec<ParamError>,
) -> Option<Predicate> {
    let cmp = match op {
        "gt" => Some(CmpOp::Gt),
        "gte" => Some(CmpOp::Gte),
        "lt" => Some(CmpOp::Lt),
        "lte" => Some(CmpOp::Lte),
        "ne" => Some(CmpOp::Ne),
        _ => None,
    };
    if let Some(cmp) = cmp {
        let x = number_for(field, arg, at, errors)?;
        return Some(Predicate::Cmp(field.clone(), cmp, x));
    }
    match op {
        "eq" => {
            let vs = values_for(field, arg, at, errors);
            (!vs.is_empty()).then(|| Predicate::In(field.clone(), vs))
        }
        "in" => {
            let Json::Array(items) = arg else {
                errors.push(ParamError::new(at, "must be an array"));
                return None;
            };
            if items.is_empty() || items.len() > MAX_IN_VALUES {
                errors.push(ParamError::new(
                    at,
                    format!("must list 1 to {MAX_IN_VALUES} values"),
                ));
                return None;
            }
            let mut all = Vec::new();
            for (i, v) in items.iter().enumerate() {
                all.extend(values_for(field, v, &format!("{at}[{i}]"), errors));
            }
            Some(Predicate::In(field.clone(), all))
        }
        "prefix" | "contains" => {
            let Json::String(s) = arg else {
                errors.push(ParamError::new(at, "must be a string"));
                return None;
            };
            Some(if op == "prefix" {
                Predicate::Prefix(field.clone(), s.clone())
            } else {
                Predicate::Contains(field.clone(), s.clone())
            })
        }
        "exists" => match arg {
            Json::Bool(true) => Some(Predicate::Exists(field.clone())),
            Json::Bool(false) => Some(Predicate::In(field.clone(), vec![Value::Null])),
            _ => {
                errors.push(ParamError::new(at, "must be a boolean"));
                None
            }
        },
        _ => {
            errors.push(ParamError::new(
                at,
                format!("unknown operator `{op}` (eq ne gt gte lt lte in prefix contains exists)"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = Micros(1_795_600_800_000_000);

    fn tenant() -> QueryScope {
        QueryScope::Tenant(TenantId::new("t1").expect("id"))
    }

    fn ok(body: &str) -> Query {
        parse_query(body.as_bytes(), &tenant(), NOW)
            .expect("valid")
            .query
    }

    fn invalid(body: &str, scope: &QueryScope) -> Vec<String> {
        match parse_query(body.as_bytes(), scope, NOW) {
            Err(QueryError::Invalid(e)) => e.into_iter().map(|p| p.field).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    proptest::proptest! {
        /// Any bytes, and any corruption of a valid query, give Ok or Err;
        /// what parses is within the limits.
        #[test]
        fn never_panics(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            cut in 0usize..300,
            flip in 0usize..300,
            byte in proptest::num::u8::ANY,
        ) {
            let mut valid = br#"{"from":"now-24h","to":"now","filter":{"status_code":{"gte":500},"service":["a","b"],"attributes.k":"v","message":{"contains":"x"}},"group_by":["endpoint","tenant"],"interval":"1m","aggregations":[{"op":"p95","field":"latency_ms","as":"p"},{"op":"count"}],"order_by":[{"field":"p","desc":true}],"limit":10,"tenants":["t1"]}"#.to_vec();
            valid.truncate(cut.min(valid.len()));
            if let Some(b) = valid.get_mut(flip) {
                *b = byte;
            }
            for body in [&data, &valid] {
                for scope in [tenant(), QueryScope::PlatformAdmin] {
                    if let Ok(p) = parse_query(body, &scope, NOW) {
                        proptest::prop_assert!(p.query.limit >= 1 && p.query.limit <= MAX_QUERY_LIMIT);
                        proptest::prop_assert!(p.query.range.from < p.query.range.to);
                    }
                }
            }
        }
    }

    #[test]
    fn the_contract_example_parses() {
        let q = ok(r#"{
          "from": "now-24h", "to": "now",
          "filter": {"event_type": "api_call", "service": ["checkout", "auth"],
                     "status_code": {"gte": 500}, "latency_ms": {"gt": 1000},
                     "endpoint": {"prefix": "/api/v1/orders"}, "attributes.region": "eu-west-1",
                     "message": {"contains": "timeout"}},
          "group_by": ["endpoint", "method"],
          "interval": "1m",
          "aggregations": [{"op": "count", "as": "requests"},
                           {"op": "error_rate", "as": "error_rate"},
                           {"op": "p95", "field": "latency_ms", "as": "p95_ms"},
                           {"op": "count_distinct", "field": "user_id", "as": "users"}],
          "order_by": [{"field": "requests", "desc": true}],
          "limit": 10
        }"#);
        assert_eq!(q.tenants, vec![TenantId::new("t1").expect("id")]);
        assert_eq!(q.range.from, Micros(NOW.0 - 24 * Micros::HOUR));
        assert_eq!(q.group_by, vec![Field::Endpoint, Field::Method]);
        assert_eq!(q.interval, Some(Micros::MINUTE));
        assert_eq!(q.aggregations.len(), 4);
        assert_eq!(q.aggregations[2].field, Some(Field::LatencyMs));
        assert_eq!(
            q.order_by,
            vec![OrderBy {
                column: "requests".into(),
                desc: true
            }]
        );
        assert_eq!(q.limit, 10);
        assert!(
            q.filter
                .contains(&Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0))
        );
        assert!(
            q.filter
                .contains(&Predicate::Prefix(Field::Endpoint, "/api/v1/orders".into()))
        );
        assert!(q.filter.contains(&Predicate::In(
            Field::Service,
            vec![Value::Str("checkout".into()), Value::Str("auth".into())]
        )));
        assert!(q.filter.contains(&Predicate::In(
            Field::Attr("region".into()),
            vec![Value::Str("eu-west-1".into())]
        )));
        assert_eq!(q.filter.len(), 7);
    }

    #[test]
    fn defaults() {
        let q = ok("{}");
        assert_eq!(q.limit, DEFAULT_QUERY_LIMIT);
        assert_eq!(q.aggregations[0].alias, "count");
        assert_eq!(q.range.to, NOW);
        assert_eq!(ok(r#"{"limit": 1000000}"#).limit, MAX_QUERY_LIMIT);
        let q = ok(r#"{"aggregations":[{"op":"avg","field":"latency_ms"}]}"#);
        assert_eq!(q.aggregations[0].alias, "avg_latency_ms");
    }

    #[test]
    fn apdex_takes_its_threshold_from_the_query_or_the_tenant() {
        let t = tenant();
        let q = ok(r#"{"aggregations":[{"op":"apdex","field":"latency_ms","t":250}]}"#);
        assert_eq!(q.aggregations[0].op, AggOp::Apdex(250_000));
        assert_eq!(q.aggregations[0].alias, "apdex_latency_ms");
        let q = ok(r#"{"aggregations":[{"op":"apdex"}]}"#);
        assert_eq!(q.aggregations[0].op, AggOp::Apdex(300_000));
        assert_eq!(q.aggregations[0].alias, "apdex");
        let body = br#"{"aggregations":[{"op":"apdex","as":"a"}]}"#;
        let q = parse_query_with_apdex(body, &t, NOW, 120).expect("parses");
        assert_eq!(q.query.aggregations[0].op, AggOp::Apdex(120_000));
        for bad in [r#""t":0"#, r#""t":-5"#, r#""t":"fast""#, r#""t":1e12"#] {
            let body = format!(r#"{{"aggregations":[{{"op":"apdex",{bad}}}]}}"#);
            assert_eq!(invalid(&body, &t), ["aggregations[0].t"], "{bad}");
        }
        assert_eq!(
            invalid(r#"{"aggregations":[{"op":"apdex","field":"service"}]}"#, &t),
            ["aggregations[0].field"]
        );
    }

    #[test]
    fn errors_name_the_member() {
        let t = tenant();
        assert_eq!(
            invalid(r#"{"aggregations":[{"op":"median"}]}"#, &t),
            ["aggregations[0].op"]
        );
        assert_eq!(
            invalid(r#"{"aggregations":[{"op":"p95"}]}"#, &t),
            ["aggregations[0].field"]
        );
        assert_eq!(
            invalid(r#"{"aggregations":[{"op":"avg","field":"service"}]}"#, &t),
            ["aggregations[0].field"]
        );
        assert_eq!(invalid(r#"{"group_by":["nope"]}"#, &t), ["group_by[0]"]);
        assert_eq!(invalid(r#"{"group_by":["tenant"]}"#, &t), ["group_by[0]"]);
        assert_eq!(invalid(r#"{"interval":"fortnight"}"#, &t), ["interval"]);
        assert_eq!(
            invalid(r#"{"from":"now-30d","interval":"1s"}"#, &t),
            ["interval"]
        );
        assert_eq!(
            invalid(r#"{"filter":{"latency_ms":{"gt":"x"}}}"#, &t),
            ["filter.latency_ms.gt"]
        );
        assert_eq!(
            invalid(r#"{"filter":{"latency_ms":{"near":1}}}"#, &t),
            ["filter.latency_ms.near"]
        );
        assert_eq!(
            invalid(r#"{"filter":{"method":"FETCH"}}"#, &t),
            ["filter.method"]
        );
        assert_eq!(
            invalid(r#"{"order_by":[{"field":"x"}]}"#, &t),
            ["order_by[0]"]
        );
        assert_eq!(invalid(r#"{"limit":0}"#, &t), ["limit"]);
        assert_eq!(invalid(r#"{"from":"soon"}"#, &t), ["from"]);
        // A range as wide as an i64 allows does not overflow the bucket check.
        assert_eq!(
            invalid(r#"{"from":"now-9000000000000s","interval":"1s"}"#, &t),
            ["interval"]
        );
        assert_eq!(
            invalid(r#"{"aggregations":[{"op":"count"},{"op":"count"}]}"#, &t),
            ["aggregations[1].as"]
        );
        assert!(matches!(
            parse_query(b"[1]", &t, NOW),
            Err(QueryError::Malformed(_))
        ));
        assert!(matches!(
            parse_query(b"{oops", &t, NOW),
            Err(QueryError::Malformed(_))
        ));
    }

    #[test]
    fn tenants_are_scoped() {
        let t = tenant();
        assert!(matches!(
            parse_query(br#"{"tenants":["t2"]}"#, &t, NOW),
            Err(QueryError::Forbidden(_))
        ));
        assert_eq!(ok(r#"{"tenants":["t1"]}"#).tenants.len(), 1);
        let admin = QueryScope::PlatformAdmin;
        let p = parse_query(br#"{"group_by":["tenant"]}"#, &admin, NOW).expect("admin");
        assert!(p.all_tenants && p.query.tenants.is_empty());
        let p = parse_query(br#"{"tenants":["t1","t2","t1"]}"#, &admin, NOW).expect("admin");
        assert_eq!(p.query.tenants.len(), 2);
        assert_eq!(invalid("{}", &admin), ["tenants"]);
        assert_eq!(invalid(r#"{"tenants":["../x"]}"#, &admin), ["tenants[0]"]);
    }

    #[test]
    fn status_classes_and_values_are_normalised() {
        let q =
            ok(r#"{"filter":{"status_code":"5xx","method":["get","Post"],"severity":"ERROR"}}"#);
        assert!(q.filter.contains(&Predicate::StatusClass(5)));
        assert!(q.filter.contains(&Predicate::In(
            Field::Method,
            vec![Value::Str("GET".into()), Value::Str("POST".into())]
        )));
        assert!(q.filter.contains(&Predicate::In(
            Field::Severity,
            vec![Value::Str("error".into())]
        )));
    }
}
