//! Test harness for the ingest and read API tests: a real server on
//! 127.0.0.1:0 over a temporary data directory, a minimal HTTP/1.1 client,
//! and helpers that create a tenant with ingest and read keys.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use pulsestream::app::AppState;
use pulsestream::config::Config;
use pulsestream::server::Server;
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// The contract's error code.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// Starts a server with defaults changed by `tweak`, data in `data_dir`
/// when given (else a fresh temporary directory).
pub async fn start_in(data_dir: Option<&Path>, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.storage.data_dir = data_dir.unwrap_or(dir.path()).to_owned();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.auth.admin_password = Some(ADMIN_PASSWORD.to_owned());
    tweak(&mut config);
    let state = Arc::new(AppState::open(config).expect("open state"));
    let server = Server::bind(state).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        dir,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_in(None, tweak).await
}

impl TestServer {
    /// Stops the server and waits for it to drain and close the store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        request(self.addr, method, path, headers, body.into()).await
    }

    pub async fn admin_token(&self) -> String {
        let r = self
            .req(
                "POST",
                "/api/v1/auth/login",
                &[("content-type", "application/json")],
                json!({"email": "admin@localhost", "password": ADMIN_PASSWORD}).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "admin login: {}", r.text());
        r.json()["access_token"].as_str().expect("token").to_owned()
    }

    /// Registers a tenant; returns its id, ingest key, a read key and the
    /// owner's access token.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let admin = self.admin_token().await;
        let r = self
            .req(
                "POST",
                "/api/v1/auth/register/tenant",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {admin}")),
                ],
                json!({"tenant_name": name, "owner_email": format!("owner@{name}.test"),
                       "owner_password": "owner-password-123"})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "register tenant: {}", r.text());
        let v = r.json();
        let token = v["access_token"].as_str().expect("token").to_owned();
        let r = self
            .req(
                "POST",
                "/api/v1/auth/api-keys",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {token}")),
                ],
                json!({"name": "reader", "scopes": ["read"]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "read key: {}", r.text());
        TestTenant {
            id: v["tenant"]["id"].as_str().expect("id").to_owned(),
            ingest_key: v["api_key"].as_str().expect("key").to_owned(),
            read_key: r.json()["key"].as_str().expect("key").to_owned(),
            token,
            admin,
        }
    }
}

pub struct TestTenant {
    pub id: String,
    pub ingest_key: String,
    pub read_key: String,
    /// The owner's access token.
    pub token: String,
    /// The platform administrator's access token.
    pub admin: String,
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = sender
        .send_request(b.body(Full::new(body)).expect("request"))
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

/// An RFC 3339 time `secs_ago` seconds before now.
pub fn ago(secs_ago: i64) -> String {
    let t =
        pulsestream_storage::Micros(pulsestream_storage::Micros::now().0 - secs_ago * 1_000_000);
    pulsestream::read::timeparse::format_rfc3339_millis(t)
}
