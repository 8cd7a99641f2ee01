//! `hearth-bench`: a load benchmark for the `hearth` binary.
//!
//! For each scenario `CxV` it starts a fresh `hearth serve` on loopback, creates C
//! cameras (one user per four cameras), has C `ffmpeg -re -stream_loop -1 -c copy`
//! processes publish a pre-encoded FLV over RTMP, and runs V simulated HLS viewers
//! (tokio tasks sharing one HTTP client) that poll a media playlist once a second and
//! fetch every new segment. After a warm-up it measures a fixed window and prints what
//! it measured: it never asserts timings.
//!
//! `--compare` runs each scenario twice, guarded (normal) and unguarded
//! (`HEARTH_BENCH_UNGUARDED=1`: no egress checks, access check, audit accounting,
//! segment stamping or encryption), and prints the overhead of the guard. That needs a
//! `hearth` built with the `bench-switches` feature.
//!
//! `--peer nginx` runs each scenario against Hearth and against nginx with
//! `libnginx-mod-rtmp` (RTMP in, MPEG-TS HLS out) in alternating pairs, with the same
//! source, publishers and viewer loop, and prints the ratios (see [`nginx`] and
//! [`report::PeerRatios`]).
//!
//! `--webrtc` runs WebRTC (WHEP) viewers instead of HLS ones: str0m peers that
//! count RTP, with Hearth pinned to one core; it prints viewers per core, CPU
//! per Gbit, memory per viewer and time to first frame (see [`webrtc`]).
//!
//! `--transcode` measures what deriving a sub stream from a 1080p main stream
//! would cost per camera (see [`transcode`]).
//!
//! `--rtsp-pull` measures what pulling IP cameras over RTSP costs: N cameras
//! pulled from a second Hearth's viewer-key restream, no viewers; cameras per
//! core, ingest Mbit/s per core and memory per camera (see [`pull`]).
//!
//! `--nodes 1,2,3` runs every scenario on clusters of that many nodes
//! (PostgreSQL, NATS and N `hearth serve`; most viewers on a node that relays
//! their camera from the node that ingests it; see [`cluster`]).
//!
//! `--kv-leases 10000,50000` measures what placement costs NATS: that many
//! camera-rendition leases renewed as Hearth renews them (see [`kv`]).
//!
//! `--memory` measures instead what a camera (watched and unwatched) and a viewer
//! cost Hearth in RSS, and whether it comes back (see [`memory`]).
//!
//! Build and run:
//!
//! ```text
//! cargo build --release -p hearth-server -p hearth-bench
//! target/release/hearth-bench [--sizes 4x20,16x100,32x400] [--duration 30] [--json]
//! target/release/hearth-bench --peer nginx --sizes 16x100 --pairs 3
//! target/release/hearth-bench --memory --sizes 32x64
//! target/release/hearth-bench --webrtc --sizes 1x1000 --video-size 640x360 --bitrate 250k
//! target/release/hearth-bench --rtsp-pull --sizes 50x0,200x0 --bitrate 2M
//! target/release/hearth-bench --nodes 1,2,3 --sizes 8x50
//! target/release/hearth-bench --kv-leases 1000,10000,50000
//! cargo build --release -p hearth-server --features bench-switches
//! target/release/hearth-bench --compare --sizes 16x100,32x400
//! ```

mod cluster;
mod kv;
mod memory;
mod nginx;
mod procs;
mod pull;
mod report;
mod run;
mod transcode;
mod viewer;
mod webrtc;

use anyhow::{Context, bail};
use clap::Parser;
use report::{Measured, Overhead, PeerRatios, ServerKind};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use viewer::Flavour;

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
    /// Scenarios as CAMERASxVIEWERS, comma-separated [default: 4x20,16x100,32x400;
    /// 16x100 with --peer; 32x64 with --memory].
    #[arg(long, value_delimiter = ',', value_parser = parse_scenario)]
    sizes: Option<Vec<Scenario>>,
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
    /// Which of Hearth's media playlists viewers read [default: fmp4; ts with --peer,
    /// since nginx-rtmp serves MPEG-TS only].
    #[arg(long, value_enum)]
    playlist: Option<Flavour>,
    /// Viewers poll playlists and fetch no segments: the playlist path alone, so that
    /// pl/CPU-s is the cost of a playlist request (and Gbit/s is playlists only).
    #[arg(long, conflicts_with = "memory")]
    playlists_only: bool,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Run each scenario guarded and then unguarded (`HEARTH_BENCH_UNGUARDED=1`) and
    /// print the overhead. Needs `hearth` built with `--features bench-switches`.
    #[arg(long, conflicts_with_all = ["peer", "memory"])]
    compare: bool,
    /// Run each scenario against Hearth and against this peer in alternating pairs and
    /// print Hearth/peer ratios. `nginx`: nginx with libnginx-mod-rtmp
    /// (scripts/install-bench-deps installs it).
    #[arg(long, value_enum, conflicts_with = "memory")]
    peer: Option<Peer>,
    /// Pairs of runs per scenario with --peer. Pair 1 runs Hearth first, pair 2 the
    /// peer first, and so on.
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// The nginx binary for --peer nginx.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
    /// nginx's RTMP module (Debian's libnginx-mod-rtmp).
    #[arg(long, default_value = "/usr/lib/nginx/modules/ngx_rtmp_module.so")]
    nginx_module: PathBuf,
    /// nginx `worker_processes`: `auto` is one per core, the parallelism Hearth's
    /// runtime gets too.
    #[arg(long, default_value = "auto")]
    nginx_workers: String,
    /// Runs every scenario on clusters of these many nodes (comma-separated,
    /// e.g. `1,2,3`): PostgreSQL, NATS and N `hearth serve` nodes; camera c
    /// publishes to node c mod N, viewer v plays on node v mod N (see
    /// `cluster.rs`). CPU is every node's and nats-server's.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["peer", "memory", "compare", "webrtc", "transcode", "rtsp_pull"])]
    nodes: Option<Vec<usize>>,
    /// Instead of the load runs: placement's load on NATS alone. Holds this many
    /// camera-rendition leases (comma-separated sizes) in a JetStream KV bucket
    /// on a nats-server of its own, renewed as Hearth renews them, and measures
    /// renewals/s, their latency and nats-server's CPU (see `kv.rs`).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["peer", "memory", "compare", "webrtc", "transcode", "rtsp_pull", "nodes"])]
    kv_leases: Option<Vec<usize>>,
    /// The lease for --kv-leases, in seconds (Hearth's `[cluster] lease_seconds`).
    #[arg(long, default_value_t = 5.0)]
    lease: f64,
    /// Instead of the load runs: RSS per camera (unwatched and watched) and per viewer,
    /// in steps on one server (CxV: C cameras, then V and 2V viewers on --watched of
    /// them, then none).
    #[arg(long)]
    memory: bool,
    /// Seconds per --memory step (the retained window of 8 segments takes 16 s to fill,
    /// and grant sessions idle out after 15 s).
    #[arg(long, default_value_t = 20.0)]
    settle: f64,
    /// KEY=VALUE added to every hearth server's environment (repeatable), e.g.
    /// MALLOC_ARENA_MAX=1 to see what glibc's arenas do to RSS.
    #[arg(long, value_parser = parse_env)]
    hearth_env: Vec<(String, String)>,
    /// WebRTC (WHEP) viewers instead of HLS ones (see `webrtc.rs`).
    #[arg(long, conflicts_with_all = ["peer", "memory", "compare"])]
    webrtc: bool,
    /// Measures what deriving a sub stream (1080p decode, 640x360 encode) costs
    /// per camera, and exits (see `transcode.rs`).
    #[arg(long, conflicts_with_all = ["peer", "memory", "compare", "webrtc"])]
    transcode: bool,
    /// RTSP pull instead of the load runs: CxV pulls C cameras (V is ignored) from
    /// a second Hearth's restream and measures the puller (see `pull.rs`).
    #[arg(long, conflicts_with_all = ["peer", "memory", "compare", "webrtc", "transcode"])]
    rtsp_pull: bool,
    /// Cameras that get viewers in --memory [default: half of them, rounded up].
    #[arg(long)]
    watched: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Peer {
    Nginx,
}

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub cameras: usize,
    pub viewers: usize,
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

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    if k.is_empty() {
        return Err("empty variable name".into());
    }
    Ok((k.to_string(), v.to_string()))
}

/// Everything scenarios share.
pub struct Ctx {
    pub hearth: PathBuf,
    pub source: PathBuf,
    pub warmup: Duration,
    pub duration: Duration,
    pub poll: Duration,
    /// Viewers fetch no segments.
    pub playlists_only: bool,
    pub per_user: usize,
    pub clk_tck: f64,
    /// The playlist Hearth's viewers read.
    pub flavour: Flavour,
    /// Added to every hearth server's environment.
    pub hearth_env: Vec<(String, String)>,
    pub nginx: nginx::NginxOpts,
    /// Hearth nodes per run (`--nodes`); 1: a single box.
    pub nodes: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.transcode {
        let fps = args.fps;
        return tokio::task::spawn_blocking(move || transcode::run(fps)).await?;
    }
    if let Some(leases) = &args.kv_leases {
        return kv_runs(&args, leases).await;
    }
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
    if args.peer.is_some() && args.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if args.memory && args.settle <= 0.0 {
        bail!("--settle must be positive");
    }
    let flavour = match (args.peer, args.playlist) {
        (Some(_), Some(Flavour::Fmp4)) => {
            bail!("--peer compares MPEG-TS (all nginx-rtmp serves): leave out --playlist fmp4")
        }
        (Some(_), _) => Flavour::Ts,
        (None, f) => f.unwrap_or(Flavour::Fmp4),
    };

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

    let mut ctx = Ctx {
        hearth,
        source,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        poll: Duration::from_secs_f64(args.poll),
        playlists_only: args.playlists_only,
        per_user: args.cameras_per_user,
        clk_tck: procs::clock_ticks(),
        flavour,
        hearth_env: args.hearth_env.clone(),
        nginx: nginx::NginxOpts {
            binary: args.nginx.clone(),
            module: args.nginx_module.clone(),
            workers: args.nginx_workers.clone(),
        },
        nodes: 1,
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let timing = if args.memory {
        format!("{} s per memory step", args.settle)
    } else {
        format!(
            "{} s warm-up + {} s measured per run",
            args.warmup, args.duration
        )
    };
    let env: Vec<String> = ctx
        .hearth_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let summary = format!(
        "hearth-bench: {cores} cores; source {} @ {} fps, H.264 {} + AAC ({}), 2 s GOP; \
         {timing}; viewers poll every {} s{}; Hearth playlist {}{}",
        args.video_size,
        args.fps,
        args.bitrate,
        source_kbit_s.map_or_else(
            || "given file".into(),
            |k| format!("{k:.0} kbit/s measured")
        ),
        args.poll,
        if args.playlists_only {
            " and fetch no segments (--playlists-only)"
        } else {
            ""
        },
        match flavour {
            Flavour::Fmp4 => "fMP4 (live.m3u8)",
            Flavour::Ts => "MPEG-TS (ts.m3u8)",
        },
        if env.is_empty() {
            String::new()
        } else {
            format!("; hearth env {}", env.join(" "))
        },
    );
    let mut doc = json!({
        "cores": cores,
        "video_size": args.video_size,
        "fps": args.fps,
        "bitrate": args.bitrate,
        "source_kbit_s": source_kbit_s,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "poll_s": args.poll,
        "playlists_only": args.playlists_only,
        "playlist": flavour.name(),
        "hearth_env": env,
    });
    if !args.json {
        println!("{summary}");
    }
    let sizes = args.sizes.clone().unwrap_or_else(|| {
        let default = match (args.memory, args.peer) {
            (true, _) => "32x64",
            (false, Some(_)) => "16x100",
            (false, None) => "4x20,16x100,32x400",
        };
        default
            .split(',')
            .map(|s| parse_scenario(s).expect("default sizes parse"))
            .collect()
    });
    if args.memory {
        // One GOP is 2 s of a source we encoded (we know its length).
        let gop_bytes = args.source.is_none().then(|| -> anyhow::Result<f64> {
            Ok(std::fs::metadata(&ctx.source)?.len() as f64 * 2.0 / f64::from(SOURCE_SECONDS))
        });
        let gop_bytes = gop_bytes.transpose()?;
        let mut out = Vec::new();
        for sc in &sizes {
            eprintln!("memory {}x{}", sc.cameras, sc.viewers);
            let watched = args.watched.unwrap_or(sc.cameras.div_ceil(2));
            let settle = Duration::from_secs_f64(args.settle);
            out.push(
                memory::run(&ctx, *sc, watched, settle, gop_bytes, !args.json)
                    .await
                    .with_context(|| format!("memory {}x{}", sc.cameras, sc.viewers))?,
            );
        }
        doc["memory"] = out.into();
    } else if args.rtsp_pull {
        let mut out = Vec::new();
        for sc in &sizes {
            eprintln!("rtsp pull of {} cameras", sc.cameras);
            out.push(
                pull::run(&ctx, *sc)
                    .await
                    .with_context(|| format!("rtsp pull {}", sc.cameras))?,
            );
        }
        if !args.json {
            pull::print(&out);
        }
        doc["rtsp_pull"] = out.into();
    } else if args.webrtc {
        if !args.json {
            println!("webrtc {}", webrtc::TABLE_HEADER);
        }
        let mut out = Vec::new();
        for sc in &sizes {
            eprintln!("webrtc {}x{}", sc.cameras, sc.viewers);
            let m = webrtc::run(&ctx, *sc, source_kbit_s)
                .await
                .with_context(|| format!("webrtc {}x{}", sc.cameras, sc.viewers))?;
            if !args.json {
                println!("webrtc {}", m.line());
            }
            out.push(m.to_json());
        }
        doc["webrtc"] = out.into();
    } else if args.peer.is_some() {
        peer_runs(&ctx, &args, &sizes, &mut doc).await?;
    } else if let Some(nodes) = args.nodes.clone() {
        node_runs(&mut ctx, &args, &nodes, &sizes, &mut doc).await?;
    } else {
        own_runs(&ctx, &args, &sizes, &mut doc).await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

/// Hearth alone, or guarded against unguarded (`--compare`).
async fn own_runs(
    ctx: &Ctx,
    args: &Args,
    sizes: &[Scenario],
    doc: &mut serde_json::Value,
) -> anyhow::Result<()> {
    if !args.json {
        println!(
            "{}{}",
            if args.compare { "guard " } else { "" },
            report::TABLE_HEADER
        );
    }
    let mut results = Vec::new();
    let mut overheads = Vec::new();
    let modes: &[bool] = if args.compare {
        &[false, true]
    } else {
        &[false]
    };
    for sc in sizes {
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
            let m = run::hearth(ctx, *sc, unguarded)
                .await
                .with_context(|| format!("scenario {}x{}", sc.cameras, sc.viewers))?;
            if !args.json {
                // In compare mode each row starts with the guard's state.
                let mode = match (args.compare, m.unguarded) {
                    (false, _) => "",
                    (true, false) => "  on  ",
                    (true, true) => "  off ",
                };
                println!("{mode}{}", report::table_row(&m, false));
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
    doc["scenarios"] = results.iter().map(Measured::to_json).collect();
    doc["overheads"] = overheads.into();
    Ok(())
}

/// `--kv-leases N,…`: placement's load on NATS, one fresh nats-server per size.
async fn kv_runs(args: &Args, leases: &[usize]) -> anyhow::Result<()> {
    if args.lease < 0.4 || leases.contains(&0) {
        bail!("--lease: at least 0.4 s; --kv-leases: at least one lease");
    }
    let clk_tck = procs::clock_ticks();
    let (lease, warmup, duration) = (
        Duration::from_secs_f64(args.lease),
        Duration::from_secs_f64(args.warmup),
        Duration::from_secs_f64(args.duration),
    );
    if !args.json {
        println!("{}", kv::TABLE_HEADER);
    }
    let mut out = Vec::new();
    for &n in leases {
        eprintln!("{n} leases of {lease:?}, renewed every {:?}", lease / 4);
        let r = kv::run(n, lease, warmup, duration, clk_tck)
            .await
            .with_context(|| format!("{n} leases"))?;
        if args.json {
            out.push(r.to_json());
        } else {
            println!("{}", kv::table_row(&r));
        }
    }
    if args.json {
        let doc = serde_json::json!({"lease_s": args.lease, "kv_leases": out});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

/// `--nodes 1,2,3`: every scenario on a cluster of each size.
async fn node_runs(
    ctx: &mut Ctx,
    args: &Args,
    nodes: &[usize],
    sizes: &[Scenario],
    doc: &mut serde_json::Value,
) -> anyhow::Result<()> {
    if nodes.contains(&0) {
        bail!("--nodes: at least one node");
    }
    if !args.json {
        println!("nodes {}", report::TABLE_HEADER);
    }
    let mut results = Vec::new();
    for &n in nodes {
        ctx.nodes = n;
        for sc in sizes {
            eprintln!(
                "{n} node(s), scenario {}x{}: {} cameras, {} viewers",
                sc.cameras, sc.viewers, sc.cameras, sc.viewers
            );
            let m = run::hearth(ctx, *sc, false)
                .await
                .with_context(|| format!("{n} nodes, scenario {}x{}", sc.cameras, sc.viewers))?;
            if !args.json {
                println!("{n:>5} {}", report::table_row(&m, false));
            }
            let mut j = m.to_json();
            j["nodes"] = n.into();
            results.push(j);
        }
    }
    doc["nodes"] = results.into();
    Ok(())
}

/// `--peer nginx`: per scenario, `--pairs` pairs of runs, Hearth and nginx, the order
/// alternating from pair to pair so that neither always runs first (on a shared
/// machine, load from other jobs drifts; a fixed order would turn that drift into a
/// bias for one server). Each run gets a fresh server and fresh publishers.
async fn peer_runs(
    ctx: &Ctx,
    args: &Args,
    sizes: &[Scenario],
    doc: &mut serde_json::Value,
) -> anyhow::Result<()> {
    if !args.json {
        println!(
            "nginx {} with ngx_rtmp_module, worker_processes {}, HLS on tmpfs, sendfile; \
             ratios: >1 means Hearth did better (n/h = nginx/Hearth for costs, \
             h/n = Hearth/nginx for yields)",
            nginx_version(&args.nginx),
            args.nginx_workers
        );
        println!(
            "pair  server {}{}",
            report::TABLE_HEADER,
            report::FILES_HEADER
        );
    }
    let (mut runs, mut pairs, mut medians) = (Vec::new(), Vec::new(), Vec::new());
    for sc in sizes {
        let mut ratios = Vec::new();
        for pair in 1..=args.pairs {
            let order = if pair % 2 == 1 {
                [ServerKind::Hearth, ServerKind::Nginx]
            } else {
                [ServerKind::Nginx, ServerKind::Hearth]
            };
            let mut hearth = None;
            let mut nginx = None;
            for kind in order {
                eprintln!(
                    "scenario {}x{}, pair {pair}/{}: {}",
                    sc.cameras,
                    sc.viewers,
                    args.pairs,
                    kind.name()
                );
                let m = match kind {
                    ServerKind::Hearth => run::hearth(ctx, *sc, false).await,
                    ServerKind::Nginx => run::nginx(ctx, *sc).await,
                }
                .with_context(|| {
                    format!("scenario {}x{} on {}", sc.cameras, sc.viewers, kind.name())
                })?;
                if !args.json {
                    println!(
                        "{pair:>4}  {:<6} {}",
                        kind.name(),
                        report::table_row(&m, true)
                    );
                }
                match kind {
                    ServerKind::Hearth => hearth = Some(m),
                    ServerKind::Nginx => nginx = Some(m),
                }
            }
            let (Some(h), Some(n)) = (hearth, nginx) else {
                unreachable!("both servers ran")
            };
            let mut r = PeerRatios::of(&h, &n);
            if ctx.playlists_only {
                // The bytes are playlists, whose size differs by server: meaningless.
                r.cpu_per_gbit = None;
            }
            if !args.json {
                println!(
                    "pair {pair} {}x{} ({} first): {}",
                    sc.cameras,
                    sc.viewers,
                    order[0].name(),
                    r.line()
                );
            }
            pairs.push(json!({
                "cameras": sc.cameras,
                "viewers": sc.viewers,
                "pair": pair,
                "first": order[0].name(),
                "ratios": r.to_json(),
            }));
            ratios.push(r);
            runs.push(h);
            runs.push(n);
        }
        let m = PeerRatios::median_of(&ratios);
        if !args.json {
            println!(
                "median of {} pairs {}x{}: {}",
                ratios.len(),
                sc.cameras,
                sc.viewers,
                m.line()
            );
        }
        medians.push(json!({
            "cameras": sc.cameras,
            "viewers": sc.viewers,
            "pairs": ratios.len(),
            "ratios": m.to_json(),
        }));
    }
    doc["peer"] = json!({
        "name": "nginx",
        "version": nginx_version(&args.nginx),
        "worker_processes": args.nginx_workers,
        "ratios_note": "every ratio is oriented so that >1 means Hearth did better",
    });
    doc["scenarios"] = runs.iter().map(Measured::to_json).collect();
    doc["pairs"] = pairs.into();
    doc["medians"] = medians.into();
    Ok(())
}

/// `nginx/1.22.1`, from `nginx -v`.
fn nginx_version(nginx: &std::path::Path) -> String {
    std::process::Command::new(nginx)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            Some(err.trim().rsplit_once(": ")?.1.to_string())
        })
        .unwrap_or_else(|| "(version unknown)".into())
}
