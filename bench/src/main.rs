//! `hearth-bench`: a load benchmark for the `hearth` binary.
//!
//! For each scenario `CxV` it starts a fresh `hearth serve` on loopback, creates C
//! cameras (one user per four cameras), has C `ffmpeg -re -stream_loop -1 -c copy`
//! processes publish a pre-encoded FLV over RTMP, and runs V simulated HLS viewers
//! (tokio tasks sharing one HTTP client) that poll the fMP4 playlist once a second and
//! fetch every new segment. After a warm-up it measures a fixed window and prints what
//! it measured: it never asserts timings.
//!
//! `--compare` runs each scenario twice, guarded (normal) and unguarded
//! (`HEARTH_BENCH_UNGUARDED=1`: no egress checks, access check, audit accounting,
//! segment stamping or encryption), and prints the overhead of the guard. That needs a
//! `hearth` built with the `bench-switches` feature.
//!
//! Build and run:
//!
//! ```text
//! cargo build --release -p hearth-server -p hearth-bench
//! target/release/hearth-bench [--sizes 4x20,16x100,32x400] [--duration 30] [--json]
//! cargo build --release -p hearth-server --features bench-switches
//! target/release/hearth-bench --compare --sizes 16x100,32x400
//! ```

mod procs;
mod viewer;

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use procs::{Reaped, Server};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use viewer::{Counters, Viewer};

const PASSWORD: &str = "bench password 1234";
/// Length of the pre-encoded source that publishers loop.
const SOURCE_SECONDS: u32 = 10;

#[derive(Parser)]
#[command(
    name = "hearth-bench",
    about = "Load benchmark: N RTMP publishers and M HLS viewers against a real hearth \
             process over loopback. Prints measured numbers; asserts nothing."
)]
struct Args {
    /// The hearth binary [default: `hearth` next to this executable].
    #[arg(long)]
    hearth: Option<PathBuf>,
    /// Scenarios as CAMERASxVIEWERS, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4x20,16x100,32x400", value_parser = parse_scenario)]
    sizes: Vec<Scenario>,
    /// Measured seconds per scenario, after the warm-up.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds between starting the viewers and starting to measure.
    #[arg(long, default_value_t = 10.0)]
    warmup: f64,
    /// Picture size of the pre-encoded source.
    #[arg(long, default_value = "1280x720")]
    video_size: String,
    /// Frame rate of the source; the GOP is two seconds (one HLS segment).
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Video bitrate of the source (ffmpeg syntax).
    #[arg(long, default_value = "2M")]
    bitrate: String,
    /// Use this FLV (H.264 + AAC) instead of encoding one.
    #[arg(long)]
    source: Option<PathBuf>,
    /// Seconds between a viewer's playlist polls.
    #[arg(long, default_value_t = 1.0)]
    poll: f64,
    /// Cameras per user (household).
    #[arg(long, default_value_t = 4)]
    cameras_per_user: usize,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Run each scenario guarded and then unguarded (`HEARTH_BENCH_UNGUARDED=1`) and
    /// print the overhead. Needs `hearth` built with `--features bench-switches`.
    #[arg(long)]
    compare: bool,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    cameras: usize,
    viewers: usize,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    let (c, v) = s
        .trim()
        .split_once('x')
        .ok_or("expected CAMERASxVIEWERS, e.g. 4x20")?;
    let cameras: usize = c.parse().map_err(|_| "bad camera count")?;
    let viewers: usize = v.parse().map_err(|_| "bad viewer count")?;
    if cameras == 0 {
        return Err("need at least one camera".into());
    }
    Ok(Scenario { cameras, viewers })
}

/// Everything scenarios share.
struct Ctx {
    hearth: PathBuf,
    source: PathBuf,
    warmup: Duration,
    duration: Duration,
    poll: Duration,
    per_user: usize,
    clk_tck: f64,
}

/// What one scenario measured.
struct Measured {
    scenario: Scenario,
    /// Run with `HEARTH_BENCH_UNGUARDED=1`.
    unguarded: bool,
    window_s: f64,
    segments: u64,
    bytes: u64,
    playlists: u64,
    keys: u64,
    /// Over the whole scenario (warm-up included), not just the window.
    errors: u64,
    viewers_started: usize,
    ttfs_p50_ms: Option<f64>,
    ttfs_p99_ms: Option<f64>,
    ttfs_max_ms: Option<f64>,
    server_cpu_s: f64,
    publishers_cpu_s: f64,
    bench_cpu_s: f64,
    /// Busy CPU time of the whole machine.
    machine_cpu_s: f64,
    server_peak_rss_mib: Option<f64>,
    publishers_exited: usize,
}

impl Measured {
    fn segments_per_s(&self) -> f64 {
        self.segments as f64 / self.window_s
    }
    fn gbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1e9 / self.window_s
    }
    fn pct(&self, cpu_s: f64) -> f64 {
        cpu_s / self.window_s * 100.0
    }
    /// Busy CPU not spent by the server, the publishers or the bench: other processes
    /// and kernel work not charged to any of them.
    fn other_cpu_s(&self) -> f64 {
        (self.machine_cpu_s - self.server_cpu_s - self.publishers_cpu_s - self.bench_cpu_s).max(0.0)
    }
    /// Server CPU-seconds per Gbit of media served.
    fn cpu_s_per_gbit(&self) -> Option<f64> {
        let gbit = self.bytes as f64 * 8.0 / 1e9;
        (gbit > 0.0).then(|| self.server_cpu_s / gbit)
    }

    fn to_json(&self) -> Value {
        json!({
            "cameras": self.scenario.cameras,
            "viewers": self.scenario.viewers,
            "guard": if self.unguarded { "off" } else { "on" },
            "window_s": self.window_s,
            "segments": self.segments,
            "segments_per_s": self.segments_per_s(),
            "bytes": self.bytes,
            "playlists": self.playlists,
            "keys": self.keys,
            "gbit_per_s": self.gbit_per_s(),
            "ttfs_p50_ms": self.ttfs_p50_ms,
            "ttfs_p99_ms": self.ttfs_p99_ms,
            "ttfs_max_ms": self.ttfs_max_ms,
            "viewers_started": self.viewers_started,
            "errors": self.errors,
            "server_cpu_pct": self.pct(self.server_cpu_s),
            "server_cpu_s_per_gbit": self.cpu_s_per_gbit(),
            "server_peak_rss_mib": self.server_peak_rss_mib,
            "publishers_cpu_pct": self.pct(self.publishers_cpu_s),
            "bench_cpu_pct": self.pct(self.bench_cpu_s),
            "machine_busy_cpu_pct": self.pct(self.machine_cpu_s),
            "other_cpu_pct": self.pct(self.other_cpu_s()),
            "publishers_exited": self.publishers_exited,
        })
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0)
}

/// The guard's overhead: `on` (guarded) relative to `off` (unguarded), in percent.
struct Overhead {
    cpu_s_per_gbit_pct: Option<f64>,
    segments_per_s_pct: Option<f64>,
}

impl Overhead {
    fn of(on: &Measured, off: &Measured) -> Self {
        let rel = |on: f64, off: f64| (off > 0.0).then(|| (on / off - 1.0) * 100.0);
        Self {
            cpu_s_per_gbit_pct: on
                .cpu_s_per_gbit()
                .zip(off.cpu_s_per_gbit())
                .and_then(|(a, b)| rel(a, b)),
            segments_per_s_pct: rel(on.segments_per_s(), off.segments_per_s()),
        }
    }

    fn line(&self, on: &Measured, off: &Measured) -> String {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:+.1}%"));
        format!(
            "overhead {}x{}: CPU-s/Gbit {} (on {} vs off {}); seg/s {} (on {:.1} vs off {:.1}); \
             srv CPU% on {:.1} vs off {:.1}",
            on.scenario.cameras,
            on.scenario.viewers,
            pct(self.cpu_s_per_gbit_pct),
            opt(on.cpu_s_per_gbit(), 3),
            opt(off.cpu_s_per_gbit(), 3),
            pct(self.segments_per_s_pct),
            on.segments_per_s(),
            off.segments_per_s(),
            on.pct(on.server_cpu_s),
            off.pct(off.server_cpu_s),
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "cpu_s_per_gbit_pct": self.cpu_s_per_gbit_pct,
            "segments_per_s_pct": self.segments_per_s_pct,
        })
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

const TABLE_HEADER: &str = " cams  viewers   seg/s  Gbit/s  TTFS p50 ms  TTFS p99 ms  started  errors  \
                            srv CPU%  CPU-s/Gbit  srv RSS MiB  pub CPU%  bench CPU%  other CPU%";

fn table_row(m: &Measured) -> String {
    format!(
        "{:>5}  {:>7}  {:>6.1}  {:>6.3}  {:>11}  {:>11}  {:>7}  {:>6}  {:>8.1}  {:>10}  {:>11}  {:>8.1}  {:>10.1}  {:>10.1}",
        m.scenario.cameras,
        m.scenario.viewers,
        m.segments_per_s(),
        m.gbit_per_s(),
        opt(m.ttfs_p50_ms, 0),
        opt(m.ttfs_p99_ms, 0),
        format!("{}/{}", m.viewers_started, m.scenario.viewers),
        m.errors,
        m.pct(m.server_cpu_s),
        opt(m.cpu_s_per_gbit(), 2),
        opt(m.server_peak_rss_mib, 1),
        m.pct(m.publishers_cpu_s),
        m.pct(m.bench_cpu_s),
        m.pct(m.other_cpu_s()),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hearth = match &args.hearth {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .join("hearth"),
    };
    if !hearth.is_file() {
        bail!(
            "no hearth binary at {} (build it with `cargo build --release -p hearth-server \
             -p hearth-bench`, or pass --hearth PATH)",
            hearth.display()
        );
    }
    if args.duration <= 0.0 || args.warmup < 0.0 || args.poll <= 0.0 || args.cameras_per_user == 0 {
        bail!(
            "--duration and --poll must be positive, --warmup not negative, --cameras-per-user at least 1"
        );
    }

    let work = tempfile::Builder::new()
        .prefix("hearth-bench-src-")
        .tempdir()?;
    let source = match &args.source {
        Some(p) => p.clone(),
        None => {
            let out = work.path().join("source.flv");
            eprintln!(
                "encoding a {SOURCE_SECONDS} s {}@{} {} source with ffmpeg...",
                args.video_size, args.fps, args.bitrate
            );
            procs::encode_source(
                &out,
                &args.video_size,
                args.fps,
                &args.bitrate,
                SOURCE_SECONDS,
            )?;
            out
        }
    };
    // Only known for a source we encoded ourselves (we know its length).
    let source_kbit_s = args.source.is_none().then(|| -> anyhow::Result<f64> {
        Ok(std::fs::metadata(&source)?.len() as f64 * 8.0 / 1000.0 / f64::from(SOURCE_SECONDS))
    });
    let source_kbit_s = source_kbit_s.transpose()?;

    let ctx = Ctx {
        hearth,
        source,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        poll: Duration::from_secs_f64(args.poll),
        per_user: args.cameras_per_user,
        clk_tck: procs::clock_ticks(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let summary = format!(
        "hearth-bench: {cores} cores; source {} @ {} fps, H.264 {} + AAC ({}), 2 s GOP; \
         {} s warm-up + {} s measured per scenario; viewers poll every {} s",
        args.video_size,
        args.fps,
        args.bitrate,
        source_kbit_s.map_or_else(
            || "given file".into(),
            |k| format!("{k:.0} kbit/s measured")
        ),
        args.warmup,
        args.duration,
        args.poll
    );
    // In compare mode each row starts with the guard's state.
    let mode = |m: &Measured| match (args.compare, m.unguarded) {
        (false, _) => "",
        (true, false) => "  on  ",
        (true, true) => "  off ",
    };
    if !args.json {
        println!("{summary}");
        println!("{}{TABLE_HEADER}", if args.compare { "guard " } else { "" });
    }
    let mut results = Vec::new();
    let mut overheads = Vec::new();
    let modes: &[bool] = if args.compare {
        &[false, true]
    } else {
        &[false]
    };
    for sc in &args.sizes {
        for &unguarded in modes {
            eprintln!(
                "scenario {}x{}: {} cameras, {} viewers{}",
                sc.cameras,
                sc.viewers,
                sc.cameras,
                sc.viewers,
                if unguarded {
                    ", UNGUARDED (HEARTH_BENCH_UNGUARDED=1)"
                } else {
                    ""
                }
            );
            let m = run_scenario(&ctx, *sc, unguarded)
                .await
                .with_context(|| format!("scenario {}x{}", sc.cameras, sc.viewers))?;
            if !args.json {
                println!("{}{}", mode(&m), table_row(&m));
            }
            results.push(m);
        }
        if args.compare {
            let [.., on, off] = &results[..] else {
                unreachable!("two runs per scenario")
            };
            let o = Overhead::of(on, off);
            if !args.json {
                println!("{}", o.line(on, off));
            }
            overheads.push(json!({
                "cameras": sc.cameras,
                "viewers": sc.viewers,
                "overhead": o.to_json(),
            }));
        }
    }
    if args.json {
        let doc = json!({
            "cores": cores,
            "video_size": args.video_size,
            "fps": args.fps,
            "bitrate": args.bitrate,
            "source_kbit_s": source_kbit_s,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "poll_s": args.poll,
            "scenarios": results.iter().map(Measured::to_json).collect::<Vec<_>>(),
            "overheads": overheads,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

/// CPU ticks of the server, the publishers and this process.
struct CpuSample {
    at: Instant,
    server: u64,
    publishers: u64,
    bench: u64,
    machine: u64,
}

fn sample_cpu(server: &Server, publishers: &[Reaped]) -> CpuSample {
    CpuSample {
        at: Instant::now(),
        server: procs::cpu_ticks(&server.proc.pid().to_string()).unwrap_or(0),
        publishers: publishers
            .iter()
            .filter_map(|p| procs::cpu_ticks(&p.pid().to_string()))
            .sum(),
        bench: procs::cpu_ticks("self").unwrap_or(0),
        machine: procs::machine_busy_ticks().unwrap_or(0),
    }
}

async fn login(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let r = client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login {email}: HTTP {}", r.status());
    }
    let v: Value = r.json().await?;
    Ok(v["token"].as_str().context("token")?.to_string())
}

async fn cameras_online(
    client: &reqwest::Client,
    base: &str,
    tokens: &[String],
) -> anyhow::Result<usize> {
    let mut online = 0;
    for t in tokens {
        let r = client
            .get(format!("{base}/api/v1/cameras"))
            .bearer_auth(t)
            .send()
            .await?;
        let cams: Vec<Value> = r.error_for_status()?.json().await?;
        online += cams.iter().filter(|c| c["online"] == true).count();
    }
    Ok(online)
}

/// Waits until the camera has published its first segment, through a grant of its own.
/// Returns whether its playlist lists an `EXT-X-KEY` (segments are encrypted).
async fn wait_first_segment(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    camera: &str,
    deadline: Instant,
) -> anyhow::Result<bool> {
    loop {
        let r = client
            .post(format!("{base}/api/v1/cameras/{camera}/streams"))
            .bearer_auth(token)
            .send()
            .await?;
        let v: Value = r.error_for_status()?.json().await?;
        let hls = v["hls_url"].as_str().context("hls_url")?;
        let url = format!("{}/live.m3u8", hls.rsplit_once('/').context("hls_url")?.0);
        let r = client.get(url).bearer_auth(token).send().await?;
        if r.status().is_success() {
            let text = r.text().await?;
            if text.contains(".m4s") {
                return Ok(text.contains("#EXT-X-KEY:METHOD=AES-128"));
            }
        }
        if Instant::now() > deadline {
            bail!("camera {camera} produced no segment");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn run_scenario(ctx: &Ctx, sc: Scenario, unguarded: bool) -> anyhow::Result<Measured> {
    let env: &[(&str, &str)] = if unguarded {
        &[("HEARTH_BENCH_UNGUARDED", "1")]
    } else {
        &[]
    };
    let server = Server::start(&ctx.hearth, env)?;
    let users: Vec<String> = (0..sc.cameras.div_ceil(ctx.per_user))
        .map(|u| format!("household{u}@bench.invalid"))
        .collect();
    for email in &users {
        server.admin(&["user", "add", "--email", email], &format!("{PASSWORD}\n"))?;
    }
    let mut cameras = Vec::new(); // (id, ingest url)
    for c in 0..sc.cameras {
        let out = server.admin(
            &[
                "camera",
                "add",
                "--owner",
                &users[c / ctx.per_user],
                "--name",
                &format!("bench camera {c}"),
            ],
            "",
        )?;
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .ok_or_else(|| anyhow!("no `{key}` line in camera add output: {out}"))
        };
        cameras.push((field("camera ")?, field("ingest ")?));
    }

    let mut publishers = Vec::new();
    for (_, url) in &cameras {
        publishers.push(procs::publisher(&ctx.source, url)?);
    }

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(sc.viewers.clamp(8, 2048))
        .timeout(Duration::from_secs(20))
        .build()?;
    let mut tokens = Vec::new();
    for email in &users {
        tokens.push(login(&client, &server.base, email).await?);
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let online = cameras_online(&client, &server.base, &tokens).await?;
        if online == sc.cameras {
            break;
        }
        let dead = publishers.iter_mut().filter_map(|p| p.exited()).count();
        if dead > 0 || Instant::now() > deadline {
            bail!(
                "only {online}/{} cameras came online ({dead} publishers exited); server log:\n{}",
                sc.cameras,
                server.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (i, (id, _)) in cameras.iter().enumerate() {
        let token = &tokens[i / ctx.per_user];
        let encrypted = wait_first_segment(&client, &server.base, token, id, deadline)
            .await
            .with_context(|| server.log_tail(40))?;
        // The switch is compiled in only with `bench-switches`: make sure it took.
        if unguarded && encrypted {
            bail!(
                "HEARTH_BENCH_UNGUARDED=1 had no effect (segments are still encrypted): \
                 build hearth with `cargo build --release -p hearth-server --features \
                 bench-switches`"
            );
        }
        if !unguarded && !encrypted {
            bail!("the guarded server lists no EXT-X-KEY: is HEARTH_BENCH_UNGUARDED set?");
        }
    }
    eprintln!("  all {} cameras online and segmenting", sc.cameras);

    let counters = Arc::new(Counters::default());
    let mut viewers = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(100);
    for v in 0..sc.viewers {
        let cam = v % sc.cameras;
        // Spread the viewers' start over one poll interval (golden-ratio sequence).
        let jitter = (v as f64 * 0.618_033_988_75).fract();
        viewers.spawn(
            Viewer {
                client: client.clone(),
                counters: counters.clone(),
                base: server.base.clone(),
                camera_id: cameras[cam].0.clone(),
                token: tokens[cam / ctx.per_user].clone(),
                start: start + ctx.poll.mul_f64(jitter),
                poll: ctx.poll,
            }
            .run(),
        );
    }

    tokio::time::sleep_until(start + ctx.warmup).await;
    let (c0, cpu0) = (counters.snapshot(), sample_cpu(&server, &publishers));
    eprintln!("  warm-up done, measuring {} s", ctx.duration.as_secs_f64());
    tokio::time::sleep(ctx.duration).await;
    let (c1, cpu1) = (counters.snapshot(), sample_cpu(&server, &publishers));
    viewers.abort_all();
    while viewers.join_next().await.is_some() {}

    let mut server = server;
    if let Some(status) = server.proc.exited() {
        bail!(
            "hearth exited during the run ({status}); log:\n{}",
            server.log_tail(40)
        );
    }
    let publishers_exited = publishers.iter_mut().filter_map(|p| p.exited()).count();
    let samples = counters.error_samples.lock().expect("samples").clone();
    if !samples.is_empty() {
        eprintln!("  {} errors, e.g.:", c1.errors);
        for s in samples {
            eprintln!("    {s}");
        }
    }
    if publishers_exited > 0 {
        eprintln!("  warning: {publishers_exited} publishers exited during the run");
    }

    let mut ttfs = counters.ttfs_us.lock().expect("ttfs").clone();
    ttfs.sort_unstable();
    let secs = |ticks: u64| ticks as f64 / ctx.clk_tck;
    let m = Measured {
        scenario: sc,
        unguarded,
        window_s: cpu1.at.duration_since(cpu0.at).as_secs_f64(),
        segments: c1.segments - c0.segments,
        bytes: c1.bytes - c0.bytes,
        playlists: c1.playlists - c0.playlists,
        keys: c1.keys - c0.keys,
        errors: c1.errors,
        viewers_started: ttfs.len(),
        ttfs_p50_ms: percentile(&ttfs, 50.0),
        ttfs_p99_ms: percentile(&ttfs, 99.0),
        ttfs_max_ms: percentile(&ttfs, 100.0),
        server_cpu_s: secs(cpu1.server.saturating_sub(cpu0.server)),
        publishers_cpu_s: secs(cpu1.publishers.saturating_sub(cpu0.publishers)),
        bench_cpu_s: secs(cpu1.bench.saturating_sub(cpu0.bench)),
        machine_cpu_s: secs(cpu1.machine.saturating_sub(cpu0.machine)),
        server_peak_rss_mib: procs::peak_rss_kib(server.proc.pid()).map(|k| k as f64 / 1024.0),
        publishers_exited,
    };
    // Publishers go first (declared after the server), then the server and its dir.
    drop(publishers);
    drop(server);
    Ok(m)
}
