//! FLV tag bodies (as carried in RTMP messages) and FLV files.
//!
//! RTMP video/audio message payloads are exactly FLV `VIDEODATA`/`AUDIODATA` tag
//! bodies (FLV spec v10.1, annex E.4.3). This module decodes them into sequence
//! headers ([`AvcConfig`], [`AacConfig`]) and frames, and reads whole FLV files
//! (used by tests and the load benchmark to replay pre-encoded media).
//!
//! Only H.264 and AAC are accepted; anything else is rejected with an error that
//! names the codec, so ingest can tell the publisher what to change. Legacy tags
//! and Enhanced-RTMP tags with the `avc1` FourCC are both understood.
//!
//! Guarantees: no panics on any input; payload slices share the input buffer
//! (no copies).

use bytes::Bytes;

use crate::MediaError;
use crate::aac::AacConfig;
use crate::h264::AvcConfig;

/// A decoded video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvVideo {
    /// AVC sequence header: the decoder configuration record.
    Config(AvcConfig),
    /// One coded frame.
    Frame(VideoFrameData),
    /// AVC end of sequence: the publisher is done with this configuration.
    EndOfSequence,
}

/// A coded video frame as received; combine with the tag timestamp (the DTS)
/// to make a [`VideoFrame`](crate::VideoFrame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrameData {
    /// FLV frame type 1 (key frame) or 4 (generated key frame).
    pub keyframe: bool,
    /// Composition time offset, ms: `pts = dts + cts_ms`.
    pub cts_ms: i32,
    /// AVCC: length-prefixed NAL units, as received.
    pub data: Bytes,
}

/// A decoded audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvAudio {
    /// AAC sequence header: the AudioSpecificConfig.
    Config(AacConfig),
    /// One raw AAC frame.
    Frame(Bytes),
}

const CODEC_AVC: u8 = 7;
const SOUND_AAC: u8 = 10;

fn video_codec_name(id: u8) -> String {
    let name = match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        12 => "HEVC (legacy FLV id 12)",
        _ => return format!("FLV codec id {id}"),
    };
    format!("{name} (FLV codec id {id})")
}

fn audio_codec_name(id: u8) -> String {
    let name = match id {
        0 => "linear PCM, platform endian",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM, little endian",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        9 => "Enhanced RTMP audio",
        11 => "Speex",
        13 => "Opus (legacy FLV id 13)",
        14 => "MP3 8 kHz",
        15 => "device-specific sound",
        _ => return format!("FLV sound format {id}"),
    };
    format!("{name} (FLV sound format {id})")
}

fn fourcc_name(f: &[u8]) -> String {
    f.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// Parses an RTMP video message payload / FLV `VIDEODATA` body.
pub fn parse_video_tag(payload: Bytes) -> Result<FlvVideo, MediaError> {
    let Some(&first) = payload.first() else {
        return Err(MediaError::truncated("video tag", 1, 0));
    };
    if first & 0x80 != 0 {
        return parse_enhanced_video(payload);
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if codec != CODEC_AVC {
        return Err(MediaError::UnsupportedVideoCodec(video_codec_name(codec)));
    }
    if frame_type == 5 {
        return Err(MediaError::UnsupportedPacket(
            "video info/command frame".into(),
        ));
    }
    if !(1..=4).contains(&frame_type) {
        return Err(MediaError::InvalidFlv(format!(
            "reserved video frame type {frame_type}"
        )));
    }
    if payload.len() < 5 {
        return Err(MediaError::truncated(
            "AVC video tag header",
            5,
            payload.len(),
        ));
    }
    let packet_type = payload[1];
    // SI24, sign-extended.
    let cts_ms = i32::from_be_bytes([payload[2], payload[3], payload[4], 0]) >> 8;
    match packet_type {
        0 => Ok(FlvVideo::Config(AvcConfig::parse_record(
            payload.slice(5..),
        )?)),
        1 => Ok(FlvVideo::Frame(VideoFrameData {
            keyframe: frame_type == 1 || frame_type == 4,
            cts_ms,
            data: payload.slice(5..),
        })),
        2 => Ok(FlvVideo::EndOfSequence),
        other => Err(MediaError::InvalidFlv(format!(
            "unknown AVC packet type {other}"
        ))),
    }
}

/// Enhanced RTMP (veovera spec v1): `[1 bit ex][3 bits frame type][4 bits packet
/// type][FourCC]`. Only `avc1` is accepted.
fn parse_enhanced_video(payload: Bytes) -> Result<FlvVideo, MediaError> {
    if payload.len() < 5 {
        return Err(MediaError::truncated(
            "enhanced video tag header",
            5,
            payload.len(),
        ));
    }
    let frame_type = (payload[0] >> 4) & 0x07;
    let packet_type = payload[0] & 0x0f;
    let fourcc = &payload[1..5];
    if fourcc != b"avc1" {
        return Err(MediaError::UnsupportedVideoCodec(format!(
            "Enhanced RTMP FourCC '{}'",
            fourcc_name(fourcc)
        )));
    }
    if frame_type == 5 {
        return Err(MediaError::UnsupportedPacket(
            "enhanced video command frame".into(),
        ));
    }
    let keyframe = frame_type == 1 || frame_type == 4;
    match packet_type {
        0 => Ok(FlvVideo::Config(AvcConfig::parse_record(
            payload.slice(5..),
        )?)),
        1 => {
            if payload.len() < 8 {
                return Err(MediaError::truncated(
                    "enhanced coded frames",
                    8,
                    payload.len(),
                ));
            }
            let cts_ms = i32::from_be_bytes([payload[5], payload[6], payload[7], 0]) >> 8;
            Ok(FlvVideo::Frame(VideoFrameData {
                keyframe,
                cts_ms,
                data: payload.slice(8..),
            }))
        }
        2 => Ok(FlvVideo::EndOfSequence),
        3 => Ok(FlvVideo::Frame(VideoFrameData {
            keyframe,
            cts_ms: 0,
            data: payload.slice(5..),
        })),
        other => Err(MediaError::UnsupportedPacket(format!(
            "enhanced video packet type {other}"
        ))),
    }
}

/// Parses an RTMP audio message payload / FLV `AUDIODATA` body.
pub fn parse_audio_tag(payload: Bytes) -> Result<FlvAudio, MediaError> {
    let Some(&first) = payload.first() else {
        return Err(MediaError::truncated("audio tag", 1, 0));
    };
    let format = first >> 4;
    if format != SOUND_AAC {
        return Err(MediaError::UnsupportedAudioCodec(audio_codec_name(format)));
    }
    if payload.len() < 2 {
        return Err(MediaError::truncated(
            "AAC audio tag header",
            2,
            payload.len(),
        ));
    }
    match payload[1] {
        0 => Ok(FlvAudio::Config(AacConfig::parse(payload.slice(2..))?)),
        1 => Ok(FlvAudio::Frame(payload.slice(2..))),
        other => Err(MediaError::InvalidFlv(format!(
            "unknown AAC packet type {other}"
        ))),
    }
}

/// Kind of an FLV file tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlvTagKind {
    /// Tag type 8.
    Audio,
    /// Tag type 9.
    Video,
    /// Tag type 18 (AMF0 script data, e.g. `onMetaData`).
    Script,
}

/// One tag of an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvFileTag {
    /// Audio, video or script data.
    pub kind: FlvTagKind,
    /// Tag timestamp, ms (the DTS for video), including the extended high byte.
    pub timestamp_ms: u32,
    /// The tag body: for audio/video exactly what RTMP sends as a message payload.
    pub payload: Bytes,
}

/// Reads every tag of an FLV file held in memory.
///
/// Strict about structure (header, tag types, lengths); a missing final
/// `PreviousTagSize` is tolerated because live recorders often stop before it.
/// Tag bodies are not decoded; feed them to [`parse_video_tag`]/[`parse_audio_tag`].
pub fn read_flv_file(data: Bytes) -> Result<Vec<FlvFileTag>, MediaError> {
    if data.len() < 9 {
        return Err(MediaError::truncated("FLV header", 9, data.len()));
    }
    if &data[..3] != b"FLV" {
        return Err(MediaError::InvalidFlv("missing 'FLV' signature".into()));
    }
    if data[3] != 1 {
        return Err(MediaError::InvalidFlv(format!(
            "unsupported FLV version {}",
            data[3]
        )));
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    if header_len < 9 {
        return Err(MediaError::InvalidFlv(format!(
            "header size {header_len} < 9"
        )));
    }
    // Skip the header and PreviousTagSize0.
    let mut pos = header_len
        .checked_add(4)
        .ok_or_else(|| MediaError::InvalidFlv("header size overflow".into()))?;
    if pos > data.len() {
        return Err(MediaError::truncated("FLV header", pos, data.len()));
    }
    let mut tags = Vec::new();
    while pos < data.len() {
        let h = data
            .get(pos..pos + 11)
            .ok_or_else(|| MediaError::truncated("FLV tag header", pos + 11, data.len()))?;
        let tag_type = h[0];
        if tag_type & 0x20 != 0 {
            return Err(MediaError::InvalidFlv(format!(
                "encrypted (filtered) tag at offset {pos}"
            )));
        }
        let kind = match tag_type & 0x1f {
            8 => FlvTagKind::Audio,
            9 => FlvTagKind::Video,
            18 => FlvTagKind::Script,
            other => {
                return Err(MediaError::InvalidFlv(format!(
                    "unknown tag type {other} at offset {pos}"
                )));
            }
        };
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body_start = pos + 11;
        let body_end = body_start + size;
        if body_end > data.len() {
            return Err(MediaError::truncated("FLV tag body", body_end, data.len()));
        }
        tags.push(FlvFileTag {
            kind,
            timestamp_ms,
            payload: data.slice(body_start..body_end),
        });
        pos = body_end + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::tests::{PPS, SPS_640X360, record};

    #[test]
    fn video_config_and_frames() {
        let mut p = vec![0x17, 0, 0, 0, 0];
        p.extend(record(SPS_640X360, PPS));
        match parse_video_tag(Bytes::from(p)).unwrap() {
            FlvVideo::Config(c) => assert_eq!((c.width, c.height), (640, 360)),
            other => panic!("{other:?}"),
        }
        let p = Bytes::from_static(&[0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 1, 0x41]);
        match parse_video_tag(p).unwrap() {
            FlvVideo::Frame(f) => {
                assert!(!f.keyframe);
                assert_eq!(f.cts_ms, -40);
                assert_eq!(&f.data[..], &[0, 0, 0, 1, 0x41]);
            }
            other => panic!("{other:?}"),
        }
        let p = Bytes::from_static(&[0x17, 1, 0, 0, 80, 0, 0, 0, 1, 0x65]);
        assert!(
            matches!(parse_video_tag(p), Ok(FlvVideo::Frame(f)) if f.keyframe && f.cts_ms == 80)
        );
        let p = Bytes::from_static(&[0x17, 2, 0, 0, 0]);
        assert_eq!(parse_video_tag(p).unwrap(), FlvVideo::EndOfSequence);
    }

    #[test]
    fn enhanced_avc1_frames() {
        let p = Bytes::from_static(&[0x91, b'a', b'v', b'c', b'1', 0, 0, 40, 0, 0, 0, 1, 0x65]);
        assert!(
            matches!(parse_video_tag(p), Ok(FlvVideo::Frame(f)) if f.keyframe && f.cts_ms == 40 && f.data.len() == 5)
        );
        let p = Bytes::from_static(&[0xa3, b'a', b'v', b'c', b'1', 0, 0, 0, 1, 0x41]);
        assert!(
            matches!(parse_video_tag(p), Ok(FlvVideo::Frame(f)) if !f.keyframe && f.cts_ms == 0 && f.data.len() == 5)
        );
    }

    #[test]
    fn rejects_other_codecs_by_name() {
        let err = parse_video_tag(Bytes::from_static(&[0x12, 0, 0])).unwrap_err();
        assert!(err.to_string().contains("Sorenson H.263"), "{err}");
        let err =
            parse_video_tag(Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 0])).unwrap_err();
        assert!(
            matches!(err, MediaError::UnsupportedVideoCodec(ref s) if s.contains("hvc1")),
            "{err}"
        );
        let err = parse_audio_tag(Bytes::from_static(&[0x2f, 0, 0])).unwrap_err();
        assert!(err.to_string().contains("MP3"), "{err}");
        assert!(matches!(
            parse_video_tag(Bytes::from_static(&[0x57, 0, 0, 0, 0])),
            Err(MediaError::UnsupportedPacket(_))
        ));
    }

    #[test]
    fn audio_config_and_frames() {
        let p = Bytes::from_static(&[0xaf, 0, 0x12, 0x10]);
        assert!(
            matches!(parse_audio_tag(p), Ok(FlvAudio::Config(c)) if c.sample_rate == 44100 && c.channels == 2)
        );
        let p = Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04]);
        assert_eq!(
            parse_audio_tag(p).unwrap(),
            FlvAudio::Frame(Bytes::from_static(&[0x21, 0x10, 0x04]))
        );
    }

    pub(crate) fn flv_file(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (ty, ts, body) in tags {
            f.push(*ty);
            f.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            f.extend_from_slice(&ts.to_be_bytes()[1..]);
            f.push((ts >> 24) as u8);
            f.extend_from_slice(&[0, 0, 0]);
            f.extend_from_slice(body);
            f.extend_from_slice(&(body.len() as u32 + 11).to_be_bytes());
        }
        f
    }

    #[test]
    fn reads_flv_file() {
        let f = flv_file(&[
            (18, 0, b"meta"),
            (9, 0x0100_0002, &[0x17, 2, 0, 0, 0]),
            (8, 23, &[0xaf, 1, 9]),
        ]);
        let tags = read_flv_file(Bytes::from(f.clone())).unwrap();
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].kind, FlvTagKind::Script);
        assert_eq!(&tags[0].payload[..], b"meta");
        assert_eq!(tags[1].kind, FlvTagKind::Video);
        assert_eq!(tags[1].timestamp_ms, 0x0100_0002);
        assert_eq!(tags[2].kind, FlvTagKind::Audio);
        assert_eq!(tags[2].timestamp_ms, 23);
        // A missing final PreviousTagSize is fine; a cut body is not.
        assert_eq!(
            read_flv_file(Bytes::copy_from_slice(&f[..f.len() - 4]))
                .unwrap()
                .len(),
            3
        );
        assert!(read_flv_file(Bytes::copy_from_slice(&f[..f.len() - 5])).is_err());
        let mut bad = f.clone();
        bad[13] = 7;
        assert!(read_flv_file(Bytes::from(bad)).is_err());
        assert!(read_flv_file(Bytes::from_static(b"FLX\x01\x05\0\0\0\x09\0\0\0\0")).is_err());
    }

    /// xorshift64*: deterministic "random" bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Truncations and random mutations of valid inputs must give Ok or Err, never panic.
    #[test]
    fn malformed_input_never_panics() {
        let mut video_cfg = vec![0x17, 0, 0, 0, 0];
        video_cfg.extend(record(SPS_640X360, PPS));
        let seeds: Vec<Vec<u8>> = vec![
            video_cfg.clone(),
            vec![0x27, 1, 0, 0, 40, 0, 0, 0, 2, 0x41, 0x9a],
            vec![0xaf, 0, 0x12, 0x10],
            vec![0xaf, 1, 0x21, 0x10],
            vec![0x91, b'a', b'v', b'c', b'1', 0, 0, 40, 0, 0, 0, 1, 0x65],
            flv_file(&[(9, 0, &video_cfg), (8, 0, &[0xaf, 0, 0x12, 0x10])]),
        ];
        let avcc = record(SPS_640X360, PPS);
        // HEARTH_FUZZ_SCALE=100 for a longer soak; the default keeps `cargo test` fast.
        let scale: usize = std::env::var("HEARTH_FUZZ_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let check = |b: &[u8]| {
            let b = Bytes::copy_from_slice(b);
            let _ = parse_video_tag(b.clone());
            let _ = parse_audio_tag(b.clone());
            let _ = read_flv_file(b.clone());
            let _ = AvcConfig::parse_record(b.clone());
            let _ = AacConfig::parse(b.clone());
            for ls in [1, 2, 3, 4] {
                let _ = crate::h264::nal_units(&b, ls).count();
            }
        };
        for seed in seeds.iter().chain(std::iter::once(&avcc)) {
            for n in 0..=seed.len() {
                check(&seed[..n]);
            }
            for _ in 0..2000 * scale {
                let mut m = seed.clone();
                let flips = 1 + rng.next() as usize % 4;
                for _ in 0..flips {
                    let i = rng.next() as usize % m.len();
                    m[i] = rng.next() as u8;
                }
                check(&m);
            }
        }
        for _ in 0..20000 * scale {
            let n = rng.next() as usize % 64;
            let mut b = rng.bytes(n);
            // Bias towards valid prefixes so the deeper parsers are reached.
            match rng.next() % 5 {
                0 if !b.is_empty() => b[0] = 0x17,
                1 if !b.is_empty() => b[0] = 0xaf,
                2 => b
                    .splice(0..0, b"FLV\x01\x05\0\0\0\x09\0\0\0\0".iter().copied())
                    .for_each(drop),
                3 if b.len() > 5 => b[..6].copy_from_slice(&[1, 0x64, 0, 0x1e, 0xff, 0xe1]),
                _ => {}
            }
            check(&b);
        }
    }
}
