//! `GET /health` (and the old per-area paths) and `GET /metrics`.

use hyper::StatusCode;

use crate::app::AppState;
use crate::http::{HttpResponse, json, text};

/// `{"status", "version", "uptime_s", "storage": {...}}`. `degraded` while
/// the disk is full (reads work, writes answer 507).
pub fn health(state: &AppState) -> HttpResponse {
    let stats = state.store.stats();
    let sealed_bytes: u64 = stats.tenants.iter().map(|t| t.sealed_bytes).sum();
    let segments: u64 = stats.tenants.iter().map(|t| t.sealed_segments).sum();
    let rows: u64 = stats
        .tenants
        .iter()
        .map(|t| t.sealed_rows + t.active_rows)
        .sum();
    let status = if stats.disk_full { "degraded" } else { "ok" };
    json(
        StatusCode::OK,
        &serde_json::json!({
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
        }),
    )
}

/// Prometheus text exposition format 0.0.4.
pub fn metrics(state: &AppState) -> HttpResponse {
    let stats = state.store.stats();
    let mut out = state.metrics.render(&stats);
    state.alerting.render_metrics(&mut out);
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out,
    )
}
