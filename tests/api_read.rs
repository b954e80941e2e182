//! Reading over real HTTP (contract section 5): search with every filter
//! and cursor paging, statistics, the query language and its errors,
//! streamed export in NDJSON and CSV, and tenant isolation.

mod common;

use common::{TestServer, TestTenant, ago};
use serde_json::{Value, json};

/// 60 events over the last 50 minutes: services a/b/c in turn, statuses
/// 200/404/503 in turn, latency = 10 × index.
fn events() -> Vec<Value> {
    (0..60)
        .map(|i| {
            let status = [200, 404, 503][i % 3];
            let service = ["a", "b", "c"][i % 3];
            let mut e = json!({
                "timestamp": ago(3000 - i as i64 * 50),
                "event_type": if i % 10 == 0 { "error" } else { "api_call" },
                "service": service,
                "endpoint": format!("/api/v1/items/{}", i % 4),
                "method": if i % 2 == 0 { "GET" } else { "POST" },
                "status_code": status,
                "latency_ms": 10.0 * i as f64,
                "user_id": format!("u-{}", i % 7),
                "trace_id": format!("trace-{i}"),
                "attributes": {"tier": if i % 2 == 0 { "gold" } else { "free" }, "n": i}
            });
            if status == 503 {
                e["message"] = json!(format!("upstream timeout #{i}"));
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

async fn get(s: &TestServer, key: &str, path: &str) -> common::Resp {
    s.req("GET", path, &[("x-api-key", key)], "").await
}

async fn search_n(s: &TestServer, key: &str, q: &str) -> usize {
    let r = get(s, key, &format!("/api/v1/ingestion/events/search?{q}")).await;
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    r.json()["events"].as_array().expect("events").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters() {
    let (s, t) = seeded("filters").await;
    let k = &t.read_key;
    assert_eq!(search_n(&s, k, "").await, 60);
    assert_eq!(search_n(&s, k, "service=a").await, 20);
    assert_eq!(search_n(&s, k, "service=a&service=b").await, 40);
    assert_eq!(search_n(&s, k, "event_type=error").await, 6);
    assert_eq!(search_n(&s, k, "endpoint=/api/v1/items/1").await, 15);
    assert_eq!(search_n(&s, k, "method=post").await, 30);
    assert_eq!(search_n(&s, k, "status_code=404").await, 20);
    assert_eq!(search_n(&s, k, "status_code=5xx").await, 20);
    assert_eq!(search_n(&s, k, "min_latency_ms=500").await, 10);
    assert_eq!(search_n(&s, k, "user_id=u-3").await, 9);
    assert_eq!(search_n(&s, k, "trace_id=trace-7").await, 1);
    assert_eq!(search_n(&s, k, "q=timeout").await, 20);
    assert_eq!(search_n(&s, k, "q=%2359").await, 1);
    assert_eq!(search_n(&s, k, "attr.tier=gold").await, 30);
    assert_eq!(search_n(&s, k, "attr.n=5").await, 1);
    assert_eq!(search_n(&s, k, "service=a&status_code=200").await, 20);
    assert_eq!(search_n(&s, k, "from=now-625s").await, 12);
    assert_eq!(search_n(&s, k, "from=now-2h&to=now-41m").await, 11);
    // The default range is the last hour; older events need `from`.
    let old = s
        .req(
            "POST",
            "/api/v1/ingestion/events",
            &[
                ("x-api-key", &t.ingest_key),
                ("content-type", "application/json"),
            ],
            json!({"event_type": "old", "timestamp": ago(7200)}).to_string(),
        )
        .await;
    assert_eq!(old.status, 202);
    assert_eq!(search_n(&s, k, "event_type=old").await, 0);
    assert_eq!(search_n(&s, k, "event_type=old&from=now-3h").await, 1);

    // Newest first, all fields rendered.
    let r = get(&s, k, "/api/v1/ingestion/events/search?limit=2").await;
    let v = r.json();
    let evs = v["events"].as_array().expect("events");
    assert_eq!(evs[0]["trace_id"], "trace-59");
    assert_eq!(evs[1]["trace_id"], "trace-58");
    assert_eq!(evs[0]["message"], "upstream timeout #59");
    assert_eq!(evs[0]["latency_ms"], 590);
    assert!(evs[0]["timestamp"].as_str().expect("ts") > evs[1]["timestamp"].as_str().expect("ts"));

    // Extreme but valid ranges are answered, not failed.
    for q in [
        "from=now-99999999d",
        "from=0&to=253402300799999",
        "from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z",
    ] {
        assert_eq!(search_n(&s, k, q).await, 61, "{q}");
        let r = get(&s, k, &format!("/api/v1/ingestion/events/statistics?{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text());
    }
    let r = query(&s, k, json!({"from": "now-99999999d"})).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Bad parameters: 400 naming the parameter.
    for (q, field) in [
        ("from=yesterday", "from"),
        ("status_code=9xx", "status_code"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("method=FETCH", "method"),
    ] {
        let r = get(&s, k, &format!("/api/v1/ingestion/events/search?{q}")).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "validation_failed"),
            "{q}"
        );
        assert_eq!(r.json()["error"]["details"][0]["field"], field, "{q}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_paging_visits_every_event_once() {
    let (s, t) = seeded("paging").await;
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=25&cursor={c}"),
            None => "limit=25".to_owned(),
        };
        let r = get(
            &s,
            &t.read_key,
            &format!("/api/v1/ingestion/events/search?{q}"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        for e in v["events"].as_array().expect("events") {
            assert!(
                seen.insert(e["id"].as_str().expect("id").to_owned()),
                "duplicate"
            );
        }
        pages += 1;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen.len(), 60);
    assert!(pages >= 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_answer() {
    let (s, t) = seeded("stats").await;
    let r = get(
        &s,
        &t.read_key,
        "/api/v1/ingestion/events/statistics?from=now-1h",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["total"], 60);
    assert_eq!(v["by_type"], json!({"api_call": 54, "error": 6}));
    assert_eq!(v["by_service"], json!({"a": 20, "b": 20, "c": 20}));
    assert_eq!(
        v["by_status_class"],
        json!({"1xx": 0, "2xx": 20, "3xx": 0, "4xx": 20, "5xx": 20})
    );
    let er = v["error_rate"].as_f64().expect("rate");
    assert!((er - 20.0 / 60.0).abs() < 1e-9, "{er}");
    let avg = v["latency_ms"]["avg"].as_f64().expect("avg");
    assert!((avg - 295.0).abs() < 1e-6, "{avg}");
    let p50 = v["latency_ms"]["p50"].as_f64().expect("p50");
    assert!((p50 - 295.0).abs() <= 10.0, "{p50}");
    let p99 = v["latency_ms"]["p99"].as_f64().expect("p99");
    assert!((p99 - 590.0).abs() <= 10.0, "{p99}");
    let eps = v["events_per_second"].as_f64().expect("eps");
    assert!((eps - 60.0 / 3600.0).abs() < 1e-3, "{eps}");

    let r = get(
        &s,
        &t.read_key,
        "/api/v1/ingestion/events/statistics?service=a",
    )
    .await;
    assert_eq!(r.json()["total"], 20);
    assert_eq!(r.json()["by_service"], json!({"a": 20}));
    let r = get(
        &s,
        &t.read_key,
        "/api/v1/ingestion/events/statistics?to=soon",
    )
    .await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

async fn query(s: &TestServer, key: &str, body: Value) -> common::Resp {
    s.req(
        "POST",
        "/api/v1/query",
        &[("x-api-key", key), ("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_language() {
    let (s, t) = seeded("query").await;
    let k = &t.read_key;
    let r = query(
        &s,
        k,
        json!({
            "from": "now-2h", "to": "now",
            "filter": {"status_code": {"gte": 500}, "service": ["c", "b"]},
            "group_by": ["service"],
            "aggregations": [{"op": "count", "as": "requests"},
                             {"op": "error_rate", "as": "error_rate"},
                             {"op": "max", "field": "latency_ms", "as": "max_ms"},
                             {"op": "count_distinct", "field": "user_id", "as": "users"}],
            "order_by": [{"field": "requests", "desc": true}],
            "limit": 10
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["columns"],
        json!(["service", "requests", "error_rate", "max_ms", "users"])
    );
    assert_eq!(v["rows"].as_array().expect("rows").len(), 1);
    assert_eq!(v["rows"][0][2].as_f64(), Some(1.0));
    assert_eq!(v["rows"][0][3].as_f64(), Some(590.0));
    assert_eq!(v["rows"][0][4].as_f64(), Some(7.0));
    assert_eq!(v["rows"][0][0], "c");
    assert_eq!(v["rows"][0][1], 20);
    for key in [
        "scanned_rows",
        "segments_scanned",
        "segments_pruned",
        "elapsed_ms",
        "truncated",
    ] {
        assert!(v["stats"].get(key).is_some(), "stats.{key}");
    }

    // Buckets: RFC 3339 starts, empty buckets included, truncation.
    let r = query(
        &s,
        k,
        json!({"from": "now-1h", "interval": "10m", "aggregations": [{"op": "count"}], "limit": 3}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["columns"], json!(["bucket", "count"]));
    assert_eq!(v["rows"].as_array().expect("rows").len(), 3);
    assert_eq!(v["stats"]["truncated"], true);
    let b = v["rows"][0][0].as_str().expect("bucket");
    assert!(b.ends_with('Z') && b.contains('T'), "{b}");

    // Validation errors name the member.
    for (body, field) in [
        (
            json!({"aggregations": [{"op": "median"}]}),
            "aggregations[0].op",
        ),
        (
            json!({"aggregations": [{"op": "p95"}]}),
            "aggregations[0].field",
        ),
        (json!({"group_by": ["colour"]}), "group_by[0]"),
        (json!({"group_by": ["tenant"]}), "group_by[0]"),
        (json!({"interval": "often"}), "interval"),
        (
            json!({"filter": {"latency_ms": {"gt": "slow"}}}),
            "filter.latency_ms.gt",
        ),
        (json!({"order_by": [{"field": "nope"}]}), "order_by[0]"),
    ] {
        let r = query(&s, k, body.clone()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "validation_failed"),
            "{body}"
        );
        assert_eq!(r.json()["error"]["details"][0]["field"], field, "{body}");
    }
    let r = s
        .req(
            "POST",
            "/api/v1/query",
            &[("x-api-key", k), ("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    let r = s
        .req(
            "POST",
            "/api/v1/query",
            &[("x-api-key", k), ("content-type", "text/plain")],
            "{}",
        )
        .await;
    assert_eq!(r.status, 415);
    s.stop().await;
}

/// The Apdex score of `events()` with threshold `t` ms, from the contract's
/// definition: errors (here, status 503) are frustrated.
fn apdex_of_events(t: f64) -> f64 {
    let (mut sat, mut tol) = (0.0, 0.0);
    for i in (0..60).filter(|i| i % 3 != 2) {
        let l = 10.0 * f64::from(i);
        sat += f64::from(u8::from(l <= t));
        tol += f64::from(u8::from(l > t && l <= 4.0 * t));
    }
    (sat + tol / 2.0) / 60.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apdex_scores_with_the_query_or_tenant_threshold() {
    let (s, t) = seeded("apdex").await;
    let k = &t.read_key;
    let score = |v: &Value, i: usize| v["rows"][0][i].as_f64().expect("score");
    let r = query(
        &s,
        k,
        json!({"from": "now-2h",
               "aggregations": [{"op": "apdex", "field": "latency_ms", "t": 100, "as": "a100"},
                                {"op": "apdex", "as": "default"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["columns"], json!(["a100", "default"]));
    assert!((score(&v, 0) - apdex_of_events(100.0)).abs() < 1e-9, "{v}");
    assert!((score(&v, 1) - apdex_of_events(300.0)).abs() < 1e-9, "{v}");

    // The tenant's own threshold replaces the default.
    let (st, _, body) = s
        .put(
            "/api/v1/auth/tenant/profile",
            Some(&t.token),
            &json!({"apdex_t_ms": 50}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["apdex_t_ms"], 50);
    let r = query(
        &s,
        k,
        json!({"from": "now-2h", "aggregations": [{"op": "apdex"}]}),
    )
    .await;
    assert!(
        (score(&r.json(), 0) - apdex_of_events(50.0)).abs() < 1e-9,
        "{}",
        r.text()
    );
    let (st, _, body) = s
        .put(
            "/api/v1/auth/tenant/profile",
            Some(&t.token),
            &json!({"apdex_t_ms": 0}),
        )
        .await;
    common::assert_error(st, &body, 400, "validation_failed");

    // No sample at all: null, not a division by zero.
    let r = query(
        &s,
        k,
        json!({"from": "now-2h", "filter": {"service": "nobody"},
               "aggregations": [{"op": "apdex", "t": 100}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json()["rows"].clone();
    assert!(
        rows.as_array()
            .is_some_and(|r| r.is_empty() || r[0][0].is_null()),
        "{rows}"
    );
    let r = query(&s, k, json!({"aggregations": [{"op": "apdex", "t": -1}]})).await;
    assert_eq!(
        r.json()["error"]["details"][0]["field"],
        "aggregations[0].t"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_ndjson_and_csv() {
    let (s, t) = seeded("export").await;
    let r = get(&s, &t.read_key, "/api/v1/export?format=ndjson&service=b").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("line is JSON"))
        .collect();
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().all(|e| e["service"] == "b"));

    let r = get(&s, &t.read_key, "/api/v1/export?format=csv").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .expect("ct")
            .starts_with("text/csv")
    );
    let text = r.text();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("id,timestamp,received_at,event_type")
    );
    assert_eq!(lines.count(), 60);

    let r = get(&s, &t.read_key, "/api/v1/export?format=xml").await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_of_many_pages() {
    let s = TestServer::start().await;
    let t = s.tenant("bigexport").await;
    let batch: Vec<Value> = (0..2500)
        .map(|i| json!({"event_type": "api_call", "timestamp": ago(10), "trace_id": format!("t{i}")}))
        .collect();
    s.post_batch(&t, batch).await;
    let r = get(&s, &t.read_key, "/api/v1/export").await;
    let ids: std::collections::HashSet<String> = r
        .text()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["trace_id"]
                .as_str()
                .expect("t")
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2500);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_scoped_to_the_credential() {
    let (s, t) = seeded("alpha").await;
    let other = s.tenant("beta").await;
    let paths = [
        "/api/v1/ingestion/events/search",
        "/api/v1/ingestion/events/statistics",
        "/api/v1/export",
    ];
    for p in paths {
        // Another tenant's read key sees none of alpha's events.
        let r = get(&s, &other.read_key, p).await;
        assert_eq!(r.status, 200, "{p}");
        let text = r.text();
        assert!(!text.contains("trace-1"), "{p} leaked: {text}");
        // An ingest-only key may not read; no credential is 401.
        assert_eq!(get(&s, &t.ingest_key, p).await.status, 403, "{p}");
        assert_eq!(s.req("GET", p, &[], "").await.status, 401, "{p}");
        // A user token of the tenant may read.
        let bearer = format!("Bearer {}", t.token);
        assert_eq!(
            s.req("GET", p, &[("authorization", &bearer)], "")
                .await
                .status,
            200,
            "{p}"
        );
    }
    // A tenant cannot name another tenant in a query.
    let r = query(&s, &other.read_key, json!({"tenants": [t.id]})).await;
    assert_eq!(r.status, 403);
    let r = query(&s, &other.read_key, json!({})).await;
    assert_eq!(r.json()["rows"][0][0], 0);
    assert_eq!(query(&s, &t.ingest_key, json!({})).await.status, 403);

    // The platform administrator may query across tenants.
    let admin = format!("Bearer {}", t.admin);
    let r = s
        .req(
            "POST",
            "/api/v1/query",
            &[
                ("authorization", &admin),
                ("content-type", "application/json"),
            ],
            json!({"group_by": ["tenant"], "aggregations": [{"op": "count", "as": "n"}]})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json()["rows"].clone();
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .any(|row| row[0] == t.id && row[1] == 60),
        "{rows}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_readable_alone_by_its_id() {
    let (s, t) = seeded("single").await;
    // Three events sharing one microsecond, so the id's seq must pick.
    let when = ago(600);
    let same: Vec<Value> = (0..3)
        .map(|i| json!({"timestamp": when, "event_type": "same", "user_id": format!("s-{i}")}))
        .collect();
    s.post_batch(&t, same).await;

    let page = get(
        &s,
        &t.read_key,
        "/api/v1/ingestion/events/search?limit=1000&from=now-2h",
    )
    .await
    .json();
    let listed = page["events"].as_array().expect("events").clone();
    assert_eq!(listed.len(), 63);
    for ev in &listed {
        let id = ev["id"].as_str().expect("id");
        let path = format!("/api/v1/ingestion/events/{id}");
        let r = get(&s, &t.read_key, &path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(&r.json(), ev);
        // A user token of the tenant reads it too.
        let bearer = format!("Bearer {}", t.token);
        let r = s.req("GET", &path, &[("authorization", &bearer)], "").await;
        assert_eq!(r.status, 200);
    }

    let id = listed[0]["id"].as_str().expect("id").to_owned();
    let other = s.tenant("other").await;
    let path = format!("/api/v1/ingestion/events/{id}");
    // Another tenant's credential does not find it; an ingest key may not read.
    let r = get(&s, &other.read_key, &path).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert_eq!(get(&s, &t.ingest_key, &path).await.status, 403);
    assert_eq!(s.req("GET", &path, &[], "").await.status, 401);
    // Unknown and malformed ids are 404, a wrong method 405.
    let mut unknown = id.clone();
    unknown.replace_range(31.., if id.ends_with('f') { "e" } else { "f" });
    for bad in [unknown.as_str(), "zz", "ffffffffffffffffffffffffffffffff"] {
        let r = get(&s, &t.read_key, &format!("/api/v1/ingestion/events/{bad}")).await;
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
    }
    let r = s
        .req("DELETE", &path, &[("x-api-key", &t.read_key)], "")
        .await;
    assert_eq!(r.status, 405);
    s.stop().await;
}
