//! The alerting engine's notion of "now". Everything time-dependent in
//! `alerting` (window edges, `for`, `keep_firing_for`, repeats, escalation,
//! retries, silences) reads time through a `Clock`, so tests drive time by
//! hand instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use pulsestream_storage::Micros;

/// A source of wall-clock time in microseconds since the epoch.
pub trait Clock: Send + Sync {
    fn now(&self) -> Micros;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        Micros::now()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn at(t: Micros) -> TestClock {
        TestClock(Arc::new(AtomicI64::new(t.0)))
    }
    pub fn set(&self, t: Micros) {
        self.0.store(t.0, Ordering::SeqCst);
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * Micros::SECOND, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Micros {
        Micros(self.0.load(Ordering::SeqCst))
    }
}
