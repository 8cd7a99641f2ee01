//! HLS egress: master and media playlists (fMP4 and MPEG-TS), init segments,
//! segments and keys, each written through the door.

use super::HttpGuard;
use super::{Egress, MediaResponse};
use crate::error::AppError;
use crate::hub::Hub;
use crate::state::AppState;
use axum::extract::State;
use axum::http::Uri;
use hearth_access::{Grant, MediaKind};
use std::sync::Arc;
use std::time::Duration;

/// A viewer who arrives before the camera's first segment waits at most this long.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(8);

/// The hub of the grant's camera, if the grant is for the camera's current binding.
/// (The egress door would refuse a past epoch's objects anyway; refusing here keeps
/// an outdated grant from looking like an isolation fault.)
pub(super) fn hub_for(
    st: &AppState,
    grant: &Grant,
    missing: AppError,
) -> Result<Arc<Hub>, AppError> {
    let hub = st
        .faults
        .hub(grant.camera, st.hubs.get(grant.camera), &st.hubs)
        .ok_or(missing)?;
    if hub.epoch() != grant.epoch {
        if !hub.is_online() {
            return Err(AppError::CameraOffline);
        }
        tracing::info!(grant = ?grant.id, camera = ?grant.camera, "grant for a past binding epoch refused");
        return Err(AppError::Forbidden);
    }
    Ok(hub)
}

async fn playlists(
    st: &AppState,
    grant: &Grant,
    ts: bool,
) -> Result<crate::hub::Playlists, AppError> {
    let hub = hub_for(st, grant, AppError::CameraOffline)?;
    hub.touch(ts);
    hub.wait_for_playlists(FIRST_SEGMENT_WAIT)
        .await
        .ok_or(AppError::CameraOffline)
}

/// Which of a camera's playlists a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    Master,
    Fmp4,
    Ts,
}

pub(super) async fn playlist(
    st: &AppState,
    door: &HttpGuard,
    kind: PlaylistKind,
) -> Result<MediaResponse, AppError> {
    let p = playlists(st, door.grant(), matches!(kind, PlaylistKind::Ts)).await?;
    door.write(match kind {
        PlaylistKind::Master => &p.master,
        PlaylistKind::Fmp4 => &p.fmp4,
        PlaylistKind::Ts => &p.ts,
    })
}

pub(super) async fn master_playlist(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    playlist(&st, &door, PlaylistKind::Master).await
}

pub(super) async fn fmp4_playlist(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    playlist(&st, &door, PlaylistKind::Fmp4).await
}

pub(super) async fn ts_playlist(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    playlist(&st, &door, PlaylistKind::Ts).await
}

pub(super) async fn media_object(
    State(st): State<AppState>,
    Egress(door): Egress,
    uri: Uri,
) -> Result<MediaResponse, AppError> {
    let (_, name) = super::media_path(uri.path()).ok_or(AppError::NotFound)?;
    object(&st, &door, name).await
}

/// An init segment, segment or key of the grant's camera, by name.
pub(super) async fn object(
    st: &AppState,
    door: &HttpGuard,
    name: &str,
) -> Result<MediaResponse, AppError> {
    let hub = hub_for(st, door.grant(), AppError::NotFound)?;
    let kind = if name.ends_with(".m4s") {
        MediaKind::Fmp4Segment
    } else if name.ends_with(".ts") {
        MediaKind::TsSegment
    } else if name.starts_with("init-") && name.ends_with(".mp4") {
        MediaKind::InitSegment
    } else if name.starts_with("key-") && name.ends_with(".bin") {
        MediaKind::Key
    } else {
        return Err(AppError::NotFound);
    };
    hub.touch(kind == MediaKind::TsSegment);
    let obj = hub.object(kind, name);
    let obj = st.faults.object(door.grant().camera, obj, kind, &st.hubs);
    let obj = obj.ok_or(AppError::NotFound)?;
    door.write(&obj)
}
