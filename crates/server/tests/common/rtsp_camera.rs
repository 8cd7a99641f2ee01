//! A real RTSP IP camera for tests: `scripts/rtsp-camera.py` (GStreamer's RTSP
//! server, Digest auth) serving the simulated camera's signed picture at
//! `/main` and `/sub`, with AAC audio.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RtspCamera {
    child: Child,
    pub port: u16,
    args: Vec<String>,
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RtspCamera {
    /// A camera on `port` drawing `signature`, at `size` (and a sub stream at
    /// `sub`), behind Digest auth with `user` and `password`.
    pub fn start(
        port: u16,
        signature: u32,
        (w, h): (u32, u32),
        sub: Option<(u32, u32)>,
        (user, password): (&str, &str),
    ) -> RtspCamera {
        let mut args = vec![
            "--port".to_string(),
            port.to_string(),
            "--hearth".into(),
            env!("CARGO_BIN_EXE_hearth").into(),
            "--signature".into(),
            signature.to_string(),
            "--size".into(),
            format!("{w}x{h}"),
            "--user".into(),
            user.into(),
            "--password".into(),
            password.into(),
        ];
        if let Some((sw, sh)) = sub {
            args.extend(["--sub-size".into(), format!("{sw}x{sh}")]);
        }
        let child = Self::spawn(&args);
        RtspCamera { child, port, args }
    }

    fn spawn(args: &[String]) -> Child {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/rtsp-camera.py");
        let started = Instant::now();
        // The port may still be held for a moment by the camera killed before.
        loop {
            let mut child = Command::new("/usr/bin/python3")
                .arg(script)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect(
                    "python3 scripts/rtsp-camera.py (scripts/install-test-deps installs GStreamer)",
                );
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.trim() == "ready" {
                return child;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the RTSP camera did not start: {line:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.port)
    }

    /// Kills the camera (a power cut: no TEARDOWN, no goodbye).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, as after a reboot.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.args);
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        self.kill();
    }
}
