//! Headless Chromium logs in to the web app, sees the household's cameras, opens one
//! and plays it live: the video's currentTime advances, the pixels it shows carry that
//! camera's signature, and a screenshot is not blank.

mod common;
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/test installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let deadline = Instant::now() + Duration::from_secs(30);
        let session = loop {
            if let Ok(r) = client()
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
            {
                let v: Value = r.json().await.unwrap();
                let id = v["value"]["sessionId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no session: {v}"));
                break id.to_string();
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        Driver {
            child,
            base,
            session,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = client()
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    async fn wait_find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.wait_find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            json!({}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_logs_in_and_plays_a_camera() {
    require_tool("ffmpeg");
    let s = Server::demo(640, 360);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;

    let d = Driver::start().await;
    d.goto(&format!("{}/", s.base)).await;
    d.type_into("[data-testid=login-email]", OWNER_A).await;
    d.type_into("[data-testid=login-password]", PASSWORD).await;
    d.click("[data-testid=login-submit]").await;

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
    let pixels = d
        .js("const v = document.getElementById('player');
             const c = document.createElement('canvas'); c.width = 320; c.height = 180;
             const g = c.getContext('2d'); g.drawImage(v, 0, 0, 320, 180);
             const d = g.getImageData(0, 0, 320, 180).data; let s = '';
             for (let i = 0; i < d.length; i += 4) s += String.fromCharCode(d[i], d[i+1], d[i+2]);
             return btoa(s);")
        .await;
    let rgb = base64::engine::general_purpose::STANDARD
        .decode(pixels.as_str().unwrap())
        .unwrap();
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
