//! The HTTP server: accept loop, connection cap, hyper-util's auto builder
//! (HTTP/1.1 and h2c, upgrades allowed for the WebSocket), request time
//! limits, and graceful shutdown.
//!
//! Shutdown order: stop accepting, let in-flight requests finish (up to
//! `server.shutdown_grace`), then close the store so everything
//! acknowledged is on disk.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::http::{ApiError, HttpResponse, ResponseBody};

/// HTTP/2 streams per connection at most: a bound on what one client can
/// have in flight at once.
const MAX_H2_STREAMS: u32 = 256;

/// HTTP/2 connections are pinged this often when idle, and closed when a
/// ping goes unanswered for `H2_PING_TIMEOUT`: a vanished peer must not hold
/// a connection slot forever (HTTP/1.1 idle connections are closed by the
/// header read timeout instead).
const H2_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const H2_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds `state.config.server.listen`.
    pub async fn bind(state: Arc<AppState>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(state.config.server.listen).await?;
        Ok(Server { listener, state })
    }

    /// The actual address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains and closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Server { listener, state } = self;
        let cfg = state.config.server.clone();
        let permits = Arc::new(Semaphore::new(cfg.max_connections));
        let graceful = GracefulShutdown::new();

        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .max_buf_size(cfg.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_H2_STREAMS)
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT)
            .max_header_list_size(cfg.max_header_bytes.min(u32::MAX as usize) as u32);
        let builder = Arc::new(builder);

        let address_file = state
            .config
            .storage
            .data_dir
            .join(crate::app::SERVER_ADDRESS_FILE);
        if let Ok(addr) = listener.local_addr()
            && let Err(e) = std::fs::write(&address_file, format!("{addr}\n"))
        {
            tracing::warn!(error = %e, "cannot record the server address in the data dir");
        }
        let alerting = crate::alerting::start(state.alerting.clone()).await;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let retention = tokio::spawn(crate::retention::run(
            state.clone(),
            state.config.storage.retention_interval,
            stop_rx,
        ));

        tokio::pin!(shutdown);
        loop {
            // Wait for a connection slot first, so beyond the cap clients
            // queue in the kernel backlog instead of costing us memory.
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let timeout = cfg.request_timeout;
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(serve_one(state, req, timeout).await) }
            });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let _ = retention.await;
        alerting.shutdown().await;
        tracing::info!("shutting down: draining in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(cfg.shutdown_grace) => {
                tracing::warn!("shutdown grace period over; closing remaining connections");
            }
        }
        let store = state.store.clone();
        tokio::task::spawn_blocking(move || store.close()).await??;
        let _ = std::fs::remove_file(&address_file);
        tracing::info!("store closed");
        Ok(())
    }
}

/// One request with the time limit applied to producing its head (body
/// reading included, so a slow uploader cannot hold a request forever).
async fn serve_one(
    state: Arc<AppState>,
    req: Request<Incoming>,
    timeout: std::time::Duration,
) -> Response<ResponseBody> {
    match tokio::time::timeout(timeout, crate::router::handle(state, req)).await {
        Ok(resp) => resp,
        Err(_) => timed_out(),
    }
}

fn timed_out() -> HttpResponse {
    ApiError::overloaded(1)
        .with_message("request took longer than the server's request timeout")
        .into_response()
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
