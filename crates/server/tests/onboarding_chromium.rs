//! An owner adds cameras in the web app (headless Chromium): an RTSP camera
//! (GStreamer's RTSP server with Digest auth) by address, user name and
//! password, which the page follows until it is live and then plays, showing
//! that camera's picture; a wrong password, which the page names; and a push
//! camera, whose RTMP address with its key (and QR code) the page shows once,
//! and which is live once a camera publishes there.

mod common;
#[path = "common/rtsp_camera.rs"]
mod rtsp_camera;
#[path = "common/webdriver.rs"]
mod webdriver;
use common::*;
use rtsp_camera::*;
use std::time::{Duration, Instant};
use webdriver::Driver;

const W: u32 = 320;
const H: u32 = 180;

/// Fills the add form and submits it.
async fn add(d: &Driver, base: &str, name: &str, rtsp: Option<(&str, &str, &str)>) {
    // Through the grid: a hash change shows a fresh form.
    d.goto(&format!("{base}/#/")).await;
    d.wait_find("[data-testid=add-camera-link]").await;
    d.goto(&format!("{base}/#/add")).await;
    d.wait_js(
        "const f = document.getElementById('add-form'); return f && !f.hidden && !f.closest('[hidden]') && f.elements.name.value === ''",
        "an empty add form",
    )
    .await;
    d.type_into("[data-testid=add-name]", name).await;
    match rtsp {
        Some((url, user, password)) => {
            d.type_into("[data-testid=add-rtsp-url]", url).await;
            d.type_into("[data-testid=add-rtsp-username]", user).await;
            d.type_into("[data-testid=add-rtsp-password]", password)
                .await;
        }
        None => d.click("[data-testid=add-kind-rtmp]").await,
    }
    d.click("[data-testid=add-submit]").await;
}

/// Waits until the add page's status names `status`; returns its text.
async fn wait_add_status(d: &Driver, status: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = d
            .js("const e = document.querySelector('[data-testid=add-status]'); return e && !e.closest('[hidden]') ? [e.dataset.status || '', e.textContent] : null")
            .await;
        if v[0] == status {
            return v[1].as_str().unwrap_or_default().to_string();
        }
        let err = d
            .js("const e = document.querySelector('[data-testid=add-error]'); return e.hidden ? '' : e.textContent")
            .await;
        assert!(
            Instant::now() < deadline,
            "the add page never showed {status}: {v} {err}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_adds_cameras_in_the_web_app_and_watches_them() {
    require_tool("chromium");
    let s = Server::serve();
    s.admin(&["user", "add", "--email", OWNER_A], Some(PASSWORD));
    let sig = 0x0AD0_CA11;
    let cam = RtspCamera::start(free_port(), sig, (W, H), None, ("admin", "cam-Password-9"));

    let d = Driver::start().await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;
    d.wait_find("[data-testid=add-camera-link]").await;

    // A wrong password: the page says so.
    add(
        &d,
        &s.base,
        "Garage",
        Some((&cam.url("main"), "admin", "not-it")),
    )
    .await;
    let said = wait_add_status(&d, "auth_failed").await;
    assert!(said.contains("refused"), "{said}");

    // "Test connection": the camera's first picture, through the door, before
    // it is kept; discarded, it is gone.
    d.goto(&format!("{}/#/", s.base)).await;
    d.wait_find("[data-testid=add-camera-link]").await;
    d.goto(&format!("{}/#/add", s.base)).await;
    d.wait_js(
        "const f = document.getElementById('add-form'); return f && !f.hidden && !f.closest('[hidden]') && f.elements.name.value === ''",
        "an empty add form",
    )
    .await;
    d.type_into("[data-testid=add-name]", "Shed").await;
    d.type_into("[data-testid=add-rtsp-url]", &cam.url("main"))
        .await;
    d.type_into("[data-testid=add-rtsp-username]", "admin")
        .await;
    d.type_into("[data-testid=add-rtsp-password]", "cam-Password-9")
        .await;
    d.click("[data-testid=add-test]").await;
    d.wait_js(
        "const i = document.querySelector('[data-testid=add-trial-picture]'); return i && !i.hidden && i.complete && i.naturalWidth > 0 ? true : null",
        "the trial camera's first picture",
    )
    .await;
    let rgb = d.element_rgb("add-trial-picture", W, H).await;
    assert_eq!(
        hearth_camera::read_signature(&rgb, W, H),
        Some(sig),
        "the tested camera's own picture"
    );
    let a = s.login(OWNER_A, PASSWORD).await;
    let listed = s.cameras(&a).await;
    let shed = listed
        .iter()
        .find(|c| c["name"] == "Shed")
        .expect("the camera on trial is listed to its owner");
    assert_eq!(shed["draft"], true, "{shed}");
    let shed = shed["id"].as_str().unwrap().to_string();
    // Not to be shared or restreamed before it is saved.
    let (st, _) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/viewer-keys",
            &a,
            serde_json::json!({"name": "NVR", "cameras": [shed]}),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = s
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/cameras/{shed}/shares"),
            &a,
            serde_json::json!({"email": "friend@example.com"}),
        )
        .await;
    assert_eq!(st, 409);
    d.click("[data-testid=add-trial-discard]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.cameras(&a).await.iter().any(|c| c["id"] == shed.as_str()) {
        assert!(Instant::now() < deadline, "a discarded trial camera stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Tested again (the form forgot the password: typed again) and saved: it
    // stays, and is no draft.
    d.type_into("[data-testid=add-rtsp-password]", "cam-Password-9")
        .await;
    d.click("[data-testid=add-test]").await;
    d.wait_js(
        "const b = document.querySelector('[data-testid=add-trial-save]'); return b && !b.disabled && !b.closest('[hidden]') ? true : null",
        "the trial camera ready to save",
    )
    .await;
    d.click("[data-testid=add-trial-save]").await;
    d.wait_js(
        "const s = document.querySelector('[data-testid=add-status]'); return s && !s.closest('[hidden]') && s.dataset.status === 'online' ? true : null",
        "the saved camera",
    )
    .await;
    let saved = s
        .cameras(&a)
        .await
        .into_iter()
        .find(|c| c["name"] == "Shed")
        .expect("the saved camera");
    assert!(saved.get("draft").is_none(), "{saved}");

    // The right one: live, and the page offers to watch it.
    add(
        &d,
        &s.base,
        "Porch",
        Some((&cam.url("main"), "admin", "cam-Password-9")),
    )
    .await;
    wait_add_status(&d, "online").await;
    let password_left = d
        .js("return document.querySelector('[data-testid=add-rtsp-password]').value")
        .await;
    assert_eq!(password_left, "", "the form forgets the password");
    d.click("[data-testid=add-watch]").await;
    d.wait_js(
        "return window.hearthPlayer && window.hearthPlayer.state === 'playing' ? true : null",
        "the added camera playing",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rgb = d.video_rgb(W, H).await;
    assert_eq!(
        hearth_camera::read_signature(&rgb, W, H),
        Some(sig),
        "the camera's own picture"
    );

    // The grid names the camera with the wrong password.
    d.goto(&format!("{}/#/", s.base)).await;
    d.wait_js(
        "const c = [...document.querySelectorAll('[data-testid=camera-card]')].find(e => e.dataset.cameraName === 'Garage'); return c && c.dataset.state === 'auth_failed' ? true : null",
        "the grid showing Garage's wrong password",
    )
    .await;

    // A push camera: the address with its key, once, and a QR code.
    add(&d, &s.base, "Phone", None).await;
    let ingest = d
        .wait_js(
            "const e = document.querySelector('[data-testid=add-ingest-url]'); return e && e.textContent.startsWith('rtmp://') ? e.textContent : null",
            "the push camera's address",
        )
        .await;
    let ingest = ingest.as_str().unwrap().to_string();
    assert!(
        ingest.contains(&format!(":{}/live/", s.rtmp.port())),
        "{ingest}"
    );
    let qr = d
        .js("const i = document.querySelector('[data-testid=add-ingest-qr]'); return i.complete ? i.naturalWidth : 0")
        .await;
    assert!(qr.as_u64().unwrap_or(0) >= 100, "no QR code: {qr}");
    let _sim = simulate(&ingest, "Phone", (W, H), &["--signature", "7"]);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Phone").await;

    // A viewer key for the porch camera, made in the account page: its RTSP
    // address plays the camera's picture in ffmpeg; revoked there, it stops.
    let porch = s.camera_id(&a, "Porch").await;
    d.goto(&format!("{}/#/account", s.base)).await;
    d.wait_js(
        &format!("return document.querySelector(\"[data-testid=key-camera][value='{porch}']\") ? true : null"),
        "the key form listing the cameras",
    )
    .await;
    d.type_into("[data-testid=key-name]", "NVR").await;
    d.click(&format!("[data-testid=key-camera][value='{porch}']"))
        .await;
    d.click("[data-testid=key-submit]").await;
    let rtsp_url = d
        .wait_js(
            "const e = document.querySelector('[data-testid=key-created]'); return e && !e.hidden ? document.querySelector('[data-testid=key-rtsp-url]').textContent : null",
            "the new key's addresses",
        )
        .await;
    let rtsp_url = rtsp_url.as_str().unwrap().to_string();
    assert!(rtsp_url.starts_with("rtsp://"), "{rtsp_url}");
    let url = rtsp_url.clone();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 1.0, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, sig);
    d.js("window.confirm = () => true; return true").await;
    d.click("[data-testid=key-revoke]").await;
    d.wait_js(
        "return document.querySelectorAll('[data-testid=key-revoke]').length === 0 ? true : null",
        "the key revoked",
    )
    .await;
    let url = rtsp_url.clone();
    let after = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!after.status.success(), "a revoked key still plays");

    // Owners rename and remove a camera on its page.
    d.goto(&format!("{}/#/camera/{porch}/manage", s.base)).await;
    d.wait_js(
        "const i = document.querySelector('[data-testid=rename-name]'); return i && !i.closest('[hidden]') && i.value === 'Porch' ? true : null",
        "the camera's settings",
    )
    .await;
    d.js("document.querySelector('[data-testid=rename-name]').value = ''; return true")
        .await;
    d.type_into("[data-testid=rename-name]", "Front porch")
        .await;
    d.click("[data-testid=rename-submit]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .cameras(&a)
        .await
        .iter()
        .any(|c| c["name"] == "Front porch")
    {
        assert!(Instant::now() < deadline, "not renamed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.js("window.confirm = () => true; return true").await;
    d.click("[data-testid=camera-remove]").await;
    d.wait_js(
        "return location.hash === '#/' ? true : null",
        "the grid after removing",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while s
        .cameras(&a)
        .await
        .iter()
        .any(|c| c["id"] == porch.as_str())
    {
        assert!(Instant::now() < deadline, "not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.try_grant(&a, &porch).await.0, 404);
}
