//! Outbound HTTP for notification channels: one POST with a total time
//! limit and a cap on what is read back, so a slow or hostile endpoint can
//! neither hold a delivery slot forever nor make us buffer without bound.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Most bytes of a response body read (the rest is dropped): a receiver
/// acknowledges with a status, not a payload.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client(connect_timeout: Duration) -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        // Idle connections to sinks are reused for a while (repeated
        // notifications to one webhook), then closed.
        .pool_idle_timeout(Duration::from_secs(30))
        .build(c)
}

/// What a POST came back with.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// POSTs `body` to `url` within `timeout` (connect, send and read back).
pub async fn post(
    client: &HttpClient,
    url: &str,
    headers: &[(HeaderName, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Reply, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https endpoints are not supported by this build's HTTP client".into());
        }
        _ => return Err("URL must be http or https".into()),
    }
    let mut req = Request::post(uri)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("PulseStream/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        let v = HeaderValue::from_str(v).map_err(|e| format!("bad header {k}: {e}"))?;
        req = req.header(k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let work = async {
        let resp = client.request(req).await.map_err(|e| {
            let mut msg = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                msg = format!("{msg}: {src}");
            }
            msg
        })?;
        let status = resp.status().as_u16();
        // Read at most the cap; a larger body is cut, not an error.
        let mut body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES);
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        buf.extend_from_slice(&d);
                    }
                }
                Err(_) => break,
            }
        }
        Ok::<_, String>(Reply {
            status,
            body: Bytes::from(buf),
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    }
}
