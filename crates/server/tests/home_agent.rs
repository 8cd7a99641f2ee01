//! A home agent for a camera the server cannot reach: the owner pairs it in the
//! web app (headless Chromium shows the one-time code), `hearth agent pair`
//! trades the code for the agent's credential over HTTPS, `hearth agent run`
//! (a second Hearth process) pulls the LAN camera (GStreamer's RTSP server with
//! Digest auth) and pushes it to the server over RTMPS. The agent reports the
//! camera's state upstream (unreachable, then online), survives a server
//! restart and its own, and once removed it can publish nothing: its credential
//! and its stream keys stop working.

mod common;
#[path = "common/rtsp_camera.rs"]
mod rtsp_camera;
#[path = "common/webdriver.rs"]
mod webdriver;
use common::*;
use rtsp_camera::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use webdriver::Driver;

const W: u32 = 320;
const H: u32 = 180;
const CAMERA_PASSWORD: &str = "lan-Camera-Secret-7";

/// A self-made certificate for `localhost`, as PEM files in `dir`.
fn certificate(dir: &Path) -> (String, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let pem = |label: &str, der: &[u8]| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, pem("CERTIFICATE", cert.der())).unwrap();
    std::fs::write(&k, pem("PRIVATE KEY", &signing_key.serialize_der())).unwrap();
    (
        c.to_str().unwrap().to_owned(),
        k.to_str().unwrap().to_owned(),
    )
}

/// `hearth agent run` with its own log.
struct Agent {
    child: Child,
    log: std::path::PathBuf,
}

impl Agent {
    fn start(file: &Path, log: &Path) -> Agent {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = hearth()
            .args(["agent", "run", "--file"])
            .arg(file)
            .env("RUST_LOG", "info,hearth_server=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("hearth agent run");
        Agent {
            child,
            log: log.to_owned(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the camera's status is `want`; returns how long that took.
async fn wait_status(
    s: &Server,
    agent: &Agent,
    token: &str,
    id: &str,
    want: &str,
    within: Duration,
) -> (Duration, Value) {
    s.wait_status_or(token, id, want, within, || {
        format!("--- agent ---\n{}", agent.log())
    })
    .await
}

/// Decodes the camera from the server and checks it is the LAN camera's picture.
async fn assert_plays(s: &Server, token: &str, id: &str, sig: u32) {
    let g = s.grant(token, id).await;
    let url = g["hls_ts_url"].as_str().unwrap().to_string();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url, 2.0, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, sig);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_home_agent_paired_in_the_web_app_pushes_a_lan_camera_over_tls() {
    require_tool("chromium");
    require_tool("ffmpeg");
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(tmp.path());
    let (https_port, rtmps_port) = (free_port(), free_port());
    let https = format!("127.0.0.1:{https_port}");
    let rtmps = format!("127.0.0.1:{rtmps_port}");
    let public = format!("https://localhost:{https_port}");
    let tls_args = [
        "--https",
        &https,
        "--rtmps",
        &rtmps,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--public-url",
        &public,
    ];
    let s = Server::serve_args(&tls_args);
    assert_eq!(
        s.rtmps.map(|a| a.port()),
        Some(rtmps_port),
        "{:?}",
        s.stdout
    );
    s.admin(&["user", "add", "--email", OWNER_A], Some(PASSWORD));
    s.admin(&["user", "add", "--email", OWNER_B], Some(PASSWORD));
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;

    // The owner pairs an agent in the web app: a one-time code and its command.
    let d = Driver::start().await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;
    d.wait_find("[data-testid=add-camera-link]").await;
    d.goto(&format!("{}/#/account", s.base)).await;
    // The button is in the page from the start; it works once the panel has
    // mounted, which it shows by listing the (no) agents.
    d.wait_js(
        "const e = document.querySelector('[data-testid=agents-empty]'); return e && !e.hidden",
        "the home agents panel",
    )
    .await;
    d.click("[data-testid=agent-pair]").await;
    let shown = d
        .wait_js(
            "const c = document.querySelector('[data-testid=agent-claim]'); return c && !c.hidden ? [document.querySelector('[data-testid=agent-code]').textContent, document.querySelector('[data-testid=agent-command]').textContent] : null",
            "the pairing code",
        )
        .await;
    let code = shown[0].as_str().unwrap().to_string();
    let command = shown[1].as_str().unwrap();
    assert_eq!(code.len(), 14, "{code}");
    assert!(
        command.contains(&format!("--server {public}")) && command.contains(&code),
        "{command}"
    );

    // A wrong code is refused; the right one pairs once (over HTTPS, the
    // server's certificate checked against the CA given).
    let agent_file = tmp.path().join("agent.json");
    let pair = |code: &str| {
        hearth()
            .args([
                "agent", "pair", "--server", &public, "--code", code, "--ca", &cert,
            ])
            .arg("--name")
            .arg("Living room PC")
            .arg("--file")
            .arg(&agent_file)
            .output()
            .unwrap()
    };
    let wrong = pair("AAAA-AAAA-AAAA");
    assert!(!wrong.status.success(), "a wrong code paired");
    let out = pair(&code.to_lowercase());
    assert!(
        out.status.success(),
        "pairing failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(!pair(&code).status.success(), "a claim code worked twice");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&agent_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the agent's credential file is private");
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(&agent_file).unwrap()).unwrap();
    let credential = saved["credential"].as_str().unwrap().to_string();
    let agent_id = saved["agent"].as_str().unwrap().to_string();

    // The web app lists it; the add page offers it.
    d.wait_js(
        &format!("const e = document.querySelector(\"[data-agent-id='{agent_id}']\"); return e ? e.textContent : null"),
        "the paired agent listed",
    )
    .await;

    let mut agent = Agent::start(&agent_file, &tmp.path().join("agent.log"));

    // Another household cannot put a camera behind this agent.
    let (st, _) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/cameras",
            &b,
            json!({"name": "Not yours", "rtsp_url": "rtsp://10.0.0.9/x", "agent": agent_id}),
        )
        .await;
    assert_eq!(st, 400);

    // The owner adds the LAN camera through the agent, in the web app, before
    // the camera is on: the agent reports it unreachable.
    let sig = 0x0A6E_17C0;
    let cam_port = free_port();
    let cam_url = format!("rtsp://127.0.0.1:{cam_port}/main");
    d.goto(&format!("{}/#/", s.base)).await;
    d.wait_find("[data-testid=add-camera-link]").await;
    d.goto(&format!("{}/#/add", s.base)).await;
    d.wait_js(
        "const r = document.querySelector('[data-testid=add-kind-agent]'); const f = document.getElementById('add-form'); return r && !r.disabled && f && !f.closest('[hidden]') && document.getElementById('add-agent').options.length > 0 ? true : null",
        "the add form offering the agent",
    )
    .await;
    d.type_into("[data-testid=add-name]", "Garden").await;
    d.click("[data-testid=add-kind-agent]").await;
    d.type_into("[data-testid=add-rtsp-url]", &cam_url).await;
    d.type_into("[data-testid=add-rtsp-username]", "admin")
        .await;
    d.type_into("[data-testid=add-rtsp-password]", CAMERA_PASSWORD)
        .await;
    d.click("[data-testid=add-submit]").await;
    let id = loop {
        let cams = s.cameras(&a).await;
        if let Some(c) = cams.iter().find(|c| c["name"] == "Garden") {
            break c["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (took, c) = wait_status(&s, &agent, &a, &id, "unreachable", Duration::from_secs(20)).await;
    println!("the agent reported unreachable {took:?} after the camera was added");
    assert_eq!(c["source"]["kind"], "agent", "{c}");
    assert_eq!(c["source"]["agent"], agent_id.as_str(), "{c}");
    assert!(
        c["source"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains(&cam_port.to_string()),
        "{c}"
    );

    // The camera comes on: live on the server, its own picture.
    let cam = RtspCamera::start(cam_port, sig, (W, H), None, ("admin", CAMERA_PASSWORD));
    let (took, _) = wait_status(&s, &agent, &a, &id, "online", Duration::from_secs(30)).await;
    println!("online {took:?} after the LAN camera started");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s
        .cameras(&a)
        .await
        .iter()
        .any(|c| c["id"] == id.as_str() && c["online"] == true)
    {
        assert!(
            Instant::now() < deadline,
            "no stream on the server:\n{}\n{}",
            s.log(),
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_plays(&s, &a, &id, sig).await;
    let log = s.log();
    assert!(
        log.contains("camera live") && log.contains("\"rtmps\""),
        "the agent did not publish over RTMPS:\n{log}"
    );
    d.wait_js(
        "const s = document.querySelector('[data-testid=add-status]'); return s && s.dataset.status === 'online' ? true : null",
        "the add page following the agent camera to live",
    )
    .await;

    // Plain RTMP on the RTMPS port is refused.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut plain = tokio::net::TcpStream::connect(&rtmps).await.unwrap();
        let mut c0c1 = vec![3u8];
        c0c1.extend(std::iter::repeat_n(0u8, 1536));
        plain.write_all(&c0c1).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), plain.read(&mut buf))
            .await
            .expect("the RTMPS port answers plain RTMP")
            .unwrap_or(0);
        assert!(
            n == 0 || buf[0] != 3,
            "plain RTMP was spoken on the RTMPS port"
        );
    }

    // The server restarts: the agent reconnects by itself.
    let s = s.restart_serve_in_place_with(&tls_args);
    let a = s.login(OWNER_A, PASSWORD).await;
    let (took, _) = wait_status(&s, &agent, &a, &id, "online", Duration::from_secs(40)).await;
    println!("online again {took:?} after the server restarted");
    assert_plays(&s, &a, &id, sig).await;

    // The agent restarts: back again.
    agent.kill();
    agent = Agent::start(&agent_file, &tmp.path().join("agent.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = s.listed(&a, &id).await;
        if st["online"] == true && st["status"] == "online" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not back after the agent restarted: {st}\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_plays(&s, &a, &id, sig).await;

    // No secret is in any answer, log or file of the server.
    let listed_json = serde_json::to_string(&s.cameras(&a).await).unwrap();
    let (_, agents) = s
        .api(reqwest::Method::GET, "/api/v1/agents", &a, Value::Null)
        .await;
    for secret in [CAMERA_PASSWORD, credential.as_str(), code.as_str()] {
        assert!(!listed_json.contains(secret) && !agents.to_string().contains(secret));
        assert!(!s.log().contains(secret), "a secret in the server log");
        assert!(!agent.log().contains(secret), "a secret in the agent log");
        for f in std::fs::read_dir(s.data_dir()).unwrap().flatten() {
            let bytes = std::fs::read(f.path()).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret in {}",
                f.path().display()
            );
        }
    }

    // Removed: its credential stops working, the camera stops, and the agent
    // says so.
    let (st, _) = s
        .api(
            reqwest::Method::DELETE,
            &format!("/api/v1/agents/{agent_id}"),
            &a,
            Value::Null,
        )
        .await;
    assert_eq!(st, 204);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = s.listed(&a, &id).await;
        if c["online"] == false && c["source"]["kind"] == "rtmp" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed agent's camera is still live: {c}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !agent.log().contains("pair it again") {
        assert!(
            Instant::now() < deadline,
            "the agent did not notice:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.listed(&a, &id).await["online"], false, "it came back");
    let r = client()
        .post(format!("{}/api/v1/agent/sync", s.base))
        .bearer_auth(&credential)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    drop(cam);
    drop(d);
}
