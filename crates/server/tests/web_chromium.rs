//! Headless Chromium logs in to the web app, sees the household's cameras, opens one
//! and plays it live: the video's currentTime advances, the pixels it shows carry that
//! camera's signature, and a screenshot is not blank.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;
use base64::Engine as _;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use webdriver::Driver;

#[tokio::test(flavor = "multi_thread")]
async fn chromium_logs_in_and_plays_a_camera() {
    require_tool("ffmpeg");
    let s = Server::demo(640, 360);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;

    let d = Driver::start().await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;

    // The grid shows exactly this household's cameras.
    d.wait_find("[data-testid=camera-card]").await;
    let names = d
        .js("return [...document.querySelectorAll('[data-testid=camera-card]')].map(e => e.dataset.cameraName).sort()")
        .await;
    assert_eq!(names, json!(["Living room", "Nursery"]));
    // Thumbnails load (live snapshots through the egress door).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let loaded = d
            .js("return [...document.querySelectorAll('[data-testid=camera-card] img')].filter(i => i.complete && i.naturalWidth > 0).length")
            .await;
        if loaded.as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "thumbnails never loaded");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    d.click(&format!(
        "[data-testid=camera-card][data-camera-id='{living}']"
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = d
            .js("return window.hearthPlayer ? window.hearthPlayer.state : null")
            .await;
        if st == "playing" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "player never reached 'playing': {st} {}",
            d.js("return JSON.stringify(window.hearthPlayer)").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let name = d
        .js("return document.querySelector('[data-testid=player-name]').textContent")
        .await;
    assert!(name.as_str().unwrap().contains("Living room"), "{name}");

    let t0 = d
        .js("return document.getElementById('player').currentTime")
        .await
        .as_f64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let t1 = d
        .js("return document.getElementById('player').currentTime")
        .await
        .as_f64()
        .unwrap();
    assert!(
        t1 - t0 >= 2.5,
        "currentTime advanced only {:.2}s in 3.5s",
        t1 - t0
    );

    // What the browser shows is this camera: read the signature off the video's pixels.
    let rgb = d.video_rgb(320, 180).await;
    assert_eq!(
        hearth_camera::read_signature(&rgb, 320, 180),
        Some(signature_of(&living))
    );

    // A screenshot of the page is not blank.
    let png = d.call(reqwest::Method::GET, "/screenshot", json!({})).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    std::fs::write(s.dir.path().join("player.png"), &png).unwrap();
    let rgb = decode_image(&png, 320, 225);
    let mean = rgb.iter().map(|&b| f64::from(b)).sum::<f64>() / rgb.len() as f64;
    let var = rgb
        .iter()
        .map(|&b| (f64::from(b) - mean).powi(2))
        .sum::<f64>()
        / rgb.len() as f64;
    assert!(var > 100.0, "screenshot looks blank (variance {var:.1})");
    if let Ok(dir) = std::env::var("HEARTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join("player.png"), &png);
    }
}
