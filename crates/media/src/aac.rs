//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) and ADTS headers.
//!
//! RTMP sends the AudioSpecificConfig once as the AAC sequence header and then raw
//! AAC frames. fMP4 carries the config in `esds` and raw frames as samples; MPEG-TS
//! needs each frame wrapped in an ADTS header, which [`AacConfig::adts_header`]
//! builds. Written by hand: it is a few bit fields and no maintained crate covers
//! exactly this without pulling in a decoder.

use bytes::Bytes;

use crate::MediaError;

/// Sampling frequencies indexed by `samplingFrequencyIndex`.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Samples per AAC frame (AAC-LC; the core rate for HE-AAC).
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;
/// Largest raw AAC frame an ADTS header can describe (13-bit length minus the header).
pub const MAX_ADTS_PAYLOAD: usize = 0x1fff - ADTS_HEADER_LEN;

/// Decoded AudioSpecificConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// `audioObjectType` (2 = AAC-LC, 5 = SBR/HE-AAC, 29 = PS/HE-AACv2).
    pub object_type: u8,
    /// Core sampling rate in Hz (the rate at which each frame has 1024 samples).
    pub sample_rate: u32,
    /// Channel count (channel configuration 7 means 8 channels; 0 means "in the
    /// program config element", which ADTS then signals as 0).
    pub channels: u8,
    /// The original AudioSpecificConfig bytes; they go verbatim into `esds`.
    pub asc: Bytes,
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, MediaError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data.get(self.pos / 8).ok_or_else(|| {
                MediaError::truncated("AudioSpecificConfig", self.pos / 8 + 1, self.data.len())
            })?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }

    fn object_type(&mut self) -> Result<u8, MediaError> {
        let t = self.read(5)?;
        let t = if t == 31 { 32 + self.read(6)? } else { t };
        Ok(t as u8)
    }

    fn sample_rate(&mut self) -> Result<u32, MediaError> {
        let idx = self.read(4)? as usize;
        if idx == 15 {
            return self.read(24);
        }
        SAMPLE_RATES.get(idx).copied().ok_or_else(|| {
            MediaError::InvalidAacConfig(format!("reserved sampling frequency index {idx}"))
        })
    }
}

impl AacConfig {
    /// Parses an AudioSpecificConfig (the body of an FLV AAC sequence header).
    pub fn parse(asc: Bytes) -> Result<Self, MediaError> {
        let mut b = Bits { data: &asc, pos: 0 };
        let object_type = b.object_type()?;
        if object_type == 0 {
            return Err(MediaError::InvalidAacConfig("audio object type 0".into()));
        }
        let sample_rate = b.sample_rate()?;
        if !(1000..=192_000).contains(&sample_rate) {
            return Err(MediaError::InvalidAacConfig(format!(
                "implausible sample rate {sample_rate}"
            )));
        }
        let channel_config = b.read(4)? as u8;
        let channels = match channel_config {
            0..=6 => channel_config,
            7 => 8,
            other => {
                return Err(MediaError::InvalidAacConfig(format!(
                    "reserved channel configuration {other}"
                )));
            }
        };
        Ok(AacConfig {
            object_type,
            sample_rate,
            channels,
            asc,
        })
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// A 7-byte ADTS header (no CRC) for a raw frame of `payload_len` bytes.
    ///
    /// ADTS can only express AAC Main/LC/SSR/LTP; other object types (HE-AAC) are
    /// signalled as LC at the core rate, which decoders upgrade implicitly. A rate
    /// outside the ADTS table uses the nearest table rate. `payload_len` above
    /// [`MAX_ADTS_PAYLOAD`] cannot be represented; the length field saturates.
    pub fn adts_header(&self, payload_len: usize) -> [u8; ADTS_HEADER_LEN] {
        let profile: u8 = match self.object_type {
            1..=4 => self.object_type - 1,
            _ => 1,
        };
        let freq_idx = SAMPLE_RATES
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| r.abs_diff(self.sample_rate))
            .map_or(4, |(i, _)| i) as u8;
        let chan = if self.channels == 8 {
            7
        } else {
            self.channels & 7
        };
        let frame_len = (payload_len + 7).min(0x1fff) as u32;
        [
            0xff,
            0xf1, // sync, MPEG-4, layer 0, no CRC
            (profile << 6) | (freq_idx << 2) | (chan >> 2),
            ((chan & 3) << 6) | ((frame_len >> 11) as u8 & 0x03),
            (frame_len >> 3) as u8,
            (((frame_len & 7) as u8) << 5) | 0x1f, // buffer fullness 0x7ff (VBR)
            0xfc,                                  // fullness cont., 1 raw data block
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lc_stereo_44k1() {
        // 0x12 0x10: object type 2, freq index 4 (44100), channel config 2.
        let c = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn parses_lc_mono_48k_and_explicit_rate() {
        // ffmpeg's sine source encodes mono 44.1k: 0x12 0x08.
        let c = AacConfig::parse(Bytes::from_static(&[0x12, 0x08])).unwrap();
        assert_eq!((c.sample_rate, c.channels), (44100, 1));
        let c = AacConfig::parse(Bytes::from_static(&[0x11, 0x88])).unwrap();
        assert_eq!((c.sample_rate, c.channels), (48000, 1));
        // Explicit 24-bit rate: type 2, idx 15, rate 48000 (0x00bb80), chan 2.
        // bits: 00010 1111 000000001011101110000000 0010 ...
        let c = AacConfig::parse(Bytes::from_static(&[0x17, 0x80, 0x5d, 0xc0, 0x10])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 2));
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(AacConfig::parse(Bytes::new()).is_err());
        assert!(AacConfig::parse(Bytes::from_static(&[0x12])).is_err());
        // reserved frequency index 13
        assert!(AacConfig::parse(Bytes::from_static(&[0x16, 0x90])).is_err());
        // object type 0
        assert!(AacConfig::parse(Bytes::from_static(&[0x02, 0x10])).is_err());
    }

    #[test]
    fn adts_header_layout() {
        let c = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap();
        let h = c.adts_header(100);
        assert_eq!(h, [0xff, 0xf1, 0x50, 0x80, 0x0d, 0x7f, 0xfc]);
        // Decode the fields back.
        let len = ((u32::from(h[3]) & 3) << 11) | (u32::from(h[4]) << 3) | (u32::from(h[5]) >> 5);
        assert_eq!(len, 107);
        assert_eq!(h[2] >> 6, 1, "LC profile");
        assert_eq!((h[2] >> 2) & 0xf, 4, "44.1 kHz");
        assert_eq!(((h[2] & 1) << 2) | (h[3] >> 6), 2, "stereo");
        let big = c.adts_header(MAX_ADTS_PAYLOAD);
        let len =
            ((u32::from(big[3]) & 3) << 11) | (u32::from(big[4]) << 3) | (u32::from(big[5]) >> 5);
        assert_eq!(len, 0x1fff);
    }
}
