//! Connections under abuse, over real sockets: silent sockets and half an
//! HTTP/2 preface cannot lock anyone out, idle keep-alive connections are
//! closed, and one address cannot take more than its share of slots.

mod common;

use std::time::Duration;

use common::TestServer;
use pulsestream::connection::ConnStats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for anything the server should do promptly; generous so a
/// loaded machine never fails a test that is not about speed.
const PATIENCE: Duration = Duration::from_secs(20);

/// True when the server closes `sock` (EOF or reset) within `PATIENCE`.
async fn closed_by_server(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// `GET /health` on a fresh connection, answered within `PATIENCE`.
async fn health(addr: std::net::SocketAddr) -> String {
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, sock.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_and_a_half_preface_cannot_lock_everyone_out() {
    let s = TestServer::start_with(|c| {
        c.server.max_connections = 4;
        c.server.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(s.addr).await.expect("connect"));
    }
    let mut half = TcpStream::connect(s.addr).await.expect("connect");
    half.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    // A full preface and settings, but never a request.
    let mut preface_only = TcpStream::connect(s.addr).await.expect("connect");
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("write");
    let resp = health(s.addr).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    for sock in silent.iter_mut() {
        assert!(closed_by_server(sock).await, "a silent socket stayed open");
    }
    assert!(
        closed_by_server(&mut half).await,
        "half preface stayed open"
    );
    assert!(
        closed_by_server(&mut preface_only).await,
        "preface without a request stayed open"
    );
    let stats = &s.state().conn_stats;
    assert!(ConnStats::get(&stats.header_timeouts) >= 6);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close() {
    let s = TestServer::start_with(|c| c.server.idle_timeout = Duration::from_millis(300)).await;
    let mut sock = TcpStream::connect(s.addr).await.expect("connect");
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, sock.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then nothing: the server closes it.
    assert!(
        closed_by_server(&mut sock).await,
        "idle connection stayed open"
    );
    assert_eq!(ConnStats::get(&s.state().conn_stats.idle_closed), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_capped() {
    let s = TestServer::start_with(|c| c.server.max_connections_per_ip = 2).await;
    let _a = TcpStream::connect(s.addr).await.expect("a");
    let _b = TcpStream::connect(s.addr).await.expect("b");
    // Let the server count both before the third arrives.
    for _ in 0..200 {
        if s.state()
            .conn_stats
            .per_ip_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            break;
        }
        let mut c = TcpStream::connect(s.addr).await.expect("c");
        if closed_by_server(&mut c).await {
            break;
        }
    }
    assert!(ConnStats::get(&s.state().conn_stats.per_ip_refused) >= 1);
    drop((_a, _b));
    // With the two gone, the address is served again.
    let mut ok = false;
    for _ in 0..100 {
        if health(s.addr).await.starts_with("HTTP/1.1 200") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "address stayed refused after its connections closed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_do_not_take_the_serving_slots() {
    // The header deadline is far away: /health must not wait for it.
    let s = TestServer::start_with(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(s.addr).await.expect("connect"));
    }
    let mut half = TcpStream::connect(s.addr).await.expect("connect");
    half.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    held.push(half);
    let started = std::time::Instant::now();
    let resp = health(s.addr).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "/health waited {:?} behind silent sockets",
        started.elapsed()
    );
    drop(held);
    s.stop().await;
}
