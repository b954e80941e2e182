//! The records of alerting: alerts with their history, channels, silences,
//! queued deliveries and the delivery log, in the shapes they are stored
//! in (times as epoch microseconds) and answered in (contract sections 7
//! and 10, times as RFC 3339).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::meta::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<AlertState> {
        Some(match s {
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            "acknowledged" => AlertState::Acknowledged,
            "resolved" => AlertState::Resolved,
            _ => return None,
        })
    }
    pub fn is_active(self) -> bool {
        self != AlertState::Resolved
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub state: AlertState,
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One alert instance of a (rule, group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub tenant: String,
    pub rule_id: String,
    pub rule_name: String,
    pub state: AlertState,
    pub severity: String,
    /// (group-by field, value) in the rule's order.
    pub group: Vec<(String, Option<String>)>,
    pub group_key: String,
    pub value: Option<f64>,
    pub threshold: f64,
    /// Set when the rule has a baseline (the value is then always shown,
    /// null when there was no data at the offset).
    pub has_baseline: bool,
    pub baseline_value: Option<f64>,
    pub started_at: i64,
    pub fired_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub silenced: bool,
    pub history: Vec<HistoryEntry>,
    pub labels: BTreeMap<String, String>,
    pub runbook_url: Option<String>,
    /// Last evaluation at which the condition held.
    pub last_true_at: i64,
    /// The firing notification has been queued (so it is never queued again).
    pub notified_firing: bool,
    pub last_notified_at: Option<i64>,
    /// Escalation steps already notified, by index.
    pub escalated: Vec<bool>,
    /// Channels told about this alert (they also get its resolution).
    pub notified_channels: Vec<String>,
}

fn opt_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(rfc3339(t)))
}

impl Alert {
    pub fn group_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.group {
            m.insert(k.clone(), v.as_ref().map_or(Value::Null, |v| json!(v)));
        }
        Value::Object(m)
    }

    fn value_json(&self) -> Value {
        self.value
            .filter(|v| v.is_finite())
            .map_or(Value::Null, |v| json!(v))
    }

    /// The API's shape (contract section 7).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "state": self.state.as_str(),
            "severity": self.severity,
            "group": self.group_json(),
            "value": self.value_json(),
            "threshold": self.threshold,
            "started_at": rfc3339(self.started_at),
            "fired_at": opt_time(self.fired_at),
            "acknowledged_at": opt_time(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": opt_time(self.resolved_at),
            "silenced": self.silenced,
            "labels": self.labels,
            "runbook_url": self.runbook_url,
            "history": self.history.iter().map(|h| {
                let mut e = json!({"state": h.state.as_str(), "at": rfc3339(h.at)});
                if let Some(by) = &h.by {
                    e["by"] = json!(by);
                }
                e
            }).collect::<Vec<_>>(),
        });
        if self.has_baseline {
            v["baseline_value"] = self
                .baseline_value
                .filter(|b| b.is_finite())
                .map_or(Value::Null, |b| json!(b));
        }
        v
    }

    /// The `alert` object of a webhook body (contract section 7).
    pub fn webhook_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "state": self.state.as_str(),
            "severity": self.severity,
            "group": self.group_json(),
            "value": self.value_json(),
            "threshold": self.threshold,
            "started_at": rfc3339(self.started_at),
            "resolved_at": opt_time(self.resolved_at),
            "acknowledged_by": self.acknowledged_by,
            "labels": self.labels,
            "runbook_url": self.runbook_url,
        });
        if self.has_baseline {
            v["baseline_value"] = self
                .baseline_value
                .filter(|b| b.is_finite())
                .map_or(Value::Null, |b| json!(b));
        }
        v
    }

    pub fn push_history(&mut self, state: AlertState, at: i64, by: Option<String>) {
        self.state = state;
        self.history.push(HistoryEntry { state, at, by });
    }
}

/// A notification channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// `webhook`, `slack` or `email`.
    pub kind: String,
    /// As given (webhook: `url`, `secret`; slack: `url`; email: `to`).
    pub config: Value,
    pub created_at: i64,
}

impl Channel {
    /// The API's shape; a webhook secret is never answered back.
    pub fn to_json(&self) -> Value {
        let mut config = self.config.clone();
        if let Some(c) = config.as_object_mut()
            && c.remove("secret").is_some()
        {
            c.insert("secret_set".into(), json!(true));
        }
        json!({"id": self.id, "name": self.name, "type": self.kind, "config": config,
               "created_at": rfc3339(self.created_at)})
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
}

/// A silence: notifications of alerts matching every matcher are
/// suppressed between `starts_at` and `ends_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub tenant: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub comment: String,
    pub created_by: String,
    pub created_at: i64,
}

impl Silence {
    pub fn is_active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// True when every matcher matches the alert: `rule_id`, a group-by
    /// value, or a rule label.
    pub fn matches(&self, a: &Alert) -> bool {
        !self.matchers.is_empty()
            && self.matchers.iter().all(|m| {
                (m.name == "rule_id" && a.rule_id == m.value)
                    || (m.name == "rule_name" && a.rule_name == m.value)
                    || (m.name == "severity" && a.severity == m.value)
                    || a.group
                        .iter()
                        .any(|(k, v)| *k == m.name && v.as_deref() == Some(m.value.as_str()))
                    || a.labels.get(&m.name) == Some(&m.value)
            })
    }

    pub fn to_json(&self, now: i64) -> Value {
        json!({
            "id": self.id,
            "matchers": self.matchers,
            "starts_at": rfc3339(self.starts_at),
            "ends_at": rfc3339(self.ends_at),
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at": rfc3339(self.created_at),
            "active": self.is_active(now),
        })
    }
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeKind {
    Firing,
    Repeat,
    Escalation,
    Resolved,
    Test,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Firing => "firing",
            NoticeKind::Repeat => "repeat",
            NoticeKind::Escalation => "escalation",
            NoticeKind::Resolved => "resolved",
            NoticeKind::Test => "test",
        }
    }
}

/// A notification waiting to be delivered (kept until it succeeds or
/// runs out of attempts, so a restart retries it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub tenant: String,
    pub alert_id: Option<String>,
    pub channel_id: String,
    pub kind: NoticeKind,
    /// The webhook body, fixed when the transition happened.
    pub payload: Value,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_at: i64,
    pub created_at: i64,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub delivery_id: String,
    pub alert_id: Option<String>,
    pub channel_id: String,
    pub channel_type: String,
    pub kind: NoticeKind,
    pub attempt: u32,
    /// `delivered`, `failed` (will retry) or `abandoned` (no more retries).
    pub status: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub at: i64,
    pub duration_ms: f64,
}

impl Attempt {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "delivery_id": self.delivery_id,
            "alert_id": self.alert_id,
            "channel_id": self.channel_id,
            "channel_type": self.channel_type,
            "kind": self.kind.as_str(),
            "attempt": self.attempt,
            "status": self.status,
            "http_status": self.http_status,
            "error": self.error,
            "at": rfc3339(self.at),
            "duration_ms": self.duration_ms,
        })
    }
}
