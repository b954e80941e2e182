//! Retention: each tenant's events older than its `retention_days` are
//! dropped, whole time partitions at a time, by a periodic sweep; audit
//! entries older than `limits.audit_retention_days` go in the same sweep.
//!
//! The store knows partitions but not tenants' settings; metadata knows the
//! settings. This module joins the two and owns only the schedule.

use std::sync::Arc;
use std::time::Duration;

use pulsestream_storage::{Micros, TenantId};

use crate::app::AppState;

/// Tenants read from metadata per page while sweeping.
const SWEEP_PAGE: usize = 1000;

/// Drops every tenant's partitions that end at or before `now − retention`.
/// Returns the number of partitions dropped. A failure for one tenant is
/// logged and the sweep goes on with the others.
pub fn sweep(state: &AppState, now: Micros) -> u64 {
    let mut dropped = 0;
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = match state.meta.list_tenants(cursor.as_deref(), SWEEP_PAGE) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "retention: cannot list tenants");
                return dropped;
            }
        };
        for t in page {
            let Some(id) = TenantId::new(&t.id) else {
                continue;
            };
            let keep = i64::from(t.retention_days).saturating_mul(24 * Micros::HOUR);
            let cutoff = Micros(now.0.saturating_sub(keep));
            match state.store.drop_before(&id, cutoff) {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(tenant = %id, partitions = n, "retention dropped old partitions");
                    }
                    dropped += n;
                }
                Err(e) => tracing::error!(tenant = %id, error = %e, "retention sweep failed"),
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return dropped,
        }
    }
}

/// Audit entries deleted per metadata transaction: small enough that one
/// transaction never holds the write lock for long.
const AUDIT_PRUNE_BATCH: usize = 10_000;

/// Deletes audit entries older than `limits.audit_retention_days`.
/// Returns how many were deleted.
pub fn prune_audit(state: &AppState, now: Micros) -> usize {
    let keep =
        i64::from(state.config.limits.audit_retention_days).saturating_mul(24 * Micros::HOUR);
    let cutoff = now.0.saturating_sub(keep);
    let mut total = 0;
    loop {
        match state.meta.prune_audit(cutoff, AUDIT_PRUNE_BATCH) {
            Ok(n) => {
                total += n;
                if n < AUDIT_PRUNE_BATCH {
                    return total;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "retention: cannot prune the audit log");
                return total;
            }
        }
    }
}

/// Sweeps every `interval` until `stop` fires (a service, see `services`).
pub async fn run(state: Arc<AppState>, interval: Duration, mut stop: crate::services::Stop) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.stopped() => return,
        }
        let s = state.clone();
        let work = move || {
            sweep(&s, Micros::now());
            let n = prune_audit(&s, Micros::now());
            if n > 0 {
                tracing::info!(entries = n, "retention pruned old audit entries");
            }
        };
        if let Err(e) = tokio::task::spawn_blocking(work).await {
            tracing::error!(error = %e, "retention sweep task failed");
        }
    }
}
