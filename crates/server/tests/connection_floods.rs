//! Connection exhaustion before authentication: one address cannot take a
//! listener's connections (per-address caps on HTTP, RTSP and RTMP), a request
//! body sent a byte at a time is cut off, and keep-alives do not keep an RTSP
//! connection that never plays. An honest viewer elsewhere keeps being served.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server closed `s` (read returns 0 or an error) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// How many of `conns` the server has closed by now (without waiting).
fn closed_now(conns: &[TcpStream]) -> usize {
    let mut buf = [0u8; 1];
    conns
        .iter()
        .filter(|c| match c.try_read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        })
        .count()
}

/// An honest viewer from 127.0.0.1: signs in, gets a grant, reads the playlist.
async fn honest_view(s: &Server) -> Duration {
    let t = Instant::now();
    let a = s.login(OWNER_A, PASSWORD).await;
    let camera = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &camera).await;
    let (st, _) = get_as(g["hls_url"].as_str().unwrap(), Some(&a)).await;
    assert_eq!(st, 200);
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_exhaust_the_listeners() {
    let s = Server::demo(160, 90);
    s.wait_online(&s.login(OWNER_A, PASSWORD).await, "Living room")
        .await;

    // HTTP: 300 connections from one address, each sending a login body one byte
    // at a time. Past 256 they are refused at once; the rest are cut off when the
    // body is not in within 10 s.
    let t = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut c = connect_from("127.0.0.7", s.http).await.unwrap();
        let _ = c
            .write_all(
                b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 200\r\n\r\n{",
            )
            .await;
        slow.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = closed_now(&slow);
    let log = s.log();
    eprintln!(
        "HTTP: {refused} of 300 slow connections from one address refused at once \
         ({} logged as over the per-address cap, {} as over the listener's)",
        log.matches("too many from this address").count(),
        log.matches("too many connections").count()
    );
    assert_eq!(refused, 300 - 256, "one address holds 256 connections");
    let took = honest_view(&s).await;
    eprintln!("HTTP: honest viewer served in {took:?} during the flood");
    // Keep trickling: the body deadline still ends them.
    let mut cut = 0;
    for c in &mut slow {
        let _ = c.write_all(b" ").await;
    }
    for c in &mut slow {
        if closed_within(c, Duration::from_secs(12).saturating_sub(t.elapsed())).await {
            cut += 1;
        }
    }
    eprintln!("HTTP: {cut} of 300 closed within {:?}", t.elapsed());
    assert_eq!(cut, 300, "slow bodies still held connections");
    drop(slow);

    // RTSP: a connection that only ever sends OPTIONS is closed at the pre-PLAY
    // deadline; and one address holds at most 32.
    let rtsp = s.rtsp.expect("rtsp listener");
    let t = Instant::now();
    let mut idle = connect_from("127.0.0.8", rtsp).await.unwrap();
    let mut more = Vec::new();
    for _ in 0..40 {
        more.push(connect_from("127.0.0.8", rtsp).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = closed_now(&more);
    assert_eq!(refused, 40 + 1 - 32, "RTSP: one address holds 32");
    let mut cseq = 1;
    let closed = loop {
        let req = format!("OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n");
        cseq += 1;
        if idle.write_all(req.as_bytes()).await.is_err() {
            break t.elapsed();
        }
        if closed_within(&mut idle, Duration::from_secs(2)).await {
            break t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "keep-alives held it");
    };
    eprintln!("RTSP: OPTIONS-only connection closed after {closed:?}");
    assert!(
        closed >= Duration::from_secs(18),
        "closed too early: {closed:?}"
    );
    drop(more);

    // RTMP: 200 silent connections from one address; past 128 refused at once,
    // the others end at the handshake deadline; the demo's cameras stay live.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(connect_from("127.0.0.9", s.rtmp).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = closed_now(&silent);
    assert_eq!(refused, 200 - 128, "RTMP: one address holds 128");
    let took = honest_view(&s).await;
    eprintln!("RTMP flood: honest viewer served in {took:?}");
}
