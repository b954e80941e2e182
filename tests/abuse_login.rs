//! Logins under abuse, over real sockets: concurrent wrong passwords meet
//! the lockout exactly, oversized credentials are refused before hashing
//! or auditing, one address is rate limited, a flood of unknown emails
//! over one HTTP/2 connection keeps memory and `/health` bounded, repeated
//! failures are folded in the audit log, and a lockout is cleared offline.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{OWNER_PASSWORD, TestServer, assert_error, owner_email};
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_get_exactly_threshold_401s_then_423() {
    let s = TestServer::start().await;
    s.create_tenant("Guess").await;
    let email = owner_email("Guess");
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let addr = s.addr;
        let body = json!({"email": email, "password": "wrong-password-x"}).to_string();
        tasks.push(tokio::spawn(async move {
            common::request(
                addr,
                "POST",
                "/api/v1/auth/login",
                &[("content-type", "application/json")],
                Bytes::from(body),
            )
            .await
        }));
    }
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        let r = t.await.expect("join");
        *by_status.entry(r.status).or_default() += 1;
    }
    let threshold = s.state().config.auth.lockout_threshold as usize;
    assert_eq!(by_status.get(&401), Some(&threshold), "{by_status:?}");
    assert_eq!(
        by_status.get(&423),
        Some(&(30 - threshold)),
        "{by_status:?}"
    );
    // The right password is locked out too.
    let (st, b) = s.login(&email, OWNER_PASSWORD).await;
    assert_error(st, &b, 423, "locked");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_credentials_are_400_before_hashing_or_auditing() {
    let s = TestServer::start().await;
    let long_email = format!("{}@x.io", "a".repeat(10_000));
    let (st, b) = s.login(&long_email, "some-password-1").await;
    assert_error(st, &b, 400, "validation_failed");
    let long_password = "p".repeat(1025);
    let (st, b) = s.login("someone@x.io", &long_password).await;
    assert_error(st, &b, 400, "validation_failed");
    // Exactly at the limits is an ordinary failed login.
    let email_254 = format!("{}@x.io", "a".repeat(254 - 5));
    let (st, b) = s.login(&email_254, &"p".repeat(1024)).await;
    assert_error(st, &b, 401, "unauthorized");
    let admin = s.admin_login().await;
    let (_, _, v) = s.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    let entries = v["entries"].as_array().expect("entries");
    assert!(
        !entries
            .iter()
            .any(|e| e["actor"].as_str().is_some_and(|a| a.len() > 254)),
        "an oversized email reached the audit log"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "login_failed")
            .count(),
        1,
        "{v}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_rate_limited_with_retry_after() {
    let s = TestServer::start_with(|c| {
        c.auth.login_rate_per_ip = 1;
        c.auth.login_burst_per_ip = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let r = s
            .req(
                "POST",
                "/api/v1/auth/login",
                &[("content-type", "application/json")],
                json!({"email": "nobody@x.io", "password": "whatever-pass"}).to_string(),
            )
            .await;
        if r.status == 429 {
            assert_eq!(r.code(), "rate_limited");
            retry_after = r.header("retry-after");
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..3], [401, 401, 401], "{statuses:?}");
    assert_eq!(statuses[3], 429, "{statuses:?}");
    let secs: u64 = retry_after.expect("Retry-After").parse().expect("secs");
    assert!(secs >= 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_for_one_unknown_email_fold_into_one_entry() {
    let s = TestServer::start_with(|c| c.auth.login_rate_per_ip = 0).await;
    for _ in 0..12 {
        let (st, _) = s.login("ghost@x.io", "not-the-password").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let admin = s.admin_login().await;
    let (_, _, v) = s.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    let ghost: Vec<_> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"] == "ghost@x.io")
        .collect();
    assert_eq!(ghost.len(), 1, "{v}");
    assert_eq!(ghost[0]["detail"]["count"], 12, "{v}");
    s.stop().await;
}

/// Resident set size of this process (the server runs in it), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_over_http2_keeps_memory_and_health_bounded() {
    // The production argon2 cost (19 MiB per hash): unbounded, 256 at once
    // would take gigabytes.
    let s = TestServer::start_with(|c| {
        c.auth.argon2_memory_kib = 19 * 1024;
        c.auth.argon2_iterations = 2;
        c.auth.max_concurrent_hashes = 2;
    })
    .await;
    let before = rss_bytes();
    let tcp = TcpStream::connect(s.addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let base = s.base.clone();
    let mut tasks = Vec::new();
    for i in 0..256 {
        let mut sender = sender.clone();
        let uri = format!("{base}/api/v1/auth/login");
        tasks.push(tokio::spawn(async move {
            let body = json!({"email": format!("flood{i}@x.io"), "password": "whatever-pass"});
            let req = hyper::Request::post(uri)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("request");
            match sender.send_request(req).await {
                Ok(r) => {
                    let st = r.status().as_u16();
                    let _ = r.into_body().collect().await;
                    st
                }
                Err(_) => 0,
            }
        }));
    }
    // /health on its own connection while the flood runs.
    let mut worst = Duration::ZERO;
    let mut peak = before;
    for _ in 0..20 {
        let t = Instant::now();
        let r = s.req("GET", "/health", &[], Bytes::new()).await;
        assert_eq!(r.status, 200);
        worst = worst.max(t.elapsed());
        peak = peak.max(rss_bytes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *counts.entry(t.await.expect("join")).or_default() += 1;
        peak = peak.max(rss_bytes());
    }
    assert!(counts.get(&429).copied().unwrap_or(0) > 0, "{counts:?}");
    assert!(counts.get(&401).copied().unwrap_or(0) > 0, "{counts:?}");
    assert_eq!(counts.get(&0), None, "transport errors: {counts:?}");
    let growth = peak.saturating_sub(before);
    // Two hashes at 19 MiB plus buffers; unbounded it was over 1 GiB.
    assert!(growth < 256 << 20, "RSS grew by {} MiB", growth >> 20);
    // Loose: the machine is shared; unbounded, /health took 2.5 s at 256.
    assert!(worst < Duration::from_secs(5), "/health took {worst:?}");
    eprintln!(
        "login flood: {counts:?}, RSS growth {} MiB, worst /health {worst:?}",
        growth >> 20
    );
    s.stop().await;
}

fn cli(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pulsestream"))
        .env("PULSESTREAM_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env_remove("RUST_LOG")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run pulsestream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_admin_is_unlocked_and_reset_offline() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        let (st, _) = s.login(common::ADMIN_EMAIL, "wrong-password-x").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, b) = s.login(common::ADMIN_EMAIL, common::ADMIN_PASSWORD).await;
    assert_error(st, &b, 423, "locked");
    // Online the command refuses: it would race the server's own writes.
    let dir = s.data_dir().to_owned();
    let out = cli(&["user", "unlock", "--email", common::ADMIN_EMAIL], &dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline"));
    let keep = s.stop().await;

    let out = cli(&["user", "unlock", "--email", common::ADMIN_EMAIL], &dir);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("unlocked"));
    let s = TestServer::start_in(&dir, |_| {}).await;
    let (st, v) = s.login(common::ADMIN_EMAIL, common::ADMIN_PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.stop().await;

    let out = cli(
        &["user", "reset-password", "--email", common::ADMIN_EMAIL],
        &dir,
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let new_password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("printed password")
        .trim()
        .to_owned();
    let s = TestServer::start_in(&dir, |_| {}).await;
    let (st, _) = s.login(common::ADMIN_EMAIL, common::ADMIN_PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s.login(common::ADMIN_EMAIL, &new_password).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.stop().await;
    drop(keep);
}
