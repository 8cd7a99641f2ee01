//! Alexa's camera interface over RTSP, end to end: the hub emulator links two
//! households' Alexa accounts, asks `InitializeCameraStreams` for RTSP as an Echo
//! Show does, and ffmpeg plays the returned URL (RTP interleaved over TCP); the
//! decoded pictures must be the linked camera's. A raw RTSP client then checks what
//! must not open (an altered grant, a web app grant, another transport, junk), and
//! that unlinking and the `alexa` kill switch end a playing session within a second.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
use common::*;
use hub_emulator::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const W: u32 = 320;
const H: u32 = 180;

fn initialize_rtsp(token: &str, endpoint: &str) -> Value {
    let mut d = initialize_streams(token, endpoint);
    d["payload"]["cameraStreams"][0]["protocol"] = json!("RTSP");
    d
}

/// A minimal RTSP client on one connection.
struct Rtsp {
    sock: TcpStream,
    cseq: u32,
    buf: Vec<u8>,
}

impl Rtsp {
    async fn connect(url: &str) -> Rtsp {
        let host = url.trim_start_matches("rtsp://").split('/').next().unwrap();
        Rtsp {
            sock: TcpStream::connect(host).await.unwrap(),
            cseq: 0,
            buf: Vec::new(),
        }
    }

    /// Sends a request; the status and the response head.
    async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        self.cseq += 1;
        let mut req = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.sock.write_all(req.as_bytes()).await.unwrap();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let body_len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |n| n.parse().unwrap());
                if self.buf.len() >= end + 4 + body_len {
                    self.buf.drain(..end + 4 + body_len);
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    assert!(head.contains(&format!("CSeq: {}", self.cseq)), "{head}");
                    return (status, head);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.sock.read(&mut chunk))
                .await
                .expect("an RTSP answer")
                .unwrap();
            assert!(n > 0, "closed before answering {method}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// DESCRIBE, SETUP and PLAY; then waits for the first RTP packet.
    async fn play(url: &str) -> Rtsp {
        let mut c = Rtsp::connect(url).await;
        assert_eq!(c.request("DESCRIBE", url, &[]).await.0, 200);
        let (st, head) = c
            .request(
                "SETUP",
                &format!("{url}/trackID=0"),
                &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
            )
            .await;
        assert_eq!(st, 200, "{head}");
        let session = head
            .lines()
            .find_map(|l| l.strip_prefix("Session: "))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let (st, head) = c.request("PLAY", url, &[("Session", &session)]).await;
        assert_eq!(st, 200, "{head}");
        assert!(head.contains("RTP-Info: url="), "{head}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.buf.first() != Some(&b'$') {
            assert!(Instant::now() < deadline, "no RTP after PLAY");
            let mut chunk = [0u8; 4096];
            let n = c.sock.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            c.buf.extend_from_slice(&chunk[..n]);
        }
        c
    }

    /// Reads (and drops) media until the server closes; how long that took.
    async fn closed_within(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at((start + limit).into(), self.sock.read(&mut chunk)).await
            {
                Err(_) => panic!("the RTSP session was still open after {limit:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
                Ok(Ok(_)) => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alexa_plays_rtsp_of_the_linked_camera_and_nothing_else() {
    require_tool("ffmpeg");
    let s = Server::demo(W, H);
    let alexa_p = register(&s, "alexa");
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    for (t, name) in [(&a, "Living room"), (&b, "Front door")] {
        s.wait_online(t, name).await;
    }
    let living = s.camera_id(&a, "Living room").await;
    let front = s.camera_id(&b, "Front door").await;
    let xa = link(&s, &alexa_p, OWNER_A, Some(&["Living room"])).await;
    let xb = link(&s, &alexa_p, OWNER_B, None).await;

    // Each household's display plays its own camera over RTSP.
    let mut urls = Vec::new();
    for (token, camera) in [(&xa.access, &living), (&xb.access, &front)] {
        let init = alexa(&s, initialize_rtsp(token, camera)).await;
        let stream = &init["event"]["payload"]["cameraStreams"][0];
        assert_eq!(stream["protocol"], "RTSP", "{init}");
        assert_eq!(stream["audioCodec"], "NONE");
        let url = stream["uri"].as_str().unwrap().to_string();
        assert!(
            url.starts_with("rtsp://") && url.ends_with("/live"),
            "{url}"
        );
        let frames = tokio::task::spawn_blocking({
            let url = url.clone();
            move || decode_rgb(&url, 2.0, W, H)
        })
        .await
        .unwrap();
        assert!(frames.len() >= 10, "{} frames", frames.len());
        assert_signature(&frames, W, H, signature_of(camera));
        urls.push(url);
    }
    let (living_url, front_url) = (urls[0].clone(), urls[1].clone());
    // A's link cannot have B's camera, whatever protocol it asks for.
    let v = alexa(&s, initialize_rtsp(&xa.access, &front)).await;
    assert_eq!(alexa_error_type(&v), Some("NO_SUCH_ENDPOINT"));

    // What must not open.
    let token = living_url
        .split("/media/")
        .nth(1)
        .unwrap()
        .trim_end_matches("/live");
    let mut altered = token.to_string().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = living_url.replace(token, std::str::from_utf8(&altered).unwrap());
    let web = s.grant(&a, &living).await;
    let web_token = grant_token(web["hls_url"].as_str().unwrap())
        .unwrap()
        .to_string();
    let web_url = living_url.replace(token, &web_token);
    let mut c = Rtsp::connect(&living_url).await;
    for (url, why) in [
        (&altered, "an altered grant"),
        (&web_url, "a web app grant, held by a browser session"),
    ] {
        assert_eq!(c.request("DESCRIBE", url, &[]).await.0, 403, "{why}");
    }
    let base = living_url.rsplit_once("/media/").unwrap().0;
    assert_eq!(
        c.request("DESCRIBE", &format!("{base}/elsewhere"), &[])
            .await
            .0,
        404
    );
    let (st, head) = c.request("OPTIONS", "*", &[]).await;
    assert!(st == 200 && head.contains("PLAY"), "{head}");
    let (st, _) = c
        .request(
            "SETUP",
            &format!("{living_url}/trackID=0"),
            &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        )
        .await;
    assert_eq!(st, 461, "only RTP over the RTSP connection");
    assert_eq!(
        c.request("PLAY", &living_url, &[("Session", "nope")])
            .await
            .0,
        454
    );
    // RFC 2326 12.17: a request without CSeq is a bad request.
    c.sock
        .write_all(b"OPTIONS * RTSP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 28];
    c.sock.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"RTSP/1.0 400 Bad Request\r\n\r\n");
    c.sock.write_all(&pseudo_random(7, 9000)).await.unwrap();
    c.closed_within(Duration::from_secs(5)).await;

    // Playing sessions end within a second of unlinking, and of the kill switch;
    // the other household's session is untouched by the unlink.
    let mut mine = Rtsp::play(&living_url).await;
    let mut theirs = Rtsp::play(&front_url).await;
    let r = client()
        .delete(format!("{}/api/v1/integrations/alexa", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let took = mine.closed_within(Duration::from_secs(1)).await;
    println!("rtsp session ended {took:?} after unlinking");
    let t0 = Instant::now();
    s.admin(&["suspend", "integration", "alexa"], None);
    let took = theirs.closed_within(Duration::from_millis(1500)).await + t0.elapsed();
    println!("rtsp session ended {took:?} after `hearth suspend integration alexa` started");
    assert!(took < Duration::from_millis(1500), "{took:?}");

    // The views are in each owner's access log under `alexa`.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (token, cam, owner) in [(&a, &living, OWNER_A), (&b, &front, OWNER_B)] {
        let log = s.access_log(token, cam).await;
        assert!(
            log.iter()
                .any(|e| e["integration"] == "alexa" && e["viewer"] == owner),
            "no alexa view of {cam}: {log:?}"
        );
    }
}
