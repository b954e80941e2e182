//! Email notifications over SMTP (lettre, rustls on aws-lc-rs), configured
//! by the `[smtp]` section: a plain-text message per recipient list with
//! the alert's state, rule, group, value and a link to the dashboard.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

use crate::config::SmtpConfig;

/// Sends notification emails through one SMTP relay.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl Mailer {
    /// `None` when no `smtp.host` is configured.
    pub fn from_config(c: &SmtpConfig) -> anyhow::Result<Option<Mailer>> {
        let Some(host) = c.host.as_deref().filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let builder = match c.tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
        };
        let mut builder = builder.port(c.port).timeout(Some(c.timeout));
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("smtp.from {:?} is not an address: {e}", c.from))?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            timeout: c.timeout,
        }))
    }

    /// Sends the notification `payload` to the channel's `to` addresses.
    pub async fn send(&self, channel_config: &Value, payload: &Value) -> Result<(), String> {
        let (subject, body) = render(payload);
        let mut msg = Message::builder().from(self.from.clone()).subject(subject);
        let to = channel_config["to"].as_array().cloned().unwrap_or_default();
        if to.is_empty() {
            return Err("the channel has no recipients".into());
        }
        for addr in &to {
            let mb: Mailbox = addr
                .as_str()
                .unwrap_or("")
                .parse()
                .map_err(|e| format!("bad recipient {addr}: {e}"))?;
            msg = msg.to(mb);
        }
        let msg = msg
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.timeout, self.transport.send(msg)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("SMTP: {e}")),
            Err(_) => Err(format!(
                "SMTP timed out after {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

/// Subject and plain-text body of a notification.
pub fn render(payload: &Value) -> (String, String) {
    let a = &payload["alert"];
    let state = a["state"].as_str().unwrap_or("firing").to_uppercase();
    let name = a["rule_name"].as_str().unwrap_or("alert");
    let group = a["group"]
        .as_object()
        .map(|g| {
            g.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("null")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let subject = if group.is_empty() {
        format!("[{state}] {name}")
    } else {
        format!("[{state}] {name} ({group})")
    };
    let mut body = format!(
        "{subject}\n\nSeverity: {}\nValue: {}\nThreshold: {}\nStarted: {}\n",
        a["severity"].as_str().unwrap_or(""),
        a["value"],
        a["threshold"],
        a["started_at"].as_str().unwrap_or(""),
    );
    if let Some(r) = a["resolved_at"].as_str() {
        body.push_str(&format!("Resolved: {r}\n"));
    }
    if let Some(by) = a["acknowledged_by"].as_str() {
        body.push_str(&format!("Acknowledged by: {by}\n"));
    }
    if let Some(r) = a["runbook_url"].as_str() {
        body.push_str(&format!("Runbook: {r}\n"));
    }
    body.push_str(&format!(
        "\n{}\n-- \nPulseStream, tenant {}\n",
        payload["dashboard_url"].as_str().unwrap_or(""),
        payload["tenant"].as_str().unwrap_or("")
    ));
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subject_names_state_rule_and_group() {
        let (s, b) = render(
            &json!({"tenant": "t1", "dashboard_url": "http://x/alerts/a",
            "alert": {"state": "resolved", "rule_name": "5xx", "group": {"endpoint": "/pay"},
                      "severity": "critical", "value": 0.1, "threshold": 0.5,
                      "started_at": "2026-01-01T00:00:00.000Z", "resolved_at": "2026-01-01T00:05:00.000Z"}}),
        );
        assert_eq!(s, "[RESOLVED] 5xx (endpoint=/pay)");
        assert!(b.contains("Resolved: 2026-01-01T00:05:00.000Z"), "{b}");
        assert!(b.contains("http://x/alerts/a"), "{b}");
    }
}
