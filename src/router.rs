//! The single dispatcher: the only place that matches on method and path.
//!
//! Routes (auth column: none / user JWT / API key / platform admin):
//!
//! | method | path | auth | handler |
//! |---|---|---|---|
//! | GET | `/health`, `/api/v1/{ingestion,alerting,storage}/health` | none | `health::health` |
//! | GET | `/metrics` | none, or bearer `server.metrics_token` when set | `health::metrics` |
//! | POST | `/api/v1/auth/register/tenant` | platform admin, or none with `allow_signup` | `auth::register_tenant` |
//! | POST | `/api/v1/auth/login` | none | `auth::login` |
//! | POST | `/api/v1/auth/refresh` | refresh token in body | `auth::refresh` |
//! | POST | `/api/v1/auth/logout` | refresh token in body | `auth::logout` |
//! | GET, PUT | `/api/v1/auth/profile` | user | `auth::get_profile`, `auth::put_profile` |
//! | POST | `/api/v1/auth/change-password` | user | `auth::change_password` |
//! | POST | `/api/v1/auth/register/user` | admin | `users::register` |
//! | GET | `/api/v1/auth/users` | admin | `users::list` |
//! | GET, PATCH, DELETE | `/api/v1/auth/users/{id}` | admin | `users::{get,patch,delete}` |
//! | GET, PUT | `/api/v1/auth/tenant/profile` | any role / owner | `tenant::{get,put}` |
//! | GET, POST | `/api/v1/auth/api-keys` | admin | `api_keys::{list,create}` |
//! | GET, DELETE | `/api/v1/auth/api-keys/{id}` | admin | `api_keys::{get,revoke}` |
//! | GET, POST | `/api/v1/admin/tenants` | platform admin | `admin::{list,create}` |
//! | GET, PATCH, DELETE | `/api/v1/admin/tenants/{id}` | platform admin | `admin::{get,patch,delete}` |
//! | POST | `/api/v1/admin/tenants/{id}/api-keys` | platform admin | `admin::create_key` |
//! | POST | `/api/v1/admin/tenants/{id}/users` | platform admin | `admin::create_user` |
//! | GET | `/api/v1/audit` | admin (platform admin: all) | `audit::list` |
//! | GET | `/api/v1/audit/{id}` | admin (platform admin: all) | `audit::get` |
//! | GET, PUT | `/api/v1/dashboard/config` | user | `dashboard_config::{get,put}` |
//! | GET | `/api/v1/dashboard/overview` | user (platform admin: `?tenant=`) | `dashboard::overview` |
//! | GET | `/api/v1/dashboard/events/stream` | user (platform admin: `?tenant=`) | `dashboard::events_stream` |
//! | GET | `/api/v1/dashboard/ws`, `/api/v1/dashboard/ws/{tenant}` | user JWT in `?token=` or `Sec-WebSocket-Protocol` | `live::ws::upgrade` |
//! | GET | `/api/v1/dashboard/connections/stats` | user (platform admin: all) | `live::handlers::connection_stats` |
//! | GET | `/api/v1/dashboard/widgets/{widget_id}` | user | `live::handlers::widget` |
//! | POST | `/api/v1/ingestion/events` | key `ingest` | `ingest::handle_single` |
//! | POST | `/api/v1/ingestion/events/batch` | key `ingest` | `ingest::handle_batch` |
//! | POST | `/v1/traces` | key `ingest` | `otlp::handle_traces` |
//! | GET | `/api/v1/ingestion/events/search` | user or key `read` | `read::search` |
//! | GET | `/api/v1/ingestion/events/statistics` | user or key `read` | `read::statistics` |
//! | GET | `/api/v1/ingestion/events/{id}` | user or key `read` | `read::search::get_event` |
//! | POST | `/api/v1/query` | user or key `read` | `read::query` |
//! | GET | `/api/v1/export` | user or key `read` | `read::export` |
//! | GET, POST | `/api/v1/alerting/rules` | user (POST: admin) | `alerting::handlers::{list_rules,put_rule}` |
//! | GET, PUT, DELETE | `/api/v1/alerting/rules/{id}` | user (PUT, DELETE: admin) | `alerting::handlers::{get_rule,put_rule,delete_rule}` |
//! | GET | `/api/v1/alerting/alerts` | user | `alerting::handlers::list_alerts` |
//! | GET | `/api/v1/alerting/alerts/{id}` | user | `alerting::handlers::get_alert` |
//! | POST | `/api/v1/alerting/alerts/{id}/acknowledge`, `.../resolve` | admin | `alerting::handlers::alert_action` |
//! | GET, POST | `/api/v1/alerting/channels` | user (POST: admin) | `alerting::handlers::{list_channels,put_channel}` |
//! | GET, PUT, DELETE | `/api/v1/alerting/channels/{id}` | user (PUT, DELETE: admin) | `alerting::handlers::{get_channel,put_channel,delete_channel}` |
//! | GET, POST | `/api/v1/alerting/silences` | user (POST: admin) | `alerting::handlers::{list_silences,create_silence}` |
//! | GET, DELETE | `/api/v1/alerting/silences/{id}` | user (DELETE: admin) | `alerting::handlers::{get_silence,delete_silence}` |
//! | GET | `/api/v1/alerting/notifications` | user | `alerting::handlers::list_notifications` |
//! | POST | `/api/v1/alerting/notifications/test` | admin | `alerting::handlers::test_notification` |
//! | GET | `/api/v1/dashboard/metrics/real-time` | user or key `read` | `alerting::realtime::real_time` |
//! | GET | `/api/v1/dashboard/alerts/summary` | user or key `read` | `alerting::summary::alerts_summary` |
//! | GET, HEAD | `/`, `/{page}` (`ui::PAGES`), `/index.html`, `/assets/...` | none | `ui::serve` |
//!
//! A known path with a wrong method answers 405 `method_not_allowed`
//! (checked before authentication); anything else 404 `not_found`.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::alerting::handlers as al;
use crate::app::AppState;
use crate::handlers::{
    admin, api_keys, audit, auth, dashboard, dashboard_config, health, limits_metrics, tenant,
    users,
};
use crate::http::{ApiError, HttpResponse};

/// Answers one request. Never fails: errors become the contract's body.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> HttpResponse {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    state
        .metrics
        .http_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let resp = match dispatch(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    crate::http::log::request(&method, &path, resp.status(), start.elapsed());
    resp
}

/// 405 unless `method` is one of `allowed`.
fn allow(method: &Method, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method.as_str()) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(allowed))
    }
}

async fn dispatch(state: Arc<AppState>, req: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(&path);
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    let m = &method;

    match segs.as_slice() {
        ["health"] | ["api", "v1", "ingestion" | "alerting" | "storage", "health"] => {
            allow(m, &["GET"])?;
            Ok(health::health(&state))
        }
        ["metrics"] => {
            allow(m, &["GET"])?;
            limits_metrics::authorize(&state, &req)?;
            Ok(health::metrics(&state))
        }

        // Sign-up and sessions.
        ["api", "v1", "auth", "register", "tenant"] => {
            allow(m, &["POST"])?;
            auth::register_tenant(state, req).await
        }
        ["api", "v1", "auth", "login"] => {
            allow(m, &["POST"])?;
            auth::login(state, req).await
        }
        ["api", "v1", "auth", "refresh"] => {
            allow(m, &["POST"])?;
            auth::refresh(state, req).await
        }
        ["api", "v1", "auth", "logout"] => {
            allow(m, &["POST"])?;
            auth::logout(state, req).await
        }
        ["api", "v1", "auth", "profile"] => {
            allow(m, &["GET", "PUT"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                auth::get_profile(state, p).await
            } else {
                auth::put_profile(state, req, p).await
            }
        }
        ["api", "v1", "auth", "change-password"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            auth::change_password(state, req, p).await
        }

        // Users of a tenant.
        ["api", "v1", "auth", "register", "user"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            users::register(state, req, p).await
        }
        ["api", "v1", "auth", "users"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            users::list(state, req, p).await
        }
        ["api", "v1", "auth", "users", id] => {
            allow(m, &["GET", "PATCH", "DELETE"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            match *m {
                Method::GET => users::get(state, p, &id).await,
                Method::PATCH => users::patch(state, req, p, &id).await,
                _ => users::delete(state, p, &id).await,
            }
        }

        // The caller's tenant.
        ["api", "v1", "auth", "tenant", "profile"] => {
            allow(m, &["GET", "PUT"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                tenant::get(state, p).await
            } else {
                tenant::put(state, req, p).await
            }
        }
        ["api", "v1", "auth", "api-keys"] => {
            allow(m, &["GET", "POST"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                api_keys::list(state, req, p).await
            } else {
                api_keys::create(state, req, p).await
            }
        }
        ["api", "v1", "auth", "api-keys", id] => {
            allow(m, &["GET", "DELETE"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                api_keys::get(state, p, &id).await
            } else {
                api_keys::revoke(state, p, &id).await
            }
        }

        // Platform administration.
        ["api", "v1", "admin", "tenants"] => {
            allow(m, &["GET", "POST"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                admin::list(state, req, p).await
            } else {
                admin::create(state, req, p).await
            }
        }
        ["api", "v1", "admin", "tenants", id] => {
            allow(m, &["GET", "PATCH", "DELETE"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            match *m {
                Method::GET => admin::get(state, p, &id).await,
                Method::PATCH => admin::patch(state, req, p, &id).await,
                _ => admin::delete(state, p, &id).await,
            }
        }
        ["api", "v1", "admin", "tenants", id, "api-keys"] => {
            allow(m, &["POST"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            admin::create_key(state, req, p, &id).await
        }
        ["api", "v1", "admin", "tenants", id, "users"] => {
            allow(m, &["POST"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            admin::create_user(state, req, p, &id).await
        }
        ["api", "v1", "audit"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            audit::list(state, req, p).await
        }
        ["api", "v1", "audit", id] => {
            allow(m, &["GET"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            audit::get(state, p, &id).await
        }
        ["api", "v1", "dashboard", "config"] => {
            allow(m, &["GET", "PUT"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                dashboard_config::get(state, p).await
            } else {
                dashboard_config::put(state, req, p).await
            }
        }
        ["api", "v1", "dashboard", "overview"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            dashboard::overview(state, req, p).await
        }
        ["api", "v1", "dashboard", "events", "stream"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            dashboard::events_stream(state, req, p).await
        }
        ["api", "v1", "dashboard", "ws"] => {
            allow(m, &["GET"])?;
            crate::live::ws::upgrade(state, req, None).await
        }
        ["api", "v1", "dashboard", "ws", tenant] => {
            allow(m, &["GET"])?;
            let tenant = (*tenant).to_owned();
            crate::live::ws::upgrade(state, req, Some(tenant)).await
        }
        ["api", "v1", "dashboard", "connections", "stats"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            crate::live::handlers::connection_stats(state, p).await
        }
        ["api", "v1", "dashboard", "widgets", id] => {
            allow(m, &["GET"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            crate::live::handlers::widget(state, p, &id).await
        }

        // ---- Ingestion and reading (`crate::ingest`, `crate::read`).
        ["api", "v1", "ingestion", "events"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            crate::ingest::handle_single(state, req, p).await
        }
        ["api", "v1", "ingestion", "events", "batch"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            crate::ingest::handle_batch(state, req, p).await
        }
        ["api", "v1", "ingestion", "events", "search"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            crate::read::search(state, req, p).await
        }
        ["api", "v1", "ingestion", "events", "statistics"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            crate::read::statistics(state, req, p).await
        }
        ["api", "v1", "ingestion", "events", id] => {
            allow(m, &["GET"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            crate::read::search::get_event(state, p, &id).await
        }
        ["api", "v1", "query"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            crate::read::query(state, req, p).await
        }
        ["api", "v1", "export"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            crate::read::export(state, req, p).await
        }
        // ---- OpenTelemetry (`crate::otlp`).
        ["v1", "traces"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            crate::otlp::handle_traces(state, req, p).await
        }
        // ---- End of the ingestion and reading routes.

        // ---- Alerting (`crate::alerting`).
        ["api", "v1", "alerting", "rules"] => {
            allow(m, &["GET", "POST"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                al::list_rules(state, req, p).await
            } else {
                al::put_rule(state, req, p, None).await
            }
        }
        ["api", "v1", "alerting", "rules", id] => {
            allow(m, &["GET", "PUT", "DELETE"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            match *m {
                Method::GET => al::get_rule(state, p, &id).await,
                Method::PUT => al::put_rule(state, req, p, Some(&id)).await,
                _ => al::delete_rule(state, p, &id).await,
            }
        }
        ["api", "v1", "alerting", "alerts"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            al::list_alerts(state, req, p).await
        }
        ["api", "v1", "alerting", "alerts", id] => {
            allow(m, &["GET"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            al::get_alert(state, p, &id).await
        }
        [
            "api",
            "v1",
            "alerting",
            "alerts",
            id,
            action @ ("acknowledge" | "resolve"),
        ] => {
            allow(m, &["POST"])?;
            let (id, action) = ((*id).to_owned(), *action);
            let p = state.authenticate(&req)?;
            al::alert_action(state, p, &id, action).await
        }
        ["api", "v1", "alerting", "channels"] => {
            allow(m, &["GET", "POST"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                al::list_channels(state, req, p).await
            } else {
                al::put_channel(state, req, p, None).await
            }
        }
        ["api", "v1", "alerting", "channels", id] => {
            allow(m, &["GET", "PUT", "DELETE"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            match *m {
                Method::GET => al::get_channel(state, p, &id).await,
                Method::PUT => al::put_channel(state, req, p, Some(&id)).await,
                _ => al::delete_channel(state, p, &id).await,
            }
        }
        ["api", "v1", "alerting", "silences"] => {
            allow(m, &["GET", "POST"])?;
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                al::list_silences(state, req, p).await
            } else {
                al::create_silence(state, req, p).await
            }
        }
        ["api", "v1", "alerting", "silences", id] => {
            allow(m, &["GET", "DELETE"])?;
            let id = (*id).to_owned();
            let p = state.authenticate(&req)?;
            if *m == Method::GET {
                al::get_silence(state, p, &id).await
            } else {
                al::delete_silence(state, p, &id).await
            }
        }
        ["api", "v1", "alerting", "notifications"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            al::list_notifications(state, req, p).await
        }
        ["api", "v1", "alerting", "notifications", "test"] => {
            allow(m, &["POST"])?;
            let p = state.authenticate(&req)?;
            al::test_notification(state, req, p).await
        }
        ["api", "v1", "dashboard", "metrics", "real-time"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            crate::alerting::realtime::real_time(state, req, p).await
        }
        ["api", "v1", "dashboard", "alerts", "summary"] => {
            allow(m, &["GET"])?;
            let p = state.authenticate(&req)?;
            crate::alerting::summary::alerts_summary(state, p).await
        }
        // ---- End of the alerting routes.
        // The web dashboard: its pages and embedded assets (`crate::ui`).
        _ if crate::ui::owns(&path) => {
            allow(m, &["GET", "HEAD"])?;
            crate::ui::serve(m, &path, req.headers())
        }
        _ => Err(not_found()),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}
