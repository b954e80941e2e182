//! An I/O wrapper that fails a write which has made no progress for the
//! write timeout: a client that stops reading fills its socket buffer, the
//! write stays pending, and after `server.write_timeout` the connection is
//! closed, dropping the response body (which stops an export's scan).
//!
//! The timer runs only while a write is pending; any progress disarms it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::ConnStats;

/// `T` with a write-progress deadline.
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    /// Armed while a write is pending.
    sleep: Option<Pin<Box<Sleep>>>,
    stats: Arc<ConnStats>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, timeout: Duration, stats: Arc<ConnStats>) -> Self {
        WriteDeadline {
            inner,
            timeout,
            sleep: None,
            stats,
        }
    }

    fn on_poll<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.sleep = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    self.sleep = None;
                    ConnStats::bump(&self.stats.write_timeouts);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "response made no progress within the write timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

use std::future::Future;

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on_poll(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on_poll(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.on_poll(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.on_poll(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    // Real time, kept short: the wrapper's job is to meet tokio's timer.
    #[tokio::test]
    async fn a_stalled_write_fails_after_the_timeout() {
        // A duplex pipe whose reader never reads: writes stall once its
        // 64-byte buffer is full.
        let (a, _b) = tokio::io::duplex(64);
        let stats = Arc::new(ConnStats::default());
        let mut w = WriteDeadline::new(a, Duration::from_millis(50), stats.clone());
        let r = w.write_all(&[0u8; 1024]).await;
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        assert_eq!(ConnStats::get(&stats.write_timeouts), 1);
    }

    #[tokio::test]
    async fn progress_disarms_the_timer() {
        let (a, mut b) = tokio::io::duplex(64);
        let stats = Arc::new(ConnStats::default());
        let mut w = WriteDeadline::new(a, Duration::from_millis(200), stats.clone());
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut got = 0;
            let mut buf = [0u8; 16];
            while got < 512 {
                // A slow reader: 16 bytes every 5 ms, always within the timeout
                // though far slower than the writer.
                tokio::time::sleep(Duration::from_millis(5)).await;
                got += b.read(&mut buf).await.expect("read");
            }
        });
        w.write_all(&[0u8; 512]).await.expect("slow but steady");
        reader.await.expect("reader");
        assert_eq!(ConnStats::get(&stats.write_timeouts), 0);
    }
}
