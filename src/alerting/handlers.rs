//! HTTP handlers of `/api/v1/alerting/...` (contract section 7): rules,
//! alerts and their actions, channels, silences, the delivery log and test
//! notifications. Reads need any role of the tenant, writes `admin`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::engine::Effects;
use super::model::{AlertState, Attempt, Channel, Matcher, NoticeKind, Silence};
use super::persist::{self, StoredRule, Write};
use super::rules::{self, is_http_url};
use super::{Alerting, Msg, notify};
use crate::app::AppState;
use crate::auth::{Principal, Role, random};
use crate::handlers::{actor, list_answer, page_params};
use crate::http::{
    ApiError, FieldError, HttpResponse, empty, json, parse_query, query_value, read_json,
};
use crate::meta::rfc3339;

/// Largest rule, channel or silence document (bytes).
pub const MAX_DOC_BYTES: usize = 64 * 1024;
/// Rules per tenant at most: each is evaluated every second.
pub const MAX_RULES_PER_TENANT: usize = 2000;
/// Channels and silences per tenant at most.
pub const MAX_CHANNELS_PER_TENANT: usize = 200;
pub const MAX_SILENCES_PER_TENANT: usize = 1000;
/// Longest channel secret (bytes) and most email recipients.
const MAX_SECRET_BYTES: usize = 512;
const MAX_RECIPIENTS: usize = 20;

fn now(a: &Alerting) -> i64 {
    a.clock.now().0
}

fn offset_page<T>(
    items: Vec<T>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            ApiError::invalid_field("cursor", "not a cursor from an earlier answer")
        })?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    Ok((page, next))
}

fn unprocessable(details: Vec<FieldError>) -> ApiError {
    let mut e = ApiError::validation(details);
    e.status = StatusCode::UNPROCESSABLE_ENTITY;
    e
}

// ---- Rules.

fn rule_json(r: &rules::Rule) -> Value {
    r.doc.clone()
}

pub async fn list_rules(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let (limit, cursor) = page_params(&req)?;
    let items: Vec<Value> = match state.alerting.existing_tenant(scope.as_str()) {
        Some(t) => t.lock().rules.values().map(|r| rule_json(r)).collect(),
        None => Vec::new(),
    };
    let (page, next) = offset_page(items, cursor.as_deref(), limit)?;
    Ok(json(StatusCode::OK, &list_answer("rules", page, next)))
}

pub async fn get_rule(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let t = state.alerting.existing_tenant(scope.as_str());
    let r = t.and_then(|t| t.lock().rules.get(id).map(|r| rule_json(r)));
    r.map(|r| json(StatusCode::OK, &r))
        .ok_or_else(|| ApiError::not_found("rule not found"))
}

/// Creates (`id` None) or replaces a rule.
pub async fn put_rule(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
    id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let body: Value = read_json(req, MAX_DOC_BYTES).await?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    let now = now(a);
    let t = a.tenant(tenant);
    let (rid, created_at) = match id {
        Some(id) => match t.lock().rules.get(id) {
            Some(r) => (id.to_owned(), r.created_at),
            None => return Err(ApiError::not_found("rule not found")),
        },
        None => (random::id("r"), now),
    };
    let mut rule = rules::compile(&body, &rid, created_at).map_err(ApiError::validation)?;
    {
        let t = t.lock();
        let missing: Vec<FieldError> = rule
            .all_channels()
            .filter(|c| !t.channels.contains_key(*c))
            .map(|c| FieldError::new("channels", format!("no channel {c} in this tenant")))
            .collect();
        if !missing.is_empty() {
            return Err(unprocessable(missing));
        }
        if id.is_none() && t.rules.len() >= MAX_RULES_PER_TENANT {
            return Err(unprocessable(vec![FieldError::new(
                "rules",
                format!("a tenant has at most {MAX_RULES_PER_TENANT} rules"),
            )]));
        }
    }
    if let Some(d) = rule.doc.as_object_mut() {
        d.insert("created_at".into(), json!(rfc3339(created_at)));
        d.insert("updated_at".into(), json!(rfc3339(now)));
    }
    let stored = StoredRule {
        tenant: tenant.to_owned(),
        id: rid.clone(),
        created_at,
        updated_at: now,
        doc: rule.doc.clone(),
    };
    let mut fx = Effects::default();
    fx.writes.push(persist::put(
        persist::RULES,
        persist::key(tenant, &rid),
        &stored,
    ));
    let answer = rule_json(&rule);
    let rule = Arc::new(rule);
    let backfill = {
        let mut t = t.lock();
        let new_spec = t.put_rule(rule.clone(), now);
        if !rule.enabled {
            t.resolve_rule_alerts(&rule, now, &a.settings.dashboard_url, &mut fx);
        }
        if new_spec && let Some(s) = t.spec_mut(&rule.spec_key) {
            s.cutoff = now;
            s.backfill_pending = true;
        }
        new_spec
    };
    a.commit(fx);
    if backfill {
        a.send(Msg::Backfill(
            tenant.to_owned(),
            rule.spec_key.clone(),
            rule.window_secs,
        ));
    }
    let action = if id.is_some() {
        "rule.update"
    } else {
        "rule.create"
    };
    state.audit(Some(tenant), &actor(&p), action, Some(&rid), None);
    let status = if id.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &answer))
}

pub async fn delete_rule(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    let mut fx = Effects::default();
    let removed = match a.existing_tenant(tenant) {
        Some(t) => t
            .lock()
            .remove_rule(id, now(a), &a.settings.dashboard_url, &mut fx),
        None => false,
    };
    if !removed {
        return Err(ApiError::not_found("rule not found"));
    }
    fx.writes
        .push(Write::Delete(persist::RULES, persist::key(tenant, id)));
    a.commit(fx);
    state.audit(Some(tenant), &actor(&p), "rule.delete", Some(id), None);
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- Alerts.

pub async fn list_alerts(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let (limit, cursor) = page_params(&req)?;
    let q = parse_query(req.uri());
    let want = match query_value(&q, "state").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(AlertState::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "state",
                "must be one of pending, firing, acknowledged, resolved",
            )
        })?),
    };
    let rule_id = query_value(&q, "rule_id").map(str::to_owned);
    let mut alerts: Vec<(i64, String, Value)> = match state.alerting.existing_tenant(scope.as_str())
    {
        Some(t) => t
            .lock()
            .alerts
            .values()
            .filter(|a| want.is_none_or(|w| a.state == w))
            .filter(|a| rule_id.as_ref().is_none_or(|r| a.rule_id == *r))
            .map(|a| (a.started_at, a.id.clone(), a.to_json()))
            .collect(),
        None => Vec::new(),
    };
    // Newest first; ids break ties so pages are stable.
    alerts.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| y.1.cmp(&x.1)));
    let items = alerts.into_iter().map(|(_, _, v)| v).collect();
    let (page, next) = offset_page(items, cursor.as_deref(), limit)?;
    Ok(json(StatusCode::OK, &list_answer("alerts", page, next)))
}

pub async fn get_alert(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    state
        .alerting
        .existing_tenant(scope.as_str())
        .and_then(|t| t.lock().alerts.get(id).map(|a| a.to_json()))
        .map(|v| json(StatusCode::OK, &v))
        .ok_or_else(|| ApiError::not_found("alert not found"))
}

/// `acknowledge` or `resolve` by the calling user (recorded by email).
pub async fn alert_action(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
    action: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let (_, email) = p.require_user()?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    let t = a
        .existing_tenant(tenant)
        .ok_or_else(|| ApiError::not_found("alert not found"))?;
    let mut fx = Effects::default();
    let now = now(a);
    let (res, answer) = {
        let mut t = t.lock();
        let res = if action == "acknowledge" {
            t.acknowledge(id, email, now, &mut fx)
        } else {
            t.resolve_by(id, email, now, &a.settings.dashboard_url, &mut fx)
        };
        (res, t.alerts.get(id).map(|al| al.to_json()))
    };
    match res {
        None => return Err(ApiError::not_found("alert not found")),
        Some(Err(s)) => {
            return Err(ApiError::conflict(format!(
                "the alert is {} and cannot be {}d",
                s.as_str(),
                action
            )));
        }
        Some(Ok(())) => {}
    }
    a.commit(fx);
    state.audit(
        Some(tenant),
        &actor(&p),
        &format!("alert.{action}"),
        Some(id),
        None,
    );
    Ok(json(StatusCode::OK, &answer.unwrap_or(Value::Null)))
}

// ---- Channels.

fn parse_channel(body: &Value, old: Option<&Channel>) -> Result<(String, String, Value), ApiError> {
    let mut errs = Vec::new();
    let name = match body["name"].as_str() {
        Some(n) if !n.trim().is_empty() && n.len() <= 200 => n.trim().to_owned(),
        _ => {
            errs.push(FieldError::new("name", "required, 1 to 200 bytes"));
            String::new()
        }
    };
    let kind = match body["type"].as_str() {
        Some(k @ ("webhook" | "slack" | "email")) => k.to_owned(),
        _ => {
            errs.push(FieldError::new(
                "type",
                "must be one of webhook, slack, email",
            ));
            String::new()
        }
    };
    let mut config = match &body["config"] {
        Value::Object(o) => o.clone(),
        _ => {
            errs.push(FieldError::new("config", "required object"));
            serde_json::Map::new()
        }
    };
    match kind.as_str() {
        "webhook" | "slack" => {
            match config.get("url").and_then(Value::as_str) {
                Some(u) if u.len() <= 2048 && is_http_url(u) => {}
                _ => errs.push(FieldError::new("config.url", "required http or https URL")),
            }
            match config.get("secret") {
                None | Some(Value::Null) => {
                    config.remove("secret");
                    // A PUT without the secret keeps the stored one: it is
                    // never answered back, so clients cannot resend it.
                    if let Some(s) = old.and_then(|o| o.config.get("secret")) {
                        config.insert("secret".into(), s.clone());
                    }
                }
                Some(Value::String(s)) if s.len() <= MAX_SECRET_BYTES => {}
                Some(_) => errs.push(FieldError::new(
                    "config.secret",
                    format!("must be a string of at most {MAX_SECRET_BYTES} bytes"),
                )),
            }
        }
        "email" => {
            let to: Vec<Value> = match config.get("to") {
                Some(Value::String(s)) => vec![json!(s)],
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            let ok = !to.is_empty()
                && to.len() <= MAX_RECIPIENTS
                && to.iter().all(|v| {
                    v.as_str().is_some_and(|s| {
                        s.len() <= 254
                            && s.contains('@')
                            && !s.contains(['\r', '\n', ',', '<', '>'])
                    })
                });
            if ok {
                config.insert("to".into(), Value::Array(to));
            } else {
                errs.push(FieldError::new(
                    "config.to",
                    format!("required: 1 to {MAX_RECIPIENTS} email addresses"),
                ));
            }
        }
        _ => {}
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    Ok((name, kind, Value::Object(config)))
}

pub async fn list_channels(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let (limit, cursor) = page_params(&req)?;
    let items: Vec<Value> = match state.alerting.existing_tenant(scope.as_str()) {
        Some(t) => t.lock().channels.values().map(Channel::to_json).collect(),
        None => Vec::new(),
    };
    let (page, next) = offset_page(items, cursor.as_deref(), limit)?;
    Ok(json(StatusCode::OK, &list_answer("channels", page, next)))
}

pub async fn get_channel(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    state
        .alerting
        .channel(scope.as_str(), id)
        .map(|c| json(StatusCode::OK, &c.to_json()))
        .ok_or_else(|| ApiError::not_found("channel not found"))
}

pub async fn put_channel(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
    id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let body: Value = read_json(req, MAX_DOC_BYTES).await?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    let t = a.tenant(tenant);
    let old = match id {
        Some(id) => Some(
            a.channel(tenant, id)
                .ok_or_else(|| ApiError::not_found("channel not found"))?,
        ),
        None => None,
    };
    let (name, kind, config) = parse_channel(&body, old.as_ref())?;
    if old.is_none() && t.lock().channels.len() >= MAX_CHANNELS_PER_TENANT {
        return Err(unprocessable(vec![FieldError::new(
            "channels",
            format!("a tenant has at most {MAX_CHANNELS_PER_TENANT} channels"),
        )]));
    }
    let c = Channel {
        id: old
            .as_ref()
            .map_or_else(|| random::id("ch"), |o| o.id.clone()),
        tenant: tenant.to_owned(),
        name,
        kind,
        config,
        created_at: old.as_ref().map_or_else(|| now(a), |o| o.created_at),
    };
    a.persist.write(vec![persist::put(
        persist::CHANNELS,
        persist::key(tenant, &c.id),
        &c,
    )])?;
    t.lock().channels.insert(c.id.clone(), c.clone());
    let action = if id.is_some() {
        "channel.update"
    } else {
        "channel.create"
    };
    state.audit(Some(tenant), &actor(&p), action, Some(&c.id), None);
    let status = if id.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &c.to_json()))
}

pub async fn delete_channel(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    if a.channel(tenant, id).is_none() {
        return Err(ApiError::not_found("channel not found"));
    }
    a.persist.write(vec![Write::Delete(
        persist::CHANNELS,
        persist::key(tenant, id),
    )])?;
    if let Some(t) = a.existing_tenant(tenant) {
        t.lock().channels.remove(id);
    }
    state.audit(Some(tenant), &actor(&p), "channel.delete", Some(id), None);
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- Silences.

fn parse_time(v: &Value, field: &str, now: i64) -> Result<Option<i64>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| ms.checked_mul(1000))
            .map(Some)
            .ok_or_else(|| FieldError::new(field, "must be epoch milliseconds or RFC 3339")),
        Value::String(s) => match s.trim().strip_prefix("now+") {
            Some(d) => crate::read::timeparse::parse_duration(d)
                .map(|d| Some(now.saturating_add(d)))
                .ok_or_else(|| FieldError::new(field, "must be now+<duration>, e.g. now+2h")),
            None => crate::read::timeparse::parse_range_bound(s, pulsestream_storage::Micros(now))
                .map(|t| Some(t.0))
                .map_err(|_| {
                    FieldError::new(
                        field,
                        "must be RFC 3339, epoch milliseconds, now, now-<duration> or now+<duration>",
                    )
                }),
        },
        _ => Err(FieldError::new(field, "must be a time")),
    }
}

pub async fn list_silences(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let (limit, cursor) = page_params(&req)?;
    let now = now(&state.alerting);
    let mut items: Vec<(i64, Value)> = match state.alerting.existing_tenant(scope.as_str()) {
        Some(t) => t
            .lock()
            .silences
            .values()
            .map(|s| (s.created_at, s.to_json(now)))
            .collect(),
        None => Vec::new(),
    };
    items.sort_by_key(|x| std::cmp::Reverse(x.0));
    let (page, next) = offset_page(
        items.into_iter().map(|x| x.1).collect(),
        cursor.as_deref(),
        limit,
    )?;
    Ok(json(StatusCode::OK, &list_answer("silences", page, next)))
}

pub async fn get_silence(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let now = now(&state.alerting);
    state
        .alerting
        .existing_tenant(scope.as_str())
        .and_then(|t| t.lock().silences.get(id).map(|s| s.to_json(now)))
        .map(|v| json(StatusCode::OK, &v))
        .ok_or_else(|| ApiError::not_found("silence not found"))
}

pub async fn create_silence(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let body: Value = read_json(req, MAX_DOC_BYTES).await?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    let now = now(a);
    let mut errs = Vec::new();
    let mut matchers = Vec::new();
    match &body["matchers"] {
        Value::Array(ms) if !ms.is_empty() && ms.len() <= 32 => {
            for (i, m) in ms.iter().enumerate() {
                match (m["name"].as_str(), m["value"].as_str()) {
                    (Some(n), Some(v)) if !n.is_empty() && n.len() <= 256 && v.len() <= 2048 => {
                        matchers.push(Matcher {
                            name: n.to_owned(),
                            value: v.to_owned(),
                        })
                    }
                    _ => errs.push(FieldError::new(
                        format!("matchers[{i}]"),
                        "must be {\"name\": string, \"value\": string}",
                    )),
                }
            }
        }
        _ => errs.push(FieldError::new("matchers", "required: 1 to 32 matchers")),
    }
    let starts_at = parse_time(&body["starts_at"], "starts_at", now).unwrap_or_else(|e| {
        errs.push(e);
        None
    });
    let ends_at = parse_time(&body["ends_at"], "ends_at", now).unwrap_or_else(|e| {
        errs.push(e);
        None
    });
    let starts_at = starts_at.unwrap_or(now);
    let ends_at = match ends_at {
        Some(e) if e > starts_at && e > now => e,
        Some(_) => {
            errs.push(FieldError::new(
                "ends_at",
                "must be after starts_at and in the future",
            ));
            0
        }
        None => {
            if !body["ends_at"].is_null() || errs.iter().all(|e| e.field != "ends_at") {
                errs.push(FieldError::new("ends_at", "required"));
            }
            0
        }
    };
    let comment = match &body["comment"] {
        Value::Null => String::new(),
        Value::String(s) if s.len() <= 4096 => s.clone(),
        _ => {
            errs.push(FieldError::new(
                "comment",
                "must be a string of at most 4096 bytes",
            ));
            String::new()
        }
    };
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let t = a.tenant(tenant);
    if t.lock().silences.len() >= MAX_SILENCES_PER_TENANT {
        return Err(unprocessable(vec![FieldError::new(
            "silences",
            format!("a tenant has at most {MAX_SILENCES_PER_TENANT} silences"),
        )]));
    }
    let s = Silence {
        id: random::id("sil"),
        tenant: tenant.to_owned(),
        matchers,
        starts_at,
        ends_at,
        comment,
        created_by: actor(&p),
        created_at: now,
    };
    a.persist.write(vec![persist::put(
        persist::SILENCES,
        persist::key(tenant, &s.id),
        &s,
    )])?;
    t.lock().silences.insert(s.id.clone(), s.clone());
    state.audit(
        Some(tenant),
        &actor(&p),
        "silence.create",
        Some(&s.id),
        None,
    );
    Ok(json(StatusCode::CREATED, &s.to_json(now)))
}

pub async fn delete_silence(
    state: Arc<AppState>,
    p: Principal,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let a = &state.alerting;
    let tenant = scope.as_str();
    let removed = a
        .existing_tenant(tenant)
        .and_then(|t| t.lock().silences.remove(id));
    if removed.is_none() {
        return Err(ApiError::not_found("silence not found"));
    }
    a.persist.write(vec![Write::Delete(
        persist::SILENCES,
        persist::key(tenant, id),
    )])?;
    state.audit(Some(tenant), &actor(&p), "silence.delete", Some(id), None);
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- Notifications.

pub async fn list_notifications(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Viewer)?;
    let (limit, cursor) = page_params(&req)?;
    let q = parse_query(req.uri());
    let alert_id = query_value(&q, "alert_id").filter(|s| !s.is_empty());
    let (items, next) =
        state
            .alerting
            .persist
            .attempts(scope.as_str(), alert_id, cursor.as_deref(), limit)?;
    let items = items.iter().map(Attempt::to_json).collect();
    Ok(json(
        StatusCode::OK,
        &list_answer("notifications", items, next),
    ))
}

/// Sends one test notification and answers with its result.
pub async fn test_notification(
    state: Arc<AppState>,
    req: Request<Incoming>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let scope = p.require_role(Role::Admin)?;
    let body: Value = read_json(req, MAX_DOC_BYTES).await?;
    let Some(cid) = body["channel_id"].as_str() else {
        return Err(ApiError::invalid_field("channel_id", "required"));
    };
    let a = &state.alerting;
    let tenant = scope.as_str();
    let channel = a
        .channel(tenant, cid)
        .ok_or_else(|| ApiError::not_found("channel not found"))?;
    let now = now(a);
    let payload = notify::test_payload(tenant, &channel, &a.settings.dashboard_url, now);
    let delivery_id = random::id("dl");
    let r = notify::send_once(a, &channel, &delivery_id, &payload).await;
    a.metrics.record_attempt(&r, r.duration.as_micros() as i64);
    let attempt = Attempt {
        id: random::id("na"),
        delivery_id,
        alert_id: None,
        channel_id: channel.id.clone(),
        channel_type: channel.kind.clone(),
        kind: NoticeKind::Test,
        attempt: 1,
        status: if r.ok { "delivered" } else { "failed" }.to_owned(),
        http_status: r.http_status,
        error: r.error.clone(),
        at: now,
        duration_ms: r.duration.as_secs_f64() * 1000.0,
    };
    if let Err(e) = a.persist.log_attempt(&attempt, tenant) {
        tracing::error!(error = %e, "cannot record a delivery attempt");
    }
    let mut v = attempt.to_json();
    v["delivered"] = json!(r.ok);
    Ok(json(StatusCode::OK, &v))
}
