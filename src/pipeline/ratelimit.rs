//! Per-tenant ingest limits: a token bucket (events/s with a burst) and a
//! daily quota (events per UTC day), contract section 4.
//!
//! Every function takes the time as a parameter so tests drive the clock.
//! One mutex per tenant behind a read-mostly map: ingest requests of
//! different tenants never contend, and a tenant's check is a few
//! arithmetic operations under its own lock.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use pulsestream_storage::{Micros, TenantId};

const MICROS_PER_DAY: i64 = 24 * Micros::HOUR;

/// A tenant's configured limits (from its metadata record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sustained events per second; 0 means unlimited.
    pub eps: u64,
    /// Events that may arrive at once above the sustained rate.
    pub burst: u64,
    /// Events per UTC day; 0 means unlimited.
    pub quota_per_day: u64,
}

/// Why a request was refused, with what the 429 headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Whole seconds after which the request would pass.
    pub retry_after_secs: u64,
    /// `X-RateLimit-Limit`: the limit that refused it.
    pub limit: u64,
    /// `X-RateLimit-Remaining`: what is left now.
    pub remaining: u64,
    /// True when the daily quota (not the rate) refused it.
    pub quota: bool,
}

/// What an admitted request sees, for its `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub limit: u64,
    pub remaining: u64,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens now, in micro-events so refill needs no floating point. May
    /// go negative: a batch larger than the burst passes when the bucket
    /// is full and leaves a debt the rate pays back.
    tokens: i128,
    last: Micros,
    day: i64,
    used_today: u64,
}

/// The limiter of every tenant.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: RwLock<HashMap<TenantId, Arc<Mutex<Bucket>>>>,
}

const SCALE: i128 = 1_000_000;

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn bucket(&self, tenant: &TenantId, limits: &Limits, now: Micros) -> Arc<Mutex<Bucket>> {
        if let Some(b) = self.buckets.read().get(tenant) {
            return b.clone();
        }
        self.buckets
            .write()
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Bucket {
                    tokens: i128::from(limits.burst.max(1)) * SCALE,
                    last: now,
                    day: now.0.div_euclid(MICROS_PER_DAY),
                    used_today: 0,
                }))
            })
            .clone()
    }

    /// Takes `n` events from `tenant`'s allowance at `now`, or says when to retry.
    pub fn check(
        &self,
        tenant: &TenantId,
        n: u64,
        limits: &Limits,
        now: Micros,
    ) -> Result<Admitted, Refused> {
        let b = self.bucket(tenant, limits, now);
        let mut b = b.lock();

        let day = now.0.div_euclid(MICROS_PER_DAY);
        if day != b.day {
            b.day = day;
            b.used_today = 0;
        }
        if limits.quota_per_day > 0 && b.used_today.saturating_add(n) > limits.quota_per_day {
            let next_day = (day + 1) * MICROS_PER_DAY;
            let wait = (next_day - now.0).max(0) as u64;
            return Err(Refused {
                retry_after_secs: wait.div_ceil(1_000_000).max(1),
                limit: limits.quota_per_day,
                remaining: limits.quota_per_day.saturating_sub(b.used_today),
                quota: true,
            });
        }

        let mut admitted = Admitted {
            limit: limits.quota_per_day,
            remaining: limits
                .quota_per_day
                .saturating_sub(b.used_today.saturating_add(n)),
        };
        if limits.eps > 0 {
            let burst = i128::from(limits.burst.max(1)) * SCALE;
            let elapsed = i128::from((now.0 - b.last.0).max(0));
            // elapsed µs × eps events/s = micro-events.
            b.tokens = (b.tokens + elapsed * i128::from(limits.eps)).min(burst);
            b.last = Micros(now.0.max(b.last.0));
            let need = i128::from(n) * SCALE;
            if b.tokens < need.min(burst) {
                let missing = need.min(burst) - b.tokens;
                let wait_us = missing / i128::from(limits.eps);
                return Err(Refused {
                    retry_after_secs: (wait_us as u64).div_ceil(1_000_000).max(1),
                    limit: limits.eps,
                    remaining: (b.tokens.max(0) / SCALE) as u64,
                    quota: false,
                });
            }
            b.tokens -= need;
            admitted = Admitted {
                limit: limits.eps,
                remaining: (b.tokens.max(0) / SCALE) as u64,
            };
        }
        b.used_today = b.used_today.saturating_add(n);
        Ok(admitted)
    }

    /// Gives back events admitted but then rejected by validation, so an
    /// agent's invalid events do not use up its quota.
    pub fn refund(&self, tenant: &TenantId, n: u64, limits: &Limits) {
        if n == 0 {
            return;
        }
        let Some(b) = self.buckets.read().get(tenant).cloned() else {
            return;
        };
        let mut b = b.lock();
        b.used_today = b.used_today.saturating_sub(n);
        if limits.eps > 0 {
            let burst = i128::from(limits.burst.max(1)) * SCALE;
            b.tokens = (b.tokens + i128::from(n) * SCALE).min(burst);
        }
    }

    /// Forgets a tenant (deleted, or its limits changed).
    pub fn forget(&self, tenant: &TenantId) {
        self.buckets.write().remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TenantId {
        TenantId::new("t1").expect("id")
    }

    const T0: Micros = Micros(1_795_600_800_000_000);

    #[test]
    fn burst_then_rate() {
        let rl = RateLimiter::new();
        let l = Limits {
            eps: 10,
            burst: 20,
            quota_per_day: 0,
        };
        assert_eq!(rl.check(&t(), 20, &l, T0).map(|a| a.remaining), Ok(0));
        let r = rl.check(&t(), 1, &l, T0).expect_err("empty bucket");
        assert_eq!(
            (r.retry_after_secs, r.limit, r.remaining, r.quota),
            (1, 10, 0, false)
        );
        // 0.5 s refills 5 events.
        assert!(rl.check(&t(), 5, &l, Micros(T0.0 + 500_000)).is_ok());
        assert!(rl.check(&t(), 1, &l, Micros(T0.0 + 500_000)).is_err());
        // A long pause refills only up to the burst.
        assert!(rl.check(&t(), 20, &l, Micros(T0.0 + 3_600_000_000)).is_ok());
        assert!(rl.check(&t(), 1, &l, Micros(T0.0 + 3_600_000_000)).is_err());
    }

    #[test]
    fn big_batches_pass_on_a_full_bucket_and_leave_debt() {
        let rl = RateLimiter::new();
        let l = Limits {
            eps: 100,
            burst: 100,
            quota_per_day: 0,
        };
        assert!(rl.check(&t(), 1000, &l, T0).is_ok());
        let r = rl
            .check(&t(), 1, &l, Micros(T0.0 + 1_000_000))
            .expect_err("in debt");
        // 800 events of debt left after 1 s at 100/s, plus the one asked
        // for: 8.01 s more, rounded up.
        assert_eq!(r.retry_after_secs, 9);
        assert!(rl.check(&t(), 1, &l, Micros(T0.0 + 9_100_000)).is_ok());
    }

    #[test]
    fn daily_quota_resets_at_midnight() {
        let rl = RateLimiter::new();
        let l = Limits {
            eps: 0,
            burst: 0,
            quota_per_day: 100,
        };
        let midnight = Micros((T0.0.div_euclid(MICROS_PER_DAY) + 1) * MICROS_PER_DAY);
        assert_eq!(rl.check(&t(), 60, &l, T0).map(|a| a.remaining), Ok(40));
        let r = rl.check(&t(), 41, &l, T0).expect_err("over quota");
        assert!(r.quota);
        assert_eq!(r.remaining, 40);
        assert_eq!(r.retry_after_secs, ((midnight.0 - T0.0) / 1_000_000) as u64);
        rl.refund(&t(), 10, &l);
        assert!(rl.check(&t(), 50, &l, T0).is_ok());
        assert!(rl.check(&t(), 100, &l, midnight).is_ok());
    }

    #[test]
    fn tenants_are_independent() {
        let rl = RateLimiter::new();
        let l = Limits {
            eps: 1,
            burst: 1,
            quota_per_day: 0,
        };
        let other = TenantId::new("t2").expect("id");
        assert!(rl.check(&t(), 1, &l, T0).is_ok());
        assert!(rl.check(&t(), 1, &l, T0).is_err());
        assert!(rl.check(&other, 1, &l, T0).is_ok());
    }
}
