//! Many concurrent dashboards against a real server process: the server's
//! own resident memory (VmRSS / VmHWM of the `pulsestream serve` child,
//! clients excluded) with `$PULSESTREAM_BENCH_DASHBOARDS` (default 10,000)
//! WebSocket clients subscribed to events + metrics while traffic flows,
//! and the ack -> visible delay of one more client meanwhile.
//!
//! The server runs with the connection caps raised (`server.max_connections`,
//! `server.max_connections_per_ip`, `live.*`) in a generated config file;
//! every client comes from 127.0.0.1. Each side holds one descriptor per
//! connection, so `ulimit -n` must exceed the dashboard count.
//!
//! Target (issue 10): 10,000 dashboards, server RSS <= 1 GiB.
//! Run: `cargo bench --bench live_dashboards` (about a minute).

mod live_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use live_support::{call, events, pct, rss_mib};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Connections opened at once while connecting the dashboards.
const CONNECT_CONCURRENCY: usize = 64;
/// Background traffic while the dashboards are connected: a batch every
/// `TRAFFIC_EVERY`, `$PULSESTREAM_BENCH_RATE` events/s in all (default
/// 1,000: every flush has events for every dashboard, more than the
/// per-flush cap pushes).
const TRAFFIC_EVERY: Duration = Duration::from_millis(250);
/// How long the traffic runs with all dashboards connected.
const LOADED_SECS: u64 = 15;
const LATENCY_SAMPLES: usize = 50;

fn main() {
    let dashboards: usize = std::env::var("PULSESTREAM_BENCH_DASHBOARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rate: usize = std::env::var("PULSESTREAM_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let batch = (rate * TRAFFIC_EVERY.as_millis() as usize / 1000).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, addr) = live_support::start_server(dir.path(), dashboards + 1_000);
    let pid = server.0.id().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let base = format!("http://{addr}");
        let c = live_support::http();
        let (key, token) = live_support::bench_tenant(&c, &base).await;
        let ws_url = format!("ws://{addr}/api/v1/dashboard/ws?token={token}");
        let idle = rss_mib(&pid).0;

        let received = Arc::new(AtomicU64::new(0));
        let with_events = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut readers = Vec::with_capacity(dashboards);
        let mut connected = 0;
        while connected < dashboards {
            let n = CONNECT_CONCURRENCY.min(dashboards - connected);
            let opening: Vec<_> = (0..n)
                .map(|_| {
                    let url = ws_url.clone();
                    tokio::spawn(async move {
                        live_support::dashboard(&url, json!(["events", "metrics"]), json!({})).await
                    })
                })
                .collect();
            for o in opening {
                let mut ws = o.await.expect("connect");
                let received = received.clone();
                let with_events = with_events.clone();
                readers.push(tokio::spawn(async move {
                    let mut got_events = false;
                    while let Some(Ok(m)) = ws.next().await {
                        if let Message::Text(t) = m {
                            received.fetch_add(1, Ordering::Relaxed);
                            if !got_events && t.as_str().starts_with("{\"type\":\"events\"") {
                                got_events = true;
                                with_events.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            connected += n;
        }
        let connect_time = t0.elapsed();
        let (after_connect, _) = rss_mib(&pid);
        println!(
            "{dashboards} dashboards connected and subscribed in {connect_time:?}; \
             server RSS {idle:.0} MiB idle -> {after_connect:.0} MiB"
        );

        // Traffic for every dashboard, and one probe client timing it.
        let traffic = {
            let c = c.clone();
            let url = format!("{base}/api/v1/ingestion/events/batch");
            let key = key.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(TRAFFIC_EVERY);
                loop {
                    tick.tick().await;
                    let v: Value =
                        call(&c, url.clone(), ("x-api-key", &key), events(batch, "bg")).await;
                    assert_eq!(v["accepted"], batch, "{v}");
                }
            })
        };
        let probe_filter = json!({"service": live_support::PROBE_SERVICE});
        let mut probe = live_support::dashboard(&ws_url, json!(["events"]), probe_filter).await;
        let sampler = {
            let pid = pid.clone();
            tokio::spawn(async move {
                let mut peak = 0.0f64;
                let end = Instant::now() + Duration::from_secs(LOADED_SECS);
                while Instant::now() < end {
                    peak = peak.max(rss_mib(&pid).0);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                peak
            })
        };
        let delays =
            live_support::ack_to_visible(&c, &base, &key, &mut probe, LATENCY_SAMPLES).await;
        let peak = sampler.await.expect("sampler");
        traffic.abort();
        let (rss, hwm) = rss_mib(&pid);
        println!(
            "with traffic ({rate} events/s) for {LOADED_SECS} s: server RSS peak {peak:.0} MiB \
             (now {rss:.0}, high-water {hwm:.0}); {:.1} KiB per dashboard over idle",
            (peak - idle) * 1024.0 / dashboards as f64
        );
        println!(
            "{} of {dashboards} dashboards received events; {} messages in all",
            with_events.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed)
        );
        println!(
            "ack -> visible with {dashboards} dashboards ({LATENCY_SAMPLES} events): \
             p50 {:?}  p99 {:?}  max {:?}",
            pct(&delays, 0.5),
            pct(&delays, 0.99),
            delays[delays.len() - 1]
        );
        for r in readers {
            r.abort();
        }
    });
    drop(server);
}
