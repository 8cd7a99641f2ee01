//! HTTP routes: the JSON API, the media paths (all through the egress door), and the
//! embedded web app.
//!
//! `app(state)` builds the whole router so tests can drive it without a socket.
//! Request bodies are small JSON documents and are capped; every error is JSON and
//! comes from [`AppError`].

use crate::audit;
use crate::auth::{AuthUser, new_session};
use crate::egress::{Egress, MediaKind, MediaResponse};
use crate::error::AppError;
use crate::grant::Grant;
use crate::hub::Hub;
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hearth_model::{CameraId, GrantId, Integration, UnixMillis};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long a stream grant lasts. Players renew before expiry (see `grant`).
pub const GRANT_TTL_MS: i64 = 5 * 60 * 1000;
/// API request bodies are tiny; anything bigger is refused before it is read.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// A viewer who arrives before the camera's first segment waits at most this long.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(8);

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(web_index))
        .route("/app.js", get(web_app_js))
        .route("/player.js", get(web_player_js))
        .route("/app.css", get(web_css))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/cameras", get(list_cameras))
        .route("/api/v1/cameras/{id}", axum::routing::patch(rename_camera))
        .route("/api/v1/cameras/{id}/streams", post(create_stream))
        .route("/api/v1/cameras/{id}/reports", post(client_report))
        .route("/api/v1/cameras/{id}/shares", post(share).get(list_shares))
        .route("/api/v1/cameras/{id}/access-log", get(access_log))
        .route(
            "/api/v1/admin/suspensions",
            post(crate::admin_api::suspend).get(crate::admin_api::list),
        )
        .route(
            "/api/v1/admin/suspensions/{kind}/{target}",
            axum::routing::delete(crate::admin_api::resume),
        )
        .route(
            "/api/v1/cameras/{id}/shares/{user}",
            axum::routing::delete(unshare),
        )
        .route("/link.js", get(web_link_js))
        .route("/oauth/authorize", get(crate::oauth::authorize_page))
        .route("/oauth/token", post(crate::oauth::token))
        .route("/oauth/revoke", post(crate::oauth::revoke))
        .route("/api/v1/oauth/request", get(crate::oauth::consent_request))
        .route("/api/v1/oauth/authorize", post(crate::oauth::consent))
        .route("/api/v1/integrations", get(crate::links::list))
        .route(
            "/api/v1/integrations/{integration}",
            axum::routing::delete(crate::links::delete),
        )
        .route(
            "/api/v1/integrations/{integration}/cameras",
            axum::routing::put(crate::links::set_cameras),
        )
        .route(
            "/integrations/google/fulfillment",
            post(crate::google::fulfillment),
        )
        .route(
            "/integrations/alexa/directives",
            post(crate::alexa::directive),
        )
        .route("/media/{grant}/index.m3u8", get(master_playlist))
        .route("/media/{grant}/live.m3u8", get(fmp4_playlist))
        .route("/media/{grant}/ts.m3u8", get(ts_playlist))
        .route("/media/{grant}/snapshot.jpg", get(snapshot))
        .route("/media/{grant}/{object}", get(media_object))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    expires_at: String,
}

async fn login(State(st): State<AppState>, body: Bytes) -> Result<Json<LoginResponse>, AppError> {
    let req: LoginRequest = parse_json(&body)?;
    if req.email.len() > 320 || req.password.len() > 1024 {
        return Err(AppError::BadRequest("email or password too long".into()));
    }
    let email = req.email.clone();
    let user = st.db(move |s| s.user_by_email(&email)).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let st2 = st.clone();
    let ok = tokio::task::spawn_blocking(move || st2.auth.verify(hash.as_deref(), &req.password))
        .await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        (_, known) => {
            let user_id = known.map(|u| u.id);
            let req_email = req.email;
            tracing::info!("login failed");
            st.audit.record(hearth_store::AuditEvent {
                user: user_id,
                ..audit::event(
                    "login_failure",
                    None,
                    serde_json::json!({"email": req_email}),
                )
            });
            return Err(AppError::BadLogin);
        }
    };
    let (token, expires) = new_session(&st, user.id).await?;
    tracing::info!(user = ?user.id, "login");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(user.id),
        ..audit::event("login", None, serde_json::json!({}))
    });
    Ok(Json(LoginResponse {
        token: token.expose().to_string(),
        expires_at: crate::clock::rfc3339(expires),
    }))
}

/// Ends the caller's session: its token stops working, and every stream grant it
/// holds is refused from now on (live players stop at their next request).
async fn logout(
    State(st): State<AppState>,
    session: crate::auth::AuthSession,
) -> Result<axum::http::StatusCode, AppError> {
    let (hash, holder) = (session.token, session.holder.to_bytes());
    let now = crate::clock::now();
    let until = UnixMillis(now.0 + GRANT_TTL_MS);
    // One transaction: the session and every grant it holds end together.
    st.db(move |s| s.sign_out(hash, holder, until, now)).await?;
    // Apply it now rather than at the next poll.
    st.refresh_access().await?;
    tracing::info!(user = ?session.user, "logout");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(session.user),
        ..audit::event("logout", None, serde_json::json!({}))
    });
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct CameraView {
    id: CameraId,
    name: String,
    household: hearth_model::HouseholdId,
    /// For a camera shared with the caller: the name of the household sharing it.
    shared_by: Option<String>,
    online: bool,
    timezone: String,
}

async fn list_cameras(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<CameraView>>, AppError> {
    let (cams, sharers) = st
        .db(move |s| {
            let cams = s.cameras_visible_with_access(user)?;
            let mut sharers = std::collections::HashMap::new();
            for (c, access) in &cams {
                if *access == hearth_store::Access::Viewer && !sharers.contains_key(&c.household) {
                    let name = s.household_by_id(c.household)?.map(|h| h.name);
                    sharers.insert(c.household, name.unwrap_or_default());
                }
            }
            Ok((cams, sharers))
        })
        .await?;
    Ok(Json(
        cams.into_iter()
            .map(|(c, access)| CameraView {
                online: st.hubs.is_online(c.id),
                shared_by: (access == hearth_store::Access::Viewer)
                    .then(|| sharers.get(&c.household).cloned().unwrap_or_default()),
                id: c.id,
                name: c.name,
                household: c.household,
                timezone: c.timezone,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct StreamGrant {
    hls_url: String,
    hls_ts_url: String,
    snapshot_url: String,
    expires_at: String,
    /// What the segments' in-band provenance must name: players check it.
    camera_id: CameraId,
    epoch: hearth_model::BindingEpoch,
}

async fn create_stream(
    State(st): State<AppState>,
    session: crate::auth::AuthSession,
    Path(id): Path<String>,
) -> Result<Json<StreamGrant>, AppError> {
    let user = session.user;
    // An unparsable id, an unknown camera and another household's camera look the same.
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
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
    let now = crate::clock::now();
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
    let token = st.grant_key.sign(&grant);
    let base = format!("{}/media/{token}", st.public_url);
    tracing::info!(grant = ?grant.id, viewer = ?user, camera = ?cam.id, "grant issued");
    st.audit.record(audit::event(
        "grant_issued",
        Some(&grant),
        serde_json::json!({"expires_at": grant.expires_at.0}),
    ));
    Ok(Json(StreamGrant {
        hls_url: format!("{base}/index.m3u8"),
        hls_ts_url: format!("{base}/ts.m3u8"),
        snapshot_url: format!("{base}/snapshot.jpg"),
        expires_at: crate::clock::rfc3339(grant.expires_at),
        camera_id: grant.camera,
        epoch: grant.epoch,
    }))
}

/// The camera, if `user` owns it (is in its household). A camera the user cannot
/// see is a 404; one they only view through a share is a 403.
async fn owned_camera(
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
struct RenameRequest {
    name: String,
}

/// Renames a camera (owners only). Linked platforms are told to re-sync.
async fn rename_camera(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CameraView>, AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    let req: RenameRequest = parse_json(&body)?;
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::BadRequest("a name is 1 to 100 characters".into()));
    }
    let n = name.clone();
    st.db(move |s| s.rename_camera(cam.id, &n)).await?;
    st.homegraph.camera_renamed(cam.id);
    tracing::info!(camera = ?cam.id, by = ?user, "camera renamed");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(cam.id),
        user: Some(user),
        ..audit::event("camera_renamed", None, serde_json::json!({"name": name}))
    });
    Ok(Json(CameraView {
        online: st.hubs.is_online(cam.id),
        shared_by: None, // only owners rename
        id: cam.id,
        name,
        household: cam.household,
        timezone: cam.timezone,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinceQuery {
    /// Unix milliseconds; default: everything.
    since: Option<i64>,
}

#[derive(Serialize)]
struct AccessEntry {
    at: String,
    kind: String,
    viewer: Option<String>,
    integration: Option<String>,
    detail: serde_json::Value,
}

/// Who watched this camera, when, and through what (owners only; newest first).
async fn access_log(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SinceQuery>,
) -> Result<Json<Vec<AccessEntry>>, AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    let since = hearth_model::UnixMillis(q.since.unwrap_or(0));
    let records = st
        .db(move |s| s.audit_for_camera(cam.id, since, 1000))
        .await?;
    let ids: std::collections::HashSet<hearth_model::UserId> =
        records.iter().filter_map(|r| r.event.user).collect();
    let emails = st
        .db(move |s| {
            ids.into_iter()
                .map(|id| Ok((id, s.user_by_id(id)?.map(|u| u.email))))
                .collect::<Result<std::collections::HashMap<_, _>, hearth_store::StoreError>>()
        })
        .await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| AccessEntry {
                at: crate::clock::rfc3339(r.event.at),
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
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareRequest {
    email: String,
}

#[derive(Serialize)]
struct ShareView {
    user: hearth_model::UserId,
    email: String,
    created_at: String,
}

/// Shares a camera view-only with another account.
async fn share(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<ShareView>), AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    let req: ShareRequest = parse_json(&body)?;
    let email = req.email.clone();
    let target = st
        .db(move |s| s.user_by_email(&email))
        .await?
        .ok_or_else(|| AppError::BadRequest("no account with that email".into()))?;
    let now = crate::clock::now();
    let target_id = target.id;
    st.db(move |s| s.share_camera(cam.id, target_id, now))
        .await?;
    st.refresh_access().await?;
    tracing::info!(camera = ?cam.id, by = ?user, with = ?target.id, "camera shared");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(cam.id),
        user: Some(user),
        ..audit::event("share", None, serde_json::json!({"with": target.id}))
    });
    Ok((
        axum::http::StatusCode::CREATED,
        Json(ShareView {
            user: target.id,
            email: target.email,
            created_at: crate::clock::rfc3339(now),
        }),
    ))
}

async fn list_shares(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<ShareView>>, AppError> {
    let cam = owned_camera(&st, user, &id).await?;
    let shares = st.db(move |s| s.shares_of(cam.id)).await?;
    Ok(Json(
        shares
            .into_iter()
            .map(|s| ShareView {
                user: s.user,
                email: s.email,
                created_at: crate::clock::rfc3339(s.created_at),
            })
            .collect(),
    ))
}

/// Revokes a share. The viewer's live sessions are refused within a second (the
/// access view follows the store).
async fn unshare(
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
struct ClientReport {
    kind: String,
    #[serde(default)]
    detail: serde_json::Value,
}

/// A player reports something it refused (e.g. a segment whose in-band provenance
/// names another camera). Logged as an error: it means a byte got past the door
/// or was swapped after it, which must never happen.
async fn client_report(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::http::StatusCode, AppError> {
    let camera: CameraId = id.parse().map_err(|_| AppError::NotFound)?;
    st.db(move |s| s.camera_visible_to(user, camera))
        .await?
        .ok_or(AppError::NotFound)?;
    let report: ClientReport = parse_json(&body)?;
    if report.kind.len() > 64 {
        return Err(AppError::BadRequest("kind too long".into()));
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

/// The hub of the grant's camera, if the grant is for the camera's current binding.
/// (The egress door would refuse a past epoch's objects anyway; refusing here keeps
/// an outdated grant from looking like an isolation fault.)
fn hub_for(st: &AppState, grant: &Grant, missing: AppError) -> Result<Arc<Hub>, AppError> {
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

async fn playlists(st: &AppState, grant: &Grant) -> Result<crate::hub::Playlists, AppError> {
    let hub = hub_for(st, grant, AppError::CameraOffline)?;
    hub.wait_for_playlists(FIRST_SEGMENT_WAIT)
        .await
        .ok_or(AppError::CameraOffline)
}

/// Which of a camera's playlists a route serves.
#[derive(Clone, Copy)]
enum PlaylistKind {
    Master,
    Fmp4,
    Ts,
}

async fn playlist(
    st: &AppState,
    door: &crate::egress::EgressGuard,
    kind: PlaylistKind,
) -> Result<MediaResponse, AppError> {
    let p = playlists(st, door.grant()).await?;
    door.write(match kind {
        PlaylistKind::Master => &p.master,
        PlaylistKind::Fmp4 => &p.fmp4,
        PlaylistKind::Ts => &p.ts,
    })
}

async fn master_playlist(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    playlist(&st, &door, PlaylistKind::Master).await
}

async fn fmp4_playlist(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    playlist(&st, &door, PlaylistKind::Fmp4).await
}

async fn ts_playlist(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    playlist(&st, &door, PlaylistKind::Ts).await
}

async fn snapshot(
    State(st): State<AppState>,
    Egress(door): Egress,
) -> Result<MediaResponse, AppError> {
    let hub = hub_for(&st, door.grant(), AppError::CameraOffline)?;
    let camera = door.grant().camera;
    let frames = |gop| st.faults.frames(camera, gop, &st.hubs);
    let still = match crate::still::snapshot(&hub, frames).await {
        Err(AppError::ForeignFrame(found)) => return Err(door.refuse_frame(found)),
        other => other?,
    };
    let still = st.faults.still(door.grant().camera, still, &st.hubs);
    door.write(&still)
}

async fn media_object(
    State(st): State<AppState>,
    Egress(door): Egress,
    Path((_, name)): Path<(String, String)>,
) -> Result<MediaResponse, AppError> {
    let hub = hub_for(&st, door.grant(), AppError::NotFound)?;
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
    let obj = hub.object(kind, &name);
    let obj = st.faults.object(door.grant().camera, obj, kind, &st.hubs);
    let obj = obj.ok_or(AppError::NotFound)?;
    door.write(&obj)
}

const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn static_file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn web_index() -> Response {
    web_index_response()
}

/// The web app's page (also the OAuth authorization page).
pub fn web_index_response() -> Response {
    static_file(
        include_str!("../../../web/index.html"),
        "text/html; charset=utf-8",
    )
}
async fn web_app_js() -> Response {
    static_file(
        include_str!("../../../web/app.js"),
        "text/javascript; charset=utf-8",
    )
}
async fn web_link_js() -> Response {
    static_file(
        include_str!("../../../web/link.js"),
        "text/javascript; charset=utf-8",
    )
}
async fn web_player_js() -> Response {
    static_file(
        include_str!("../../../web/player.js"),
        "text/javascript; charset=utf-8",
    )
}
async fn web_css() -> Response {
    static_file(
        include_str!("../../../web/app.css"),
        "text/css; charset=utf-8",
    )
}
