//! Cameras as their owners and viewers see them: the list, stream grants, renaming,
//! sharing, the access log and players' reports.

use super::parse_json;
use crate::auth::AuthUser;
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use hearth_access::audit;
use hearth_access::grant::{GRANT_TTL_MS, Grant};
use hearth_access::limits::ReportVerdict;
use hearth_model::{CameraId, GrantId, Integration, UnixMillis};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub(super) struct CameraView {
    id: CameraId,
    name: String,
    household: hearth_model::HouseholdId,
    /// For a camera shared with the caller: the name of the household sharing it.
    shared_by: Option<String>,
    /// How the caller sees the camera: `owner` (a member of its household: may
    /// rename and share it and read its access log) or `viewer` (shared with them).
    access: &'static str,
    online: bool,
    timezone: String,
    /// `online` or `offline` for a camera that pushes; a pulled camera's state:
    /// `online`, `connecting`, `auth_failed`, `unreachable`, `unsupported_codec`.
    status: &'static str,
    /// Owners only: where Hearth pulls the camera from (never its credentials),
    /// and its last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourceView>,
    /// Added on trial ("test connection") and not saved yet: deleted unless
    /// saved within ten minutes of being added.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    draft: bool,
}

#[derive(Serialize)]
pub(super) struct SourceView {
    /// `rtsp` (Hearth pulls it), `agent` (a home agent pulls it) or `rtmp`
    /// (it pushes).
    kind: &'static str,
    /// The home agent that pulls it.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<hearth_model::AgentId>,
    /// `host:port` of an RTSP camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    /// Since when the camera has been in its status (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    status_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error_at: Option<String>,
}

impl CameraView {
    /// The camera as `access` lets the caller see it.
    pub(super) fn of(
        st: &AppState,
        c: hearth_store::Camera,
        access: hearth_store::Access,
        shared_by: Option<String>,
    ) -> Self {
        let here = st.hubs.is_online(c.id);
        let online = st.camera_online(c.id);
        let host = st.pulls.source_host(c.id);
        let pulled = st.pulls.statuses.get(c.id, hearth_model::Rendition::Main);
        let status = match (&host, &pulled) {
            // Pulled by another node of the cluster.
            (Some(_), _) if online && !here => "online",
            (Some(_), Some(p)) => p.state.as_str(),
            (Some(_), None) => "connecting",
            (None, _) if online => "online",
            (None, _) => "offline",
        };
        let owner = access == hearth_store::Access::Owner;
        let agent = st.pulls.agent_of(c.id);
        let source = owner.then(|| SourceView {
            kind: match (&host, agent) {
                (Some(_), Some(_)) => "agent",
                (Some(_), None) => "rtsp",
                (None, _) => "rtmp",
            },
            agent,
            status_since: pulled
                .as_ref()
                .map(|p| hearth_access::clock::rfc3339(p.since)),
            last_error_at: pulled
                .as_ref()
                .and_then(|p| p.last_error.as_ref())
                .map(|(at, _)| hearth_access::clock::rfc3339(*at)),
            last_error: pulled.and_then(|p| p.last_error).map(|(_, e)| e),
            host,
        });
        CameraView {
            online,
            shared_by,
            access: access_name(access),
            id: c.id,
            name: c.name,
            household: c.household,
            timezone: c.timezone,
            status,
            source,
            draft: false,
        }
    }

    /// The same, marked as a draft if it is one.
    pub(super) fn with_draft(self, draft: bool) -> Self {
        Self { draft, ..self }
    }
}

pub(super) async fn list_cameras(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<CameraView>>, AppError> {
    let (cams, sharers, drafts) = st
        .db(move |s| {
            let cams = s.cameras_visible_with_access(user)?;
            let drafts: std::collections::HashSet<CameraId> =
                s.camera_drafts()?.into_iter().map(|(c, _)| c).collect();
            let mut sharers = std::collections::HashMap::new();
            for (c, access) in &cams {
                if *access == hearth_store::Access::Viewer && !sharers.contains_key(&c.household) {
                    let name = s.household_by_id(c.household)?.map(|h| h.name);
                    sharers.insert(c.household, name.unwrap_or_default());
                }
            }
            Ok((cams, sharers, drafts))
        })
        .await?;
    Ok(Json(
        cams.into_iter()
            .map(|(c, access)| {
                let shared_by = (access == hearth_store::Access::Viewer)
                    .then(|| sharers.get(&c.household).cloned().unwrap_or_default());
                let draft = drafts.contains(&c.id);
                CameraView::of(&st, c, access, shared_by).with_draft(draft)
            })
            .collect(),
    ))
}

fn access_name(access: hearth_store::Access) -> &'static str {
    match access {
        hearth_store::Access::Owner => "owner",
        hearth_store::Access::Viewer => "viewer",
    }
}

#[derive(Serialize)]
pub(super) struct StreamGrant {
    hls_url: String,
    hls_ts_url: String,
    snapshot_url: String,
    /// WHEP endpoint: `POST` an SDP offer (with the session) for WebRTC.
    whep_url: String,
    /// STUN/TURN servers for the WebRTC peer connection (`RTCIceServer`s;
    /// TURN credentials live as long as the grant). Empty when none is set up.
    ice_servers: Vec<crate::door::webrtc::ice::IceServer>,
    expires_at: String,
    /// What the segments' in-band provenance must name: players check it.
    camera_id: CameraId,
    epoch: hearth_model::BindingEpoch,
}

pub(super) async fn create_stream(
    State(st): State<AppState>,
    axum::Extension(webrtc): axum::Extension<std::sync::Arc<crate::door::webrtc::WebRtc>>,
    session: crate::auth::AuthSession,
    Path(id): Path<String>,
) -> Result<Json<StreamGrant>, AppError> {
    let user = session.user;
    // An unparsable id, an unknown camera and another household's camera look the same.
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
    if st.access.is_fenced() {
        return Err(AppError::fenced());
    }
    if st.access.integration_suspended(Integration::App) {
        return Err(AppError::Suspended(
            "the web app integration is suspended".into(),
        ));
    }
    let Some(cam) = st.db(move |s| s.camera_visible_to(user, camera)).await? else {
        return Err(st
            .db(move |s| suspension_of(s, user, camera))
            .await?
            .map_or(AppError::NotFound, AppError::Suspended));
    };
    let now = hearth_access::clock::now();
    let grant = Grant {
        id: GrantId::random(),
        viewer: user,
        camera: cam.id,
        epoch: cam.epoch,
        integration: Integration::App,
        expires_at: UnixMillis(now.0 + GRANT_TTL_MS),
        holder: session.holder,
    };
    // The door checks the in-memory view, which may lag the store by one poll:
    // make sure the grant we hand out opens it (and refuse if it still would not).
    if st.access.check(&grant).is_err() {
        st.refresh_access().await?;
        st.access.check(&grant).map_err(|_| AppError::NotFound)?;
    }
    let token = st.door.grant_key().sign(&grant);
    let base = format!("{}/media/{token}", st.public_url);
    tracing::info!(grant = ?grant.id, viewer = ?user, camera = ?cam.id, "grant issued");
    // Durable before the grant is handed out: the audit shows every grant answered.
    st.audit_now(audit::event(
        "grant_issued",
        Some(&grant),
        serde_json::json!({"expires_at": grant.expires_at.0}),
    ))
    .await?;
    Ok(Json(StreamGrant {
        hls_url: format!("{base}/index.m3u8"),
        hls_ts_url: format!("{base}/ts.m3u8"),
        snapshot_url: format!("{base}/snapshot.jpg"),
        whep_url: format!("{base}/whep"),
        ice_servers: webrtc.ice_servers(&grant),
        expires_at: hearth_access::clock::rfc3339(grant.expires_at),
        camera_id: grant.camera,
        epoch: grant.epoch,
    }))
}

/// The camera, if `user` owns it (is in its household). A camera the user cannot
/// see is a 404; one they only view through a share is a 403.
pub(super) async fn owned_camera(
    st: &AppState,
    user: hearth_model::UserId,
    id: &str,
) -> Result<hearth_store::Camera, AppError> {
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
    match st.db(move |s| s.camera_access(user, camera)).await? {
        Some((cam, hearth_store::Access::Owner)) => Ok(cam),
        Some((_, hearth_store::Access::Viewer)) => Err(AppError::Forbidden),
        None => Err(AppError::NotFound),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinceQuery {
    /// Unix milliseconds; default: everything.
    since: Option<i64>,
    /// Entries per page [default 100, at most 500].
    limit: Option<u32>,
    /// The `next` cursor of the page before.
    before: Option<String>,
}

/// Entries per page of the access log.
const ACCESS_LOG_PAGE: u32 = 100;
const ACCESS_LOG_PAGE_MAX: u32 = 500;

#[derive(Serialize)]
pub(super) struct AccessEntry {
    at: String,
    kind: String,
    viewer: Option<String>,
    integration: Option<String>,
    detail: serde_json::Value,
}

/// Who watched this camera, when, and through what (owners only; newest first),
/// under its current binding only, a page at a time: when there may be more,
/// the `x-next-page` header holds the `before` cursor of the next page.
pub(super) async fn access_log(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SinceQuery>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let cam = owned_camera(&st, user, &id).await?;
    // Only the current binding: what happened before the camera came to this
    // household (a transfer, a reset) is another household's business.
    let since = hearth_model::UnixMillis(q.since.unwrap_or(0).max(cam.bound_at.0));
    let limit = q
        .limit
        .unwrap_or(ACCESS_LOG_PAGE)
        .clamp(1, ACCESS_LOG_PAGE_MAX);
    let before = match q.before.as_deref() {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| AppError::BadRequest("bad cursor".into()))?),
    };
    let epoch = cam.epoch;
    let page = st
        .db(move |s| s.audit_for_camera(cam.id, since, before, limit))
        .await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|r| format!("{}.{}", r.event.at.0, r.id)))
        .flatten();
    let records: Vec<_> = page
        .into_iter()
        .filter(|r| {
            r.event
                .detail
                .get("epoch")
                .and_then(serde_json::Value::as_u64)
                .is_none_or(|e| e == epoch.0)
        })
        .collect();
    let ids: std::collections::HashSet<hearth_model::UserId> =
        records.iter().filter_map(|r| r.event.user).collect();
    let emails = st
        .db(move |s| {
            ids.into_iter()
                .map(|id| Ok((id, s.user_by_id(id)?.map(|u| u.email))))
                .collect::<Result<std::collections::HashMap<_, _>, hearth_store::StoreError>>()
        })
        .await?;
    let entries: Vec<AccessEntry> = records
        .into_iter()
        .map(|r| AccessEntry {
            at: hearth_access::clock::rfc3339(r.event.at),
            viewer: r.event.user.map(|u| {
                emails
                    .get(&u)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| u.to_string())
            }),
            kind: r.event.kind,
            integration: r.event.integration,
            detail: r.event.detail,
        })
        .collect();
    let mut resp = Json(entries).into_response();
    if let Some(next) = next
        && let Ok(v) = axum::http::HeaderValue::from_str(&next)
    {
        resp.headers_mut().insert("x-next-page", v);
    }
    Ok(resp)
}

/// An access-log cursor: `AT.ID`.
fn parse_cursor(c: &str) -> Option<(hearth_model::UnixMillis, i64)> {
    let (at, id) = c.split_once('.')?;
    Some((hearth_model::UnixMillis(at.parse().ok()?), id.parse().ok()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShareRequest {
    email: String,
}

#[derive(Serialize)]
pub(super) struct ShareView {
    /// Null while the invitation is pending.
    user: Option<hearth_model::UserId>,
    email: String,
    /// `accepted` or `pending` (invited, not accepted yet).
    status: &'static str,
    created_at: String,
}

#[derive(Serialize)]
pub(super) struct Invited {
    email: String,
    status: &'static str,
}

/// Invites someone, by email, to view a camera. The answer is the same whether
/// or not an account has that email (the owner learns nothing about who has
/// one); the share takes effect only when the recipient accepts.
pub(super) async fn share(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<Invited>), AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    st.refuse_drafts(&[cam.id]).await?;
    let req: ShareRequest = parse_json(&body)?;
    let email = req.email.trim().to_ascii_lowercase();
    if email.len() > 320 || !email.contains('@') {
        return Err(AppError::BadRequest("an email address, please".into()));
    }
    let now = hearth_access::clock::now();
    let e = email.clone();
    st.db(move |s| s.invite_to_share(cam.id, &e, now)).await?;
    tracing::info!(camera = ?cam.id, by = ?user, "share invitation");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(cam.id),
        user: Some(user),
        ..audit::event("share_invited", None, serde_json::json!({"email": email}))
    });
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Invited {
            email,
            status: "pending",
        }),
    ))
}

pub(super) async fn list_shares(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<ShareView>>, AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    let (shares, invitations) = st
        .db(move |s| Ok((s.shares_of(cam.id)?, s.invitations_of_camera(cam.id)?)))
        .await?;
    let accepted = shares.into_iter().map(|s| ShareView {
        user: Some(s.user),
        email: s.email,
        status: "accepted",
        created_at: hearth_access::clock::rfc3339(s.created_at),
    });
    let pending = invitations.into_iter().map(|i| ShareView {
        user: None,
        email: i.email,
        status: "pending",
        created_at: hearth_access::clock::rfc3339(i.created_at),
    });
    Ok(Json(accepted.chain(pending).collect()))
}

/// Withdraws a pending invitation (owners).
pub(super) async fn withdraw_invitation(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, email)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    if !st
        .db(move |s| s.withdraw_invitation(cam.id, &email))
        .await?
    {
        return Err(AppError::NotFound);
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub(super) struct InvitationView {
    camera_id: CameraId,
    camera_name: String,
    /// The inviting household's name.
    shared_by: String,
    created_at: String,
}

/// The invitations made out to the caller's email.
pub(super) async fn my_invitations(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<InvitationView>>, AppError> {
    let views = st
        .db(move |s| {
            let Some(u) = s.user_by_id(user)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for i in s.invitations_for(&u.email)? {
                let Some(cam) = s.camera_by_id(i.camera)? else {
                    continue;
                };
                let by = s.household_by_id(cam.household)?.map(|h| h.name);
                out.push(InvitationView {
                    camera_id: cam.id,
                    camera_name: cam.name,
                    shared_by: by.unwrap_or_default(),
                    created_at: hearth_access::clock::rfc3339(i.created_at),
                });
            }
            Ok(out)
        })
        .await?;
    Ok(Json(views))
}

/// Accepts an invitation: the camera is shared with the caller from now on.
pub(super) async fn accept_invitation(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, AppError> {
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
    let now = hearth_access::clock::now();
    if !st
        .db(move |s| s.accept_invitation(camera, user, now))
        .await?
    {
        return Err(AppError::NotFound);
    }
    st.refresh_access().await?;
    tracing::info!(camera = ?camera, with = ?user, "camera shared");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(camera),
        user: Some(user),
        ..audit::event("share", None, serde_json::json!({"with": user}))
    });
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Declines an invitation.
pub(super) async fn decline_invitation(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, AppError> {
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
    let declined = st
        .db(move |s| match s.user_by_id(user)? {
            Some(u) => s.withdraw_invitation(camera, &u.email),
            None => Ok(false),
        })
        .await?;
    if !declined {
        return Err(AppError::NotFound);
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Revokes a share. The viewer's live sessions are refused within a second (the
/// access view follows the store).
pub(super) async fn unshare(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, target)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    let target: hearth_model::UserId = target.parse().map_err(|_| AppError::NotFound)?;
    if !st.db(move |s| s.unshare_camera(cam.id, target)).await? {
        return Err(AppError::NotFound);
    }
    st.refresh_access().await?;
    tracing::info!(camera = ?cam.id, by = ?user, with = ?target, "share revoked");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(cam.id),
        user: Some(user),
        ..audit::event("unshare", None, serde_json::json!({"with": target}))
    });
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientReport {
    kind: String,
    #[serde(default)]
    detail: serde_json::Value,
}

/// A player reports something it refused (e.g. a segment whose in-band provenance
/// names another camera). Logged as an error: it means a byte got past the door
/// or was swapped after it, which must never happen.
pub(super) async fn client_report(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::http::StatusCode, AppError> {
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
    st.db(move |s| s.camera_visible_to(user, camera))
        .await?
        .ok_or(AppError::NotFound)?;
    if body.len() > MAX_REPORT_BYTES {
        return Err(AppError::BadRequest(format!(
            "a report is at most {MAX_REPORT_BYTES} bytes"
        )));
    }
    let report: ClientReport = parse_json(&body)?;
    if report.kind.len() > 64 {
        return Err(AppError::BadRequest("kind too long".into()));
    }
    // A few per viewer and camera a minute; the same one again is not stored again.
    match st
        .reports
        .check(user, camera, &body, hearth_access::clock::now())?
    {
        ReportVerdict::Repeat => return Ok(axum::http::StatusCode::ACCEPTED),
        ReportVerdict::Record => {}
    }
    tracing::error!(viewer = ?user, camera = ?camera, kind = %report.kind, detail = %report.detail, "player refused media");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(camera),
        user: Some(user),
        ..audit::event(
            "client_report",
            None,
            serde_json::json!({"kind": report.kind, "detail": report.detail}),
        )
    });
    Ok(axum::http::StatusCode::ACCEPTED)
}

/// What a player reports fits in this.
const MAX_REPORT_BYTES: usize = 2048;

/// Why `user` may not view `camera`, if the reason is a kill switch on their own
/// account, their own household, or a camera of their own household. Anything else
/// stays indistinguishable from "no such camera".
fn suspension_of(
    s: &dyn hearth_store::Store,
    user: hearth_model::UserId,
    camera: CameraId,
) -> Result<Option<String>, hearth_store::StoreError> {
    use hearth_store::SuspensionKind as K;
    let Some(u) = s.user_by_id(user)? else {
        return Ok(None);
    };
    let own_camera = s
        .camera_by_id(camera)?
        .filter(|c| c.household == u.household);
    for sus in s.suspensions()? {
        let reason = match sus.kind {
            K::User if sus.target == user.to_string() => "your account is suspended",
            K::Household if sus.target == u.household.to_string() => "your household is suspended",
            K::Camera if own_camera.is_some() && sus.target == camera.to_string() => {
                "this camera is suspended"
            }
            _ => continue,
        };
        return Ok(Some(format!("{reason}: {}", sus.reason)));
    }
    Ok(None)
}
