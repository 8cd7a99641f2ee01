//! Malformed and hostile input on both listeners — garbage, truncated and wrong
//! handshakes, absurd chunk sizes, chunk headers that contradict each other, slow
//! loris, oversized headers — is refused or cut off, and the server and the other
//! cameras' streams carry on.

mod common;
use common::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns how long that took.
async fn closed_within(sock: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at((start + limit).into(), sock.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn rtmp_handshake(addr: SocketAddr) -> TcpStream {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let mut hs = Handshake::new(PeerType::Client);
    sock.write_all(&hs.generate_outbound_p0_and_p1().unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during a valid handshake");
        match hs.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                sock.write_all(&response_bytes).await.unwrap()
            }
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                sock.write_all(&response_bytes).await.unwrap();
                return sock;
            }
        }
    }
}

/// A type-0 chunk header on `csid` for a message of `len` bytes of `type_id`.
fn chunk0(csid: u8, len: u32, type_id: u8, stream_id: u32) -> Vec<u8> {
    let mut v = vec![csid & 0x3f, 0, 0, 0];
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&stream_id.to_le_bytes());
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_leaves_server_and_streams_running() {
    let mut s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &living).await;
    let playlist = g["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8");
    let (st, before) = get(&playlist).await;
    assert_eq!(st, 200);

    let rtmp = s.rtmp;
    let http = s.http;
    let mut attacks = Vec::new();

    // RTMP: garbage instead of a handshake.
    attacks.push(tokio::spawn(async move {
        let mut c = TcpStream::connect(rtmp).await.unwrap();
        let _ = c.write_all(&pseudo_random(1, 4096)).await;
        assert!(
            closed_within(&mut c, Duration::from_secs(8))
                .await
                .is_some(),
            "garbage handshake not closed"
        );
    }));
    // RTMP: wrong version byte.
    attacks.push(tokio::spawn(async move {
        let mut c = TcpStream::connect(rtmp).await.unwrap();
        let mut hello = vec![9u8];
        hello.extend_from_slice(&[0u8; 1536]);
        let _ = c.write_all(&hello).await;
        assert!(
            closed_within(&mut c, Duration::from_secs(8))
                .await
                .is_some(),
            "bad version not closed"
        );
    }));
    // RTMP: truncated handshake, then silence (slow loris).
    for cut in [0usize, 1, 700, 1537] {
        attacks.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(rtmp).await.unwrap();
            let mut hello = vec![3u8];
            hello.extend_from_slice(&pseudo_random(2, 1536));
            let _ = c.write_all(&hello[..cut]).await;
            let took = closed_within(&mut c, Duration::from_secs(12)).await;
            assert!(
                took.is_some(),
                "truncated handshake ({cut} bytes) left open"
            );
        }));
    }
    // RTMP: a huge chunk size and a 16 MiB message that never arrives.
    attacks.push(tokio::spawn(async move {
        let mut c = rtmp_handshake(rtmp).await;
        let mut msg = chunk0(2, 4, 1, 0);
        msg.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
        msg.extend(chunk0(6, 0xff_ffff, 9, 1));
        msg.extend(pseudo_random(3, 2000));
        let _ = c.write_all(&msg).await;
        assert!(
            closed_within(&mut c, Duration::from_secs(15))
                .await
                .is_some(),
            "stalled huge message left open"
        );
    }));
    // RTMP: a message whose length shrinks mid-message (contradictory chunk headers).
    attacks.push(tokio::spawn(async move {
        let mut c = rtmp_handshake(rtmp).await;
        let mut msg = chunk0(6, 1000, 9, 1);
        msg.extend(pseudo_random(4, 128));
        msg.extend(chunk0(6, 10, 9, 1));
        msg.extend(pseudo_random(5, 64));
        let _ = c.write_all(&msg).await;
        assert!(
            closed_within(&mut c, Duration::from_secs(15))
                .await
                .is_some(),
            "contradictory chunks left open"
        );
    }));
    // RTMP: random chunk streams after a valid handshake.
    attacks.push(tokio::spawn(async move {
        for seed in 10..40u64 {
            let mut c = rtmp_handshake(rtmp).await;
            let _ = c.write_all(&pseudo_random(seed, 3000)).await;
            assert!(
                closed_within(&mut c, Duration::from_secs(15))
                    .await
                    .is_some(),
                "random chunks (seed {seed}) left open"
            );
        }
    }));
    // HTTP: garbage, an enormous header, and a slow loris.
    attacks.push(tokio::spawn(async move {
        let mut c = TcpStream::connect(http).await.unwrap();
        let _ = c.write_all(&pseudo_random(6, 2000)).await;
        assert!(
            closed_within(&mut c, Duration::from_secs(8))
                .await
                .is_some(),
            "HTTP garbage left open"
        );
    }));
    attacks.push(tokio::spawn(async move {
        let mut c = TcpStream::connect(http).await.unwrap();
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 200_000));
        let _ = c.write_all(&req).await;
        assert!(
            closed_within(&mut c, Duration::from_secs(8))
                .await
                .is_some(),
            "huge header left open"
        );
    }));
    attacks.push(tokio::spawn(async move {
        let mut c = TcpStream::connect(http).await.unwrap();
        let _ = c
            .write_all(b"GET /api/v1/cameras HTTP/1.1\r\nHost: x\r\n")
            .await;
        let start = Instant::now();
        let mut closed = false;
        while start.elapsed() < Duration::from_secs(20) {
            if c.write_all(b"X").await.is_err() {
                closed = true;
                break;
            }
            if closed_within(&mut c, Duration::from_secs(1))
                .await
                .is_some()
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "slow-loris HTTP client was never cut off");
    }));

    for a in attacks {
        a.await.expect("attack task");
    }

    // The server is up, the camera kept streaming, the API still answers.
    assert!(s.is_running(), "server died");
    let (st, after) = get(&playlist).await;
    assert_eq!(st, 200);
    assert_ne!(before, after, "the live stream stalled during the attacks");
    s.wait_online(&a, "Nursery").await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&b, "Front door").await;
    assert!(
        s.log().contains("rtmp connection closed"),
        "refusals were not logged"
    );
}
