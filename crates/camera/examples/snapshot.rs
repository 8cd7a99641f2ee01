//! Writes one encoded frame of a simulated camera as raw H.264 (Annex-B) to stdout, so a
//! person can look at it: `cargo run -p hearth-camera --example snapshot -- NAME TZ |
//! ffmpeg -f h264 -i - -frames:v 1 snapshot.png`

use hearth_camera::{Encoder, SimCameraConfig, signature_for_name};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "Front door".into());
    let tz = args.next().unwrap_or_else(|| "Europe/Berlin".into());
    let sig = signature_for_name(&name);
    let mut encoder = Encoder::new(SimCameraConfig::new(name, tz, sig))?;
    let frame = encoder.next_frame(jiff::Timestamp::now())?;
    std::io::stdout().write_all(&frame.annexb)?;
    Ok(())
}
