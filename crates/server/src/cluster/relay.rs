//! The edge relay's parts that need no node state: which relays run on this
//! node and when a viewer last asked ([`Relays`]), the path an edge fetches a
//! camera at, and the wire format ([`wire`]). The owner side (serving a
//! camera's frames to another node) and the edge side (fetching them into a
//! hub of this node's) are in [`crate::door::relay`]: they write through the
//! door and read the node's state.
//!
//! The wire is Hearth's own: a frame is its timestamps, key flag, provenance
//! record and AVCC bytes. No existing protocol carries the provenance record
//! beside each frame without re-muxing.

use hearth_model::{CameraId, Rendition};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod wire;

/// A relay with no viewer for this long ends.
pub const IDLE: Duration = Duration::from_secs(30);

/// The path an edge fetches a camera's rendition at.
pub fn path(camera: CameraId, rendition: Rendition) -> String {
    format!("/internal/v1/relay/{camera}/{}", rendition.as_str())
}

/// Edge side: which relays run here and when a viewer last asked.
#[derive(Default)]
pub struct Relays {
    wanted: Mutex<HashMap<(CameraId, Rendition), Instant>>,
}

impl Relays {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(CameraId, Rendition), Instant>> {
        self.wanted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a viewer's request; true when no relay runs for it yet.
    pub(crate) fn want(&self, at: (CameraId, Rendition)) -> bool {
        self.lock().insert(at, Instant::now()).is_none()
    }

    /// Whether a relay runs for it (or is starting).
    pub(crate) fn running(&self, at: (CameraId, Rendition)) -> bool {
        self.lock().contains_key(&at)
    }

    /// True (and forgotten) when no viewer asked for it within [`IDLE`].
    pub(crate) fn idle(&self, at: (CameraId, Rendition)) -> bool {
        let mut wanted = self.lock();
        let idle = wanted.get(&at).is_none_or(|t| t.elapsed() > IDLE);
        if idle {
            wanted.remove(&at);
        }
        idle
    }
}
