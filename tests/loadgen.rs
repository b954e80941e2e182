//! `pulsestream loadgen` against a real server: what it reports as
//! acknowledged is what the server stored, in batches and single events.

mod common;

use std::time::Duration;

use common::TestServer;
use pulsestream::loadgen::{Options, run_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_acks_match_stored_events() {
    let s = TestServer::start().await;
    let t = s.tenant("load").await;
    let opts = |batch: usize, rate: u64| Options {
        url: format!("http://{}", s.addr),
        api_key: t.ingest_key.clone(),
        tenant_keys: Vec::new(),
        backfill: None,
        rate,
        duration: Duration::from_millis(700),
        batch,
        connections: 2,
        ndjson: true,
        otlp: None,
        seed: 3,
    };
    let batches = run_async(opts(50, 0)).await.expect("batches");
    assert!(batches.events_acked >= 50, "{batches}");
    assert_eq!(batches.events_acked % 50, 0);
    assert_eq!(batches.events_rejected, 0, "{batches}");
    assert!(
        batches.failures.is_empty() && batches.transport_errors == 0,
        "{batches}"
    );
    assert!(batches.p50_ms > 0.0 && batches.p50_ms <= batches.p99_ms);

    // Paced single events: about rate × duration, never far above.
    let singles = run_async(opts(1, 100)).await.expect("singles");
    assert!(
        singles.events_acked >= 1 && singles.events_acked <= 100,
        "{singles}"
    );

    assert_eq!(
        s.count_events(&t.read_key).await,
        Some(batches.events_acked + singles.events_acked)
    );
    s.stop().await;
}

#[test]
fn refuses_bad_options() {
    let bad = Options {
        url: "https://example.invalid".into(),
        api_key: "psk_x".into(),
        tenant_keys: Vec::new(),
        backfill: None,
        rate: 0,
        duration: Duration::from_millis(10),
        batch: 10,
        connections: 1,
        ndjson: true,
        otlp: None,
        seed: 1,
    };
    assert!(pulsestream::loadgen::run(bad.clone()).is_err());
    assert!(pulsestream::loadgen::run(Options { batch: 0, ..bad }).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tenants_with_a_skewed_mix_and_a_day_of_backfill() {
    let s = TestServer::start().await;
    let url = format!("http://{}", s.addr);
    let keys = pulsestream::loadgen_tenants::create_tenants(
        &url,
        common::ADMIN_EMAIL,
        common::ADMIN_PASSWORD,
        8,
        "lg",
    )
    .await
    .expect("create tenants");
    assert_eq!(keys.len(), 8);
    let report = run_async(Options {
        url,
        api_key: String::new(),
        tenant_keys: keys,
        backfill: Some(Duration::from_secs(24 * 3600)),
        rate: 0,
        duration: Duration::from_millis(1500),
        batch: 20,
        connections: 2,
        ndjson: true,
        otlp: None,
        seed: 5,
    })
    .await
    .expect("run");
    assert_eq!(report.events_rejected, 0, "{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.per_tenant.len(), 8);
    assert_eq!(report.per_tenant.iter().sum::<u64>(), report.events_acked);
    assert!(
        report.per_tenant[0] >= report.per_tenant[7],
        "the first tenant is the busiest: {:?}",
        report.per_tenant
    );
    // The store holds what was acknowledged, over the whole day.
    let stats = s.state().store.stats();
    let stored: u64 = stats
        .tenants
        .iter()
        .map(|t| t.sealed_rows + t.active_rows)
        .sum();
    assert_eq!(stored, report.events_acked);
    let partitions: u64 = stats
        .tenants
        .iter()
        .map(|t| t.partitions)
        .max()
        .unwrap_or(0);
    assert!(
        partitions > 12,
        "a day of backfill spans many hours: {partitions}"
    );
    s.stop().await;
}
