//! `--transcode`: what deriving a sub stream from a camera's main stream would
//! cost, per camera: decode 1080p H.264, scale to 640x360, encode that, with the
//! same OpenH264 Hearth already links (its still cache decodes with it, the
//! simulated camera encodes with it). Issue 11 allows it only under a quarter of
//! a core per camera at 1080p.
//!
//! The input is ten seconds of the simulated camera at 1920x1080 (`--fps`), busy
//! (detail changing every frame: a real camera's bitrate), encoded first. Then
//! one thread transcodes it as fast as it can; the thread's CPU time over the
//! video's duration is the share of a core one camera would take. It prints
//! what it measured; it asserts nothing.

use anyhow::{Context, anyhow};
use hearth_camera::{Encoder as SimEncoder, SimCameraConfig};
use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::{YUVBuffer, YUVSource};
use std::time::{Duration, Instant};

const SECONDS: u32 = 10;
const SUB: (usize, usize) = (640, 360);

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // utime and stime are fields 14 and 15, after the command in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks = f.iter().sum::<u64>();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Averages 3x3 blocks of a plane (1920x1080 -> 640x360, 960x540 -> 320x180).
fn scale_plane(src: &[u8], stride: usize, w: usize, h: usize, out: &mut Vec<u8>) {
    for y in 0..h {
        for x in 0..w {
            let mut sum = 0u32;
            for dy in 0..3 {
                let row = &src[(3 * y + dy) * stride..];
                sum +=
                    u32::from(row[3 * x]) + u32::from(row[3 * x + 1]) + u32::from(row[3 * x + 2]);
            }
            out.push((sum / 9) as u8);
        }
    }
}

pub fn run(fps: u32) -> anyhow::Result<()> {
    let mut cfg = SimCameraConfig::new("Transcode", "UTC", 0x5eed);
    (cfg.width, cfg.height, cfg.fps, cfg.busy) = (1920, 1080, fps, true);
    let mut sim = SimEncoder::new(cfg).map_err(|e| anyhow!("{e}"))?;
    let start = jiff::Timestamp::now();
    let mut input = Vec::new();
    for i in 0..fps * SECONDS {
        let at = start + jiff::SignedDuration::from_millis(i64::from(i * 1000 / fps));
        input.push(sim.next_frame(at).map_err(|e| anyhow!("{e}"))?.annexb);
    }
    let bytes: usize = input.iter().map(Vec::len).sum();
    println!(
        "input: 1920x1080 at {fps} fps, {SECONDS} s, {:.2} Mbit/s (the simulated camera, busy)",
        bytes as f64 * 8.0 / f64::from(SECONDS) / 1e6
    );

    let config = EncoderConfig::new()
        .profile(Profile::Baseline)
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(400_000))
        .max_frame_rate(FrameRate::from_hz(fps as f32))
        .intra_frame_period(IntraFramePeriod::from_num_frames(2 * fps))
        .complexity(Complexity::Low)
        .num_threads(1);
    let mut decoder = Decoder::new().context("decoder")?;
    let mut encoder =
        Encoder::with_api_config(OpenH264API::from_source(), config).context("encoder")?;
    let (mut decode, mut scale, mut encode) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut out_bytes, mut frames) = (0usize, 0u32);
    let cpu0 = thread_cpu();
    let wall0 = Instant::now();
    for au in &input {
        let t = Instant::now();
        let Some(yuv) = decoder.decode(au).context("decode")? else {
            continue;
        };
        let (ys, us, _) = yuv.strides();
        let (y, u, v) = (yuv.y(), yuv.u(), yuv.v());
        decode += t.elapsed();
        let t = Instant::now();
        let mut planes = Vec::with_capacity(SUB.0 * SUB.1 * 3 / 2);
        scale_plane(y, ys, SUB.0, SUB.1, &mut planes);
        scale_plane(u, us, SUB.0 / 2, SUB.1 / 2, &mut planes);
        scale_plane(v, us, SUB.0 / 2, SUB.1 / 2, &mut planes);
        let small = YUVBuffer::from_vec(planes, SUB.0, SUB.1);
        scale += t.elapsed();
        let t = Instant::now();
        out_bytes += encoder.encode(&small).context("encode")?.to_vec().len();
        encode += t.elapsed();
        frames += 1;
    }
    let cpu = thread_cpu().saturating_sub(cpu0);
    let wall = wall0.elapsed();
    let video = f64::from(frames) / f64::from(fps);
    println!(
        "transcoded {frames} frames to {}x{} at {:.0} kbit/s",
        SUB.0,
        SUB.1,
        out_bytes as f64 * 8.0 / video / 1000.0
    );
    println!(
        "cost per camera: {:.2} of a core by thread CPU time ({:.2} by wall time); \
         decode {:.0}%, scale {:.0}%, encode {:.0}%",
        cpu.as_secs_f64() / video,
        wall.as_secs_f64() / video,
        100.0 * decode.as_secs_f64() / wall.as_secs_f64(),
        100.0 * scale.as_secs_f64() / wall.as_secs_f64(),
        100.0 * encode.as_secs_f64() / wall.as_secs_f64(),
    );
    Ok(())
}
