//! Notifications: the delivery queue and the channels it delivers to
//! (webhook with an HMAC-SHA256 signature, Slack incoming webhooks, email).
//!
//! Every delivery runs in its own task, so a slow endpoint delays only
//! itself and evaluation never waits for the network. A failed attempt is
//! logged and retried with exponential backoff; the queued delivery is
//! updated in the database after each attempt and removed once it succeeds
//! or runs out of attempts, so a restart retries exactly what is left.

pub mod email;
pub mod hmac;
pub mod http;
pub mod slack;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::HeaderName;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::UnboundedReceiver;

use super::Alerting;
use super::model::{Attempt, Channel, Delivery};
use super::persist;

/// Deliveries sent at once; more wait for a slot (a burst of alerts to a
/// dead endpoint must not open thousands of sockets).
pub const MAX_CONCURRENT_SENDS: usize = 64;
/// Longest wait between two attempts of one delivery.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Bytes of an endpoint's error answer kept in the delivery log.
const ERROR_BODY_BYTES: usize = 200;

pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-pulsestream-signature");
pub const DELIVERY_HEADER: HeaderName = HeaderName::from_static("x-pulsestream-delivery");

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub ok: bool,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
}

/// Backoff before attempt `n + 1` after `n` failed attempts.
pub fn backoff(base: Duration, failed: u32) -> Duration {
    let exp = failed.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exp).min(MAX_BACKOFF)
}

/// Sends `payload` to `channel` once.
pub async fn send_once(
    a: &Alerting,
    channel: &Channel,
    delivery_id: &str,
    payload: &Value,
) -> AttemptResult {
    let started = Instant::now();
    let timeout = a.settings.send_timeout;
    let url = channel.config["url"].as_str().unwrap_or("");
    let result = match channel.kind.as_str() {
        "webhook" => {
            let body = serde_json::to_vec(payload).unwrap_or_default();
            let mut headers = vec![(DELIVERY_HEADER, delivery_id.to_owned())];
            if let Some(secret) = channel.config["secret"].as_str()
                && !secret.is_empty()
            {
                headers.push((SIGNATURE_HEADER, hmac::signature(secret, &body)));
            }
            http::post(&a.http, url, &headers, body, timeout).await
        }
        "slack" => {
            let body = serde_json::to_vec(&slack::message(payload)).unwrap_or_default();
            http::post(&a.http, url, &[], body, timeout).await
        }
        "email" => {
            let r = match &a.email {
                Some(m) => m.send(&channel.config, payload).await,
                None => {
                    Err("email needs the [smtp] section of the configuration (smtp.host)".into())
                }
            };
            return AttemptResult {
                ok: r.is_ok(),
                http_status: None,
                error: r.err(),
                duration: started.elapsed(),
            };
        }
        other => Err(format!("channel type {other} cannot be delivered")),
    };
    let duration = started.elapsed();
    match result {
        Ok(r) if (200..300).contains(&r.status) => AttemptResult {
            ok: true,
            http_status: Some(r.status),
            error: None,
            duration,
        },
        Ok(r) => AttemptResult {
            ok: false,
            http_status: Some(r.status),
            error: Some(format!(
                "endpoint answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(ERROR_BODY_BYTES)])
            )),
            duration,
        },
        Err(e) => AttemptResult {
            ok: false,
            http_status: None,
            error: Some(e),
            duration,
        },
    }
}

/// The body of a test notification for `channel`.
pub fn test_payload(tenant: &str, channel: &Channel, dashboard: &str, now: i64) -> Value {
    json!({
        "version": "1",
        "tenant": tenant,
        "test": true,
        "alert": {
            "id": "test", "rule_id": "test", "rule_name": format!("Test notification for {}", channel.name),
            "state": "firing", "severity": "info", "group": {}, "value": null, "threshold": null,
            "started_at": crate::meta::rfc3339(now), "resolved_at": null, "acknowledged_by": null,
            "labels": {}, "runbook_url": null,
        },
        "dashboard_url": dashboard,
    })
}

/// Runs the delivery queue until `stop` turns true. Deliveries still
/// waiting then stay in the database for the next start.
pub async fn run(
    a: Arc<Alerting>,
    mut rx: UnboundedReceiver<Delivery>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            d = rx.recv() => match d {
                Some(d) => {
                    tasks.spawn(deliver(a.clone(), d, slots.clone()));
                }
                None => break,
            },
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Delivers one notification, retrying until it succeeds or runs out of
/// attempts.
async fn deliver(a: Arc<Alerting>, mut d: Delivery, slots: Arc<Semaphore>) {
    loop {
        let wait = d.next_at - a.clock.now().0;
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait as u64)).await;
        }
        let Ok(_slot) = slots.acquire().await else {
            return;
        };
        let channel = a.channel(&d.tenant, &d.channel_id);
        let result = match &channel {
            Some(c) => send_once(&a, c, &d.id, &d.payload).await,
            None => AttemptResult {
                ok: false,
                http_status: None,
                error: Some("channel was deleted".into()),
                duration: Duration::ZERO,
            },
        };
        d.attempts += 1;
        let now = a.clock.now().0;
        let last = channel.is_none() || d.attempts >= a.settings.max_attempts;
        let status = if result.ok {
            "delivered"
        } else if last {
            "abandoned"
        } else {
            "failed"
        };
        let attempt = Attempt {
            id: crate::auth::random::id("na"),
            delivery_id: d.id.clone(),
            alert_id: d.alert_id.clone(),
            channel_id: d.channel_id.clone(),
            channel_type: channel.as_ref().map_or(String::new(), |c| c.kind.clone()),
            kind: d.kind,
            attempt: d.attempts,
            status: status.to_owned(),
            http_status: result.http_status,
            error: result.error.clone(),
            at: now,
            duration_ms: result.duration.as_secs_f64() * 1000.0,
        };
        a.metrics.record_attempt(&result, now - d.created_at);
        if let Err(e) = a.persist.log_attempt(&attempt, &d.tenant) {
            tracing::error!(error = %e, "cannot record a delivery attempt");
        }
        let key = persist::key(&d.tenant, &d.id);
        if result.ok || last {
            if !result.ok {
                tracing::warn!(tenant = %d.tenant, channel = %d.channel_id, delivery = %d.id,
                    error = ?result.error, "notification abandoned after its last attempt");
            }
            if let Err(e) = a
                .persist
                .write(vec![persist::Write::Delete(persist::DELIVERIES, key)])
            {
                tracing::error!(error = %e, "cannot remove a finished delivery");
            }
            return;
        }
        let delay = backoff(a.settings.retry_base, d.attempts);
        d.next_at = now + delay.as_micros() as i64;
        if let Err(e) = a
            .persist
            .write(vec![persist::put(persist::DELIVERIES, key, &d)])
        {
            tracing::error!(error = %e, "cannot update a queued delivery");
        }
        tracing::info!(tenant = %d.tenant, channel = %d.channel_id, attempt = d.attempts,
            error = ?result.error, retry_in_ms = delay.as_millis() as u64, "notification failed; will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_millis(500);
        assert_eq!(backoff(b, 1), Duration::from_millis(500));
        assert_eq!(backoff(b, 2), Duration::from_secs(1));
        assert_eq!(backoff(b, 3), Duration::from_secs(2));
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
    }
}
