//! The crate's single error type.
//!
//! Every parser of outside bytes returns these instead of panicking. Variants
//! carry enough context (what was being parsed, offsets, lengths) to find the bad
//! byte in a capture.

/// Errors from parsing or muxing media.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// Input ended before a structure was complete.
    #[error("truncated {what}: need {needed} bytes, have {available}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// FLV video tag with a codec other than H.264/AVC.
    #[error("unsupported video codec {0}; only H.264/AVC is supported")]
    UnsupportedVideoCodec(String),
    /// FLV audio tag with a format other than AAC.
    #[error("unsupported audio format {0}; only AAC is supported")]
    UnsupportedAudioCodec(String),
    /// A well-formed FLV packet we do not handle (e.g. a video command frame).
    #[error("unsupported FLV packet: {0}")]
    UnsupportedPacket(String),
    /// Malformed FLV container or tag.
    #[error("invalid FLV: {0}")]
    InvalidFlv(String),
    /// Malformed AVCDecoderConfigurationRecord or SPS.
    #[error("invalid AVC configuration: {0}")]
    InvalidAvcConfig(String),
    /// Malformed AVCC access unit (bad NAL length prefix).
    #[error("invalid AVCC data at offset {offset}: {reason}")]
    InvalidNal {
        /// Byte offset within the access unit.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// Malformed AudioSpecificConfig.
    #[error("invalid AAC configuration: {0}")]
    InvalidAacConfig(String),
    /// Malformed or misplaced in-band provenance record.
    #[error("invalid provenance: {0}")]
    InvalidProvenance(&'static str),
    /// An encrypted segment that does not decrypt under the given key and IV
    /// (wrong length or bad padding: almost always the wrong key).
    #[error("segment decryption failed: {0}")]
    Decrypt(&'static str),
    /// A malformed or oversized RTSP request.
    #[error("invalid RTSP request: {0}")]
    InvalidRtsp(String),
    /// A signed stream's GOP signature did not check out (see [`crate::signing`]):
    /// the publisher's media must be refused.
    #[error("GOP signature check failed at keyframe {gop} of the connection: {reason}")]
    SignatureMismatch {
        /// 0-based number of the keyframe on the connection.
        gop: u64,
        /// What was wrong.
        reason: crate::signing::SignatureFailure,
    },
}

impl MediaError {
    pub(crate) fn truncated(what: &'static str, needed: usize, available: usize) -> Self {
        MediaError::Truncated {
            what,
            needed,
            available,
        }
    }
}
