//! Adding, changing and removing cameras, from the web app or any client. A
//! camera is one Hearth pulls (an RTSP source: URL, user name, password) or one
//! that pushes (RTMP: its URL with the stream key is in the answer that makes
//! the key, and nowhere else). A new camera joins the caller's household; the
//! rules shared with the admin CLI are `crate::ingest::onboard`'s.

use super::cameras::CameraView;
use super::parse_json;
use crate::auth::AuthUser;
use crate::error::AppError;
use crate::ingest::onboard::{self, AddError};
use crate::ingest::rtsp::source::{RtpTransport, RtspSource};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_access::audit;
use hearth_model::AgentId;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCamera {
    name: String,
    /// IANA time zone of the camera's place [default: UTC].
    #[serde(default)]
    timezone: Option<String>,
    /// A pulled camera's main stream; without it, a push camera.
    #[serde(default)]
    rtsp_url: Option<String>,
    #[serde(default)]
    rtsp_sub_url: Option<String>,
    #[serde(default)]
    rtsp_username: String,
    #[serde(default)]
    rtsp_password: String,
    #[serde(default)]
    rtsp_transport: RtpTransport,
    /// The household's home agent that pulls `rtsp_url` (a camera on its LAN,
    /// which this server cannot reach).
    #[serde(default)]
    agent: Option<AgentId>,
    /// "Test connection": the camera is added on trial (a draft, see
    /// [`DRAFT_TTL_MS`]) so that its first picture can be seen before it is
    /// kept; `PATCH {save: true}` keeps it, `DELETE` drops it.
    #[serde(default)]
    test: bool,
}

/// How long a camera added on trial lives unless it is saved.
pub const DRAFT_TTL_MS: i64 = 10 * 60 * 1000;

/// Checks that this server may pull `source` itself: on a node that pulls
/// public addresses only, a URL naming a private address is refused here
/// (a name is checked each time it is resolved).
fn check_address(
    st: &AppState,
    source: Option<&RtspSource>,
    agent: Option<AgentId>,
) -> Result<(), AppError> {
    let (Some(source), None) = (source, agent) else {
        return Ok(());
    };
    let private = st.pulls.private_addresses();
    for url in [Some(source.main_url.as_str()), source.sub_url.as_deref()]
        .into_iter()
        .flatten()
    {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        if !crate::ingest::rtsp::address::literal_allowed(&host, private) {
            return Err(AppError::BadRequest(format!(
                "{host} is a private address: this server pulls public addresses only (pair a home agent for cameras at home)"
            )));
        }
    }
    Ok(())
}

/// Checks that `agent` is one of `household`'s and that it comes with a
/// source.
async fn check_agent(
    st: &AppState,
    household: hearth_model::HouseholdId,
    agent: Option<AgentId>,
    source: Option<&RtspSource>,
) -> Result<(), AppError> {
    let Some(agent) = agent else {
        return Ok(());
    };
    if source.is_none() {
        return Err(AppError::BadRequest(
            "agent goes with rtsp_url (the camera's address on the agent's network)".into(),
        ));
    }
    let agents = st.db(move |s| s.agents(household)).await?;
    if !agents.iter().any(|a| a.id == agent) {
        return Err(AppError::BadRequest(
            "no such home agent in your household".into(),
        ));
    }
    Ok(())
}

/// The RTSP source the `rtsp_*` fields of a request ask for, if any.
fn requested_source(
    url: Option<&str>,
    sub_url: Option<&str>,
    username: &str,
    password: &str,
    transport: RtpTransport,
) -> Result<Option<RtspSource>, AppError> {
    let Some(url) = url else {
        let stray = sub_url.is_some() || !username.is_empty() || !password.is_empty();
        return if stray {
            Err(AppError::BadRequest(
                "rtsp_url is missing (the other rtsp_ fields go with it)".into(),
            ))
        } else {
            Ok(None)
        };
    };
    RtspSource::new(url, sub_url, username, password, transport)
        .map(Some)
        .map_err(|e| AppError::BadRequest(e.to_string()))
}

impl NewCamera {
    fn source(&self) -> Result<Option<RtspSource>, AppError> {
        requested_source(
            self.rtsp_url.as_deref(),
            self.rtsp_sub_url.as_deref(),
            &self.rtsp_username,
            &self.rtsp_password,
            self.rtsp_transport,
        )
    }
}

#[derive(Serialize)]
pub(super) struct Added {
    #[serde(flatten)]
    camera: CameraView,
    /// A push camera's RTMP URL with its stream key: shown in this answer
    /// only (it is stored hashed).
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest_url: Option<String>,
    /// The same URL as a QR code (SVG), for camera apps that scan one.
    #[serde(skip_serializing_if = "Option::is_none")]
    ingest_qr_svg: Option<String>,
}

impl From<AddError> for AppError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Invalid(m) => AppError::BadRequest(m),
            AddError::Store(e) => e.into(),
        }
    }
}

pub(super) async fn add_camera(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    body: Bytes,
) -> Result<(StatusCode, Json<Added>), AppError> {
    let req: NewCamera = parse_json(&body)?;
    let source = req.source()?;
    let household = st
        .db(move |s| s.user_by_id(user))
        .await?
        .ok_or(AppError::Unauthorized)?
        .household;
    check_agent(&st, household, req.agent, source.as_ref()).await?;
    check_address(&st, source.as_ref(), req.agent)?;
    if req.test && source.is_none() {
        return Err(AppError::BadRequest(
            "test goes with rtsp_url (a push camera is tested by pushing)".into(),
        ));
    }
    let agent = req.agent;
    let timezone = req.timezone.clone().unwrap_or_else(|| "UTC".into());
    let kind = match (&source, agent) {
        (Some(_), Some(_)) => "agent",
        (Some(_), None) => "rtsp",
        (None, _) => "rtmp",
    };
    let host = source.as_ref().map(RtspSource::describe);
    let added = {
        let (st, name) = (st.clone(), req.name.clone());
        tokio::task::spawn_blocking(move || {
            let source = source.as_ref().map(|s| (s, st.pulls.sealer()));
            onboard::add_camera(
                st.store.as_ref(),
                household,
                &name,
                &timezone,
                source,
                agent,
            )
        })
        .await??
    };
    let camera = added.camera;
    if req.test {
        let until = hearth_model::UnixMillis(hearth_access::clock::now().0 + DRAFT_TTL_MS);
        st.db(move |s| s.mark_camera_draft(camera.id, until))
            .await?;
    }
    // The owner may view it, and Hearth pulls it, before this answer.
    st.refresh_access().await?;
    crate::ingest::rtsp::sync(&st)
        .await
        .map_err(AppError::Internal)?;
    tracing::info!(camera = ?camera.id, by = ?user, kind, source = ?host, "camera added");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(camera.id),
        user: Some(user),
        ..audit::event(
            "camera_added",
            None,
            serde_json::json!({"name": camera.name, "kind": kind, "source": host, "agent": agent, "draft": req.test}),
        )
    });
    let ingest_url = (kind == "rtmp").then(|| {
        let base = st
            .ingest_url
            .get()
            .map_or("rtmp://localhost:1935/live", String::as_str);
        format!("{base}/{}", added.stream_key.expose())
    });
    let ingest_qr_svg = ingest_url.as_deref().and_then(qr_svg);
    Ok((
        StatusCode::CREATED,
        Json(Added {
            camera: CameraView::of(&st, camera, hearth_store::Access::Owner, None)
                .with_draft(req.test),
            ingest_url,
            ingest_qr_svg,
        }),
    ))
}

/// `text` as a QR code in SVG (medium error correction, a quiet zone).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Change {
    #[serde(default)]
    name: Option<String>,
    /// A new RTSP source (the camera becomes, or stays, one Hearth pulls).
    #[serde(default)]
    rtsp_url: Option<String>,
    #[serde(default)]
    rtsp_sub_url: Option<String>,
    #[serde(default)]
    rtsp_username: String,
    #[serde(default)]
    rtsp_password: String,
    #[serde(default)]
    rtsp_transport: RtpTransport,
    /// With a new RTSP source: the household's home agent that pulls it.
    #[serde(default)]
    agent: Option<AgentId>,
    /// Make a pulled camera a push camera (its source is dropped); the answer
    /// carries its new ingest URL.
    #[serde(default)]
    push: bool,
    /// A new stream key for a push camera: the old one stops at once (its
    /// publisher is disconnected); the answer carries the new ingest URL.
    #[serde(default)]
    rotate_key: bool,
    /// Keep a camera added on trial (`test`).
    #[serde(default)]
    save: bool,
}

/// `PATCH /api/v1/cameras/{id}` (owners): rename, change the source, rotate the
/// stream key. Linked platforms are told to re-sync a renamed camera.
pub(super) async fn change_camera(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Added>, AppError> {
    let cam = super::cameras::owned_camera(&st, user, &id).await?;
    let req: Change = parse_json(&body)?;
    let source = requested_source(
        req.rtsp_url.as_deref(),
        req.rtsp_sub_url.as_deref(),
        &req.rtsp_username,
        &req.rtsp_password,
        req.rtsp_transport,
    )?;
    check_agent(&st, cam.household, req.agent, source.as_ref()).await?;
    check_address(&st, source.as_ref(), req.agent)?;
    let agent = req.agent;
    if source.is_some() && (req.push || req.rotate_key) {
        return Err(AppError::BadRequest(
            "a pulled camera has no stream key: give rtsp_url, or push/rotate_key".into(),
        ));
    }
    let pulled = st.pulls.source_host(cam.id).is_some();
    if req.rotate_key && pulled && !req.push {
        return Err(AppError::BadRequest(
            "a pulled camera has no stream key to rotate (send push: true to make it a push camera)".into(),
        ));
    }
    if req.name.is_none() && source.is_none() && !req.push && !req.rotate_key && !req.save {
        return Err(AppError::BadRequest("nothing to change".into()));
    }
    let name = req
        .name
        .as_deref()
        .map(onboard::camera_name)
        .transpose()?
        .map(str::to_owned);
    let host = source.as_ref().map(RtspSource::describe);
    let new_key = {
        let (st, cam, name) = (st.clone(), cam.clone(), name.clone());
        let (push, rotate, save) = (req.push, req.rotate_key, req.save);
        tokio::task::spawn_blocking(move || -> Result<_, AddError> {
            let store = st.store.as_ref();
            if save {
                store.save_camera_draft(cam.id)?;
            }
            if let Some(name) = &name {
                store.rename_camera(cam.id, name)?;
            }
            if let Some(source) = &source {
                onboard::set_source(store, st.pulls.sealer(), &cam, Some(source), agent)?;
            }
            if push {
                onboard::set_source(store, st.pulls.sealer(), &cam, None, None)?;
            }
            Ok((push || rotate)
                .then(|| onboard::rotate_stream_key(store, &cam))
                .transpose()?)
        })
        .await??
    };
    if new_key.is_some() {
        // The old key's publisher stops now; the camera reconnects with the new one.
        st.hubs.disconnect(cam.id);
    }
    st.refresh_access().await?;
    crate::ingest::rtsp::sync(&st)
        .await
        .map_err(AppError::Internal)?;
    let mut changed = serde_json::Map::new();
    if let Some(n) = &name {
        st.homegraph.camera_renamed(cam.id);
        changed.insert("name".into(), n.clone().into());
    }
    if let Some(h) = &host {
        changed.insert("source".into(), h.clone().into());
        if let Some(a) = agent {
            changed.insert("agent".into(), a.to_string().into());
        }
    }
    if req.push {
        changed.insert("kind".into(), "rtmp".into());
    }
    if new_key.is_some() {
        changed.insert("stream_key".into(), "rotated".into());
    }
    if req.save {
        changed.insert("draft".into(), "saved".into());
    }
    tracing::info!(camera = ?cam.id, by = ?user, changed = %serde_json::Value::from(changed.clone()), "camera changed");
    st.audit.record(hearth_store::AuditEvent {
        camera: Some(cam.id),
        user: Some(user),
        ..audit::event(
            if name.is_some() && changed.len() == 1 {
                "camera_renamed"
            } else {
                "camera_changed"
            },
            None,
            changed.into(),
        )
    });
    let ingest_url = new_key.map(|k| {
        let base = st
            .ingest_url
            .get()
            .map_or("rtmp://localhost:1935/live", String::as_str);
        format!("{base}/{}", k.expose())
    });
    let ingest_qr_svg = ingest_url.as_deref().and_then(qr_svg);
    let cam = hearth_store::Camera {
        name: name.unwrap_or(cam.name),
        ..cam
    };
    Ok(Json(Added {
        camera: CameraView::of(&st, cam, hearth_store::Access::Owner, None),
        ingest_url,
        ingest_qr_svg,
    }))
}

/// `DELETE /api/v1/cameras/{id}` (owners): ingest stops (a pull ends, a
/// publisher is disconnected and its key no longer opens), every grant for the
/// camera is refused from the next request or frame, shares, invitations,
/// consents and viewer-key entries go with it; the audit log keeps its history.
pub(super) async fn delete_camera(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let cam = super::cameras::owned_camera(&st, user, &id).await?;
    remove_camera(&st, &cam, Some(user), "camera_deleted").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `cam` (see [`delete_camera`]), recording `event` in the audit log.
async fn remove_camera(
    st: &AppState,
    cam: &hearth_store::Camera,
    by: Option<hearth_model::UserId>,
    event: &'static str,
) -> Result<(), AppError> {
    let id = cam.id;
    if !st.db(move |s| s.delete_camera(id)).await? {
        return Err(AppError::NotFound);
    }
    st.hubs.disconnect(cam.id);
    st.refresh_access().await?;
    crate::ingest::rtsp::sync(st)
        .await
        .map_err(AppError::Internal)?;
    tracing::info!(camera = ?cam.id, by = ?by, event, "camera deleted");
    st.audit_now(hearth_store::AuditEvent {
        camera: Some(cam.id),
        user: by,
        ..audit::event(event, None, serde_json::json!({"name": cam.name}))
    })
    .await?;
    Ok(())
}

/// Deletes cameras added on trial and never saved, every 30 seconds.
pub async fn expire_drafts(st: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tick.tick().await;
        let now = hearth_access::clock::now();
        let expired: Vec<hearth_store::Camera> = match st
            .db(move |s| {
                let mut out = Vec::new();
                for (c, until) in s.camera_drafts()? {
                    if until <= now
                        && let Some(cam) = s.camera_by_id(c)?
                    {
                        out.push(cam);
                    }
                }
                Ok(out)
            })
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "draft cameras not checked");
                continue;
            }
        };
        for cam in expired {
            if let Err(e) = remove_camera(&st, &cam, None, "camera_draft_expired").await {
                tracing::warn!(camera = ?cam.id, error = %e, "an expired draft camera was not removed");
            }
        }
    }
}
