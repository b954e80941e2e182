//! Online administration: when a server holds the data dir, the admin
//! commands go through its HTTP API as the platform administrator. The
//! server's address comes from `<data-dir>/server-address`; the password
//! from `PULSESTREAM_ADMIN_PASSWORD` (or `auth.admin_password`), else from
//! `<data-dir>/initial-admin-password`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::app::{ADMIN_EMAIL, INITIAL_ADMIN_PASSWORD_FILE, SERVER_ADDRESS_FILE};
use crate::config::Config;

/// A logged-in session with the running server.
pub struct Online {
    base: String,
    token: String,
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Online {
    /// Finds the server of `config`'s data dir and logs in.
    pub fn connect(config: &Config) -> anyhow::Result<Online> {
        let dir = &config.storage.data_dir;
        let addr = std::fs::read_to_string(dir.join(SERVER_ADDRESS_FILE)).map_err(|_| {
            anyhow::anyhow!(
                "the data directory {} is in use by another process, and no running server address was found in it",
                dir.display()
            )
        })?;
        let password = match &config.auth.admin_password {
            Some(p) => p.clone(),
            None => std::fs::read_to_string(dir.join(INITIAL_ADMIN_PASSWORD_FILE))
                .map(|p| p.trim().to_owned())
                .map_err(|_| {
                    anyhow::anyhow!(
                        "a server is running on this data dir; set PULSESTREAM_ADMIN_PASSWORD to administer it online"
                    )
                })?,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut online = Online {
            base: format!("http://{}", addr.trim()),
            token: String::new(),
            runtime,
            client: Client::builder(TokioExecutor::new()).build_http(),
        };
        let login = online
            .call(
                Method::POST,
                "/api/v1/auth/login",
                Some(serde_json::json!({"email": ADMIN_EMAIL, "password": password})),
            )
            .map_err(|e| {
                anyhow::anyhow!("logging in to the running server at {}: {e}", online.base)
            })?;
        online.token = login["access_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("login answer without an access token"))?
            .to_owned();
        Ok(online)
    }

    /// One JSON request; a non-2xx answer becomes an error with the
    /// server's message.
    pub fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if !self.token.is_empty() {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(&b)?),
            None => Bytes::new(),
        };
        let req = req.body(Full::new(bytes))?;
        let (status, body) = self.runtime.block_on(async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        })?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)?
        };
        if !status.is_success() {
            let msg = value["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            anyhow::bail!("server answered {}: {msg}", status.as_u16());
        }
        Ok(value)
    }
}
