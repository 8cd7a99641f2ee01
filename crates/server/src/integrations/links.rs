//! Account links as the rest of the server uses them: finding the link behind an
//! integration's access token, issuing a stream grant to a linked display, and the
//! web app's view of a user's links (list, change the consented cameras, unlink).
//!
//! A linked stream goes through exactly the web app's machinery: a [`Grant`] naming
//! the link's user, one camera, its binding epoch and the integration, checked at
//! every request by the access view (kill switches, revocation, the link itself)
//! and written only through the egress door, which audits it under the
//! integration's name. What differs is the holder: a display cannot send headers,
//! so the grant is held by its link (see [`Holder::of_link`]).

use crate::auth::AuthUser;
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_access::audit;
use hearth_access::grant::{Grant, Holder};
use hearth_model::{CameraId, GrantId, Integration, RawToken, Rendition, UnixMillis};
use hearth_store::{AccessToken, Link};
use serde::{Deserialize, Serialize};

/// How long a stream grant handed to a display lasts. Longer than the web app's
/// (a display cannot renew mid-stream), still minutes; revocation does not wait
/// for it: the link is checked at every request.
pub const LINKED_GRANT_TTL_MS: i64 = 30 * 60 * 1000;

/// The link behind an integration's access token. A token issued to another
/// integration is `Unknown` here: an Alexa token opens nothing at Google.
pub async fn link_for_token(
    st: &AppState,
    integration: Integration,
    token: &str,
) -> Result<AccessToken, AppError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(AccessToken::Unknown);
    }
    let hash = RawToken::from_client(token).hash();
    let now = hearth_access::clock::now();
    Ok(
        match st.db(move |s| s.link_by_access_token(hash, now)).await? {
            AccessToken::Live(l) | AccessToken::Expired(l) if l.integration != integration => {
                AccessToken::Unknown
            }
            found => found,
        },
    )
}

/// A stable, opaque name for a user towards a platform (Google's `agentUserId`):
/// not an email, the same across re-links, different per integration.
pub fn agent_user_id(integration: Integration, user: hearth_model::UserId) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::new()
        .chain_update(b"hearth agent user v1\0")
        .chain_update(integration.as_str().as_bytes())
        .chain_update([0])
        .chain_update(user.as_bytes())
        .finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a display cannot have a camera's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamRefusal {
    /// Not consented to this link, not visible to its user, or unknown: the
    /// same answer for all three.
    NotFound,
    Offline,
    /// The integration's kill switch is on.
    Suspended,
    /// This node cannot confirm access now (its cluster's control plane is
    /// unreachable): try again, perhaps on another node.
    Unavailable,
}

/// A stream grant for one camera through one link.
pub struct LinkedStream {
    pub grant: Grant,
    /// `{public_url}/media/{grant token}`.
    pub base: String,
    /// The grant token itself, scoped to exactly this camera, link and integration.
    pub token: String,
}

/// Whether the link may list the camera: consented, and visible to the link's user.
pub fn consented(st: &AppState, link: &Link, camera: CameraId) -> bool {
    link.cameras.contains(&camera) && st.access.may_view(link.user, camera).is_some()
}

/// Issues a stream grant for `camera` to the display behind `link`.
pub async fn issue_stream(
    st: &AppState,
    link: &Link,
    camera: CameraId,
) -> Result<LinkedStream, StreamRefusal> {
    if st.access.is_fenced() {
        return Err(StreamRefusal::Unavailable);
    }
    if st.access.integration_suspended(link.integration) {
        return Err(StreamRefusal::Suspended);
    }
    if !consented(st, link, camera) {
        return Err(StreamRefusal::NotFound);
    }
    let Some(epoch) = st.access.may_view(link.user, camera) else {
        return Err(StreamRefusal::NotFound);
    };
    // Ingested by another node of a cluster: relayed here first.
    crate::door::relay::ensure(st, camera, Rendition::Main).await;
    let Some(hub) = st.hubs.get(camera).filter(|h| h.is_online()) else {
        return Err(StreamRefusal::Offline);
    };
    // The display's player (Cast plays TS) asks next: keep the camera's whole
    // window, TS included, from now.
    hub.touch(true);
    let grant = Grant {
        id: GrantId::random(),
        viewer: link.user,
        camera,
        epoch,
        integration: link.integration,
        expires_at: UnixMillis(hearth_access::clock::now().0 + LINKED_GRANT_TTL_MS),
        holder: Holder::of_link(link.id),
    };
    // The link was read from the store; the door reads the access view, which may
    // lag by one poll. Hand out only a grant that opens the door.
    if st.access.check(&grant).is_err()
        && (st.refresh_access().await.is_err() || st.access.check(&grant).is_err())
    {
        return Err(StreamRefusal::NotFound);
    }
    let token = st.door.grant_key().sign(&grant);
    tracing::info!(grant = ?grant.id, viewer = ?grant.viewer, camera = ?camera, integration = link.integration.as_str(), "grant issued to a linked display");
    st.audit.record(audit::event(
        "grant_issued",
        Some(&grant),
        serde_json::json!({"expires_at": grant.expires_at.0, "link": link.id}),
    ));
    Ok(LinkedStream {
        base: format!("{}/media/{token}", st.public_url),
        grant,
        token,
    })
}

/// Ends a link (unlink in the web app, DISCONNECT, AcceptGrant failure...): its
/// tokens, consents and every stream it opened stop now.
pub async fn unlink(st: &AppState, link: &Link, why: &str) -> Result<(), AppError> {
    let id = link.id;
    st.db(move |s| s.delete_link(id)).await?;
    st.refresh_access().await?;
    tracing::info!(link = ?link.id, user = ?link.user, integration = link.integration.as_str(), why, "account link ended");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(link.user),
        integration: Some(link.integration.as_str().into()),
        ..audit::event(
            "integration_unlinked",
            None,
            serde_json::json!({"link": link.id, "why": why}),
        )
    });
    Ok(())
}

/// The cameras a user chose to show a platform (at consent, or later in the web
/// app), sorted and without repeats; each must be one the user can view.
pub async fn chosen_cameras(
    st: &AppState,
    user: hearth_model::UserId,
    mut cameras: Vec<CameraId>,
) -> Result<Vec<CameraId>, AppError> {
    if cameras.len() > 1000 {
        return Err(AppError::BadRequest("too many cameras".into()));
    }
    cameras.sort();
    cameras.dedup();
    let visible: std::collections::HashSet<CameraId> = st
        .db(move |s| s.cameras_visible_to(user))
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if cameras.iter().any(|c| !visible.contains(c)) {
        return Err(AppError::BadRequest(
            "a chosen camera is not one of yours".into(),
        ));
    }
    Ok(cameras)
}

// --- the web app's view of a user's links ---

#[derive(Serialize)]
pub struct LinkCamera {
    id: CameraId,
    name: String,
}

#[derive(Serialize)]
pub struct LinkView {
    integration: Integration,
    display_name: &'static str,
    linked_at: String,
    cameras: Vec<LinkCamera>,
}

/// `GET /api/v1/integrations`: the caller's links and the cameras each may show.
pub async fn list(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<LinkView>>, AppError> {
    let (links, cams) = st
        .db(move |s| Ok((s.links_of_user(user)?, s.cameras_visible_to(user)?)))
        .await?;
    Ok(Json(
        links
            .into_iter()
            .map(|l| LinkView {
                integration: l.integration,
                display_name: crate::integrations::oauth::display_name(l.integration),
                linked_at: hearth_access::clock::rfc3339(l.created_at),
                cameras: cams
                    .iter()
                    .filter(|c| l.cameras.contains(&c.id))
                    .map(|c| LinkCamera {
                        id: c.id,
                        name: c.name.clone(),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

async fn user_link(
    st: &AppState,
    user: hearth_model::UserId,
    name: &str,
) -> Result<Link, AppError> {
    let integration = Integration::parse(name)
        .filter(|i| i.is_linked())
        .ok_or(AppError::NotFound)?;
    st.db(move |s| s.links_of_user(user))
        .await?
        .into_iter()
        .find(|l| l.integration == integration)
        .ok_or(AppError::NotFound)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CamerasBody {
    cameras: Vec<CameraId>,
}

/// `PUT /api/v1/integrations/{integration}/cameras`: which cameras the link shows.
pub async fn set_cameras(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let link = user_link(&st, user, &name).await?;
    let body: CamerasBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let chosen = chosen_cameras(&st, user, body.cameras).await?;
    st.refuse_drafts(&chosen).await?;
    let (id, cameras) = (link.id, chosen.clone());
    st.db(move |s| s.set_link_cameras(id, &cameras)).await?;
    st.refresh_access().await?;
    tracing::info!(link = ?link.id, cameras = chosen.len(), "link cameras changed");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(user),
        integration: Some(link.integration.as_str().into()),
        ..audit::event(
            "integration_cameras_changed",
            None,
            serde_json::json!({"link": link.id, "cameras": chosen}),
        )
    });
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/integrations/{integration}`: unlink; everything the
/// integration holds (tokens, streams) is revoked.
pub async fn delete(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    let link = user_link(&st, user, &name).await?;
    unlink(&st, &link, "unlinked in the web app").await?;
    Ok(StatusCode::NO_CONTENT)
}
