//! Viewer keys for players and recorders that cannot send headers: an owner
//! makes a key for one camera; ffmpeg plays its RTSP URL (Digest auth, the key's
//! id and secret in the URL, as VLC, Home Assistant and Frigate take it) and
//! VLC (`cvlc`, Debian's) plays its HLS URL; each decodes that camera's picture
//! and nothing else opens with the key. Revoking the key ends the RTSP session
//! within a second and refuses the HLS player's next request.
//!
//! Debian builds VLC without live555, so its `cvlc` cannot play RTSP at all
//! (only SAT>IP and RealRTSP): VLC is tried on the HLS URL, ffmpeg on RTSP.

mod common;
use common::*;
use serde_json::{Value, json};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;

async fn post_key(s: &Server, token: &str, body: Value) -> (u16, Value) {
    s.api(reqwest::Method::POST, "/api/v1/viewer-keys", token, body)
        .await
}

/// `cvlc` recording `url` to a file, as a user it agrees to run as.
fn vlc_recording(url: &str, dir: &std::path::Path) -> std::process::Child {
    let out = dir.join("vlc.ts");
    let sout = format!("#std{{access=file,mux=ts,dst={}}}", out.display());
    let root = running_as_root();
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "cvlc"]);
        c
    } else {
        Command::new("cvlc")
    };
    cmd.args(["--intf", "dummy", "--no-audio", url, "--sout", &sout])
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("vlc.log")).unwrap())
        .spawn()
        .expect("cvlc (scripts/install-test-deps installs vlc-bin)")
}

/// Whether this process runs as root (VLC refuses to).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_key_plays_in_ffmpeg_and_vlc_and_stops_when_revoked() {
    require_tool("ffmpeg");
    require_tool("cvlc");
    let s = Server::demo(W, H);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let nursery = s.camera_id(&a, "Nursery").await;

    // Only cameras the caller may view.
    let (st, e) = post_key(&s, &b, json!({"name": "NVR", "cameras": [living]})).await;
    assert_eq!(st, 404, "{e}");
    let (st, e) = post_key(&s, &a, json!({"name": "", "cameras": [living]})).await;
    assert_eq!(st, 400, "{e}");

    let (st, key) = post_key(
        &s,
        &a,
        json!({"name": "VLC in the den", "cameras": [living]}),
    )
    .await;
    assert_eq!(st, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    let id = key["id"].as_str().unwrap().to_string();
    let rtsp = key["urls"][0]["rtsp_url"].as_str().unwrap().to_string();
    let hls = key["urls"][0]["hls_url"].as_str().unwrap().to_string();
    assert!(
        rtsp.starts_with(&format!("rtsp://{id}:{secret}@")),
        "{rtsp}"
    );
    assert!(rtsp.ends_with(&format!("/cameras/{living}")), "{rtsp}");
    let listed = client()
        .get(format!("{}/api/v1/viewer-keys", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains(&id) && !listed.contains(&secret),
        "{listed}"
    );

    // ffmpeg over RTSP with Digest: the camera's own picture, main and sub.
    let url = rtsp.clone();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 1.5, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, signature_of(&living));
    let url = format!("{rtsp}/sub");
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 1.0, W / 2, H / 2))
        .await
        .unwrap();
    assert_signature(&frames, W / 2, H / 2, signature_of(&living));

    // The key opens nothing else, and a wrong secret opens nothing.
    let probe = |url: String| {
        tokio::task::spawn_blocking(move || {
            Command::new("ffprobe")
                .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &url])
                .output()
                .unwrap()
        })
    };
    let other = probe(rtsp.replace(&living, &nursery)).await.unwrap();
    assert!(
        !other.status.success(),
        "the key opened a camera it does not list"
    );
    let wrong = probe(rtsp.replace(&secret, "not-the-secret"))
        .await
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let (st, _) = get_as(&hls.replace(&secret, "not-the-secret"), None).await;
    assert_eq!(st, 404);

    // VLC plays the HLS URL (MPEG-TS playlist) and records what it gets.
    let dir = tempfile::tempdir().unwrap();
    // VLC runs as `nobody` when the tests run as root: let it write here.
    let open = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o777);
    std::fs::set_permissions(dir.path(), open).unwrap();
    let mut vlc = vlc_recording(&hls.replace("/index.m3u8", "/ts.m3u8"), dir.path());
    let recorded = dir.path().join("vlc.ts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while size(&recorded) < 100_000 {
        assert!(
            Instant::now() < deadline,
            "VLC recorded {} bytes: {}",
            size(&recorded),
            std::fs::read_to_string(dir.path().join("vlc.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let copy = dir.path().join("copy.ts");
    std::fs::copy(&recorded, &copy).unwrap();
    let c = copy.to_str().unwrap().to_string();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&c, 2.0, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, signature_of(&living));

    // A long-running RTSP viewer, counting what it receives.
    let mut ff = Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &rtsp])
        .args(["-c", "copy", "-an", "-f", "mpegts", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = ff.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("RTSP bytes");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grant_url = {
        let r = no_redirects().get(&hls).send().await.unwrap();
        assert_eq!(r.status(), 302);
        r.headers()["location"].to_str().unwrap().to_string()
    };
    assert_eq!(
        get_as(&grant_url, None).await.0,
        200,
        "a restream grant needs no session"
    );

    // Revoke.
    let revoked = Instant::now();
    let r = client()
        .delete(format!("{}/api/v1/viewer-keys/{id}", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // HLS: the key's URL and the grant it bought are refused at once.
    assert_eq!(get_as(&hls, None).await.0, 404);
    assert_eq!(get_as(&grant_url, None).await.0, 403);
    // RTSP: the session ends (the last byte arrives) within a second.
    let mut last = first;
    while let Ok(t) = rx.recv_timeout(Duration::from_secs(3)) {
        last = t;
    }
    let after = last.saturating_duration_since(revoked);
    println!("RTSP: last byte {after:?} after the revocation");
    assert!(
        after < Duration::from_secs(1),
        "RTSP ran on {after:?} after the revocation"
    );
    let _ = ff.kill();
    let _ = ff.wait();
    // VLC: what it had buffered plays out, then nothing more comes.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let at = size(&recorded);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let vlc_log = std::fs::read_to_string(dir.path().join("vlc.log")).unwrap_or_default();
    let _ = vlc.kill();
    let _ = vlc.wait();
    assert_eq!(
        size(&recorded),
        at,
        "VLC kept receiving after the revocation:\n{vlc_log}"
    );
    println!("VLC recorded {at} bytes; stopped after the revocation");

    // Audited as its own principal.
    let log = s.access_log(&a, &living).await;
    assert!(
        log.iter().any(|e| e.to_string().contains("restream")),
        "the access log names the viewer key's streams: {log:?}"
    );
}
