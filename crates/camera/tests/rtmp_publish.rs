//! Publishing over real RTMP to a real server: ffmpeg listening as an RTMP server
//! (`-listen 1`) records what it receives, and ffprobe/ffmpeg check the recording.
//! The recording, relayed and remuxed by ffmpeg, must still carry the camera's GOP
//! signatures, verifying under the key of the stream key it published with, and a
//! camera told to tamper must fail verification where it tampered.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use hearth_camera::{SimCameraConfig, publish, read_signature, signature_for_name};
use hearth_media::MediaError;
use hearth_media::flv::{self, FlvTagKind, FlvVideo};
use hearth_media::signing::{GopVerifier, SignatureFailure, Verdict, gop_signing_key};
use hearth_model::CameraId;
use tokio::process::{Child, Command};
use tokio::sync::watch;

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hearth_camera=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// ffmpeg as an RTMP server: accepts one publisher on `port`, records `seconds` of its
/// stream to `out` without re-encoding, then exits (closing the connection).
fn rtmp_recorder(port: u16, seconds: u32, out: &Path) -> Child {
    common::require("ffmpeg");
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-listen",
            "1",
            "-f",
            "flv",
            "-i",
        ])
        .arg(format!("rtmp://127.0.0.1:{port}/live/cam-key"))
        .args(["-t", &seconds.to_string(), "-c", "copy", "-f", "flv"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

async fn finish(child: Child) {
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ffmpeg RTMP server did not finish within 30 s")
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg RTMP server failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks a recording: H.264 constrained baseline at 1280x720, at least `min_frames`
/// frames that all decode, the first one a keyframe, and every frame carrying `sig`.
fn check_recording(path: &Path, sig: u32, min_frames: u64) {
    let probe: serde_json::Value = serde_json::from_str(&common::ffprobe_json(path)).unwrap();
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "{probe}");
    assert_eq!(stream["profile"], "Constrained Baseline", "{probe}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let frames: u64 = stream["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(frames >= min_frames, "only {frames} frames recorded");

    let first = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,pict_type",
        ])
        .args(["-read_intervals", "%+#1", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.trim().starts_with("1,I"),
        "first frame is not a keyframe: {first:?}"
    );

    let path_str = path.to_str().unwrap();
    let raw = common::ffmpeg(
        &[
            "-i",
            path_str,
            "-vf",
            "scale=640:360",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        &[],
    );
    let decoded: Vec<_> = raw.chunks_exact(640 * 360 * 3).collect();
    assert!(
        decoded.len() as u64 >= min_frames,
        "only {} frames decode",
        decoded.len()
    );
    for (i, rgb) in decoded.iter().enumerate() {
        assert_eq!(read_signature(rgb, 640, 360), Some(sig), "frame {i}");
    }
}

/// Runs every video access unit of a recorded FLV through a [`GopVerifier`] for
/// `stream_key`: the records of the GOPs that verified, or the first error with the
/// index of the access unit that raised it (and the records verified before it).
fn verify_recording(
    path: &Path,
    stream_key: &str,
) -> (
    Vec<hearth_media::provenance::ProvenanceRecord>,
    Option<(usize, MediaError)>,
) {
    let tags = flv::read_flv_file(Bytes::from(std::fs::read(path).unwrap())).unwrap();
    let mut verifier = GopVerifier::new(gop_signing_key(stream_key));
    let (mut ls, mut records, mut index) = (4, Vec::new(), 0);
    for tag in tags.into_iter().filter(|t| t.kind == FlvTagKind::Video) {
        match flv::parse_video_tag(tag.payload).unwrap() {
            FlvVideo::Config(c) => ls = c.nalu_length_size,
            FlvVideo::Frame(f) => {
                match verifier.push(&f.data, ls, f.keyframe) {
                    Ok(Verdict::Verified { record, .. }) => records.push(record),
                    Ok(Verdict::Pending) => {}
                    Ok(Verdict::Unsigned) => panic!("unsigned access unit {index} in {path:?}"),
                    Err(e) => return (records, Some((index, e))),
                }
                index += 1;
            }
            FlvVideo::EndOfSequence => {}
        }
    }
    (records, None)
}

/// Every keyframe of the recording verifies, as a chain from GOP 0, naming `camera`.
fn check_signed(path: &Path, camera: CameraId, min_gops: usize) {
    let (records, error) = verify_recording(path, "cam-key");
    assert_eq!(error, None, "{path:?}");
    assert!(records.len() >= min_gops, "only {} GOPs", records.len());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.camera, camera);
    }
    // Not under another camera's stream key.
    let (_, error) = verify_recording(path, "other-key");
    assert!(matches!(
        error,
        Some((
            0,
            MediaError::SignatureMismatch {
                gop: 0,
                reason: SignatureFailure::BadTag
            }
        ))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_an_rtmp_server_and_reconnects_when_it_goes_away() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (first_out, second_out) = (dir.path().join("first.flv"), dir.path().join("second.flv"));
    let port = free_port();
    let sig = signature_for_name("Porch");
    let camera_id = CameraId::from_bytes([0x5c; 16]);
    let mut cfg = SimCameraConfig::new("Porch", "Europe/Berlin", sig);
    cfg.camera_id = Some(camera_id);

    let (stop, shutdown) = watch::channel(false);
    let url = format!("rtmp://127.0.0.1:{port}/live/cam-key");
    // Start the camera before the server: its first attempts are refused and it must
    // keep retrying, as a camera powered on before the server would.
    let camera = tokio::spawn(async move { publish(&url, cfg, shutdown).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // First server: records 3 s, then exits, closing the camera's connection.
    finish(rtmp_recorder(port, 3, &first_out)).await;
    assert!(
        !camera.is_finished(),
        "the camera must survive the server going away"
    );

    // Second server on the same port: the camera reconnects by itself, and the new
    // recording must start with a sequence header and an IDR (checked via decode).
    finish(rtmp_recorder(port, 2, &second_out)).await;

    stop.send(true).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), camera)
        .await
        .expect("publish did not stop after shutdown")
        .unwrap();
    result.expect("publish returns Ok on shutdown");

    check_recording(&first_out, sig, 40);
    check_recording(&second_out, sig, 25);
    // Each connection is its own chain from GOP 0 (2 s GOPs: 3 s and 2 s recorded).
    check_signed(&first_out, camera_id, 2);
    check_signed(&second_out, camera_id, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampering_camera_fails_verification_at_the_next_idr() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tampered.flv");
    let port = free_port();
    let mut cfg = SimCameraConfig::new("Tamper", "UTC", 9);
    cfg.width = 320;
    cfg.height = 180;
    cfg.keyframe_interval_ms = 1000;
    cfg.tamper_after_gops = Some(1);

    let recorder = rtmp_recorder(port, 4, &out);
    let (stop, shutdown) = watch::channel(false);
    let url = format!("rtmp://127.0.0.1:{port}/live/cam-key");
    let camera = tokio::spawn(async move { publish(&url, cfg, shutdown).await });
    finish(recorder).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), camera)
        .await
        .expect("publish did not stop after shutdown")
        .unwrap()
        .unwrap();

    // IDRs 0 and 1 verify (the tag in IDR 1 covers GOP 0); a byte of GOP 1's first
    // inter frame was flipped after signing, so IDR 2 does not verify. A camera
    // without an id signs records naming the all-zero id.
    let (records, error) = verify_recording(&out, "cam-key");
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.camera == CameraId::from_bytes([0; 16]))
    );
    let Some((index, error)) = error else {
        panic!("the tampered recording verified")
    };
    assert_eq!(
        error,
        MediaError::SignatureMismatch {
            gop: 2,
            reason: SignatureFailure::BadTag
        }
    );
    // At 15 fps and 1 s GOPs, IDR 2 is access unit 30 unless the camera dropped
    // frames at the sensor.
    assert!((20..=30).contains(&index), "failed at access unit {index}");
}

#[tokio::test]
async fn bad_url_and_timezone_fail_before_connecting() {
    let (_stop, shutdown) = watch::channel(false);
    let cfg = SimCameraConfig::new("x", "UTC", 1);
    let err = publish("http://127.0.0.1/live/k", cfg, shutdown.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, hearth_camera::CameraError::InvalidUrl(_)),
        "{err}"
    );
    let cfg = SimCameraConfig::new("x", "Not/A_Zone", 1);
    let err = publish("rtmp://127.0.0.1/live/k", cfg, shutdown)
        .await
        .unwrap_err();
    assert!(
        matches!(err, hearth_camera::CameraError::UnknownTimeZone { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_stops_a_camera_that_cannot_connect() {
    // Nothing listens on this port: the camera sits in its reconnect loop.
    let port = free_port();
    let (stop, shutdown) = watch::channel(false);
    let cfg = SimCameraConfig {
        width: 320,
        height: 180,
        ..SimCameraConfig::new("x", "UTC", 1)
    };
    let url = format!("rtmp://127.0.0.1:{port}/live/k");
    let camera = tokio::spawn(async move { publish(&url, cfg, shutdown).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!camera.is_finished());
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(3), camera)
        .await
        .expect("shutdown during backoff is prompt")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_is_prompt_while_the_server_does_not_answer() {
    // A server that accepts TCP connections and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let (stop, shutdown) = watch::channel(false);
    let cfg = SimCameraConfig {
        width: 320,
        height: 180,
        ..SimCameraConfig::new("x", "UTC", 1)
    };
    let url = format!("rtmp://127.0.0.1:{port}/live/k");
    let camera = tokio::spawn(async move { publish(&url, cfg, shutdown).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!camera.is_finished(), "still waiting for the handshake");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), camera)
        .await
        .expect("shutdown during the handshake is prompt")
        .unwrap()
        .unwrap();
    silent.abort();
}
