//! Hearth's media core, sans-IO.
//!
//! This crate turns bytes into media objects and media objects into bytes, and
//! nothing else: it opens no sockets, spawns no tasks and never reads a clock.
//! Timestamps arrive as inputs (milliseconds on the publisher's timeline) and
//! segments, playlists and init segments leave as outputs. That keeps every
//! path deterministic, so the tests here replay real encoder output and assert
//! on exact bytes and frame counts.
//!
//! Flow, as the server's RTMP ingest uses it:
//!
//! ```text
//! RTMP message payload ──▶ flv::parse_video_tag / parse_audio_tag
//!        ▼ AvcConfig / AacConfig                 ▼ VideoFrame / AudioFrame
//!   Segmenter::set_*_config              Segmenter::push_* ──▶ Segment { fmp4, ts }
//!                                        GopCache::push     ──▶ instant start, stills
//! Segments + playlist::media_playlist ──▶ HLS
//! ```
//!
//! Identity and confidentiality ride with the bytes (the design's isolation
//! invariant): [`provenance`] defines the fixed record that [`fmp4`] (a `uuid`
//! box), [`ts`] (a private-data packet) and [`sei`] (H.264 user data per access
//! unit) carry in-band, so players and verifiers can check whose frames they
//! hold; [`crypt`] encrypts segments for HLS `METHOD=AES-128`, listed by
//! [`playlist::media_playlist_keyed`], so a misrouted segment shows nothing.
//! This crate carries tags and applies keys; choosing them is the server's job.
//! [`signing`] is the one exception with a fixed MAC: a camera signs each GOP
//! at the source (an SEI per IDR, chained over the previous GOP) and ingest
//! verifies it, both from a key derived from the stream key they share.
//!
//! Input from outside (publishers, files) is parsed with bounds checks only:
//! malformed bytes give a [`MediaError`], never a panic.

pub mod aac;
pub mod crypt;
pub mod digest;
mod error;
pub mod flv;
pub mod fmp4;
mod frame;
pub mod gop;
pub mod h264;
pub mod jpeg;
pub mod playlist;
pub mod provenance;
pub mod rtsp;
pub mod segmenter;
pub mod sei;
pub mod signing;
pub mod ts;

pub use error::MediaError;
pub use frame::{AudioFrame, VideoFrame};
pub use gop::GopCache;
pub use segmenter::{Segment, Segmenter, SegmenterConfig};
