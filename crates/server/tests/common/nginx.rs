//! Debian's nginx as a caching reverse proxy in front of Hearth, configured from
//! `deploy/nginx-cdn.conf` (the file `scripts/cluster` uses), in a temp dir on a
//! loopback port of the test's choosing.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TEMPLATE: &str = include_str!("../../../../deploy/nginx-cdn.conf");
/// The cache key `deploy/nginx-cdn.conf` is meant to run with.
pub const RIGHT_KEY: &str = "$object";

pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// A free loopback TCP port for nginx to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx on 127.0.0.1:`port` in front of `upstreams` (`host:port` each),
    /// caching segments under `cache_key`.
    pub fn start(port: u16, upstreams: &[String], cache_key: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        for sub in ["tmp", "cache"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // Should it run as root with workers, they are `nobody`: let them write.
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [
                dir.path().to_path_buf(),
                dir.path().join("tmp"),
                dir.path().join("cache"),
            ] {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
        }
        let upstreams: String = upstreams
            .iter()
            .map(|u| format!("        server {u};\n"))
            .collect();
        let conf = TEMPLATE
            .replace("@DIR@", &path)
            .replace("@UPSTREAMS@", upstreams.trim_end())
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@CACHE_KEY@", cache_key);
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary())
            .arg("-p")
            .arg(&path)
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            // One process: killing it leaves no worker behind.
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("nginx: {e}; scripts/install-test-deps installs it"));
        let n = Nginx { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start:\n{}",
                n.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `(method, uri, status, cache status)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String, u16, String)> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                Some((
                    w.first()?.to_string(),
                    w.get(1)?.to_string(),
                    w.get(2)?.parse().ok()?,
                    w.get(3)?.to_string(),
                ))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
