//! `pulsestream demo [--listen ADDR]`: the appliance on a throw-away data
//! directory with a `demo` tenant and user, built-in traffic from the load
//! generator's model with an incident now and then (a burst of 5xx on one
//! endpoint), and an alert rule that fires on it, so a newcomer sees live
//! charts and a firing alert within a minute. The rule notifies a webhook
//! channel whose receiver runs inside the demo (`demo_inbox`) and prints
//! each notification, so nothing leaves the machine. Everything is set up through
//! the server's own HTTP API, as a user would.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pulsestream_storage::Micros;
use serde_json::{Value, json};

use crate::auth::random;
use crate::config::Config;
use crate::loadgen::{Model, Rng};

/// Where the demo listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The demo user's login (printed at start).
pub const DEMO_EMAIL: &str = "demo@pulsestream.local";
pub const DEMO_PASSWORD: &str = "demo-password";

/// Traffic: a batch this often, of this many events (about 100 events/s,
/// lively charts at negligible cost).
const TICK: Duration = Duration::from_millis(250);
const EVENTS_PER_TICK: usize = 25;

/// The incident: the first starts this soon (so an alert fires within a
/// minute of starting), then one every `INCIDENT_EVERY`, each lasting
/// `INCIDENT_FOR`, adding `INCIDENT_EVENTS_PER_TICK` failing calls.
const FIRST_INCIDENT_AFTER: Duration = Duration::from_secs(10);
const INCIDENT_EVERY: Duration = Duration::from_secs(180);
const INCIDENT_FOR: Duration = Duration::from_secs(45);
const INCIDENT_EVENTS_PER_TICK: usize = 8;
pub const INCIDENT_SERVICE: &str = "payments";
pub const INCIDENT_ENDPOINT: &str = "/api/v1/payments/{id}/capture";

/// Seed of the traffic model: the same routes every run.
const MODEL_SEED: u64 = 7;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Runs the demo until Ctrl-C; removes its data directory afterwards.
pub fn run(listen: Option<String>) -> anyhow::Result<()> {
    let listen: SocketAddr = listen
        .as_deref()
        .unwrap_or(DEFAULT_LISTEN)
        .parse()
        .map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
    let dir = std::env::temp_dir().join(format!(
        "pulsestream-demo-{}-{}",
        std::process::id(),
        random::base62(8)
    ));
    let mut config = Config::default();
    config.server.listen = listen;
    config.storage.data_dir = dir.clone();
    let admin_password = random::base62(20);
    config.auth.admin_password = Some(admin_password.clone());
    crate::http::log::init(config.log.format, "warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(
        config,
        admin_password,
        crate::server::shutdown_signal(),
        None,
    ));
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Starts the server, sets the demo up, generates traffic until `stop`.
pub async fn serve(
    config: Config,
    admin_password: String,
    stop: impl std::future::Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let state = std::sync::Arc::new(crate::app::AppState::open(config)?);
    let server = crate::server::Server::bind(state).await?;
    let addr = server.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let inbox = super::demo_inbox::start().await?;
    let setup = set_up(&client, &base, &admin_password, &inbox.url()).await;
    let traffic = match setup {
        Ok(ingest_key) => {
            println!("PulseStream demo running: open {base}/");
            println!("  log in as {DEMO_EMAIL} / {DEMO_PASSWORD}");
            println!(
                "  an incident (5xx on {INCIDENT_SERVICE} {INCIDENT_ENDPOINT}) starts in {} s and every {} min; its alert fires in the Alerts page",
                FIRST_INCIDENT_AFTER.as_secs(),
                INCIDENT_EVERY.as_secs() / 60
            );
            println!(
                "  its notifications go to the demo's own webhook inbox ({}) and are printed here",
                inbox.url()
            );
            println!("  Ctrl-C stops the demo and deletes its data");
            if let Some(r) = ready {
                let _ = r.send(addr);
            }
            Some(tokio::spawn(traffic(client, base, ingest_key)))
        }
        Err(e) => {
            eprintln!("demo setup failed: {e:#}");
            None
        }
    };
    if traffic.is_some() {
        stop.await;
    }
    if let Some(t) = traffic {
        t.abort();
    }
    let _ = tx.send(());
    server_task.await??;
    drop(inbox);
    Ok(())
}

async fn call(
    client: &HttpClient,
    base: &str,
    method: Method,
    path: &str,
    auth: Option<(&str, &str)>,
    body: String,
) -> anyhow::Result<(u16, Value)> {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some((name, value)) = auth {
        b = b.header(name, value);
    }
    let resp = client
        .request(b.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, v))
}

/// Name of the demo's channel (tests look it up by name).
pub const INBOX_CHANNEL: &str = "Demo inbox (local webhook)";

/// Creates the tenant, its user, the channel to `inbox_url` and the rule;
/// answers the ingest key.
async fn set_up(
    client: &HttpClient,
    base: &str,
    admin_password: &str,
    inbox_url: &str,
) -> anyhow::Result<String> {
    let (st, v) = call(
        client,
        base,
        Method::POST,
        "/api/v1/auth/login",
        None,
        json!({"email": crate::app::ADMIN_EMAIL, "password": admin_password}).to_string(),
    )
    .await?;
    anyhow::ensure!(st == 200, "administrator login: {st} {v}");
    let admin = v["access_token"].as_str().unwrap_or_default().to_owned();
    let bearer = format!("Bearer {admin}");
    let (st, v) = call(
        client,
        base,
        Method::POST,
        "/api/v1/auth/register/tenant",
        Some(("authorization", &bearer)),
        json!({"tenant_name": "demo", "owner_email": DEMO_EMAIL, "owner_password": DEMO_PASSWORD})
            .to_string(),
    )
    .await?;
    anyhow::ensure!(st == 201, "creating the demo tenant: {st} {v}");
    let key = v["api_key"].as_str().unwrap_or_default().to_owned();
    let owner = format!("Bearer {}", v["access_token"].as_str().unwrap_or_default());
    // A webhook to the demo's own inbox: nothing leaves the machine, and
    // the delivery shows in the UI and the terminal.
    let (st, v) = call(
        client,
        base,
        Method::POST,
        "/api/v1/alerting/channels",
        Some(("authorization", &owner)),
        json!({"name": INBOX_CHANNEL, "type": "webhook", "config": {"url": inbox_url}}).to_string(),
    )
    .await?;
    anyhow::ensure!(st == 201, "creating the demo channel: {st} {v}");
    let channel = v["id"].as_str().unwrap_or_default().to_owned();
    let (st, v) = call(
        client,
        base,
        Method::POST,
        "/api/v1/alerting/rules",
        Some(("authorization", &owner)),
        json!({
            "name": "Payment capture failing",
            "severity": "critical",
            "description": "More than 20% of payment captures answer 5xx",
            "condition": {"metric": "error_rate",
                          "filter": {"service": INCIDENT_SERVICE, "endpoint": INCIDENT_ENDPOINT},
                          "window": "1m", "op": ">", "threshold": 0.2, "min_events": 10},
            "for": "0s",
            "keep_firing_for": "30s",
            "channels": [channel],
            "labels": {"team": "payments"},
        })
        .to_string(),
    )
    .await?;
    anyhow::ensure!(st == 201, "creating the demo rule: {st} {v}");
    Ok(key)
}

/// Whether an incident is on `elapsed` after the start.
pub fn incident_on(elapsed: Duration) -> bool {
    let Some(since_first) = elapsed.checked_sub(FIRST_INCIDENT_AFTER) else {
        return false;
    };
    since_first.as_millis() % INCIDENT_EVERY.as_millis() < INCIDENT_FOR.as_millis()
}

/// One batch: model traffic, plus failing captures during an incident.
pub fn batch(model: &Model, rng: &mut Rng, now: Micros, incident: bool) -> String {
    let mut body = model.body(rng, EVENTS_PER_TICK, now, false);
    if incident && body.ends_with(']') {
        body.pop();
        for i in 0..INCIDENT_EVENTS_PER_TICK {
            let status = if i % 4 == 0 { 200 } else { 503 };
            let e = json!({
                "event_type": "api_call", "service": INCIDENT_SERVICE,
                "endpoint": INCIDENT_ENDPOINT, "method": "POST", "status_code": status,
                "latency_ms": 900.0 + 40.0 * i as f64,
                "region": "eu-west-1", "message": "upstream card processor timed out",
            });
            body.push(',');
            body.push_str(&e.to_string());
        }
        body.push(']');
    }
    body
}

async fn traffic(client: HttpClient, base: String, key: String) {
    let mut rng = Rng::new(MODEL_SEED);
    let model = Model::new(&mut rng);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let body = batch(
            &model,
            &mut rng,
            Micros::now(),
            incident_on(started.elapsed()),
        );
        let r = call(
            &client,
            &base,
            Method::POST,
            "/api/v1/ingestion/events/batch",
            Some(("x-api-key", &key)),
            body,
        )
        .await;
        if let Ok((st, v)) = &r
            && *st != 200
        {
            tracing::warn!(status = st, answer = %v, "demo traffic refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_start_early_and_repeat() {
        assert!(!incident_on(Duration::from_secs(5)));
        assert!(incident_on(FIRST_INCIDENT_AFTER));
        assert!(incident_on(
            FIRST_INCIDENT_AFTER + INCIDENT_FOR - Duration::from_secs(1)
        ));
        assert!(!incident_on(FIRST_INCIDENT_AFTER + INCIDENT_FOR));
        assert!(incident_on(FIRST_INCIDENT_AFTER + INCIDENT_EVERY));
    }

    #[test]
    fn an_incident_batch_is_valid_json_with_failing_captures() {
        let mut rng = Rng::new(1);
        let model = Model::new(&mut rng);
        let b = batch(&model, &mut rng, Micros::now(), true);
        let v: Value = serde_json::from_str(&b).expect("json");
        let evs = v.as_array().expect("array");
        assert_eq!(evs.len(), EVENTS_PER_TICK + INCIDENT_EVENTS_PER_TICK);
        let failing = evs
            .iter()
            .filter(|e| e["endpoint"] == INCIDENT_ENDPOINT && e["status_code"] == 503)
            .count();
        assert_eq!(failing, 6);
    }
}
