//! Prints what one simulated camera costs: draw + encode time per frame and bitrate.
//!
//! `cargo run --release -p hearth-camera --example encode_cost [-- WIDTH HEIGHT FRAMES]`

use std::time::Instant;

use hearth_camera::{Encoder, SimCameraConfig, signature_for_name};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>());
    let width = args.next().transpose()?.unwrap_or(1280);
    let height = args.next().transpose()?.unwrap_or(720);
    let frames = args.next().transpose()?.unwrap_or(300);
    let cfg = SimCameraConfig {
        width,
        height,
        ..SimCameraConfig::new("Bench", "Europe/Berlin", signature_for_name("Bench"))
    };
    let fps = cfg.fps;
    let mut encoder = Encoder::new(cfg)?;
    let start_clock = jiff::Timestamp::now();
    let (mut key_us, mut inter_us, mut keys, mut bytes) = (Vec::new(), Vec::new(), 0, 0usize);
    let total = Instant::now();
    for i in 0..frames {
        // Advance the on-screen clock as a real camera would, so the seconds change.
        let now =
            start_clock + jiff::SignedDuration::from_millis(i64::from(i) * 1000 / i64::from(fps));
        let t = Instant::now();
        let frame = encoder.next_frame(now)?;
        let us = t.elapsed().as_micros() as u64;
        bytes += frame.avcc.len();
        if frame.keyframe {
            keys += 1;
            key_us.push(us);
        } else {
            inter_us.push(us);
        }
    }
    let elapsed = total.elapsed();
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64 / 1000.0;
    let max = |v: &[u64]| *v.iter().max().unwrap_or(&0) as f64 / 1000.0;
    let per_frame_ms = elapsed.as_secs_f64() * 1000.0 / f64::from(frames);
    println!("{width}x{height} @ {fps} fps, {frames} frames ({keys} IDR), one thread");
    println!(
        "  mean per frame  {per_frame_ms:.2} ms  (budget {:.1} ms; {:.1}% of one core)",
        1000.0 / f64::from(fps),
        per_frame_ms * f64::from(fps) / 10.0
    );
    println!(
        "  IDR frames      mean {:.2} ms, max {:.2} ms",
        mean(&key_us),
        max(&key_us)
    );
    println!(
        "  inter frames    mean {:.2} ms, max {:.2} ms",
        mean(&inter_us),
        max(&inter_us)
    );
    println!(
        "  bitrate         {:.0} kbit/s",
        bytes as f64 * 8.0 / (f64::from(frames) / f64::from(fps)) / 1000.0
    );
    Ok(())
}
