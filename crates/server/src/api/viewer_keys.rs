//! Viewer keys: an owner's named, revocable credentials for players and
//! recorders that cannot send headers (VLC, Home Assistant, Frigate, Blue Iris),
//! each for a set of cameras the owner may view. The key's URLs are in the
//! answer that creates it and nowhere else; revoking it ends every stream it
//! opened within a second (`crate::door::restream`).

use super::parse_json;
use crate::auth::AuthUser;
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_access::audit;
use hearth_model::{CameraId, ViewerKeyId};
use hearth_store::ViewerKey;
use serde::{Deserialize, Serialize};

/// At most this many keys per user, and cameras per key.
pub const MAX_KEYS_PER_USER: usize = 32;
pub const MAX_CAMERAS_PER_KEY: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    name: String,
    cameras: Vec<CameraId>,
}

#[derive(Serialize)]
pub(super) struct KeyView {
    id: ViewerKeyId,
    name: String,
    cameras: Vec<CameraId>,
    created_at: String,
}

impl From<ViewerKey> for KeyView {
    fn from(k: ViewerKey) -> Self {
        KeyView {
            id: k.id,
            name: k.name,
            cameras: k.cameras,
            created_at: hearth_access::clock::rfc3339(k.created_at),
        }
    }
}

#[derive(Serialize)]
pub(super) struct CameraUrls {
    camera: CameraId,
    /// `rtsp://{id}:{key}@host:port/cameras/{camera}` (absent when the RTSP
    /// listener is off); `/sub` after it for the sub rendition.
    #[serde(skip_serializing_if = "Option::is_none")]
    rtsp_url: Option<String>,
    /// The master playlist; any playlist name of a grant works in its place.
    hls_url: String,
}

#[derive(Serialize)]
pub(super) struct Created {
    #[serde(flatten)]
    key: KeyView,
    /// The secret: shown in this answer only (it is derived, never stored).
    secret: String,
    urls: Vec<CameraUrls>,
}

pub(super) async fn create(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    body: Bytes,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let req: NewKey = parse_json(&body)?;
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::BadRequest(
            "a key's name is 1 to 100 characters".into(),
        ));
    }
    let mut cameras = req.cameras;
    cameras.sort();
    cameras.dedup();
    st.refuse_drafts(&cameras).await?;
    if cameras.is_empty() || cameras.len() > MAX_CAMERAS_PER_KEY {
        return Err(AppError::BadRequest(format!(
            "a key is for 1 to {MAX_CAMERAS_PER_KEY} cameras"
        )));
    }
    let key = ViewerKey {
        id: ViewerKeyId::random(),
        user,
        name,
        cameras: cameras.clone(),
        created_at: hearth_access::clock::now(),
    };
    let k = key.clone();
    st.db(move |s| {
        // Only cameras the caller may view; another's looks like a missing one.
        for c in &k.cameras {
            if s.camera_visible_to(user, *c)?.is_none() {
                return Err(hearth_store::StoreError::NotFound { what: "camera" });
            }
        }
        let mine = s.viewer_keys()?.iter().filter(|x| x.user == user).count();
        if mine >= MAX_KEYS_PER_USER {
            return Err(hearth_store::StoreError::Conflict {
                what: "viewer key (too many)",
            });
        }
        s.create_viewer_key(&k)
    })
    .await?;
    st.refresh_access().await?;
    tracing::info!(key = ?key.id, by = ?user, cameras = key.cameras.len(), "viewer key created");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(user),
        ..audit::event(
            "viewer_key_created",
            None,
            serde_json::json!({"key": key.id.to_string(), "name": key.name, "cameras": key.cameras}),
        )
    });
    let secret = st.keys.viewer_key_secret(key.id);
    let urls = cameras
        .iter()
        .map(|c| CameraUrls {
            camera: *c,
            rtsp_url: st.rtsp_url.get().map(|base| {
                let (scheme, rest) = base.split_once("://").unwrap_or(("rtsp", base));
                format!("{scheme}://{}:{secret}@{rest}/cameras/{c}", key.id)
            }),
            hls_url: format!(
                "{}/restream/{}/{secret}/{c}/index.m3u8",
                st.public_url, key.id
            ),
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(Created {
            key: key.into(),
            secret,
            urls,
        }),
    ))
}

pub(super) async fn list(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<KeyView>>, AppError> {
    let keys = st.db(|s| s.viewer_keys()).await?;
    Ok(Json(
        keys.into_iter()
            .filter(|k| k.user == user)
            .map(KeyView::from)
            .collect(),
    ))
}

/// Revokes a key: every stream it opened ends within a second, in every process.
pub(super) async fn revoke(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id: ViewerKeyId = id.parse().map_err(|_| AppError::NotFound)?;
    if !st.db(move |s| s.delete_viewer_key(user, id)).await? {
        return Err(AppError::NotFound);
    }
    st.refresh_access().await?;
    tracing::info!(key = ?id, by = ?user, "viewer key revoked");
    st.audit_now(hearth_store::AuditEvent {
        user: Some(user),
        ..audit::event(
            "viewer_key_revoked",
            None,
            serde_json::json!({"key": id.to_string()}),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
