//! What every frame-by-frame way out (RTSP, WebRTC) does alike: follow the
//! camera's hub from the current GOP's keyframe, end on a new binding epoch or a
//! reconnecting publisher, and recheck the grant while it plays.

use crate::hub::{FrameBatch, FrameCursor, Hub};
use crate::state::AppState;
use hearth_access::EgressGuard;

/// Why a frame-by-frame session ends (logged).
pub type Why = &'static str;

/// Whether the grant still holds (expiry, revocation, kill switches).
pub fn allowed(guard: &EgressGuard) -> Result<(), Why> {
    if guard.grant().expires_at <= hearth_access::clock::now() {
        return Err("grant expired");
    }
    if !guard.still_allowed() {
        return Err("access revoked");
    }
    Ok(())
}

/// One viewer's place in its camera's frames.
#[derive(Default)]
pub struct Feed {
    cursor: Option<FrameCursor>,
    /// The publisher followed: another one is another timeline.
    lease: Option<u64>,
}

impl Feed {
    /// The next call starts again at the current GOP's keyframe.
    pub fn restart(&mut self) {
        self.cursor = None;
    }

    /// Nothing has been read yet (the next call returns the current GOP).
    pub fn is_new(&self) -> bool {
        self.cursor.is_none()
    }

    /// The frames the viewer has not had yet (the whole current GOP, keyframe
    /// first, on the first call or after [`restart`](Self::restart)), or why the
    /// session must end. Each frame must still pass the door before it is sent.
    pub fn next(
        &mut self,
        state: &AppState,
        hub: &Hub,
        guard: &EgressGuard,
    ) -> Result<FrameBatch, Why> {
        let Some(batch) = hub.frames_after(self.cursor) else {
            return Err("camera offline");
        };
        if batch.epoch != guard.grant().epoch {
            return Err("binding epoch changed");
        }
        if *self.lease.get_or_insert(batch.lease) != batch.lease {
            return Err("camera reconnected");
        }
        let batch = state
            .faults
            .frame_batch(guard.grant().camera, batch, &state.hubs);
        self.cursor = Some(batch.cursor);
        Ok(batch)
    }
}
