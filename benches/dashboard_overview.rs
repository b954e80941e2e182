//! `GET /api/v1/dashboard/overview?window=24h` for the largest tenant of a
//! many-tenant server, over real HTTP against a `pulsestream serve` child:
//!
//! 1. `pulsestream loadgen --tenants 50 --backfill 24h` fills the server for
//!    `$PULSESTREAM_BENCH_FILL_SECS` (default 30) seconds; its busiest
//!    tenant (about a quarter of the events) is the one measured.
//! 2. `RUNS` runs of `REQUESTS` sequential overview requests: p50 and p99
//!    of each run, and the median of the runs.
//! 3. The same while the load generator keeps ingesting live events at
//!    `BACKGROUND_RATE` events/s for every tenant (active segments grow).
//!
//! Target (issue 10): p99 <= 50 ms.
//! Run: `cargo bench --bench dashboard_overview` (about two minutes).

mod live_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use live_support::{ADMIN_PASSWORD, Http, call, pct};
use serde_json::json;

const RUNS: usize = 3;
const REQUESTS: usize = 100;
const BACKGROUND_RATE: u64 = 20_000;
/// The load generator's owner password and email form (`loadgen_tenants`).
const OWNER_PASSWORD: &str = "loadgen-owner-password";

fn loadgen(addr: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulsestream"));
    c.args(["loadgen", "--url", &format!("http://{addr}")])
        .args(args)
        .env("PULSESTREAM_ADMIN_PASSWORD", ADMIN_PASSWORD);
    c
}

async fn overview(c: &Http, base: &str, auth: &str) -> Duration {
    let req = hyper::Request::get(format!("{base}/api/v1/dashboard/overview?window=24h"))
        .header("authorization", auth)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let t0 = Instant::now();
    let resp = c.request(req).await.expect("send");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let took = t0.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    took
}

/// `RUNS` runs of `REQUESTS`: (p50, p99) per run, then the medians.
async fn measure(c: &Http, base: &str, auth: &str, label: &str) {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for run in 0..RUNS {
        let mut d = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            d.push(overview(c, base, auth).await);
        }
        d.sort();
        println!(
            "{label} run {run}: p50 {:?}  p99 {:?}  max {:?}",
            pct(&d, 0.5),
            pct(&d, 0.99),
            d[d.len() - 1]
        );
        p50s.push(pct(&d, 0.5));
        p99s.push(pct(&d, 0.99));
    }
    p50s.sort();
    p99s.sort();
    println!(
        "{label}: median of {RUNS} runs: p50 {:?}  p99 {:?}",
        p50s[RUNS / 2],
        p99s[RUNS / 2]
    );
}

fn main() {
    let fill_secs: u64 = std::env::var("PULSESTREAM_BENCH_FILL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, addr) = live_support::start_server(dir.path(), 4096);

    // 1. Fill: the tenants are created here so their keys can be reused.
    let fill = loadgen(
        &addr,
        &[
            "--tenants",
            "50",
            "--backfill",
            "24h",
            "--duration",
            &fill_secs.to_string(),
            "--batch",
            "1000",
            "--concurrency",
            "4",
        ],
    )
    .stderr(Stdio::piped())
    .output()
    .expect("loadgen");
    let stderr = String::from_utf8_lossy(&fill.stderr);
    assert!(fill.status.success(), "loadgen failed: {stderr}");
    println!("fill: {}", String::from_utf8_lossy(&fill.stdout).trim());
    // "created 50 tenants loadgen-<secs>-0000 .."
    let busiest = stderr
        .split_whitespace()
        .find(|w| w.starts_with("loadgen-") && w.ends_with("-0000"))
        .expect("tenant names in the loadgen output")
        .to_owned();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let base = format!("http://{addr}");
        let c = live_support::http();
        let login = call(
            &c,
            format!("{base}/api/v1/auth/login"),
            ("x-none", "1"),
            json!({"email": format!("owner@{busiest}.loadgen"), "password": OWNER_PASSWORD})
                .to_string(),
        )
        .await;
        let auth = format!(
            "Bearer {}",
            login["access_token"].as_str().expect("owner token")
        );
        let req = hyper::Request::get(format!("{base}/api/v1/dashboard/overview?window=24h"))
            .header("authorization", &auth)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let body = c
            .request(req)
            .await
            .expect("send")
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        println!(
            "busiest tenant {busiest}: {} events in 24 h, {} stored in all",
            v["totals"]["events"], v["health"]["storage"]["events"]
        );
        for _ in 0..5 {
            overview(&c, &base, &auth).await;
        }
        measure(&c, &base, &auth, "overview 24h, quiet").await;

        // 3. With live ingest for the measured tenant (its active segment
        // grows) through a new key of its own.
        let key = call(
            &c,
            format!("{base}/api/v1/auth/api-keys"),
            ("authorization", &auth),
            json!({"name": "bench-background", "scopes": ["ingest"]}).to_string(),
        )
        .await;
        let key = key["key"].as_str().expect("ingest key").to_owned();
        let mut background = loadgen(
            &addr,
            &[
                "--api-key",
                &key,
                "--rate",
                &BACKGROUND_RATE.to_string(),
                "--duration",
                "600",
                "--batch",
                "200",
                "--concurrency",
                "4",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("background loadgen");
        tokio::time::sleep(Duration::from_secs(3)).await;
        measure(
            &c,
            &base,
            &auth,
            &format!("overview 24h, {BACKGROUND_RATE} events/s ingested meanwhile"),
        )
        .await;
        let _ = background.kill();
        let _ = background.wait();
    });
    drop(server);
}
