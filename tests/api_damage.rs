//! Damage seen from outside (contract §11): after a byte of a sealed
//! segment is flipped, search, statistics, query and export answer 200 with
//! what is sound, `"partial": true` and `damaged_data` warnings; `/health`
//! is degraded and lists the damage; `/metrics` counts it. A missing catalog
//! stops the server from starting, and names the remedy.

mod common;

use std::path::{Path, PathBuf};

use common::{TestServer, TestTenant, ago};
use serde_json::{Value, json};

/// 2000 events over the last 30 minutes.
fn events() -> Vec<Value> {
    (0..2000)
        .map(|i| {
            json!({
                "timestamp": ago(1800 - i as i64 * 3 / 4),
                "event_type": "api_call",
                "service": "checkout",
                "status_code": if i % 10 == 0 { 503 } else { 200 },
                "latency_ms": i as f64,
            })
        })
        .collect()
}

async fn ingest(s: &TestServer, t: &TestTenant) {
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events/batch",
            &[
                ("authorization", &format!("Bearer {}", t.ingest_key)),
                ("content-type", "application/json"),
            ],
            json!({ "events": events() }).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accepted"], 2000);
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("tenants")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).expect("read");
    b[at as usize] ^= 0x5a;
    std::fs::write(path, b).expect("write");
}

async fn get(s: &TestServer, t: &TestTenant, path: &str) -> common::Resp {
    s.req(
        "GET",
        path,
        &[("authorization", &format!("Bearer {}", t.read_key))],
        "",
    )
    .await
}

fn assert_partial(v: &Value) {
    assert_eq!(v["partial"], json!(true), "{v}");
    let w = v["warnings"].as_array().expect("warnings");
    assert!(!w.is_empty());
    assert_eq!(w[0]["code"], "damaged_data");
    assert!(w[0]["message"].is_string());
    assert!(
        w[0]["segment"]
            .as_str()
            .is_some_and(|s| s.ends_with(".seg")),
        "{v}"
    );
}

/// A tenant with its 2000 events sealed, the server stopped, one byte of
/// the first segment flipped at `at(len)`, the server started again.
async fn damaged(at: impl Fn(u64) -> u64) -> (tempfile::TempDir, TestServer, TestTenant) {
    let s = TestServer::start().await;
    let t = s.tenant("damaged").await;
    ingest(&s, &t).await;
    let dir = s.stop().await.expect("owned dir");
    let files = segment_files(dir.path());
    assert!(!files.is_empty());
    // The newest partition's segment: the events may straddle an hour, and
    // a search for the newest events must meet the damage.
    let newest = files.last().expect("a segment");
    let len = std::fs::metadata(newest).expect("meta").len();
    flip(newest, at(len));
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    (dir, s, t)
}

#[tokio::test]
async fn a_damaged_block_makes_answers_partial_never_500() {
    // Byte 18: inside the first column chunk (block 0's timestamps).
    let (_dir, s, t) = damaged(|_| 18).await;
    let range = "from=now-1h&to=now";

    let r = get(
        &s,
        &t,
        &format!("/api/v1/ingestion/events/search?{range}&limit=1000"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_partial(&v);

    let r = get(
        &s,
        &t,
        &format!("/api/v1/ingestion/events/statistics?{range}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_partial(&v);
    assert!(v["total"].as_u64().expect("total") < 2000, "{v}");

    let r = s
        .req(
            "POST",
            "/api/v1/query",
            &[
                ("authorization", &format!("Bearer {}", t.read_key)),
                ("content-type", "application/json"),
            ],
            json!({"from": "now-1h", "to": "now",
                   "aggregations": [{"op": "count", "as": "n"}]})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_partial(&r.json());

    let r = get(&s, &t, &format!("/api/v1/export?format=ndjson&{range}")).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    assert_eq!(last["warnings"][0]["code"], "damaged_data", "{last}");
    let r = get(&s, &t, &format!("/api/v1/export?format=csv&{range}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-pulsestream-partial").as_deref(), Some("true"));

    let r = s.req("GET", "/health", &[], "").await;
    let v = r.json();
    assert_eq!(v["status"], "degraded", "{v}");
    let d = v["damage"].as_array().expect("damage list");
    assert_eq!(d[0]["kind"], "segment");
    assert!(d[0]["path"].as_str().is_some_and(|p| p.ends_with(".seg")));
    assert!(d[0]["detail"].is_string() && d[0]["since"].is_string());

    let r = s.req("GET", "/metrics", &[], "").await;
    assert!(
        r.text()
            .contains("pulsestream_damaged_items{kind=\"segment\"} 1"),
        "{}",
        r.text()
    );
    s.stop().await;
}

#[tokio::test]
async fn a_damaged_footer_is_not_a_silent_zero() {
    let (_dir, s, t) = damaged(|len| len - 40).await;
    let r = get(
        &s,
        &t,
        "/api/v1/ingestion/events/statistics?from=now-1h&to=now",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_partial(&v);
    assert!(v["warnings"][0]["from"].is_string(), "{v}");
    let h = s.req("GET", "/health", &[], "").await.json();
    assert_eq!(h["status"], "degraded");
    s.stop().await;
}

#[tokio::test]
async fn a_healthy_store_answers_complete_and_ok() {
    let s = TestServer::start().await;
    let t = s.tenant("healthy").await;
    ingest(&s, &t).await;
    let r = get(
        &s,
        &t,
        "/api/v1/ingestion/events/statistics?from=now-1h&to=now",
    )
    .await;
    let v = r.json();
    assert_eq!(v["total"], 2000);
    assert!(v.get("partial").is_none(), "{v}");
    let h = s.req("GET", "/health", &[], "").await.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["damage"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn a_missing_catalog_stops_the_start_and_names_the_remedy() {
    let s = TestServer::start().await;
    let t = s.tenant("t").await;
    ingest(&s, &t).await;
    let dir = s.stop().await.expect("owned dir");
    let before = segment_files(dir.path());
    std::fs::remove_file(dir.path().join("catalog.redb")).expect("remove");
    let config = common::test_config(dir.path());
    let err = match pulsestream::app::AppState::open(config) {
        Ok(_) => panic!("started without a catalog"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("--rebuild-catalog"), "{err}");
    assert_eq!(segment_files(dir.path()), before, "nothing deleted");
}
