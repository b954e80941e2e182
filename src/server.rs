//! The HTTP server: accept loop, connection caps (total and per address),
//! hyper-util's auto builder (HTTP/1.1 and h2c, upgrades allowed for the
//! WebSocket), the connection deadlines of `connection` (first request
//! head, idleness, write progress), request time limits, and graceful
//! shutdown.
//!
//! Background work is not here: `services` owns it; `run` only starts it
//! with the server and stops it before the store closes.
//!
//! Shutdown order: stop accepting, stop the background services, let
//! in-flight requests finish (up to `server.shutdown_grace`), then close
//! the store so everything acknowledged is on disk.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::connection::{
    Activity, ConnStats, InFlight, InFlightBody, PerIpConnections, Verdict, WriteDeadline,
};
use crate::http::{ApiError, ClientAddr, HttpResponse, ResponseBody};

/// HTTP/2 streams per connection at most: a bound on what one client can
/// have in flight at once. 100 is the floor RFC 9113 recommends; every
/// expensive stream is bounded again by its own gate (hashing, queries).
const MAX_H2_STREAMS: u32 = 100;

/// HTTP/2 connections are pinged this often when idle, and closed when a
/// ping goes unanswered for `H2_PING_TIMEOUT`: a vanished peer must not hold
/// a connection slot until the idle timeout.
const H2_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const H2_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections accepted but not yet proven by a complete request head, per
/// slot of `max_connections`. Such a connection costs a task and a few
/// bytes until the header deadline closes it; four per slot lets a flood
/// of silent sockets sit beside real clients instead of in their place.
const UNPROVEN_PER_SLOT: usize = 4;

/// A connection's hold on the connection caps: its unproven slot until
/// the first request head, then one of `max_connections` for the rest of
/// its life. Dropped with the connection.
struct ServingSlot {
    unproven: parking_lot::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    serving: tokio::sync::OnceCell<tokio::sync::OwnedSemaphorePermit>,
}

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
        // Two caps: a connection is "unproven" from accept until its first
        // complete request head, and only then takes one of
        // `max_connections`. Silent sockets and half prefaces (closed by the
        // header deadline) thus cannot take the slots real clients need.
        let permits = Arc::new(Semaphore::new(
            cfg.max_connections.saturating_mul(UNPROVEN_PER_SLOT),
        ));
        let serving = Arc::new(Semaphore::new(cfg.max_connections));
        let per_ip = PerIpConnections::new(cfg.max_connections_per_ip);
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
        let services = crate::services::Services::start(&state);

        tokio::pin!(shutdown);
        loop {
            // Wait for an unproven slot first, so beyond that cap clients
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
            let Some(ip_slot) = per_ip.try_open(peer.ip()) else {
                // Closing at once is the cheapest answer; the client's own
                // other connections are still served.
                ConnStats::bump(&state.conn_stats.per_ip_refused);
                tracing::debug!(%peer, "connection refused: per-address cap reached");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let activity = Arc::new(Activity::new(Instant::now()));
            let io = WriteDeadline::new(stream, cfg.write_timeout, state.conn_stats.clone());
            let conn_stats = state.conn_stats.clone();
            let state = state.clone();
            let timeout = cfg.request_timeout;
            let svc_activity = activity.clone();
            let slot = Arc::new(ServingSlot {
                unproven: parking_lot::Mutex::new(Some(permit)),
                serving: tokio::sync::OnceCell::new(),
            });
            let svc_slot = slot.clone();
            let serving = serving.clone();
            let svc = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                let state = state.clone();
                let in_flight = InFlight::new(svc_activity.clone());
                let slot = svc_slot.clone();
                let serving = serving.clone();
                async move {
                    // The first request proves the connection: it waits for
                    // one of `max_connections` (within the request timeout)
                    // and gives back its unproven slot.
                    let admitted = tokio::time::timeout(
                        timeout,
                        slot.serving.get_or_try_init(|| serving.acquire_owned()),
                    )
                    .await;
                    let resp = match admitted {
                        Ok(Ok(_)) => {
                            slot.unproven.lock().take();
                            serve_one(state, req, timeout).await
                        }
                        _ => timed_out(),
                    };
                    // The request stays in flight until its body is sent or
                    // dropped, so a streamed export is busy, not idle.
                    Ok::<_, Infallible>(resp.map(|b| InFlightBody::new(b, in_flight).boxed()))
                }
            });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(io), svc)
                .into_owned();
            let conn = graceful.watch(conn);
            let watch = watchdog(
                activity,
                cfg.header_read_timeout,
                cfg.idle_timeout,
                conn_stats,
            );
            tokio::spawn(async move {
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    },
                    why = watch => tracing::debug!(%peer, why, "connection closed by its deadline"),
                }
                drop(ip_slot);
                drop(slot);
            });
        }
        drop(listener);
        services.stop().await;
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

/// Resolves when the connection should be closed: no complete request head
/// within `header_timeout` of the accept (silent sockets, half an HTTP/2
/// preface), or no request in flight for `idle_timeout`.
async fn watchdog(
    activity: Arc<Activity>,
    header_timeout: Duration,
    idle_timeout: Duration,
    stats: Arc<ConnStats>,
) -> &'static str {
    loop {
        match activity.verdict(Instant::now(), header_timeout, idle_timeout) {
            Verdict::Wait(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = activity.changed() => {}
                }
            }
            Verdict::CloseNoRequest => {
                ConnStats::bump(&stats.header_timeouts);
                return "no request head within the header read timeout";
            }
            Verdict::CloseIdle => {
                ConnStats::bump(&stats.idle_closed);
                return "idle";
            }
        }
    }
}

/// One request with the time limit applied to producing its head (body
/// reading included, so a slow uploader cannot hold a request forever).
/// A request that has begun appending events answers the append's outcome
/// instead (see `http::deadline`).
async fn serve_one(
    state: Arc<AppState>,
    req: Request<Incoming>,
    timeout: std::time::Duration,
) -> Response<ResponseBody> {
    match crate::http::deadline::run_with_deadline(timeout, crate::router::handle(state, req)).await
    {
        Some(resp) => resp,
        None => timed_out(),
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
