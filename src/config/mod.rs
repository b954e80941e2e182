//! The appliance's configuration: `config.toml`, then `PULSESTREAM_*`
//! environment variables, then command-line flags, each layer overriding
//! the previous one; every value validated with an error naming its key.
//!
//! `config.toml.example` documents every key, its default and unit; keep
//! the two in sync (a test parses the example).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::http::log::LogFormat;

mod env;

use env::{ENV, generic_env, parse_addr};

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {key} ({variable}): {message}")]
    InvalidEnv {
        key: String,
        variable: String,
        message: String,
    },
    #[error("invalid value for {key} ({origin}): {message}")]
    Invalid {
        key: &'static str,
        origin: &'static str,
        message: String,
    },
}

fn invalid(key: &'static str, origin: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        origin,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageSection,
    pub auth: AuthConfig,
    pub ingest: IngestConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub alerting: AlertingConfig,
    pub smtp: SmtpConfig,
    pub live: LiveConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Connections serving requests at most. Up to four times as many more
    /// may wait for their first request head (closed after
    /// `header_read_timeout`); beyond that, the accept backlog.
    pub max_connections: usize,
    /// Largest request body, also after decompression (bytes).
    pub max_body_bytes: usize,
    /// Largest request head: request line plus headers (bytes).
    pub max_header_bytes: usize,
    /// Time to produce a response's head, body reading included.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Time a client has to send a complete request head (slowloris guard).
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// A keep-alive connection with no request in flight closes after this.
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// A response that makes no write progress for this long closes its
    /// connection (a client that stopped reading).
    #[serde(deserialize_with = "de_duration")]
    pub write_timeout: Duration,
    /// Open connections from one client address at most.
    pub max_connections_per_ip: usize,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Per-tenant series (ids and sizes) in `/metrics`.
    pub metrics_per_tenant: bool,
}

/// Smallest `storage.max_wal_bytes`: below a few files of a realistic
/// batch size, the store would seal on nearly every append.
const MIN_MAX_WAL_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    /// Where everything lives: the store, `meta.redb`, the JWT key.
    pub data_dir: PathBuf,
    /// Memory all tenants' unsealed segments may use together (bytes).
    pub memory_budget_bytes: usize,
    /// Past this many bytes of write-ahead log, the tenants pinning its
    /// oldest file are sealed so it can go (bounds recovery time).
    pub max_wal_bytes: u64,
    /// An active segment is sealed at the latest this long after its first row.
    #[serde(deserialize_with = "de_duration")]
    pub seal_age: Duration,
    /// zstd level of compacted column blocks (1-19).
    pub zstd_level: i32,
    /// zstd level of freshly sealed column blocks (1-19).
    pub seal_zstd_level: i32,
    /// How often events older than each tenant's retention are dropped.
    #[serde(deserialize_with = "de_duration")]
    pub retention_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Allow `POST /api/v1/auth/register/tenant` without a token.
    pub allow_signup: bool,
    #[serde(deserialize_with = "de_duration")]
    pub access_token_ttl: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub refresh_token_ttl: Duration,
    /// Password of `admin@localhost` on first start (usually from the
    /// `PULSESTREAM_ADMIN_PASSWORD` environment variable).
    pub admin_password: Option<String>,
    /// argon2id memory cost (KiB), iterations and lanes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u32,
    /// How long a locked account stays locked.
    #[serde(deserialize_with = "de_duration")]
    pub lockout_duration: Duration,
    /// argon2 hashes running at once; 0 means the number of cores.
    pub max_concurrent_hashes: usize,
    /// Login attempts per second per client address (0: no limit).
    pub login_rate_per_ip: u32,
    /// Login attempts one address may make at once above the rate.
    pub login_burst_per_ip: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest single event, as JSON (bytes).
    pub max_event_bytes: usize,
    pub max_service_bytes: usize,
    pub max_endpoint_bytes: usize,
    pub max_message_bytes: usize,
    /// Attributes per event at most.
    pub max_attributes: usize,
    /// Events in one batch request at most.
    pub max_batch_events: usize,
    /// Events further in the future than this are rejected.
    #[serde(deserialize_with = "de_duration")]
    pub max_future: Duration,
    /// Batches waiting for the store at most; beyond it ingest answers 503.
    pub queue_depth: usize,
    /// Bytes of ingest request bodies (raw and decompressed) in flight at
    /// once across all tenants; beyond it ingest answers 503.
    pub inflight_bytes: usize,
    /// The same per tenant (at most `inflight_bytes`): one tenant's slow
    /// uploads leave the rest of the global budget to the others.
    pub tenant_inflight_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Defaults given to new tenants (each tenant can be changed later).
    pub default_retention_days: u32,
    /// Events/s; 0 means unlimited.
    pub default_rate_limit_eps: u64,
    /// Events; 0 means equal to the rate.
    pub default_rate_limit_burst: u64,
    /// Events per UTC day; 0 means unlimited.
    pub default_quota_events_per_day: u64,
    /// A query's work is cancelled after this long (503 `query_timeout`).
    #[serde(deserialize_with = "de_duration")]
    pub query_timeout: Duration,
    /// Memory one query's groups may take (bytes).
    pub query_memory_bytes: usize,
    /// Heavy queries (query, statistics, search, export) running at once,
    /// across tenants; a tenant may use half of them.
    pub max_concurrent_queries: usize,
    /// Audit entries older than this are deleted (days).
    pub audit_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// tracing env-filter directive (`info`, `pulsestream=debug,info`).
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// Rolling-window series per tenant at most; beyond it new groups are
    /// counted in an `other` series.
    pub max_series_per_tenant: usize,
    /// Base URL of the dashboard as users reach it, for links in
    /// notifications (default: `http://<server.listen>`).
    pub public_url: Option<String>,
    /// Wait before the first retry of a failed notification; doubles after
    /// each further failure (at most 5 minutes).
    #[serde(deserialize_with = "de_duration")]
    pub retry_base: Duration,
    /// Attempts per notification before it is abandoned (and logged so).
    pub max_attempts: u32,
    /// Time limit of one outbound notification request.
    #[serde(deserialize_with = "de_duration")]
    pub send_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Dashboard WebSocket connections at most, over all tenants.
    pub max_connections: usize,
    /// Dashboard WebSocket connections of one tenant at most.
    pub max_connections_per_tenant: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            // An idle subscribed dashboard costs tens of KiB (socket
            // buffers, its queue, its task): 10,000 stay well under 1 GiB.
            max_connections: 10_000,
            // One tenant cannot take every slot from the others.
            max_connections_per_tenant: 2_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP relay for email channels; unset disables email delivery.
    pub host: Option<String>,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Sender address of notification emails.
    pub from: String,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or
    /// `none` (plain text; only for a relay on a trusted network).
    pub tls: String,
    /// Time limit of one email delivery.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 587,
            username: None,
            password: None,
            from: "PulseStream <pulsestream@localhost>".to_owned(),
            tls: "starttls".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            // A series with traffic every second costs a few KiB for the
            // hour it covers: 10,000 series stay well under 100 MiB.
            max_series_per_tenant: 10_000,
            public_url: None,
            retry_base: Duration::from_secs(1),
            // 1 + 2 + 4 + ... + 64 s: about two minutes of retries.
            max_attempts: 8,
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// Default request body limit (contract section 4).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            // Each connection costs a task and its buffers (tens of KiB);
            // 4096 is far above what 2 cores serve and still bounded.
            max_connections: 4096,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            // hyper's minimum read buffer is 8 KiB; 64 KiB fits any honest
            // head (large cookies, long tokens).
            max_header_bytes: 64 << 10,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            // Long enough for a dashboard's polling interval, short enough
            // that abandoned keep-alive sockets do not pile up.
            idle_timeout: Duration::from_secs(60),
            // A reader that takes in nothing for 30 s is gone or hostile.
            write_timeout: Duration::from_secs(30),
            // A quarter of max_connections: one address (or one NAT) can
            // never take every slot.
            max_connections_per_ip: 1024,
            metrics_token: None,
            metrics_per_tenant: true,
        }
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: PathBuf::from("./pulsestream-data"),
            memory_budget_bytes: 256 << 20,
            max_wal_bytes: 512 << 20,
            seal_age: Duration::from_secs(600),
            zstd_level: 3,
            seal_zstd_level: 1,
            retention_interval: Duration::from_secs(3600),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_signup: false,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            admin_password: None,
            // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            max_concurrent_hashes: 0,
            // A person logs in a few times a minute; 10/s with a burst of
            // 20 leaves room for scripts and shared NAT addresses while
            // capping one address at 10 hashes a second.
            login_rate_per_ip: 10,
            login_burst_per_ip: 20,
        }
    }
}

/// Default global in-flight budget: 64 MiB of bodies. Parsed events cost
/// about twice their JSON size, so ingest buffers stay near 200 MiB at worst,
/// inside the 512 MiB RSS target next to the store's active segments.
const DEFAULT_INFLIGHT_BYTES: usize = 64 << 20;

/// Default per-tenant in-flight budget: 32 MiB, one full-size request (16 MiB
/// raw plus 16 MiB decompressed) or dozens of typical ones, and half of the
/// global budget, so one tenant leaves the other half to everybody else.
const DEFAULT_TENANT_INFLIGHT_BYTES: usize = 32 << 20;

/// The smallest in-flight budget that makes sense: one typical batch.
const MIN_INFLIGHT_BYTES: usize = 1 << 20;

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_event_bytes: 64 << 10,
            max_service_bytes: 128,
            max_endpoint_bytes: 512,
            max_message_bytes: 8 << 10,
            max_attributes: 64,
            max_batch_events: 100_000,
            max_future: Duration::from_secs(3600),
            queue_depth: 256,
            inflight_bytes: DEFAULT_INFLIGHT_BYTES,
            tenant_inflight_bytes: DEFAULT_TENANT_INFLIGHT_BYTES,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            default_retention_days: 30,
            default_rate_limit_eps: 0,
            default_rate_limit_burst: 0,
            default_quota_events_per_day: 0,
            query_timeout: Duration::from_secs(30),
            // 256 MiB of group state is tens of millions of simple groups:
            // far beyond any dashboard, and bounded on a small VM.
            query_memory_bytes: 256 << 20,
            // Two per core keeps the cores busy without one tenant's
            // dashboards queueing everybody else's.
            max_concurrent_queries: 4,
            audit_retention_days: 90,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Console,
            level: "info".to_owned(),
        }
    }
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Config {
    /// File (if any), then environment, then flags; then validation.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env, overrides)
    }

    /// `load` with the environment given explicitly (tests).
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                // Typed parse first: its errors carry the line and the key.
                Self::from_toml(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            if ENV.iter().any(|(alias, _, _)| alias == name) {
                continue;
            }
            if let Some((section, key, v)) = generic_env(name, value)? {
                match table
                    .entry(section)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                {
                    toml::Value::Table(t) => {
                        t.insert(key, v);
                    }
                    _ => {
                        return Err(invalid("config", "file", format!("{name}: not a table")));
                    }
                }
            }
        }
        let mut config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| invalid("config", "environment", e.to_string()))?;
        for (name, key, set) in ENV {
            if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
                set(&mut config, v).map_err(|m| invalid(key, name, m))?;
            }
        }
        if let Some(d) = &overrides.data_dir {
            config.storage.data_dir = d.clone();
        }
        if let Some(l) = &overrides.listen {
            config.server.listen =
                parse_addr(l).map_err(|m| invalid("server.listen", "--listen", m))?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (no validation).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Range checks, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let o = "config";
        let s = &self.server;
        if s.max_connections == 0 {
            return Err(invalid("server.max_connections", o, "must be at least 1"));
        }
        if self.live.max_connections == 0 || self.live.max_connections_per_tenant == 0 {
            return Err(invalid(
                "live.max_connections",
                o,
                "live.max_connections and live.max_connections_per_tenant must be at least 1",
            ));
        }
        if s.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", o, "must be at least 1024"));
        }
        if s.max_header_bytes < 8192 {
            return Err(invalid(
                "server.max_header_bytes",
                o,
                "must be at least 8192",
            ));
        }
        for (key, d) in [
            ("server.request_timeout", s.request_timeout),
            ("server.header_read_timeout", s.header_read_timeout),
            ("server.idle_timeout", s.idle_timeout),
            ("server.write_timeout", s.write_timeout),
            ("limits.query_timeout", self.limits.query_timeout),
            ("auth.access_token_ttl", self.auth.access_token_ttl),
            ("auth.refresh_token_ttl", self.auth.refresh_token_ttl),
            ("auth.lockout_duration", self.auth.lockout_duration),
            (
                "storage.retention_interval",
                self.storage.retention_interval,
            ),
        ] {
            if d.is_zero() {
                return Err(invalid(key, o, "must be greater than zero"));
            }
        }
        if self.storage.max_wal_bytes < MIN_MAX_WAL_BYTES {
            return Err(invalid(
                "storage.max_wal_bytes",
                o,
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if !(1..=19).contains(&self.storage.zstd_level) {
            return Err(invalid("storage.zstd_level", o, "must be between 1 and 19"));
        }
        if !(1..=19).contains(&self.storage.seal_zstd_level) {
            return Err(invalid(
                "storage.seal_zstd_level",
                o,
                "must be between 1 and 19",
            ));
        }
        if self.auth.argon2_memory_kib < 8 * self.auth.argon2_parallelism.max(1) {
            return Err(invalid(
                "auth.argon2_memory_kib",
                o,
                "must be at least 8 × argon2_parallelism",
            ));
        }
        if self.auth.argon2_iterations == 0 {
            return Err(invalid("auth.argon2_iterations", o, "must be at least 1"));
        }
        if self.auth.argon2_parallelism == 0 {
            return Err(invalid("auth.argon2_parallelism", o, "must be at least 1"));
        }
        if s.max_connections_per_ip == 0 {
            return Err(invalid(
                "server.max_connections_per_ip",
                o,
                "must be at least 1",
            ));
        }
        if s.metrics_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(invalid("server.metrics_token", o, "must not be empty"));
        }
        if self.auth.login_rate_per_ip > 0 && self.auth.login_burst_per_ip == 0 {
            return Err(invalid(
                "auth.login_burst_per_ip",
                o,
                "must be at least 1 when login_rate_per_ip is set",
            ));
        }
        if self.limits.query_memory_bytes < 1 << 20 {
            return Err(invalid(
                "limits.query_memory_bytes",
                o,
                "must be at least 1 MiB",
            ));
        }
        if self.limits.max_concurrent_queries == 0 {
            return Err(invalid(
                "limits.max_concurrent_queries",
                o,
                "must be at least 1",
            ));
        }
        if self.limits.audit_retention_days == 0 {
            return Err(invalid(
                "limits.audit_retention_days",
                o,
                "must be at least 1",
            ));
        }
        if self.auth.lockout_threshold == 0 {
            return Err(invalid("auth.lockout_threshold", o, "must be at least 1"));
        }
        if let Some(p) = &self.auth.admin_password
            && let Err(m) = crate::auth::password::check_policy(p)
        {
            return Err(invalid("auth.admin_password", o, m));
        }
        if self.ingest.max_batch_events == 0 || self.ingest.queue_depth == 0 {
            return Err(invalid(
                "ingest.max_batch_events/queue_depth",
                o,
                "must be at least 1",
            ));
        }
        if self.ingest.inflight_bytes < MIN_INFLIGHT_BYTES {
            return Err(invalid(
                "ingest.inflight_bytes",
                o,
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if self.ingest.tenant_inflight_bytes < MIN_INFLIGHT_BYTES
            || self.ingest.tenant_inflight_bytes > self.ingest.inflight_bytes
        {
            return Err(invalid(
                "ingest.tenant_inflight_bytes",
                o,
                "must be at least 1048576 (1 MiB) and at most ingest.inflight_bytes",
            ));
        }
        if self.limits.default_retention_days == 0 {
            return Err(invalid(
                "limits.default_retention_days",
                o,
                "must be at least 1",
            ));
        }
        let a = &self.alerting;
        if a.max_series_per_tenant < 10 {
            return Err(invalid(
                "alerting.max_series_per_tenant",
                o,
                "must be at least 10",
            ));
        }
        if a.max_attempts == 0 || a.max_attempts > 30 {
            return Err(invalid("alerting.max_attempts", o, "must be 1 to 30"));
        }
        if a.retry_base.is_zero() || a.send_timeout.is_zero() {
            return Err(invalid(
                "alerting.retry_base/send_timeout",
                o,
                "must be greater than zero",
            ));
        }
        if let Some(u) = &a.public_url
            && !crate::alerting::rules::is_http_url(u)
        {
            return Err(invalid("alerting.public_url", o, "must be an http(s) URL"));
        }
        if !matches!(self.smtp.tls.as_str(), "starttls" | "tls" | "none") {
            return Err(invalid("smtp.tls", o, "must be starttls, tls or none"));
        }
        if self.smtp.port == 0 || self.smtp.timeout.is_zero() {
            return Err(invalid("smtp.port/timeout", o, "must be greater than zero"));
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            return Err(invalid("smtp.username/password", o, "set both or neither"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid("log.level", o, "not a valid log filter"));
        }
        Ok(())
    }

    /// The store's configuration derived from `[storage]`.
    pub fn store_config(&self) -> pulsestream_storage::StoreConfig {
        let mut c = pulsestream_storage::StoreConfig::new(&self.storage.data_dir);
        c.memory_budget = self.storage.memory_budget_bytes;
        c.max_wal_bytes = self.storage.max_wal_bytes;
        // At least four files under the bound, so it is a bound on the WAL
        // and not on one file.
        c.wal_file_bytes = c.wal_file_bytes.min(c.max_wal_bytes / 4);
        c.seal_age = self.storage.seal_age;
        c.zstd_level = self.storage.zstd_level;
        c.seal_zstd_level = self.storage.seal_zstd_level;
        c
    }

    /// Hashes allowed at once: `auth.max_concurrent_hashes`, or the core count.
    pub fn hash_permits(&self) -> usize {
        match self.auth.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The argon2 cost from `[auth]`.
    pub fn password_cost(&self) -> crate::auth::password::PasswordCost {
        crate::auth::password::PasswordCost {
            memory_kib: self.auth.argon2_memory_kib,
            iterations: self.auth.argon2_iterations,
            parallelism: self.auth.argon2_parallelism,
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `7d`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{v:?} needs a unit (ms, s, m, h, d)"))?;
    let (num, unit) = v.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{v:?} is not a duration like 30s or 5m"))?;
    let mult_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{v:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
    };
    n.checked_mul(mult_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{v:?} is too long"))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let text = include_str!("../../config.toml.example");
        let c = Config::from_toml(text).expect("example parses");
        c.validate().expect("example is valid");
        let d = Config::default();
        assert_eq!(c.server.listen, d.server.listen);
        assert_eq!(c.server.max_body_bytes, d.server.max_body_bytes);
        assert_eq!(c.auth.access_token_ttl, d.auth.access_token_ttl);
        assert_eq!(c.ingest.max_event_bytes, d.ingest.max_event_bytes);
        assert_eq!(
            c.limits.default_retention_days,
            d.limits.default_retention_days
        );
    }

    /// Every field of every section is documented in the example file.
    #[test]
    fn example_documents_every_key() {
        let example = include_str!("../../config.toml.example");
        let source = include_str!("mod.rs");
        let mut checked = 0;
        for section in source.split("pub struct ").skip(1) {
            let name = section.split_whitespace().next().unwrap_or("");
            if !name.ends_with("Config") && name != "StorageSection" || name == "Config" {
                continue;
            }
            let body = section.split("\n}").next().unwrap_or("");
            for line in body.lines() {
                let Some(field) = line.trim().strip_prefix("pub ") else {
                    continue;
                };
                let Some((field, _)) = field.split_once(':') else {
                    continue;
                };
                let documented = example.lines().any(|l| {
                    let l = l.trim_start_matches('#').trim();
                    l.starts_with(&format!("{field} = "))
                });
                assert!(documented, "{name}.{field} is not in config.toml.example");
                checked += 1;
            }
        }
        assert!(checked >= 30, "only {checked} keys checked");
    }

    #[test]
    fn precedence_flags_over_env_over_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1000\"\nmax_connections = 7\n[auth]\naccess_token_ttl = \"5m\"\n",
        )
        .expect("write");
        let c = Config::load_from(Some(&file), &[], &Overrides::default()).expect("file");
        assert_eq!(c.server.listen.port(), 1000);
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(300));
        let e = env(&[("PULSESTREAM_LISTEN", "127.0.0.1:2000")]);
        let c = Config::load_from(Some(&file), &e, &Overrides::default()).expect("env");
        assert_eq!(c.server.listen.port(), 2000);
        assert_eq!(c.server.max_connections, 7);
        let flags = Overrides {
            listen: Some("127.0.0.1:3000".into()),
            data_dir: None,
        };
        let c = Config::load_from(Some(&file), &e, &flags).expect("flags");
        assert_eq!(c.server.listen.port(), 3000);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::load_from(
            None,
            &env(&[("PULSESTREAM_MAX_BODY_BYTES", "lots")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("server.max_body_bytes"), "{e}");
        let e = Config::from_toml("[server]\nrequest_timeout = \"10 parsecs\"\n").unwrap_err();
        assert!(e.contains("request_timeout"), "{e}");
        let e = Config::from_toml("[server]\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let mut c = Config::default();
        c.storage.zstd_level = 40;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("storage.zstd_level")
        );
        let mut c = Config::default();
        c.storage.max_wal_bytes = 1000;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("storage.max_wal_bytes")
        );
        let c = Config::from_toml("[storage]\nmax_wal_bytes = 8388608\n").expect("valid");
        let sc = c.store_config();
        assert_eq!(sc.max_wal_bytes, 8 << 20);
        assert_eq!(sc.wal_file_bytes, 2 << 20);
    }

    #[test]
    fn abuse_limits_are_validated_and_default() {
        let d = Config::default();
        assert_eq!(d.server.idle_timeout, Duration::from_secs(60));
        assert_eq!(d.server.write_timeout, Duration::from_secs(30));
        assert_eq!(d.server.max_connections_per_ip, 1024);
        assert_eq!(d.limits.query_timeout, Duration::from_secs(30));
        assert_eq!(d.limits.query_memory_bytes, 256 << 20);
        assert_eq!(d.limits.audit_retention_days, 90);
        assert_eq!(
            (d.auth.login_rate_per_ip, d.auth.login_burst_per_ip),
            (10, 20)
        );
        assert!(d.hash_permits() >= 1);
        let e = env(&[("PULSESTREAM_SERVER_METRICS_TOKEN", "s3cret")]);
        let c = Config::load_from(None, &e, &Overrides::default()).expect("env");
        assert_eq!(c.server.metrics_token.as_deref(), Some("s3cret"));
        for (edit, key) in [
            (
                (|c: &mut Config| c.server.max_connections_per_ip = 0) as fn(&mut Config),
                "server.max_connections_per_ip",
            ),
            (
                |c| c.limits.query_memory_bytes = 1,
                "limits.query_memory_bytes",
            ),
            (
                |c| c.limits.max_concurrent_queries = 0,
                "limits.max_concurrent_queries",
            ),
            (
                |c| c.server.idle_timeout = Duration::ZERO,
                "server.idle_timeout",
            ),
            (|c| c.auth.login_burst_per_ip = 0, "auth.login_burst_per_ip"),
        ] {
            let mut c = Config::default();
            edit(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
