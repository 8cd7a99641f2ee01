//! Every flood at once, from several addresses, for 20 s: password guessing on
//! the owner's account, parallel wrong logins from 48 addresses (the Argon2
//! pool's whole capacity), slow request bodies, RTSP connections that never
//! play, silent and reconnecting RTMP handshakes, and a shared viewer's report
//! flood. Meanwhile an honest viewer on 127.0.0.1 keeps receiving every new
//! segment on time, the owner can still sign in, and afterwards the server's
//! memory has not run away.

mod common;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const FLOOD: Duration = Duration::from_secs(20);

/// Runs `f` in a loop until `stop`, counting rounds.
fn flood<F, Fut>(
    stop: &Arc<AtomicBool>,
    count: &Arc<AtomicU64>,
    f: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (stop, count) = (stop.clone(), count.clone());
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            f().await;
            count.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_honest_viewer_is_served_on_time_while_every_flood_runs() {
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    assert_eq!(s.share(&a, &living, OWNER_B).await.0, 202);
    let rss_before = s.rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let counts: Vec<Arc<AtomicU64>> = (0..6).map(|_| Arc::default()).collect();
    let base = s.base.clone();

    // Password guessing on A's account from one address.
    let guesser = client_from("127.0.0.2");
    let b2 = base.clone();
    tasks.push(flood(&stop, &counts[0], move || {
        let (c, base) = (guesser.clone(), b2.clone());
        async move {
            let _ = c
                .post(format!("{base}/api/v1/login"))
                .json(&serde_json::json!({"email": OWNER_A, "password": "guess"}))
                .send()
                .await;
        }
    }));
    // Parallel wrong logins from 48 addresses, each within its own limits.
    for i in 0..48 {
        let c = client_from(&format!("127.0.1.{}", i + 1));
        let b2 = base.clone();
        tasks.push(flood(&stop, &counts[1], move || {
            let (c, base) = (c.clone(), b2.clone());
            async move {
                let _ = c
                    .post(format!("{base}/api/v1/login"))
                    .json(&serde_json::json!({"email": format!("nobody{i}@example.com"), "password": "x"}))
                    .send()
                    .await;
            }
        }));
    }
    // Slow bodies: 256 connections from one address, a byte every second.
    let http = s.http;
    let stop2 = stop.clone();
    tasks.push(tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..256 {
            if let Ok(mut c) = connect_from("127.0.0.7", http).await {
                let _ = c
                    .write_all(
                        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n{",
                    )
                    .await;
                conns.push(c);
            }
        }
        while !stop2.load(Ordering::Relaxed) {
            for c in &mut conns {
                let _ = c.write_all(b" ").await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }));
    // RTSP: 32 connections that only send OPTIONS.
    let rtsp = s.rtsp.expect("rtsp listener");
    let stop2 = stop.clone();
    tasks.push(tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..32 {
            if let Ok(c) = connect_from("127.0.0.8", rtsp).await {
                conns.push(c);
            }
        }
        let mut cseq = 0;
        while !stop2.load(Ordering::Relaxed) {
            cseq += 1;
            for c in &mut conns {
                let req = format!("OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n");
                let _ = c.write_all(req.as_bytes()).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }));
    // RTMP: 128 silent connections, and handshakes that reconnect at once.
    let rtmp = s.rtmp;
    let stop2 = stop.clone();
    tasks.push(tokio::spawn(async move {
        let mut silent = Vec::new();
        for _ in 0..128 {
            if let Ok(c) = connect_from("127.0.0.9", rtmp).await {
                silent.push(c);
            }
        }
        while !stop2.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }));
    tasks.push(flood(&stop, &counts[2], move || async move {
        if let Ok(mut c) = connect_from("127.0.0.10", rtmp).await {
            let mut c0c1 = vec![3u8];
            c0c1.extend(pseudo_random(7, 1536));
            let _ = c.write_all(&c0c1).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }));
    // Reports from the viewer the camera is shared with.
    let report_url = format!("{base}/api/v1/cameras/{living}/reports");
    let reporter = client();
    let token_b = b.clone();
    tasks.push(flood(&stop, &counts[3], move || {
        let (c, url, t) = (reporter.clone(), report_url.clone(), token_b.clone());
        async move {
            let _ = c
                .post(&url)
                .bearer_auth(&t)
                .json(
                    &serde_json::json!({"kind": "provenance", "detail": {"pad": "y".repeat(1500)}}),
                )
                .send()
                .await;
        }
    }));

    // The honest viewer: polls the playlist every second and fetches each new
    // segment once, timing when each one arrives.
    let g = s.grant(&a, &living).await;
    let master = g["hls_url"].as_str().unwrap().to_string();
    let dir = master.rsplit_once('/').unwrap().0.to_string();
    let playlist = format!("{dir}/live.m3u8");
    let viewer = client();
    let started = Instant::now();
    let mut seen = std::collections::HashSet::new();
    let mut arrivals: Vec<Instant> = Vec::new();
    let mut slowest_request = Duration::ZERO;
    let mut failures = Vec::new();
    let mut signed_in_during_flood = None;
    while started.elapsed() < FLOOD {
        let t = Instant::now();
        let r = media_get(&viewer, &playlist).send().await;
        let text = match r {
            Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
            Ok(r) => {
                failures.push(format!("playlist {}", r.status()));
                String::new()
            }
            Err(e) => {
                failures.push(format!("playlist {e}"));
                String::new()
            }
        };
        slowest_request = slowest_request.max(t.elapsed());
        for name in text.lines().filter(|l| l.ends_with(".m4s")) {
            if !seen.insert(name.to_string()) {
                continue;
            }
            let t = Instant::now();
            match media_get(&viewer, &format!("{dir}/{name}")).send().await {
                Ok(r) if r.status() == 200 => match r.bytes().await {
                    Ok(body) if !body.is_empty() => arrivals.push(Instant::now()),
                    other => failures.push(format!("segment body {other:?}")),
                },
                Ok(r) => failures.push(format!("segment {}", r.status())),
                Err(e) => failures.push(format!("segment {e}")),
            }
            slowest_request = slowest_request.max(t.elapsed());
        }
        // Halfway, the owner signs in again from the honest address.
        if signed_in_during_flood.is_none() && started.elapsed() > FLOOD / 2 {
            let t = Instant::now();
            let r = client()
                .post(format!("{base}/api/v1/login"))
                .json(&serde_json::json!({"email": OWNER_A, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            signed_in_during_flood = Some((r.status().as_u16(), t.elapsed()));
        }
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(t.elapsed())).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let rounds: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    let widest = gaps.iter().max().copied().unwrap_or_default();
    eprintln!(
        "floods: {} guesses, {} parallel wrong logins, {} RTMP handshakes, {} reports; \
         honest viewer: {} segments, widest gap {widest:?}, slowest request {slowest_request:?}, \
         login during the flood {signed_in_during_flood:?}, failures {failures:?}",
        rounds[0],
        rounds[1],
        rounds[2],
        rounds[3],
        arrivals.len()
    );
    assert!(
        failures.is_empty(),
        "the honest viewer was refused: {failures:?}"
    );
    // 2 s segments over 20 s: about ten, none late by more than a poll and a bit.
    assert!(arrivals.len() >= 8, "only {} segments", arrivals.len());
    assert!(widest < Duration::from_millis(4500), "gaps {gaps:?}");
    assert!(
        slowest_request < Duration::from_secs(2),
        "{slowest_request:?}"
    );
    let (status, took) = signed_in_during_flood.expect("a login during the flood");
    assert_eq!(status, 200, "the owner could not sign in during the flood");
    assert!(took < Duration::from_secs(5), "login took {took:?}");
    assert!(
        rounds[1] > 100 && rounds[3] > 100,
        "the floods ran: {rounds:?}"
    );

    // After the floods: memory back within bounds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = s.rss_mib();
    eprintln!("RSS: {rss_before} MiB before, {rss_after} MiB after the floods");
    assert!(
        rss_after < rss_before + 200,
        "RSS grew from {rss_before} to {rss_after} MiB"
    );
}
