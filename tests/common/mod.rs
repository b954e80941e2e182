//! Test harness for every HTTP integration test: the real server on
//! `127.0.0.1:0` over a temporary data dir, a small HTTP client, and helpers
//! that log in and create tenants, users and keys.
//!
//! Two response shapes: `request`/`get`/`post`/... answer
//! `(status, headers, json)` for JSON APIs; `req` and the free `request`
//! answer a [`Resp`] keeping the raw body, for tests that send or read
//! non-JSON bodies (gzip, NDJSON, CSV) or need the contract's error code.
//!
//! Every test file that uses it declares `mod common;`; not every file uses
//! every helper.
#![allow(dead_code)]

pub mod sink;
pub mod smtp_sink;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pulsestream::app::AppState;
use pulsestream::config::Config;
use serde_json::{Value, json};

/// The platform administrator's password in every test server.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const ADMIN_EMAIL: &str = "admin@localhost";
/// Password of owners created by `create_tenant`.
pub const OWNER_PASSWORD: &str = "owner-password-123";

/// A running server.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub state: Option<Arc<AppState>>,
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Config for tests: cheap argon2, known admin password, port 0.
pub fn test_config(data_dir: &Path) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().expect("addr");
    c.storage.data_dir = data_dir.to_owned();
    c.auth.admin_password = Some(ADMIN_PASSWORD.to_owned());
    // The minimum sane argon2id cost: tests hash many passwords.
    c.auth.argon2_memory_kib = 64;
    c.auth.argon2_iterations = 1;
    c.auth.argon2_parallelism = 1;
    c.server.shutdown_grace = std::time::Duration::from_secs(5);
    c
}

impl TestServer {
    /// A server on a fresh temporary data dir with the test config.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Like `start`, with the config adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let mut s = Self::start_in(&path, tweak).await;
        s.dir = Some(dir);
        s
    }

    /// A server on an existing data dir (restarts). The caller keeps the dir alive.
    pub async fn start_in(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_in_with_state(data_dir, tweak, |_| {}).await
    }

    /// Like `start_with`, with the state adjusted before it is shared
    /// (e.g. to register ingest observers).
    pub async fn start_with_state(
        tweak: impl FnOnce(&mut Config),
        tweak_state: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let mut s = Self::start_in_with_state(&path, tweak, tweak_state).await;
        s.dir = Some(dir);
        s
    }

    async fn start_in_with_state(
        data_dir: &Path,
        tweak: impl FnOnce(&mut Config),
        tweak_state: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let mut config = test_config(data_dir);
        tweak(&mut config);
        let mut state = AppState::open(config).expect("open app state");
        tweak_state(&mut state);
        let state = Arc::new(state);
        let server = pulsestream::server::Server::bind(state.clone())
            .await
            .expect("bind");
        let addr = server.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            addr,
            state: Some(state),
            dir: None,
            data_dir: data_dir.to_owned(),
            shutdown: Some(tx),
            task: Some(task),
            client: client(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn state(&self) -> &Arc<AppState> {
        self.state.as_ref().expect("server running")
    }

    /// Graceful stop: drains, closes the store, releases the data dir.
    /// Returns the temporary dir (if this server owned one) so a restart
    /// can reuse it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.state = None;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server run");
        }
        self.dir.take()
    }

    /// Sends a request with optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(t) = token {
            headers.push(("authorization", format!("Bearer {t}")));
        }
        let bytes = match body {
            Some(b) => {
                headers.push(("content-type", "application/json".to_owned()));
                Bytes::from(serde_json::to_vec(b).expect("json"))
            }
            None => Bytes::new(),
        };
        let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, headers, body) = self.raw(method, path, &hdrs, bytes).await;
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        (status, headers, json)
    }

    /// A request with arbitrary headers and body bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        send(&self.client, &self.base, method, path, headers, body)
            .await
            .expect("send request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Value) {
        self.request(Method::GET, path, token, None).await
    }
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, HeaderMap, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }
    pub async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, HeaderMap, Value) {
        self.request(Method::PUT, path, token, Some(body)).await
    }
    pub async fn patch(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, HeaderMap, Value) {
        self.request(Method::PATCH, path, token, Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Value) {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Logs in and returns the whole token answer.
    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .post(
                "/api/v1/auth/login",
                None,
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        (s, v)
    }

    /// The platform administrator's access token.
    pub async fn admin_login(&self) -> String {
        let (s, v) = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "admin login: {v}");
        v["access_token"].as_str().expect("access token").to_owned()
    }

    /// How many events of the last hour the tenant of `read_key` has
    /// stored, by the query API.
    pub async fn count_events(&self, read_key: &str) -> Option<u64> {
        let r = self
            .req(
                "POST",
                "/api/v1/query",
                &[
                    ("x-api-key", read_key),
                    ("content-type", "application/json"),
                ],
                json!({"aggregations": [{"op": "count", "as": "n"}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["rows"][0][0].as_u64()
    }

    /// Posts `events` as one JSON batch with `t`'s ingest key and checks
    /// that every one was accepted.
    pub async fn post_batch(&self, t: &TestTenant, events: Vec<serde_json::Value>) {
        let n = events.len();
        let r = self
            .req(
                "POST",
                "/api/v1/ingestion/events/batch",
                &[
                    ("x-api-key", &t.ingest_key),
                    ("content-type", "application/json"),
                ],
                json!({ "events": events }).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["accepted"], n, "{}", r.text());
    }

    /// Registers a tenant (as the platform administrator) with owner
    /// `owner@<name>.test`; returns (tenant id, ingest API key, owner token).
    pub async fn create_tenant(&self, name: &str) -> (String, String, String) {
        let admin = self.admin_login().await;
        let (s, _, v) = self
            .post(
                "/api/v1/auth/register/tenant",
                Some(&admin),
                &serde_json::json!({
                    "tenant_name": name,
                    "owner_email": owner_email(name),
                    "owner_password": OWNER_PASSWORD,
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "register tenant: {v}");
        (
            v["tenant"]["id"].as_str().expect("tenant id").to_owned(),
            v["api_key"].as_str().expect("api key").to_owned(),
            v["access_token"].as_str().expect("token").to_owned(),
        )
    }

    /// Creates a user with `role` in the tenant of `admin_token`, logs it in
    /// and returns (user id, access token).
    pub async fn create_user(
        &self,
        admin_token: &str,
        email: &str,
        role: &str,
    ) -> (String, String) {
        let (s, _, v) = self
            .post(
                "/api/v1/auth/register/user",
                Some(admin_token),
                &serde_json::json!({"email": email, "password": OWNER_PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "register user: {v}");
        let id = v["id"].as_str().expect("id").to_owned();
        let (s, t) = self.login(email, OWNER_PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "login: {t}");
        (id, t["access_token"].as_str().expect("token").to_owned())
    }

    /// A request with a method name, arbitrary headers and body, answered as
    /// a [`Resp`] (over this server's pooled client).
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, headers, body) = self.raw(method, path, headers, body.into()).await;
        Resp::new(status, headers, body)
    }

    /// Registers a tenant (as the platform administrator) with owner
    /// `owner_email(name)` and adds a read-only API key; returns its id, both
    /// keys and both tokens.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let admin = self.admin_login().await;
        let (s, _, v) = self
            .post(
                "/api/v1/auth/register/tenant",
                Some(&admin),
                &json!({"tenant_name": name, "owner_email": owner_email(name),
                        "owner_password": OWNER_PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "register tenant: {v}");
        let token = v["access_token"].as_str().expect("token").to_owned();
        let (s, _, k) = self
            .post(
                "/api/v1/auth/api-keys",
                Some(&token),
                &json!({"name": "reader", "scopes": ["read"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "read key: {k}");
        TestTenant {
            id: v["tenant"]["id"].as_str().expect("id").to_owned(),
            ingest_key: v["api_key"].as_str().expect("key").to_owned(),
            read_key: k["key"].as_str().expect("key").to_owned(),
            token,
            admin,
        }
    }
}

/// A tenant made by [`TestServer::tenant`].
pub struct TestTenant {
    pub id: String,
    /// The ingest key returned at registration.
    pub ingest_key: String,
    /// A key with only the `read` scope.
    pub read_key: String,
    /// The owner's access token.
    pub token: String,
    /// The platform administrator's access token.
    pub admin: String,
}

/// A response with its raw body.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Resp {
        Resp {
            status: status.as_u16(),
            headers,
            body,
        }
    }

    /// The body as JSON; panics (failing the test) when it is not JSON.
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

    /// The contract's error code ("" when the body has none).
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// One request on a fresh client (so a fresh connection), for spawned tasks
/// that hold only the server's address.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Resp {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let (status, headers, body) = send(
        &client(),
        &format!("http://{addr}"),
        method,
        path,
        headers,
        body,
    )
    .await
    .expect("send request");
    Resp::new(status, headers, body)
}

/// An RFC 3339 time `secs_ago` seconds before now.
pub fn ago(secs_ago: i64) -> String {
    let t =
        pulsestream_storage::Micros(pulsestream_storage::Micros::now().0 - secs_ago * 1_000_000);
    pulsestream::read::timeparse::format_rfc3339_millis(t)
}

/// The owner email `create_tenant` uses for `name`.
pub fn owner_email(name: &str) -> String {
    format!("owner@{}.test", name.to_lowercase().replace(' ', "-"))
}

/// Asserts the contract's error body with `code`.
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    assert!(body["error"]["details"].is_array(), "body: {body}");
}

/// A client independent of any `TestServer` (for load that outlives one).
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request; transport errors are returned, not panicked on.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(
            HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?,
            HeaderValue::from_str(v).map_err(|e| e.to_string())?,
        );
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, body))
}
