//! A newcomer's demo: owner A logs in, sees only their cameras, and plays the Living
//! room camera over both HLS flavours; the decoded pictures are the Living room's.

mod common;
use common::*;
use std::time::Duration;

const W: u32 = 640;
const H: u32 = 360;

#[tokio::test(flavor = "multi_thread")]
async fn owner_plays_own_camera_over_fmp4_and_ts_hls() {
    require_tool("ffmpeg");
    require_tool("ffprobe");
    let s = Server::demo(W, H);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;

    let names = |v: Vec<serde_json::Value>| -> Vec<String> {
        v.iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(s.cameras(&a).await), ["Living room", "Nursery"]);
    assert_eq!(names(s.cameras(&b).await), ["Front door"]);
    let listed = s.cameras(&a).await;
    assert_eq!(listed[0]["timezone"], "Europe/Amsterdam");
    assert!(listed[0]["household"].is_string());

    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let nursery = s.camera_id(&a, "Nursery").await;
    let expected = signature_of(&living);
    assert_ne!(expected, signature_of(&nursery));

    let g = s.grant(&a, &living).await;
    for key in ["hls_url", "hls_ts_url", "snapshot_url"] {
        let url = g[key].as_str().unwrap();
        assert!(url.starts_with(&s.base), "{key} must be absolute: {url}");
    }
    assert!(g["expires_at"].is_string());

    for key in ["hls_url", "hls_ts_url"] {
        let url = g[key].as_str().unwrap().to_string();
        let (codec, w, h, _) = tokio::task::spawn_blocking({
            let url = url.clone();
            move || ffprobe_video(&url)
        })
        .await
        .unwrap();
        assert_eq!((codec.as_str(), w, h), ("h264", W, H), "{key}");
        let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 3.5, W / 2, H / 2))
            .await
            .unwrap();
        // 3.5 s at 15 fps; allow a little slack at the end of the window.
        assert!(
            frames.len() >= 45,
            "{key}: only {} frames decoded",
            frames.len()
        );
        assert_signature(&frames, W / 2, H / 2, expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn playlists_slide_with_sequence_and_wall_clock() {
    let s = Server::demo(W, H);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Nursery").await;
    let id = s.camera_id(&a, "Nursery").await;
    let g = s.grant(&a, &id).await;
    let master_url = g["hls_url"].as_str().unwrap();
    let (st, master) = get(master_url).await;
    assert_eq!(st, 200);
    let master = String::from_utf8(master).unwrap();
    assert!(
        master.contains("#EXT-X-STREAM-INF") && master.contains("CODECS=\"avc1."),
        "{master}"
    );
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    let media_url = master_url.replace("index.m3u8", "live.m3u8");

    // Wait until the window holds at least three segments.
    let mut first_seq = None;
    let mut text = String::new();
    for _ in 0..150 {
        let (st, body) = get(&media_url).await;
        assert_eq!(st, 200);
        text = String::from_utf8(body).unwrap();
        first_seq.get_or_insert_with(|| media_sequence(&text));
        if text.matches("#EXTINF").count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        text.matches("#EXTINF").count() >= 3,
        "window never reached 3 segments:\n{text}"
    );
    assert!(text.contains("#EXT-X-TARGETDURATION:2"), "{text}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init-"), "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:20"), "{text}");
    for line in text.lines().filter(|l| l.starts_with("#EXTINF:")) {
        let d: f64 = line["#EXTINF:".len()..]
            .trim_end_matches(',')
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1.5..=2.6).contains(&d), "segment duration {d} in\n{text}");
    }
    // The window slides once it is full: the media sequence advances and the oldest
    // segment leaves the playlist.
    let before = media_sequence(&text);
    let mut later = String::new();
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        later = String::from_utf8(get(&media_url).await.1).unwrap();
        if media_sequence(&later) > before {
            break;
        }
    }
    assert!(
        media_sequence(&later) > before,
        "media sequence did not advance:\n{text}\n---\n{later}"
    );
    let listed = later.matches("#EXTINF").count();
    assert!(
        (3..=6).contains(&listed),
        "window of {listed} segments:\n{later}"
    );

    let (_, ts) = get(g["hls_ts_url"].as_str().unwrap()).await;
    let ts = String::from_utf8(ts).unwrap();
    assert!(ts.contains(".ts") && !ts.contains("EXT-X-MAP"), "{ts}");
}

fn media_sequence(playlist: &str) -> u64 {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap_or_else(|| panic!("no media sequence in {playlist}"))
        .trim()
        .parse()
        .unwrap()
}
