//! Server behaviour over raw sockets: HTTP/2 without TLS (h2c), the
//! header-read and request timeouts, the connection cap, and a graceful
//! shutdown that finishes in-flight requests.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for anything the server should do promptly; generous so a
/// loaded machine never fails a test that is not about speed.
const PATIENCE: Duration = Duration::from_secs(20);

async fn read_all(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, sock.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_h2c() {
    let s = TestServer::start().await;
    let tcp = TcpStream::connect(s.addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(format!("{}/health", s.base))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["status"], "ok");
    drop(sender);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let s =
        TestServer::start_with(|c| c.server.header_read_timeout = Duration::from_millis(300)).await;
    let mut sock = TcpStream::connect(s.addr).await.expect("connect");
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // Never finish the head: the server must close the connection.
    let mut buf = [0u8; 1024];
    let r = tokio::time::timeout(PATIENCE, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection with an unfinished head stayed open");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_hits_the_request_timeout() {
    let s = TestServer::start_with(|c| c.server.request_timeout = Duration::from_millis(300)).await;
    let mut sock = TcpStream::connect(s.addr).await.expect("connect");
    sock.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"email\":",
    )
    .await
    .expect("write");
    let resp = read_all(&mut sock).await;
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(resp.contains("\"overloaded\""), "{resp}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_slot() {
    let s = TestServer::start_with(|c| c.server.max_connections = 1).await;
    // Connection A is served and kept open.
    let mut a = TcpStream::connect(s.addr).await.expect("connect a");
    a.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write a");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, a.read(&mut buf))
        .await
        .expect("a answered")
        .expect("read a");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // B is accepted by the kernel but not served while A holds the slot.
    let mut b = TcpStream::connect(s.addr).await.expect("connect b");
    b.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write b");
    let early = tokio::time::timeout(Duration::from_millis(300), b.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "second connection was served beyond the cap"
    );
    drop(a);
    let resp = read_all(&mut b).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let s = TestServer::start().await;
    let addr = s.addr;
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    let body = br#"{"email":"nobody@x.test","password":"whatever-password"}"#;
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    sock.write_all(&body[..10]).await.expect("part of body");
    // Give the server time to start the request, then ask it to stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(s.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are no longer accepted...
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        match TcpStream::connect(addr).await {
            Err(_) => true,
            Ok(mut c) => {
                let _ = c
                    .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await;
                let mut b = [0u8; 16];
                matches!(c.read(&mut b).await, Ok(0) | Err(_))
            }
        }
    })
    .await
    .unwrap_or(true);
    assert!(refused, "a new connection was served during shutdown");
    // ...but the in-flight request completes.
    sock.write_all(&body[10..]).await.expect("rest of body");
    let resp = read_all(&mut sock).await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("stopped in time")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused() {
    let s = TestServer::start_with(|c| c.server.max_header_bytes = 16 * 1024).await;
    let mut sock = TcpStream::connect(s.addr).await.expect("connect");
    let big = "a".repeat(64 * 1024);
    let req =
        format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    // The server may close before reading everything; a write error is fine.
    let _ = sock.write_all(req.as_bytes()).await;
    let resp = read_all(&mut sock).await;
    assert!(
        !resp.starts_with("HTTP/1.1 200"),
        "oversized head was served: {resp}"
    );
    if !resp.is_empty() {
        assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    }
    s.stop().await;
}
