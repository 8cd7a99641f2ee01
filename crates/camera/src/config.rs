//! What a simulated camera looks like: its name, time zone, picture size and cadence.
//!
//! Validation happens here, once, before any thread or socket exists, so a bad
//! `camera add --timezone` or size is a clear error rather than a camera that silently
//! never publishes.

use hearth_model::CameraId;

use crate::error::CameraError;

/// Smallest picture the signature strip and text stay legible in.
const MIN_WIDTH: u32 = 128;
const MIN_HEIGHT: u32 = 72;
/// OpenH264's limit (level 5.2).
const MAX_LONG_SIDE: u32 = 3840;
const MAX_SHORT_SIDE: u32 = 2160;

/// Configuration of one simulated camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCameraConfig {
    /// Shown on screen; also what operators recognise the camera by.
    pub name: String,
    /// IANA time zone the on-screen clock uses, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Picture width in pixels (even). Default 1280.
    pub width: u32,
    /// Picture height in pixels (even). Default 720.
    pub height: u32,
    /// Frames per second. Default 15.
    pub fps: u32,
    /// Distance between IDR frames in milliseconds. Default 2000.
    pub keyframe_interval_ms: u32,
    /// The 32-bit visual signature drawn into every picture; see [`crate::signature_for`].
    pub signature: u32,
    /// The camera id named in the GOP signature records the camera puts in-band
    /// (see `hearth_media::signing`), if the camera knows it; `None` (the default)
    /// signs with the all-zero id. Ingest may compare it with the camera the
    /// stream key belongs to.
    pub camera_id: Option<CameraId>,
    /// Paint a busy region (blocks that change every frame, like leaves in the
    /// wind or traffic) so the stream needs the bitrate a real camera's does;
    /// without it the static scene codes to a few dozen kbit/s. Default false.
    pub busy: bool,
    /// **For tests only.** `Some(n)`: on every connection, after `n` complete GOPs,
    /// flip one byte of the next inter frame *after* signing it, so ingest that
    /// verifies GOP signatures must refuse the stream at the following IDR. `None`
    /// (the default) for any real use.
    pub tamper_after_gops: Option<u64>,
}

impl SimCameraConfig {
    /// A 1280x720, 15 fps camera with an IDR every 2 s.
    pub fn new(name: impl Into<String>, timezone: impl Into<String>, signature: u32) -> Self {
        Self {
            name: name.into(),
            timezone: timezone.into(),
            width: 1280,
            height: 720,
            fps: 15,
            keyframe_interval_ms: 2000,
            signature,
            camera_id: None,
            busy: false,
            tamper_after_gops: None,
        }
    }

    /// Checks everything that could stop the camera from producing video.
    pub fn validate(&self) -> Result<(), CameraError> {
        validate_timezone(&self.timezone)?;
        let invalid = |msg: String| Err(CameraError::InvalidConfig(msg));
        if self.width & 1 != 0 || self.height & 1 != 0 {
            return invalid(format!(
                "picture size {}x{} must be even in both directions (4:2:0 chroma)",
                self.width, self.height
            ));
        }
        if self.width < MIN_WIDTH || self.height < MIN_HEIGHT {
            return invalid(format!(
                "picture size {}x{} is below the minimum {MIN_WIDTH}x{MIN_HEIGHT}",
                self.width, self.height
            ));
        }
        let (long, short) = (self.width.max(self.height), self.width.min(self.height));
        if long > MAX_LONG_SIDE || short > MAX_SHORT_SIDE {
            return invalid(format!(
                "picture size {}x{} is above the encoder's maximum {MAX_LONG_SIDE}x{MAX_SHORT_SIDE}",
                self.width, self.height
            ));
        }
        if !(1..=60).contains(&self.fps) {
            return invalid(format!("frame rate {} is outside 1..=60", self.fps));
        }
        if self.keyframe_interval_ms == 0 {
            return invalid("keyframe interval must be positive".into());
        }
        Ok(())
    }

    /// Milliseconds from the first frame to frame `index`, exact (no accumulated drift).
    pub(crate) fn pts_ms(&self, index: u64) -> u64 {
        index * 1000 / u64::from(self.fps)
    }
}

/// Checks that `tz` names a time zone in the bundled IANA database.
///
/// The database is compiled in (`jiff`'s `tzdb-bundle-always`), so the answer does not
/// depend on the host's `/usr/share/zoneinfo`.
pub fn validate_timezone(tz: &str) -> Result<(), CameraError> {
    load_timezone(tz).map(|_| ())
}

pub(crate) fn load_timezone(tz: &str) -> Result<jiff::tz::TimeZone, CameraError> {
    jiff::tz::TimeZone::get(tz).map_err(|source| CameraError::UnknownTimeZone {
        name: tz.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_720p15_with_2s_gop() {
        let cfg = SimCameraConfig::new("Porch", "Europe/Berlin", 7);
        assert_eq!((cfg.width, cfg.height, cfg.fps), (1280, 720, 15));
        assert_eq!(cfg.keyframe_interval_ms, 2000);
        assert_eq!((cfg.camera_id, cfg.tamper_after_gops), (None, None));
        cfg.validate().unwrap();
    }

    #[test]
    fn timezones_come_from_the_bundled_database() {
        for ok in [
            "Europe/Berlin",
            "America/Los_Angeles",
            "Asia/Kolkata",
            "UTC",
        ] {
            validate_timezone(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "Mars/Olympus_Mons", "Europe/Berlin ", "../etc/passwd"] {
            let err = validate_timezone(bad).unwrap_err();
            assert!(matches!(err, CameraError::UnknownTimeZone { .. }), "{bad}");
        }
    }

    #[test]
    fn rejects_sizes_and_rates_that_cannot_work() {
        let base = SimCameraConfig::new("x", "UTC", 1);
        let cases = [
            SimCameraConfig {
                width: 641,
                ..base.clone()
            },
            SimCameraConfig {
                height: 64,
                ..base.clone()
            },
            SimCameraConfig {
                width: 4096,
                ..base.clone()
            },
            SimCameraConfig {
                fps: 0,
                ..base.clone()
            },
            SimCameraConfig {
                keyframe_interval_ms: 0,
                ..base.clone()
            },
            SimCameraConfig {
                timezone: "Nowhere/City".into(),
                ..base.clone()
            },
        ];
        for cfg in cases {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }

    #[test]
    fn pts_does_not_drift() {
        let cfg = SimCameraConfig::new("x", "UTC", 1);
        assert_eq!(cfg.pts_ms(0), 0);
        assert_eq!(cfg.pts_ms(1), 66);
        assert_eq!(cfg.pts_ms(15), 1000);
        assert_eq!(cfg.pts_ms(15 * 3600), 3_600_000);
    }
}
