//! The dashboard WebSocket over real sockets (contract section 6 and 10):
//! refused credentials never get an upgrade; subscribe, filters, batching,
//! heartbeat and `get_data`; an event reaches a subscriber within a second
//! of its acknowledgement; a client that does not read gets `lagged`;
//! connection caps, `/metrics` and the connection statistics; a broadcast
//! reaches a thousand clients.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A wait for a message long enough for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(10);

fn ws_url(s: &TestServer, path: &str) -> String {
    format!("ws://{}{path}", s.addr)
}

async fn connect(s: &TestServer, token: &str) -> Ws {
    let url = ws_url(s, &format!("/api/v1/dashboard/ws?token={token}"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert_eq!(resp.status(), 101);
    let w = next_json(&mut ws).await;
    assert_eq!(w["type"], "welcome", "{w}");
    ws
}

/// The next JSON text message (pings and pongs skipped).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

/// The next message of `kind`, skipping others (metrics arrive every second).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

async fn subscribe(ws: &mut Ws, channels: Value, filter: Value) {
    send(
        ws,
        json!({"type": "subscribe", "channels": channels, "filter": filter}),
    )
    .await;
    let v = next_of(ws, "subscribed").await;
    assert_eq!(v["channels"], channels, "{v}");
}

fn api_call(service: &str, status: u16, message: &str) -> Value {
    json!({"event_type": "api_call", "service": service, "endpoint": "/pay", "method": "POST",
           "status_code": status, "latency_ms": 12.5, "message": message})
}

/// The status of an upgrade attempt with these headers (101 or the refusal).
async fn try_upgrade(s: &TestServer, path: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut req = ws_url(s, path).into_client_request().expect("request");
    for (k, v) in extra {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, r)) => (r.status().as_u16(), Value::Null),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            (r.status().as_u16(), body)
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn refused_credentials_get_no_upgrade() {
    let s = TestServer::start().await;
    let a = s.tenant("ws-a").await;
    let b = s.tenant("ws-b").await;
    let (st, body) = try_upgrade(&s, "/api/v1/dashboard/ws", &[]).await;
    assert_eq!(st, 401, "{body}");
    // The refusal carries the contract's error body (with a length, so
    // the WebSocket client, which does not decode chunked bodies, has it).
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let (st, body) = try_upgrade(&s, "/api/v1/dashboard/ws?token=not-a-jwt", &[]).await;
    assert_eq!(st, 401);
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    // An API key is not a dashboard session.
    let (st, _) = try_upgrade(
        &s,
        &format!("/api/v1/dashboard/ws?token={}", a.read_key),
        &[],
    )
    .await;
    assert_eq!(st, 401);
    // Another tenant's path.
    let (st, body) = try_upgrade(
        &s,
        &format!("/api/v1/dashboard/ws/{}?token={}", b.id, a.token),
        &[],
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    // The own tenant's path, and the token in the protocol header.
    let (st, _) = try_upgrade(
        &s,
        &format!("/api/v1/dashboard/ws/{}?token={}", a.id, a.token),
        &[],
    )
    .await;
    assert_eq!(st, 101);
    let proto = format!("bearer, {}", a.token);
    let (st, _) = try_upgrade(
        &s,
        "/api/v1/dashboard/ws",
        &[("sec-websocket-protocol", &proto)],
    )
    .await;
    assert_eq!(st, 101);
    // Without the upgrade headers, a plain GET is refused too.
    let (st, _, _) = s
        .get(&format!("/api/v1/dashboard/ws?token={}", a.token), None)
        .await;
    assert_eq!(st.as_u16(), 426);
    s.stop().await;
}

#[tokio::test]
async fn heartbeat_get_data_and_bad_messages() {
    let s = TestServer::start().await;
    let t = s.tenant("ws-hb").await;
    s.post_batch(
        &t,
        vec![api_call("api", 200, "ok"), api_call("api", 503, "down")],
    )
    .await;
    let mut ws = connect(&s, &t.token).await;
    send(&mut ws, json!({"type": "heartbeat"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "heartbeat_ack");
    send(&mut ws, json!({"type": "get_data", "what": "overview"})).await;
    let d = next_of(&mut ws, "data").await;
    assert_eq!(d["what"], "overview");
    assert_eq!(d["data"]["totals"]["events"], 2, "{d}");
    assert_eq!(d["data"]["status_codes"]["5xx"], 1, "{d}");
    send(&mut ws, json!({"type": "nonsense"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "error");
    ws.send(Message::text("{not json")).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "error");
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["events"], "filter": {"status_code": "abc"}}),
    )
    .await;
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("status_code"),
        "{e}"
    );
    // Still usable after errors.
    send(&mut ws, json!({"type": "heartbeat"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "heartbeat_ack");
    s.stop().await;
}

#[tokio::test]
async fn filters_batching_and_push_within_a_second() {
    let s = TestServer::start().await;
    let t = s.tenant("ws-filter").await;
    let mut all = connect(&s, &t.token).await;
    subscribe(&mut all, json!(["events"]), json!({})).await;
    let mut errors = connect(&s, &t.token).await;
    subscribe(
        &mut errors,
        json!(["events"]),
        json!({"service": "checkout", "status_code": "5xx"}),
    )
    .await;

    // Twenty acknowledged requests in quick succession arrive batched.
    let started = Instant::now();
    for i in 0..20 {
        let ev = if i % 5 == 0 {
            api_call("checkout", 502, &format!("e{i}"))
        } else {
            api_call("search", 200, &format!("e{i}"))
        };
        s.post_batch(&t, vec![ev]).await;
    }
    let acked = Instant::now();
    let mut got = Vec::new();
    let mut messages = 0;
    let mut first_after_ack = None;
    while got.len() < 20 {
        let m = next_of(&mut all, "events").await;
        if first_after_ack.is_none() {
            first_after_ack = Some(acked.elapsed());
        }
        messages += 1;
        for e in m["events"].as_array().expect("events") {
            got.push(e["message"].as_str().expect("message").to_owned());
        }
    }
    got.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    // At most one batch per 250 ms window that passed, plus the last.
    let windows = (started.elapsed().as_millis() / 250) as usize + 1;
    assert!(
        messages <= windows,
        "{messages} messages in {windows} windows"
    );
    assert!(
        messages < 20,
        "not batched: {messages} messages for 20 requests"
    );

    let mut filtered = Vec::new();
    while filtered.len() < 4 {
        let m = next_of(&mut errors, "events").await;
        for e in m["events"].as_array().expect("events") {
            assert_eq!(e["service"], "checkout", "{e}");
            assert_eq!(e["status_code"], 502, "{e}");
            filtered.push(e.clone());
        }
    }
    assert_eq!(filtered.len(), 4);

    // One event, timed from its acknowledgement.
    s.post_batch(&t, vec![api_call("search", 200, "timed")])
        .await;
    let acked = Instant::now();
    let m = next_of(&mut all, "events").await;
    assert_eq!(m["events"][0]["message"], "timed", "{m}");
    let delay = acked.elapsed();
    assert!(
        delay < Duration::from_secs(1),
        "pushed {delay:?} after the ack"
    );

    // Unsubscribed clients get no more events.
    send(
        &mut errors,
        json!({"type": "unsubscribe", "channels": ["events"]}),
    )
    .await;
    let v = next_of(&mut errors, "unsubscribed").await;
    assert_eq!(v["channels"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_gets_lagged() {
    const ROUNDS: u64 = 60;
    const PER_ROUND: u64 = 150;
    const TOTAL: u64 = ROUNDS * PER_ROUND;
    let s = TestServer::start().await;
    let t = s.tenant("ws-slow").await;
    // A small receive buffer so the server's writes back up quickly.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = sock.connect(s.addr).await.expect("connect");
    let url = ws_url(&s, &format!("/api/v1/dashboard/ws?token={}", t.token));
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("handshake");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    // With `metrics` too, a `lagged` keeps arriving after the flood (before
    // each second's figures), so the slow client's account can be closed.
    subscribe(&mut ws, json!(["events", "metrics"]), json!({})).await;

    // A fast reader beside it must not be held back: every event reaches
    // it or is accounted for in a `lagged` (a flood is pushed a few hundred
    // events per second; metrics every second carry a late count).
    let mut fast = connect(&s, &t.token).await;
    subscribe(&mut fast, json!(["events", "metrics"]), json!({})).await;
    let counter = tokio::spawn(async move {
        let (mut received, mut dropped) = (0u64, 0u64);
        while received + dropped < TOTAL {
            let v = next_json(&mut fast).await;
            match v["type"].as_str() {
                Some("events") => received += v["events"].as_array().map_or(0, Vec::len) as u64,
                Some("lagged") => dropped += v["dropped"].as_u64().unwrap_or(0),
                _ => {}
            }
        }
        (received, dropped)
    });

    // Large events over many flushes: more than the socket buffers and the
    // slow client's queue can hold, so its queue fills and drops.
    let pad = "x".repeat(7_900);
    for round in 0..ROUNDS {
        let evs = (0..PER_ROUND)
            .map(|i| api_call("api", 200, &format!("{round}-{i}-{pad}")))
            .collect();
        s.post_batch(&t, evs).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let (fast_received, fast_dropped) = tokio::time::timeout(Duration::from_secs(60), counter)
        .await
        .expect("the fast client keeps up")
        .expect("task");
    assert_eq!(fast_received + fast_dropped, TOTAL);
    assert!(fast_received > 0);

    // Now read: somewhere in the backlog the server says what it dropped.
    let mut dropped = None;
    let mut received = 0u64;
    while dropped.is_none() {
        let v = next_json(&mut ws).await;
        match v["type"].as_str() {
            Some("lagged") => dropped = v["dropped"].as_u64(),
            Some("events") => received += v["events"].as_array().map_or(0, Vec::len) as u64,
            _ => {}
        }
    }
    let dropped = dropped.expect("count");
    assert!(dropped > 0);
    assert!(received + dropped <= TOTAL, "{received} + {dropped}");
    // Every event is accounted for in the end, and the client that did
    // not read got fewer than the one that did: its full queue dropped
    // messages the fast one received (the per-flush cap alone would have
    // treated them alike).
    let mut total_dropped = dropped;
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while received + total_dropped < TOTAL {
            let v = next_json(&mut ws).await;
            match v["type"].as_str() {
                Some("lagged") => total_dropped += v["dropped"].as_u64().unwrap_or(0),
                Some("events") => received += v["events"].as_array().map_or(0, Vec::len) as u64,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{received} + {total_dropped} of {TOTAL} accounted for"
    );
    assert_eq!(received + total_dropped, TOTAL);
    assert!(
        received < fast_received,
        "the slow client received {received}, the fast one {fast_received}"
    );
    s.stop().await;
}

#[tokio::test]
async fn caps_metrics_and_connection_stats() {
    let s = TestServer::start_with(|c| {
        c.live.max_connections_per_tenant = 2;
        c.live.max_connections = 3;
    })
    .await;
    let a = s.tenant("ws-cap-a").await;
    let b = s.tenant("ws-cap-b").await;
    let mut a1 = connect(&s, &a.token).await;
    subscribe(&mut a1, json!(["events", "metrics"]), json!({})).await;
    let _a2 = connect(&s, &a.token).await;
    let (st, body) = try_upgrade(&s, &format!("/api/v1/dashboard/ws?token={}", a.token), &[]).await;
    assert_eq!(st, 503, "{body}");
    let _b1 = connect(&s, &b.token).await;
    let (st, _) = try_upgrade(&s, &format!("/api/v1/dashboard/ws?token={}", b.token), &[]).await;
    assert_eq!(st, 503, "the global cap");

    let (_, _, m) = s.get("/metrics", None).await;
    let text = m.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("pulsestream_websocket_connections 3"),
        "{text}"
    );

    let (st, _, v) = s
        .get("/api/v1/dashboard/connections/stats", Some(&a.token))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["tenants"][0]["tenant_id"], a.id.as_str());
    assert_eq!(v["tenants"][0]["subscriptions"]["events"], 1, "{v}");
    let (_, _, v) = s
        .get("/api/v1/dashboard/connections/stats", Some(&a.admin))
        .await;
    assert_eq!(v["total"], 3, "{v}");
    assert_eq!(v["tenants"].as_array().map(Vec::len), Some(2), "{v}");

    // Metrics every second, with the figures of the second.
    s.post_batch(&a, vec![api_call("api", 500, "m")]).await;
    let mut seen = 0;
    for _ in 0..5 {
        let m = next_of(&mut a1, "metrics").await;
        seen += m["count"].as_u64().unwrap_or(0);
        if seen > 0 {
            assert_eq!(m["errors"], 1, "{m}");
            break;
        }
    }
    assert_eq!(seen, 1);

    // A closed connection frees its slot.
    a1.close(None).await.expect("close");
    drop(a1);
    let deadline = Instant::now() + WAIT;
    loop {
        let (st, _) =
            try_upgrade(&s, &format!("/api/v1/dashboard/ws?token={}", a.token), &[]).await;
        if st == 101 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_receive_a_broadcast() {
    const CLIENTS: usize = 1000;
    let s = TestServer::start().await;
    let t = s.tenant("ws-many").await;
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(CLIENTS);
    for _ in 0..CLIENTS {
        let url = ws_url(&s, &format!("/api/v1/dashboard/ws?token={}", t.token));
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("connect");
            assert_eq!(next_json(&mut ws).await["type"], "welcome");
            subscribe(&mut ws, json!(["events"]), json!({})).await;
            let _ = ready.send(()).await;
            let m = tokio::time::timeout(Duration::from_secs(60), next_of(&mut ws, "events"))
                .await
                .expect("broadcast in time");
            m["events"][0]["message"].as_str().map(str::to_owned)
        }));
    }
    for _ in 0..CLIENTS {
        tokio::time::timeout(Duration::from_secs(120), ready_rx.recv())
            .await
            .expect("all subscribed");
    }
    s.post_batch(&t, vec![api_call("api", 200, "to-everyone")])
        .await;
    for task in tasks {
        assert_eq!(task.await.expect("task").as_deref(), Some("to-everyone"));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_changes_are_pushed_and_counted_in_the_overview() {
    let s = TestServer::start().await;
    let t = s.tenant("ws-alert").await;
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/rules",
            Some(&t.token),
            &json!({"name": "Pay 5xx", "severity": "critical",
                    "condition": {"metric": "error_rate", "filter": {"service": "checkout"},
                                  "window": "1m", "op": ">", "threshold": 0.5, "min_events": 5},
                    "for": "0s", "channels": []}),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{v}");
    let mut ws = connect(&s, &t.token).await;
    subscribe(&mut ws, json!(["alerts"]), json!({})).await;
    let (_, _, o) = s.get("/api/v1/dashboard/overview", Some(&t.token)).await;
    assert_eq!(o["active_alerts"]["total"], 0, "{o}");

    s.post_batch(
        &t,
        (0..10).map(|_| api_call("checkout", 503, "boom")).collect(),
    )
    .await;
    let a = next_of(&mut ws, "alert").await;
    assert_eq!(a["alert"]["state"], "firing", "{a}");
    assert_eq!(a["alert"]["severity"], "critical", "{a}");

    let (_, _, o) = s.get("/api/v1/dashboard/overview", Some(&t.token)).await;
    assert_eq!(o["active_alerts"]["critical"], 1, "{o}");
    assert_eq!(o["active_alerts"]["warning"], 0, "{o}");
    assert_eq!(o["active_alerts"]["total"], 1, "{o}");
    s.stop().await;
}

#[tokio::test]
async fn widgets_answer_their_part_of_the_overview() {
    let s = TestServer::start().await;
    let t = s.tenant("ws-widgets").await;
    s.post_batch(
        &t,
        vec![api_call("api", 200, "a"), api_call("api", 503, "b")],
    )
    .await;
    let (st, _, v) = s
        .put(
            "/api/v1/dashboard/config",
            Some(&t.token),
            &json!({"widgets": [{"id": "err", "type": "error_rate", "window": "15m"},
                                {"id": "codes", "type": "status_codes"},
                                {"id": "odd", "type": "pie-of-the-day"}]}),
        )
        .await;
    assert_eq!(st.as_u16(), 200, "{v}");
    let (st, _, v) = s.get("/api/v1/dashboard/widgets/err", Some(&t.token)).await;
    assert_eq!(st.as_u16(), 200, "{v}");
    assert_eq!(v["widget_id"], "err");
    assert_eq!(v["window"], "15m");
    assert_eq!(v["data"], 0.5, "{v}");
    let (_, _, v) = s
        .get("/api/v1/dashboard/widgets/codes", Some(&t.token))
        .await;
    assert_eq!(v["data"]["5xx"], 1, "{v}");
    assert_eq!(v["data"]["2xx"], 1, "{v}");
    let (st, _, v) = s
        .get("/api/v1/dashboard/widgets/nope", Some(&t.token))
        .await;
    assert_eq!(st.as_u16(), 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
    let (st, _, v) = s.get("/api/v1/dashboard/widgets/odd", Some(&t.token)).await;
    assert_eq!(st.as_u16(), 400, "{v}");
    let (st, _, _) = s.get("/api/v1/dashboard/widgets/err", None).await;
    assert_eq!(st.as_u16(), 401);
    s.stop().await;
}
