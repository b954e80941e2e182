//! The dashboard APIs over real HTTP (contract section 6): the overview's
//! numbers equal what the statistics, query and search APIs answer for the
//! same range; the events stream is the newest events; who may read which
//! tenant; and the web UI's assets (types, ETag, gzip, page routes).

mod common;

use std::io::Read;

use common::{TestServer, TestTenant, ago};
use serde_json::{Value, json};

/// 90 events over the last 50 minutes: endpoints /a../d, statuses
/// 200/201/404/503, a few user actions and errors without status.
fn events() -> Vec<Value> {
    (0..90)
        .map(|i| {
            let service = ["checkout", "auth"][i % 2];
            let endpoint = format!("/api/{}", ["a", "b", "c", "d"][i % 3 + usize::from(i % 7 == 0)]);
            let status = [200, 201, 404, 503][i % 4];
            let mut e = json!({
                "timestamp": ago(3000 - i as i64 * 30),
                "event_type": "api_call",
                "service": service,
                "endpoint": endpoint,
                "method": "GET",
                "status_code": status,
                "latency_ms": 5.0 + (i * 7 % 400) as f64,
                "user_id": format!("u-{}", i % 5),
            });
            if i % 9 == 0 {
                e = json!({"timestamp": ago(3000 - i as i64 * 30), "event_type": "user_action", "user_id": "u-1"});
            }
            if i % 17 == 0 {
                e = json!({"timestamp": ago(3000 - i as i64 * 30), "event_type": "error", "service": "auth", "message": "boom"});
            }
            e
        })
        .collect()
}

async fn seeded(name: &str) -> (TestServer, TestTenant) {
    let s = TestServer::start().await;
    let t = s.tenant(name).await;
    s.post_batch(&t, events()).await;
    (s, t)
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn overview_numbers_equal_the_statistics_and_query_answers() {
    let (s, t) = seeded("Dash").await;
    let (st, _, o) = s
        .get("/api/v1/dashboard/overview?window=1h", Some(&t.token))
        .await;
    assert_eq!(st, 200, "{o}");
    let range = format!(
        "from={}&to={}",
        enc(o["from"].as_str().unwrap()),
        enc(o["to"].as_str().unwrap())
    );
    let (st, _, stats) = s
        .get(
            &format!("/api/v1/ingestion/events/statistics?{range}"),
            Some(&t.token),
        )
        .await;
    assert_eq!(st, 200, "{stats}");

    assert_eq!(o["totals"]["events"], 90);
    assert_eq!(o["totals"]["events"], stats["total"]);
    assert_eq!(o["events_by_type"], stats["by_type"]);
    assert_eq!(o["totals"]["api_calls"], stats["by_type"]["api_call"]);
    assert_eq!(o["totals"]["user_actions"], stats["by_type"]["user_action"]);
    assert_eq!(o["status_codes"], stats["by_status_class"]);
    assert_eq!(o["error_rate"], stats["error_rate"]);
    let errors = (stats["error_rate"].as_f64().unwrap() * 90.0).round() as u64;
    assert!(errors > 0);
    assert_eq!(o["totals"]["errors"], errors);
    for p in ["p50", "p95", "p99", "avg"] {
        assert_eq!(o["latency_ms"][p], stats["latency_ms"][p], "{p}");
    }

    // Throughput series: buckets of the chosen step summing to the total.
    let series = o["throughput"]["series"].as_array().unwrap();
    assert_eq!(o["throughput"]["interval"], "60s");
    assert!((60..=61).contains(&series.len()), "{}", series.len());
    let sum: u64 = series.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(sum, 90);
    let errs: u64 = series.iter().map(|p| p["errors"].as_u64().unwrap()).sum();
    assert_eq!(errs, errors);
    assert!((o["throughput"]["average_per_second"].as_f64().unwrap() - 90.0 / 3600.0).abs() < 1e-9);

    // Top endpoints equal a grouped query over the same range.
    let (st, _, q) = s
        .post(
            "/api/v1/query",
            Some(&t.token),
            &json!({"from": o["from"], "to": o["to"], "filter": {"endpoint": {"exists": true}},
                    "group_by": ["endpoint"],
                    "aggregations": [{"op": "count", "as": "requests"}, {"op": "error_rate", "as": "er"},
                                     {"op": "p95", "field": "latency_ms", "as": "p95"}],
                    "order_by": [{"field": "requests", "desc": true}]}),
        )
        .await;
    assert_eq!(st, 200, "{q}");
    let top = o["top_endpoints"].as_array().unwrap();
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(top.len(), rows.len());
    for row in rows {
        let e = top
            .iter()
            .find(|x| x["endpoint"] == row[0])
            .unwrap_or_else(|| panic!("{row} missing from {top:?}"));
        assert_eq!(e["requests"], row[1]);
        assert_eq!(e["error_rate"], row[2]);
        assert_eq!(e["p95"], row[3]);
    }
    let reqs: Vec<u64> = top
        .iter()
        .map(|x| x["requests"].as_u64().unwrap())
        .collect();
    assert!(reqs.windows(2).all(|w| w[0] >= w[1]), "{reqs:?}");

    // Recent events: the ten newest, as search gives them.
    let (_, _, found) = s
        .get(
            &format!("/api/v1/ingestion/events/search?{range}&limit=10"),
            Some(&t.token),
        )
        .await;
    assert_eq!(o["recent_events"], found["events"]);
    assert_eq!(o["recent_events"].as_array().unwrap().len(), 10);

    // The alert counts are there (zero until alerting reports any), and health.
    for sev in ["critical", "warning", "info", "total"] {
        assert_eq!(o["active_alerts"][sev], 0, "{sev}");
    }
    assert_eq!(o["health"]["status"], "ok");
    assert_eq!(o["health"]["storage"]["events"], 90);
    s.stop().await;
}

#[tokio::test]
async fn overview_window_and_tenant_rules() {
    let (s, t) = seeded("Win").await;
    let other = s.tenant("Other").await;

    // A short window holds only the newest events; "now" counts the last minute.
    let (_, _, o) = s
        .get("/api/v1/dashboard/overview?window=5m", Some(&t.token))
        .await;
    let (_, _, stats) = s
        .get(
            &format!(
                "/api/v1/ingestion/events/statistics?from={}&to={}",
                enc(o["from"].as_str().unwrap()),
                enc(o["to"].as_str().unwrap())
            ),
            Some(&t.token),
        )
        .await;
    assert_eq!(o["totals"]["events"], stats["total"]);
    assert!(o["totals"]["events"].as_u64().unwrap() < 90);

    for bad in ["0m", "abc", "32d", "5"] {
        let (st, _, b) = s
            .get(
                &format!("/api/v1/dashboard/overview?window={bad}"),
                Some(&t.token),
            )
            .await;
        common::assert_error(st, &b, 400, "validation_failed");
    }

    // The other tenant sees none of these events; naming a tenant is refused.
    let (_, _, o2) = s
        .get("/api/v1/dashboard/overview", Some(&other.token))
        .await;
    assert_eq!(o2["totals"]["events"], 0);
    assert_eq!(o2["recent_events"], json!([]));
    let (st, _, b) = s
        .get(
            &format!("/api/v1/dashboard/overview?tenant={}", t.id),
            Some(&other.token),
        )
        .await;
    common::assert_error(st, &b, 403, "forbidden");

    // The platform administrator reads a tenant by naming it.
    let (st, _, b) = s.get("/api/v1/dashboard/overview", Some(&t.admin)).await;
    common::assert_error(st, &b, 400, "validation_failed");
    let (st, _, a) = s
        .get(
            &format!("/api/v1/dashboard/overview?window=1h&tenant={}", t.id),
            Some(&t.admin),
        )
        .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["totals"]["events"], 90);
    let (st, _, b) = s
        .get("/api/v1/dashboard/overview?tenant=t_nope", Some(&t.admin))
        .await;
    common::assert_error(st, &b, 404, "not_found");

    // No credential, or an ingest key: no dashboard.
    let (st, _, b) = s.get("/api/v1/dashboard/overview", None).await;
    common::assert_error(st, &b, 401, "unauthorized");
    let (st, _, b) = s
        .get("/api/v1/dashboard/overview", Some(&t.ingest_key))
        .await;
    common::assert_error(st, &b, 403, "forbidden");
    let r = s.req("POST", "/api/v1/dashboard/overview", &[], "").await;
    assert_eq!(r.status, 405);
    s.stop().await;
}

#[tokio::test]
async fn events_stream_is_the_newest_events_with_filters() {
    let (s, t) = seeded("Stream").await;
    let (st, _, r) = s
        .get("/api/v1/dashboard/events/stream", Some(&t.token))
        .await;
    assert_eq!(st, 200, "{r}");
    let evs = r["events"].as_array().unwrap();
    assert_eq!(evs.len(), 50);
    let (_, _, found) = s
        .get(
            "/api/v1/ingestion/events/search?from=now-24h&limit=50",
            Some(&t.token),
        )
        .await;
    assert_eq!(r["events"], found["events"]);
    for k in ["from", "to", "server_time"] {
        assert!(r[k].as_str().is_some_and(|t| t.ends_with('Z')), "{k}: {r}");
    }
    let ids: Vec<&str> = evs.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    let (_, _, f) = s
        .get(
            "/api/v1/dashboard/events/stream?limit=5&status_code=5xx&service=auth",
            Some(&t.token),
        )
        .await;
    let fe = f["events"].as_array().unwrap();
    assert_eq!(fe.len(), 5);
    assert!(
        fe.iter()
            .all(|e| e["status_code"] == 503 && e["service"] == "auth")
    );

    for bad in ["0", "1001", "x"] {
        let (st, _, b) = s
            .get(
                &format!("/api/v1/dashboard/events/stream?limit={bad}"),
                Some(&t.token),
            )
            .await;
        common::assert_error(st, &b, 400, "validation_failed");
    }
    let (st, _, b) = s
        .get(
            "/api/v1/dashboard/events/stream?from=yesterday",
            Some(&t.token),
        )
        .await;
    common::assert_error(st, &b, 400, "validation_failed");
    s.stop().await;
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gzip body");
    out
}

#[tokio::test]
async fn web_ui_is_served_from_the_binary() {
    let s = TestServer::start().await;
    let root = s.req("GET", "/", &[], "").await;
    assert_eq!(root.status, 200);
    assert_eq!(
        root.header("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(root.text().contains("/assets/app.js"));
    assert_eq!(root.header("cache-control").unwrap(), "no-cache");
    assert!(root.header("content-security-policy").is_some());
    let etag = root.header("etag").unwrap();

    // Page paths of the app answer the same document.
    for page in [
        "/overview",
        "/tail",
        "/explore/",
        "/endpoints",
        "/consumers",
        "/alerts",
        "/settings",
        "/login",
    ] {
        let r = s.req("GET", page, &[], "").await;
        assert_eq!(r.status, 200, "{page}");
        assert_eq!(r.body, root.body, "{page}");
    }

    let r = s.req("GET", "/", &[("if-none-match", &etag)], "").await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    let js = s.req("GET", "/assets/app.js", &[], "").await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type").unwrap(),
        "text/javascript; charset=utf-8"
    );
    assert!(js.header("cache-control").unwrap().contains("max-age="));
    assert!(js.header("content-encoding").is_none());
    let z = s
        .req(
            "GET",
            "/assets/app.js",
            &[("accept-encoding", "gzip, deflate, br")],
            "",
        )
        .await;
    assert_eq!(z.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(z.header("vary").as_deref(), Some("accept-encoding"));
    assert!(z.body.len() < js.body.len());
    assert_eq!(gunzip(&z.body), js.body.to_vec());

    let css = s.req("GET", "/assets/app.css", &[], "").await;
    assert_eq!(
        css.header("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
    let svg = s.req("GET", "/assets/favicon.svg", &[], "").await;
    assert_eq!(svg.header("content-type").unwrap(), "image/svg+xml");
    let head = s.req("HEAD", "/assets/app.css", &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    // Every module a page imports is served.
    for page in [
        "login",
        "overview",
        "tail",
        "explore",
        "endpoints",
        "consumers",
        "alerts",
        "settings",
    ] {
        let r = s
            .req("GET", &format!("/assets/pages/{page}.js"), &[], "")
            .await;
        assert_eq!(r.status, 200, "{page}");
        assert!(r.text().contains("export function render"), "{page}");
    }

    let r = s.req("GET", "/nope", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
    let r = s.req("GET", "/assets/missing.js", &[], "").await;
    assert_eq!(r.status, 404);
    let r = s.req("POST", "/", &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.code(), "method_not_allowed");
    // API paths keep answering JSON 404s.
    let r = s.req("GET", "/api/v1/nope", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");

    assert!(pulsestream::ui::compressed_total_bytes() <= 500 * 1024);
    s.stop().await;
}
