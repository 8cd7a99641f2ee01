//! Provenance: the identity a media object carries with its bytes.

use crate::{BindingEpoch, CameraId};

/// Milliseconds since the Unix epoch, wall clock. Units are in the name on purpose.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

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
}

impl Provenance {
    /// Whether this object may be shown under a grant for `camera` at `epoch`.
    pub fn belongs_to(&self, camera: CameraId, epoch: BindingEpoch) -> bool {
        self.camera == camera && self.epoch == epoch
    }
}
