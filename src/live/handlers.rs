//! `GET /api/v1/dashboard/connections/stats` and
//! `GET /api/v1/dashboard/widgets/{widget_id}`.
//!
//! A widget is an entry of the user's saved layout (`dashboard/config`):
//! `{"widgets": [{"id": "w1", "type": "error_rate", "window": "1h"}, ...]}`.
//! Its `type` names a part of the overview (the same numbers, the same
//! queries), so a widget costs what the overview costs at most.

use std::sync::Arc;

use hyper::StatusCode;
use pulsestream_storage::{Micros, TenantId};
use serde_json::{Map, Value as Json, json};

use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{self, ApiError, HttpResponse};
use crate::read::timeparse::parse_duration;

/// Widget types and the overview key each shows (`overview`: all of it).
pub const WIDGET_TYPES: [(&str, &str); 11] = [
    ("overview", ""),
    ("totals", "totals"),
    ("events_by_type", "events_by_type"),
    ("error_rate", "error_rate"),
    ("latency", "latency_ms"),
    ("throughput", "throughput"),
    ("top_endpoints", "top_endpoints"),
    ("status_codes", "status_codes"),
    ("active_alerts", "active_alerts"),
    ("recent_events", "recent_events"),
    ("health", "health"),
];

/// A widget's window when its entry names none (the overview's default).
const DEFAULT_WIDGET_WINDOW: &str = "1h";

/// Longest widget window (the overview's limit).
const MAX_WIDGET_WINDOW_MICROS: i64 = 31 * 86_400 * 1_000_000;

/// Live connections: the caller's tenant, or every tenant for the
/// platform administrator.
pub async fn connection_stats(
    state: Arc<AppState>,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    let (total, per) = state.live.connection_counts();
    let channels = state.live.channel_counts();
    let row = |t: &str, n: usize| {
        let c = channels.get(t).copied().unwrap_or_default();
        json!({
            "tenant_id": t,
            "connections": n,
            "subscriptions": {"events": c[0], "metrics": c[1], "alerts": c[2]},
        })
    };
    let body = if p.is_platform_admin() {
        let tenants: Vec<Json> = per.iter().map(|(t, n)| row(t, *n)).collect();
        json!({"total": total, "tenants": tenants})
    } else {
        let own = p.require_read()?;
        let n = per.get(own.as_str()).copied().unwrap_or(0);
        json!({"total": n, "tenants": [row(own.as_str(), n)]})
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// The data of one widget of the caller's saved layout.
pub async fn widget(
    state: Arc<AppState>,
    p: Principal,
    widget_id: &str,
) -> Result<HttpResponse, ApiError> {
    let (user_id, _) = p.require_user()?;
    let tenant: TenantId = p.require_read()?.tenant().clone();
    let layout = state.meta.get_dashboard(user_id)?.unwrap_or(Json::Null);
    let entry = layout
        .get("widgets")
        .and_then(Json::as_array)
        .and_then(|ws| {
            ws.iter()
                .find(|w| w.get("id").and_then(Json::as_str) == Some(widget_id))
        })
        .ok_or_else(|| ApiError::not_found("no widget with this id in the saved layout"))?;
    let kind = entry.get("type").and_then(Json::as_str).unwrap_or("");
    let Some((_, key)) = WIDGET_TYPES.iter().find(|(t, _)| *t == kind) else {
        let known: Vec<&str> = WIDGET_TYPES.iter().map(|(t, _)| *t).collect();
        return Err(ApiError::invalid_field(
            "type",
            format!("the widget's type must be one of {}", known.join(", ")),
        ));
    };
    let window_text = entry
        .get("window")
        .and_then(Json::as_str)
        .unwrap_or(DEFAULT_WIDGET_WINDOW);
    let window = parse_duration(window_text)
        .filter(|w| *w > 0 && *w <= MAX_WIDGET_WINDOW_MICROS)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "window",
                "the widget's window must be like 15m, 1h, at most 31d",
            )
        })?;
    let overview = crate::handlers::dashboard::overview_data(
        &state,
        &tenant,
        window_text,
        window,
        Micros::now(),
    )
    .await?;
    let data = if key.is_empty() {
        overview
    } else {
        overview.get(*key).cloned().unwrap_or(Json::Null)
    };
    let mut out = Map::new();
    out.insert("widget_id".into(), Json::from(widget_id));
    out.insert("type".into(), Json::from(kind));
    out.insert("window".into(), Json::from(window_text));
    out.insert("data".into(), data);
    Ok(http::json(StatusCode::OK, &Json::Object(out)))
}
