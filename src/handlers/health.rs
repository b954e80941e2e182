//! `GET /health` (and the old per-area paths) and `GET /metrics`.

use hyper::StatusCode;

use pulsestream_storage::Micros;

use crate::app::AppState;
use crate::http::{HttpResponse, json, text};
use crate::read::timeparse::format_rfc3339_millis;

/// `{"status", "version", "uptime_s", "storage": {...}}`. `degraded` while
/// the disk is full (reads work, writes answer 507) or while any damage is
/// known, which `damage` then lists (contract §11).
pub fn health(state: &AppState) -> HttpResponse {
    let stats = state.store.stats();
    let sealed_bytes: u64 = stats.tenants.iter().map(|t| t.sealed_bytes).sum();
    let segments: u64 = stats.tenants.iter().map(|t| t.sealed_segments).sum();
    let rows: u64 = stats
        .tenants
        .iter()
        .map(|t| t.sealed_rows + t.active_rows)
        .sum();
    let damage: Vec<serde_json::Value> = state
        .store
        .damage()
        .iter()
        .map(|d| {
            let since = d
                .since
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_micros() as i64);
            serde_json::json!({
                "kind": d.kind.as_str(),
                "path": d.path,
                "detail": d.detail,
                "since": format_rfc3339_millis(Micros(since)),
            })
        })
        .collect();
    let status = if stats.disk_full || !damage.is_empty() {
        "degraded"
    } else {
        "ok"
    };
    let mut answer = serde_json::json!({
            "status": status,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started_at.elapsed().as_secs(),
            "storage": {
                "disk_full": stats.disk_full,
                "wal_bytes": stats.wal_bytes,
                "durable_lsn": stats.durable_lsn.0,
                "sealed_bytes": sealed_bytes,
                "segments": segments,
                "events": rows,
                "tenants": state.meta.tenant_count(),
            },
    });
    answer["damage"] = serde_json::Value::Array(damage);
    json(StatusCode::OK, &answer)
}

/// Prometheus text exposition format 0.0.4.
/// Per-tenant series follow `server.metrics_per_tenant`; the limits'
/// counters are appended (`limits_metrics`).
pub fn metrics(state: &AppState) -> HttpResponse {
    let stats = super::limits_metrics::visible_stats(state);
    let mut out = state.metrics.render(&stats);
    super::limits_metrics::render(state, &mut out);
    state.alerting.render_metrics(&mut out);
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out,
    )
}
