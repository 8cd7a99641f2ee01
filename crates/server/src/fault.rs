//! Fault injection: lookups that answer wrongly on purpose, to prove the egress door.
//!
//! The incidents Hearth answers were caches and maps returning another customer's
//! entry. With the `fault-injection` cargo feature (enabled by the test suite, never
//! by a release build) and `HEARTH_FAULT_P=<probability>` in the environment, four
//! lookups return another camera's entry with that probability: the grant lookup,
//! the stream-hub lookup, the segment cache and the still-image cache.
//! A fifth point works below the caches: the frame cache (`frame`) may hand the
//! still decoder, or an RTSP viewer's frame feed, another camera's frames. `HEARTH_FAULT_POINTS=<list>`
//! (comma-separated `grant`, `hub`, `object`, `still`, `frame`; default all five)
//! limits the faults to some of them.
//!
//! `HEARTH_FAULT_DOOR_OPEN=1` opens the door itself (see
//! [`hearth_access::switches::DoorSwitch`]): the faults above then deliver other
//! cameras' media to viewers. It exists to prove the *client's* check (the web
//! player's, `crates/server/tests/web_refusal.rs`).
//!
//! Without the feature, [`Faults::roll`] is a constant `false` and every fault
//! point is the identity, so none of this can be switched on in production.

use crate::hub::{FrameBatch, GopSnapshot, Hub, HubRegistry};
use hearth_access::grant::VerifiedGrant;
use hearth_access::{MediaKind, MediaObject};
use hearth_media::VideoFrame;
use hearth_model::{CameraId, Rendition};
use std::sync::Arc;

#[derive(Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    inner: Option<Inner>,
}

/// The lookups that can answer wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
enum Point {
    Grant,
    Hub,
    Object,
    Still,
    Frame,
}

#[cfg(feature = "fault-injection")]
impl Point {
    const ALL: [Point; 5] = [
        Point::Grant,
        Point::Hub,
        Point::Object,
        Point::Still,
        Point::Frame,
    ];

    fn name(self) -> &'static str {
        match self {
            Point::Grant => "grant",
            Point::Hub => "hub",
            Point::Object => "object",
            Point::Still => "still",
            Point::Frame => "frame",
        }
    }

    /// `HEARTH_FAULT_POINTS`: which lookups may answer wrongly (all when unset).
    /// A name that is not a fault point stops the server: a typo must not quietly
    /// test less than it says.
    fn from_env() -> Vec<Point> {
        let Ok(list) = std::env::var("HEARTH_FAULT_POINTS") else {
            return Point::ALL.to_vec();
        };
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                Point::ALL
                    .into_iter()
                    .find(|p| p.name() == n)
                    .unwrap_or_else(|| {
                        panic!(
                            "HEARTH_FAULT_POINTS: unknown fault point {n:?} \
                             (expected grant, hub, object, still, frame)"
                        )
                    })
            })
            .collect()
    }
}

#[cfg(feature = "fault-injection")]
struct Inner {
    p: f64,
    points: Vec<Point>,
    recent_grants: std::sync::Mutex<std::collections::VecDeque<VerifiedGrant>>,
}

impl Faults {
    /// Reads `HEARTH_FAULT_P` and `HEARTH_FAULT_POINTS`
    /// when the feature is compiled in; inert otherwise.
    pub fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        {
            let p = std::env::var("HEARTH_FAULT_P")
                .ok()
                .and_then(|v| v.parse::<f64>().ok());
            let inner = p.filter(|p| *p > 0.0).map(|p| {
                let points = Point::from_env();
                let names: Vec<&str> = points.iter().map(|p| p.name()).collect();
                tracing::warn!(
                    p,
                    points = %names.join(","),
                    "FAULT INJECTION ENABLED: lookups will return wrong entries"
                );
                Inner {
                    p: p.min(1.0),
                    points,
                    recent_grants: Default::default(),
                }
            });
            Self { inner }
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            Self::default()
        }
    }

    /// Whether this lookup should answer wrongly.
    #[inline]
    fn roll(&self, point: Point) -> bool {
        #[cfg(feature = "fault-injection")]
        if let Some(i) = &self.inner {
            return i.points.contains(&point) && rand::random::<f64>() < i.p;
        }
        let _ = point;
        false
    }

    /// The grant lookup: may hand back another, recently seen grant.
    pub fn grant(&self, real: VerifiedGrant) -> VerifiedGrant {
        #[cfg(feature = "fault-injection")]
        if let Some(i) = &self.inner {
            let mut recent = i
                .recent_grants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let swapped = if self.roll(Point::Grant) {
                let others: Vec<_> = recent
                    .iter()
                    .filter(|g| g.grant().camera != real.grant().camera)
                    .copied()
                    .collect();
                others
                    .get(rand::random_range(0..others.len().max(1)))
                    .copied()
            } else {
                None
            };
            if recent.len() >= 64 {
                recent.pop_front();
            }
            recent.push_back(real);
            return swapped.unwrap_or(real);
        }
        real
    }

    /// The stream-hub lookup for `camera`'s `rendition`: may answer with
    /// another camera's hub (of the same rendition when there is one).
    pub fn hub(
        &self,
        camera: CameraId,
        rendition: Rendition,
        real: Option<Arc<Hub>>,
        hubs: &HubRegistry,
    ) -> Option<Arc<Hub>> {
        if self.roll(Point::Hub) {
            return hubs.random_other(camera, Some(rendition)).or(real);
        }
        real
    }

    /// The segment cache: may answer with another camera's object of the same kind.
    pub fn object(
        &self,
        camera: CameraId,
        real: Option<Arc<MediaObject>>,
        kind: MediaKind,
        hubs: &HubRegistry,
    ) -> Option<Arc<MediaObject>> {
        if self.roll(Point::Object) {
            return hubs
                .random_other(camera, None)
                .and_then(|h| h.any_object(kind))
                .or(real);
        }
        real
    }

    /// Another camera's newest frames, when the frame point fires.
    fn foreign_frames(&self, camera: CameraId, hubs: &HubRegistry) -> Option<Vec<VideoFrame>> {
        if !self.roll(Point::Frame) {
            return None;
        }
        hubs.random_other(camera, None)
            .and_then(|h| h.newest_gop())
            .map(|g| g.frames)
    }

    /// The frame cache, as the still decoder reads it: may hand over another
    /// camera's newest frames under this camera's GOP.
    pub fn frames(
        &self,
        camera: CameraId,
        mut gop: GopSnapshot,
        hubs: &HubRegistry,
    ) -> GopSnapshot {
        if let Some(frames) = self.foreign_frames(camera, hubs) {
            gop.frames = frames;
        }
        gop
    }

    /// The frame feed of a frame-by-frame viewer (RTSP): may hand over another
    /// camera's newest frames in place of this camera's new ones.
    pub fn frame_batch(
        &self,
        camera: CameraId,
        mut batch: FrameBatch,
        hubs: &HubRegistry,
    ) -> FrameBatch {
        if let Some(frames) = self.foreign_frames(camera, hubs) {
            batch.frames = frames;
        }
        batch
    }

    /// The still-image cache: may answer with another camera's still.
    pub fn still(
        &self,
        camera: CameraId,
        real: Arc<MediaObject>,
        hubs: &HubRegistry,
    ) -> Arc<MediaObject> {
        if self.roll(Point::Still) {
            return hubs
                .random_other(camera, None)
                .and_then(|h| h.cached_still())
                .unwrap_or(real);
        }
        real
    }
}
