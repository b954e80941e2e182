//! A connection's request activity and the decision to close it: no
//! complete request head within the header deadline (silent sockets, half
//! an HTTP/2 preface, a preface with no request), or no request in flight
//! for the idle timeout.
//!
//! Requests are counted when hyper hands a complete head to the service
//! and uncounted when their response body is dropped (sent or abandoned),
//! so a long streamed export is busy, not idle. The decision is a pure
//! function of the instants given, so it is tested without sleeping.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Frame, SizeHint};
use parking_lot::Mutex;

/// What the watchdog should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Look again after this long.
    Wait(Duration),
    /// No first request head in time.
    CloseNoRequest,
    /// Idle past the idle timeout.
    CloseIdle,
}

/// Shared between a connection's service (requests) and its watchdog.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended; `None` until a request has started.
    last_done: Mutex<Option<Instant>>,
    /// Wakes the watchdog when a request begins or ends, so a deadline
    /// computed before is recomputed at once.
    changed: tokio::sync::Notify,
}

/// Held by a request's response body; marks the request ended on drop.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Activity {
    pub fn new(accepted: Instant) -> Activity {
        Activity {
            accepted,
            in_flight: AtomicUsize::new(0),
            last_done: Mutex::new(None),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// A complete request head arrived.
    pub fn begin(&self, now: Instant) {
        let mut last = self.last_done.lock();
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        last.get_or_insert(now);
        self.changed.notify_one();
    }

    /// A response was sent or abandoned.
    pub fn end(&self, now: Instant) {
        let mut last = self.last_done.lock();
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        *last = Some(now);
        self.changed.notify_one();
    }

    /// Resolves at the next `begin` or `end` (or at once if one happened
    /// since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The decision at `now`.
    pub fn verdict(
        &self,
        now: Instant,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Verdict {
        let last = *self.last_done.lock();
        let busy = self.in_flight.load(Ordering::Acquire) > 0;
        match last {
            None => {
                let deadline = self.accepted + header_timeout;
                if now >= deadline {
                    Verdict::CloseNoRequest
                } else {
                    Verdict::Wait(deadline - now)
                }
            }
            // A request in flight has its own limits (request and write
            // timeouts); look again after a full idle period.
            Some(_) if busy => Verdict::Wait(idle_timeout),
            Some(done) => {
                let deadline = done + idle_timeout;
                if now >= deadline {
                    Verdict::CloseIdle
                } else {
                    Verdict::Wait(deadline - now)
                }
            }
        }
    }
}

impl InFlight {
    pub fn new(a: Arc<Activity>) -> Self {
        a.begin(Instant::now());
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end(Instant::now());
    }
}

/// A response body that keeps its request in flight until it is sent or
/// dropped. Unlike a `map_frame` closure it passes the body's size hint
/// on, so hyper still sends `Content-Length` instead of chunking every
/// response (a refused WebSocket upgrade's client reads the error body
/// only when it is not chunked).
#[derive(Debug)]
pub struct InFlightBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> InFlightBody<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        InFlightBody {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_keeps_its_length_and_the_request_in_flight() {
        use http_body_util::{BodyExt, Full};
        let t0 = Instant::now();
        let a = Arc::new(Activity::new(t0));
        let body = InFlightBody::new(
            Full::new(bytes::Bytes::from_static(b"{}")),
            InFlight::new(a.clone()),
        );
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(
            a.verdict(t0 + Duration::from_secs(500), HDR, IDLE),
            Verdict::Wait(IDLE),
            "busy while the body lives"
        );
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"{}");
        // Sent and dropped: idle counts from now.
        assert!(matches!(
            a.verdict(Instant::now(), HDR, IDLE),
            Verdict::Wait(_)
        ));
        assert_eq!(a.in_flight.load(Ordering::Acquire), 0);
        // The instant that was busy while the body lived is idle now.
        assert_eq!(
            a.verdict(t0 + Duration::from_secs(500), HDR, IDLE),
            Verdict::CloseIdle
        );
    }

    const HDR: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn silent_connection_closes_at_the_header_deadline() {
        let t0 = Instant::now();
        let a = Activity::new(t0);
        assert_eq!(a.verdict(t0, HDR, IDLE), Verdict::Wait(HDR));
        assert_eq!(
            a.verdict(t0 + Duration::from_secs(4), HDR, IDLE),
            Verdict::Wait(Duration::from_secs(6))
        );
        assert_eq!(a.verdict(t0 + HDR, HDR, IDLE), Verdict::CloseNoRequest);
    }

    #[test]
    fn busy_is_never_idle_and_idle_counts_from_the_last_response() {
        let t0 = Instant::now();
        let a = Activity::new(t0);
        a.begin(t0 + Duration::from_secs(1));
        assert_eq!(
            a.verdict(t0 + Duration::from_secs(500), HDR, IDLE),
            Verdict::Wait(IDLE)
        );
        let done = t0 + Duration::from_secs(500);
        a.end(done);
        assert_eq!(
            a.verdict(done + Duration::from_secs(59), HDR, IDLE),
            Verdict::Wait(Duration::from_secs(1))
        );
        assert_eq!(a.verdict(done + IDLE, HDR, IDLE), Verdict::CloseIdle);
    }
}
