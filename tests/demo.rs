//! `pulsestream demo`: its user can log in, traffic flows, and the built-in
//! incident fires the built-in rule within 60 seconds of the start.

mod common;

use std::time::{Duration, Instant};

use pulsestream::cli::demo;
use serde_json::{Value, json};

/// The brief's promise: a firing alert within a minute.
const FIRING_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fires_its_alert_within_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::test_config(dir.path());
    config.auth.admin_password = Some("demo-admin-password".into());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(demo::serve(
        config,
        "demo-admin-password".into(),
        async move {
            let _ = stop_rx.await;
        },
        Some(ready_tx),
    ));
    let addr = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("ready in time")
        .expect("demo set up");
    let base = format!("http://{addr}");
    let client = common::client();
    let (st, _, body) = common::send(
        &client,
        &base,
        http::Method::POST,
        "/api/v1/auth/login",
        &[("content-type", "application/json")],
        json!({"email": demo::DEMO_EMAIL, "password": demo::DEMO_PASSWORD})
            .to_string()
            .into(),
    )
    .await
    .expect("login");
    assert_eq!(st.as_u16(), 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    let token = v["access_token"].as_str().expect("token").to_owned();
    let auth = format!("Bearer {token}");

    let firing = loop {
        let (_, _, body) = common::send(
            &client,
            &base,
            http::Method::GET,
            "/api/v1/alerting/alerts?state=firing",
            &[("authorization", &auth)],
            bytes::Bytes::new(),
        )
        .await
        .expect("alerts");
        let v: Value = serde_json::from_slice(&body).expect("json");
        if let Some(a) = v["alerts"].as_array().and_then(|a| a.first()) {
            break a.clone();
        }
        assert!(
            started.elapsed() < FIRING_WITHIN,
            "no firing alert within {FIRING_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(firing["rule_name"], "Payment capture failing", "{firing}");

    // The firing was delivered to the demo's own webhook inbox.
    let alert_id = firing["id"].as_str().expect("alert id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let (_, _, body) = common::send(
            &client,
            &base,
            http::Method::GET,
            &format!("/api/v1/alerting/notifications?alert_id={alert_id}"),
            &[("authorization", &auth)],
            bytes::Bytes::new(),
        )
        .await
        .expect("notifications");
        let v: Value = serde_json::from_slice(&body).expect("json");
        let done = v["notifications"]
            .as_array()
            .and_then(|n| n.iter().find(|a| a["status"] == "delivered").cloned());
        if let Some(a) = done {
            break a;
        }
        assert!(Instant::now() < deadline, "no delivered notification: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(delivered["channel_type"], "webhook", "{delivered}");
    assert_eq!(delivered["http_status"], 204, "{delivered}");

    let (_, _, body) = common::send(
        &client,
        &base,
        http::Method::GET,
        "/api/v1/dashboard/overview?window=15m",
        &[("authorization", &auth)],
        bytes::Bytes::new(),
    )
    .await
    .expect("overview");
    let o: Value = serde_json::from_slice(&body).expect("json");
    assert!(o["totals"]["events"].as_u64().unwrap_or(0) > 100, "{o}");
    assert_eq!(o["active_alerts"]["critical"], 1, "{o}");

    let _ = stop_tx.send(());
    task.await.expect("task").expect("demo ends cleanly");
}
