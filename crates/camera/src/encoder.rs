//! Turns the camera's scene into H.264 access units with OpenH264.
//!
//! The encoder is deterministic and clock-free: the caller passes the wall-clock time to
//! print on screen, and presentation timestamps come from the frame index (`index *
//! 1000 / fps` ms), so a test can encode a minute of video in a second. It owns the IDR
//! schedule (the first frame, then every `keyframe_interval_ms`, plus on request, e.g.
//! when a new RTMP connection starts) instead of leaving it to OpenH264, so the GOP
//! layout is exact and testable.
//!
//! Output is constrained baseline (no B-frames, so decode order is presentation order
//! and the FLV composition time is always 0), one slice per picture, single-threaded:
//! a camera gets one core.

use bytes::Bytes;
use hearth_model::UnixMillis;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, EncoderConfig, FrameRate, IntraFramePeriod, Profile, RateControlMode,
    UsageType,
};
use openh264::{Timestamp as H264Timestamp, encoder::FrameType};

use crate::config::{SimCameraConfig, load_timezone};
use crate::error::CameraError;
use crate::flv;
use crate::scene::Scene;

/// One encoded picture (an H.264 access unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Whether this is an IDR picture (a random access point). IDR frames also carry
    /// the SPS and PPS in-band.
    pub keyframe: bool,
    /// Presentation time in milliseconds since the encoder's first frame.
    pub pts_ms: u64,
    /// 0 for the encoder's first frame.
    pub frame_index: u64,
    /// Wall-clock time the picture shows (the `now` given to [`Encoder::next_frame`]);
    /// signed into the GOP signature record of a keyframe.
    pub capture_time: UnixMillis,
    /// The access unit as an Annex-B byte stream (4-byte start codes).
    pub annexb: Vec<u8>,
    /// The same NAL units, each prefixed by its 4-byte big-endian length.
    pub avcc: Bytes,
}

impl EncodedFrame {
    /// The FLV/RTMP video tag payload for this frame (see [`crate::flv`]).
    pub fn flv_video_tag(&self) -> Bytes {
        flv::avc_video_tag(self.keyframe, &self.avcc)
    }
}

/// The simulated camera's picture source and H.264 encoder.
pub struct Encoder {
    cfg: SimCameraConfig,
    scene: Scene,
    h264: openh264::encoder::Encoder,
    frame_index: u64,
    last_keyframe_pts: Option<u64>,
    keyframe_requested: bool,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl Encoder {
    /// Validates `cfg` and sets up OpenH264 for it.
    pub fn new(cfg: SimCameraConfig) -> Result<Self, CameraError> {
        cfg.validate()?;
        let tz = load_timezone(&cfg.timezone)?;
        // Rate control is off: OpenH264 then codes at a constant QP (26), which keeps the
        // strip and text sharp on every frame, and flat synthetic pictures cost only tens
        // of kbit/s anyway. (Its bitrate modes also warn, on stderr, unless frame
        // skipping is on, and skipping would leave holes in the frame-index timeline.)
        // The nominal bitrate below only informs the level OpenH264 signals.
        let bitrate = (u64::from(cfg.width) * u64::from(cfg.height) * u64::from(cfg.fps) / 10)
            .clamp(200_000, 8_000_000) as u32;
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Off)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(cfg.fps as f32))
            // Every input picture must produce an access unit.
            .skip_frames(false)
            // IDRs come from our schedule only.
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .scene_change_detect(false)
            .complexity(Complexity::Low)
            .num_threads(1);
        let h264 = openh264::encoder::Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|source| CameraError::Encoder {
                context: "initialising",
                source,
            })?;
        Ok(Self {
            scene: Scene::new(&cfg, tz),
            cfg,
            h264,
            frame_index: 0,
            last_keyframe_pts: None,
            keyframe_requested: false,
            sps: None,
            pps: None,
        })
    }

    pub fn config(&self) -> &SimCameraConfig {
        &self.cfg
    }

    /// Makes the next frame an IDR (e.g. for a player or server that just connected).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Lets one frame time pass without encoding (the frame is dropped at the "sensor").
    /// Timestamps stay on the wall clock and the reference chain stays intact, so no
    /// keyframe is needed afterwards.
    pub fn skip_frame(&mut self) {
        self.frame_index += 1;
    }

    /// Draws and encodes the next picture, showing `now` in the camera's time zone.
    pub fn next_frame(&mut self, now: jiff::Timestamp) -> Result<EncodedFrame, CameraError> {
        let index = self.frame_index;
        let pts_ms = self.cfg.pts_ms(index);
        let interval = u64::from(self.cfg.keyframe_interval_ms);
        let keyframe_due = self.keyframe_requested
            || self
                .last_keyframe_pts
                .is_none_or(|last| pts_ms.saturating_sub(last) >= interval);
        if keyframe_due {
            self.h264.force_intra_frame();
        }

        let picture = self.scene.render(now, index);
        let bitstream = self
            .h264
            .encode_at(picture, H264Timestamp::from_millis(pts_ms))
            .map_err(|source| CameraError::Encoder {
                context: "encoding a frame",
                source,
            })?;

        let mut annexb = Vec::new();
        bitstream.write_vec(&mut annexb);
        let frame_type = bitstream.frame_type();
        let nals = flv::split_annexb(&annexb);
        if nals.is_empty() {
            return Err(CameraError::Encoder {
                context: "encoding a frame (no output; frame skipped)",
                source: openh264::Error::msg("empty access unit"),
            });
        }
        let mut keyframe = frame_type == FrameType::IDR;
        for nal in &nals {
            match flv::nal_type(nal) {
                Some(flv::NAL_SPS) => self.sps = Some(nal.to_vec()),
                Some(flv::NAL_PPS) => self.pps = Some(nal.to_vec()),
                Some(flv::NAL_IDR) => keyframe = true,
                _ => {}
            }
        }
        let avcc = flv::to_avcc(nals.iter().copied());
        // Normalise to 4-byte start codes so the stream is uniform for consumers.
        let annexb = nals
            .iter()
            .flat_map(|nal| [&[0u8, 0, 0, 1][..], nal])
            .flatten()
            .copied()
            .collect();

        if keyframe {
            self.last_keyframe_pts = Some(pts_ms);
            self.keyframe_requested = false;
        }
        self.frame_index += 1;
        Ok(EncodedFrame {
            keyframe,
            pts_ms,
            frame_index: index,
            capture_time: UnixMillis(now.as_millisecond()),
            annexb,
            avcc,
        })
    }

    /// The FLV/RTMP sequence header (AVCDecoderConfigurationRecord) for the SPS and PPS
    /// of the last IDR; `None` before the first frame is encoded.
    pub fn avc_sequence_header(&self) -> Option<Bytes> {
        flv::avc_sequence_header(self.sps.as_deref()?, self.pps.as_deref()?)
    }

    /// The current SPS (without start code), once the first frame is encoded.
    pub fn sps(&self) -> Option<&[u8]> {
        self.sps.as_deref()
    }

    /// The current PPS (without start code), once the first frame is encoded.
    pub fn pps(&self) -> Option<&[u8]> {
        self.pps.as_deref()
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("cfg", &self.cfg)
            .field("frame_index", &self.frame_index)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(sig: u32) -> SimCameraConfig {
        SimCameraConfig {
            width: 320,
            height: 180,
            ..SimCameraConfig::new("Test", "UTC", sig)
        }
    }

    #[test]
    fn gop_follows_the_keyframe_interval() {
        let mut enc = Encoder::new(small(1)).unwrap();
        assert!(enc.avc_sequence_header().is_none());
        let now = jiff::Timestamp::UNIX_EPOCH;
        let frames: Vec<_> = (0..61).map(|_| enc.next_frame(now).unwrap()).collect();
        let keyframes: Vec<u64> = frames
            .iter()
            .filter(|f| f.keyframe)
            .map(|f| f.frame_index)
            .collect();
        // 15 fps, 2000 ms: frames 0, 30, 60.
        assert_eq!(keyframes, [0, 30, 60]);
        assert_eq!(frames[30].pts_ms, 2000);
        assert_eq!(frames[1].pts_ms, 66);
        // IDRs carry SPS and PPS in-band; inter frames do not.
        let types = |f: &EncodedFrame| -> Vec<u8> {
            flv::split_annexb(&f.annexb)
                .iter()
                .filter_map(|n| flv::nal_type(n))
                .collect()
        };
        assert!(types(&frames[0]).starts_with(&[flv::NAL_SPS, flv::NAL_PPS]));
        assert!(types(&frames[0]).contains(&flv::NAL_IDR));
        assert!(!types(&frames[1]).contains(&flv::NAL_IDR));
        assert!(!types(&frames[1]).contains(&flv::NAL_SPS));
    }

    #[test]
    fn requested_keyframe_comes_next() {
        let mut enc = Encoder::new(small(2)).unwrap();
        let now = jiff::Timestamp::UNIX_EPOCH;
        for _ in 0..5 {
            enc.next_frame(now).unwrap();
        }
        enc.request_keyframe();
        let f = enc.next_frame(now).unwrap();
        assert!(f.keyframe);
        assert_eq!(f.frame_index, 5);
        assert!(!enc.next_frame(now).unwrap().keyframe);
        // The schedule restarts from the forced IDR: next one 2 s (30 frames) later.
        let next: Vec<_> = (0..40)
            .map(|_| enc.next_frame(now).unwrap())
            .filter(|f| f.keyframe)
            .map(|f| f.frame_index)
            .collect();
        assert_eq!(next, [35]);
    }

    #[test]
    fn sequence_header_is_constrained_baseline() {
        let mut enc = Encoder::new(small(3)).unwrap();
        let first = enc.next_frame(jiff::Timestamp::UNIX_EPOCH).unwrap();
        let header = enc.avc_sequence_header().unwrap();
        assert_eq!(&header[..5], &[0x17, 0, 0, 0, 0]);
        assert_eq!(header[6], 66, "profile_idc baseline");
        assert_ne!(
            header[7] & 0x40,
            0,
            "constraint_set1_flag (constrained baseline)"
        );
        let sps = enc.sps().unwrap();
        assert_eq!(&header[13..13 + sps.len()], sps);
        // The avcc form is the same NAL units as the Annex-B form.
        let nals = flv::split_annexb(&first.annexb);
        assert_eq!(flv::to_avcc(nals.iter().copied()), first.avcc);
        let tag = first.flv_video_tag();
        assert_eq!(&tag[..5], &[0x17, 1, 0, 0, 0]);
    }

    #[test]
    fn invalid_config_is_refused_up_front() {
        let err = Encoder::new(SimCameraConfig::new("x", "Not/AZone", 1)).unwrap_err();
        assert!(matches!(err, CameraError::UnknownTimeZone { .. }));
    }
}
