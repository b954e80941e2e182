//! `/metrics` behind an optional bearer token and without per-tenant
//! series; audit entries pruned after `limits.audit_retention_days`.

mod common;

use bytes::Bytes;
use common::TestServer;
use pulsestream_storage::Micros;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_and_per_tenant_switch() {
    let s = TestServer::start_with(|c| {
        c.server.metrics_token = Some("scrape-secret".into());
        c.server.metrics_per_tenant = false;
    })
    .await;
    let t = s.tenant("Hidden").await;
    let r = s.req("GET", "/metrics", &[], Bytes::new()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "unauthorized");
    let r = s
        .req(
            "GET",
            "/metrics",
            &[("authorization", "Bearer wrong")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .req(
            "GET",
            "/metrics",
            &[("authorization", "Bearer scrape-secret")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("pulsestream_ingest_events_total"));
    assert!(text.contains("pulsestream_connections_header_timeout_total"));
    assert!(!text.contains(&t.id), "a tenant id leaked into /metrics");
    s.stop().await;

    // Defaults: open, with per-tenant series.
    let s = TestServer::start().await;
    let t = s.tenant("Shown").await;
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &[
                ("x-api-key", &t.ingest_key),
                ("content-type", "application/json"),
            ],
            serde_json::json!({"timestamp": common::ago(1), "event_type": "api_call",
                               "service": "a", "status_code": 200, "latency_ms": 1.0})
            .to_string(),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let r = s.req("GET", "/metrics", &[], Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains(&format!("tenant=\"{}\"", t.id)),
        "{}",
        r.text()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_audit_entries_are_pruned() {
    let s = TestServer::start_with(|c| c.limits.audit_retention_days = 90).await;
    let _ = s.admin_login().await;
    let state = s.state().clone();
    let (before, _) = state.meta.list_audit(None, None, 1000).expect("list");
    assert!(!before.is_empty());
    // Today nothing is old enough.
    assert_eq!(
        pulsestream::retention::prune_audit(&state, Micros::now()),
        0
    );
    // 91 days later, everything is.
    let later = Micros(Micros::now().0 + 91 * 24 * Micros::HOUR);
    assert_eq!(
        pulsestream::retention::prune_audit(&state, later),
        before.len()
    );
    let (after, _) = state.meta.list_audit(None, None, 1000).expect("list");
    assert!(after.is_empty());
    s.stop().await;
}
