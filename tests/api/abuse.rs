//! Abuse at the HTTP layer, over raw TCP on loopback: slow and oversized request heads, slow
//! bodies, clients that stop reading, idle connections, a connection flood, cleartext HTTP/2, and relay-routing address syntax.
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Tight HTTP limits, so the tests run in a second.
async fn limited() -> Stack {
    Stack::builder()
        .env("OTP_HTTP__HEADER_READ_TIMEOUT_MS", 500)
        .env("OTP_HTTP__MAX_HEADER_BYTES", 8192)
        .env("OTP_HTTP__MAX_CONNECTIONS", 16)
        .start()
        .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.http.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes or `within` passes; returns what came and whether it closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test]
async fn a_slow_request_head_and_an_idle_keep_alive_connection_are_closed() {
    let s = limited().await;
    let mut slow = connect(&s.app).await;
    slow.write_all(b"POST /otp/generate HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent head is not held open");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the timeout"
    );

    let mut idle = connect(&s.app).await;
    idle.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(closed, "an idle keep-alive connection is closed");
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let s = limited().await;
    let mut big = connect(&s.app).await;
    let filler = "a".repeat(64 * 1024);
    let head = format!("GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    let _ = big.write_all(head.as_bytes()).await;
    let (got, closed) = read_until_closed(&mut big, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(closed, "the connection ends");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "not served: {text}"
    );
    let r = s.app.generate("after-big@example.com").await;
    assert_eq!(r.status, 202, "the service still answers");
}

#[tokio::test]
async fn a_connection_flood_fills_the_api_listener_but_not_the_admin_port() {
    let s = Stack::builder()
        .env("OTP_HTTP__HEADER_READ_TIMEOUT_MS", 30_000)
        .env("OTP_HTTP__MAX_CONNECTIONS", 16)
        .start()
        .await;
    let mut hogs = Vec::new();
    for _ in 0..16 {
        let mut c = connect(&s.app).await;
        c.write_all(b"POST /otp/generate HTTP/1.1\r\n")
            .await
            .unwrap();
        hogs.push(c);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let blocked = quick
        .get(format!("{}/openapi.json", s.app.http))
        .send()
        .await;
    assert!(blocked.is_err(), "the 17th connection waits: {blocked:?}");
    let health = quick.get(format!("{}/healthz", s.app.admin)).send().await;
    assert_eq!(
        health.unwrap().status(),
        200,
        "the admin port still answers"
    );
    drop(hogs);
    eventually("the API answers again", Duration::from_secs(5), || async {
        quick
            .get(format!("{}/openapi.json", s.app.http))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// Sends a byte every `every` until the server closes or `within` passes; returns what came,
/// whether it closed and when.
async fn trickle_until_closed(
    s: &mut TcpStream,
    every: Duration,
    within: Duration,
) -> (Vec<u8>, bool, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        if s.write_all(b" ").await.is_err() {
            return (got, true, started.elapsed());
        }
        match tokio::time::timeout(every, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    (got, false, started.elapsed())
}

#[tokio::test]
async fn a_slow_request_body_is_cut_off_and_its_connection_slot_freed() {
    let s = Stack::builder()
        .env("OTP_HTTP__BODY_READ_TIMEOUT_MS", 600)
        .env("OTP_HTTP__HEADER_READ_TIMEOUT_MS", 30_000)
        .env("OTP_HTTP__MAX_CONNECTIONS", 3)
        .start()
        .await;
    // Every slot taken by a request whose head is complete and whose body never is.
    let head = b"POST /otp/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 64\r\n\r\n{\"email\":";
    let mut hogs = Vec::new();
    for _ in 0..3 {
        let mut c = connect(&s.app).await;
        c.write_all(head).await.unwrap();
        hogs.push(c);
    }
    // One of them keeps sending a byte of whitespace every 100 ms: a deadline per read would
    // never fire for it, the body's deadline does.
    let mut trickler = hogs.pop().unwrap();
    let (got, closed, after) = trickle_until_closed(
        &mut trickler,
        Duration::from_millis(100),
        Duration::from_secs(5),
    )
    .await;
    assert!(closed, "a body trickled for 5 s is not held open");
    assert!(
        after >= Duration::from_millis(500),
        "not before the deadline: {after:?}"
    );
    assert!(
        got.is_empty(),
        "closed without an answer: {:?}",
        String::from_utf8_lossy(&got)
    );
    for mut stalled in hogs {
        let (got, closed) = read_until_closed(&mut stalled, Duration::from_secs(5)).await;
        assert!(
            closed && got.is_empty(),
            "a stalled body is cut off without an answer"
        );
    }
    served_again_after(&s, "body", 3.0).await;
}

/// After slow clients were cut off: their slots are free again, a whole request is served, and
/// each of them was counted at `stage`.
async fn served_again_after(s: &Stack, stage: &str, closed: f64) {
    let r = s
        .app
        .generate(&format!("after-slow-{stage}@example.com"))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let series = format!("email_otp_http_slow_clients_total{{stage=\"{stage}\"}}");
    assert_eq!(s.app.metric(&series).await, closed);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_is_disconnected() {
    let s = Stack::builder()
        .env("OTP_HTTP__WRITE_TIMEOUT_MS", 500)
        .env("OTP_HTTP__HEADER_READ_TIMEOUT_MS", 30_000)
        .env("OTP_HTTP__MAX_CONNECTIONS", 2)
        .start()
        .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = s.app.http.trim_start_matches("http://").parse().unwrap();
    let mut reader = socket.connect(addr).await.unwrap();
    // Pipelined requests for the spec (15 KB each), answers never read, until the server's
    // writes back up into ours.
    let requests = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    let mut sent = 0;
    // Until a write blocks (or fails: the server may already have given up on us).
    while let Ok(Ok(())) =
        tokio::time::timeout(Duration::from_secs(1), reader.write_all(&requests)).await
    {
        sent += 100;
        assert!(sent < 2_000_000, "the server never stopped taking requests");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Closed by now: what is left is what the kernel buffered, then the end. Left open, the
    // server would go on answering the queued requests as fast as they are read.
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0usize;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => read += n,
            Err(_) => break false,
        }
        if read > 64 << 20 {
            break false;
        }
    };
    assert!(
        closed,
        "still answering after {read} bytes ({sent} requests sent)"
    );
    served_again_after(&s, "response", 1.0).await;
}

#[tokio::test]
async fn cleartext_http2_is_not_spoken() {
    let s = limited().await;
    let mut h2 = connect(&s.app).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut h2, Duration::from_secs(3)).await;
    // An HTTP/2 server answers the preface with a SETTINGS frame (type 4) first.
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 4"),
        "answered as HTTP/2: {:?}",
        &got[..got.len().min(16)]
    );
}

#[tokio::test]
async fn relay_routing_syntax_in_the_local_part_is_refused() {
    let s = Stack::start().await;
    for routed in ["relay!user@example.com", "user%other.example@example.com"] {
        let r = s.app.generate(routed).await;
        assert_eq!(r.status, 400, "{routed}: {}", r.body);
        assert_eq!(r.code(), "invalid_request", "{routed}");
    }
}
