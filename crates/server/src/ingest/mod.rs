//! The ways in. One driver per protocol; each authenticates the camera, stamps or
//! verifies provenance, and feeds the camera's hub through a `hub::Publisher`.
//!
//! - [`rtmp`]: RTMP push (cameras, OBS, ffmpeg, the simulated camera).
//! - [`rtsp`]: RTSP pull (IP cameras on the network: Hearth connects to them).
//!
//! - [`onboard`]: adding a camera (a stream key, or a sealed RTSP source).
//!
//! The home agent's link comes next.

pub mod onboard;
pub mod rtmp;
pub mod rtsp;
