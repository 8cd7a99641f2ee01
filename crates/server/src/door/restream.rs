//! Viewer keys at the door: players and recorders that cannot send headers
//! (VLC, Home Assistant, Frigate, Blue Iris) present a viewer key, and get a
//! grant of their own principal (integration `restream`, held by the key) for
//! one camera. From there everything is the door's as for any grant: the access
//! view checks the key live (revoking it ends its streams within a second),
//! kill switches apply (`restream` is an integration), every object and frame
//! passes the egress guard.
//!
//! - RTSP: `rtsp://{key id}:{secret}@host:port/cameras/{camera}[/sub]`, Digest
//!   auth (`super::digest`), in `super::rtsp`.
//! - HLS: `GET /restream/{key id}/{secret}/{camera}/{playlist}` answers 302 to
//!   the same playlist under a short-lived grant (`/media/{grant}/...`), which
//!   needs no header. The key is in the first request's path only; the player
//!   asks it again when the grant runs out (VLC and Home Assistant reopen the
//!   URL they were given).
//!
//! A wrong key and an unknown one look the same (404 for HLS, 401 for RTSP);
//! failures are rate-limited per address.

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_access::audit;
use hearth_access::grant::{Grant, Holder};
use hearth_access::limits::SecretKind;
use hearth_model::{CameraId, GrantId, Integration, UnixMillis, ViewerKeyId};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// How long a restream grant lives (a player reopens the key's URL after).
pub const RESTREAM_GRANT_TTL_MS: i64 = 10 * 60 * 1000;

/// Whether `secret` is `key`'s (constant time).
pub fn key_matches(st: &AppState, key: ViewerKeyId, secret: &str) -> bool {
    st.keys
        .viewer_key_secret(key)
        .as_bytes()
        .ct_eq(secret.as_bytes())
        .into()
}

/// Counts a failed key check from `ip`; an error once the address is over
/// its budget.
pub fn failed(st: &AppState, ip: IpAddr) -> Result<(), AppError> {
    st.failures
        .record(SecretKind::ViewerKey, "", ip, hearth_access::clock::now());
    st.limits
        .attempt(SecretKind::ViewerKey, ip, "")
        .map_err(AppError::from)
}

/// A grant for `camera` held by viewer key `key`, if the key is live, lists
/// the camera and its user may view it now; recorded in the audit log.
pub fn grant_for(st: &AppState, key: ViewerKeyId, camera: CameraId) -> Result<Grant, AppError> {
    if st.access.is_fenced() {
        return Err(AppError::fenced());
    }
    if st.access.integration_suspended(Integration::Restream) {
        return Err(AppError::Suspended("restreams are suspended".into()));
    }
    let holder = Holder::of_viewer_key(key);
    let viewer = st
        .access
        .viewer_key_user(&holder)
        .ok_or(AppError::NotFound)?;
    let epoch = st.access.epoch_of(camera).ok_or(AppError::NotFound)?;
    let now = hearth_access::clock::now();
    let grant = Grant {
        id: GrantId::random(),
        viewer,
        camera,
        epoch,
        integration: Integration::Restream,
        expires_at: UnixMillis(now.0 + RESTREAM_GRANT_TTL_MS),
        holder,
    };
    st.access.check(&grant).map_err(|_| AppError::NotFound)?;
    tracing::info!(grant = ?grant.id, viewer = ?viewer, camera = ?camera, key = ?key, "restream grant issued");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(viewer),
        ..audit::event(
            "grant_issued",
            Some(&grant),
            serde_json::json!({"expires_at": grant.expires_at.0, "viewer_key": key.to_string()}),
        )
    });
    Ok(grant)
}

/// `GET /restream/{key}/{secret}/{camera}/{playlist}`: 302 to the playlist under
/// a fresh restream grant.
pub async fn hls(
    State(st): State<AppState>,
    crate::auth::ClientAddr(ip): crate::auth::ClientAddr,
    Path((key, secret, camera, playlist)): Path<(String, String, String, String)>,
) -> Result<Response, AppError> {
    if super::hls::PlaylistKind::of_name(&playlist).is_none() {
        return Err(AppError::NotFound);
    }
    let (Ok(key), Ok(camera)) = (key.parse::<ViewerKeyId>(), camera.parse::<CameraId>()) else {
        failed(&st, ip)?;
        return Err(AppError::NotFound);
    };
    if !key_matches(&st, key, &secret) {
        tracing::warn!(address = %ip, "restream: wrong viewer key");
        failed(&st, ip)?;
        return Err(AppError::NotFound);
    }
    let grant = grant_for(&st, key, camera)?;
    let token = st.door.grant_key().sign(&grant);
    let to = format!("{}/media/{token}/{playlist}", st.public_url);
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, to),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response())
}
