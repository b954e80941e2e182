//! The Slack incoming-webhook message for a notification: a `text`
//! fallback plus one coloured attachment with the alert's fields.

use serde_json::{Value, json};

fn color(state: &str, severity: &str) -> &'static str {
    match (state, severity) {
        ("resolved", _) => "#2eb886",
        (_, "critical") => "#d00000",
        (_, "warning") => "#f2c744",
        _ => "#439fe0",
    }
}

/// Slack's message format for a webhook body (`payload` of a delivery).
pub fn message(payload: &Value) -> Value {
    let a = &payload["alert"];
    let state = a["state"].as_str().unwrap_or("firing");
    let severity = a["severity"].as_str().unwrap_or("warning");
    let name = a["rule_name"].as_str().unwrap_or("alert");
    let group = match a["group"].as_object() {
        Some(g) if !g.is_empty() => g
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("null")))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    let title = if group.is_empty() {
        format!("[{}] {name}", state.to_uppercase())
    } else {
        format!("[{}] {name} ({group})", state.to_uppercase())
    };
    let mut fields = vec![
        json!({"title": "Severity", "value": severity, "short": true}),
        json!({"title": "Value", "value": a["value"].to_string(), "short": true}),
        json!({"title": "Threshold", "value": a["threshold"].to_string(), "short": true}),
    ];
    if let Some(by) = a["acknowledged_by"].as_str() {
        fields.push(json!({"title": "Acknowledged by", "value": by, "short": true}));
    }
    if let Some(r) = a["runbook_url"].as_str() {
        fields.push(json!({"title": "Runbook", "value": r, "short": false}));
    }
    json!({
        "text": title,
        "attachments": [{
            "color": color(state, severity),
            "title": title,
            "title_link": payload["dashboard_url"],
            "fields": fields,
            "footer": format!("PulseStream · tenant {}", payload["tenant"].as_str().unwrap_or("")),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_message_names_rule_group_and_state() {
        let m = message(
            &json!({"tenant": "t1", "dashboard_url": "http://x/alerts/a1",
            "alert": {"state": "firing", "severity": "critical", "rule_name": "5xx",
                      "group": {"endpoint": "/pay"}, "value": 0.9, "threshold": 0.5}}),
        );
        assert_eq!(m["text"], "[FIRING] 5xx (endpoint=/pay)");
        assert_eq!(m["attachments"][0]["color"], "#d00000");
    }
}
