//! Outbound HTTP(S) for notification channels (reqwest on rustls): one
//! POST with a total time limit, no redirects followed, and a cap on what
//! is read back, so a slow or hostile endpoint can neither hold a delivery
//! slot forever nor make us buffer without bound.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderName, USER_AGENT};

/// Most bytes of a response body read (the rest is dropped): a receiver
/// acknowledges with a status, not a payload.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Idle connections to a sink are kept this long for the next notification.
const POOL_IDLE: Duration = Duration::from_secs(30);

pub type HttpClient = reqwest::Client;

/// The shared client; `timeout` bounds connect, send and read back.
pub fn client(timeout: Duration) -> Result<HttpClient, String> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_idle_timeout(POOL_IDLE)
        // A notification endpoint that redirects elsewhere is a
        // misconfiguration, and following it would send the alert (and its
        // signature) to a host nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("PulseStream/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// What a POST came back with.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// POSTs a JSON `body` to `url` (http or https).
pub async fn post(
    client: &HttpClient,
    url: &str,
    headers: &[(HeaderName, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Reply, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("URL must be http or https".into());
    }
    let mut req = client
        .post(parsed)
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("PulseStream/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let mut resp = req.body(body).send().await.map_err(|e| describe(&e))?;
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    // Read at most the cap; a larger or broken body is cut, not an error:
    // the status already says whether the notification was taken.
    while buf.len() < MAX_RESPONSE_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => {
                let room = MAX_RESPONSE_BYTES - buf.len();
                buf.extend_from_slice(&c[..c.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    Ok(Reply { status, body: buf })
}
