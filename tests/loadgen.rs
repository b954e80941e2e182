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
