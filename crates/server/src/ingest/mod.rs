//! The ways in. One driver per protocol; each authenticates the camera, stamps or
//! verifies provenance, and feeds the camera's hub through a `hub::Publisher`.
//!
//! - [`rtmp`]: RTMP push (cameras, OBS, ffmpeg, the simulated camera).
//!
//! RTSP pull (cameras on the LAN) and the home agent's link come next.

pub mod rtmp;
