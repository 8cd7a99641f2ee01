//! A camera that signs its GOPs at the source (the simulated camera does) is
//! verified at ingest: a stream whose signature breaks is cut off, and the GOP that
//! failed never becomes a segment; a camera signing as another camera is refused.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn camera(name: &str, id: &str) -> hearth_camera::SimCameraConfig {
    let mut cfg = hearth_camera::SimCameraConfig::new(name, "UTC", signature_of(id));
    cfg.width = 320;
    cfg.height = 180;
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_signatures_are_cut_off_before_they_become_segments() {
    let s = Server::serve();
    s.admin(
        &["user", "add", "--email", "dana@example.com"],
        Some("a long password\n"),
    );
    let (tampered_id, tampered_url) = s.add_camera("dana@example.com", "Tampered");
    let (_, impostor_url) = s.add_camera("dana@example.com", "Impostor");

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // Flips a byte in a P-frame of every connection's second GOP, after signing.
    let mut tampered = camera("Tampered", &tampered_id);
    tampered.camera_id = Some(tampered_id.parse().unwrap());
    tampered.tamper_after_gops = Some(1);
    let rx = stop.clone();
    tokio::spawn(async move { hearth_camera::publish(&tampered_url, tampered, rx).await });
    // Signs correctly, but as some other camera.
    let mut impostor = camera("Impostor", &tampered_id);
    impostor.camera_id = Some(hearth_model::CameraId::random());
    let rx = stop.clone();
    tokio::spawn(async move { hearth_camera::publish(&impostor_url, impostor, rx).await });

    let token = s.login("dana@example.com", "a long password").await;
    s.wait_online(&token, "Tampered").await;
    // Three connection cycles: each verified GOP 0 becomes a segment, each tampered
    // GOP 1 is refused at the IDR that closes it. A viewer polls the playlist
    // meanwhile, so the hub keeps the whole window (an unwatched camera keeps only
    // its newest segment); between connections the camera is offline and the
    // poll is answered 503, which is fine here.
    let g = s.grant(&token, &tampered_id).await;
    let live = g["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8");
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(14) {
        let _ = get(&live).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = s.log();
    assert!(
        log.contains("signed GOP does not verify"),
        "tampering was not detected:\n{log}"
    );
    assert!(
        log.contains("names camera"),
        "the impostor was not refused:\n{log}"
    );
    assert!(
        log.matches("camera live").count() >= 3,
        "the tampered camera did not reconnect"
    );

    let g = s.grant(&token, &tampered_id).await;
    let (st, playlist) = get(&g["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8"))
    .await;
    assert_eq!(st, 200);
    let playlist = String::from_utf8(playlist).unwrap();
    // Every listed segment after the first starts a new connection's timeline:
    // no connection ever got a second (tampered) segment published.
    let lines: Vec<&str> = playlist.lines().collect();
    let mut segments = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.ends_with(".m4s") {
            segments += 1;
            if segments > 1 {
                let since_prev: Vec<&&str> = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|x| !x.ends_with(".m4s"))
                    .collect();
                assert!(
                    since_prev.iter().any(|x| **x == "#EXT-X-DISCONTINUITY"),
                    "two segments of one connection were published:\n{playlist}"
                );
            }
        }
    }
    assert!(segments >= 2, "{playlist}");

    // The impostor never published a segment.
    let cams = s.cameras(&token).await;
    let impostor = cams.iter().find(|c| c["name"] == "Impostor").unwrap();
    let gi = s.grant(&token, impostor["id"].as_str().unwrap()).await;
    let (st, _) = get(&gi["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8"))
    .await;
    assert_ne!(st, 200, "the impostor's media was served");
    let _ = stop_tx.send(true);
}
