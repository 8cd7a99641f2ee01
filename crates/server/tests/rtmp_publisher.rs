//! A real RTMP publisher (ffmpeg, H.264 + AAC) added with the admin CLI while the
//! server runs shows up as its camera and plays back through HLS. A wrong key and a
//! second publisher are refused without disturbing the live one.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn publish(url: &str) -> Child {
    Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-f",
            "flv",
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg")
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_publisher_becomes_its_camera_and_plays_back() {
    require_tool("ffmpeg");
    let mut s = Server::serve();
    // Admin commands against the running server's data dir.
    let out = s.admin(
        &["user", "add", "--email", "carol@example.com"],
        Some("a long password\n"),
    );
    assert!(out.contains("carol@example.com"), "{out}");
    let out = s.admin(
        &[
            "camera",
            "add",
            "--owner",
            "carol@example.com",
            "--name",
            "Garage",
            "--timezone",
            "Europe/Berlin",
        ],
        None,
    );
    let ingest = out
        .lines()
        .find_map(|l| l.strip_prefix("ingest "))
        .unwrap_or_else(|| panic!("no ingest URL in {out}"))
        .to_string();
    assert!(
        ingest.starts_with(&format!("rtmp://{}/live/", s.rtmp)),
        "{ingest}"
    );
    let list = s.admin(&["camera", "list"], None);
    assert!(
        list.contains("Garage") && list.contains("carol@example.com"),
        "{list}"
    );
    // The key is shown once and never stored in the clear.
    let key = ingest.rsplit('/').next().unwrap();
    let db = std::fs::read(s.data_dir().join("hearth.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "stream key stored in the clear"
    );

    let token = s.login("carol@example.com", "a long password").await;
    let cams = s.cameras(&token).await;
    assert_eq!(cams.len(), 1);
    assert_eq!(cams[0]["online"], false);

    let _live = Kill(publish(&ingest));
    s.wait_online(&token, "Garage").await;
    let id = s.camera_id(&token, "Garage").await;
    let g = s.grant(&token, &id).await;

    for key in ["hls_url", "hls_ts_url"] {
        let url = g[key].as_str().unwrap().to_string();
        let u2 = url.clone();
        let (codec, w, h, codecs) = tokio::task::spawn_blocking(move || ffprobe_video(&u2))
            .await
            .unwrap();
        assert_eq!((codec.as_str(), w, h), ("h264", 640, 360), "{key}");
        assert!(
            codecs.iter().any(|c| c == "aac"),
            "{key}: no AAC in {codecs:?}"
        );
        let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 3.0, 160, 90))
            .await
            .unwrap();
        assert!(
            frames.len() >= 70,
            "{key}: {} frames for 3 s at 25 fps",
            frames.len()
        );
    }

    // The still-image cache decodes a real encoder's High-profile stream (CABAC,
    // B-frames) too.
    let r = media_get(&client(), g["snapshot_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "snapshot of an x264 camera");
    let jpeg = r.bytes().await.unwrap().to_vec();
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "not a JPEG");
    let rgb = tokio::task::spawn_blocking(move || decode_image(&jpeg, 64, 36))
        .await
        .unwrap();
    assert!(rgb.iter().any(|&b| b > 40), "snapshot is black");

    // A wrong key is refused.
    let wrong = format!("rtmp://{}/live/not-a-key", s.rtmp);
    let mut bad = publish(&wrong);
    assert!(
        wait_for(Duration::from_secs(15), || matches!(
            bad.try_wait(),
            Ok(Some(_))
        )),
        "publisher with a wrong key was not refused"
    );
    // A second publisher for the live camera is refused; the first goes on.
    let mut second = publish(&ingest);
    assert!(
        wait_for(Duration::from_secs(15), || matches!(
            second.try_wait(),
            Ok(Some(_))
        )),
        "second publisher was not refused"
    );
    let log = s.log();
    assert!(
        log.contains("unknown stream key"),
        "refusal reason not logged"
    );
    assert!(
        log.contains("already has a live publisher"),
        "refusal reason not logged"
    );
    assert!(!log.contains(key), "stream key appeared in the log");

    let (st, p1) = get(g["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8")
        .as_str())
    .await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (_, p2) = get(g["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8")
        .as_str())
    .await;
    assert_ne!(
        p1, p2,
        "the live camera stopped after the refused publishers"
    );
    assert!(s.is_running());
}
