//! Per-client-address login rate limit (`auth.login_rate_per_ip`, burst
//! `auth.login_burst_per_ip`): a token bucket per IP address.
//!
//! A token is taken only by an attempt that is about to hash a password,
//! so refusals that cost nothing (a locked account, a malformed body) do
//! not eat the budget. Time is a parameter (microseconds since any fixed
//! origin) so tests drive the clock.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

/// Addresses tracked at most. Each entry is a few dozen bytes; 65,536 caps
/// the table near 4 MiB. Past the cap, buckets that have refilled are
/// forgotten (they hold no information); if every bucket is still busy the
/// table is cleared, trading a moment of leniency for bounded memory.
pub const MAX_TRACKED_ADDRESSES: usize = 65_536;

const MICROS_PER_SEC: i64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, scaled by `MICROS_PER_SEC` so refill is integer arithmetic.
    tokens: i64,
    last: i64,
}

/// The login limiter of every address.
#[derive(Debug)]
pub struct LoginLimiter {
    /// Tokens per second; 0 turns the limiter off.
    rate: u32,
    /// Bucket size.
    burst: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl LoginLimiter {
    pub fn new(rate: u32, burst: u32) -> LoginLimiter {
        LoginLimiter {
            rate,
            burst: burst.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `addr`; `Err(retry_after_secs)` when none is left.
    pub fn take(&self, addr: IpAddr, now: i64) -> Result<(), u64> {
        if self.rate == 0 {
            return Ok(());
        }
        let full = i64::from(self.burst) * MICROS_PER_SEC;
        let rate = i64::from(self.rate);
        let mut map = self.buckets.lock();
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, b| refilled(b, rate, now) < full);
            if map.len() >= MAX_TRACKED_ADDRESSES {
                map.clear();
            }
        }
        let b = map.entry(addr).or_insert(Bucket {
            tokens: full,
            last: now,
        });
        b.tokens = refilled(b, rate, now).min(full);
        b.last = now;
        if b.tokens >= MICROS_PER_SEC {
            b.tokens -= MICROS_PER_SEC;
            Ok(())
        } else {
            let missing = MICROS_PER_SEC - b.tokens;
            // Whole seconds until one token has refilled, rounded up.
            let secs = (missing + rate * MICROS_PER_SEC - 1) / (rate * MICROS_PER_SEC);
            Err(secs.max(1) as u64)
        }
    }
}

fn refilled(b: &Bucket, rate: i64, now: i64) -> i64 {
    let elapsed = now.saturating_sub(b.last).max(0);
    b.tokens.saturating_add(elapsed.saturating_mul(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let l = LoginLimiter::new(10, 20);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..20 {
            assert_eq!(l.take(a, 0), Ok(()));
        }
        assert_eq!(l.take(a, 0), Err(1));
        // Another address has its own bucket.
        assert_eq!(l.take(b, 0), Ok(()));
        // 10/s: a tenth of a second refills one token.
        assert_eq!(l.take(a, 100_000), Ok(()));
        assert!(l.take(a, 100_000).is_err());
        // A long pause refills to the burst, not beyond.
        for _ in 0..20 {
            assert_eq!(l.take(a, 3_600_000_000), Ok(()));
        }
        assert!(l.take(a, 3_600_000_000).is_err());
    }

    #[test]
    fn zero_rate_is_off() {
        let l = LoginLimiter::new(0, 1);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..1000 {
            assert_eq!(l.take(a, 0), Ok(()));
        }
    }

    #[test]
    fn table_stays_bounded() {
        let l = LoginLimiter::new(1, 1);
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 10) {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = l.take(ip, 0);
        }
        assert!(l.buckets.lock().len() <= MAX_TRACKED_ADDRESSES);
    }
}
