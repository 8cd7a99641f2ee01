//! Snapshot egress: the camera's newest still as a JPEG, through the door.

use super::hls::rendition_hub_for;
use super::{Egress, HttpGuard, MediaResponse};
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::State;
use hearth_model::Rendition;

pub(super) async fn snapshot(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    still(&st, &door, Rendition::Main).await
}

/// The sub rendition's still: a small picture a viewer on a poor link can
/// refresh every second.
pub(super) async fn sub_snapshot(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    still(&st, &door, Rendition::Sub).await
}

/// The newest still of the grant's camera, from one of its renditions.
pub(super) async fn still(
    st: &AppState,
    door: &HttpGuard,
    rendition: Rendition,
) -> Result<MediaResponse, AppError> {
    crate::door::relay::ensure(st, door.grant().camera, rendition).await;
    let hub = rendition_hub_for(st, door.grant(), rendition, AppError::CameraOffline)?;
    let camera = door.grant().camera;
    let frames = |gop| st.faults.frames(camera, gop, &st.hubs);
    let still = match crate::hub::still::snapshot(&hub, frames).await {
        Err(AppError::ForeignFrame(found)) => return Err(door.refuse_frame(found)),
        other => other?,
    };
    let still = st.faults.still(door.grant().camera, still, &st.hubs);
    door.write(&still)
}
