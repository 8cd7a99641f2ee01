//! A WebDriver client for headless Chromium (`chromedriver`), shared by the browser
//! tests. Each test file includes it with `#[path = "common/webdriver.rs"] mod webdriver;`.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One chromedriver process with one Chromium session; both end when dropped.
pub struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Killing chromedriver alone would leave Chromium running, orphaned: end the
        // session (chromedriver quits the browser), then kill what is left of
        // chromedriver's process group, which Chromium inherited.
        self.end_session();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Driver {
    /// `DELETE /session/{id}`, blocking (it runs in `Drop`, maybe while a test
    /// unwinds): chromedriver closes Chromium and answers once it has.
    fn end_session(&self) {
        let Some(addr) = self.base.strip_prefix("http://") else {
            return;
        };
        let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
            return;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
        let req = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        );
        if conn.write_all(req.as_bytes()).is_err() {
            return;
        }
        // Read the whole answer (chromedriver may keep the connection open).
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return;
                }
            }
        }
    }

    pub async fn start() -> Driver {
        Self::start_with(&[]).await
    }

    /// A browser with `extra` command-line switches.
    pub async fn start_with(extra: &[String]) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // Its own process group, with Chromium in it: see `Drop`.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/test installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--autoplay-policy=no-user-gesture-required",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend_from_slice(extra);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
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

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
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

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    pub async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    pub async fn wait_find(&self, css: &str) -> String {
        self.wait_find_within(css, Duration::from_secs(30)).await
    }

    /// [`Driver::wait_find`] with a deadline of one's own (a page loaded over
    /// an impaired link).
    pub async fn wait_find_within(&self, css: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait_find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            json!({}),
        )
        .await;
    }

    /// Runs `script` until it returns something other than `null` or `false`, and
    /// returns that; fails with `what` (and the last result) after 30 s.
    pub async fn wait_js(&self, script: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script).await;
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} (last: {v})");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The current tab's handle.
    pub async fn tab(&self) -> String {
        let v = self.call(reqwest::Method::GET, "/window", json!({})).await;
        v.as_str().expect("a window handle").to_string()
    }

    /// Opens a new tab (its own `sessionStorage`: a second signed-in user) and
    /// switches to it; returns its handle.
    pub async fn new_tab(&self) -> String {
        let v = self
            .call(reqwest::Method::POST, "/window/new", json!({"type": "tab"}))
            .await;
        let handle = v["handle"].as_str().expect("a new tab").to_string();
        self.switch_to(&handle).await;
        handle
    }

    pub async fn switch_to(&self, handle: &str) {
        self.call(reqwest::Method::POST, "/window", json!({"handle": handle}))
            .await;
    }

    /// [`Driver::click`], failing if the browser did not click (the element is
    /// covered, say). The element is scrolled to the middle of the window first:
    /// chromedriver scrolls it to the top edge, under a sticky header.
    pub async fn click_checked(&self, css: &str) {
        let e = self.wait_find(css).await;
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": "arguments[0].scrollIntoView({block: 'center'})", "args": [{ELEMENT: e}]}),
        )
        .await;
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/element/{e}/click"),
                json!({}),
            )
            .await;
        assert!(v.get("error").is_none(), "clicking {css}: {v}");
    }

    /// Opens the web app at `base` and signs in.
    pub async fn log_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/")).await;
        self.type_into("[data-testid=login-email]", email).await;
        self.type_into("[data-testid=login-password]", password)
            .await;
        self.click("[data-testid=login-submit]").await;
    }

    /// Glass-to-glass samples (ms) off `n` presented frames of the `<video>` `id`:
    /// the page draws each at `w`x`h` and notes its presentation time; the capture
    /// time the simulated camera drew into it is read off the pixels here.
    pub async fn glass_to_glass(&self, id: &str, w: u32, h: u32, n: usize) -> Vec<i64> {
        use base64::Engine as _;
        let script = format!(
            "const done = arguments[arguments.length - 1];
             const v = document.getElementById('{id}');
             const c = document.createElement('canvas'); c.width = {w}; c.height = {h};
             const g = c.getContext('2d', {{ willReadFrequently: true }});
             const out = [];
             const grab = (now, meta) => {{
               g.drawImage(v, 0, 0, {w}, {h});
               const at = performance.timeOrigin + meta.presentationTime;
               const d = g.getImageData(0, 0, {w}, {h}).data; let s = '';
               for (let i = 0; i < d.length; i += 4) s += String.fromCharCode(d[i], d[i+1], d[i+2]);
               out.push([at, btoa(s)]);
               if (out.length < {n}) v.requestVideoFrameCallback(grab); else done(out);
             }};
             v.requestVideoFrameCallback(grab);"
        );
        let v = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                json!({"script": script, "args": []}),
            )
            .await;
        let mut lat = Vec::new();
        for pair in v.as_array().unwrap_or_else(|| panic!("samples: {v}")) {
            let at = pair[0].as_f64().unwrap() as i64;
            let rgb = base64::engine::general_purpose::STANDARD
                .decode(pair[1].as_str().unwrap())
                .unwrap();
            if let Some(t) = hearth_camera::read_capture_time(&rgb, w, h, at) {
                lat.push(at - t);
            }
        }
        lat
    }

    /// The picture the `<video id=player>` element shows, drawn at `w`x`h`, as RGB24.
    pub async fn video_rgb(&self, w: u32, h: u32) -> Vec<u8> {
        self.element_rgb("player", w, h).await
    }

    /// The picture a `<video>` or `<img>` element (by id) shows, drawn at
    /// `w`x`h`, as RGB24.
    pub async fn element_rgb(&self, id: &str, w: u32, h: u32) -> Vec<u8> {
        use base64::Engine as _;
        let pixels = self
            .js(&format!(
                "const v = document.getElementById('{id}');
                 const c = document.createElement('canvas'); c.width = {w}; c.height = {h};
                 const g = c.getContext('2d'); g.drawImage(v, 0, 0, {w}, {h});
                 const d = g.getImageData(0, 0, {w}, {h}).data; let s = '';
                 for (let i = 0; i < d.length; i += 4) s += String.fromCharCode(d[i], d[i+1], d[i+2]);
                 return btoa(s);"
            ))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(pixels.as_str().expect("pixels"))
            .unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The `p` quantile (0..=1) of `v` (sorted in place).
pub fn percentile(v: &mut [i64], p: f64) -> i64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}
