//! `pulsestream loadgen`: the agents' side. Generates realistic API-call
//! events (the distributions of `shared/data/gen_events.py`: 12 services,
//! 300 route templates with Zipf popularity, route-dependent methods, a
//! mostly-2xx status mix, log-normal latencies with a heavy tail), sends
//! them over HTTP/1.1 keep-alive connections and reports the achieved
//! events/s and the latency of acknowledgements.
//!
//! Request bodies are generated before the clock starts and reused in turn,
//! so the generator's own CPU does not count against the server on a shared
//! machine; their timestamps are the generation time (seconds old, well
//! inside any retention), or with `backfill` spread over that much of the
//! past, one slice per body, as agents flushing a buffer send them. The run
//! is bounded by `duration`.
//!
//! With several tenant keys (`--tenants`, see `loadgen_tenants.rs`) each
//! request goes to a tenant drawn from a Zipf mix (the busiest of 50 gets
//! about a quarter), and the report gives each tenant's share.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use pulsestream_storage::Micros;

use crate::read::timeparse::write_rfc3339_millis;

pub mod otlp;
pub use otlp::OtlpEncoding;

/// What to send, and how hard.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL, `http://host:port` (TLS is not spoken).
    pub url: String,
    pub api_key: String,
    /// Ingest keys of many tenants; when not empty, requests spread over
    /// them by `loadgen_tenants::zipf_cdf` (key 0 the busiest) and
    /// `api_key` is not used.
    pub tenant_keys: Vec<String>,
    /// Spread timestamps over this much of the past (e.g. a day).
    pub backfill: Option<Duration>,
    /// Target events per second over all connections; 0 = as fast as possible.
    pub rate: u64,
    pub duration: Duration,
    /// Events per request; 1 uses the single-event endpoint.
    pub batch: usize,
    pub connections: usize,
    /// NDJSON (true) or a JSON array.
    pub ndjson: bool,
    /// Send OTLP traces to `/v1/traces` instead (spans made from the same
    /// model's events), in this encoding.
    pub otlp: Option<OtlpEncoding>,
    pub seed: u64,
}

/// What a run achieved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub requests_ok: u64,
    pub events_acked: u64,
    pub events_rejected: u64,
    /// Non-2xx answers by status code.
    pub failures: Vec<(u16, u64)>,
    pub transport_errors: u64,
    pub elapsed: Duration,
    /// Acknowledgement latency of successful requests, milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Events acknowledged per tenant key (in `tenant_keys` order); empty
    /// with a single key.
    pub per_tenant: Vec<u64>,
}

impl Report {
    pub fn events_per_second(&self) -> f64 {
        self.events_acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn requests_per_second(&self) -> f64 {
        self.requests_ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "acked {} events in {} requests over {:.2} s: {:.0} events/s, {:.0} requests/s",
            self.events_acked,
            self.requests_ok,
            self.elapsed.as_secs_f64(),
            self.events_per_second(),
            self.requests_per_second()
        )?;
        writeln!(
            f,
            "ack latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            self.p50_ms, self.p95_ms, self.p99_ms
        )?;
        write!(
            f,
            "rejected events: {}, failed requests: {:?}, transport errors: {}",
            self.events_rejected, self.failures, self.transport_errors
        )?;
        if !self.per_tenant.is_empty() {
            let top = self.per_tenant.iter().copied().max().unwrap_or(0);
            write!(
                f,
                "\n{} tenants; busiest took {:.1} % of the acknowledged events",
                self.per_tenant.len(),
                100.0 * top as f64 / self.events_acked.max(1) as f64
            )?;
        }
        Ok(())
    }
}

/// A small, fast, seedable generator (SplitMix64): reproducible traffic
/// without depending on a particular `rand` version's algorithms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Index drawn from a cumulative distribution.
    pub fn pick(&mut self, cdf: &[f64]) -> usize {
        let u = self.f64();
        cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
    }
}

const SERVICES: [(&str, [&str; 5]); 12] = [
    ("auth", ["sessions", "tokens", "oauth", "mfa", "passwords"]),
    (
        "users",
        ["users", "profiles", "preferences", "addresses", "teams"],
    ),
    (
        "orders",
        ["orders", "order-items", "returns", "invoices", "carts"],
    ),
    (
        "payments",
        [
            "payments",
            "payment-methods",
            "refunds",
            "charges",
            "payouts",
        ],
    ),
    (
        "catalog",
        ["products", "categories", "brands", "reviews", "variants"],
    ),
    (
        "search",
        [
            "search",
            "suggestions",
            "facets",
            "saved-searches",
            "indexes",
        ],
    ),
    (
        "checkout",
        ["carts", "cart-items", "coupons", "checkouts", "sessions"],
    ),
    (
        "inventory",
        ["stock", "warehouses", "reservations", "transfers", "counts"],
    ),
    (
        "shipping",
        ["shipments", "rates", "labels", "tracking", "carriers"],
    ),
    (
        "notifications",
        [
            "notifications",
            "subscriptions",
            "templates",
            "webhooks",
            "digests",
        ],
    ),
    (
        "billing",
        ["accounts", "plans", "usage", "statements", "credits"],
    ),
    (
        "analytics",
        ["events", "reports", "dashboards", "exports", "metrics"],
    ),
];
const SUBS: [&str; 8] = [
    "items",
    "history",
    "status",
    "events",
    "notes",
    "attachments",
    "audit",
    "summary",
];
const ACTIONS: [&str; 8] = [
    "cancel", "confirm", "retry", "archive", "refresh", "verify", "approve", "sync",
];
const ROUTES_PER_SERVICE: usize = 25;
const REGIONS: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "sa-east-1",
];
const REGION_P: [f64; 6] = [0.32, 0.14, 0.22, 0.12, 0.14, 0.06];
const TIERS: [&str; 4] = ["free", "silver", "gold", "platinum"];
const TIER_P: [f64; 4] = [0.55, 0.25, 0.14, 0.06];
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const N_USERS: usize = 50_000;
const MSG_5XX: [(u16, &str); 8] = [
    (500, "internal error: nil pointer dereference in handler"),
    (500, "database connection pool exhausted"),
    (
        502,
        "upstream connect error or disconnect/reset before headers",
    ),
    (502, "TLS handshake timeout to upstream"),
    (503, "circuit breaker open for upstream"),
    (503, "too many requests in flight, shedding load"),
    (504, "gateway timeout after 30000ms"),
    (504, "context deadline exceeded"),
];
const MSG_4XX: [(u16, &str); 7] = [
    (400, "validation failed: field 'email' is required"),
    (401, "access token expired"),
    (403, "permission denied for scope write"),
    (404, "resource not found"),
    (409, "conflict: resource was modified concurrently"),
    (422, "validation failed: quantity must be positive"),
    (429, "rate limit exceeded"),
];
const P_4XX: [f64; 7] = [0.22, 0.15, 0.08, 0.35, 0.06, 0.09, 0.05];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Collection,
    Item,
    Action,
    Query,
}

impl Kind {
    /// GET POST PUT DELETE PATCH probabilities, as in the Python model.
    fn method_p(self) -> [f64; 5] {
        match self {
            Kind::Collection => [0.72, 0.28, 0.0, 0.0, 0.0],
            Kind::Item => [0.70, 0.0, 0.12, 0.08, 0.10],
            Kind::Action => [0.0, 1.0, 0.0, 0.0, 0.0],
            Kind::Query => [0.85, 0.15, 0.0, 0.0, 0.0],
        }
    }
}

#[derive(Debug, Clone)]
struct Route {
    service: &'static str,
    path: String,
    method_cdf: [f64; 5],
    /// ln of the median latency, and its spread.
    mu: f64,
    sigma: f64,
    /// Probability of a 5xx.
    err5: f64,
    /// Popularity factor: POST-only action routes are rarely hot.
    weight: f64,
}

fn cdf(p: &[f64]) -> Vec<f64> {
    let total: f64 = p.iter().sum();
    let mut acc = 0.0;
    let mut out: Vec<f64> = p
        .iter()
        .map(|x| {
            acc += x / total;
            acc
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = 1.0;
    }
    out
}

/// The traffic model: routes and their parameters, fixed per seed.
#[derive(Debug, Clone)]
pub struct Model {
    routes: Vec<Route>,
    route_cdf: Vec<f64>,
    region_cdf: Vec<f64>,
    tier_cdf: Vec<f64>,
    cdf_4xx: Vec<f64>,
    versions: Vec<String>,
}

impl Model {
    pub fn new(rng: &mut Rng) -> Self {
        let mut routes = Vec::new();
        for (svc, resources) in SERVICES {
            let mut cands: Vec<(String, Kind)> = Vec::new();
            for r in resources {
                cands.push((format!("/api/v1/{r}"), Kind::Collection));
                cands.push((format!("/api/v1/{r}/{{id}}"), Kind::Item));
            }
            let mut rest: Vec<(String, Kind)> = Vec::new();
            for r in resources {
                for s in SUBS {
                    rest.push((format!("/api/v1/{r}/{{id}}/{s}"), Kind::Collection));
                }
                for a in ACTIONS {
                    rest.push((format!("/api/v1/{r}/{{id}}/{a}"), Kind::Action));
                }
                rest.push((format!("/api/v2/{r}"), Kind::Collection));
                rest.push((format!("/api/v2/{r}/{{id}}"), Kind::Item));
                rest.push((format!("/api/v1/{r}/search"), Kind::Query));
            }
            while cands.len() < ROUTES_PER_SERVICE {
                let i = rng.below(rest.len());
                cands.push(rest.swap_remove(i));
            }
            for (path, kind) in cands {
                let mcdf = cdf(&kind.method_p());
                routes.push(Route {
                    service: svc,
                    path,
                    method_cdf: [mcdf[0], mcdf[1], mcdf[2], mcdf[3], mcdf[4]],
                    mu: 20f64.ln() + rng.f64() * (200f64.ln() - 20f64.ln()),
                    sigma: 0.35 + rng.f64() * 0.5,
                    err5: (0.015 * (0.9 * rng.normal()).exp()).clamp(0.0005, 0.12),
                    weight: if kind == Kind::Action { 0.15 } else { 1.0 },
                });
            }
        }
        // Zipf(1.0) popularity over a seeded permutation of the routes.
        let n = routes.len();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut w = vec![0.0; n];
        for (rank, &r) in order.iter().enumerate() {
            w[r] = routes[r].weight / (rank + 1) as f64;
        }
        let versions = (0..SERVICES.len())
            .map(|_| format!("{}.{}.{}", 1 + rng.below(5), rng.below(30), rng.below(10)))
            .collect();
        Model {
            routes,
            route_cdf: cdf(&w),
            region_cdf: cdf(&REGION_P),
            tier_cdf: cdf(&TIER_P),
            cdf_4xx: cdf(&P_4XX),
            versions,
        }
    }

    /// Appends one event as a JSON object stamped `ts`.
    pub fn write_event(&self, rng: &mut Rng, ts: Micros, out: &mut String) {
        let ri = rng.pick(&self.route_cdf);
        let route = &self.routes[ri];
        let u = rng.f64();
        let event_type = if u < 0.85 {
            "api_call"
        } else if u < 0.93 {
            "error"
        } else {
            "user_action"
        };
        let m = rng.pick(&route.method_cdf);
        let method = METHODS[m];

        let v = rng.f64();
        let (p5, p4, p3) = match event_type {
            "api_call" => (route.err5, 0.05, if m == 0 { 0.03 } else { 0.006 }),
            "user_action" => (0.005, 0.03, 0.0),
            // error events: 60% 5xx, 40% 4xx
            _ => (0.6, 0.4, 0.0),
        };
        let mut message: Option<&str> = None;
        let status: u16 = if v < p5 {
            let (code, msg) = MSG_5XX[rng.below(MSG_5XX.len())];
            message = Some(msg);
            code
        } else if v < p5 + p4 {
            let (code, msg) = MSG_4XX[rng.pick(&self.cdf_4xx)];
            if event_type == "error" {
                message = Some(msg);
            }
            code
        } else if v < p5 + p4 + p3 {
            if m == 0 { 304 } else { 302 }
        } else {
            match m {
                1 if rng.f64() < 0.7 => 201,
                3 if rng.f64() < 0.8 => 204,
                _ => 200,
            }
        };

        let mut lat = (route.mu + route.sigma * rng.normal()).exp();
        if rng.f64() < 0.007 {
            // Pareto(1.2) tail.
            lat *= 1.0 + 3.0 * (rng.f64().max(1e-12).powf(-1.0 / 1.2) - 1.0);
        }
        match status {
            304 => lat *= 0.3,
            400..=499 => lat *= 0.4,
            503 => lat *= 0.05,
            504 => lat = 30_000.0 + 150.0 * rng.normal(),
            _ => {}
        }
        if event_type == "user_action" {
            lat *= 0.6;
        }
        let lat = (lat.clamp(0.05, 120_000.0) * 1000.0).round() / 1000.0;
        let req_bytes = if m == 1 || m == 2 || m == 4 {
            (1500f64.ln() + 0.9 * rng.normal()).exp() as u64
        } else {
            (350f64.ln() + 0.4 * rng.normal()).exp() as u64
        };
        let resp_bytes = match status {
            204 | 304 => 0,
            400.. => (180f64.ln() + 0.3 * rng.normal()).exp() as u64,
            _ => (4000f64.ln() + 0.7 * rng.normal()).exp() as u64,
        };
        let user = 1 + rng.below(N_USERS);
        let region = REGIONS[rng.pick(&self.region_cdf)];
        let tier = TIERS[rng.pick(&self.tier_cdf)];
        let svc_index = SERVICES
            .iter()
            .position(|(s, _)| *s == route.service)
            .unwrap_or(0);

        out.push_str("{\"timestamp\":\"");
        write_rfc3339_millis(out, ts);
        let _ = write!(
            out,
            "\",\"event_type\":\"{event_type}\",\"service\":\"{}\",\"endpoint\":\"{}\",\"method\":\"{method}\",\"status_code\":{status},\"latency_ms\":{lat},\"request_bytes\":{req_bytes},\"response_bytes\":{resp_bytes},\"user_id\":\"u-{user:05}\",\"region\":\"{region}\",\"trace_id\":\"{:016x}{:016x}\"",
            route.service,
            route.path,
            rng.next_u64(),
            rng.next_u64()
        );
        if let Some(msg) = message {
            let _ = write!(out, ",\"message\":\"{}: {msg}\"", route.service);
        }
        let _ = write!(
            out,
            ",\"attributes\":{{\"customer_tier\":\"{tier}\",\"version\":\"{}\"}}}}",
            self.versions[svc_index]
        );
    }

    /// A request body of `n` events stamped around `now` (each slightly
    /// before it, as agents report after the fact).
    pub fn body(&self, rng: &mut Rng, n: usize, now: Micros, ndjson: bool) -> String {
        let mut out = String::with_capacity(n * 400);
        if n == 1 {
            self.write_event(rng, now, &mut out);
            return out;
        }
        if !ndjson {
            out.push('[');
        }
        for i in 0..n {
            if i > 0 && !ndjson {
                out.push(',');
            }
            let lag = (-(rng.f64().max(1e-12)).ln() * 50_000.0) as i64;
            self.write_event(rng, Micros(now.0 - lag), &mut out);
            if ndjson {
                out.push('\n');
            }
        }
        if !ndjson {
            out.push(']');
        }
        out
    }
}

/// Percentile of sorted micros, in milliseconds.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

#[derive(Default)]
struct ConnStats {
    ok: u64,
    acked: u64,
    rejected: u64,
    failures: Vec<(u16, u64)>,
    transport_errors: u64,
    latencies_us: Vec<u32>,
    per_tenant: Vec<u64>,
}

/// Runs a load test on its own runtime (the CLI is synchronous).
pub fn run(opts: Options) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run_async(opts))
}

/// Runs a load test on the current runtime.
pub async fn run_async(opts: Options) -> anyhow::Result<Report> {
    if opts.batch == 0 || opts.connections == 0 {
        bail!("--batch and --connections must be at least 1");
    }
    let (authority, base) = crate::loadgen_tenants::split_url(&opts.url)?;
    let path = if opts.otlp.is_some() {
        format!("{base}/v1/traces")
    } else if opts.batch == 1 {
        format!("{base}/api/v1/ingestion/events")
    } else {
        format!("{base}/api/v1/ingestion/events/batch")
    };
    let content_type = if let Some(enc) = opts.otlp {
        enc.content_type()
    } else if opts.ndjson && opts.batch > 1 {
        "application/x-ndjson"
    } else {
        "application/json"
    };

    // Pre-generate a pool of bodies, distinct per connection and slot.
    let mut rng = Rng::new(opts.seed);
    let model = Model::new(&mut rng);
    let pool_size = (opts.connections * 4).clamp(16, 256);
    let now = Micros::now();
    let backfill = opts
        .backfill
        .map_or(0, |d| d.as_micros().min(i64::MAX as u128) as i64);
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..pool_size)
            .map(|i| {
                // Body i covers a slice `i / pool` of the way back.
                let at = Micros(now.0 - backfill / pool_size as i64 * i as i64);
                match opts.otlp {
                    Some(enc) => {
                        let events = model.body(&mut rng, opts.batch.max(2), at, false);
                        Bytes::from(otlp::body(&events, &mut rng, enc))
                    }
                    None => Bytes::from(model.body(&mut rng, opts.batch, at, opts.ndjson)),
                }
            })
            .collect(),
    );
    let keys: Arc<Vec<String>> = Arc::new(if opts.tenant_keys.is_empty() {
        vec![opts.api_key.clone()]
    } else {
        opts.tenant_keys.clone()
    });
    let cdf = Arc::new(crate::loadgen_tenants::zipf_cdf(keys.len()));

    // Each connection sends one request every `interval` (rate split evenly).
    let interval = (opts.rate > 0).then(|| {
        Duration::from_secs_f64(opts.batch as f64 * opts.connections as f64 / opts.rate as f64)
    });
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for c in 0..opts.connections {
        let bodies = bodies.clone();
        let authority = authority.clone();
        let path = path.clone();
        let (keys, cdf) = (keys.clone(), cdf.clone());
        let batch = opts.batch as u64;
        let rng = Rng::new(opts.seed ^ (c as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let otlp = opts.otlp;
        tasks.push(tokio::spawn(async move {
            connection(
                c,
                bodies,
                authority,
                path,
                Tenants { keys, cdf, rng },
                (content_type, otlp),
                batch,
                interval,
                deadline,
            )
            .await
        }));
    }
    let mut all = ConnStats {
        per_tenant: vec![0; keys.len()],
        ..ConnStats::default()
    };
    for t in tasks {
        let s = t.await.context("a connection task failed")?;
        all.ok += s.ok;
        all.acked += s.acked;
        all.rejected += s.rejected;
        all.transport_errors += s.transport_errors;
        all.latencies_us.extend(s.latencies_us);
        for (a, b) in all.per_tenant.iter_mut().zip(&s.per_tenant) {
            *a += b;
        }
        for (code, n) in s.failures {
            match all.failures.iter_mut().find(|(c, _)| *c == code) {
                Some(e) => e.1 += n,
                None => all.failures.push((code, n)),
            }
        }
    }
    let elapsed = start.elapsed();
    all.latencies_us.sort_unstable();
    all.failures.sort_unstable();
    Ok(Report {
        requests_ok: all.ok,
        events_acked: all.acked,
        events_rejected: all.rejected,
        failures: all.failures,
        transport_errors: all.transport_errors,
        elapsed,
        p50_ms: percentile_ms(&all.latencies_us, 0.50),
        p95_ms: percentile_ms(&all.latencies_us, 0.95),
        p99_ms: percentile_ms(&all.latencies_us, 0.99),
        per_tenant: if opts.tenant_keys.is_empty() {
            Vec::new()
        } else {
            all.per_tenant
        },
    })
}

/// The keys a connection sends with, and how it picks one per request.
struct Tenants {
    keys: Arc<Vec<String>>,
    cdf: Arc<Vec<f64>>,
    rng: Rng,
}

/// Reads `"accepted": N` and `"rejected": M` from an ingest answer without
/// a full parse.
fn counts(body: &[u8]) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    (
        v["accepted"].as_u64().unwrap_or(0),
        v["rejected"].as_u64().unwrap_or(0),
    )
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    index: usize,
    bodies: Arc<Vec<Bytes>>,
    authority: String,
    path: String,
    mut tenants: Tenants,
    (content_type, otlp): (&'static str, Option<OtlpEncoding>),
    batch: u64,
    interval: Option<Duration>,
    deadline: Instant,
) -> ConnStats {
    let mut stats = ConnStats {
        per_tenant: vec![0; tenants.keys.len()],
        ..ConnStats::default()
    };
    let mut next_send = Instant::now();
    let mut slot = index;
    'reconnect: while Instant::now() < deadline {
        let stream = match tokio::net::TcpStream::connect(&authority).await {
            Ok(s) => s,
            Err(_) => {
                stats.transport_errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            stats.transport_errors += 1;
            continue;
        };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        loop {
            if let Some(iv) = interval {
                let now = Instant::now();
                if next_send > now {
                    tokio::time::sleep_until(next_send.into()).await;
                }
                next_send += iv;
            }
            if Instant::now() >= deadline {
                break 'reconnect;
            }
            let body = bodies[slot % bodies.len()].clone();
            slot += 1;
            let tenant = if tenants.keys.len() > 1 {
                tenants.rng.pick(&tenants.cdf)
            } else {
                0
            };
            let key = tenants.keys[tenant].as_str();
            let req = Request::post(path.as_str())
                .header(hyper::header::HOST, authority.as_str())
                .header(hyper::header::CONTENT_TYPE, content_type)
                .header("x-api-key", key)
                .body(Full::new(body));
            let Ok(req) = req else {
                stats.transport_errors += 1;
                break 'reconnect;
            };
            if sender.ready().await.is_err() {
                stats.transport_errors += 1;
                continue 'reconnect;
            }
            let t0 = Instant::now();
            let resp = match sender.send_request(req).await {
                Ok(r) => r,
                Err(_) => {
                    stats.transport_errors += 1;
                    continue 'reconnect;
                }
            };
            let status = resp.status().as_u16();
            let body = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    stats.transport_errors += 1;
                    continue 'reconnect;
                }
            };
            let took = t0.elapsed();
            if (200..300).contains(&status) {
                stats.ok += 1;
                stats
                    .latencies_us
                    .push(took.as_micros().min(u128::from(u32::MAX)) as u32);
                let a = if let Some(enc) = otlp {
                    let (a, r) = otlp::accepted(batch.max(2), &body, enc);
                    stats.rejected += r;
                    a
                } else if batch == 1 {
                    1
                } else {
                    let (a, r) = counts(&body);
                    stats.rejected += r;
                    a
                };
                stats.acked += a;
                stats.per_tenant[tenant] += a;
            } else {
                match stats.failures.iter_mut().find(|(c, _)| *c == status) {
                    Some(e) => e.1 += 1,
                    None => stats.failures.push((status, 1)),
                }
                if status == 429 || status == 503 {
                    // Back off as the server asks, briefly.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::{BodyFormat, parse_batch};
    use crate::ingest::validate::{EventLimits, TimeWindow, validate_item};

    #[test]
    fn generated_events_are_valid_and_realistic() {
        let mut rng = Rng::new(7);
        let model = Model::new(&mut rng);
        assert_eq!(model.routes.len(), 300);
        let now = Micros(1_795_600_800_000_000);
        let body = model.body(&mut rng, 5000, now, true);
        let items = parse_batch(body.as_bytes(), BodyFormat::Ndjson).expect("parses");
        assert_eq!(items.len(), 5000);
        let w = TimeWindow {
            now,
            retention_days: 30,
        };
        let mut api = 0;
        let mut err5 = 0;
        let mut gets = 0;
        for item in items {
            let ev = validate_item(item, &EventLimits::default(), &w).expect("valid");
            api += usize::from(ev.event_type == "api_call");
            err5 += usize::from(ev.status_code.is_some_and(|s| s >= 500));
            gets += usize::from(ev.method.is_some_and(|m| m.as_str() == "GET"));
            assert!(ev.latency_ms.is_some_and(|l| l > 0.0));
        }
        assert!((4000..4600).contains(&api), "api_call share: {api}");
        assert!((100..700).contains(&err5), "5xx share: {err5}");
        assert!(gets > 2500, "GET-heavy: {gets}");
        let json = model.body(&mut rng, 3, now, false);
        assert_eq!(
            parse_batch(json.as_bytes(), BodyFormat::Json)
                .expect("array")
                .len(),
            3
        );
    }

    #[test]
    fn same_seed_same_traffic() {
        let now = Micros(0);
        let a = {
            let mut r = Rng::new(1);
            Model::new(&mut r).body(&mut r, 10, now, true)
        };
        let b = {
            let mut r = Rng::new(1);
            Model::new(&mut r).body(&mut r, 10, now, true)
        };
        assert_eq!(a, b);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 51.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
