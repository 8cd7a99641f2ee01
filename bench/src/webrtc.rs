//! `--webrtc`: WebRTC (WHEP) viewers against a real `hearth serve`.
//!
//! Each scenario `CxV` provisions C cameras publishing the source over RTMP,
//! then opens V WHEP sessions spread over the cameras: each viewer is a str0m
//! peer (the crate Hearth's egress uses) on its own UDP socket, in RTP mode, so
//! it does ICE, DTLS and SRTP but neither depacketizes nor decodes; it counts
//! RTP packets and bytes, and the time from its `POST` to its first RTP packet
//! (the cached keyframe). Hearth runs on core 0 with one runtime worker
//! (`TOKIO_WORKER_THREADS=1`) and this process on the other cores (`taskset`),
//! so Hearth's CPU time is its own; after a warm-up a fixed
//! window is measured: Hearth's CPU, what the viewers received, and Hearth's RSS
//! before the viewers and with them.
//!
//! Viewers per core is V divided by the share of a core Hearth used, which
//! holds while every viewer receives the stream whole: the report prints the
//! delivered bitrate per viewer next to the source's so a client that could not
//! keep up shows.

use crate::Ctx;
use crate::Scenario;
use crate::procs;
use crate::report::percentile;
use crate::run::HearthRig;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Sessions being offered at once while the viewers start.
const OFFERS_IN_FLIGHT: usize = 16;

#[derive(Default)]
struct Counters {
    packets: AtomicU64,
    /// RTP payload bytes.
    payload: AtomicU64,
    /// UDP bytes received (SRTP, RTCP, STUN, DTLS).
    wire: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
}

/// One measured WebRTC scenario.
pub struct Measured {
    pub cameras: usize,
    pub viewers: usize,
    pub connected: u64,
    pub failed: u64,
    pub seconds: f64,
    pub hearth_cpu_s: f64,
    pub packets: u64,
    pub payload_bytes: u64,
    pub wire_bytes: u64,
    pub rss_before_kib: u64,
    pub rss_with_kib: u64,
    pub ttff_us: Vec<u64>,
    pub source_kbit_s: Option<f64>,
}

impl Measured {
    fn core_share(&self) -> f64 {
        self.hearth_cpu_s / self.seconds
    }

    pub fn viewers_per_core(&self) -> Option<f64> {
        (self.core_share() > 0.0).then(|| self.connected as f64 / self.core_share())
    }

    pub fn gbit_s(&self) -> f64 {
        self.wire_bytes as f64 * 8.0 / self.seconds / 1e9
    }

    pub fn cpu_s_per_gbit(&self) -> Option<f64> {
        let gbit = self.wire_bytes as f64 * 8.0 / 1e9;
        (gbit > 0.0).then(|| self.hearth_cpu_s / gbit)
    }

    pub fn kib_per_viewer(&self) -> Option<f64> {
        (self.connected > 0).then(|| {
            (self.rss_with_kib as f64 - self.rss_before_kib as f64) / self.connected as f64
        })
    }

    /// What each connected viewer received, kbit/s of RTP payload.
    pub fn kbit_s_per_viewer(&self) -> Option<f64> {
        (self.connected > 0).then(|| {
            self.payload_bytes as f64 * 8.0 / 1000.0 / self.seconds / self.connected as f64
        })
    }

    pub fn line(&self) -> String {
        let mut sorted = self.ttff_us.clone();
        sorted.sort_unstable();
        let ms = |p| percentile(&sorted, p).map_or("-".into(), |ms| format!("{ms:.0}"));
        let f = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
        format!(
            "{:>3}x{:<5} {:>5}/{:<5} {:>6.1}% {:>9} {:>8.3} {:>9} {:>9} {:>7} {:>7} {:>6}/{:<6}",
            self.cameras,
            self.viewers,
            self.connected,
            self.viewers,
            self.core_share() * 100.0,
            f(self.viewers_per_core(), 0),
            self.gbit_s(),
            f(self.cpu_s_per_gbit(), 3),
            f(self.kib_per_viewer(), 1),
            ms(50.0),
            ms(95.0),
            f(self.kbit_s_per_viewer(), 0),
            f(self.source_kbit_s, 0),
        )
    }

    pub fn to_json(&self) -> Value {
        let mut sorted = self.ttff_us.clone();
        sorted.sort_unstable();
        json!({
            "cameras": self.cameras,
            "viewers": self.viewers,
            "connected": self.connected,
            "failed": self.failed,
            "seconds": self.seconds,
            "hearth_cpu_s": self.hearth_cpu_s,
            "core_share": self.core_share(),
            "viewers_per_core": self.viewers_per_core(),
            "gbit_s": self.gbit_s(),
            "cpu_s_per_gbit": self.cpu_s_per_gbit(),
            "kib_per_viewer": self.kib_per_viewer(),
            "kbit_s_per_viewer": self.kbit_s_per_viewer(),
            "source_kbit_s": self.source_kbit_s,
            "ttff_ms_p50": percentile(&sorted, 50.0),
            "ttff_ms_p95": percentile(&sorted, 95.0),
            "packets": self.packets,
            "rss_before_kib": self.rss_before_kib,
            "rss_with_kib": self.rss_with_kib,
        })
    }
}

pub const TABLE_HEADER: &str = "  CxV        up/asked   hearth  viewers/core  Gbit/s  CPU-s/Gbit  KiB/viewer  TTFF p50/p95 ms  kbit/s viewer/source";

/// Pins `pid` (all its threads) to `cores` with taskset.
fn pin(pid: u32, cores: &str) -> anyhow::Result<()> {
    let ok = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("taskset (util-linux)")?
        .success();
    if !ok {
        bail!("taskset -c {cores} {pid} failed");
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, sc: Scenario, source_kbit_s: Option<f64>) -> anyhow::Result<Measured> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One core for Hearth: its runtime gets one worker, as it would sizing
    // itself on a one-core machine (it sizes itself to the machine otherwise).
    let workers: &[(&str, &str)] = if cores >= 2 {
        &[("TOKIO_WORKER_THREADS", "1")]
    } else {
        &[]
    };
    let rig = HearthRig::provision_with(ctx, sc.cameras, workers).await?;
    let mut publishers = rig.publish(ctx)?;
    rig.wait_segmenting(&mut publishers, true).await?;
    let pid = rig.server.proc.pid();
    if cores >= 2 {
        pin(pid, "0")?;
        pin(std::process::id(), &format!("1-{}", cores - 1))?;
    }
    // Let the GOP cache fill and the pinning settle before the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_before_kib = procs::status_kib(pid, "VmRSS").unwrap_or(0);

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let ttff = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(OFFERS_IN_FLIGHT));
    for v in 0..sc.viewers {
        let cam = v % sc.cameras;
        let (camera, token) = (rig.cameras[cam].0.clone(), rig.token_for(cam).to_string());
        let (client, base) = (client.clone(), rig.server.base.clone());
        let (counters, ttff, stop, sem) =
            (counters.clone(), ttff.clone(), stop_rx.clone(), sem.clone());
        tasks.spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore");
            match start_viewer(&client, &base, &camera, &token).await {
                Ok((rtc, socket, posted)) => {
                    drop(permit);
                    viewer(rtc, socket, posted, counters, ttff, stop).await;
                }
                Err(e) => {
                    drop(permit);
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("viewer {v}: {e:#}");
                }
            }
        });
    }
    // All offered and connected (or given up), then the warm-up.
    let deadline = Instant::now() + Duration::from_secs(120);
    while counters.connected.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed)
        < sc.viewers as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(ctx.warmup).await;

    let snap = |c: &Counters| {
        (
            c.packets.load(Ordering::Relaxed),
            c.payload.load(Ordering::Relaxed),
            c.wire.load(Ordering::Relaxed),
        )
    };
    let t0 = Instant::now();
    let cpu0 = procs::cpu_ticks(&pid.to_string()).context("hearth CPU ticks")?;
    let s0 = snap(&counters);
    tokio::time::sleep(ctx.duration).await;
    let cpu1 = procs::cpu_ticks(&pid.to_string()).context("hearth CPU ticks")?;
    let s1 = snap(&counters);
    let seconds = t0.elapsed().as_secs_f64();
    let rss_with_kib = procs::status_kib(pid, "VmRSS").unwrap_or(0);

    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Some(status) = publishers.iter_mut().find_map(|p| p.exited()) {
        bail!("a publisher exited during the run ({status})");
    }
    let ttff_us = ttff.lock().expect("ttff").clone();
    Ok(Measured {
        cameras: sc.cameras,
        viewers: sc.viewers,
        connected: counters.connected.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        seconds,
        hearth_cpu_s: (cpu1 - cpu0) as f64 / ctx.clk_tck,
        packets: s1.0 - s0.0,
        payload_bytes: s1.1 - s0.1,
        wire_bytes: s1.2 - s0.2,
        rss_before_kib,
        rss_with_kib,
        ttff_us,
        source_kbit_s,
    })
}

/// A grant, an offer, Hearth's answer: a peer ready to connect.
async fn start_viewer(
    client: &reqwest::Client,
    base: &str,
    camera: &str,
    token: &str,
) -> anyhow::Result<(Rtc, UdpSocket, Instant)> {
    let r = client
        .post(format!("{base}/api/v1/cameras/{camera}/streams"))
        .bearer_auth(token)
        .send()
        .await?;
    let g: Value = r.error_for_status()?.json().await?;
    let whep = g["whep_url"].as_str().context("whep_url")?.to_string();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let local = socket.local_addr()?;
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_h264(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().context("no offer")?;
    let posted = Instant::now();
    let r = client
        .post(&whep)
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(offer.to_sdp_string())
        .send()
        .await?;
    if r.status() != 201 {
        bail!("WHEP POST: HTTP {}", r.status());
    }
    let answer = SdpAnswer::from_sdp_string(&r.text().await?)?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    Ok((rtc, socket, posted))
}

/// Drives one peer until `stop`, counting what arrives.
async fn viewer(
    mut rtc: Rtc,
    socket: UdpSocket,
    posted: Instant,
    counters: Arc<Counters>,
    ttff: Arc<std::sync::Mutex<Vec<u64>>>,
    mut stop: watch::Receiver<bool>,
) {
    let local: SocketAddr = match socket.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut buf = vec![0u8; 2048];
    let mut first = true;
    let mut connected = false;
    loop {
        let deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => {
                    connected = true;
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Output::Event(Event::RtpPacket(p))) => {
                    if first {
                        first = false;
                        ttff.lock()
                            .expect("ttff")
                            .push(posted.elapsed().as_micros() as u64);
                    }
                    counters.packets.fetch_add(1, Ordering::Relaxed);
                    counters
                        .payload
                        .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                }
                Ok(Output::Event(_)) => {}
                Err(_) => {
                    if !connected {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { return };
                counters.wire.fetch_add(n as u64, Ordering::Relaxed);
                if let Ok(rcv) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), rcv));
                }
            }
            () = tokio::time::sleep(wait) => {
                let _ = rtc.handle_input(Input::Timeout(Instant::now()));
            }
            _ = stop.changed() => return,
        }
        if !rtc.is_alive() {
            return;
        }
    }
}
