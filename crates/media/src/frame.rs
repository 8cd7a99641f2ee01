//! Codec-level frames, the currency between ingest and the muxers.
//!
//! Timestamps are milliseconds on the publisher's timeline (RTMP/FLV resolution).
//! The muxers convert to 90 kHz (video, TS) or the audio sample rate (fMP4 audio).

use crate::provenance::ProvenanceRecord;
use bytes::Bytes;

/// One H.264 access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Decode timestamp, ms.
    pub dts_ms: i64,
    /// Presentation timestamp, ms (`dts_ms + composition offset`; differs with B-frames).
    pub pts_ms: i64,
    /// The publisher marked this as a random access point (IDR).
    pub keyframe: bool,
    /// AVCC: NAL units each prefixed by a big-endian length of
    /// [`AvcConfig::nalu_length_size`](crate::h264::AvcConfig::nalu_length_size) bytes.
    pub data: Bytes,
    /// Whose picture this is, with a tag over `data`: set by whoever authenticated
    /// the source (the server's ingest) before the frame goes anywhere else.
    /// The muxers ignore it; caches that hand frames on check it.
    pub provenance: Option<ProvenanceRecord>,
    /// The access unit as frame-by-frame ways out (WebRTC) send it: Annex B with
    /// `provenance` as an SEI before the first slice
    /// ([`crate::sei::annexb_with_provenance`]). Built once per frame when the
    /// hub takes it, so no viewer converts or copies it (an `Arc<[u8]>` is what
    /// the WebRTC stack takes); `None` before that.
    pub annexb: Option<std::sync::Arc<[u8]>>,
}

/// One raw AAC frame (no ADTS header), 1024 samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Presentation timestamp, ms.
    pub pts_ms: i64,
    /// Raw AAC access unit.
    pub data: Bytes,
    /// As for [`VideoFrame::provenance`].
    pub provenance: Option<ProvenanceRecord>,
}
