//! Codec-level frames, the currency between ingest and the muxers.
//!
//! Timestamps are milliseconds on the publisher's timeline (RTMP/FLV resolution).
//! The muxers convert to 90 kHz (video, TS) or the audio sample rate (fMP4 audio).

use crate::provenance::ProvenanceRecord;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

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
    /// The access unit as frame-by-frame ways out (WebRTC) send it, built by the
    /// first viewer that needs it and shared by every clone of the frame.
    pub annexb: WireForm,
}

/// An access unit in the form WebRTC sends it: Annex B with the provenance
/// record as an SEI before the first slice
/// ([`crate::sei::annexb_with_provenance`]). Empty until the first
/// frame-by-frame viewer of the frame builds it; then every viewer (every
/// clone of the frame: the GOP cache's, the segmenter's) shares that one copy,
/// so no viewer converts or copies it, and a camera nobody watches this way
/// keeps no second copy of its GOP. An `Arc<[u8]>` is what the WebRTC stack
/// takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireForm(Arc<OnceLock<Option<Arc<[u8]>>>>);

impl WireForm {
    /// The built form, building it with `build` if nobody has (`None`: the
    /// access unit cannot be sent this way, which is remembered too).
    pub fn get_or_build(&self, build: impl FnOnce() -> Option<Arc<[u8]>>) -> Option<Arc<[u8]>> {
        self.0.get_or_init(build).clone()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_built_once_and_shared_by_every_clone() {
        let frame = VideoFrame {
            dts_ms: 0,
            pts_ms: 0,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            provenance: None,
            annexb: WireForm::default(),
        };
        let copy = frame.clone();
        let built: Arc<[u8]> = Arc::from(&[0u8, 0, 0, 1, 0x65][..]);
        let mut calls = 0;
        let a = frame.annexb.get_or_build(|| {
            calls += 1;
            Some(built.clone())
        });
        let b = copy.annexb.get_or_build(|| {
            calls += 1;
            None
        });
        assert_eq!(calls, 1);
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()), "one copy, shared");
    }
}
