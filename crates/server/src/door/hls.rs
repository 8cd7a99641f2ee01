//! HLS egress: master and media playlists (fMP4 with LL-HLS parts, for each
//! rendition, and MPEG-TS), init segments, segments, parts and keys, each written
//! through the door.
//!
//! LL-HLS (RFC 8216bis) needs two kinds of waiting, both bounded and both before
//! the door writes: a blocking playlist reload (`_HLS_msn`/`_HLS_part`) waits
//! until the hub lists that segment or part, and a request for the part the
//! preload hint names waits until the part exists.

use super::HttpGuard;
use super::{Egress, MediaResponse};
use crate::error::AppError;
use crate::hub::{Container, Hub, Playlists, rendition_of};
use crate::state::AppState;
use axum::extract::State;
use axum::http::Uri;
use hearth_access::{Grant, MediaKind};
use hearth_model::Rendition;
use std::sync::Arc;
use std::time::Duration;

/// A viewer who arrives before the camera's first segment waits at most this long.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(8);
/// A blocking playlist reload waits at most three target durations (RFC 8216bis
/// §6.2.5.2), then is answered 503.
const BLOCKING_RELOAD_WAIT: Duration = Duration::from_secs(6);
/// A request for the hinted part waits at most this long for it.
const HINTED_PART_WAIT: Duration = Duration::from_secs(3);

/// The hub of the grant's camera, if the grant is for the camera's current binding.
/// (The egress door would refuse a past epoch's objects anyway; refusing here keeps
/// an outdated grant from looking like an isolation fault.)
pub(super) fn hub_for(
    st: &AppState,
    grant: &Grant,
    missing: AppError,
) -> Result<Arc<Hub>, AppError> {
    rendition_hub_for(st, grant, Rendition::Main, missing)
}

/// As [`hub_for`], for one of the camera's renditions.
pub(super) fn rendition_hub_for(
    st: &AppState,
    grant: &Grant,
    rendition: Rendition,
    missing: AppError,
) -> Result<Arc<Hub>, AppError> {
    let real = st.hubs.get_rendition(grant.camera, rendition);
    let hub = st
        .faults
        .hub(grant.camera, rendition, real, &st.hubs)
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

/// Which of a camera's playlists a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    /// The multivariant playlist listing the camera's renditions in a container
    /// (`index.m3u8` for fMP4, `ts-index.m3u8` for MPEG-TS).
    Master(Container),
    /// A rendition's media playlist (fMP4 ones carry LL-HLS parts and answer
    /// blocking reloads; TS ones list whole segments, for Cast receivers).
    Media(Rendition, Container),
}

impl PlaylistKind {
    /// Every playlist a route serves, with its name under `/media/{grant}/`.
    pub const ALL: [(&'static str, PlaylistKind); 6] = [
        ("index.m3u8", PlaylistKind::Master(Container::Fmp4)),
        ("ts-index.m3u8", PlaylistKind::Master(Container::Ts)),
        (
            "live.m3u8",
            PlaylistKind::Media(Rendition::Main, Container::Fmp4),
        ),
        (
            "sub.m3u8",
            PlaylistKind::Media(Rendition::Sub, Container::Fmp4),
        ),
        (
            "ts.m3u8",
            PlaylistKind::Media(Rendition::Main, Container::Ts),
        ),
        (
            "sub-ts.m3u8",
            PlaylistKind::Media(Rendition::Sub, Container::Ts),
        ),
    ];

    /// The playlist a name under `/media/{grant}/` asks for.
    pub fn of_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

/// A blocking playlist reload's `_HLS_msn` and `_HLS_part` (RFC 8216bis
/// §6.2.5.2), from a query string; other parameters are ignored.
fn blocking_reload(query: Option<&str>) -> Result<Option<(u64, Option<u32>)>, AppError> {
    let (mut msn, mut part) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        let bad = || AppError::BadRequest(format!("malformed LL-HLS parameter {pair:?}"));
        match pair.split_once('=') {
            Some(("_HLS_msn", v)) => msn = Some(v.parse::<u64>().map_err(|_| bad())?),
            Some(("_HLS_part", v)) => part = Some(v.parse::<u32>().map_err(|_| bad())?),
            _ => {}
        }
    }
    match (msn, part) {
        (None, Some(_)) => Err(AppError::BadRequest("_HLS_part without _HLS_msn".into())),
        (None, None) => Ok(None),
        (Some(m), p) => Ok(Some((m, p))),
    }
}

pub(super) async fn playlist(
    st: &AppState,
    door: &HttpGuard,
    kind: PlaylistKind,
    query: Option<&str>,
) -> Result<MediaResponse, AppError> {
    let grant = door.grant();
    match kind {
        PlaylistKind::Master(container) => {
            let main = playlists(st, grant, Rendition::Main, container, None).await?;
            crate::door::relay::ensure(st, grant.camera, Rendition::Sub).await;
            // The sub rendition is listed once it has a segment. Its playlist
            // goes through the door too; a lookup that answers with another
            // camera's hub is not listed, so not even its size shows here.
            let sub = rendition_hub_for(st, grant, Rendition::Sub, AppError::NotFound)
                .ok()
                .filter(|h| h.rendition() == Rendition::Sub && h.camera() == grant.camera)
                .and_then(|h| {
                    // Listed, so a player may move there: keep its segments.
                    h.touch(container == Container::Ts);
                    h.playlists()
                });
            door.write(&crate::hub::master_playlist(&main, sub.as_ref(), container))
        }
        PlaylistKind::Media(rendition, Container::Fmp4) => {
            let blocking = blocking_reload(query)?;
            let p = playlists(st, grant, rendition, Container::Fmp4, blocking).await?;
            door.write(&p.fmp4)
        }
        PlaylistKind::Media(rendition, Container::Ts) => {
            // No parts, no blocking reload (the playlist does not offer it).
            let p = playlists(st, grant, rendition, Container::Ts, None).await?;
            door.write(&p.ts)
        }
    }
}

/// A rendition's playlists once it has a segment, after a blocking reload's wait.
async fn playlists(
    st: &AppState,
    grant: &Grant,
    rendition: Rendition,
    container: Container,
    blocking: Option<(u64, Option<u32>)>,
) -> Result<Playlists, AppError> {
    // In a cluster, a camera ingested on another node is relayed here.
    crate::door::relay::ensure(st, grant.camera, rendition).await;
    let hub = rendition_hub_for(st, grant, rendition, AppError::CameraOffline)?;
    hub.touch(container == Container::Ts);
    let first = hub
        .wait_for_playlists(FIRST_SEGMENT_WAIT)
        .await
        .ok_or(AppError::CameraOffline)?;
    let Some((msn, part)) = blocking else {
        return Ok(first);
    };
    // RFC 8216bis: a request more than two segments ahead is an error.
    if hub.last_msn().is_some_and(|last| msn > last + 2) {
        return Err(AppError::BadRequest(format!(
            "_HLS_msn={msn} is too far ahead of the playlist"
        )));
    }
    if !hub.wait_for_media(msn, part, BLOCKING_RELOAD_WAIT).await {
        return Err(AppError::CameraOffline);
    }
    hub.playlists().ok_or(AppError::CameraOffline)
}

/// A playlist route: the playlist `kind` names.
pub(super) async fn playlist_route(
    st: &AppState,
    door: HttpGuard,
    kind: PlaylistKind,
    uri: &Uri,
) -> Result<MediaResponse, AppError> {
    playlist(st, &door, kind, uri.query()).await
}

macro_rules! playlist_handler {
    ($($name:ident => $kind:expr;)*) => {$(
        pub(super) async fn $name(
            State(st): State<AppState>,
            Egress(door): Egress,
            uri: Uri,
        ) -> Result<MediaResponse, AppError> {
            playlist_route(&st, door, $kind, &uri).await
        }
    )*};
}

playlist_handler! {
    master_playlist => PlaylistKind::Master(Container::Fmp4);
    ts_master_playlist => PlaylistKind::Master(Container::Ts);
    fmp4_playlist => PlaylistKind::Media(Rendition::Main, Container::Fmp4);
    sub_playlist => PlaylistKind::Media(Rendition::Sub, Container::Fmp4);
    ts_playlist => PlaylistKind::Media(Rendition::Main, Container::Ts);
    sub_ts_playlist => PlaylistKind::Media(Rendition::Sub, Container::Ts);
}

pub(super) async fn media_object(
    State(st): State<AppState>,
    Egress(door): Egress,
    uri: Uri,
) -> Result<MediaResponse, AppError> {
    let (_, name) = super::media_path(uri.path()).ok_or(AppError::NotFound)?;
    object(&st, &door, name).await
}

/// An init segment, segment, part or key of the grant's camera, by name (the
/// name's prefix says which rendition's hub holds it).
pub(super) async fn object(
    st: &AppState,
    door: &HttpGuard,
    name: &str,
) -> Result<MediaResponse, AppError> {
    let (rendition, bare) = rendition_of(name);
    let hub = rendition_hub_for(st, door.grant(), rendition, AppError::NotFound)?;
    let kind = if bare.ends_with(".m4s") {
        MediaKind::Fmp4Segment
    } else if bare.ends_with(".ts") {
        MediaKind::TsSegment
    } else if bare.starts_with("init-") && bare.ends_with(".mp4") {
        MediaKind::InitSegment
    } else if bare.starts_with("key-") && bare.ends_with(".bin") {
        MediaKind::Key
    } else {
        return Err(AppError::NotFound);
    };
    hub.touch(kind == MediaKind::TsSegment);
    let obj = hub.wait_for_object(kind, name, HINTED_PART_WAIT).await;
    let obj = st.faults.object(door.grant().camera, obj, kind, &st.hubs);
    let obj = obj.ok_or(AppError::NotFound)?;
    door.write(&obj)
}
