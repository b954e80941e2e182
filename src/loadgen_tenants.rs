//! `pulsestream loadgen --tenants N`: where the many tenants' ingest keys
//! come from (created through the admin API, or read from a keys file) and
//! how traffic is spread over them (Zipf, like the anchor data set: the
//! busiest of 50 tenants sends about a quarter of the events).

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Zipf exponent of tenant volume in `shared/data/gen_events.py`: with 50
/// tenants the top one gets ~25 % of the events.
pub const TENANT_ZIPF_S: f64 = 1.07;

/// Most tenants one run may create or read: each costs a registration
/// (an argon2 hash on the server) and a key in memory.
pub const MAX_TENANTS: usize = 10_000;

/// Owner password of the tenants a run creates (they exist for load only).
const OWNER_PASSWORD: &str = "loadgen-owner-password";

/// Cumulative share of traffic per tenant rank (rank 0 the busiest).
pub fn zipf_cdf(n: usize) -> Vec<f64> {
    let w: Vec<f64> = (1..=n)
        .map(|r| 1.0 / (r as f64).powf(TENANT_ZIPF_S))
        .collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = w
        .iter()
        .map(|x| {
            acc += x / total;
            acc
        })
        .collect();
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

/// Ingest keys, one per line (blank lines and `#` comments skipped).
pub fn read_keys_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        bail!("{} holds no keys", path.display());
    }
    if keys.len() > MAX_TENANTS {
        bail!("{} holds more than {MAX_TENANTS} keys", path.display());
    }
    Ok(keys)
}

/// Creates `n` tenants through the admin API (`POST
/// /api/v1/auth/register/tenant` as the platform administrator) and
/// returns their ingest keys. Names are `<prefix>-<i>`.
pub async fn create_tenants(
    url: &str,
    admin_email: &str,
    admin_password: &str,
    n: usize,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    if n == 0 || n > MAX_TENANTS {
        bail!("--tenants must be between 1 and {MAX_TENANTS}");
    }
    let (authority, base) = split_url(url)?;
    let (status, v) = post_json(
        &authority,
        &format!("{base}/api/v1/auth/login"),
        None,
        &json!({"email": admin_email, "password": admin_password}),
    )
    .await?;
    if status != 200 {
        bail!("admin login answered {status}: {v}");
    }
    let token = v["access_token"]
        .as_str()
        .context("login answer without access_token")?
        .to_owned();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{prefix}-{i:04}");
        let (status, v) = post_json(
            &authority,
            &format!("{base}/api/v1/auth/register/tenant"),
            Some(&token),
            &json!({"tenant_name": name, "owner_email": format!("owner@{name}.loadgen"),
                    "owner_password": OWNER_PASSWORD}),
        )
        .await?;
        if status != 201 {
            bail!("creating tenant {name} answered {status}: {v}");
        }
        keys.push(
            v["api_key"]
                .as_str()
                .context("register answer without api_key")?
                .to_owned(),
        );
    }
    Ok(keys)
}

/// `http://host:port/base` → ("host:port", "/base").
pub fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let uri: hyper::Uri = url.parse().context("--url is not a URL")?;
    if uri.scheme_str().is_some_and(|s| s != "http") {
        bail!("--url must be http:// (TLS is not supported)");
    }
    let authority = uri
        .authority()
        .context("--url needs a host and port")?
        .to_string();
    Ok((authority, uri.path().trim_end_matches('/').to_owned()))
}

/// Time one administrative request may take.
const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn post_json(
    authority: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::from(body.to_string())))?;
        let resp = sender.send_request(req).await.context("sending")?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        anyhow::Ok((status, v))
    };
    tokio::time::timeout(ADMIN_REQUEST_TIMEOUT, fut)
        .await
        .context("administrative request timed out")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_tenants_give_the_top_one_about_a_quarter() {
        let cdf = zipf_cdf(50);
        assert_eq!(cdf.len(), 50);
        assert!((0.22..0.28).contains(&cdf[0]), "top share {}", cdf[0]);
        assert!(cdf.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(cdf[49], 1.0);
        assert_eq!(zipf_cdf(1), vec![1.0]);
    }

    #[test]
    fn keys_files_skip_blanks_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys");
        std::fs::write(&p, "# keys\npsk_a\n\n  psk_b  \n").unwrap();
        assert_eq!(read_keys_file(&p).unwrap(), vec!["psk_a", "psk_b"]);
        std::fs::write(&p, "\n# none\n").unwrap();
        assert!(read_keys_file(&p).is_err());
    }
}
