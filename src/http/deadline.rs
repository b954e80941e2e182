//! The request deadline, and the one exception to it: once a request has
//! begun appending events, it answers its true outcome however long the
//! append takes.
//!
//! Answering 503 for a batch whose events were (or are about to be) stored
//! makes agents retry and duplicate them. So the ingest pipeline calls
//! `commit_begun()` just before it hands events to the store, and
//! `run_with_deadline` then waits for the handler instead of cutting it
//! off. Before that point the deadline applies as usual: nothing was stored
//! and a 503 is the truth.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

tokio::task_local! {
    /// Set once the request's events are handed to the store.
    static COMMIT_BEGUN: Cell<bool>;
}

/// Marks the current request as having begun an append. Outside a request
/// (tests calling the pipeline directly) it does nothing.
pub fn commit_begun() {
    let _ = COMMIT_BEGUN.try_with(|c| c.set(true));
}

/// Runs `fut` with `timeout`. Returns `None` when the deadline passed
/// before any append began; once one has begun, waits for the outcome.
pub async fn run_with_deadline<F: Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    COMMIT_BEGUN
        .scope(Cell::new(false), async move {
            let fut = std::pin::pin!(fut);
            let mut fut = fut;
            tokio::select! {
                out = &mut fut => Some(out),
                () = tokio::time::sleep(timeout) => {
                    if COMMIT_BEGUN.with(Cell::get) {
                        tracing::debug!("request past its deadline finishes its append");
                        Some(fut.await)
                    } else {
                        None
                    }
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadline_cuts_off_before_a_commit() {
        let r = run_with_deadline(Duration::from_secs(1), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            7
        })
        .await;
        assert_eq!(r, None);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_waits_once_a_commit_began() {
        let r = run_with_deadline(Duration::from_secs(1), async {
            commit_begun();
            tokio::time::sleep(Duration::from_secs(5)).await;
            7
        })
        .await;
        assert_eq!(r, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn fast_requests_are_untouched() {
        let r = run_with_deadline(Duration::from_secs(1), async { 3 }).await;
        assert_eq!(r, Some(3));
    }
}
