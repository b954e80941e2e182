//! The application state every handler shares, and the joins between its
//! parts: authentication (credentials → `Principal`), tenant limits for the
//! ingest path, ingest observers, and first-start bootstrap.
//!
//! `AppState::open` is the only place that opens the data directory; the
//! server and the offline CLI both go through it (the CLI with
//! `open_meta_only`, which never opens the event store).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hyper::Request;
use hyper::header::{AUTHORIZATION, HeaderName};
use pulsestream_storage::{Ack, Event, Store, TenantId};

use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasherId;
use crate::auth::{Principal, Role, apikey, random};
use crate::config::Config;
use crate::http::ApiError;
use crate::meta::{AuditEntry, Meta, MetaError, TenantLimits, User, now_micros};
use crate::metrics::Metrics;

/// Email of the platform administrator created on first start.
pub const ADMIN_EMAIL: &str = "admin@localhost";

/// File the generated first-start admin password is written to (0600).
pub const INITIAL_ADMIN_PASSWORD_FILE: &str = "initial-admin-password";

/// Length of a generated admin password: 24 base62 characters ≈ 143 bits.
const GENERATED_PASSWORD_CHARS: usize = 24;

/// File in the data dir naming the address a running server listens on,
/// so offline commands can turn into online ones. Removed on clean stop.
pub const SERVER_ADDRESS_FILE: &str = "server-address";

/// The data directory's metadata is held by another process.
#[derive(Debug, thiserror::Error)]
#[error(
    "the data directory is in use: {} is locked by another process (stop the server or use its HTTP API)",
    .0.display()
)]
pub struct DataDirInUse(pub std::path::PathBuf);

/// The `X-API-Key` header.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Receives every acknowledged batch, after the WAL sync, in ack order per
/// tenant. Implementations must be fast and must not block (the rolling
/// windows and the live dashboard hang here); heavy work belongs on their
/// own threads.
///
/// The batch is the append's own events, shared: an observer that keeps
/// it past the call (the rolling windows queue it for their thread) clones
/// the `Arc`, never the events.
pub trait IngestObserver: Send + Sync {
    fn on_ack(&self, tenant: &TenantId, events: &Arc<[Event]>, ack: &Ack);
}

/// Everything a request handler can reach.
pub struct AppState {
    pub config: Config,
    pub store: Arc<Store>,
    pub meta: Meta,
    pub metrics: Arc<Metrics>,
    /// For `uptime_s` in health answers.
    pub started_at: Instant,
    /// Called with every acknowledged batch (see `IngestObserver`).
    pub ingest_observers: Vec<Arc<dyn IngestObserver>>,
    /// Signs and verifies access tokens.
    pub jwt: JwtKeys,
    /// argon2id with the configured cost.
    pub passwords: PasswordHasherId,
    /// A hash of a random password with the configured cost: logins for
    /// unknown emails verify against it so they take as long as real ones.
    pub dummy_password_hash: String,
    /// The one ingest pipeline: budgets, rate limits, coalescing, the
    /// append, the observers and the ids (see `pipeline`).
    pub ingest: crate::pipeline::Ingestor,
    /// Admission of argon2 work: bounded concurrency and a short queue.
    pub hash_gate: crate::auth::hash_gate::HashGate,
    /// Login attempts per client address.
    pub login_limiter: crate::auth::login_limit::LoginLimiter,
    /// One deciding login attempt per account at a time (atomic lockout).
    pub account_locks: crate::auth::account_locks::AccountLocks,
    /// Repeated failures folded into one audit entry per minute.
    pub audit_folder: crate::meta::audit_fold::AuditFolder,
    /// Connections closed by their limits (for `/metrics` and tests).
    pub conn_stats: Arc<crate::connection::ConnStats>,
    /// Admission of heavy reads (per tenant and global, bounded queue).
    pub read_gate: Arc<crate::read::gate::ReadGate>,
    /// Cancelled and running queries, stalled exports.
    pub read_stats: Arc<crate::read::query::ReadStats>,
    /// Rules, alerts, rolling windows and notifications (also registered
    /// as an ingest observer).
    pub alerting: Arc<crate::alerting::Alerting>,
    /// The live dashboard's connections and fan-out (also registered as an
    /// ingest observer and an alert listener).
    pub live: Arc<crate::live::Hub>,
    /// Overview computations identical concurrent requests share.
    pub overview_flights: crate::handlers::dashboard::OverviewFlights,
}

impl AppState {
    /// Opens the data directory: metadata (bootstrapping the platform
    /// administrator on first start), the JWT key, then the event store.
    pub fn open(config: Config) -> anyhow::Result<AppState> {
        let (meta, jwt, passwords) = Self::open_meta_only(&config)?;
        let dummy_password_hash = passwords
            .hash(&random::base62(GENERATED_PASSWORD_CHARS))
            .map_err(anyhow::Error::msg)?;
        let store = Store::open(config.store_config()).with_context(|| {
            format!("opening the store in {}", config.storage.data_dir.display())
        })?;
        let ingest = crate::pipeline::Ingestor::new(&config);
        let hash_gate = crate::auth::hash_gate::HashGate::new(config.hash_permits());
        let login_limiter = crate::auth::login_limit::LoginLimiter::new(
            config.auth.login_rate_per_ip,
            config.auth.login_burst_per_ip,
        );
        let read_gate = crate::read::gate::ReadGate::new(
            config.limits.max_concurrent_queries,
            crate::read::gate::MAX_QUEUE_WAIT.min(config.limits.query_timeout),
        );
        let alerting = crate::alerting::Alerting::open(
            store.clone(),
            meta.clone(),
            &config,
            Arc::new(crate::alerting::clock::SystemClock),
        )
        .context("loading alerting state")?;
        let metrics = Arc::new(Metrics::new());
        let live = crate::live::Hub::new(
            config.live.max_connections,
            config.live.max_connections_per_tenant,
            metrics.clone(),
        );
        let listener = live.clone();
        alerting.on_change(Arc::new(move |a: &crate::alerting::model::Alert| {
            listener.on_alert(a)
        }));
        let ingest_observers: Vec<Arc<dyn IngestObserver>> = vec![alerting.clone(), live.clone()];
        Ok(AppState {
            config,
            store,
            meta,
            metrics,
            started_at: Instant::now(),
            ingest_observers,
            jwt,
            passwords,
            dummy_password_hash,
            ingest,
            hash_gate,
            login_limiter,
            account_locks: crate::auth::account_locks::AccountLocks::new(),
            audit_folder: crate::meta::audit_fold::AuditFolder::new(),
            conn_stats: Arc::default(),
            read_gate,
            read_stats: Arc::default(),
            alerting,
            live,
            overview_flights: Default::default(),
        })
    }

    /// The metadata half of `open`, for offline CLI commands.
    pub fn open_meta_only(config: &Config) -> anyhow::Result<(Meta, JwtKeys, PasswordHasherId)> {
        let dir = &config.storage.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let meta = Meta::open(dir).map_err(|e| match e {
            MetaError::InUse(path) => anyhow::Error::new(DataDirInUse(path)),
            other => anyhow::Error::new(other),
        })?;
        let jwt = JwtKeys::load_or_create(dir).context("loading the JWT signing key")?;
        let passwords =
            PasswordHasherId::new(config.password_cost()).map_err(anyhow::Error::msg)?;
        bootstrap_admin(config, &meta, &passwords)?;
        Ok((meta, jwt, passwords))
    }

    /// Resolves the request's credential: `X-API-Key: psk_...`,
    /// `Authorization: Bearer psk_...`, or `Authorization: Bearer <JWT>`.
    pub fn authenticate<B>(&self, req: &Request<B>) -> Result<Principal, ApiError> {
        if let Some(v) = req.headers().get(X_API_KEY) {
            let key = v
                .to_str()
                .map_err(|_| ApiError::unauthorized("invalid API key"))?;
            return self.authenticate_key(key.trim());
        }
        let Some(v) = req.headers().get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized("missing credentials"));
        };
        let v = v
            .to_str()
            .map_err(|_| ApiError::unauthorized("invalid Authorization header"))?;
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("expected a Bearer token"))?
            .trim();
        self.authenticate_token(token)
    }

    /// Resolves a bare token (JWT or `psk_` key), e.g. from `?token=`.
    pub fn authenticate_token(&self, token: &str) -> Result<Principal, ApiError> {
        if token.starts_with(apikey::KEY_PREFIX) {
            self.authenticate_key(token)
        } else {
            self.authenticate_jwt(token)
        }
    }

    /// API key check: one SHA-256 and one hash-map lookup, no I/O.
    pub fn authenticate_key(&self, key: &str) -> Result<Principal, ApiError> {
        if !apikey::looks_like_key(key) {
            return Err(ApiError::unauthorized("invalid API key"));
        }
        let entry = self
            .meta
            .lookup_key(&apikey::hash(key))
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        self.check_tenant_enabled(entry.tenant.as_str())?;
        Ok(Principal::ApiKey {
            key_id: entry.id.clone(),
            tenant: entry.tenant.clone(),
            scopes: entry.scopes.clone(),
        })
    }

    /// Access-token check. The user is re-read so that deletion and role
    /// changes take effect before the token expires.
    pub fn authenticate_jwt(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self
            .jwt
            .verify(token)
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
        let user = self
            .meta
            .get_user(&claims.sub)
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
        if user.tenant != claims.tid {
            return Err(ApiError::unauthorized("invalid or expired token"));
        }
        let tenant = match &user.tenant {
            Some(t) => {
                self.check_tenant_enabled(t)?;
                Some(
                    TenantId::new(t)
                        .ok_or_else(|| ApiError::internal("stored tenant id is invalid"))?,
                )
            }
            None => None,
        };
        Ok(Principal::User {
            user_id: user.id,
            email: user.email,
            tenant,
            role: user.role,
        })
    }

    fn check_tenant_enabled(&self, tenant: &str) -> Result<(), ApiError> {
        match self.meta.tenant_limits(tenant) {
            Some(l) if !l.disabled => Ok(()),
            Some(_) => Err(ApiError::forbidden("tenant is disabled")),
            // Deleted tenant: its credentials are simply gone.
            None => Err(ApiError::unauthorized("invalid credentials")),
        }
    }

    /// A tenant's limits, from memory.
    pub fn tenant_limits(&self, tenant: &TenantId) -> Option<TenantLimits> {
        self.meta.tenant_limits(tenant.as_str())
    }

    /// Hands an acknowledged batch to every observer.
    pub fn notify_ack(&self, tenant: &TenantId, events: &Arc<[Event]>, ack: &Ack) {
        for o in &self.ingest_observers {
            o.on_ack(tenant, events, ack);
        }
    }

    /// Records an audit entry; a failure to record is logged, not returned
    /// (the action itself already happened).
    pub fn audit(
        &self,
        tenant: Option<&str>,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: Option<serde_json::Value>,
    ) {
        let entry = bounded_entry(tenant, actor, action, target, detail);
        if let Err(e) = self.meta.audit(entry) {
            tracing::error!(error = %e, action, "cannot write audit entry");
        }
    }

    /// Like `audit`, for events anyone can repeat at will (failed logins for
    /// an unknown account, attempts on a locked one): folded into one entry
    /// per actor and minute with a `count`.
    pub fn audit_folded(
        &self,
        tenant: Option<&str>,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: Option<serde_json::Value>,
    ) {
        let entry = bounded_entry(tenant, actor, action, target, detail);
        if let Err(e) = self.audit_folder.record(&self.meta, entry, now_micros()) {
            tracing::error!(error = %e, action, "cannot write audit entry");
        }
    }
}

/// Longest actor, action or target kept in an audit entry (bytes). Emails
/// are at most 254 bytes; anything longer is cut, since the fields may come
/// from unauthenticated input.
pub const MAX_AUDIT_FIELD_BYTES: usize = 256;

/// Largest `detail` kept, as JSON (bytes). Details are small summaries; a
/// bigger one is replaced by a note saying it was dropped.
pub const MAX_AUDIT_DETAIL_BYTES: usize = 2048;

/// An audit entry with every field bounded.
fn bounded_entry(
    tenant: Option<&str>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: Option<serde_json::Value>,
) -> AuditEntry {
    let detail = detail.map(|d| {
        if d.to_string().len() > MAX_AUDIT_DETAIL_BYTES {
            serde_json::json!({"truncated": true})
        } else {
            d
        }
    });
    AuditEntry {
        seq: 0,
        at: now_micros(),
        tenant: tenant.map(str::to_owned),
        actor: cut(actor, MAX_AUDIT_FIELD_BYTES),
        action: cut(action, MAX_AUDIT_FIELD_BYTES),
        target: target.map(|t| cut(t, MAX_AUDIT_FIELD_BYTES)),
        detail,
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Creates `admin@localhost` when no platform administrator exists: with
/// `auth.admin_password` if set, else a random password printed once to
/// stderr and written to `<data-dir>/initial-admin-password` (0600).
fn bootstrap_admin(
    config: &Config,
    meta: &Meta,
    passwords: &PasswordHasherId,
) -> anyhow::Result<()> {
    if meta.has_platform_admin()? {
        return Ok(());
    }
    let (password, generated) = match &config.auth.admin_password {
        Some(p) => (p.clone(), false),
        None => (random::base62(GENERATED_PASSWORD_CHARS), true),
    };
    let hash = passwords.hash(&password).map_err(anyhow::Error::msg)?;
    let user = User {
        id: random::id("u"),
        tenant: None,
        email: ADMIN_EMAIL.to_owned(),
        password_hash: hash,
        role: Role::Owner,
        name: Some("Platform administrator".to_owned()),
        created_at: now_micros(),
        failed_logins: 0,
        locked_until: None,
    };
    meta.create_user(&user)?;
    if generated {
        let path = config.storage.data_dir.join(INITIAL_ADMIN_PASSWORD_FILE);
        // A leftover file from an earlier, wiped metadata database would
        // hold a stale password: replace it.
        let _ = std::fs::remove_file(&path);
        crate::meta::fsutil::write_private(&path, format!("{password}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "created platform administrator {ADMIN_EMAIL} with password {password} (also in {})",
            path.display()
        );
    }
    let _ = meta.audit(AuditEntry {
        seq: 0,
        at: now_micros(),
        tenant: None,
        actor: "system".to_owned(),
        action: "admin.bootstrap".to_owned(),
        target: Some(ADMIN_EMAIL.to_owned()),
        detail: None,
    });
    Ok(())
}
