//! The signature round trip through a real decoder: encode with our OpenH264 encoder,
//! decode with ffmpeg (as Hearth's HLS and snapshot tests will), read the signature back.

mod common;

use hearth_camera::{
    EncodedFrame, Encoder, SimCameraConfig, expected_background, flv, read_capture_time,
    read_signature, signature_for, signature_for_name,
};
use hearth_model::CameraId;

const FRAMES: usize = 40; // crosses the 2 s IDR at frame 30

fn encode(name: &str, signature: u32, width: u32, height: u32) -> Vec<EncodedFrame> {
    let cfg = SimCameraConfig {
        width,
        height,
        ..SimCameraConfig::new(name, "Europe/Berlin", signature)
    };
    let mut encoder = Encoder::new(cfg).unwrap();
    let start: jiff::Timestamp = "2025-06-01T12:00:00Z".parse().unwrap();
    (0..FRAMES)
        .map(|i| {
            let now = start + jiff::SignedDuration::from_millis(i as i64 * 66);
            encoder.next_frame(now).unwrap()
        })
        .collect()
}

fn annexb(frames: &[EncodedFrame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| f.annexb.iter().copied())
        .collect()
}

fn signatures() -> Vec<(String, u32)> {
    let id = CameraId::from_bytes(*b"0123456789abcdef");
    vec![
        ("Porch".into(), signature_for_name("Porch")),
        ("Kinderzimmer Süd".into(), signature_for(&id)),
        ("all ones".into(), u32::MAX),
        ("all zeros".into(), 0),
    ]
}

fn assert_background(rgb: &[u8], width: u32, height: u32, signature: u32) {
    // Right-hand middle of the picture is plain background.
    let p = (((height / 2) * width + width * 9 / 10) * 3) as usize;
    let want = expected_background(signature);
    for c in 0..3 {
        assert!(
            rgb[p + c].abs_diff(want[c]) <= 8,
            "background {:?}, expected {want:?}",
            &rgb[p..p + 3]
        );
    }
}

#[test]
fn signature_survives_h264_at_full_size() {
    for (name, sig) in signatures() {
        let frames = encode(&name, sig, 1280, 720);
        let decoded = common::decode_h264_to_rgb(&annexb(&frames), 1280, 720);
        assert_eq!(decoded.len(), FRAMES, "{name}: every frame decodes");
        for (i, rgb) in decoded.iter().enumerate() {
            assert_eq!(
                read_signature(rgb, 1280, 720),
                Some(sig),
                "{name} frame {i}"
            );
        }
        assert_background(&decoded[0], 1280, 720, sig);
        assert_background(&decoded[FRAMES - 1], 1280, 720, sig);
    }
}

/// The clock strip (capture time, redrawn every frame) survives inter-frame
/// coding and scaling, so a viewer can read glass-to-glass latency off the pixels.
#[test]
fn capture_time_survives_h264_and_scaling() {
    let sig = signature_for_name("Porch");
    for (cw, ch) in [(1280, 720), (640, 360)] {
        let frames = encode("Porch", sig, cw, ch);
        let stream = annexb(&frames);
        for (w, h) in [(cw, ch), (320, 180)] {
            let decoded = common::decode_h264_to_rgb(&stream, w, h);
            assert_eq!(decoded.len(), FRAMES);
            for (i, rgb) in decoded.iter().enumerate() {
                let want = frames[i].capture_time.0;
                assert_eq!(
                    read_capture_time(rgb, w, h, want + 3_000),
                    Some(want),
                    "{cw}x{ch} shown at {w}x{h}, frame {i}"
                );
            }
        }
    }
}

#[test]
fn signature_survives_downscaling() {
    for (name, sig) in signatures() {
        let frames = encode(&name, sig, 1280, 720);
        let stream = annexb(&frames);
        for (w, h) in [(640, 360), (320, 180), (160, 90), (480, 360)] {
            let decoded = common::decode_h264_to_rgb(&stream, w, h);
            assert_eq!(decoded.len(), FRAMES);
            for (i, rgb) in decoded.iter().enumerate() {
                assert_eq!(
                    read_signature(rgb, w, h),
                    Some(sig),
                    "{name} {w}x{h} frame {i}"
                );
            }
            assert_background(&decoded[0], w, h, sig);
        }
    }
}

#[test]
fn signature_survives_a_small_camera_and_upscaling() {
    let sig = signature_for_name("Garage");
    let frames = encode("Garage", sig, 640, 360);
    let stream = annexb(&frames);
    for (w, h) in [(640, 360), (1920, 1080)] {
        let decoded = common::decode_h264_to_rgb(&stream, w, h);
        assert!(
            decoded
                .iter()
                .all(|rgb| read_signature(rgb, w, h) == Some(sig)),
            "{w}x{h}"
        );
    }
}

#[test]
fn signature_survives_jpeg_snapshots_and_thumbnails() {
    let sig = signature_for_name("Driveway");
    let stream = annexb(&encode("Driveway", sig, 1280, 720));
    // Snapshot the last frame (an inter frame) as a JPEG, scaled down the way a snapshot
    // or thumbnail would be made, then decode that JPEG.
    for (w, h, quality) in [(1280, 720, "5"), (480, 270, "12"), (160, 90, "20")] {
        let filter = format!("select=eq(n\\,39),scale={w}:{h}");
        let jpeg = common::ffmpeg(
            &[
                "-f",
                "h264",
                "-i",
                "-",
                "-vf",
                &filter,
                "-frames:v",
                "1",
                "-q:v",
                quality,
                "-f",
                "image2pipe",
                "-c:v",
                "mjpeg",
                "-",
            ],
            &stream,
        );
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
        let rgb = common::ffmpeg(
            &[
                "-f",
                "image2pipe",
                "-c:v",
                "mjpeg",
                "-i",
                "-",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-",
            ],
            &jpeg,
        );
        assert_eq!(rgb.len(), (w * h * 3) as usize);
        assert_eq!(read_signature(&rgb, w, h), Some(sig), "{w}x{h} q{quality}");
    }
}

#[test]
fn foreign_video_has_no_signature() {
    // ffmpeg's own test patterns: colour bars, gradients, noise. None may read as a camera.
    for src in [
        "testsrc=size=640x360",
        "smptebars=size=640x360",
        "mandelbrot=size=640x360",
        "color=c=white:size=640x360",
    ] {
        let rgb = common::ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                src,
                "-frames:v",
                "3",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-",
            ],
            &[],
        );
        for frame in rgb.chunks_exact(640 * 360 * 3) {
            assert_eq!(read_signature(frame, 640, 360), None, "{src}");
        }
    }
}

/// Wraps the encoder's FLV tag payloads in an FLV file (the same payloads RTMP carries)
/// and has ffmpeg's FLV demuxer and H.264 decoder play it: proves the sequence header
/// and NALU tags are laid out right, independently of the RTMP transport.
#[test]
fn flv_tags_play_in_ffmpeg() {
    let sig = signature_for_name("FLV");
    let frames = encode("FLV", sig, 640, 360);
    let header = flv::avc_sequence_header_from_annexb(&frames[0].annexb).unwrap();
    let mut file = b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let mut tag = |payload: &[u8], ts: u64| {
        let len = payload.len() as u32;
        file.push(9); // video
        file.extend_from_slice(&len.to_be_bytes()[1..]);
        let ts = ts as u32;
        file.extend_from_slice(&ts.to_be_bytes()[1..]);
        file.push((ts >> 24) as u8);
        file.extend_from_slice(&[0, 0, 0]);
        file.extend_from_slice(payload);
        file.extend_from_slice(&(11 + len).to_be_bytes());
    };
    tag(&header, 0);
    for f in &frames {
        tag(&f.flv_video_tag(), f.pts_ms);
    }
    let raw = common::ffmpeg(
        &[
            "-f", "flv", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        &file,
    );
    let decoded: Vec<_> = raw.chunks_exact(640 * 360 * 3).collect();
    assert_eq!(decoded.len(), FRAMES);
    assert!(
        decoded
            .iter()
            .all(|rgb| read_signature(rgb, 640, 360) == Some(sig))
    );
}
