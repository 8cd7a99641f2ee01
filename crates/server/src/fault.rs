//! Fault injection: lookups that answer wrongly on purpose, to prove the egress door.
//!
//! The incidents Hearth answers were caches and maps returning another customer's
//! entry. With the `fault-injection` cargo feature (enabled by the test suite, never
//! by a release build) and `HEARTH_FAULT_P=<probability>` in the environment, four
//! lookups return another camera's entry with that probability: the grant lookup,
//! the stream-hub lookup, the segment cache and the still-image cache. Without the
//! feature, [`Faults::roll`] is a constant `false` and every fault point is the
//! identity, so none of this can be switched on in production.

use crate::egress::{MediaKind, MediaObject};
use crate::grant::VerifiedGrant;
use crate::hub::{Hub, HubRegistry};
use hearth_model::CameraId;
use std::sync::Arc;

#[derive(Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    inner: Option<Inner>,
}

#[cfg(feature = "fault-injection")]
struct Inner {
    p: f64,
    recent_grants: std::sync::Mutex<std::collections::VecDeque<VerifiedGrant>>,
}

impl Faults {
    /// Reads `HEARTH_FAULT_P` when the feature is compiled in; inert otherwise.
    pub fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        {
            let p = std::env::var("HEARTH_FAULT_P")
                .ok()
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(p) = p.filter(|p| *p > 0.0) {
                tracing::warn!(
                    p,
                    "FAULT INJECTION ENABLED: lookups will return wrong entries"
                );
                return Self {
                    inner: Some(Inner {
                        p: p.min(1.0),
                        recent_grants: Default::default(),
                    }),
                };
            }
        }
        Self::default()
    }

    /// Whether this lookup should answer wrongly.
    #[inline]
    fn roll(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        if let Some(i) = &self.inner {
            return rand::random::<f64>() < i.p;
        }
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
            let swapped = if self.roll() {
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

    /// The stream-hub lookup: may answer with another camera's hub.
    pub fn hub(
        &self,
        camera: CameraId,
        real: Option<Arc<Hub>>,
        hubs: &HubRegistry,
    ) -> Option<Arc<Hub>> {
        if self.roll() {
            return hubs.random_other(camera).or(real);
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
        if self.roll() {
            return hubs
                .random_other(camera)
                .and_then(|h| h.any_object(kind))
                .or(real);
        }
        real
    }

    /// The still-image cache: may answer with another camera's still.
    pub fn still(
        &self,
        camera: CameraId,
        real: Arc<MediaObject>,
        hubs: &HubRegistry,
    ) -> Arc<MediaObject> {
        if self.roll() {
            return hubs
                .random_other(camera)
                .and_then(|h| h.cached_still())
                .unwrap_or(real);
        }
        real
    }
}
