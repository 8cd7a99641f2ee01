//! RTSP pull from a real IP camera (GStreamer's RTSP server with Digest auth,
//! H.264 and AAC, a main and a sub stream): owners add cameras through the API,
//! Hearth pulls them into the same hubs and door as RTMP, each household sees
//! its own picture, a wrong password shows `auth_failed`, a camera that reboots
//! is back within 5 s of answering again, and no password is ever returned,
//! logged or stored in the clear.

mod common;
#[path = "common/rtsp_camera.rs"]
mod rtsp_camera;
use common::*;
use rtsp_camera::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;
const SUB: (u32, u32) = (160, 90);

/// A server with the two demo owners and no cameras.
fn server() -> Server {
    let s = Server::serve();
    for email in [OWNER_A, OWNER_B] {
        s.admin(&["user", "add", "--email", email], Some(PASSWORD));
    }
    s
}

async fn add_camera(s: &Server, token: &str, body: Value) -> (u16, Value) {
    s.api(reqwest::Method::POST, "/api/v1/cameras", token, body)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_households_pull_their_own_rtsp_cameras() {
    require_tool("ffmpeg");
    let s = server();
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let (sig_a, sig_b) = (0x5EC0_0A0A, 0x5EC0_0B0B);
    let cam_a = RtspCamera::start(
        free_port(),
        sig_a,
        (W, H),
        Some(SUB),
        ("admin", "porch-Secret-1"),
    );
    let cam_b = RtspCamera::start(
        free_port(),
        sig_b,
        (W, H),
        None,
        ("viewer", "yard-Secret-2"),
    );

    let (st, added_a) = add_camera(
        &s,
        &a,
        json!({"name": "Porch", "rtsp_url": cam_a.url("main"), "rtsp_sub_url": cam_a.url("sub"),
               "rtsp_username": "admin", "rtsp_password": "porch-Secret-1"}),
    )
    .await;
    assert_eq!(st, 201, "{added_a}");
    // Credentials written into the URL, as camera manuals show them.
    let url_b = cam_b
        .url("main")
        .replace("rtsp://", "rtsp://viewer:yard-Secret-2@");
    let (st, added_b) = add_camera(&s, &b, json!({"name": "Yard", "rtsp_url": url_b})).await;
    assert_eq!(st, 201, "{added_b}");
    for added in [&added_a, &added_b] {
        assert_eq!(added["source"]["kind"], "rtsp", "{added}");
        assert!(
            added.get("ingest_url").is_none(),
            "a pulled camera has no push URL: {added}"
        );
    }
    assert_eq!(
        added_a["source"]["host"],
        format!("127.0.0.1:{}", cam_a.port)
    );
    let (id_a, id_b) = (
        added_a["id"].as_str().unwrap().to_string(),
        added_b["id"].as_str().unwrap().to_string(),
    );

    let took_a = s
        .wait_status(&a, &id_a, "online", Duration::from_secs(20))
        .await;
    let took_b = s
        .wait_status(&b, &id_b, "online", Duration::from_secs(20))
        .await;
    println!("online after adding: {took_a:?} (A), {took_b:?} (B, measured after A)");

    // Each household sees only its own camera, and decodes its own picture.
    assert!(s.cameras(&b).await.iter().all(|c| c["id"] != id_a.as_str()));
    assert_eq!(s.try_grant(&b, &id_a).await.0, 404);
    for (token, id, sig) in [(&a, &id_a, sig_a), (&b, &id_b, sig_b)] {
        let g = s.grant(token, id).await;
        let url = g["hls_ts_url"].as_str().unwrap().to_string();
        let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 2.0, W, H))
            .await
            .unwrap();
        assert_signature(&frames, W, H, sig);
    }
    // The sub stream is the camera's sub rendition, listed and decodable.
    let g = s.grant(&a, &id_a).await;
    let master = g["hls_url"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, m) = get_as(&master, Some(&a)).await;
        if String::from_utf8_lossy(&m).contains("RESOLUTION=160x90") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sub rendition in {}",
            String::from_utf8_lossy(&m)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sub = master.replace("/index.m3u8", "/sub-ts.m3u8");
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&sub, 1.5, SUB.0, SUB.1))
        .await
        .unwrap();
    assert_signature(&frames, SUB.0, SUB.1, sig_a);

    // No answer, log line or stored byte holds a camera's password.
    let listed_a = s.listed(&a, &id_a).await.to_string();
    let log = s.log();
    for secret in ["porch-Secret-1", "yard-Secret-2"] {
        for (what, text) in [
            ("an add answer", added_a.to_string() + &added_b.to_string()),
            ("the camera list", listed_a.clone()),
            ("the log", log.clone()),
        ] {
            assert!(!text.contains(secret), "{what} holds a camera password");
        }
        for entry in std::fs::read_dir(s.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds a camera password in the clear",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_shows_auth_failed_and_a_rebooted_camera_resumes_within_5_s() {
    require_tool("ffmpeg");
    let s = server();
    let a = s.login(OWNER_A, PASSWORD).await;
    let sig = 0x5EC0_0C0C;
    let mut cam = RtspCamera::start(free_port(), sig, (W, H), None, ("admin", "right-Password"));

    let (st, wrong) = add_camera(
        &s,
        &a,
        json!({"name": "Wrong", "rtsp_url": cam.url("main"), "rtsp_username": "admin", "rtsp_password": "wrong-Password"}),
    )
    .await;
    assert_eq!(st, 201, "{wrong}");
    let wrong_id = wrong["id"].as_str().unwrap();
    s.wait_status(&a, wrong_id, "auth_failed", Duration::from_secs(15))
        .await;
    let c = s.listed(&a, wrong_id).await;
    let err = c["source"]["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("refused"), "{c}");
    assert!(c["source"]["last_error_at"].is_string(), "{c}");
    assert_eq!(
        s.try_grant(&a, wrong_id).await.0,
        200,
        "the owner may try to view it"
    );

    // Nothing listens: unreachable.
    let (st, nowhere) = add_camera(
        &s,
        &a,
        json!({"name": "Unplugged", "rtsp_url": format!("rtsp://127.0.0.1:{}/main", free_port())}),
    )
    .await;
    assert_eq!(st, 201);
    s.wait_status(
        &a,
        nowhere["id"].as_str().unwrap(),
        "unreachable",
        Duration::from_secs(15),
    )
    .await;

    let (st, right) = add_camera(
        &s,
        &a,
        json!({"name": "Porch", "rtsp_url": cam.url("main"), "rtsp_username": "admin", "rtsp_password": "right-Password"}),
    )
    .await;
    assert_eq!(st, 201, "{right}");
    let id = right["id"].as_str().unwrap().to_string();
    s.wait_status(&a, &id, "online", Duration::from_secs(20))
        .await;

    // A reboot: the camera goes away without a word, stays off a while, comes back.
    cam.kill();
    let down = s
        .wait_status(&a, &id, "unreachable", Duration::from_secs(40))
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    cam.restart();
    let back = s
        .wait_status(&a, &id, "online", Duration::from_secs(15))
        .await;
    println!(
        "reboot: seen as unreachable after {down:?}; online {back:?} after the camera answered again"
    );
    assert!(
        back < Duration::from_secs(5),
        "resumed {back:?} after the camera answered"
    );
    let g = s.grant(&a, &id).await;
    let url = g["hls_ts_url"].as_str().unwrap().to_string();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 1.5, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, sig);

    // Bad sources are refused with a reason; nothing is created.
    let before = s.cameras(&a).await.len();
    for body in [
        json!({"name": "x", "rtsp_url": "http://cam/main"}),
        json!({"name": "x", "rtsp_url": "not a url"}),
        json!({"name": "x", "rtsp_password": "p"}),
        json!({"name": "", "rtsp_url": cam.url("main")}),
        json!({"name": "x", "rtsp_url": cam.url("main"), "extra": 1}),
    ] {
        let (st, e) = add_camera(&s, &a, body.clone()).await;
        assert_eq!(st, 400, "{body} -> {e}");
    }
    assert_eq!(s.cameras(&a).await.len(), before);
}

async fn patch(s: &Server, token: &str, id: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/v1/cameras/{id}");
    s.api(reqwest::Method::PATCH, &path, token, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_changes_a_cameras_source_and_key_and_deletes_it() {
    require_tool("ffmpeg");
    let s = server();
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let sig = 0x5EC0_0D0D;
    let cam = RtspCamera::start(free_port(), sig, (W, H), None, ("admin", "the-Password"));
    let (st, added) = add_camera(
        &s,
        &a,
        json!({"name": "Shed", "rtsp_url": cam.url("main"), "rtsp_username": "admin", "rtsp_password": "wrong"}),
    )
    .await;
    assert_eq!(st, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_string();
    s.wait_status(&a, &id, "auth_failed", Duration::from_secs(15))
        .await;

    // Another household cannot touch it; the owner fixes the password.
    let fix = json!({"rtsp_url": cam.url("main"), "rtsp_username": "admin", "rtsp_password": "the-Password"});
    assert_eq!(patch(&s, &b, &id, fix.clone()).await.0, 404);
    let (st, v) = patch(&s, &a, &id, fix).await;
    assert_eq!(st, 200, "{v}");
    s.wait_status(&a, &id, "online", Duration::from_secs(15))
        .await;
    assert_eq!(
        patch(&s, &a, &id, json!({"rotate_key": true})).await.0,
        400,
        "no key to rotate"
    );
    assert_eq!(patch(&s, &a, &id, json!({})).await.0, 400);

    // It becomes a push camera: the pull stops, and the answer holds its key.
    let (st, v) = patch(&s, &a, &id, json!({"push": true, "name": "Shed (push)"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["name"], "Shed (push)");
    assert_eq!(v["source"]["kind"], "rtmp", "{v}");
    let first_key = v["ingest_url"].as_str().unwrap().to_string();
    s.wait_status(&a, &id, "offline", Duration::from_secs(10))
        .await;
    let sim = simulate(&first_key, "Shed", (W, H), &["--signature", "99"]);
    s.wait_status(&a, &id, "online", Duration::from_secs(20))
        .await;

    // A new key: the old one's publisher is cut off and cannot come back.
    let (st, v) = patch(&s, &a, &id, json!({"rotate_key": true})).await;
    assert_eq!(st, 200, "{v}");
    let second_key = v["ingest_url"].as_str().unwrap().to_string();
    assert_ne!(first_key, second_key);
    s.wait_status(&a, &id, "offline", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.listed(&a, &id).await["status"],
        "offline",
        "the old key got back in"
    );
    drop(sim);
    let _sim = simulate(&second_key, "Shed", (W, H), &["--signature", "99"]);
    s.wait_status(&a, &id, "online", Duration::from_secs(20))
        .await;

    // Deleted: the grant stops working, the camera is gone, the audit stays.
    let g = s.grant(&a, &id).await;
    let playlist = g["hls_ts_url"].as_str().unwrap().to_string();
    assert_eq!(get_as(&playlist, Some(&a)).await.0, 200);
    let r = client()
        .delete(format!("{}/api/v1/cameras/{id}", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not theirs");
    let r = client()
        .delete(format!("{}/api/v1/cameras/{id}", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_ne!(
        get_as(&playlist, Some(&a)).await.0,
        200,
        "a deleted camera's grant still opened"
    );
    assert!(s.cameras(&a).await.iter().all(|c| c["id"] != id.as_str()));
    assert_eq!(s.try_grant(&a, &id).await.0, 404);
    let audit = s.admin(&["audit", "views", "--camera", &id], None);
    assert!(
        audit.contains("grant"),
        "the audit keeps the deleted camera's views: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_simulated_ip_camera_is_added_and_pulled_like_a_real_one() {
    require_tool("ffmpeg");
    let s = Server::demo_with(W, H, &["--rtsp-camera", "127.0.0.1:0"], &[]);
    let line = |prefix: &str| {
        s.stdout
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", s.stdout))
    };
    let url = line("An IP camera to add (Add a camera, RTSP): ");
    let password = line("user admin  password ");
    let a = s.login(OWNER_A, PASSWORD).await;
    let (st, added) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/cameras",
            &a,
            json!({"name": "Garden", "rtsp_url": url, "rtsp_username": "admin", "rtsp_password": "wrong"}),
        )
        .await;
    assert_eq!(st, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_string();
    s.wait_status(&a, &id, "auth_failed", Duration::from_secs(20))
        .await;
    let (st, _) = s
        .api(
            reqwest::Method::PATCH,
            &format!("/api/v1/cameras/{id}"),
            &a,
            json!({"rtsp_url": url, "rtsp_username": "admin", "rtsp_password": password}),
        )
        .await;
    assert_eq!(st, 200);
    s.wait_status(&a, &id, "online", Duration::from_secs(20))
        .await;
    let g = s.grant(&a, &id).await;
    let hls = g["hls_ts_url"].as_str().unwrap().to_string();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&hls, 2.0, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, hearth_camera::signature_for_name("Garden"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_camera_that_sends_rtp_over_udp_is_pulled() {
    require_tool("ffmpeg");
    let s = server();
    let a = s.login(OWNER_A, PASSWORD).await;
    let sig = 0x0D0B_0D0B;
    let cam = RtspCamera::start(free_port(), sig, (W, H), None, ("admin", "udp-Secret-3"));
    let (st, added) = add_camera(
        &s,
        &a,
        json!({"name": "Attic", "rtsp_url": cam.url("main"), "rtsp_username": "admin",
               "rtsp_password": "udp-Secret-3", "rtsp_transport": "udp"}),
    )
    .await;
    assert_eq!(st, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_string();
    s.wait_status(&a, &id, "online", Duration::from_secs(20))
        .await;
    let g = s.grant(&a, &id).await;
    let url = g["hls_ts_url"].as_str().unwrap().to_string();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 2.0, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, sig);
}

/// A cloud node (`[pull] private_addresses = false`) pulls no camera at a
/// private address: a URL naming one is refused, and a name that resolves to
/// one never connects.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_for_public_cameras_only_refuses_private_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, "[pull]\nprivate_addresses = false\n").unwrap();
    let s = Server::serve_args(&["--config", config.to_str().unwrap()]);
    s.admin(&["user", "add", "--email", OWNER_A], Some(PASSWORD));
    let a = s.login(OWNER_A, PASSWORD).await;
    let cam = RtspCamera::start(free_port(), 7, (W, H), None, ("admin", "cloud-Secret-4"));
    for url in [
        cam.url("main"),
        "rtsp://169.254.169.254/latest".to_string(),
        "rtsp://[::1]:554/x".to_string(),
    ] {
        let (st, v) = add_camera(&s, &a, json!({"name": "Inside", "rtsp_url": url})).await;
        assert_eq!(st, 400, "{url}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("private address"),
            "{v}"
        );
    }
    let by_name = cam.url("main").replace("127.0.0.1", "localhost");
    let (st, added) = add_camera(
        &s,
        &a,
        json!({"name": "Named", "rtsp_url": by_name, "rtsp_username": "admin", "rtsp_password": "cloud-Secret-4"}),
    )
    .await;
    assert_eq!(st, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_string();
    s.wait_status(&a, &id, "unreachable", Duration::from_secs(20))
        .await;
    let c = s.listed(&a, &id).await;
    assert!(
        c["source"]["last_error"]
            .as_str()
            .unwrap()
            .contains("private address"),
        "{c}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.listed(&a, &id).await["online"], false);
}
