//! The live dashboard under load, in one process (server and clients share
//! the 2 cores, so every figure is pessimistic for the server):
//!
//! 1. ack -> event visible to a subscribed client: one event at a time,
//!    `LATENCY_SAMPLES` times; p50/p99/max.
//! 2. batch ingest throughput (1,000-event batches for `THROUGHPUT_SECS`
//!    each) with no subscriber and with `$PULSESTREAM_BENCH_SUBSCRIBERS`
//!    (default 1,000) subscribed to events + metrics and reading,
//!    alternating `ROUNDS` times in the same run, so the ratio is not a
//!    comparison of two moments of a shared machine.
//! 3. resident memory (VmRSS of this process: server and all clients)
//!    before and after the subscribers connected. The server's own memory
//!    with 10,000 dashboards is `benches/live_dashboards.rs`.
//!
//! Targets (issue 10): p99 <= 1 s; throughput with 1,000 subscribers >= 90 %
//! of none.
//! Run: `cargo bench --bench live_ws` (about a minute).

mod live_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use live_support::{Http, call, events, pct, rss_mib};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const LATENCY_SAMPLES: usize = 200;
const THROUGHPUT_SECS: u64 = 5;
/// Alternations of "none" and "with subscribers".
const ROUNDS: usize = 3;
const BATCH: usize = 1000;
/// Concurrent ingest requests (two cores: two in flight keep them busy).
const INGEST_CONCURRENCY: usize = 2;

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
        config.server.max_connections_per_ip = 20_000;
        config.storage.data_dir = dir.path().to_owned();
        config.auth.admin_password = Some(live_support::ADMIN_PASSWORD.into());
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
        let c = live_support::http();
        let (key, token) = live_support::bench_tenant(&c, &base).await;
        let ws_url = format!("ws://{addr}/api/v1/dashboard/ws?token={token}");

        // 1. ack -> visible.
        let probe_filter = json!({"service": live_support::PROBE_SERVICE});
        let mut ws = live_support::dashboard(&ws_url, json!(["events"]), probe_filter).await;
        let delays = live_support::ack_to_visible(&c, &base, &key, &mut ws, LATENCY_SAMPLES).await;
        println!("ack -> visible ({LATENCY_SAMPLES} events): p50 {:?}  p99 {:?}  max {:?}",
            pct(&delays, 0.5), pct(&delays, 0.99), delays[delays.len() - 1]);
        drop(ws);

        // 2. and 3. Each round: without subscribers, then with them
        // (connected for the round, disconnected after it).
        let received = Arc::new(AtomicU64::new(0));
        let mut nones = Vec::new();
        let mut withs = Vec::new();
        let mut rss = (0.0, 0.0);
        for round in 0..ROUNDS {
            let none = throughput(&c, &base, &key).await;
            println!("round {round}: batch ingest, no subscribers: {none:.0} events/s");
            nones.push(none);

            let before = rss_mib("self").0;
            let t0 = Instant::now();
            let stop = Arc::new(AtomicBool::new(false));
            let mut readers = Vec::new();
            for _ in 0..subscribers {
                let mut ws = live_support::dashboard(&ws_url, json!(["events", "metrics"]), json!({})).await;
                let received = received.clone();
                let stop = stop.clone();
                readers.push(tokio::spawn(async move {
                    while let Some(Ok(m)) = ws.next().await {
                        if let Message::Text(_) = m {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = rss_mib("self").0;
            rss = (before, after);
            let connected = t0.elapsed();
            let with = throughput(&c, &base, &key).await;
            println!("round {round}: batch ingest, {subscribers} subscribers: {with:.0} events/s \
                      ({:.0} % of this round's none); connected in {connected:?}",
                100.0 * with / none);
            withs.push(with);
            stop.store(true, Ordering::Relaxed);
            for r in readers {
                r.abort();
            }
            // Let the server see the closes before the next "none" round.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (none, with) = (median(nones), median(withs));
        println!("median of {ROUNDS}: none {none:.0} events/s, with {subscribers} subscribers \
                  {with:.0} events/s: {:.0} %; {} messages received",
            100.0 * with / none, received.load(Ordering::Relaxed));
        println!("RSS {:.0} -> {:.0} MiB with the subscribers (server + clients: {:.1} KiB per dashboard)",
            rss.0, rss.1, (rss.1 - rss.0) * 1024.0 / subscribers as f64);
        let _ = stop_tx.send(());
        let _ = task.await;
    });
}
