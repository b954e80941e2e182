//! Server-level crash test: `pulsestream serve` is killed with SIGKILL while
//! several tenants ingest over HTTP; it is started again on the same data
//! directory, many times. At the end every acknowledged event must be
//! stored exactly once, and what is stored beyond that can only be whole
//! batches that were in flight at a kill.
//!
//! 24 rounds in the normal run; `PULSESTREAM_SERVER_CRASH_ROUNDS=200 cargo
//! test --test server_crash -- --nocapture` is the long mode.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ADMIN_PASSWORD;
use pulsestream_storage::column::{Column, ColumnKey};
use pulsestream_storage::query::TimeRange;
use pulsestream_storage::{Micros, Store, StoreConfig, TenantId};

const ROUNDS: usize = 24;
const ENV_ROUNDS: &str = "PULSESTREAM_SERVER_CRASH_ROUNDS";
const TENANTS: usize = 5;
/// Concurrent senders: at most this many batches are in flight at a kill.
const SENDERS: usize = 4;
const BATCH: usize = 40;
/// How long a start may take before the test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the server and returns it; the caller kills and waits for it.
#[allow(clippy::zombie_processes)] // the child is handed to the caller
fn serve(dir: &Path) -> (Child, SocketAddr) {
    let addr_file = dir.join("server-address");
    let _ = std::fs::remove_file(&addr_file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulsestream"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("PULSESTREAM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pulsestream serve");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&addr_file)
            && let Ok(addr) = text.trim().parse()
        {
            return (child, addr);
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A batch whose events carry `b<tag>.<i>` as message, `i` also as latency.
fn body(tag: &str) -> String {
    let now = Micros::now().0 / 1000;
    (0..BATCH)
        .map(|i| {
            format!(
                "{{\"timestamp\":{},\"event_type\":\"api_call\",\"latency_ms\":{i},\"message\":\"b{tag}.{i}\"}}\n",
                now - i as i64
            )
        })
        .collect()
}

/// Sends batches until `stop`; returns the tags the server acknowledged.
async fn sender(
    addr: SocketAddr,
    keys: Arc<Vec<String>>,
    round: usize,
    id: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(usize, String)> {
    let mut acked = Vec::new();
    let client = common::client();
    let base = format!("http://{addr}");
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let t = (id + n * 7) % TENANTS;
        let tag = format!("{round}.{id}.{n}");
        let auth = format!("Bearer {}", keys[t]);
        let sent = common::send(
            &client,
            &base,
            hyper::Method::POST,
            "/api/v1/ingestion/events/batch",
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/x-ndjson"),
            ],
            Bytes::from(body(&tag)),
        )
        .await;
        match sent {
            Ok((status, _, b)) if status == 200 => {
                let v: serde_json::Value = serde_json::from_slice(&b).expect("json answer");
                assert_eq!(v["accepted"], BATCH, "{v}");
                acked.push((t, tag));
            }
            Ok((status, _, b)) => assert_eq!(
                status,
                503,
                "unexpected answer {}",
                String::from_utf8_lossy(&b)
            ),
            // The server was killed: this batch may or may not be stored.
            Err(_) => break,
        }
    }
    acked
}

/// Every stored (tenant, message) with how often it is stored.
fn stored(dir: &Path) -> HashMap<(usize, String), u32> {
    let store = Store::open({
        let mut c = StoreConfig::new(dir);
        c.background = false;
        c
    })
    .expect("open the store offline");
    let mut out = HashMap::new();
    let range = TimeRange {
        from: Micros::MIN,
        to: Micros::MAX,
    };
    for t in 0..TENANTS {
        let Some(tenant) = tenant_id(dir, t) else {
            continue;
        };
        for u in store.units(&[tenant], range) {
            for b in 0..u.block_count() {
                let set = u.read(b, &[ColumnKey::Message]).expect("read");
                let Some(Column::Str(m)) = set.get(&ColumnKey::Message) else {
                    panic!("no message column");
                };
                for i in 0..set.rows {
                    let msg = m.get(i).expect("message").to_owned();
                    *out.entry((t, msg)).or_default() += 1;
                }
            }
        }
    }
    out
}

/// Tenant ids in creation order, kept by the test in `<dir>/../tenants`.
fn tenant_id(dir: &Path, t: usize) -> Option<TenantId> {
    let ids = std::fs::read_to_string(dir.with_extension("tenants")).ok()?;
    TenantId::new(ids.lines().nth(t)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_event_survives_kill_9_exactly_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("data");
    let rounds = std::env::var(ENV_ROUNDS)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let start_seed = seed;
    let mut keys: Option<Arc<Vec<String>>> = None;
    let mut acked: Vec<(usize, String)> = Vec::new();
    for round in 0..rounds {
        let (mut child, addr) = serve(&dir);
        let k = match &keys {
            Some(k) => k.clone(),
            None => {
                let url = format!("http://{addr}");
                let made = pulsestream::loadgen_tenants::create_tenants(
                    &url,
                    common::ADMIN_EMAIL,
                    ADMIN_PASSWORD,
                    TENANTS,
                    "crash",
                )
                .await
                .expect("create tenants");
                // Tenant ids, for reading the store offline at the end.
                let admin = common::request(
                    addr,
                    "POST",
                    "/api/v1/auth/login",
                    &[("content-type", "application/json")],
                    Bytes::from(format!(
                        "{{\"email\":\"{}\",\"password\":\"{ADMIN_PASSWORD}\"}}",
                        common::ADMIN_EMAIL
                    )),
                )
                .await
                .json();
                let token = admin["access_token"].as_str().expect("token").to_owned();
                let list = common::request(
                    addr,
                    "GET",
                    "/api/v1/admin/tenants?limit=1000",
                    &[("authorization", &format!("Bearer {token}"))],
                    Bytes::new(),
                )
                .await
                .json();
                let mut ids: Vec<(String, String)> = list["tenants"]
                    .as_array()
                    .expect("tenants")
                    .iter()
                    .map(|t| {
                        (
                            t["name"].as_str().unwrap_or("").to_owned(),
                            t["id"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .filter(|(n, _)| n.starts_with("crash-"))
                    .collect();
                ids.sort();
                assert_eq!(ids.len(), TENANTS);
                let text: String = ids.iter().map(|(_, id)| format!("{id}\n")).collect();
                std::fs::write(dir.with_extension("tenants"), text).expect("keep ids");
                let k = Arc::new(made);
                keys = Some(k.clone());
                k
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..SENDERS)
            .map(|id| tokio::spawn(sender(addr, k.clone(), round, id, stop.clone())))
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 450)).await;
        child.kill().expect("SIGKILL the server");
        let _ = child.wait();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            if let Ok(mut a) = t.await {
                acked.append(&mut a);
            }
        }
    }
    let have = stored(&dir);
    let mut acked_tags = HashSet::new();
    for (t, tag) in &acked {
        acked_tags.insert(tag.clone());
        for i in 0..BATCH {
            let n = have.get(&(*t, format!("b{tag}.{i}"))).copied().unwrap_or(0);
            assert_eq!(
                n, 1,
                "acknowledged event b{tag}.{i} of tenant {t} stored {n} times (seed {start_seed})"
            );
        }
    }
    // Anything else: whole batches only, each at most once, at most one in
    // flight per sender per round.
    let mut extra: HashMap<String, usize> = HashMap::new();
    for ((_, msg), n) in &have {
        assert_eq!(*n, 1, "{msg} stored {n} times (seed {start_seed})");
        let tag = msg
            .strip_prefix('b')
            .and_then(|m| m.rsplit_once('.'))
            .map(|(tag, _)| tag.to_owned())
            .expect("a message the test wrote");
        if !acked_tags.contains(&tag) {
            *extra.entry(tag).or_default() += 1;
        }
    }
    for (tag, n) in &extra {
        assert_eq!(*n, BATCH, "batch {tag} stored in part (seed {start_seed})");
    }
    assert!(extra.len() <= rounds * SENDERS, "(seed {start_seed})");
    assert!(
        acked.len() > rounds,
        "too little was acknowledged to test anything"
    );
    println!(
        "{} acknowledged batches of {BATCH} over {rounds} kill -9 rounds, all stored exactly once; {} unacknowledged in-flight batches stored whole (seed {start_seed})",
        acked.len(),
        extra.len()
    );
}
