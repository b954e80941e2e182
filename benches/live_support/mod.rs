//! What the live-dashboard benchmarks share: an HTTP client, the bench
//! tenant's setup through the API, event batches, WebSocket clients and
//! the ack -> visible probe.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Http = Client<HttpConnector, Full<Bytes>>;
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

const SERVICES: [&str; 2] = ["checkout", "search"];

pub fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// VmRSS and VmHWM (peak) of process `pid` ("self" for this one), MiB.
pub fn rss_mib(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub async fn call(c: &Http, url: String, auth: (&str, &str), body: String) -> Value {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header(auth.0, auth.1)
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let resp = c.request(req).await.expect("send");
    let b = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

/// `n` API calls tagged `tag` (in `message`), one in fifty a 503.
pub fn events(n: usize, tag: &str) -> String {
    let evs: Vec<Value> = (0..n)
        .map(|i| {
            json!({"event_type": "api_call", "service": SERVICES[i % 2],
                        "endpoint": "/api/v1/orders", "method": "GET",
                        "status_code": if i % 50 == 0 { 503 } else { 200 },
                        "latency_ms": 10.0 + (i % 300) as f64, "message": tag})
        })
        .collect();
    json!({ "events": evs }).to_string()
}

/// Logs in as the administrator and creates the `bench` tenant: its
/// ingest key and its owner's access token.
pub async fn bench_tenant(c: &Http, base: &str) -> (String, String) {
    let login = call(
        c,
        format!("{base}/api/v1/auth/login"),
        ("x-none", "1"),
        json!({"email": "admin@localhost", "password": ADMIN_PASSWORD}).to_string(),
    )
    .await;
    let admin = format!(
        "Bearer {}",
        login["access_token"].as_str().unwrap_or_default()
    );
    let reg = call(
        c,
        format!("{base}/api/v1/auth/register/tenant"),
        ("authorization", &admin),
        json!({"tenant_name": "bench", "owner_email": "o@bench.test",
               "owner_password": "bench-password-1"})
        .to_string(),
    )
    .await;
    let key = reg["api_key"].as_str().expect("key").to_owned();
    let token = reg["access_token"].as_str().expect("token").to_owned();
    (key, token)
}

/// A dashboard connection subscribed to `channels` with `filter`, once the
/// server confirmed the subscription. A small read buffer: these clients
/// only count what they receive, and thousands of them share the process.
pub async fn dashboard(url: &str, channels: Value, filter: Value) -> Ws {
    let mut cfg = WebSocketConfig::default();
    cfg.read_buffer_size = 16 * 1024;
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), false)
        .await
        .expect("ws");
    ws.send(Message::text(
        json!({"type": "subscribe", "channels": channels, "filter": filter}).to_string(),
    ))
    .await
    .expect("send");
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m
            && t.as_str().contains("\"subscribed\"")
        {
            break;
        }
    }
    ws
}

/// The service of the probe events: subscribe the probe with
/// `{"service": PROBE_SERVICE}` so background traffic never hides them.
pub const PROBE_SERVICE: &str = "probe";

/// Ingests one event (service `PROBE_SERVICE`) at a time, `samples` times,
/// and waits for each on `ws`: the delays from the acknowledgement to the
/// push, sorted.
pub async fn ack_to_visible(
    c: &Http,
    base: &str,
    key: &str,
    ws: &mut Ws,
    samples: usize,
) -> Vec<Duration> {
    let mut delays = Vec::new();
    for i in 0..samples {
        let tag = format!("lat-{i}");
        let body = json!({"events": [{"event_type": "api_call", "service": PROBE_SERVICE,
                                      "status_code": 200, "latency_ms": 1.0, "message": tag}]});
        call(
            c,
            format!("{base}/api/v1/ingestion/events/batch"),
            ("x-api-key", key),
            body.to_string(),
        )
        .await;
        let acked = Instant::now();
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                continue;
            };
            if t.as_str().contains(&format!("\"{tag}\"")) {
                break;
            }
        }
        delays.push(acked.elapsed());
        tokio::time::sleep(Duration::from_millis(17 * (i as u64 % 7))).await;
    }
    delays.sort();
    delays
}

/// The `p` quantile of sorted `d`.
pub fn pct(d: &[Duration], p: f64) -> Duration {
    d[((d.len() - 1) as f64 * p) as usize]
}

/// Kills the server when the bench ends, however it ends.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pulsestream serve` (the release binary the bench was built
/// with) on a free loopback port with its data in `dir`, connection caps
/// of `caps`, and no rate limits: the server and its address.
pub fn start_server(dir: &std::path::Path, caps: usize) -> (Server, String) {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = {caps}\n\
         max_connections_per_ip = {caps}\n\
         [storage]\ndata_dir = \"{}\"\n\
         [log]\nlevel = \"warn\"\n\
         [live]\nmax_connections = {caps}\nmax_connections_per_tenant = {caps}\n",
        dir.join("data").display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_pulsestream"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("PULSESTREAM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pulsestream serve");
    let server = Server(child);
    let address_file = dir.join("data").join("server-address");
    let started = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&address_file)
            && !a.trim().is_empty()
        {
            break a.trim().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    (server, addr)
}
