//! `--rtsp-pull`: what pulling IP cameras over RTSP costs Hearth, per camera.
//!
//! A source Hearth (process A) takes one camera from an ffmpeg publisher (the
//! pre-encoded source, `--video-size`/`--fps`/`--bitrate`) and restreams it over
//! RTSP with a viewer key. The Hearth under test (process B) is given N cameras,
//! each an RTSP source pointing at that restream (`POST /api/v1/cameras` with
//! `rtsp_url`), so it pulls N real RTSP sessions (Digest auth, RTP interleaved
//! over TCP, retina) and runs N hubs: segmenting, stamping, encryption, LL-HLS
//! parts, with no viewers. After a warm-up it measures, over the window:
//!
//! - B's CPU (utime + stime): cameras per core = N / cores used;
//! - the bytes loopback carried (`/proc/net/dev`, `lo`): the N restreams into
//!   B plus the one publisher into A (and a few API requests), so the ingest
//!   rate, over-counted by one camera;
//! - B's memory (VmRSS) after the cameras came online, against before they were
//!   added: memory per camera.
//!
//! A's CPU is printed too (it is the camera side, not Hearth's ingest). All N
//! cameras carry the same picture; that costs B what N different ones would.

use crate::procs::{self, Server};
use crate::run::{HearthRig, PASSWORD, login};
use crate::{Ctx, Scenario};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// Cameras per user of the puller (a household holds at most 256).
const PER_USER: usize = 200;

/// Bytes received on the loopback interface so far.
fn loopback_bytes() -> Option<u64> {
    let dev = std::fs::read_to_string("/proc/net/dev").ok()?;
    dev.lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

pub async fn run(ctx: &Ctx, sc: Scenario) -> anyhow::Result<Value> {
    // The camera side: one camera, restreamed with a viewer key.
    let source = HearthRig::provision(ctx, 1, false).await?;
    let mut publishers = source.publish(ctx)?;
    source.wait_segmenting(&mut publishers, true).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let camera = &source.cameras[0].0;
    let key: Value = client
        .post(format!("{}/api/v1/viewer-keys", source.server.base))
        .bearer_auth(source.token_for(0))
        .json(&json!({"name": "bench", "cameras": [camera]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let rtsp_url = key["urls"][0]["rtsp_url"]
        .as_str()
        .context("the source Hearth has no RTSP listener")?
        .to_string();

    // The Hearth under test.
    let env: Vec<(&str, &str)> = ctx
        .hearth_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let puller = Server::start(&ctx.hearth, &env)?;
    let pid = puller.proc.pid();
    let mut tokens = Vec::new();
    for u in 0..sc.cameras.div_ceil(PER_USER) {
        let email = format!("puller{u}@bench.invalid");
        puller.admin(
            &["user", "add", "--email", &email],
            &format!("{PASSWORD}\n"),
        )?;
        tokens.push(login(&client, &puller.base, &email).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = procs::status_kib(pid, "VmRSS").unwrap_or(0);
    let added = Instant::now();
    for c in 0..sc.cameras {
        client
            .post(format!("{}/api/v1/cameras", puller.base))
            .bearer_auth(&tokens[c / PER_USER])
            .json(&json!({"name": format!("pulled {c}"), "rtsp_url": rtsp_url}))
            .send()
            .await?
            .error_for_status()?;
    }
    let deadline = Instant::now() + Duration::from_secs(60 + sc.cameras as u64 / 4);
    loop {
        let mut online = 0;
        for t in &tokens {
            let cams: Vec<Value> = client
                .get(format!("{}/api/v1/cameras", puller.base))
                .bearer_auth(t)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            online += cams.iter().filter(|c| c["status"] == "online").count();
        }
        if online == sc.cameras {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {online}/{} pulled cameras came online; log:\n{}",
                sc.cameras,
                puller.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let online_after = added.elapsed();
    tokio::time::sleep(ctx.warmup).await;

    let (b, a) = (pid.to_string(), source.server.proc.pid().to_string());
    let (b0, a0, r0) = (
        procs::cpu_ticks(&b).context("puller CPU")?,
        procs::cpu_ticks(&a).context("source CPU")?,
        loopback_bytes().context("/proc/net/dev")?,
    );
    let t0 = Instant::now();
    tokio::time::sleep(ctx.duration).await;
    let secs = t0.elapsed().as_secs_f64();
    let (b1, a1, r1) = (
        procs::cpu_ticks(&b).context("puller CPU")?,
        procs::cpu_ticks(&a).context("source CPU")?,
        loopback_bytes().context("/proc/net/dev")?,
    );
    let rss_after = procs::status_kib(pid, "VmRSS").unwrap_or(0);
    let cores = (b1 - b0) as f64 / ctx.clk_tck / secs;
    let source_cores = (a1 - a0) as f64 / ctx.clk_tck / secs;
    let mbit = (r1 - r0) as f64 * 8.0 / secs / 1e6;
    drop(publishers);
    Ok(json!({
        "cameras": sc.cameras,
        "online_after_s": online_after.as_secs_f64(),
        "window_s": secs,
        "ingest_mbit_s": mbit,
        "mbit_s_per_camera": mbit / sc.cameras as f64,
        "puller_cores": cores,
        "cameras_per_core": if cores > 0.0 { sc.cameras as f64 / cores } else { f64::INFINITY },
        "mbit_s_per_core": if cores > 0.0 { mbit / cores } else { f64::INFINITY },
        "rss_per_camera_kib": rss_after.saturating_sub(rss_before) as f64 / sc.cameras as f64,
        "puller_rss_mib": rss_after as f64 / 1024.0,
        "source_cores": source_cores,
    }))
}

/// One line per scenario.
pub fn print(rows: &[Value]) {
    println!(
        "{:>7} {:>9} {:>10} {:>9} {:>10} {:>11} {:>11} {:>9}",
        "cameras",
        "Mbit/s",
        "Mbit/s/cam",
        "cores",
        "cams/core",
        "Mbit/s/core",
        "KiB/camera",
        "source"
    );
    for r in rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>7} {:>9.1} {:>10.2} {:>9.3} {:>10.0} {:>11.0} {:>11.0} {:>9.3}",
            r["cameras"],
            f("ingest_mbit_s"),
            f("mbit_s_per_camera"),
            f("puller_cores"),
            f("cameras_per_core"),
            f("mbit_s_per_core"),
            f("rss_per_camera_kib"),
            f("source_cores"),
        );
    }
}
