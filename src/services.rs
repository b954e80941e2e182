//! Background work with one lifecycle: every service starts when the
//! server starts, is told to stop when it shuts down, and is awaited (with
//! a deadline) before the store is closed, so no service writes to a closed
//! store and none is left running.
//!
//! A service is a future that runs until its `Stop` fires. Today: the
//! retention sweep and alerting (rolling windows, evaluator, notifier). To add one (the alert evaluator, the notifier, the
//! live hub), add one line to `Services::start`:
//!
//! ```text
//! s.spawn("evaluator", crate::alerting::run(state.clone(), s.stop_signal()));
//! ```
//!
//! A service whose work is blocking runs it with `spawn_blocking` inside its
//! future and checks `Stop::is_stopped` between steps. This module must
//! never serve HTTP or hold request state; the server calls `start` and
//! `stop` and nothing else.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;

/// How long `stop` waits for all services together before it abandons the
/// stragglers: a service mid-sweep finishes its step well within this, and
/// shutdown must not hang on one that does not.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A service's view of shutdown.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once shutdown has begun.
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which is shutdown too.
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// True once shutdown has begun (for blocking loops).
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

/// The running services.
pub struct Services {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Services {
    /// Starts every background service of the appliance.
    pub fn start(state: &Arc<AppState>) -> Services {
        let mut s = Services::empty();
        s.spawn(
            "retention",
            crate::retention::run(
                state.clone(),
                state.config.storage.retention_interval,
                s.stop_signal(),
            ),
        );
        let alerting = state.alerting.clone();
        let mut stop = s.stop_signal();
        s.spawn("alerting", async move {
            let handle = crate::alerting::start(alerting).await;
            stop.stopped().await;
            handle.shutdown().await;
        });
        s.spawn(
            "live",
            crate::live::run(state.live.clone(), s.stop_signal()),
        );
        s
    }

    /// No services yet (for `start` and tests).
    pub fn empty() -> Services {
        Services {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// A handle that fires when `stop` is called.
    pub fn stop_signal(&self) -> Stop {
        Stop(self.stop.subscribe())
    }

    /// Runs `service` until shutdown.
    pub fn spawn(
        &mut self,
        name: &'static str,
        service: impl Future<Output = ()> + Send + 'static,
    ) {
        self.tasks.push((name, tokio::spawn(service)));
    }

    /// Signals every service and waits for them (up to `STOP_DEADLINE`).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
        for (name, task) in self.tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(())) => tracing::debug!(service = name, "service stopped"),
                Ok(Err(e)) => tracing::error!(service = name, error = %e, "service failed"),
                Err(_) => {
                    tracing::warn!(service = name, "service did not stop in time; aborted");
                    abort.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn stop_reaches_every_service_and_waits_for_it() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut s = Services::empty();
        for name in ["a", "b"] {
            let mut stop = s.stop_signal();
            let done = done.clone();
            s.spawn(name, async move {
                stop.stopped().await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        tokio::task::yield_now().await;
        assert_eq!(done.load(Ordering::SeqCst), 0);
        s.stop().await;
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_ignores_stop_is_abandoned() {
        let mut s = Services::empty();
        s.spawn("stuck", std::future::pending());
        s.stop().await;
    }
}
