//! Ingestion over real HTTP (contract sections 3 and 4): single and batch
//! events in every body format and encoding, per-event validation, the
//! error statuses (400, 401, 403, 413, 415, 429, 503, 507) and
//! read-after-ack.

mod common;

use std::io::Write;

use common::{TestServer, ago};
use serde_json::{Value, json};

fn key_headers<'a>(key: &'a str, ct: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("x-api-key", key), ("content-type", ct)]
}

fn event(i: usize) -> Value {
    json!({
        "timestamp": ago(5), "event_type": "api_call", "service": "checkout",
        "endpoint": "/api/v1/orders/{id}", "method": "POST", "status_code": 201,
        "latency_ms": 12.5 + i as f64, "user_id": format!("u-{i}"), "trace_id": format!("trace-{i}"),
        "attributes": {"tier": "gold", "n": i}
    })
}

async fn search(s: &TestServer, key: &str, query: &str) -> Value {
    let r = s
        .req(
            "GET",
            &format!("/api/v1/ingestion/events/search?{query}"),
            &[("x-api-key", key)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "search: {}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_event_is_acked_and_readable_at_once() {
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &key_headers(&t.ingest_key, "application/json"),
            event(1).to_string(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    let id = v["ids"][0].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 32);

    // Read-after-ack: visible immediately (the contract allows up to 1 s).
    let found = search(&s, &t.read_key, "service=checkout").await;
    let events = found["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["id"], id);
    assert_eq!(e["status_code"], 201);
    assert_eq!(e["method"], "POST");
    assert_eq!(e["attributes"]["tier"], "gold");
    assert!(e["timestamp"].as_str().expect("ts").ends_with('Z'));
    assert!(e["received_at"].is_string());

    // Also with `Authorization: Bearer psk_...`.
    let bearer = format!("Bearer {}", t.ingest_key);
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            json!({"event_type": "error"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_keeps_valid_events_and_reports_invalid_ones() {
    let s = TestServer::start().await;
    let t = s.tenant("mixed").await;
    let mut bad_status = event(2);
    bad_status["status_code"] = json!(999);
    let body = json!({"events": [
        event(0),
        {"service": "no-type"},
        bad_status,
        event(3),
        42,
        {"event_type": "x", "timestamp": "2001-01-01T00:00:00Z"},
        {"event_type": "x", "timestamp": ago(-7200)},
        {"event_type": "x", "latency_ms": -1, "method": "FETCH"}
    ]});
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events/batch",
            &key_headers(&t.ingest_key, "application/json"),
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"], 6);
    let errs: Vec<(u64, String)> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert!(e["message"].is_string());
            (
                e["index"].as_u64().expect("index"),
                e["field"].as_str().expect("field").to_owned(),
            )
        })
        .collect();
    for want in [
        (1, "event_type"),
        (2, "status_code"),
        (4, "event"),
        (5, "timestamp"),
        (6, "timestamp"),
        (7, "latency_ms"),
        (7, "method"),
    ] {
        assert!(
            errs.contains(&(want.0, want.1.to_owned())),
            "{want:?} in {errs:?}"
        );
    }
    let old = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["index"] == 5)
        .expect("index 5");
    assert!(old["message"].as_str().expect("msg").contains("retention"));
    let found = search(&s, &t.read_key, "").await;
    assert_eq!(found["events"].as_array().expect("events").len(), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_ndjson_gzip_and_zstd_bodies() {
    let s = TestServer::start().await;
    let t = s.tenant("formats").await;
    let array = json!([event(0), event(1)]).to_string();
    let ndjson = format!("{}\n{}\n\n{}\n", event(2), event(3), event(4));

    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events/batch",
            &key_headers(&t.ingest_key, "application/json"),
            array.clone(),
        )
        .await;
    assert_eq!((r.status, r.json()["accepted"].clone()), (200, json!(2)));

    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events/batch",
            &key_headers(&t.ingest_key, "application/x-ndjson"),
            ndjson.clone(),
        )
        .await;
    assert_eq!((r.status, r.json()["accepted"].clone()), (200, json!(3)));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(ndjson.as_bytes()).expect("gzip");
    let mut h = key_headers(&t.ingest_key, "application/x-ndjson");
    h.push(("content-encoding", "gzip"));
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events/batch",
            &h,
            gz.finish().expect("gzip"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["accepted"].clone()),
        (200, json!(3)),
        "{}",
        r.text()
    );

    let zs = zstd::encode_all(array.as_bytes(), 3).expect("zstd");
    let mut h = key_headers(&t.ingest_key, "application/json");
    h.push(("content-encoding", "zstd"));
    let r = s
        .req("POST", "/api/v1/ingestion/events/batch", &h, zs)
        .await;
    assert_eq!(
        (r.status, r.json()["accepted"].clone()),
        (200, json!(2)),
        "{}",
        r.text()
    );

    let found = search(&s, &t.read_key, "limit=1000").await;
    assert_eq!(found["events"].as_array().expect("events").len(), 10);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_request_errors() {
    let s = TestServer::start_with(|c| c.server.max_body_bytes = 64 * 1024).await;
    let t = s.tenant("errors").await;
    let path = "/api/v1/ingestion/events/batch";

    // 400: not JSON, nothing stored.
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "application/json"),
            "[{\"event_type\":\"a\"}, {oops",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "application/x-ndjson"),
            "{\"event_type\":\"a\"}\nnot json\n",
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &key_headers(&t.ingest_key, "application/json"),
            "{\"event_type\":",
        )
        .await;
    assert_eq!(r.status, 400);
    // A single invalid event: 400 validation_failed naming the field.
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &key_headers(&t.ingest_key, "application/json"),
            json!({"event_type": "a", "status_code": 42}).to_string(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "validation_failed"));
    assert_eq!(r.json()["error"]["details"][0]["field"], "status_code");
    assert_eq!(search(&s, &t.read_key, "").await["events"], json!([]));

    // 415: wrong content type or encoding.
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "text/plain"),
            "[]",
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    let mut h = key_headers(&t.ingest_key, "application/json");
    h.push(("content-encoding", "br"));
    assert_eq!(s.req("POST", path, &h, "[]").await.status, 415);

    // 413: body over the limit, and a gzip bomb over it once inflated.
    let big = vec![b' '; 65 * 1024];
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "application/json"),
            big,
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 10 << 20]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 64 * 1024);
    let mut h = key_headers(&t.ingest_key, "application/json");
    h.push(("content-encoding", "gzip"));
    let r = s.req("POST", path, &h, bomb).await;
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));

    // 401: no or bad credentials.
    let r = s
        .req("POST", path, &[("content-type", "application/json")], "[]")
        .await;
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"));
    let r = s
        .req(
            "POST",
            path,
            &key_headers("psk_not_a_real_key_0000000000000000", "application/json"),
            "[]",
        )
        .await;
    assert_eq!(r.status, 401);

    // 403: a read-only key, or a user token, cannot ingest.
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.read_key, "application/json"),
            "[]",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let bearer = format!("Bearer {}", t.token);
    let r = s
        .req(
            "POST",
            path,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            "[]",
        )
        .await;
    assert_eq!(r.status, 403);

    // 405 on a known path.
    let r = s
        .req("GET", path, &[("x-api-key", &t.ingest_key)], "")
        .await;
    assert_eq!(r.status, 405);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_quota_answer_429_with_headers() {
    let s = TestServer::start_with(|c| {
        c.limits.default_rate_limit_eps = 1;
        c.limits.default_rate_limit_burst = 5;
    })
    .await;
    let t = s.tenant("limited").await;
    let path = "/api/v1/ingestion/events/batch";
    let batch = |n: usize| json!((0..n).map(event).collect::<Vec<_>>()).to_string();
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "application/json"),
            batch(5),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("1"));
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "application/json"),
            batch(3),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("secs");
    assert!((1..=3).contains(&retry), "{retry}");
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("1"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    // Refused events were not stored.
    assert_eq!(
        search(&s, &t.read_key, "").await["events"]
            .as_array()
            .expect("events")
            .len(),
        5
    );
    // Another tenant is not affected.
    let other = s.tenant("other").await;
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&other.ingest_key, "application/json"),
            batch(2),
        )
        .await;
    assert_eq!(r.status, 200);
    s.stop().await;

    let s = TestServer::start_with(|c| c.limits.default_quota_events_per_day = 3).await;
    let t = s.tenant("quota").await;
    let r = s
        .req(
            "POST",
            path,
            &key_headers(&t.ingest_key, "application/json"),
            batch(3),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &key_headers(&t.ingest_key, "application/json"),
            event(9).to_string(),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3"));
    s.stop().await;
}

/// Overload answers 503 + Retry-After: with a queue of one append, many
/// concurrent batches cannot all be waiting for the store at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_503_and_loses_nothing_acked() {
    let s = TestServer::start_with(|c| c.ingest.queue_depth = 1).await;
    let t = s.tenant("busy").await;
    let body = json!((0..200).map(event).collect::<Vec<_>>()).to_string();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let addr = s.addr;
        let key = t.ingest_key.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            common::request(
                addr,
                "POST",
                "/api/v1/ingestion/events/batch",
                &[("x-api-key", &key), ("content-type", "application/json")],
                body.into(),
            )
            .await
        }));
    }
    let mut acked = 0u64;
    let mut overloaded = 0;
    for task in tasks {
        let r = task.await.expect("task");
        match r.status {
            200 => acked += r.json()["accepted"].as_u64().expect("accepted"),
            503 => {
                overloaded += 1;
                assert_eq!(r.code(), "overloaded");
                assert!(r.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    // Every request was either stored whole or refused whole.
    assert_eq!(acked + overloaded * 200, 32 * 200);
    eprintln!("32 concurrent batches, queue depth 1: {overloaded} answered 503");
    assert!(overloaded > 0, "the overload path was never taken");
    assert_eq!(s.count_events(&t.read_key).await, Some(acked));
    s.stop().await;
}

/// A full disk answers 507 and writes resume when space returns. Needs
/// root (tmpfs mount); skipped otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_507_then_recovers() {
    let mnt = tempfile::tempdir().expect("dir");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: cannot mount a tmpfs (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(mnt.path().to_owned());
    let data = mnt.path().join("data");
    let s = TestServer::start_in(&data, |_| {}).await;
    let t = s.tenant("full").await;

    // Fill the disk with a ballast file, leaving almost nothing.
    let ballast = mnt.path().join("ballast");
    {
        let mut f = std::fs::File::create(&ballast).expect("ballast");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let body = json!((0..500).map(event).collect::<Vec<_>>()).to_string();
    let path = "/api/v1/ingestion/events/batch";
    let mut saw_507 = false;
    for _ in 0..50 {
        let r = s
            .req(
                "POST",
                path,
                &key_headers(&t.ingest_key, "application/json"),
                body.clone(),
            )
            .await;
        if r.status == 507 {
            assert_eq!(r.code(), "insufficient_storage");
            saw_507 = true;
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(saw_507, "never saw 507 with a full disk");
    // Still readable.
    let r = s
        .req(
            "GET",
            "/api/v1/ingestion/events/search?limit=1",
            &[("x-api-key", &t.read_key)],
            "",
        )
        .await;
    assert_eq!(r.status, 200);

    std::fs::remove_file(&ballast).expect("free space");
    let mut resumed = false;
    for _ in 0..50 {
        let r = s
            .req(
                "POST",
                path,
                &key_headers(&t.ingest_key, "application/json"),
                body.clone(),
            )
            .await;
        if r.status == 200 {
            resumed = true;
            break;
        }
        assert_eq!(r.status, 507, "{}", r.text());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resumed, "writes did not resume after space returned");
    s.stop().await;
}

/// Concurrent single events (joined into shared appends) each get their own
/// id, and every acknowledged one is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_events_get_distinct_ids() {
    let s = TestServer::start().await;
    let t = s.tenant("concurrent").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let addr = s.addr;
        let key = t.ingest_key.clone();
        tasks.push(tokio::spawn(async move {
            common::request(
                addr,
                "POST",
                "/api/v1/ingestion/events",
                &[("x-api-key", &key), ("content-type", "application/json")],
                event(i).to_string().into(),
            )
            .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let r = task.await.expect("task");
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(ids.insert(r.json()["ids"][0].as_str().expect("id").to_owned()));
    }
    let found = search(&s, &t.read_key, "limit=1000").await;
    let stored: std::collections::HashSet<String> = found["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(stored, ids);
    s.stop().await;
}

/// One tenant's stalled chunked uploads hold only the bytes they sent, and
/// at most that tenant's budget: another tenant's ingest is never 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_of_one_tenant_do_not_refuse_another() {
    use tokio::io::AsyncWriteExt;
    const GLOBAL: usize = 8 << 20;
    const TENANT: usize = 2 << 20;
    const STALLED: usize = 100;
    const CHUNK: usize = 64 << 10;
    let s = TestServer::start_with(|c| {
        c.ingest.inflight_bytes = GLOBAL;
        c.ingest.tenant_inflight_bytes = TENANT;
    })
    .await;
    let slow = s.tenant("slow").await;
    let other = s.tenant("other").await;

    // 100 uploads that send one 64 KiB chunk each and then stall: 6.4 MiB
    // offered, more than the slow tenant's 2 MiB budget.
    let mut sockets = Vec::new();
    let chunk = format!("{CHUNK:x}\r\n{}\r\n", "[".repeat(CHUNK));
    for _ in 0..STALLED {
        let mut sock = tokio::net::TcpStream::connect(s.addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/ingestion/events/batch HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            slow.ingest_key
        );
        sock.write_all(head.as_bytes()).await.expect("head");
        sock.write_all(chunk.as_bytes()).await.expect("chunk");
        sockets.push(sock);
    }
    // Wait (bounded) until the slow tenant holds its whole budget.
    let state = s.state().clone();
    let mut held = 0;
    for _ in 0..200 {
        held = GLOBAL - state.ingest.budget_available_bytes();
        if held >= TENANT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(held, TENANT, "the slow tenant holds exactly its budget");

    let body = json!((0..100).map(event).collect::<Vec<_>>()).to_string();
    for _ in 0..20 {
        let r = s
            .req(
                "POST",
                "/api/v1/ingestion/events/batch",
                &key_headers(&other.ingest_key, "application/json"),
                body.clone(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(s.count_events(&other.read_key).await, Some(2000));
    drop(sockets);
    s.stop().await;
}

/// A request deadline never answers 503 for events that were stored: with
/// a deadline shorter than decoding and appending a large batch, every
/// batch is either refused before its append (503, nothing stored) or
/// answered 200, and the store holds exactly what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_never_refuses_stored_events() {
    let s = TestServer::start_with(|c| {
        c.server.request_timeout = std::time::Duration::from_millis(100);
    })
    .await;
    let t = s.tenant("hasty").await;
    let small = json!((0..10).map(event).collect::<Vec<_>>()).to_string();
    let large = json!((0..4000).map(event).collect::<Vec<_>>()).to_string();
    let mut tasks = Vec::new();
    for n in 0..32 {
        let addr = s.addr;
        let key = t.ingest_key.clone();
        let body = if n % 2 == 0 {
            small.clone()
        } else {
            large.clone()
        };
        tasks.push(tokio::spawn(async move {
            common::request(
                addr,
                "POST",
                "/api/v1/ingestion/events/batch",
                &[("x-api-key", &key), ("content-type", "application/json")],
                body.into(),
            )
            .await
        }));
    }
    let (mut acked, mut refused) = (0u64, 0u64);
    for task in tasks {
        let r = task.await.expect("task");
        match r.status {
            200 => acked += r.json()["accepted"].as_u64().expect("accepted"),
            503 => refused += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    eprintln!("deadline 100 ms: {acked} events acknowledged, {refused} batches refused");
    assert!(acked > 0, "no batch reached its append");
    // Nothing refused was stored, nothing acknowledged was lost. The count
    // query has the same short deadline: retried until it answers.
    let mut stored = None;
    for _ in 0..50 {
        let r = s
            .req(
                "POST",
                "/api/v1/query",
                &[
                    ("x-api-key", &t.read_key),
                    ("content-type", "application/json"),
                ],
                json!({"aggregations": [{"op": "count", "as": "n"}]}).to_string(),
            )
            .await;
        if r.status == 200 {
            stored = Some(r.json()["rows"][0][0].as_u64().unwrap_or(0));
            break;
        }
    }
    assert_eq!(stored, Some(acked));
    s.stop().await;
}

/// Holds the first acknowledged batch in its observer until released: an
/// append that outlasts the request deadline after it has begun.
struct HoldFirstAck {
    release: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl pulsestream::app::IngestObserver for HoldFirstAck {
    fn on_ack(
        &self,
        _tenant: &pulsestream_storage::TenantId,
        _events: &std::sync::Arc<[pulsestream_storage::Event]>,
        _ack: &pulsestream_storage::Ack,
    ) {
        let rx = self.release.lock().ok().and_then(|mut r| r.take());
        if let Some(rx) = rx {
            let _ = rx.recv();
        }
    }
}

/// Once its append has begun, a request past its deadline answers the
/// append's outcome (200), not 503: the events are stored, and a 503 would
/// make the agent send them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_outlasting_the_deadline_answers_its_outcome() {
    const DEADLINE: std::time::Duration = std::time::Duration::from_millis(200);
    let (tx, rx) = std::sync::mpsc::channel();
    let hold = std::sync::Arc::new(HoldFirstAck {
        release: std::sync::Mutex::new(Some(rx)),
    });
    let s = TestServer::start_with_state(
        |c| c.server.request_timeout = DEADLINE,
        |st| st.ingest_observers.push(hold),
    )
    .await;
    let t = s.tenant("held").await;
    let body = json!((0..50).map(event).collect::<Vec<_>>()).to_string();
    let addr = s.addr;
    let key = t.ingest_key.clone();
    let req = tokio::spawn(async move {
        common::request(
            addr,
            "POST",
            "/api/v1/ingestion/events/batch",
            &[("x-api-key", &key), ("content-type", "application/json")],
            body.into(),
        )
        .await
    });
    // Past the deadline while the batch is held in its commit.
    tokio::time::sleep(DEADLINE * 3).await;
    assert!(!req.is_finished(), "answered before the held commit ended");
    tx.send(()).expect("release");
    let r = req.await.expect("task");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accepted"], 50);
    assert_eq!(s.count_events(&t.read_key).await, Some(50));
    s.stop().await;
}

/// Records the LSN of every acknowledged batch, per tenant, in call order.
#[derive(Default)]
struct RecordAcks {
    seen: std::sync::Mutex<Vec<(String, u64, usize)>>,
}

impl pulsestream::app::IngestObserver for RecordAcks {
    fn on_ack(
        &self,
        tenant: &pulsestream_storage::TenantId,
        events: &std::sync::Arc<[pulsestream_storage::Event]>,
        ack: &pulsestream_storage::Ack,
    ) {
        if let Ok(mut s) = self.seen.lock() {
            s.push((tenant.as_str().to_owned(), ack.lsn.0, events.len()));
        }
    }
}

/// Observers see every acknowledged batch once, after it is durable, in
/// each tenant's ack order, with concurrent batches and single events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_each_tenants_batches_in_ack_order() {
    let rec = std::sync::Arc::new(RecordAcks::default());
    let obs = rec.clone();
    let s = TestServer::start_with_state(|_| {}, |st| st.ingest_observers.push(obs)).await;
    let a = s.tenant("order-a").await;
    let b = s.tenant("order-b").await;
    let body = json!((0..20).map(event).collect::<Vec<_>>()).to_string();
    let mut tasks = Vec::new();
    for n in 0..48 {
        let addr = s.addr;
        let key = if n % 2 == 0 {
            a.ingest_key.clone()
        } else {
            b.ingest_key.clone()
        };
        let (path, body) = if n % 3 == 0 {
            ("/api/v1/ingestion/events", event(n).to_string())
        } else {
            ("/api/v1/ingestion/events/batch", body.clone())
        };
        tasks.push(tokio::spawn(async move {
            common::request(
                addr,
                "POST",
                path,
                &[("x-api-key", &key), ("content-type", "application/json")],
                body.into(),
            )
            .await
        }));
    }
    let mut acked = 0usize;
    for t in tasks {
        let r = t.await.expect("task");
        assert!(r.status == 200 || r.status == 202, "{}", r.text());
        acked += r.json()["accepted"].as_u64().expect("accepted") as usize;
    }
    let seen = rec.seen.lock().expect("lock").clone();
    assert_eq!(seen.iter().map(|x| x.2).sum::<usize>(), acked);
    for tenant in [&a.id, &b.id] {
        let lsns: Vec<u64> = seen
            .iter()
            .filter(|x| &x.0 == tenant)
            .map(|x| x.1)
            .collect();
        assert!(!lsns.is_empty());
        assert!(
            lsns.windows(2).all(|w| w[0] < w[1]),
            "out of order: {lsns:?}"
        );
    }
    s.stop().await;
}
