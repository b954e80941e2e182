//! The live dashboard under load, in one process (server and clients share
//! the 2 cores, so every figure is pessimistic for the server):
//!
//! 1. ack -> event visible to a subscribed client: one event at a time,
//!    `LATENCY_SAMPLES` times; p50/p99/max.
//! 2. batch ingest throughput (1,000-event batches for `THROUGHPUT_SECS`
//!    each) with no subscriber and with `$PULSESTREAM_BENCH_SUBSCRIBERS`
//!    (default 1,000) subscribed to events + metrics and reading,
//!    alternating `ROUNDS` times in the same run (the clients stay
//!    connected and subscribe and unsubscribe), so each ratio compares two
//!    neighbouring moments of a shared machine; the median ratio is the
//!    result.
//! 3. resident memory (VmRSS of this process: server and all clients)
//!    before and after the subscribers connected. The server's own memory
//!    with 10,000 dashboards is `benches/live_dashboards.rs`.
//!
//! Targets (issue 10): p99 <= 1 s; throughput with 1,000 subscribers >= 90 %
//! of none.
//! Run: `cargo bench --bench live_ws` (about a minute).

mod live_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use live_support::{Http, call, events, pct, rss_mib};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const LATENCY_SAMPLES: usize = 200;
const THROUGHPUT_SECS: u64 = 3;
/// Alternations of "none" and "with subscribers".
const ROUNDS: usize = 8;
const BATCH: usize = 1000;
/// Concurrent ingest requests (two cores: two in flight keep them busy).
const INGEST_CONCURRENCY: usize = 2;

// The server's allocator, so the server half of this process allocates as
// `pulsestream serve` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn throughput(c: &Http, base: &str, key: &str) -> f64 {
    let end = Instant::now() + Duration::from_secs(THROUGHPUT_SECS);
    // One body, sent again and again: building it is client work that
    // would otherwise take the cores from the server being measured.
    let body = events(BATCH, "load");
    let mut tasks = Vec::new();
    for _ in 0..INGEST_CONCURRENCY {
        let c = c.clone();
        let url = format!("{base}/api/v1/ingestion/events/batch");
        let key = key.to_owned();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let v = call(&c, url.clone(), ("x-api-key", &key), body.clone()).await;
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

/// The median (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n.is_multiple_of(2) {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
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

        // 2. and 3. The subscribers connect once (each a reader task and a
        // sink to (un)subscribe with); each round measures without, then
        // with their subscriptions.
        let received = Arc::new(AtomicU64::new(0));
        let before = rss_mib("self").0;
        let t0 = Instant::now();
        let mut sinks = Vec::with_capacity(subscribers);
        let mut readers = Vec::with_capacity(subscribers);
        for _ in 0..subscribers {
            let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("ws");
            let (sink, mut stream) = ws.split();
            sinks.push(sink);
            let received = received.clone();
            readers.push(tokio::spawn(async move {
                while let Some(Ok(m)) = stream.next().await {
                    if let Message::Text(_) = m {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        println!("{subscribers} clients connected in {:?}", t0.elapsed());
        let subscribe = json!({"type": "subscribe", "channels": ["events", "metrics"]}).to_string();
        let unsubscribe = json!({"type": "unsubscribe", "channels": ["events", "metrics"]}).to_string();
        let mut ratios = Vec::new();
        let mut nones = Vec::new();
        let mut withs = Vec::new();
        let mut after = 0.0;
        for round in 0..ROUNDS {
            let none = throughput(&c, &base, &key).await;
            for s in &mut sinks {
                s.send(Message::text(subscribe.clone())).await.expect("subscribe");
            }
            // The server has the subscriptions once it answered them.
            tokio::time::sleep(Duration::from_millis(500)).await;
            after = rss_mib("self").0;
            let with = throughput(&c, &base, &key).await;
            for s in &mut sinks {
                s.send(Message::text(unsubscribe.clone())).await.expect("unsubscribe");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            println!("round {round}: none {none:.0} events/s, {subscribers} subscribers {with:.0} events/s: {:.0} %",
                100.0 * with / none);
            ratios.push(with / none);
            nones.push(none);
            withs.push(with);
        }
        println!("median of {ROUNDS} rounds: ratio {:.0} % (none {:.0} events/s, with {:.0} events/s); {} messages received",
            100.0 * median(ratios), median(nones), median(withs), received.load(Ordering::Relaxed));
        println!("RSS {before:.0} -> {after:.0} MiB with the subscribers (server + clients)");
        for r in readers {
            r.abort();
        }
        let _ = stop_tx.send(());
        let _ = task.await;
    });
}
