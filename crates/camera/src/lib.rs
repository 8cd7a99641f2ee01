//! Hearth's simulated IP camera.
//!
//! Hearth's promise is that a viewer never sees a stranger's frame. Proving that needs a
//! camera whose every picture says, in a way a test can read back after H.264, HLS
//! segmenting, scaling and JPEG, *which* camera it came from. This crate is that
//! camera: it draws a picture with the camera's name, its local time, a frame counter and
//! a machine-readable **visual signature** (a 32-bit value drawn as large black/white
//! blocks, see [`read_signature`]), encodes it as real constrained-baseline H.264 with
//! OpenH264, and publishes it over real RTMP like a hardware camera would, reconnecting
//! with backoff when the server goes away.
//!
//! The pieces are layered so each can be tested alone:
//!
//! - [`signature`](signature_for) and [`read_signature`]: pure functions, no video.
//! - [`Encoder`]: picture drawing (directly in I420) + OpenH264, no I/O, time is an input.
//! - [`flv`]: FLV/RTMP video tag payloads, pure byte layout.
//! - [`write_frames`]: the same pictures as a paced byte stream, for a test RTSP
//!   camera to serve.
//! - [`publish`]: the only part that touches sockets and the clock. It signs every GOP
//!   at the source (`hearth_media::signing`: an SEI in each IDR, keyed by the stream
//!   key) so ingest can refuse media that is not this camera's, unaltered.

mod config;
mod draw;
mod encoder;
mod error;
pub mod flv;
mod font;
mod pipe;
mod rtmp;
mod rtsp_server;
mod scene;
mod signature;

pub use config::{SimCameraConfig, validate_timezone};
pub use encoder::{EncodedFrame, Encoder};
pub use error::CameraError;
pub use pipe::write_frames;
pub use rml_rtmp::sessions::StreamMetadata;
pub use rtmp::{RtmpPublisher, RtmpUrl, connect_tcp, publish, publish_renditions, sub_stream_url};
pub use rtsp_server::{RtspLogin, serve_rtsp};
pub use signature::{
    expected_background, read_capture_time, read_signature, signature_for, signature_for_name,
};
