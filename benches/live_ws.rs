//! The live dashboard under load, in one process (server and clients share
//! the 2 cores, so every figure is pessimistic for the server):
//!
//! 1. ack -> event visible to a subscribed client: one event at a time,
//!    `LATENCY_SAMPLES` times; p50/p99/max.
//! 2. batch ingest throughput (1,000-event batches for `THROUGHPUT_SECS`)
//!    with no subscriber, then with `$PULSESTREAM_BENCH_SUBSCRIBERS`
//!    (default 1,000) subscribed to events + metrics and reading.
//! 3. resident memory (VmRSS of this process: server and all clients)
//!    before and after the subscribers connected.
//!
//! Targets (issue 10): p99 <= 1 s; throughput with 1,000 subscribers >= 90 %
//! of none; 10,000 dashboards with server RSS <= 1 GiB.
//! Run: `cargo bench --bench live_ws` (about a minute).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const LATENCY_SAMPLES: usize = 200;
const THROUGHPUT_SECS: u64 = 5;
const BATCH: usize = 1000;
/// Concurrent ingest requests (two cores: two in flight keep them busy).
const INGEST_CONCURRENCY: usize = 2;

const SERVICES: [&str; 2] = ["checkout", "search"];

type Http = Client<HttpConnector, Full<Bytes>>;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn call(c: &Http, url: String, auth: (&str, &str), body: String) -> Value {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header(auth.0, auth.1)
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let resp = c.request(req).await.expect("send");
    let b = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

fn events(n: usize, tag: &str) -> String {
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

async fn throughput(c: &Http, base: &str, key: &str) -> f64 {
    let end = Instant::now() + Duration::from_secs(THROUGHPUT_SECS);
    let mut tasks = Vec::new();
    for _ in 0..INGEST_CONCURRENCY {
        let c = c.clone();
        let url = format!("{base}/api/v1/ingestion/events/batch");
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let v = call(&c, url.clone(), ("x-api-key", &key), events(BATCH, "load")).await;
                n += v["accepted"].as_u64().unwrap_or(0);
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / THROUGHPUT_SECS as f64
}

fn main() {
    let subscribers: usize = std::env::var("PULSESTREAM_BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = pulsestream::config::Config::default();
        config.server.listen = "127.0.0.1:0".parse().expect("addr");
        config.server.max_connections = 20_000;
        config.storage.data_dir = dir.path().to_owned();
        config.auth.admin_password = Some("bench-admin-password".into());
        config.live.max_connections = 20_000;
        config.live.max_connections_per_tenant = 20_000;
        config.limits.default_rate_limit_eps = 0;
        config.limits.default_quota_events_per_day = 0;
        let state = Arc::new(pulsestream::app::AppState::open(config).expect("open"));
        let server = pulsestream::server::Server::bind(state).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stop_rx.await;
        }));
        let base = format!("http://{addr}");
        let c: Http = Client::builder(TokioExecutor::new()).build_http();
        let login = call(&c, format!("{base}/api/v1/auth/login"), ("x-none", "1"),
            json!({"email": "admin@localhost", "password": "bench-admin-password"}).to_string()).await;
        let admin = format!("Bearer {}", login["access_token"].as_str().unwrap_or_default());
        let reg = call(&c, format!("{base}/api/v1/auth/register/tenant"), ("authorization", &admin),
            json!({"tenant_name": "bench", "owner_email": "o@bench.test", "owner_password": "bench-password-1"}).to_string()).await;
        let key = reg["api_key"].as_str().expect("key").to_owned();
        let token = reg["access_token"].as_str().expect("token").to_owned();
        let ws_url = format!("ws://{addr}/api/v1/dashboard/ws?token={token}");

        // 1. ack -> visible.
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
        ws.send(Message::text(json!({"type": "subscribe", "channels": ["events"]}).to_string())).await.expect("send");
        // Events are pushed only once the server has the subscription.
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && t.as_str().contains("\"subscribed\"")
            {
                break;
            }
        }
        let mut delays = Vec::new();
        for i in 0..LATENCY_SAMPLES {
            let tag = format!("lat-{i}");
            call(&c, format!("{base}/api/v1/ingestion/events/batch"), ("x-api-key", &key), events(1, &tag)).await;
            let acked = Instant::now();
            loop {
                let Some(Ok(Message::Text(t))) = ws.next().await else { continue };
                if t.as_str().contains(&tag) {
                    break;
                }
            }
            delays.push(acked.elapsed());
            tokio::time::sleep(Duration::from_millis(17 * (i as u64 % 7))).await;
        }
        delays.sort();
        let pct = |p: f64| delays[((delays.len() - 1) as f64 * p) as usize];
        println!("ack -> visible ({LATENCY_SAMPLES} events): p50 {:?}  p99 {:?}  max {:?}",
            pct(0.5), pct(0.99), delays[delays.len() - 1]);
        drop(ws);

        // 2. throughput without subscribers.
        let none = throughput(&c, &base, &key).await;
        println!("batch ingest, no subscribers: {none:.0} events/s");

        // 3. subscribers.
        let rss_before = rss_mib();
        let mut readers = Vec::new();
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let t0 = Instant::now();
        for _ in 0..subscribers {
            let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
            ws.send(Message::text(json!({"type": "subscribe", "channels": ["events", "metrics"]}).to_string())).await.expect("send");
            let received = received.clone();
            readers.push(tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(_) = m {
                        received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = rss_mib();
        println!("{subscribers} subscribers connected in {:?}; RSS {rss_before:.0} -> {rss_after:.0} MiB (server + clients: {:.1} KiB per dashboard)",
            t0.elapsed(), (rss_after - rss_before) * 1024.0 / subscribers as f64);
        let with = throughput(&c, &base, &key).await;
        println!("batch ingest, {subscribers} subscribers: {with:.0} events/s ({:.0} % of none); {} messages received",
            100.0 * with / none, received.load(std::sync::atomic::Ordering::Relaxed));
        for r in readers {
            r.abort();
        }
        let _ = stop_tx.send(());
        let _ = task.await;
    });
}
