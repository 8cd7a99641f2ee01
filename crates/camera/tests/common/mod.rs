//! Helpers shared by the integration tests: running the real ffmpeg/ffprobe.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// Panics with a clear message if `tool` (ffmpeg or ffprobe) cannot be run.
pub fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{tool}` is required by this test but could not be run; install it \
         (Debian: `apt-get install ffmpeg`)"
    );
}

/// Runs ffmpeg with `args`, feeding `input` on stdin, and returns stdout.
/// Panics with ffmpeg's stderr on failure.
pub fn ffmpeg(args: &[&str], input: &[u8]) -> Vec<u8> {
    require("ffmpeg");
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Write on another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for ffmpeg");
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decodes a raw H.264 Annex-B stream to RGB24 frames of `width` x `height` (scaling if
/// that differs from the coded size).
pub fn decode_h264_to_rgb(annexb: &[u8], width: u32, height: u32) -> Vec<Vec<u8>> {
    let scale = format!("scale={width}:{height}");
    let raw = ffmpeg(
        &[
            "-f", "h264", "-i", "-", "-vf", &scale, "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        annexb,
    );
    let frame_len = (width * height * 3) as usize;
    assert_eq!(raw.len() % frame_len, 0, "partial frame from ffmpeg");
    raw.chunks_exact(frame_len).map(<[u8]>::to_vec).collect()
}

/// ffprobe's JSON for `path` (streams and, if `count_frames`, decoded frame counts).
pub fn ffprobe_json(path: &std::path::Path) -> String {
    require("ffprobe");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
