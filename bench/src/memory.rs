//! `--memory`: what a camera and a viewer cost Hearth in resident memory, and whether
//! it comes back when the viewers leave.
//!
//! One server, steps of `--settle` seconds each, RSS read at the end of every step:
//!
//! 0. **idle**: users and C cameras provisioned, nobody publishing;
//! 1. **unwatched**: C publishers, no viewers. Per unwatched camera:
//!    (RSS₁ − RSS₀) / C;
//! 2. **still unwatched**: nothing changes for one more step. RSS₂ − RSS₁ is the drift
//!    of one step (allocator growth, windows still filling): the yardstick for the
//!    differences below;
//! 3. **V viewers** on W of the cameras (viewer *i* on camera *i mod W*);
//! 4. **2V viewers** on the same W cameras. Per viewer: (RSS₄ − RSS₃) / V. A watched
//!    camera's own extra (sealed segments, sessions, …): (RSS₃ − RSS₂ − V × per
//!    viewer) / W;
//! 5. **viewers gone**: all viewers stopped and their connections closed, then one more
//!    settle (grant sessions idle out after 15 s). What of steps 3–4 came back.
//!
//! Memory (`mem`) is `VmRSS` from `/proc/PID/status` plus the sealed segments'
//! memfd pages (`memfd`, the `memfd:hearth-segment` mappings in `/proc/PID/maps`):
//! those are shared memory, outside `VmRSS` unless the process reads them through
//! the mapping (`RssShmem`, subtracted so nothing counts twice). `RssAnon` (heap:
//! buffers, unsealed frames) and `RssFile` (the mapped binary) are shown too. An
//! allocator does not always hand freed memory back, so memory after a drop is an
//! upper bound of what is still in use.

use crate::report::opt;
use crate::run::{self, HearthRig};
use crate::viewer::Counters;
use crate::{Ctx, Scenario, procs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Resident memory of the server at the end of one step, in KiB.
#[derive(Clone, Copy, Default)]
struct Rss {
    /// VmRSS − RssShmem + memfd.
    vm_rss: u64,
    memfd: u64,
    anon: u64,
    file: u64,
    hwm: u64,
}

impl Rss {
    fn of(pid: u32) -> Self {
        let f = |field| procs::status_kib(pid, field).unwrap_or(0);
        let memfd = procs::memfd_bytes(pid) / 1024;
        Self {
            vm_rss: f("VmRSS").saturating_sub(f("RssShmem")) + memfd,
            memfd,
            anon: f("RssAnon"),
            file: f("RssFile"),
            hwm: f("VmHWM"),
        }
    }
}

struct Step {
    name: &'static str,
    publishing: usize,
    watched: usize,
    viewers: usize,
    rss: Rss,
    /// Viewers that had received a segment by the end of the step.
    viewers_started: usize,
}

const MIB: f64 = 1024.0;

/// Per-unit costs in KiB, from VmRSS and from RssAnon.
#[derive(Clone, Copy)]
struct Cost {
    rss_kib: f64,
    anon_kib: f64,
}

impl Cost {
    fn per(a: Rss, b: Rss, minus: Option<Cost>, units: usize) -> Option<Cost> {
        (units > 0).then(|| {
            let m = minus.unwrap_or(Cost {
                rss_kib: 0.0,
                anon_kib: 0.0,
            });
            Cost {
                rss_kib: (b.vm_rss as f64 - a.vm_rss as f64 - m.rss_kib) / units as f64,
                anon_kib: (b.anon as f64 - a.anon as f64 - m.anon_kib) / units as f64,
            }
        })
    }
    fn scaled(self, k: f64) -> Cost {
        Cost {
            rss_kib: self.rss_kib * k,
            anon_kib: self.anon_kib * k,
        }
    }
    fn to_json(self) -> Value {
        json!({ "mem_mib": self.rss_kib / MIB, "rss_anon_mib": self.anon_kib / MIB })
    }
}

/// Runs the memory steps for scenario `sc` (C cameras, V viewers) with `watched`
/// cameras watched. `gop_bytes`: one GOP of the source, for reference.
pub async fn run(
    ctx: &Ctx,
    sc: Scenario,
    watched: usize,
    settle: Duration,
    gop_bytes: Option<f64>,
    print: bool,
) -> anyhow::Result<Value> {
    let watched = watched.clamp(1, sc.cameras);
    let mut rig = HearthRig::provision(ctx, sc.cameras, false).await?;
    let pid = rig.server.proc.pid();
    let mut steps = Vec::new();
    let mut step = |name, publishing, watched, viewers, started| {
        let s = Step {
            name,
            publishing,
            watched,
            viewers,
            rss: Rss::of(pid),
            viewers_started: started,
        };
        eprintln!(
            "  {name}: VmRSS {:.1} MiB (anon {:.1})",
            s.rss.vm_rss as f64 / MIB,
            s.rss.anon as f64 / MIB
        );
        steps.push(s);
    };

    eprintln!(
        "  idle: {} cameras provisioned, none publishing",
        sc.cameras
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    step("idle", 0, 0, 0, 0);

    let mut publishers = rig.publish(ctx)?;
    rig.wait_segmenting(&mut publishers, true).await?;
    eprintln!(
        "  all cameras segmenting; {} s settle",
        settle.as_secs_f64()
    );
    tokio::time::sleep(settle).await;
    step("unwatched", sc.cameras, 0, 0, 0);
    tokio::time::sleep(settle).await;
    step("still unwatched", sc.cameras, 0, 0, 0);

    let client = run::viewer_client(2 * sc.viewers)?;
    let counters = Arc::new(Counters::default());
    let mut viewers = JoinSet::new();
    let sources = |n: usize| {
        (0..n)
            .map(|v| rig.source(v % watched, ctx.flavour))
            .collect::<Vec<_>>()
    };
    let started = |c: &Counters| c.ttfs_us.lock().expect("ttfs").len();
    let start = Instant::now();
    run::spawn_viewers(
        &mut viewers,
        ctx,
        &client,
        &counters,
        sources(sc.viewers),
        0,
        start,
    );
    tokio::time::sleep_until(start + settle).await;
    step(
        "V viewers",
        sc.cameras,
        watched,
        sc.viewers,
        started(&counters),
    );

    let start = Instant::now();
    run::spawn_viewers(
        &mut viewers,
        ctx,
        &client,
        &counters,
        sources(sc.viewers),
        sc.viewers,
        start,
    );
    tokio::time::sleep_until(start + settle).await;
    step(
        "2V viewers",
        sc.cameras,
        watched,
        2 * sc.viewers,
        started(&counters),
    );

    viewers.abort_all();
    while viewers.join_next().await.is_some() {}
    drop(client);
    tokio::time::sleep(settle).await;
    step("viewers gone", sc.cameras, 0, 0, 0);
    let errors = counters.snapshot().errors;
    if errors > 0 {
        eprintln!("  {errors} viewer errors");
    }
    if let Some(status) = rig.server.proc.exited() {
        anyhow::bail!(
            "hearth exited ({status}); log:\n{}",
            rig.server.log_tail(40)
        );
    }
    drop(publishers);
    drop(rig);

    let [idle, unwatched, still, v1, v2, gone] = [0, 1, 2, 3, 4, 5].map(|i| steps[i].rss);
    let per_camera = Cost::per(idle, unwatched, None, sc.cameras);
    let drift_mib = (still.vm_rss as f64 - unwatched.vm_rss as f64) / MIB;
    let per_viewer = Cost::per(v1, v2, None, sc.viewers);
    let per_watched = Cost::per(
        still,
        v1,
        per_viewer.map(|c| c.scaled(sc.viewers as f64)),
        watched,
    );
    // What watching added, if it stands out from the drift (and from page noise).
    let watching = v2.vm_rss as f64 - still.vm_rss as f64;
    let measurable = watching > (drift_mib * MIB).abs().max(MIB);
    let returned = measurable.then(|| (v2.vm_rss as f64 - gone.vm_rss as f64) / watching);

    if print {
        println!(
            "memory {}x{}: {} cameras; {} then {} viewers on {} of them; {} s per step; \
             Hearth playlist {}",
            sc.cameras,
            sc.viewers,
            sc.cameras,
            sc.viewers,
            2 * sc.viewers,
            watched,
            settle.as_secs_f64(),
            ctx.flavour.name(),
        );
        println!(
            "step             publishing  watched  viewers  started    mem MiB  memfd MiB  RssAnon MiB  RssFile MiB  VmHWM MiB"
        );
        for s in &steps {
            println!(
                "{:<15}  {:>10}  {:>7}  {:>7}  {:>7}  {:>9.1}  {:>9.1}  {:>11.1}  {:>11.1}  {:>9.1}",
                s.name,
                s.publishing,
                s.watched,
                s.viewers,
                s.viewers_started,
                s.rss.vm_rss as f64 / MIB,
                s.rss.memfd as f64 / MIB,
                s.rss.anon as f64 / MIB,
                s.rss.file as f64 / MIB,
                s.rss.hwm as f64 / MIB,
            );
        }
        let mib = |c: Option<Cost>, f: fn(Cost) -> f64| opt(c.map(|c| f(c) / MIB), 2);
        // Whole KiB, without a "-0" for a tiny negative.
        let kib = |v: Option<f64>| opt(v.map(|v| if v.abs() < 0.5 { 0.0 } else { v }), 0);
        let gops = |c: Option<Cost>| {
            c.zip(gop_bytes)
                .map(|(c, g)| format!(" = {:.1} GOPs", c.rss_kib * 1024.0 / g))
                .unwrap_or_default()
        };
        println!(
            "per unwatched camera: {} MiB mem ({} MiB anon){}   (unwatched − idle) / {}",
            mib(per_camera, |c| c.rss_kib),
            mib(per_camera, |c| c.anon_kib),
            gops(per_camera),
            sc.cameras
        );
        println!(
            "drift over one step with nothing changed: {drift_mib:+.1} MiB mem   \
             (still unwatched − unwatched)"
        );
        println!(
            "per watched camera, beyond its viewers: {} MiB mem ({} MiB anon){}   \
             (V viewers − still unwatched − {} × per viewer) / {}",
            mib(per_watched, |c| c.rss_kib),
            mib(per_watched, |c| c.anon_kib),
            gops(per_watched),
            sc.viewers,
            watched
        );
        println!(
            "per viewer: {} KiB mem ({} KiB anon)   (2V viewers − V viewers) / {}",
            kib(per_viewer.map(|c| c.rss_kib)),
            kib(per_viewer.map(|c| c.anon_kib)),
            sc.viewers
        );
        println!(
            "after the viewers left: {:+.1} MiB mem against still unwatched; {}",
            (gone.vm_rss as f64 - still.vm_rss as f64) / MIB,
            returned.map_or_else(
                || format!(
                    "watching added {:+.1} MiB, within the drift (or under 1 MiB): \
                     too little to tell what came back",
                    watching / MIB
                ),
                |r| format!("{:.0}% of what watching added came back", r * 100.0)
            ),
        );
        if let Some(g) = gop_bytes {
            println!("one GOP of the source (2 s): {:.2} MiB", g / (MIB * MIB));
        }
    }

    Ok(json!({
        "cameras": sc.cameras,
        "viewers": sc.viewers,
        "watched": watched,
        "settle_s": settle.as_secs_f64(),
        "playlist": ctx.flavour.name(),
        "steps": steps.iter().map(|s| json!({
            "step": s.name,
            "publishing": s.publishing,
            "watched": s.watched,
            "viewers": s.viewers,
            "viewers_started": s.viewers_started,
            "mem_mib": s.rss.vm_rss as f64 / MIB,
            "memfd_mib": s.rss.memfd as f64 / MIB,
            "rss_anon_mib": s.rss.anon as f64 / MIB,
            "rss_file_mib": s.rss.file as f64 / MIB,
            "vm_hwm_mib": s.rss.hwm as f64 / MIB,
        })).collect::<Vec<_>>(),
        "per_unwatched_camera": per_camera.map(Cost::to_json),
        "per_watched_camera_beyond_viewers": per_watched.map(Cost::to_json),
        "per_viewer": per_viewer.map(Cost::to_json),
        "drift_one_step_mib": drift_mib,
        "after_viewers_left_vs_still_unwatched_mib": (gone.vm_rss as f64 - still.vm_rss as f64) / MIB,
        "returned_fraction": returned,
        "gop_mib": gop_bytes.map(|g| g / (MIB * MIB)),
        "viewer_errors": errors,
    }))
}
