//! End-to-end harness: runs the real `hearth` binary on loopback ports and drives it
//! with real clients (HTTP, ffmpeg/ffprobe, Chromium).
#![allow(dead_code)]

pub mod hlsjs;
pub mod link;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Grants are bound to the session that asked for them: media requests must carry
/// it. The harness remembers which session each grant it obtained belongs to (grant
/// token -> session token), and [`get`], [`media_get`], [`ffprobe_video`] and
/// [`decode_rgb`] present it for URLs under that grant, as a real client does.
/// Tests of refusals build their requests by hand.
static HOLDERS: std::sync::Mutex<Option<std::collections::HashMap<String, String>>> =
    std::sync::Mutex::new(None);

/// The grant token in a `/media/{grant}/...` URL.
pub fn grant_token(url: &str) -> Option<&str> {
    url.split("/media/").nth(1)?.split('/').next()
}

fn remember_holder(grant: &Value, session: &str) {
    if let Some(token) = grant["hls_url"].as_str().and_then(grant_token) {
        HOLDERS
            .lock()
            .unwrap()
            .get_or_insert_default()
            .insert(token.to_string(), session.to_string());
    }
}

/// The session that holds the grant in `url`, if the harness obtained that grant.
pub fn holder_of(url: &str) -> Option<String> {
    let token = grant_token(url)?;
    HOLDERS.lock().unwrap().as_ref()?.get(token).cloned()
}

/// A GET of a media URL carrying its grant holder's session, as players do.
pub fn media_get(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    let req = client.get(url);
    match holder_of(url) {
        Some(session) => req.bearer_auth(session),
        None => req,
    }
}

/// ffmpeg/ffprobe arguments that send the holder's session with every HLS request
/// (the HLS demuxer passes `-headers` on to playlists, keys and segments).
fn holder_args(url: &str) -> Vec<String> {
    match holder_of(url) {
        Some(session) => vec![
            "-headers".into(),
            format!("Authorization: Bearer {session}\r\n"),
        ],
        None => vec![],
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// `hearth demo`'s arguments for cameras of `size` with a `sub` stream
/// (`WxH`, or `none`), at 15 fps.
fn demo_args(size: &str, sub: &str) -> Vec<String> {
    [
        "demo",
        "--demo-password",
        PASSWORD,
        "--size",
        size,
        "--fps",
        "15",
        "--sub-size",
        sub,
        // The simulated IP camera only where a test asks for it.
        "--rtsp-camera",
        "none",
    ]
    .map(String::from)
    .to_vec()
}
pub const OWNER_A: &str = "owner-a@example.com";
pub const OWNER_B: &str = "owner-b@example.com";

pub fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

pub fn require_tool(name: &str) {
    let ok = Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ok.is_ok(),
        "{name} is required for end-to-end tests (scripts/test installs it with apt-get)"
    );
}

/// A running `hearth` process with its own data dir and loopback ports.
pub struct Server {
    child: Child,
    pub base: String,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    /// The admin API's own listener.
    pub admin_base: String,
    /// The RTSP egress.
    pub rtsp: Option<SocketAddr>,
    /// The `[tls]` listeners, when started with them.
    pub https: Option<SocketAddr>,
    pub rtmps: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub stdout: Vec<String>,
    /// The environment it was started with (admin commands get it too: e.g.
    /// `HEARTH_DATABASE_URL`).
    pub env: Vec<(String, String)>,
}

impl Server {
    /// `hearth demo` with small cameras so tests stay fast on two cores (each
    /// with a sub stream of half the size, if that is at least 128x72).
    pub fn demo(width: u32, height: u32) -> Server {
        Self::demo_with(width, height, &[], &[])
    }

    /// `hearth demo` with extra arguments (e.g. `--config`) and environment.
    pub fn demo_with(width: u32, height: u32, extra: &[&str], env: &[(&str, &str)]) -> Server {
        // Half the size, where that is not below a camera's smallest picture.
        let sub = if width >= 256 && height >= 144 {
            format!("{}x{}", width / 4 * 2, height / 4 * 2)
        } else {
            "none".to_string()
        };
        let common = demo_args(&format!("{width}x{height}"), &sub);
        let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        Self::spawn_env(&args, env)
    }

    /// `hearth serve` with an empty data dir.
    pub fn serve() -> Server {
        Self::spawn(&["serve"])
    }

    /// `hearth serve` with extra arguments (e.g. `--https`).
    pub fn serve_args(extra: &[&str]) -> Server {
        let mut args = vec!["serve"];
        args.extend_from_slice(extra);
        Self::spawn(&args)
    }

    /// As [`Server::restart_serve_in_place`], with extra arguments.
    pub fn restart_serve_in_place_with(mut self, extra: &[&str]) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let (http, rtmp) = (self.http.to_string(), self.rtmp.to_string());
        let mut args = vec!["serve"];
        args.extend_from_slice(extra);
        Self::spawn_at(dir, &args, &[], [&http, &rtmp])
    }

    fn spawn(args: &[&str]) -> Server {
        Self::spawn_env(args, &[])
    }

    /// `hearth serve` with extra arguments and environment.
    pub fn serve_with(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["serve"];
        args.extend_from_slice(extra);
        Self::spawn_env(&args, env)
    }

    /// `hearth serve` with extra environment (e.g. `HEARTH_FAULT_P`).
    pub fn serve_with_env(env: &[(&str, &str)]) -> Server {
        Self::spawn_env(&["serve"], env)
    }

    fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn_in(tempfile::tempdir().expect("tempdir"), args, env)
    }

    /// The server process's resident memory, in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    }

    /// Kills the server (SIGKILL: no shutdown work at all) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the server to stop (SIGTERM, a clean shutdown) and waits for it.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let exited = wait_for(Duration::from_secs(15), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "hearth did not exit on SIGTERM");
    }

    /// Stops this server and starts `hearth serve` on the same data dir.
    pub fn restart_serve(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        Self::spawn_in(dir, &["serve"], &[])
    }

    /// Stops this server and starts `hearth serve` on the same data dir and the
    /// same HTTP and RTMP addresses: an open page and a camera reconnect to it.
    pub fn restart_serve_in_place(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let (http, rtmp) = (self.http.to_string(), self.rtmp.to_string());
        Self::spawn_at(dir, &["serve"], &[], [&http, &rtmp])
    }

    fn spawn_in(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn_at(dir, args, env, ["127.0.0.1:0", "127.0.0.1:0"])
    }

    /// `hearth demo` run inside `link`'s network namespace, its HTTP and WebRTC
    /// ports on the link's server address (reached through the impaired link),
    /// its cameras publishing on the namespace's own loopback (not impaired).
    pub fn demo_behind(
        link: &link::Link,
        (width, height): (u32, u32),
        sub: (u32, u32),
        env: &[(&str, &str)],
    ) -> Server {
        let common = demo_args(
            &format!("{width}x{height}"),
            &format!("{}x{}", sub.0, sub.1),
        );
        let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
        args.push("--busy");
        let at = format!("{}:0", link.server_ip);
        Self::spawn_cmd(
            link.command(env!("CARGO_BIN_EXE_hearth")),
            tempfile::tempdir().expect("tempdir"),
            &args,
            env,
            [&at, "127.0.0.1:0", &at],
        )
    }

    fn spawn_at(
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        [http, rtmp]: [&str; 2],
    ) -> Server {
        Self::spawn_cmd(hearth(), dir, args, env, [http, rtmp, "127.0.0.1:0"])
    }

    /// Spawns `cmd` (the hearth binary) with `args` and these addresses.
    fn spawn_cmd(
        mut cmd: Command,
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        [http, rtmp, webrtc]: [&str; 3],
    ) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .expect("log file");
        let mut child = cmd
            .args(args)
            .args([
                "--http",
                http,
                "--rtmp",
                rtmp,
                "--rtsp",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--webrtc",
                webrtc,
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "info,hearth_server=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn hearth");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut http, mut rtmp, mut admin, mut rtsp) = (None, None, None, None);
        let (mut https, mut rtmps) = (None, None);
        while http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("hearth did not start; stdout: {lines:?}\nlog:\n{log}")
            });
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"HTTP") && words.get(2) == Some(&"RTMP") {
                http = words[1].parse().ok();
                rtmp = words[3].parse().ok();
                let after = |name: &str| {
                    words
                        .iter()
                        .position(|w| *w == name)
                        .and_then(|i| words.get(i + 1)?.parse::<SocketAddr>().ok())
                };
                admin = after("ADMIN");
                rtsp = after("RTSP");
                https = after("HTTPS");
                rtmps = after("RTMPS");
            }
            lines.push(line);
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        let http: SocketAddr = http.expect("http addr");
        Server {
            child,
            base: format!("http://{http}"),
            http,
            rtmp: rtmp.expect("rtmp addr"),
            admin_base: format!("http://{}", admin.expect("admin addr")),
            rtsp,
            https,
            rtmps,
            dir,
            stdout: lines,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs an admin subcommand against this server's data dir.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut cmd = hearth();
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--rtmp")
            .arg(self.rtmp.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn admin");
        {
            use std::io::Write;
            let mut sin = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                sin.write_all(s.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().expect("admin output");
        assert!(
            out.status.success(),
            "hearth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `hearth camera add`; returns the camera id and its ingest URL.
    pub fn add_camera(&self, owner: &str, name: &str) -> (String, String) {
        let out = self.admin(&["camera", "add", "--owner", owner, "--name", name], None);
        let field = |prefix: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
                .to_string()
        };
        (field("camera "), field("ingest "))
    }

    /// Shares `camera` with `email` as `token`: the invitation
    /// (`POST /api/v1/cameras/{camera}/shares`), then the recipient (a demo
    /// account, [`PASSWORD`]) accepts it. Returns the invitation's status and the
    /// owner's entry for the share.
    pub async fn share(&self, token: &str, camera: &str, email: &str) -> (u16, serde_json::Value) {
        self.share_with(token, camera, email, None).await
    }

    /// [`Server::share`], the recipient already signed in as `recipient` (logins
    /// are rate-limited per account: a test that shares many times signs in once).
    pub async fn share_with(
        &self,
        token: &str,
        camera: &str,
        email: &str,
        recipient: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let r = client()
            .post(format!("{}/api/v1/cameras/{camera}/shares", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({ "email": email }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status != 202 {
            return (status, r.json().await.unwrap_or(Value::Null));
        }
        let recipient = match recipient {
            Some(t) => t.to_string(),
            None => self.login(email, PASSWORD).await,
        };
        let accept = client()
            .post(format!("{}/api/v1/invitations/{camera}/accept", self.base))
            .bearer_auth(&recipient)
            .send()
            .await
            .unwrap();
        assert_eq!(accept.status(), 204, "accepting the invitation");
        let list: Vec<Value> = client()
            .get(format!("{}/api/v1/cameras/{camera}/shares", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entry = list
            .into_iter()
            .find(|e| e["email"] == email && e["status"] == "accepted")
            .expect("the accepted share is listed");
        (status, entry)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = client()
            .post(format!("{}/api/v1/login", self.base))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {email}");
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn cameras(&self, token: &str) -> Vec<Value> {
        let r = client()
            .get(format!("{}/api/v1/cameras", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The camera as its owner lists it.
    pub async fn listed(&self, token: &str, id: &str) -> Value {
        self.cameras(token)
            .await
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("camera {id} not listed"))
    }

    /// Waits until the camera's listed `status` is `want`; returns how long
    /// that took and the listing. A failure prints the server's log and
    /// `more()` (another process's log).
    pub async fn wait_status_or(
        &self,
        token: &str,
        id: &str,
        want: &str,
        within: Duration,
        more: impl Fn() -> String,
    ) -> (Duration, Value) {
        let started = Instant::now();
        loop {
            let c = self.listed(token, id).await;
            if c["status"] == want {
                return (started.elapsed(), c);
            }
            assert!(
                started.elapsed() < within,
                "camera {id} not {want} within {within:?}: {c}\n--- server ---\n{}\n{}",
                self.log(),
                more()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// [`Server::wait_status_or`] with nothing more to print.
    pub async fn wait_status(
        &self,
        token: &str,
        id: &str,
        want: &str,
        within: Duration,
    ) -> Duration {
        self.wait_status_or(token, id, want, within, String::new)
            .await
            .0
    }

    /// A camera's access log, as its owner reads it.
    pub async fn access_log(&self, token: &str, camera: &str) -> Vec<Value> {
        let r = client()
            .get(format!("{}/api/v1/cameras/{camera}/access-log", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn camera_id(&self, token: &str, name: &str) -> String {
        let cams = self.cameras(token).await;
        cams.iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no camera {name} in {cams:?}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A JSON API request as `token`: (status, body, `null` when not JSON).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = client()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST streams; returns (status, body).
    pub async fn try_grant(&self, token: &str, camera: &str) -> (u16, Value) {
        try_grant_at(&self.base, token, camera).await
    }

    pub async fn grant(&self, token: &str, camera: &str) -> Value {
        let (s, v) = self.try_grant(token, camera).await;
        assert_eq!(s, 200, "grant for {camera}: {v}");
        v
    }

    /// Waits until the camera is listed online for `token`.
    pub async fn wait_online(&self, token: &str, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let cams = self.cameras(token).await;
            if cams
                .iter()
                .any(|c| c["name"] == name && c["online"] == true)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "camera {name} never came online: {cams:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- hearth log (last 60 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A simulated camera (`hearth camera simulate`) publishing to `ingest`; it ends
/// with this value.
pub struct Sim(std::process::Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a simulated camera of `w`x`h` at 10 fps, with `extra` arguments
/// (`--signature N`, ...).
pub fn simulate(ingest: &str, name: &str, (w, h): (u32, u32), extra: &[&str]) -> Sim {
    Sim(hearth()
        .args(["camera", "simulate", "--rtmp", ingest, "--name", name])
        .args(["--size", &format!("{w}x{h}"), "--fps", "10"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("camera simulate"))
}

/// POST streams to the server at `base` (for tasks that do not borrow the
/// [`Server`]); returns (status, body).
pub async fn try_grant_at(base: &str, token: &str, camera: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/api/v1/cameras/{camera}/streams"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(Value::Null);
    remember_holder(&v, token);
    (status, v)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GET returning (status, body bytes), presenting the grant holder's session.
pub async fn get(url: &str) -> (u16, Vec<u8>) {
    get_as(url, holder_of(url).as_deref()).await
}

/// GET presenting exactly `session` (or no session), whoever holds the grant.
pub async fn get_as(url: &str, session: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = client().get(url);
    if let Some(t) = session {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.bytes().await.unwrap().to_vec())
}

/// (codec, width, height) of the first video stream, per ffprobe.
pub fn ffprobe_video(url: &str) -> (String, u32, u32, Vec<String>) {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(transport_args(url))
        .args(holder_args(url))
        .args([
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "json",
            url,
        ])
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    let codecs = streams
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap_or("").to_string())
        .collect();
    (
        video["codec_name"].as_str().unwrap().to_string(),
        video["width"].as_u64().unwrap() as u32,
        video["height"].as_u64().unwrap() as u32,
        codecs,
    )
}

/// Decodes `seconds` of video from `input` into RGB24 frames of `w`x`h`.
/// ffmpeg's input options for `url`: RTSP over TCP (what Hearth serves), or an
/// HTTP read timeout.
pub fn transport_args(url: &str) -> &'static [&'static str] {
    if url.starts_with("rtsp://") {
        &["-rtsp_transport", "tcp", "-timeout", "15000000"]
    } else {
        &["-rw_timeout", "15000000"]
    }
}

pub fn decode_rgb(input: &str, seconds: f64, w: u32, h: u32) -> Vec<Vec<u8>> {
    let out = decode_command(input, seconds, w, h, None)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg decode {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = (w * h * 3) as usize;
    out.stdout.chunks_exact(size).map(<[u8]>::to_vec).collect()
}

/// What a player gets from `input` in `seconds`, whether or not it then gave
/// up (a refused or undecryptable object ends ffmpeg's read).
pub fn try_decode_rgb(input: &str, seconds: f64, w: u32, h: u32) -> Vec<Vec<u8>> {
    // At most 30 frames a second: a timeline jump must not make ffmpeg fill
    // the gap with copies for minutes.
    // and a player stuck on a request is given up on 3 s after its time.
    let frames = (seconds * 30.0).ceil() as u32;
    let mut child = decode_command(input, seconds, w, h, Some(frames))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || read_all(&mut stdout));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 3.0);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = reader.join().expect("reader");
    let size = (w * h * 3) as usize;
    out.chunks_exact(size).map(<[u8]>::to_vec).collect()
}

fn decode_command(input: &str, seconds: f64, w: u32, h: u32, max_frames: Option<u32>) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error"])
        .args(transport_args(input))
        .args(holder_args(input))
        .args(["-i", input, "-t", &seconds.to_string(), "-an"])
        .args(["-vf", &format!("scale={w}:{h}")]);
    if let Some(n) = max_frames {
        c.args(["-frames:v", &n.to_string()]);
    }
    c.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdin(Stdio::null());
    c
}

/// Decodes a JPEG (or any single image) into RGB24 at its own size.
pub fn decode_image(bytes: &[u8], w: u32, h: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let ext = if bytes.starts_with(b"\x89PNG") {
        "png"
    } else {
        "jpg"
    };
    let p = dir.path().join(format!("img.{ext}"));
    std::fs::write(&p, bytes).unwrap();
    let frames = decode_rgb(p.to_str().unwrap(), 1.0, w, h);
    frames.into_iter().next().expect("one decoded image")
}

/// Asserts every frame carries `expected` and none carries another signature.
pub fn assert_signature(frames: &[Vec<u8>], w: u32, h: u32, expected: u32) {
    assert!(!frames.is_empty(), "no frames decoded");
    let mut read = 0;
    for (i, f) in frames.iter().enumerate() {
        if let Some(s) = hearth_camera::read_signature(f, w, h) {
            assert_eq!(s, expected, "frame {i} carries a foreign signature {s:#x}");
            read += 1;
        }
    }
    // Allow a few unreadable frames (e.g. a damaged first frame), never a foreign one.
    assert!(
        read * 10 >= frames.len() * 9,
        "only {read}/{} frames had a readable signature",
        frames.len()
    );
}

pub fn signature_of(camera_id: &str) -> u32 {
    hearth_camera::signature_for(&camera_id.parse().expect("camera id"))
}

pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deterministic junk bytes (xorshift) for hostile-input tests.
pub fn pseudo_random(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A client that reports redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An HTTP client whose connections come from `addr` (any 127.0.0.0/8 address),
/// so tests can act as several clients to per-address limits.
pub fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A TCP connection to `to` from the address `from`.
pub async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0))?;
    sock.connect(to).await
}

/// The status of a login with `c`.
pub async fn login_status_with(
    c: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> u16 {
    c.post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
