//! Child processes (the server, admin commands, ffmpeg) and their /proc accounting.

use anyhow::{Context, anyhow, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child that is killed and reaped when dropped, so nothing outlives the bench,
/// even on an error or a panic.
pub struct Reaped {
    child: Child,
}

impl Reaped {
    pub fn new(child: Child) -> Self {
        Self { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `hearth serve` with its own data dir and loopback ports.
pub struct Server {
    // Field order matters: the process dies before its directory is removed.
    pub proc: Reaped,
    pub base: String,
    pub rtmp: SocketAddr,
    pub data_dir: PathBuf,
    log: PathBuf,
    hearth: PathBuf,
    /// What it was started with; its admin commands get it too (a cluster's
    /// database URL).
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server with `env` added to its environment.
    pub fn start(hearth: &Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new().prefix("hearth-bench-").tempdir()?;
        let data_dir = dir.path().join("data");
        let log = dir.path().join("server.log");
        // Every publisher and viewer comes from 127.0.0.1: lift the per-address
        // limits, which would otherwise treat the load as one abusive peer.
        let config = dir.path().join("hearth.toml");
        std::fs::write(
            &config,
            "[limits]\nhttp_connections_per_address = 100000\nrtmp_connections_per_address = 100000\n\
             rtsp_connections_per_address = 100000\nwebrtc_sessions_per_address = 100000\nlogins_per_address_per_minute = 100000\n",
        )?;
        let mut child = Command::new(hearth)
            .args(["serve", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
            // Viewer keys' restreams (`--rtsp-pull` pulls from them).
            .args(["--rtsp", "127.0.0.1:0"])
            .args([
                "--admin",
                "127.0.0.1:0",
                "--webrtc",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("spawning {}", hearth.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let proc = Reaped::new(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining after the address line so the server never blocks on a pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow!("hearth did not print its addresses; log:\n{log}")
            })?;
            // "  HTTP <addr>  RTMP <addr>  ADMIN <addr>  data <dir>"
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"HTTP") && words.get(2) == Some(&"RTMP") {
                let http: SocketAddr = words[1].parse().context("HTTP address")?;
                let rtmp: SocketAddr = words[3].parse().context("RTMP address")?;
                return Ok(Server {
                    proc,
                    base: format!("http://{http}"),
                    rtmp,
                    data_dir,
                    log,
                    hearth: hearth.to_path_buf(),
                    env: env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    _dir: dir,
                });
            }
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Runs an admin subcommand on this server's data dir; returns its stdout.
    pub fn admin(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = Command::new(&self.hearth)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--rtmp")
            .arg(self.rtmp.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("admin stdin")?
            .write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "hearth {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

/// Starts `ffmpeg -re -stream_loop -1 -i file -c copy -f flv url`.
pub fn publisher(source: &Path, url: &str) -> anyhow::Result<Reaped> {
    let child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning ffmpeg (is it installed?)")?;
    Ok(Reaped::new(child))
}

/// Encodes the looped source once: `seconds` of testsrc2 + sine as H.264/AAC in FLV.
pub fn encode_source(
    out: &Path,
    size: &str,
    fps: u32,
    bitrate: &str,
    seconds: u32,
) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate={fps}"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args(["-b:v", bitrate, "-g", &(2 * fps).to_string()])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(out)
        .stdin(Stdio::null())
        .status()
        .context("running ffmpeg (is it installed?)")?;
    if !status.success() {
        bail!("ffmpeg failed to encode the source ({status})");
    }
    Ok(())
}

/// Clock ticks per second for /proc/PID/stat times.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The fields of `/proc/PID/stat` from field 3 (state) on; field *n* is at index n − 3.
/// `pid` may be "self".
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces; everything after its ')' is fixed-format.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process (all its threads), in clock ticks. `pid` may be "self".
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let f = stat_fields(pid)?;
    // utime (14) and stime (15).
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// When the process started, in clock ticks since boot (field 22): with the PID, it
/// names one process even if the PID is reused later.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(&pid.to_string())?.get(19)?.parse().ok()
}

/// The live direct children of `pid` (every process whose parent, field 4, is `pid`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            stat_fields(&p.to_string())
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|ppid| ppid == pid)
        })
        .collect()
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`, `RssFile`,
/// `RssShmem`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set size (VmHWM) in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// Sends `signal` (e.g. "TERM") to one process, with kill(1): the workspace forbids
/// unsafe code, and std can only send SIGKILL to its own children.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Two free loopback TCP ports (bound together, so they differ, then released; a
/// child binds them right after).
pub fn free_ports() -> anyhow::Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// Total size of the regular files directly in `dir`, in bytes.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Busy clock ticks of the whole machine, summed over all cores (from /proc/stat):
/// everything except idle and iowait.
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let total: u64 = f.iter().take(8).sum();
    Some(total - f.get(3)? - f.get(4)?)
}

/// Bytes of the sealed segments a Hearth server holds in memfd pages (see
/// `hearth-zerocopy`): shared memory in no process's RSS until read through the
/// mapping, so counted here like nginx's HLS files, from `/proc/PID/maps`.
pub fn memfd_bytes(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines()
        .filter(|l| l.contains("/memfd:hearth-segment"))
        .filter_map(|l| {
            let (range, _) = l.split_once(' ')?;
            let (a, b) = range.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        })
        .sum()
}
