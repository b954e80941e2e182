//! The live dashboard: the WebSocket stream (`ws`), the hub that fans
//! acknowledged events, per-second metrics and alert changes out to its
//! subscribers (`hub`), subscription filters (`filter`), and the two
//! read endpoints about it: connection statistics and widget data
//! (`handlers`).
//!
//! The hub is an ingest observer (it never slows ingestion: one short
//! lock per acknowledged batch) and an alert listener; its timers run as
//! the `live` background service (`run`).

pub mod filter;
pub mod handlers;
pub mod hub;
pub mod ws;

use std::sync::Arc;

use pulsestream_storage::Micros;

pub use hub::Hub;

use crate::services::Stop;

/// Per-second metrics are pushed this often (contract: every second).
pub const METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The hub's timers: event batches every `hub::FLUSH_EVERY`, metrics every
/// `METRICS_EVERY`, until shutdown.
pub async fn run(hub: Arc<Hub>, mut stop: Stop) {
    let mut flush = tokio::time::interval(hub::FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut metrics = tokio::time::interval(METRICS_EVERY);
    metrics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if !hub.has_pending() {
                    continue;
                }
                let h = hub.clone();
                // Rendering a large batch for many filters is CPU work:
                // keep it off the request threads' way.
                let _ = tokio::task::spawn_blocking(move || h.flush_events()).await;
            }
            _ = metrics.tick() => hub.flush_metrics(Micros::now()),
            () = stop.stopped() => break,
        }
    }
}
