//! The listener's defences, against a real `mediaseal serve` over real sockets: a client that
//! opens many half-sent requests is capped and timed out while other clients are served;
//! metrics live on their own address; request queries stay out of the logs.

mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use server::{Server, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to the server from a chosen loopback source address (each is a different client
/// to the per-client cap).
async fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

/// Whether the server still holds the connection (it has not closed it).
async fn still_open(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await {
        Err(_) => true,              // nothing to read: still open
        Ok(Ok(0) | Err(_)) => false, // closed or reset
        Ok(Ok(_)) => false,          // the server answered (an error) and will close
    }
}

async fn get(source: Ipv4Addr, port: u16, path: &str) -> String {
    let mut s = connect_from(source, port).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("the server answered within 10 s")
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_capped_per_client_and_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let srv = Server::start(
        &dir.path().join("data"),
        &dir.path().join("server.log"),
        &[
            "--max-connections-per-client",
            "16",
            "--header-timeout-secs",
            "2",
            "--metrics-listen",
            &metrics_listen,
        ],
    );
    let attacker = Ipv4Addr::new(127, 0, 0, 3);
    let bystander = Ipv4Addr::new(127, 0, 0, 4);

    // 100 connections from one client, each a request line and half a header, then silence.
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(mut s) = connect_from(attacker, srv.port).await {
            let _ = s
                .write_all(b"POST /2010-04-01/Accounts.json HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .await;
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut open = 0;
    for s in &mut held {
        if still_open(s).await {
            open += 1;
        }
    }
    assert!(
        open <= 16,
        "the server holds {open} connections of one client; the cap is 16"
    );

    // Another client is served meanwhile.
    let health = get(bystander, srv.port, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // The header-read timeout (2 s) closes the rest.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut open = 0;
    for s in &mut held {
        if still_open(s).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "half-sent requests outlived the header timeout");
    drop(held);

    // The attacker's address is welcome again once its connections are gone.
    let health = get(attacker, srv.port, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // Metrics: not on the API listener, on their own address, counting the refusals.
    let api = get(bystander, srv.port, "/metrics").await;
    assert!(api.starts_with("HTTP/1.1 404"), "{api}");
    let metrics = get(bystander, metrics_port, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("mediaseal_connections_refused_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_queries_stay_out_of_the_debug_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    // The harness runs the server at debug level.
    let srv = Server::start(&dir.path().join("data"), &log, &[]);
    let secret = "hunter2-in-a-callback-url";
    let answer = get(
        Ipv4Addr::LOCALHOST,
        srv.port,
        &format!("/2010-04-01/Accounts.json?StatusCallback=https://user:{secret}@example.com/"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // A signed download's token is in its path: a bearer capability, kept out too.
    let token = "bearer-capability-token-in-the-path";
    let answer = get(
        Ipv4Addr::LOCALHOST,
        srv.port,
        &format!("/v1/MediaDownload/{token}"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    drop(srv);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("/2010-04-01/Accounts.json"),
        "the request was logged"
    );
    assert!(!text.contains(secret), "the query reached the log");
    assert!(
        !text.contains(token),
        "a signed download token reached the log"
    );
}
