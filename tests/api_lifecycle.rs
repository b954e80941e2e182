//! Server lifecycle with data: a graceful shutdown under ingest load loses
//! no acknowledged event, and a restart keeps tenants, keys and events.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, send};
use hyper::{Method, StatusCode};
use parking_lot::Mutex;
use serde_json::json;

/// Concurrent agents sending single events while the server stops.
const WORKERS: usize = 4;
/// Acknowledged events before the stop is requested.
const MIN_ACKS: usize = 300;

/// Reads every event id of the tenant (last hour) through paged search.
async fn all_ids(s: &TestServer, read_key: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/ingestion/events/search?limit=1000".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (st, _, b) = s
            .raw(Method::GET, &path, &[("x-api-key", read_key)], Bytes::new())
            .await;
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(st, StatusCode::OK, "search: {v}");
        for e in v["events"].as_array().expect("events") {
            ids.insert(e["id"].as_str().expect("id").to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
            _ => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_under_load_loses_no_acked_event_and_restart_keeps_them() {
    let s = TestServer::start().await;
    let (_, ingest_key, owner) = s.create_tenant("Life").await;
    let (st, _, v) = s
        .post(
            "/api/v1/auth/api-keys",
            Some(&owner),
            &json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let read_key = v["key"].as_str().expect("key").to_owned();

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let base = s.base.clone();
        let key = ingest_key.clone();
        let acked = acked.clone();
        let started = started.clone();
        workers.push(tokio::spawn(async move {
            let client = common::client();
            for n in 0.. {
                let body = json!({"event_type": "api_call", "service": "life", "user_id": format!("w{w}-{n}")});
                let r = send(
                    &client,
                    &base,
                    Method::POST,
                    "/api/v1/ingestion/events",
                    &[("x-api-key", &key), ("content-type", "application/json")],
                    Bytes::from(body.to_string()),
                )
                .await;
                match r {
                    Ok((StatusCode::ACCEPTED, _, b)) => {
                        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
                        acked.lock().push(v["ids"][0].as_str().expect("id").to_owned());
                        started.store(true, Ordering::Relaxed);
                    }
                    // Shutting down: the store may answer "closed" (503).
                    Ok((StatusCode::SERVICE_UNAVAILABLE, _, _)) => {}
                    Ok((st, _, b)) => panic!("unexpected {st}: {}", String::from_utf8_lossy(&b)),
                    Err(_) => return,
                }
            }
        }));
    }
    // Let load build up (bounded wait; the assertion below needs some acks).
    for _ in 0..500 {
        if acked.lock().len() >= MIN_ACKS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started.load(Ordering::Relaxed), "no event was acknowledged");
    let dir = s.stop().await.expect("owned dir");
    for w in workers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("worker ended")
            .expect("worker ok");
    }
    let acked: Vec<String> = acked.lock().clone();
    assert!(acked.len() >= MIN_ACKS, "only {} acks", acked.len());

    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let stored = all_ids(&s, &read_key).await;
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acked events lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
    // The tenant, its keys and its owner survived too.
    let (st, _) = s
        .login(&common::owner_email("Life"), common::OWNER_PASSWORD)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = s
        .raw(
            Method::POST,
            "/api/v1/ingestion/events",
            &[
                ("x-api-key", &ingest_key),
                ("content-type", "application/json"),
            ],
            Bytes::from_static(br#"{"event_type":"api_call"}"#),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    s.stop().await;
    drop(dir);
}
