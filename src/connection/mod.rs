//! What one TCP connection may cost: a cap per client address, a deadline
//! for its first request and for idleness between requests (whatever the
//! protocol, HTTP/2 preface included), and a bound on how long a response
//! may make no write progress.
//!
//! The server wires these around hyper; this module never parses HTTP.
//! Counters for `/metrics` and tests live in `ConnStats`.

pub mod activity;
pub mod per_ip;
pub mod write_deadline;

use std::sync::atomic::{AtomicU64, Ordering};

pub use activity::{Activity, InFlight, InFlightBody, Verdict};
pub use per_ip::{IpSlot, PerIpConnections};
pub use write_deadline::WriteDeadline;

/// Why connections were closed by the limits (monotonic counters).
#[derive(Debug, Default)]
pub struct ConnStats {
    /// No complete request head within `server.header_read_timeout`.
    pub header_timeouts: AtomicU64,
    /// No request for `server.idle_timeout` on a kept-alive connection.
    pub idle_closed: AtomicU64,
    /// A write made no progress for `server.write_timeout`.
    pub write_timeouts: AtomicU64,
    /// Refused at accept: the address had `max_connections_per_ip` open.
    pub per_ip_refused: AtomicU64,
}

impl ConnStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
