//! Hearth behind a CDN: Debian's nginx as a caching reverse proxy
//! (`deploy/nginx-cdn.conf`). Viewers of one camera share its encrypted
//! segments (the cache hit ratio is printed); playlists and keys are never
//! served from the cache; and with the cache deliberately keyed wrongly
//! (neither the grant nor the camera in the key: only the segment's number, so
//! two cameras' segments collide), a viewer of camera A is handed camera B's
//! segments and still never decodes B's picture: they are ciphertext under B's
//! key, which A's grant never gets.

mod common;
#[path = "common/nginx.rs"]
mod nginx;

use common::*;
use nginx::{Nginx, free_port};

const W: u32 = 320;
const H: u32 = 180;

fn is_segment(uri: &str) -> bool {
    uri.ends_with(".ts") || (uri.ends_with(".m4s") && !uri.contains("init"))
}

/// Decodes `url` for `seconds` in a blocking thread.
async fn decode(url: String, seconds: f64) -> Vec<Vec<u8>> {
    tokio::task::spawn_blocking(move || decode_rgb(&url, seconds, W, H))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cdn_shares_encrypted_segments_and_a_wrongly_keyed_one_never_shows_another_camera() {
    require_tool("ffmpeg");
    let port = free_port();
    let cdn = format!("http://127.0.0.1:{port}");
    // Every URL Hearth hands out points at the CDN.
    let s = Server::demo_with(W, H, &["--public-url", &cdn], &[]);
    let upstream = vec![s.http.to_string()];
    let owner_a = s.login(OWNER_A, PASSWORD).await;
    let owner_b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&owner_a, "Living room").await;
    s.wait_online(&owner_b, "Front door").await;
    let cam_a = s.camera_id(&owner_a, "Living room").await;
    let cam_b = s.camera_id(&owner_b, "Front door").await;
    let (sig_a, sig_b) = (signature_of(&cam_a), signature_of(&cam_b));

    // The right key: three viewers of A (three sessions, three grants) share.
    let nginx = Nginx::start(port, &upstream, nginx::RIGHT_KEY);
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let token = s.login(OWNER_A, PASSWORD).await;
        let g = s.grant(&token, &cam_a).await;
        let url = g["hls_ts_url"].as_str().unwrap().to_string();
        assert!(url.starts_with(&cdn), "{url}");
        viewers.push(tokio::spawn(decode(url, 4.0)));
    }
    for v in viewers {
        assert_signature(&v.await.unwrap(), W, H, sig_a);
    }
    let log = nginx.requests();
    let segments: Vec<_> = log.iter().filter(|r| is_segment(&r.1)).collect();
    let hits = segments.iter().filter(|r| r.3 == "HIT").count();
    let misses = segments.iter().filter(|r| r.3 == "MISS").count();
    eprintln!(
        "3 viewers of one camera through the CDN: {} segment requests, {hits} hits, {misses} misses: hit ratio {:.0}%",
        segments.len(),
        100.0 * hits as f64 / segments.len().max(1) as f64
    );
    assert!(hits > 0, "no segment was served from the cache: {log:?}");
    assert!(misses < segments.len(), "every segment went to the node");
    for (_, uri, _, cache) in &log {
        if !is_segment(uri) {
            assert_eq!(cache, "-", "{uri} touched the cache ({cache})");
        }
    }
    assert!(
        log.iter().any(|r| r.1.ends_with(".m3u8")) && log.iter().any(|r| r.1.ends_with(".bin")),
        "playlists and keys went through the CDN: {log:?}"
    );
    drop(nginx);

    // The wrong key: only the segment's number. A and B collide.
    let wrong = Nginx::start(port, &upstream, "$seq.$ext");
    let gb = s.grant(&owner_b, &cam_b).await;
    let b_url = gb["hls_ts_url"].as_str().unwrap().to_string();
    let gb_url = b_url.clone();
    let ga = s.grant(&owner_a, &cam_a).await;
    let a_url = ga["hls_ts_url"].as_str().unwrap().to_string();
    let a_grant = grant_token(&a_url).unwrap().to_string();
    // B plays first and fills the cache; A then starts a few segments back
    // from the live edge, at numbers B's segments are cached under.
    assert_signature(&decode(b_url, 6.0).await, W, H, sig_b);
    // A plays like a player that retries: until it shows its own camera.
    let a_frames = tokio::task::spawn_blocking(move || {
        let mut frames = Vec::new();
        for _ in 0..6 {
            let got = try_decode_rgb(&a_url, 3.0, W, H);
            let own = got
                .iter()
                .any(|f| hearth_camera::read_signature(f, W, H) == Some(sig_a));
            frames.extend(got);
            if own {
                break;
            }
        }
        frames
    })
    .await
    .unwrap();
    // Which viewer's bytes each cache entry holds: whoever's request missed
    // first under that number. A hit for A on one of B's entries is B's
    // segment handed to A.
    let b_grant = grant_token(&gb_url).unwrap().to_string();
    let number = |uri: &str| uri.rsplit('-').next().unwrap_or_default().to_string();
    let mut filled_by_b = std::collections::HashMap::new();
    let mut crossed = 0;
    for (_, uri, _, cache) in wrong.requests().iter().filter(|r| is_segment(&r.1)) {
        let n = number(uri);
        if cache == "MISS" {
            filled_by_b.entry(n).or_insert(uri.contains(&b_grant));
        } else if cache == "HIT" && uri.contains(&a_grant) && filled_by_b.get(&n) == Some(&true) {
            crossed += 1;
        }
    }
    eprintln!(
        "wrongly keyed cache: {crossed} of A's segment requests were answered with B's segment; A decoded {} frames, none of them B's",
        a_frames.len()
    );
    for (i, f) in a_frames.iter().enumerate() {
        assert_ne!(
            hearth_camera::read_signature(f, W, H),
            Some(sig_b),
            "frame {i} of A's stream is B's picture"
        );
    }
    assert!(
        a_frames
            .iter()
            .any(|f| hearth_camera::read_signature(f, W, H) == Some(sig_a)),
        "A never saw its own camera once the cache ran out of B's segments"
    );
    assert!(
        crossed > 0,
        "the faulty cache never crossed the cameras; the test proves nothing: {:?}",
        wrong.requests()
    );
}
