//! The still-image cache serves the right camera's newest picture, and it changes
//! while the camera is live.

mod common;
use common::*;
use std::time::Duration;

const W: u32 = 640;
const H: u32 = 360;

async fn fetch_jpeg(url: &str) -> Vec<u8> {
    let r = media_get(&client(), &format!("{url}?t={}", rand_u64()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let b = r.bytes().await.unwrap().to_vec();
    assert!(
        b.starts_with(&[0xff, 0xd8]) && b.ends_with(&[0xff, 0xd9]),
        "not a JPEG"
    );
    b
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_is_the_right_camera_and_stays_fresh() {
    require_tool("ffmpeg");
    let s = Server::demo(W, H);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    s.wait_online(&b, "Front door").await;
    let living = s.camera_id(&a, "Living room").await;
    let front = s.camera_id(&b, "Front door").await;
    let ga = s.grant(&a, &living).await;
    let gb = s.grant(&b, &front).await;
    let url_a = ga["snapshot_url"].as_str().unwrap().to_string();
    let url_b = gb["snapshot_url"].as_str().unwrap().to_string();

    let first = fetch_jpeg(&url_a).await;
    let rgb = tokio::task::spawn_blocking({
        let first = first.clone();
        move || decode_image(&first, W, H)
    })
    .await
    .unwrap();
    assert_eq!(
        hearth_camera::read_signature(&rgb, W, H),
        Some(signature_of(&living))
    );

    let other = fetch_jpeg(&url_b).await;

    // Each still names its camera in-band (an APP11 segment), with a tag that
    // verifies under the server's media key over the rest of the image.
    let keys =
        hearth_access::keys::MediaKeys::load_or_create(&s.data_dir().join("media.key")).unwrap();
    for (jpeg, camera) in [(&first, &living), (&other, &front)] {
        let (record, at) =
            hearth_media::jpeg::locate_provenance(jpeg).expect("in-band provenance in the still");
        assert_eq!(record.camera.to_string(), *camera);
        assert!(keys.verify(&record, &[&jpeg[..at.start], &jpeg[at.end..]]));
        assert!(!keys.verify(&record, &[&jpeg[..at.start], &jpeg[at.end + 1..]]));
    }

    let rgb_b = tokio::task::spawn_blocking(move || decode_image(&other, W, H))
        .await
        .unwrap();
    assert_eq!(
        hearth_camera::read_signature(&rgb_b, W, H),
        Some(signature_of(&front))
    );

    // The picture shows the camera's clock and frame counter, so a fresh still differs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = fetch_jpeg(&url_a).await;
    assert_ne!(
        first, second,
        "snapshot did not change while the camera is live"
    );
    let rgb2 = tokio::task::spawn_blocking(move || decode_image(&second, W, H))
        .await
        .unwrap();
    assert_eq!(
        hearth_camera::read_signature(&rgb2, W, H),
        Some(signature_of(&living))
    );

    // Many quick requests reuse the cached JPEG rather than decoding each time, and
    // never show anything but this camera.
    let mut distinct = std::collections::HashSet::new();
    for _ in 0..20 {
        distinct.insert(fetch_jpeg(&url_a).await);
    }
    assert!(
        distinct.len() <= 4,
        "{} distinct stills in ~20 quick requests",
        distinct.len()
    );
}
