//! The simulated camera's pictures as a byte stream, for a process that serves
//! them another way: the test RTSP camera (`scripts/rtsp-camera.py`, GStreamer's
//! RTSP server) reads them from a pipe and serves them as a real IP camera does.
//!
//! Framing: each access unit is a 4-byte big-endian length, then the access
//! unit in Annex B (IDRs carry their SPS and PPS). Paced in real time.

use crate::rtmp::{FrameSource, stopped};
use crate::{CameraError, Encoder, SimCameraConfig};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Writes `cfg`'s pictures to `out` until `shutdown` or until `out` is closed.
pub async fn write_frames(
    mut out: impl AsyncWrite + Unpin,
    cfg: SimCameraConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), CameraError> {
    let mut source = FrameSource::spawn(Encoder::new(cfg)?)?;
    let result = async {
        loop {
            let frame = tokio::select! {
                f = source.frames.recv() => f,
                _ = stopped(&mut shutdown) => return Ok(()),
            };
            let Some(frame) = frame else {
                return Ok::<(), std::io::Error>(());
            };
            let len = u32::try_from(frame.annexb.len()).expect("an access unit under 4 GB");
            out.write_all(&len.to_be_bytes()).await?;
            out.write_all(&frame.annexb).await?;
            out.flush().await?;
        }
    }
    .await;
    source.stop().await;
    match result {
        // The reader went away: that is how a piped camera is stopped.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(CameraError::Output),
    }
}
