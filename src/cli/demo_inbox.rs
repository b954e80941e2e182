//! The demo's notification channel: a webhook receiver on loopback, inside
//! the demo process, that prints each alert notification it receives.
//!
//! The demo must work offline and send nothing off the machine, yet a rule
//! with no channel would leave the notification half of alerting unseen.
//! A real `webhook` channel pointed here exercises the whole path (queue,
//! signed delivery, retries, the delivery log in the Alerts page) and ends
//! in the demo's own terminal.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Largest notification body read: webhook payloads are a few KiB.
const MAX_BODY: usize = 256 * 1024;

/// A running inbox; stops when dropped.
pub struct Inbox {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Inbox {
    /// The URL to give the webhook channel.
    pub fn url(&self) -> String {
        format!("http://{}/demo-inbox", self.addr)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One line for a notification body (contract section 7's webhook shape).
pub fn describe(body: &Value) -> String {
    let a = &body["alert"];
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    format!(
        "[demo inbox] alert {} ({}): {}, value {} vs threshold {}",
        s(&a["state"]),
        s(&a["severity"]),
        s(&a["rule_name"]),
        a["value"],
        a["threshold"],
    )
}

async fn receive(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let status = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => {
            let body: Value = serde_json::from_slice(&b.to_bytes()).unwrap_or(Value::Null);
            println!("{}", describe(&body));
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE,
    };
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// Starts the inbox on a free loopback port.
pub async fn start() -> std::io::Result<Inbox> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req| async move { Ok::<_, Infallible>(receive(req).await) });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(Inbox { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_one_readable_line() {
        let body = serde_json::json!({"version": "1", "alert": {
            "rule_name": "Payment capture failing", "state": "firing",
            "severity": "critical", "value": 0.4, "threshold": 0.2}});
        assert_eq!(
            describe(&body),
            "[demo inbox] alert firing (critical): Payment capture failing, value 0.4 vs threshold 0.2"
        );
        assert!(describe(&Value::Null).starts_with("[demo inbox] alert ? (?): ?"));
    }
}
