//! The abuse scenarios against the real server (in this process,
//! over 127.0.0.1), each printing what the target table asks for:
//!
//! - `login-flood`: 1,000 concurrent logins with unknown emails over one
//!   HTTP/2 connection; RSS growth and `/health` latency meanwhile.
//! - `silent`: `SILENT_SOCKETS` silent TCP connections plus 100 half HTTP/2
//!   prefaces; `/health` and ingest latency throughout, and how many of the
//!   sockets the server closed after `header_read_timeout`.
//! - `groupby`: `group_by: ["trace_id"]` over 1 M distinct values with 32
//!   percentile aggregations; status, time and RSS growth.
//! - `export-stall`: 500 exports whose clients never read while another
//!   tenant ingests batches; that tenant's ack p50/p99 idle and meanwhile,
//!   and whether every export slot is given back.
//! - `stalled-uploads`: 100 chunked uploads of one tenant that stop after
//!   their first chunk while another tenant ingests; that tenant's statuses
//!   (no 503 is the target) and ack latency idle and meanwhile.
//!
//! Run: `cargo bench --bench abuse_limits -- [scenario...]` (all without
//! arguments; one scenario per run keeps the memory figures apart; the
//! login flood runs twice: `login-flood` with the default per-address rate
//! limit, `login-flood-gate` without it). Production settings (argon2
//! 19 MiB) unless a scenario says.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pulsestream::app::AppState;
use pulsestream::config::Config;
use pulsestream_storage::{Event, Micros, TenantId};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The binary's allocator, so memory figures match the server's (glibc's
/// per-thread arenas would keep each blocking thread's 19 MiB hash).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Silent sockets in the `silent` scenario, spread over
/// `SILENT_ADDRESSES` client addresses so the per-address cap does not
/// refuse them: the connection cap and the header deadline must hold.
/// Client and server ends each take a descriptor; the server holds at most
/// `max_connections` of them, so this stays under a 20,000 descriptor limit.
const SILENT_SOCKETS: usize = 10_000;
const SILENT_ADDRESSES: u8 = 10;

const ADMIN_PASSWORD: &str = "bench-admin-password";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Running {
    base: String,
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(tweak: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().expect("addr");
    c.storage.data_dir = dir.path().to_owned();
    c.auth.admin_password = Some(ADMIN_PASSWORD.to_owned());
    tweak(&mut c);
    let state = Arc::new(AppState::open(c).expect("open"));
    let server = pulsestream::server::Server::bind(state.clone())
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        base: format!("http://{addr}"),
        addr,
        state,
        stop,
        task,
        _dir: dir,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn send(
    client: &HttpClient,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, Bytes) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    match client.request(req).await {
        Ok(r) => {
            let st = r.status().as_u16();
            let b = r
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            (st, b)
        }
        Err(_) => (0, Bytes::new()),
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples RSS every 10 ms until stopped; returns the peak (MiB).
fn rss_sampler() -> (Arc<AtomicBool>, std::thread::JoinHandle<f64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut peak = 0.0f64;
        while !s.load(Ordering::Relaxed) {
            peak = peak.max(rss_mib());
            std::thread::sleep(Duration::from_millis(10));
        }
        peak.max(rss_mib())
    });
    (stop, h)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// `/health` latencies on fresh connections every `every` until `stop`.
async fn probe_health(
    addr: std::net::SocketAddr,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{addr}");
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (st, _) = send(&client, &base, "GET", "/health", &[], String::new()).await;
        let d = if st == 200 {
            t.elapsed()
        } else {
            Duration::from_secs(3600)
        };
        out.push(d);
        tokio::time::sleep(every).await;
    }
    out
}

async fn admin_token(r: &Running, client: &HttpClient) -> String {
    let (_, b) = send(
        client,
        &r.base,
        "POST",
        "/api/v1/auth/login",
        &[("content-type", "application/json")],
        json!({"email": "admin@localhost", "password": ADMIN_PASSWORD}).to_string(),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).expect("login json");
    v["access_token"].as_str().expect("token").to_owned()
}

/// A tenant: (id, ingest key, read key).
async fn tenant(
    r: &Running,
    client: &HttpClient,
    admin: &str,
    name: &str,
) -> (String, String, String) {
    let auth = format!("Bearer {admin}");
    let (_, b) = send(
        client,
        &r.base,
        "POST",
        "/api/v1/auth/register/tenant",
        &[("content-type", "application/json"), ("authorization", &auth)],
        json!({"tenant_name": name, "owner_email": format!("o@{name}.io"), "owner_password": "owner-password-1"}).to_string(),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).expect("tenant json");
    let owner = format!(
        "Bearer {}",
        v["access_token"].as_str().expect("owner token")
    );
    let (_, k) = send(
        client,
        &r.base,
        "POST",
        "/api/v1/auth/api-keys",
        &[
            ("content-type", "application/json"),
            ("authorization", &owner),
        ],
        json!({"name": "reader", "scopes": ["read"]}).to_string(),
    )
    .await;
    let k: Value = serde_json::from_slice(&k).expect("key json");
    (
        v["tenant"]["id"].as_str().expect("id").to_owned(),
        v["api_key"].as_str().expect("key").to_owned(),
        k["key"].as_str().expect("key").to_owned(),
    )
}

fn batch_body(n: usize, seed: usize) -> String {
    let now = Micros::now().0 / 1000;
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"timestamp": now - (i as i64 % 60_000), "event_type": "api_call",
                   "service": format!("svc-{}", (i + seed) % 20), "endpoint": "/api/v1/orders",
                   "method": "POST", "status_code": 200, "latency_ms": (i % 900) as f64,
                   "user_id": format!("u-{}", i % 500), "trace_id": format!("t-{seed}-{i}")})
        })
        .collect();
    json!({ "events": events }).to_string()
}

/// Sends `n` batches one after another with `key`: each ack's latency (an
/// hour for a refusal, so it lands in the tail), and the statuses seen.
async fn timed_batches(
    client: &HttpClient,
    base: &str,
    key: &str,
    body: &str,
    n: usize,
) -> (Vec<Duration>, std::collections::BTreeMap<u16, usize>) {
    let mut lat = Vec::with_capacity(n);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..n {
        let t = Instant::now();
        let (st, _) = send(
            client,
            base,
            "POST",
            "/api/v1/ingestion/events/batch",
            &[("x-api-key", key), ("content-type", "application/json")],
            body.to_owned(),
        )
        .await;
        *statuses.entry(st).or_insert(0) += 1;
        lat.push(if (200..300).contains(&st) {
            t.elapsed()
        } else {
            Duration::from_secs(3600)
        });
    }
    (lat, statuses)
}

/// One tenant opens 100 chunked batch uploads that send one 256 KiB chunk
/// and then nothing; another tenant sends 300 batches of 1,000 events
/// meanwhile. The target: no 503 (no refusal at all) for the other tenant.
async fn stalled_uploads() {
    let r = start(|_| {}).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let admin = admin_token(&r, &client).await;
    let (_, slow_ingest, _) = tenant(&r, &client, &admin, "slow-uploader").await;
    let (_, other_ingest, _) = tenant(&r, &client, &admin, "ingester").await;
    let body = batch_body(1000, 7);
    let (mut idle, idle_statuses) =
        timed_batches(&client, &r.base, &other_ingest, &body, 300).await;
    // NDJSON lines, cut short: the server can parse none of it before the
    // body ends, so it holds (and charges) every byte it has read.
    let mut chunk = String::new();
    let mut i = 0;
    while chunk.len() < 256 * 1024 {
        chunk.push_str(&format!(
            "{{\"event_type\":\"api_call\",\"service\":\"slow\",\"latency_ms\":{i}}}\n"
        ));
        i += 1;
    }
    let head = format!(
        "POST /api/v1/ingestion/events/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: {slow_ingest}\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
        chunk.len()
    );
    let mut socks = Vec::new();
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(r.addr).await {
            let _ = s.write_all(head.as_bytes()).await;
            socks.push(s);
        }
    }
    // Let the server read what was sent before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut busy, busy_statuses) =
        timed_batches(&client, &r.base, &other_ingest, &body, 300).await;
    println!(
        "stalled-uploads: {} stalled chunked uploads (256 KiB each) open for tenant A; tenant B's 1000-event batches: \
         idle p50 {:?} p99 {:?} statuses {idle_statuses:?}; meanwhile p50 {:?} p99 {:?} statuses {busy_statuses:?}",
        socks.len(),
        pct(&mut idle, 0.5),
        pct(&mut idle, 0.99),
        pct(&mut busy, 0.5),
        pct(&mut busy, 0.99),
    );
    drop(socks);
    r.stop().await;
}

async fn login_flood(rate_limited: bool) {
    let label = if rate_limited {
        "default login_rate_per_ip (10/s, burst 20)"
    } else {
        "login_rate_per_ip = 0 (hashing gate alone)"
    };
    let r = start(|c| {
        if !rate_limited {
            c.auth.login_rate_per_ip = 0;
        }
    })
    .await;
    // Warm: one health probe and one login so lazy allocations are done.
    let probe: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let _ = send(&probe, &r.base, "GET", "/health", &[], String::new()).await;
    let before = rss_mib();
    let (rss_stop, rss) = rss_sampler();
    let health_stop = Arc::new(AtomicBool::new(false));
    let health = tokio::spawn(probe_health(
        r.addr,
        Duration::from_millis(20),
        health_stop.clone(),
    ));

    let tcp = TcpStream::connect(r.addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .expect("h2");
    tokio::spawn(conn);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let mut sender = sender.clone();
        let uri = format!("{}/api/v1/auth/login", r.base);
        tasks.push(tokio::spawn(async move {
            let body = json!({"email": format!("nobody{i}@flood.io"), "password": "some-password"});
            let req = hyper::Request::post(uri)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("req");
            match sender.send_request(req).await {
                Ok(resp) => {
                    let st = resp.status().as_u16();
                    let _ = resp.into_body().collect().await;
                    st
                }
                Err(_) => 0,
            }
        }));
    }
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *by_status.entry(t.await.unwrap_or(0)).or_default() += 1;
    }
    let took = started.elapsed();
    health_stop.store(true, Ordering::Relaxed);
    let mut lat = health.await.unwrap_or_default();
    rss_stop.store(true, Ordering::Relaxed);
    let peak = rss.join().unwrap_or(0.0);
    println!(
        "login-flood [{label}]: 1000 logins over one h2 connection in {:.2}s, statuses {by_status:?}; \
         RSS {before:.0} -> peak {peak:.0} MiB (growth {:.0} MiB); /health n={} p50 {:?} p99 {:?} max {:?}",
        took.as_secs_f64(),
        peak - before,
        lat.len(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0),
    );
    r.stop().await;
}

/// A client whose connections come from 127.0.0.2: another address than
/// the attacker's 127.0.0.1, as a real user would be.
fn client_from_other_address() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_local_address(Some(std::net::IpAddr::from([127, 0, 0, 2])));
    Client::builder(TokioExecutor::new()).build(c)
}

async fn silent() {
    let r = start(|c| c.server.header_read_timeout = Duration::from_secs(5)).await;
    let client = client_from_other_address();
    let admin = admin_token(&r, &client).await;
    let (_, ingest_key, _) = tenant(&r, &client, &admin, "silentbench").await;
    // The silent clients live in a child process (this bench in its
    // `hold-silent` mode): with the server's ends, one process's descriptor
    // limit would not hold them all.
    let opened = Instant::now();
    let mut holder = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["hold-silent", &r.addr.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the silent-socket holder");
    let mut line = String::new();
    if let Some(out) = holder.stdout.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
    }
    println!(
        "silent: {} in {:.2}s",
        line.trim(),
        opened.elapsed().as_secs_f64()
    );
    // Probe /health and ingest for 8 s (past the 5 s header timeout).
    let mut health = Vec::new();
    let mut acks = Vec::new();
    let body = batch_body(100, 1);
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let t = Instant::now();
        let (st, _) = send(&client, &r.base, "GET", "/health", &[], String::new()).await;
        health.push(if st == 200 {
            t.elapsed()
        } else {
            Duration::from_secs(3600)
        });
        let t = Instant::now();
        let (st, _) = send(
            &client,
            &r.base,
            "POST",
            "/api/v1/ingestion/events/batch",
            &[
                ("x-api-key", &ingest_key),
                ("content-type", "application/json"),
            ],
            body.clone(),
        )
        .await;
        acks.push(if st < 300 {
            t.elapsed()
        } else {
            Duration::from_secs(3600)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed = r.state.conn_stats.header_timeouts.load(Ordering::Relaxed);
    let refused = r.state.conn_stats.per_ip_refused.load(Ordering::Relaxed);
    println!(
        "silent: /health n={} p50 {:?} p99 {:?} max {:?}; ingest(100 events) n={} p50 {:?} p99 {:?} max {:?}; \
         closed by header_read_timeout (5s): {closed}, refused by the per-address cap: {refused}, of {}",
        health.len(),
        pct(&mut health, 0.5),
        pct(&mut health, 0.99),
        pct(&mut health, 1.0),
        acks.len(),
        pct(&mut acks, 0.5),
        pct(&mut acks, 0.99),
        pct(&mut acks, 1.0),
        SILENT_SOCKETS + 100
    );
    // Closing its stdin ends the holder.
    drop(holder.stdin.take());
    let _ = holder.wait();
    r.stop().await;
}

/// The `hold-silent ADDR` mode: opens `SILENT_SOCKETS` silent connections
/// to ADDR from `SILENT_ADDRESSES` client addresses (1,000 each, under the
/// per-address cap) and 100 that send half an HTTP/2 preface, says how
/// many on stdout, then holds them until stdin closes.
async fn hold_silent(addr: std::net::SocketAddr) {
    let mut socks = Vec::with_capacity(SILENT_SOCKETS + 100);
    let mut failed = None;
    for i in 0..SILENT_SOCKETS {
        // 127.0.1.1 to 127.0.1.10.
        let host = 1 + (i % usize::from(SILENT_ADDRESSES)) as u8;
        let from = std::net::SocketAddr::from(([127, 0, 1, host], 0));
        let connect = async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(from)?;
            sock.connect(addr).await
        };
        match connect.await {
            Ok(s) => socks.push(s),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let silent = socks.len();
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s.write_all(b"PRI * HTTP/2.0\r\n").await;
            socks.push(s);
        }
    }
    println!(
        "{silent} silent sockets from {SILENT_ADDRESSES} addresses and {} half HTTP/2 prefaces open{}",
        socks.len() - silent,
        failed.map_or(String::new(), |e| format!(" (connect failed: {e})"))
    );
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    drop(socks);
}

async fn groupby() {
    let r = start(|_| {}).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let admin = admin_token(&r, &client).await;
    let (id, _, read_key) = tenant(&r, &client, &admin, "widebench").await;
    let t = TenantId::new(&id).expect("tenant");
    let now = Micros::now().0;
    let loading = Instant::now();
    for chunk in 0..100 {
        let events: Vec<Event> = (0..10_000)
            .map(|i| {
                let k = chunk * 10_000 + i;
                Event {
                    timestamp: Micros(now - (k as i64 % 3_000_000_000)),
                    received_at: Micros(now),
                    event_type: "api_call".into(),
                    service: Some(format!("svc-{}", k % 20)),
                    status_code: Some(200),
                    latency_ms: Some((k % 1000) as f64),
                    trace_id: Some(format!("trace-{k:08}")),
                    ..Event::default()
                }
            })
            .collect();
        r.state.store.append(&t, &events).expect("append");
    }
    println!(
        "groupby: 1,000,000 events with distinct trace ids stored in {:.1}s",
        loading.elapsed().as_secs_f64()
    );
    let aggs: Vec<Value> = (0..32)
        .map(|i| json!({"op": "p99", "field": "latency_ms", "as": format!("p{i}")}))
        .collect();
    let q = json!({"from": "now-1h", "to": "now", "group_by": ["trace_id"], "aggregations": aggs});
    let before = rss_mib();
    let (rss_stop, rss) = rss_sampler();
    let started = Instant::now();
    let (st, body) = send(
        &client,
        &r.base,
        "POST",
        "/api/v1/query",
        &[
            ("x-api-key", &read_key),
            ("content-type", "application/json"),
        ],
        q.to_string(),
    )
    .await;
    let took = started.elapsed();
    rss_stop.store(true, Ordering::Relaxed);
    let peak = rss.join().unwrap_or(0.0);
    let text = String::from_utf8_lossy(&body);
    println!(
        "groupby: status {st} in {:.3}s; RSS {before:.0} -> peak {peak:.0} MiB (growth {:.0} MiB); answer {}",
        took.as_secs_f64(),
        peak - before,
        &text[..text.len().min(240)]
    );
    r.stop().await;
}

async fn export_stall() {
    let r = start(|c| c.server.write_timeout = Duration::from_secs(5)).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let admin = admin_token(&r, &client).await;
    let (_, big_ingest, big_read) = tenant(&r, &client, &admin, "exporter").await;
    let (_, other_ingest, _) = tenant(&r, &client, &admin, "ingester").await;
    for s in 0..20 {
        send(
            &client,
            &r.base,
            "POST",
            "/api/v1/ingestion/events/batch",
            &[
                ("x-api-key", &big_ingest),
                ("content-type", "application/json"),
            ],
            batch_body(10_000, s),
        )
        .await;
    }
    let body = batch_body(1000, 7);
    let ack = |n: usize| timed_batches(&client, &r.base, &other_ingest, &body, n);
    let mut idle = ack(300).await.0;
    let head = format!(
        "GET /api/v1/export?format=ndjson&from=now-1h&to=now HTTP/1.1\r\nHost: x\r\nX-API-Key: {big_read}\r\n\r\n"
    );
    let mut socks = Vec::new();
    let refused = AtomicU64::new(0);
    for _ in 0..500 {
        if let Ok(mut s) = TcpStream::connect(r.addr).await {
            let _ = s.write_all(head.as_bytes()).await;
            socks.push(s);
        } else {
            refused.fetch_add(1, Ordering::Relaxed);
        }
    }
    let opened = Instant::now();
    let mut busy = ack(300).await.0;
    let started = Instant::now();
    let ack_window = started - opened;
    // Every export slot must come back within write_timeout (5 s) plus a
    // page's time, with the clients still connected and not reading.
    let mut released_at = None;
    let mut queue_empty_at = None;
    while started.elapsed() < Duration::from_secs(30) {
        if released_at.is_none() && r.state.read_gate.running() == 0 {
            released_at = Some(started.elapsed());
        }
        if queue_empty_at.is_none() && r.state.read_gate.admitted() == 0 {
            queue_empty_at = Some(started.elapsed());
        }
        if released_at.is_some() && queue_empty_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "export-stall: acks measured over {ack_window:?} after the exports opened; other tenant's 1000-event batch acks idle p50 {:?} p99 {:?}; with 500 stalled exports p50 {:?} p99 {:?}; \
         running exports' slots all released {:?} after the last ack measured (write_timeout 5s), queue empty after {:?}; \
         exports stalled {}, read refusals {}, write timeouts {}",
        pct(&mut idle, 0.5),
        pct(&mut idle, 0.99),
        pct(&mut busy, 0.5),
        pct(&mut busy, 0.99),
        released_at,
        queue_empty_at,
        r.state.read_stats.exports_stalled.load(Ordering::Relaxed),
        r.state.read_gate.refused(),
        r.state.conn_stats.write_timeouts.load(Ordering::Relaxed),
    );
    drop(socks);
    r.stop().await;
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if args.first().map(String::as_str) == Some("hold-silent") {
            if let Some(addr) = args.get(1).and_then(|a| a.parse().ok()) {
                hold_silent(addr).await;
            }
            return;
        }
        if want("login-flood") {
            login_flood(true).await;
        }
        if want("login-flood-gate") {
            login_flood(false).await;
        }
        if want("silent") {
            silent().await;
        }
        if want("groupby") {
            groupby().await;
        }
        if want("export-stall") {
            export_stall().await;
        }
        if want("stalled-uploads") {
            stalled_uploads().await;
        }
    });
}
