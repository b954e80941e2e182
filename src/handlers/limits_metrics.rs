//! The `/metrics` side of the abuse limits: who may scrape (an optional
//! bearer token), whether per-tenant series are shown, and the counters of
//! refusals and cut-offs (hashing queue, read gate, connection deadlines,
//! cancelled queries, stalled exports).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use hyper::Request;
use hyper::header::AUTHORIZATION;

use crate::app::AppState;
use crate::connection::ConnStats;
use crate::http::ApiError;

/// 401 unless the request carries `Authorization: Bearer <metrics_token>`
/// (when one is configured).
pub fn authorize<B>(state: &AppState, req: &Request<B>) -> Result<(), ApiError> {
    let Some(want) = &state.config.server.metrics_token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), want.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "metrics require the configured bearer token",
        ))
    }
}

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The store's statistics as `/metrics` may show them: with
/// `metrics_per_tenant = false` the tenants are summed into one unnamed
/// entry, so no tenant id or size leaves the appliance.
pub fn visible_stats(state: &AppState) -> pulsestream_storage::StoreStats {
    let mut stats = state.store.stats();
    if !state.config.server.metrics_per_tenant {
        stats.tenants.clear();
    }
    stats
}

/// Counters of the limits, appended to the exposition.
pub fn render(state: &AppState, out: &mut String) {
    let c = &state.conn_stats;
    let r = &state.read_stats;
    let series: [(&str, &str, u64); 8] = [
        (
            "pulsestream_login_hash_refused_total",
            "Logins and password changes refused because the hashing queue was full.",
            state.hash_gate.refused() as u64,
        ),
        (
            "pulsestream_read_refused_total",
            "Queries, searches and exports refused because the read queue was full.",
            state.read_gate.refused() as u64,
        ),
        (
            "pulsestream_queries_cancelled_total",
            "Queries whose work stopped at their deadline or on cancellation.",
            r.cancelled.load(Ordering::Relaxed),
        ),
        (
            "pulsestream_exports_stalled_total",
            "Exports stopped because their client stopped reading.",
            r.exports_stalled.load(Ordering::Relaxed),
        ),
        (
            "pulsestream_connections_header_timeout_total",
            "Connections closed without a complete request head in time.",
            ConnStats::get(&c.header_timeouts),
        ),
        (
            "pulsestream_connections_idle_closed_total",
            "Keep-alive connections closed after the idle timeout.",
            ConnStats::get(&c.idle_closed),
        ),
        (
            "pulsestream_connections_write_timeout_total",
            "Connections closed because a response made no write progress.",
            ConnStats::get(&c.write_timeouts),
        ),
        (
            "pulsestream_connections_per_ip_refused_total",
            "Connections refused at accept by the per-address cap.",
            ConnStats::get(&c.per_ip_refused),
        ),
    ];
    for (name, help, v) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
