//! Publishing over real RTMP to a real server: ffmpeg listening as an RTMP server
//! (`-listen 1`) records what it receives, and ffprobe/ffmpeg check the recording.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hearth_camera::{SimCameraConfig, publish, read_signature, signature_for_name};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_an_rtmp_server_and_reconnects_when_it_goes_away() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (first_out, second_out) = (dir.path().join("first.flv"), dir.path().join("second.flv"));
    let port = free_port();
    let sig = signature_for_name("Porch");
    let cfg = SimCameraConfig::new("Porch", "Europe/Berlin", sig);

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
