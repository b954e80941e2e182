//! Reads under abuse, over real sockets: a high-cardinality group-by is
//! refused by the memory budget, a query past its deadline has its work
//! stopped (asserted on a counter), `count_distinct` past the exact
//! threshold stays within 2 %, statistics stay valid with many services,
//! and an export whose client never reads gives back its thread.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestServer, TestTenant, ago};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// `n` events over the last 50 minutes, each with its own trace id, user
/// id and (when `services` > 0) one of `services` services.
fn distinct_events(n: usize, offset: usize, services: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let k = i + offset;
            json!({
                "timestamp": ago(3000 - (k % 3000) as i64),
                "event_type": "api_call",
                "service": format!("svc-{}", if services > 0 { k % services } else { 0 }),
                "endpoint": "/api/v1/items",
                "method": "GET",
                "status_code": 200,
                "latency_ms": (k % 1000) as f64,
                "user_id": format!("user-{k}"),
                "trace_id": format!("trace-{k:08}"),
                "message": "x".repeat(200),
            })
        })
        .collect()
}

async fn post_query(s: &TestServer, t: &TestTenant, q: Value) -> common::Resp {
    s.req(
        "POST",
        "/api/v1/query",
        &[
            ("x-api-key", &t.read_key),
            ("content-type", "application/json"),
        ],
        q.to_string(),
    )
    .await
}

/// 32 percentile aggregations, as in the group-by.
fn p99s() -> Vec<Value> {
    (0..32)
        .map(|i| json!({"op": "p99", "field": "latency_ms", "as": format!("p{i}")}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_cardinality_group_by_is_refused_by_the_memory_budget() {
    let s = TestServer::start_with(|c| c.limits.query_memory_bytes = 4 << 20).await;
    let t = s.tenant("Wide").await;
    for part in 0..2 {
        s.post_batch(&t, distinct_events(10_000, part * 10_000, 0))
            .await;
    }
    let r = post_query(
        &s,
        &t,
        json!({"from": "now-1h", "to": "now", "group_by": ["trace_id"], "aggregations": p99s()}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "query_too_large");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("query_memory_bytes")
    );
    // count_distinct past the exact threshold: within the contract's 2 %.
    let r = post_query(
        &s,
        &t,
        json!({"from": "now-1h", "to": "now",
               "aggregations": [{"op": "count_distinct", "field": "user_id", "as": "users"},
                                {"op": "count", "as": "n"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let users = v["rows"][0][0].as_f64().expect("users");
    assert_eq!(v["rows"][0][1], 20_000);
    assert!(
        (users - 20_000.0).abs() / 20_000.0 < 0.02,
        "count_distinct {users} for 20000"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_deadline_stops_its_work() {
    let s = TestServer::start_with(|c| c.limits.query_timeout = Duration::from_millis(1)).await;
    let t = s.tenant("Late").await;
    s.post_batch(&t, distinct_events(5_000, 0, 0)).await;
    let stats = s.state().read_stats.clone();
    assert_eq!(stats.cancelled.load(Ordering::Relaxed), 0);
    let r = post_query(
        &s,
        &t,
        json!({"from": "now-1h", "to": "now", "group_by": ["trace_id"], "aggregations": p99s()}),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code(), "query_timeout");
    assert!(r.header("retry-after").is_some());
    // The engine itself saw the deadline and stopped: the counter is only
    // raised by a worker that gave up its work.
    let mut stopped = false;
    for _ in 0..200 {
        if stats.cancelled.load(Ordering::Relaxed) == 1
            && stats.running.load(Ordering::Relaxed) == 0
        {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(stopped, "the query's work did not stop");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_stay_valid_with_many_services() {
    let s = TestServer::start().await;
    let t = s.tenant("Many").await;
    s.post_batch(&t, distinct_events(3_000, 0, 1_500)).await;
    let r = s
        .req(
            "GET",
            "/api/v1/ingestion/events/statistics?from=now-1h&to=now",
            &[("x-api-key", &t.read_key)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["total"], 3000);
    assert_eq!(v["by_type"]["api_call"], 3000);
    assert_eq!(v["by_status_class"]["2xx"], 3000);
    assert_eq!(v["by_service"].as_object().expect("map").len(), 1000);
    assert_eq!(v["by_service_truncated"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_whose_client_never_reads_gives_back_its_thread() {
    let s = TestServer::start_with(|c| c.server.write_timeout = Duration::from_millis(300)).await;
    let t = s.tenant("Stall").await;
    for part in 0..4 {
        s.post_batch(&t, distinct_events(10_000, part * 10_000, 10))
            .await;
    }
    let mut sock = TcpStream::connect(s.addr).await.expect("connect");
    let head = format!(
        "GET /api/v1/export?format=ndjson&from=now-1h&to=now HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\r\n",
        t.read_key
    );
    sock.write_all(head.as_bytes()).await.expect("write");
    // Never read. The export's producer or the connection must give up.
    let state = s.state().clone();
    let mut released = false;
    for _ in 0..400 {
        let stalled = state.read_stats.exports_stalled.load(Ordering::Relaxed)
            + state.conn_stats.write_timeouts.load(Ordering::Relaxed);
        if stalled > 0 && state.read_gate.admitted() == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(released, "the stalled export kept its slot");
    // Another tenant's reads are served meanwhile and after.
    let other = s.tenant("Other").await;
    let r = s
        .req(
            "GET",
            "/api/v1/ingestion/events/search?limit=1",
            &[("x-api-key", &other.read_key)],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    drop(sock);
    s.stop().await;
}
