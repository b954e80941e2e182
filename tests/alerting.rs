//! Alerting over real HTTP with a webhook sink on 127.0.0.1: a burst of
//! 5xx fires one signed alert for its endpoint, acknowledgement records
//! who, recovery resolves and notifies, failed deliveries are retried and
//! logged, silences suppress, a restart keeps state without duplicates, and
//! baseline rules compare against yesterday's stored traffic.

mod common;

use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{TestServer, TestTenant, ago, owner_email};
use pulsestream::alerting::notify::hmac::signature;
use serde_json::{Value, json};

const SECRET: &str = "webhook-secret-for-tests";

fn api_call(secs_ago: i64, endpoint: &str, status: u16) -> Value {
    json!({"timestamp": ago(secs_ago), "event_type": "api_call", "service": "checkout",
           "endpoint": endpoint, "method": "POST", "status_code": status, "latency_ms": 12.5,
           "user_id": "u-1"})
}

/// Posts a batch and returns when it was acknowledged.
async fn ingest(s: &TestServer, t: &TestTenant, events: Vec<Value>) -> Instant {
    s.post_batch(t, events).await;
    Instant::now()
}

async fn webhook_channel(s: &TestServer, t: &TestTenant, url: &str) -> String {
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/channels",
            Some(&t.token),
            &json!({"name": "sink", "type": "webhook", "config": {"url": url, "secret": SECRET}}),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{v}");
    assert!(
        v["config"].get("secret").is_none(),
        "secret is never answered: {v}"
    );
    v["id"].as_str().expect("id").to_owned()
}

async fn error_rule(s: &TestServer, t: &TestTenant, channel: &str, window: &str) -> String {
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/rules",
            Some(&t.token),
            &json!({"name": "Checkout 5xx", "severity": "critical",
                    "condition": {"metric": "error_rate", "filter": {"service": "checkout"},
                                  "window": window, "op": ">", "threshold": 0.5, "min_events": 5},
                    "group_by": ["endpoint"], "for": "0s", "channels": [channel],
                    "labels": {"team": "payments"}, "runbook_url": "https://runbooks.example/5xx"}),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{v}");
    v["id"].as_str().expect("id").to_owned()
}

fn burst(endpoint: &str) -> Vec<Value> {
    let mut evs: Vec<Value> = (0..10).map(|_| api_call(0, endpoint, 503)).collect();
    evs.extend((0..10).map(|_| api_call(0, "/api/v1/list", 200)));
    evs
}

async fn alerts(s: &TestServer, t: &TestTenant, state: &str) -> Vec<Value> {
    let path = if state.is_empty() {
        "/api/v1/alerting/alerts".to_owned()
    } else {
        format!("/api/v1/alerting/alerts?state={state}")
    };
    let (st, _, v) = s.get(&path, Some(&t.token)).await;
    assert_eq!(st.as_u16(), 200, "{v}");
    v["alerts"].as_array().expect("alerts").clone()
}

/// The delivery log of an alert, once it has `n` entries (an attempt is
/// logged right after the sink answers, so it may trail the sink by a bit).
async fn log_of(s: &TestServer, t: &TestTenant, alert: &str, n: usize) -> Vec<Value> {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let (_, _, log) = s
            .get(
                &format!("/api/v1/alerting/notifications?alert_id={alert}"),
                Some(&t.token),
            )
            .await;
        let log = log["notifications"].as_array().expect("log").clone();
        if log.len() >= n || Instant::now() > end {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_retries(c: &mut pulsestream::config::Config) {
    c.alerting.retry_base = Duration::from_millis(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_fires_one_signed_alert_ack_records_who_recovery_resolves() {
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    let sink = Sink::start().await;
    let ch = webhook_channel(&s, &t, &sink.url).await;
    let rule = error_rule(&s, &t, &ch, "3s").await;

    let acked = ingest(&s, &t, burst("/api/v1/pay")).await;
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "exactly one notification");
    let latency = got[0].at.saturating_duration_since(acked);
    assert!(
        latency < Duration::from_secs(2),
        "ack → webhook took {latency:?}"
    );
    let sig = got[0].headers["x-pulsestream-signature"]
        .to_str()
        .expect("ascii");
    assert_eq!(sig, signature(SECRET, &got[0].body), "body is signed");
    let body = got[0].json();
    assert_eq!(body["version"], "1");
    assert_eq!(body["tenant"], t.id.as_str());
    let a = &body["alert"];
    assert_eq!(a["state"], "firing");
    assert_eq!(a["rule_id"], rule.as_str());
    assert_eq!(a["group"], json!({"endpoint": "/api/v1/pay"}));
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["labels"]["team"], "payments");
    assert_eq!(a["threshold"], 0.5);
    assert_eq!(a["value"], 1.0);
    assert!(
        body["dashboard_url"]
            .as_str()
            .is_some_and(|u| u.contains(a["id"].as_str().unwrap_or("?")))
    );

    // More errors on the same endpoint: still one alert, no second notice.
    ingest(&s, &t, burst("/api/v1/pay")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1);
    let firing = alerts(&s, &t, "firing").await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    let id = firing[0]["id"].as_str().expect("id").to_owned();

    let (st, _, v) = s
        .post(
            &format!("/api/v1/alerting/alerts/{id}/acknowledge"),
            Some(&t.token),
            &json!({}),
        )
        .await;
    assert_eq!(st.as_u16(), 200, "{v}");
    assert_eq!(v["state"], "acknowledged");
    assert_eq!(v["acknowledged_by"], owner_email("acme"));
    assert!(v["acknowledged_at"].is_string());

    // No more errors: after the 3 s window the alert resolves and notifies.
    let got = sink.wait_for(2, Duration::from_secs(8)).await;
    assert_eq!(got.len(), 2);
    let body = got[1].json();
    assert_eq!(body["alert"]["state"], "resolved");
    assert_eq!(body["alert"]["acknowledged_by"], owner_email("acme"));
    assert!(body["alert"]["resolved_at"].is_string());
    let (_, _, v) = s
        .get(&format!("/api/v1/alerting/alerts/{id}"), Some(&t.token))
        .await;
    assert_eq!(v["state"], "resolved");
    let states: Vec<&str> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["state"].as_str())
        .collect();
    assert_eq!(states, ["pending", "firing", "acknowledged", "resolved"]);

    let log = log_of(&s, &t, &id, 2).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|e| e["status"] == "delivered"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_fails_twice_is_retried_and_the_log_shows_three_attempts() {
    let s = TestServer::start_with(fast_retries).await;
    let t = s.tenant("retry").await;
    let sink = Sink::start().await;
    sink.fail_first(2);
    let ch = webhook_channel(&s, &t, &sink.url).await;
    error_rule(&s, &t, &ch, "1m").await;
    ingest(&s, &t, burst("/api/v1/pay")).await;
    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    // The same delivery each time (receivers can deduplicate on it).
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["x-pulsestream-delivery"].clone())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 3, "nothing after success");
    let id = alerts(&s, &t, "firing").await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let log = log_of(&s, &t, &id, 3).await;
    let statuses: Vec<&str> = log.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(
        statuses,
        ["delivered", "failed", "failed"],
        "newest first: {log:?}"
    );
    assert_eq!(log[2]["http_status"], 500);
    assert!(log[2]["error"].is_string());
    let (_, _, m) = s.get("/metrics", None).await;
    let m = m.as_str().expect("text").to_owned();
    assert!(
        m.contains("pulsestream_notification_failures_total 2"),
        "{m}"
    );
    assert!(m.contains("pulsestream_alert_evaluations_total"), "{m}");
    assert!(
        m.contains("pulsestream_alerts_active{state=\"firing\"} 1"),
        "{m}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_suppress_notifications_and_mark_the_alert() {
    let s = TestServer::start().await;
    let t = s.tenant("quiet").await;
    let sink = Sink::start().await;
    let ch = webhook_channel(&s, &t, &sink.url).await;
    error_rule(&s, &t, &ch, "1m").await;
    let (st, _, bad) = s
        .post(
            "/api/v1/alerting/silences",
            Some(&t.token),
            &json!({"matchers": [{"name": "endpoint", "value": "/api/v1/pay"}],
                    "ends_at": "yesterday"}),
        )
        .await;
    common::assert_error(st, &bad, 400, "validation_failed");
    assert_eq!(bad["error"]["details"][0]["field"], "ends_at");
    let (st, _, sil) = s
        .post(
            "/api/v1/alerting/silences",
            Some(&t.token),
            &json!({"matchers": [{"name": "endpoint", "value": "/api/v1/pay"}],
                    "ends_at": "now+1h", "comment": "maintenance"}),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{sil}");
    assert_eq!(sil["created_by"], owner_email("quiet"));
    ingest(&s, &t, burst("/api/v1/pay")).await;
    ingest(&s, &t, burst("/api/v1/other")).await;
    // The other endpoint is not silenced: exactly its notification arrives.
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_all = sink.all();
    assert_eq!(
        got_all.len(),
        1,
        "{:?}",
        got.iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    assert_eq!(
        got_all[0].json()["alert"]["group"]["endpoint"],
        "/api/v1/other"
    );
    let firing = alerts(&s, &t, "firing").await;
    assert_eq!(firing.len(), 2);
    let pay = firing
        .iter()
        .find(|a| a["group"]["endpoint"] == "/api/v1/pay")
        .expect("pay alert");
    assert_eq!(pay["silenced"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_rules_and_firing_alerts_and_sends_nothing_twice() {
    let sink = Sink::start().await;
    let s = TestServer::start().await;
    let t = s.tenant("durable").await;
    let ch = webhook_channel(&s, &t, &sink.url).await;
    let rule = error_rule(&s, &t, &ch, "2m").await;
    ingest(&s, &t, burst("/api/v1/pay")).await;
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    let before = alerts(&s, &t, "firing").await;
    assert_eq!(before.len(), 1);
    let dir = s.stop().await.expect("temp dir");

    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (_, _, owner) = s
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": owner_email("durable"),
               "password": common::OWNER_PASSWORD}),
        )
        .await;
    let t = TestTenant {
        token: owner["access_token"].as_str().expect("token").to_owned(),
        ..t
    };
    let (st, _, r) = s
        .get(&format!("/api/v1/alerting/rules/{rule}"), Some(&t.token))
        .await;
    assert_eq!(st.as_u16(), 200, "{r}");
    // Several evaluations later, the rebuilt windows still hold the burst:
    // the same alert is firing and nothing was sent again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = alerts(&s, &t, "firing").await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["id"], before[0]["id"]);
    assert_eq!(after[0]["history"], before[0]["history"]);
    assert_eq!(sink.count(), 1, "no duplicate notification after restart");
    let (_, _, rt) = s
        .get(
            "/api/v1/dashboard/metrics/real-time?window=5m&group_by=endpoint",
            Some(&t.token),
        )
        .await;
    let total: u64 = rt["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(|x| x["totals"]["count"].as_u64())
        .sum();
    assert_eq!(total, 20, "windows rebuilt from stored events: {rt}");
    s.stop().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_rule_fires_on_a_spike_but_not_on_a_level_that_was_normal_yesterday() {
    let s = TestServer::start().await;
    let t = s.tenant("baseline").await;
    let sink = Sink::start().await;
    let ch = webhook_channel(&s, &t, &sink.url).await;
    let day = 86_400;
    // Yesterday, in the window the rules will look at: 10 calls to
    // "quiet", 40 to "busy".
    let mut old = Vec::new();
    for i in 0..10 {
        old.push(json!({"timestamp": ago(day + 20 + i % 5), "event_type": "api_call", "service": "quiet", "status_code": 200}));
    }
    for i in 0..40 {
        old.push(json!({"timestamp": ago(day + 20 + i % 5), "event_type": "api_call", "service": "busy", "status_code": 200}));
    }
    ingest(&s, &t, old).await;
    for svc in ["quiet", "busy", "never"] {
        let (st, _, v) = s
            .post(
                "/api/v1/alerting/rules",
                Some(&t.token),
                &json!({"name": format!("{svc} spike"), "channels": [ch],
                        "condition": {"metric": "count", "filter": {"service": svc}, "window": "1m",
                                      "op": ">", "threshold": 5,
                                      "baseline": {"offset": "1d", "factor": 3.0}}}),
            )
            .await;
        assert_eq!(st.as_u16(), 201, "{v}");
    }
    // Today 50 calls each: 50 > 3 × 10 (spike) but not > 3 × 40 (normal),
    // and "never" has no baseline data: false, not a spike.
    let mut now = Vec::new();
    for svc in ["quiet", "busy", "never"] {
        now.extend((0..50).map(|_| json!({"timestamp": ago(0), "event_type": "api_call", "service": svc, "status_code": 200})));
    }
    ingest(&s, &t, now).await;
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.count(),
        1,
        "{:?}",
        got.iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    let a = &got[0].json()["alert"];
    assert_eq!(a["rule_name"], "quiet spike");
    assert_eq!(a["baseline_value"], 10.0);
    assert_eq!(a["value"], 50.0);
    let all = alerts(&s, &t, "").await;
    assert_eq!(all.len(), 1, "{all:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_channels_and_silences_get_field_errors() {
    let s = TestServer::start().await;
    let t = s.tenant("valid").await;
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/rules",
            Some(&t.token),
            &json!({"name": "", "condition": {"metric": "p42", "window": "3h", "op": "~"}}),
        )
        .await;
    common::assert_error(st, &v, 400, "validation_failed");
    let fields: Vec<&str> = v["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    for f in [
        "name",
        "condition.metric",
        "condition.window",
        "condition.op",
        "condition.threshold",
    ] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/rules",
            Some(&t.token),
            &json!({"name": "x", "channels": ["ch_nope"],
                    "condition": {"metric": "no_data", "window": "5m"}}),
        )
        .await;
    common::assert_error(st, &v, 422, "validation_failed");
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/channels",
            Some(&t.token),
            &json!({"name": "x", "type": "webhook", "config": {"url": "file:///etc/passwd"}}),
        )
        .await;
    common::assert_error(st, &v, 400, "validation_failed");
    assert_eq!(v["error"]["details"][0]["field"], "config.url");
    let r = s
        .req(
            "POST",
            "/api/v1/alerting/rules",
            &[
                ("authorization", &format!("Bearer {}", t.token)),
                ("content-type", "application/json"),
            ],
            "{not json",
        )
        .await;
    assert_eq!(r.status, 400);
    let (st, _, v) = s
        .get("/api/v1/alerting/alerts?state=sleeping", Some(&t.token))
        .await;
    common::assert_error(st, &v, 400, "validation_failed");
    let (st, _, v) = s
        .get("/api/v1/alerting/alerts/al_nope", Some(&t.token))
        .await;
    common::assert_error(st, &v, 404, "not_found");
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/alerts/al_nope/acknowledge",
            Some(&t.token),
            &json!({}),
        )
        .await;
    common::assert_error(st, &v, 404, "not_found");
    // A viewer reads but cannot write.
    let (_, viewer) = s.create_user(&t.token, "viewer@valid.test", "viewer").await;
    let (st, _, _) = s.get("/api/v1/alerting/rules", Some(&viewer)).await;
    assert_eq!(st.as_u16(), 200);
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/rules",
            Some(&viewer),
            &json!({"name": "x"}),
        )
        .await;
    common::assert_error(st, &v, 403, "forbidden");
    let (st, _, v) = s.delete("/api/v1/alerting/rules", Some(&t.token)).await;
    common::assert_error(st, &v, 405, "method_not_allowed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_notifications_answer_the_result_and_are_logged() {
    let s = TestServer::start().await;
    let t = s.tenant("probe").await;
    let sink = Sink::start().await;
    let ch = webhook_channel(&s, &t, &sink.url).await;
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/notifications/test",
            Some(&t.token),
            &json!({"channel_id": ch}),
        )
        .await;
    assert_eq!(st.as_u16(), 200, "{v}");
    assert_eq!(v["delivered"], true);
    assert_eq!(v["http_status"], 200);
    assert_eq!(sink.count(), 1);
    let body = sink.all()[0].json();
    assert_eq!(body["test"], true);
    // A dead endpoint: answered as a failure, not an error of ours.
    let (_, _, dead) = s
        .post(
            "/api/v1/alerting/channels",
            Some(&t.token),
            &json!({"name": "dead", "type": "webhook", "config": {"url": "http://127.0.0.1:1/x"}}),
        )
        .await;
    let (st, _, v) = s
        .post(
            "/api/v1/alerting/notifications/test",
            Some(&t.token),
            &json!({"channel_id": dead["id"]}),
        )
        .await;
    assert_eq!(st.as_u16(), 200, "{v}");
    assert_eq!(v["delivered"], false);
    assert!(v["error"].is_string());
    let (_, _, log) = s
        .get("/api/v1/alerting/notifications", Some(&t.token))
        .await;
    assert_eq!(
        log["notifications"].as_array().map(Vec::len),
        Some(2),
        "{log}"
    );
    let (_, _, summary) = s
        .get("/api/v1/dashboard/alerts/summary", Some(&t.token))
        .await;
    assert_eq!(summary["active"]["total"], 0, "{summary}");
    assert_eq!(summary["hourly_trend"].as_array().map(Vec::len), Some(24));
    s.stop().await;
}

/// ack of the threshold-crossing batch → webhook received, `for: 0s`,
/// over 30 alerts (one per endpoint). Prints the distribution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_to_webhook_latency_is_well_under_a_second() {
    let s = TestServer::start().await;
    let t = s.tenant("latency").await;
    let sink = Sink::start().await;
    let ch = webhook_channel(&s, &t, &sink.url).await;
    error_rule(&s, &t, &ch, "1m").await;
    let mut lat = Vec::new();
    for i in 0..30 {
        let ep = format!("/api/v1/e{i}");
        let evs: Vec<Value> = (0..6).map(|_| api_call(0, &ep, 500)).collect();
        let acked = ingest(&s, &t, evs).await;
        let got = sink.wait_for(i + 1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), i + 1);
        lat.push(got[i].at.saturating_duration_since(acked));
    }
    lat.sort();
    let median = lat[lat.len() / 2];
    let p99 = lat[lat.len() - 1];
    println!(
        "ack → webhook over {} alerts: median {median:?}, max {p99:?}",
        lat.len()
    );
    assert!(median <= Duration::from_millis(300), "median {median:?}");
    assert!(p99 <= Duration::from_secs(1), "max {p99:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_channels_deliver_firing_and_resolved_over_smtp() {
    let smtp = common::smtp_sink::SmtpSink::start().await;
    let port = smtp.port;
    let s = TestServer::start_with(move |c| {
        c.smtp.host = Some("127.0.0.1".into());
        c.smtp.port = port;
        c.smtp.tls = "none".into();
        c.smtp.from = "alerts@pulsestream.test".into();
    })
    .await;
    let t = s.tenant("mail").await;
    let (st, _, ch) = s
        .post(
            "/api/v1/alerting/channels",
            Some(&t.token),
            &json!({"name": "oncall", "type": "email", "config": {"to": ["oncall@mail.test"]}}),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{ch}");
    let ch = ch["id"].as_str().expect("id").to_owned();
    error_rule(&s, &t, &ch, "2s").await;
    ingest(&s, &t, burst("/api/v1/pay")).await;
    let mails = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt, ["oncall@mail.test"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: [FIRING] Checkout 5xx (endpoint=/api/v1/pay)"),
        "{}",
        mails[0].data
    );
    let mails = smtp.wait_for(2, Duration::from_secs(8)).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1].data.contains("[RESOLVED]"), "{}", mails[1].data);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_channels_get_the_incoming_webhook_message_format() {
    let s = TestServer::start().await;
    let t = s.tenant("chat").await;
    let sink = Sink::start().await;
    let (st, _, ch) = s
        .post(
            "/api/v1/alerting/channels",
            Some(&t.token),
            &json!({"name": "team", "type": "slack", "config": {"url": sink.url}}),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{ch}");
    let ch = ch["id"].as_str().expect("id").to_owned();
    error_rule(&s, &t, &ch, "1m").await;
    ingest(&s, &t, burst("/api/v1/pay")).await;
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let m = got[0].json();
    assert_eq!(m["text"], "[FIRING] Checkout 5xx (endpoint=/api/v1/pay)");
    assert_eq!(m["attachments"][0]["color"], "#d00000");
    assert!(got[0].headers.get("x-pulsestream-signature").is_none());
    s.stop().await;
}
