//! The peer for `--peer nginx`: nginx with Debian's `libnginx-mod-rtmp` (RTMP in, HLS
//! out), run as a child of the bench with a config, prefix and HLS directory of its own.
//! The system nginx (its config, port 80, its service) is never used or touched.
//!
//! The config matches what Hearth does for the same source: 2 s fragments (the source
//! has a 2 s GOP, so one fragment per GOP) and a 10 s playlist (5 fragments, as Hearth
//! lists 5). The HLS files go to a tmpfs (`/dev/shm`) when there is one, so nginx serves
//! them from memory, as Hearth does, and with `sendfile`. Those files are in the page
//! cache and not in any nginx process's RSS: [`Nginx::hls_bytes`] measures them.
//!
//! nginx runs a master and worker processes. [`Nginx::pids`] lists them all, so the
//! bench charges nginx with the CPU and memory of every one. On drop the master gets
//! SIGTERM (it stops its workers and exits); whatever outlives it gets SIGKILL by PID.

use crate::procs;
use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run the peer.
pub struct NginxOpts {
    pub binary: PathBuf,
    /// `ngx_rtmp_module.so`, loaded with `load_module`.
    pub module: PathBuf,
    /// `worker_processes`: a number or `auto` (one per core).
    pub workers: String,
}

/// A running nginx-rtmp. Field order matters: the processes die before their
/// directory is removed.
pub struct Nginx {
    master: Master,
    rtmp_port: u16,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    hls: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Renders the nginx.conf. `run_as_root`: workers as root too (a root master would
/// otherwise drop them to `nobody`, who cannot write the private HLS directory).
fn config(
    opts: &NginxOpts,
    prefix: &Path,
    hls: &Path,
    rtmp_port: u16,
    http_port: u16,
    run_as_root: bool,
) -> String {
    let (prefix, hls) = (prefix.display(), hls.display());
    let mut c = String::new();
    let _ = writeln!(c, "load_module {};", opts.module.display());
    if run_as_root {
        c.push_str("user root;\n");
    }
    let _ = write!(
        c,
        "worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 16384; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            hls on;
            hls_path {hls};
            hls_fragment 2s;
            hls_playlist_length 10s;
        }}
    }}
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{http_port};
        location /hls/ {{
            alias {hls}/;
            add_header Cache-Control no-cache;
        }}
    }}
}}
",
        workers = opts.workers,
    );
    c
}

/// Whether this process runs as root (effective UID 0, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uids = s.lines().find_map(|l| l.strip_prefix("Uid:"))?.to_string();
            Some(uids.split_whitespace().nth(1)? == "0")
        })
        .unwrap_or(false)
}

impl Nginx {
    pub fn start(opts: &NginxOpts) -> anyhow::Result<Nginx> {
        if !opts.binary.is_file() || !opts.module.is_file() {
            bail!(
                "--peer nginx needs {} and {} (run scripts/install-bench-deps, or pass \
                 --nginx / --nginx-module)",
                opts.binary.display(),
                opts.module.display()
            );
        }
        let shm = Path::new("/dev/shm");
        let mut dir = tempfile::Builder::new();
        dir.prefix("hearth-bench-nginx-");
        let dir = if shm.is_dir() {
            dir.tempdir_in(shm)?
        } else {
            dir.tempdir()?
        };
        let hls = dir.path().join("hls");
        std::fs::create_dir(&hls)?;
        let conf = dir.path().join("nginx.conf");
        let log = dir.path().join("error.log");
        let (rtmp_port, http_port) = procs::free_ports()?;
        std::fs::write(
            &conf,
            config(opts, dir.path(), &hls, rtmp_port, http_port, is_root()),
        )?;
        let child = Command::new(&opts.binary)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            // Before it reads the config nginx logs to its built-in path; not here.
            .arg("-e")
            .arg(&log)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", opts.binary.display()))?;
        let mut nginx = Nginx {
            master: Master { child },
            rtmp_port,
            base: format!("http://127.0.0.1:{http_port}"),
            hls,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [rtmp_port, http_port] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if let Some(status) = nginx.exited() {
                    bail!("nginx exited ({status}); log:\n{}", nginx.log_tail(20));
                }
                if Instant::now() > deadline {
                    bail!(
                        "nginx is not listening on {addr}; log:\n{}",
                        nginx.log_tail(20)
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(nginx)
    }

    /// Where camera `cam` publishes.
    pub fn ingest_url(&self, cam: usize) -> String {
        format!("rtmp://127.0.0.1:{}/live/cam{cam}", self.rtmp_port)
    }

    /// Camera `cam`'s media playlist.
    pub fn playlist_url(&self, cam: usize) -> String {
        format!("{}/hls/cam{cam}.m3u8", self.base)
    }

    /// The master and its live children (workers, cache manager).
    pub fn pids(&self) -> Vec<u32> {
        let master = self.master.child.id();
        let mut pids = vec![master];
        pids.extend(procs::children(master));
        pids
    }

    /// Bytes of HLS files (playlists and fragments) on disk (tmpfs) right now.
    pub fn hls_bytes(&self) -> u64 {
        procs::dir_bytes(&self.hls)
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.master.child.try_wait().ok().flatten()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The nginx master, our child. On drop: SIGTERM (fast shutdown: the master stops its
/// workers, then exits), up to 5 s to do it, then SIGKILL to the master and to every
/// worker it had that is still the same process (PID and start time).
struct Master {
    child: Child,
}

impl Drop for Master {
    fn drop(&mut self) {
        let master = self.child.id();
        let workers: Vec<(u32, Option<u64>)> = procs::children(master)
            .into_iter()
            .map(|p| (p, procs::start_time(p)))
            .collect();
        if self.child.try_wait().ok().flatten().is_none() {
            procs::signal(master, "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, started) in workers {
            if started.is_some() && procs::start_time(pid) == started {
                procs::signal(pid, "KILL");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_matches_hearths_window_and_serves_from_the_hls_dir() {
        let opts = NginxOpts {
            binary: "/usr/sbin/nginx".into(),
            module: "/usr/lib/nginx/modules/ngx_rtmp_module.so".into(),
            workers: "auto".into(),
        };
        let c = config(
            &opts,
            Path::new("/p"),
            Path::new("/p/hls"),
            1935,
            8080,
            false,
        );
        for want in [
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;",
            "worker_processes auto;",
            "listen 127.0.0.1:1935;",
            "hls_path /p/hls;",
            "hls_fragment 2s;",
            "hls_playlist_length 10s;",
            "sendfile on;",
            "tcp_nopush on;",
            "access_log off;",
            "application/vnd.apple.mpegurl m3u8;",
            "video/mp2t ts;",
            "listen 127.0.0.1:8080;",
            "alias /p/hls/;",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        assert!(!c.contains("user root"));
        assert!(c.starts_with("load_module"), "load_module must come first");
    }
}
