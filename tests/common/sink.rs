//! A webhook sink on 127.0.0.1 for the alerting tests: records every
//! request (arrival time, headers, body) and can be told to fail its first
//! N requests with 500.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("sink body is JSON")
    }
}

pub struct Sink {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let fail_first = Arc::new(AtomicUsize::new(0));
        let (rec, fail) = (received.clone(), fail_first.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rec, fail) = (rec.clone(), fail.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (rec, fail) = (rec.clone(), fail.clone());
                        async move {
                            let at = Instant::now();
                            let path = req.uri().path().to_owned();
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            rec.lock().push(Received {
                                at,
                                path,
                                headers,
                                body,
                            });
                            let failing = fail
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                            let status = if failing { 500 } else { 200 };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Sink {
            url: format!("http://{addr}/hook"),
            received,
            fail_first,
            task,
        }
    }

    pub fn fail_first(&self, n: usize) {
        self.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.received.lock().len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    /// Waits until at least `n` requests arrived (or `timeout` passed).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = Instant::now() + timeout;
        while self.count() < n && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.all()
    }
}
