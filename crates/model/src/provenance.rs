//! Provenance: the identity a media object carries with its bytes.

use crate::{BindingEpoch, CameraId};

/// Milliseconds since the Unix epoch, wall clock. Units are in the name on purpose.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

/// Which of a camera's streams a media object belongs to. Real cameras offer a
/// main stream (full resolution) and a sub stream (for example 640x360 at a few
/// hundred kbit/s); Hearth carries both as they come, without transcoding, and a
/// viewer on a poor link is moved to the sub stream. Both are the same camera and
/// epoch: a grant for the camera covers both.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Rendition {
    #[default]
    Main,
    Sub,
}

impl Rendition {
    pub const ALL: [Rendition; 2] = [Rendition::Main, Rendition::Sub];

    /// The byte in the in-band provenance record.
    pub fn code(self) -> u8 {
        match self {
            Rendition::Main => 0,
            Rendition::Sub => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Rendition::Main),
            1 => Some(Rendition::Sub),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rendition::Main => "main",
            Rendition::Sub => "sub",
        }
    }

    /// A publish path's credential and rendition: a camera publishes its sub
    /// stream under its stream key followed by `/sub` (`rtmp://host/live/<key>/sub`),
    /// and its main stream under the key alone (or `<key>/main`).
    pub fn from_stream_path(path: &str) -> (&str, Rendition) {
        if let Some(key) = path.strip_suffix("/sub") {
            (key, Rendition::Sub)
        } else if let Some(key) = path.strip_suffix("/main") {
            (key, Rendition::Main)
        } else {
            (path, Rendition::Main)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_paths_name_a_rendition() {
        assert_eq!(Rendition::from_stream_path("k3y"), ("k3y", Rendition::Main));
        assert_eq!(
            Rendition::from_stream_path("k3y/main"),
            ("k3y", Rendition::Main)
        );
        assert_eq!(
            Rendition::from_stream_path("k3y/sub"),
            ("k3y", Rendition::Sub)
        );
        assert_eq!(
            Rendition::from_stream_path("k3y/subway"),
            ("k3y/subway", Rendition::Main)
        );
        for r in Rendition::ALL {
            assert_eq!(Rendition::from_code(r.code()), Some(r));
        }
        assert_eq!(Rendition::from_code(2), None);
    }
}

/// Where a media object came from. Stamped at ingest and never changed afterwards:
/// every access unit, segment, init segment, playlist and still image carries one,
/// and the egress door compares it with the viewer's grant before writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// The camera whose sensor produced these bytes.
    pub camera: CameraId,
    /// The camera's binding epoch when the bytes were ingested.
    pub epoch: BindingEpoch,
    /// Monotonic per camera and object kind (access unit number, segment number...).
    pub seq: u64,
    /// Wall-clock capture time of the first frame in the object.
    pub capture_time: UnixMillis,
    /// The camera's stream the object was cut from.
    pub rendition: Rendition,
}

impl Provenance {
    /// Whether this object may be shown under a grant for `camera` at `epoch`.
    pub fn belongs_to(&self, camera: CameraId, epoch: BindingEpoch) -> bool {
        self.camera == camera && self.epoch == epoch
    }
}
