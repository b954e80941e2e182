//! `GET /api/v1/dashboard/alerts/summary`: active alerts by severity and
//! state, recent alert activity, and an hourly trend of the last 24 hours.

use std::sync::Arc;

use hyper::StatusCode;
use pulsestream_storage::Micros;
use serde_json::json;

use super::model::AlertState;
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{ApiError, HttpResponse, json};
use crate::meta::rfc3339;

/// Entries of recent activity answered.
const RECENT: usize = 20;
const TREND_HOURS: i64 = 24;

pub async fn alerts_summary(state: Arc<AppState>, p: Principal) -> Result<HttpResponse, ApiError> {
    let scope = p.require_read()?;
    let a = &state.alerting;
    let now = a.clock.now().0;
    let first_hour = Micros(now).floor_to(Micros::HOUR).0 - (TREND_HOURS - 1) * Micros::HOUR;
    let mut by_severity = json!({"critical": 0, "warning": 0, "info": 0});
    let mut by_state = json!({"pending": 0, "firing": 0, "acknowledged": 0});
    let mut fired = vec![0u64; TREND_HOURS as usize];
    let mut resolved = vec![0u64; TREND_HOURS as usize];
    let mut recent = Vec::new();
    let mut active = 0u64;
    if let Some(t) = a.existing_tenant(scope.as_str()) {
        let t = t.lock();
        for al in t.alerts.values() {
            if al.state.is_active() {
                active += 1;
                let s = &mut by_severity[al.severity.as_str()];
                *s = json!(s.as_u64().unwrap_or(0) + 1);
                let s = &mut by_state[al.state.as_str()];
                *s = json!(s.as_u64().unwrap_or(0) + 1);
            }
            for h in &al.history {
                if h.at >= first_hour {
                    let i = ((h.at - first_hour) / Micros::HOUR) as usize;
                    match h.state {
                        AlertState::Firing if i < fired.len() => fired[i] += 1,
                        AlertState::Resolved if i < resolved.len() => resolved[i] += 1,
                        _ => {}
                    }
                }
                recent.push((h.at, al, h.state, h.by.clone()));
            }
        }
        recent.sort_by_key(|x| std::cmp::Reverse(x.0));
        recent.truncate(RECENT);
        let recent: Vec<_> = recent
            .into_iter()
            .map(|(at, al, st, by)| {
                json!({"at": rfc3339(at), "alert_id": al.id, "rule_id": al.rule_id,
                       "rule_name": al.rule_name, "severity": al.severity,
                       "state": st.as_str(), "by": by, "group": al.group_json()})
            })
            .collect();
        let trend: Vec<_> = (0..TREND_HOURS as usize)
            .map(|i| {
                json!({"hour": rfc3339(first_hour + i as i64 * Micros::HOUR),
                       "fired": fired[i], "resolved": resolved[i]})
            })
            .collect();
        return Ok(json(
            StatusCode::OK,
            &json!({"active": {"total": active, "by_severity": by_severity, "by_state": by_state},
                    "recent": recent, "hourly_trend": trend}),
        ));
    }
    let trend: Vec<_> = (0..TREND_HOURS)
        .map(|i| json!({"hour": rfc3339(first_hour + i * Micros::HOUR), "fired": 0, "resolved": 0}))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"active": {"total": 0, "by_severity": by_severity, "by_state": by_state},
                "recent": [], "hourly_trend": trend}),
    ))
}
