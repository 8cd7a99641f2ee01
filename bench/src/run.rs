//! One measured run of a scenario against one server: Hearth (provisioned through its
//! admin CLI and API) or the nginx-rtmp peer. Both get the same publishers (the same
//! FLV, `ffmpeg -re -stream_loop -1 -c copy`) and the same viewer loop, and are
//! measured by the same code ([`measure`]).

use crate::nginx::Nginx;
use crate::procs::{self, Reaped, Server};
use crate::report::{Measured, ServerKind, percentile};
use crate::viewer::{Counters, Flavour, Source, Viewer};
use crate::{Ctx, Scenario};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub const PASSWORD: &str = "bench password 1234";

/// A fresh `hearth serve` with one user per `per_user` cameras, the cameras, and a
/// session token per user (Argon2 login is setup, not load: viewers share them).
pub struct HearthRig {
    pub server: Server,
    /// With `--nodes N`: the other N - 1 nodes, then what they share.
    pub others: Vec<Server>,
    _backing: Option<crate::cluster::Backing>,
    /// (camera id, RTMP ingest URL)
    pub cameras: Vec<(String, String)>,
    pub tokens: Vec<String>,
    per_user: usize,
    /// For setup requests; viewers get their own client.
    client: reqwest::Client,
}

impl HearthRig {
    /// `unguarded` sets `HEARTH_BENCH_UNGUARDED=1` in the server's environment, on top
    /// of `--hearth-env`.
    pub async fn provision(ctx: &Ctx, cameras: usize, unguarded: bool) -> anyhow::Result<Self> {
        let extra: &[(&str, &str)] = if unguarded {
            &[("HEARTH_BENCH_UNGUARDED", "1")]
        } else {
            &[]
        };
        Self::provision_with(ctx, cameras, extra).await
    }

    /// [`HearthRig::provision`] with `extra` added to the server's environment.
    pub async fn provision_with(
        ctx: &Ctx,
        cameras: usize,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut env: Vec<(&str, &str)> = ctx
            .hearth_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra);
        let backing = (ctx.nodes > 1)
            .then(crate::cluster::Backing::start)
            .transpose()?;
        if let Some(b) = &backing {
            env.extend(b.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let server = Server::start(&ctx.hearth, &env)?;
        let others = (1..ctx.nodes)
            .map(|_| Server::start(&ctx.hearth, &env))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let users: Vec<String> = (0..cameras.div_ceil(ctx.per_user))
            .map(|u| format!("household{u}@bench.invalid"))
            .collect();
        for email in &users {
            server.admin(&["user", "add", "--email", email], &format!("{PASSWORD}\n"))?;
        }
        let mut cams = Vec::new();
        for c in 0..cameras {
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
            // Camera c publishes to node c mod N.
            let mut ingest = field("ingest ")?;
            if c % ctx.nodes != 0 {
                let node = &others[c % ctx.nodes - 1];
                ingest = ingest.replace(
                    &format!(":{}/", server.rtmp.port()),
                    &format!(":{}/", node.rtmp.port()),
                );
            }
            cams.push((field("camera ")?, ingest));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        let mut tokens = Vec::new();
        for email in &users {
            tokens.push(login(&client, &server.base, email).await?);
        }
        Ok(Self {
            server,
            others,
            _backing: backing,
            cameras: cams,
            tokens,
            per_user: ctx.per_user,
            client,
        })
    }

    /// Starts one publisher per camera.
    pub fn publish(&self, ctx: &Ctx) -> anyhow::Result<Vec<Reaped>> {
        self.cameras
            .iter()
            .map(|(_, url)| procs::publisher(&ctx.source, url))
            .collect()
    }

    /// Waits until every camera is online and has published a segment, and checks
    /// that segments are encrypted exactly when `encrypted` says.
    pub async fn wait_segmenting(
        &self,
        publishers: &mut [Reaped],
        encrypted: bool,
    ) -> anyhow::Result<()> {
        let (client, base) = (&self.client, &self.server.base);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let online = cameras_online(client, base, &self.tokens).await?;
            if online == self.cameras.len() {
                break;
            }
            let dead = publishers.iter_mut().filter_map(|p| p.exited()).count();
            if dead > 0 || Instant::now() > deadline {
                bail!(
                    "only {online}/{} cameras came online ({dead} publishers exited); server log:\n{}",
                    self.cameras.len(),
                    self.server.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for (i, (id, _)) in self.cameras.iter().enumerate() {
            let token = &self.tokens[i / self.per_user];
            let is_encrypted = wait_first_segment(client, base, token, id, deadline)
                .await
                .with_context(|| self.server.log_tail(40))?;
            // The switch is compiled in only with `bench-switches`: make sure it took.
            if !encrypted && is_encrypted {
                bail!(
                    "HEARTH_BENCH_UNGUARDED=1 had no effect (segments are still encrypted): \
                     build hearth with `cargo build --release -p hearth-server --features \
                     bench-switches`"
                );
            }
            if encrypted && !is_encrypted {
                bail!("the guarded server lists no EXT-X-KEY: is HEARTH_BENCH_UNGUARDED set?");
            }
        }
        Ok(())
    }

    /// The session token of camera `cam`'s household.
    pub fn token_for(&self, cam: usize) -> &str {
        &self.tokens[cam / self.per_user]
    }

    /// What a viewer of camera `cam` plays.
    pub fn source(&self, cam: usize, flavour: Flavour) -> Source {
        self.source_on(0, cam, flavour)
    }

    /// What a viewer of camera `cam` plays on node `node` mod N.
    pub fn source_on(&self, node: usize, cam: usize, flavour: Flavour) -> Source {
        let n = node % (1 + self.others.len());
        let base = if n == 0 {
            &self.server.base
        } else {
            &self.others[n - 1].base
        };
        Source::Hearth {
            base: base.clone(),
            camera_id: self.cameras[cam].0.clone(),
            token: self.tokens[cam / self.per_user].clone(),
            flavour,
        }
    }
}

pub async fn login(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
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

/// The server being measured.
pub enum Under<'a> {
    /// A node, and the processes of the other nodes of its cluster (with `--nodes`).
    Hearth(&'a mut Server, Vec<u32>),
    Nginx(&'a mut Nginx),
}

impl Under<'_> {
    fn kind(&self) -> ServerKind {
        match self {
            Under::Hearth(..) => ServerKind::Hearth,
            Under::Nginx(_) => ServerKind::Nginx,
        }
    }

    /// Every process of the server: Hearth is one, nginx a master and its workers.
    fn pids(&self) -> Vec<u32> {
        match self {
            Under::Hearth(s, others) => std::iter::once(s.proc.pid())
                .chain(others.iter().copied())
                .collect(),
            Under::Nginx(n) => n.pids(),
        }
    }

    /// `Err` with the log if the server has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        let (status, log) = match self {
            Under::Hearth(s, _) => (s.proc.exited(), s.log_tail(40)),
            Under::Nginx(n) => (n.exited(), n.log_tail(40)),
        };
        match status {
            Some(status) => bail!("the server exited during the run ({status}); log:\n{log}"),
            None => Ok(()),
        }
    }
}

/// Runs the scenario on a fresh Hearth. `unguarded` sets `HEARTH_BENCH_UNGUARDED=1`.
pub async fn hearth(ctx: &Ctx, sc: Scenario, unguarded: bool) -> anyhow::Result<Measured> {
    let mut rig = HearthRig::provision(ctx, sc.cameras, unguarded).await?;
    let mut publishers = rig.publish(ctx)?;
    rig.wait_segmenting(&mut publishers, !unguarded).await?;
    eprintln!("  all {} cameras online and segmenting", sc.cameras);
    // Viewer v watches camera c = v mod C. Its node turns with each round of C
    // viewers, starting after the camera's own (c mod N): viewers spread evenly,
    // (N - 1)/N of them on a node that relays their camera, as behind a load
    // balancer that knows nothing of cameras.
    let sources = (0..sc.viewers)
        .map(|v| {
            let cam = v % sc.cameras;
            rig.source_on(cam + 1 + v / sc.cameras, cam, ctx.flavour)
        })
        .collect();
    let mut pids: Vec<u32> = rig.others.iter().map(|s| s.proc.pid()).collect();
    if let Some(b) = &rig._backing {
        pids.push(b.nats.pid());
    }
    let mut m = measure(
        ctx,
        sc,
        &mut Under::Hearth(&mut rig.server, pids),
        &mut publishers,
        sources,
    )
    .await
    .with_context(|| rig.server.log_tail(40))?;
    m.unguarded = unguarded;
    m.flavour = ctx.flavour;
    // Publishers go first, then the server and its dir.
    drop(publishers);
    drop(rig);
    Ok(m)
}

/// Runs the scenario on a fresh nginx-rtmp.
pub async fn nginx(ctx: &Ctx, sc: Scenario) -> anyhow::Result<Measured> {
    let mut nginx = Nginx::start(&ctx.nginx)?;
    let mut publishers = (0..sc.cameras)
        .map(|c| procs::publisher(&ctx.source, &nginx.ingest_url(c)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Ready when every camera's playlist lists a fragment.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in 0..sc.cameras {
        loop {
            let r = client.get(nginx.playlist_url(c)).send().await?;
            if r.status().is_success() && r.text().await?.contains(".ts") {
                break;
            }
            let dead = publishers.iter_mut().filter_map(|p| p.exited()).count();
            if dead > 0 || Instant::now() > deadline {
                bail!(
                    "camera {c} has no HLS fragment ({dead} publishers exited); nginx log:\n{}",
                    nginx.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    eprintln!("  all {} cameras segmenting", sc.cameras);
    let sources = (0..sc.viewers)
        .map(|v| Source::Plain {
            playlist_url: nginx.playlist_url(v % sc.cameras),
        })
        .collect();
    let m = measure(
        ctx,
        sc,
        &mut Under::Nginx(&mut nginx),
        &mut publishers,
        sources,
    )
    .await?;
    drop(publishers);
    drop(nginx);
    Ok(m)
}

/// A client for viewers: one pooled keep-alive connection per viewer.
pub fn viewer_client(viewers: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(viewers.clamp(8, 4096))
        .timeout(Duration::from_secs(20))
        .build()?)
}

/// Spawns a viewer per source, their starts spread over one poll interval from
/// `start` (golden-ratio sequence, continued from `first_index`).
pub fn spawn_viewers(
    set: &mut JoinSet<()>,
    ctx: &Ctx,
    client: &reqwest::Client,
    counters: &Arc<Counters>,
    sources: Vec<Source>,
    first_index: usize,
    start: Instant,
) {
    let poll = ctx.poll;
    for (i, source) in sources.into_iter().enumerate() {
        let jitter = ((first_index + i) as f64 * 0.618_033_988_75).fract();
        set.spawn(
            Viewer {
                client: client.clone(),
                counters: counters.clone(),
                source,
                start: start + poll.mul_f64(jitter),
                poll,
                segments: !ctx.playlists_only,
            }
            .run(),
        );
    }
}

/// CPU ticks of the server, the publishers and this process.
struct CpuSample {
    at: Instant,
    server: u64,
    server_pids: Vec<u32>,
    publishers: u64,
    bench: u64,
    machine: u64,
}

fn sample_cpu(under: &Under, publishers: &[Reaped]) -> CpuSample {
    let server_pids = under.pids();
    CpuSample {
        at: Instant::now(),
        server: server_pids
            .iter()
            .filter_map(|p| procs::cpu_ticks(&p.to_string()))
            .sum(),
        server_pids,
        publishers: publishers
            .iter()
            .filter_map(|p| procs::cpu_ticks(&p.pid().to_string()))
            .sum(),
        bench: procs::cpu_ticks("self").unwrap_or(0),
        machine: procs::machine_busy_ticks().unwrap_or(0),
    }
}

/// Runs one viewer per source against a server whose cameras are publishing: warm-up,
/// then the measured window. Viewers and their connections are gone when it returns.
async fn measure(
    ctx: &Ctx,
    sc: Scenario,
    under: &mut Under<'_>,
    publishers: &mut [Reaped],
    sources: Vec<Source>,
) -> anyhow::Result<Measured> {
    let client = viewer_client(sc.viewers)?;
    let counters = Arc::new(Counters::default());
    let mut viewers = JoinSet::new();
    let start = Instant::now() + Duration::from_millis(100);
    spawn_viewers(&mut viewers, ctx, &client, &counters, sources, 0, start);

    tokio::time::sleep_until(start + ctx.warmup).await;
    let (c0, cpu0) = (counters.snapshot(), sample_cpu(under, publishers));
    eprintln!("  warm-up done, measuring {} s", ctx.duration.as_secs_f64());
    tokio::time::sleep(ctx.duration).await;
    let (c1, cpu1) = (counters.snapshot(), sample_cpu(under, publishers));
    let files_bytes = match under {
        Under::Nginx(n) => Some(n.hls_bytes()),
        Under::Hearth(s, _) => Some(procs::memfd_bytes(s.proc.pid())),
    };
    viewers.abort_all();
    while viewers.join_next().await.is_some() {}
    drop(client);

    under.check_alive()?;
    if cpu0.server_pids != cpu1.server_pids {
        eprintln!(
            "  warning: the server's processes changed during the window ({:?} -> {:?}); \
             its CPU time is not exact",
            cpu0.server_pids, cpu1.server_pids
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

    let sorted = |v: &std::sync::Mutex<Vec<u64>>| {
        let mut v = v.lock().expect("ttfs").clone();
        v.sort_unstable();
        v
    };
    let ttfs = sorted(&counters.ttfs_us);
    let ttfs_after_grant = sorted(&counters.ttfs_after_grant_us);
    let secs = |ticks: u64| ticks as f64 / ctx.clk_tck;
    let peak_rss_kib: Option<u64> = cpu1
        .server_pids
        .iter()
        .map(|&p| procs::peak_rss_kib(p))
        .sum();
    Ok(Measured {
        scenario: sc,
        server: under.kind(),
        flavour: Flavour::Ts,
        unguarded: false,
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
        ttfs_after_grant_p50_ms: percentile(&ttfs_after_grant, 50.0),
        server_cpu_s: secs(cpu1.server.saturating_sub(cpu0.server)),
        server_processes: cpu1.server_pids.len(),
        publishers_cpu_s: secs(cpu1.publishers.saturating_sub(cpu0.publishers)),
        bench_cpu_s: secs(cpu1.bench.saturating_sub(cpu0.bench)),
        machine_cpu_s: secs(cpu1.machine.saturating_sub(cpu0.machine)),
        server_peak_rss_mib: peak_rss_kib.map(|k| k as f64 / 1024.0),
        files_mib: files_bytes.map(|b| b as f64 / (1024.0 * 1024.0)),
        publishers_exited,
    })
}
