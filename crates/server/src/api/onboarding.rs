//! Adding a camera from the web app or any client: one Hearth pulls (an RTSP
//! source: URL, user name, password) or one that pushes (RTMP: its URL with
//! the stream key is in this answer only). The camera joins the caller's
//! household; the shared rules are `crate::ingest::onboard`'s.

use super::cameras::CameraView;
use super::parse_json;
use crate::auth::AuthUser;
use crate::error::AppError;
use crate::ingest::onboard::{self, AddError};
use crate::ingest::rtsp::source::{RtpTransport, RtspSource};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_access::audit;
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
}

impl NewCamera {
    /// The RTSP source asked for, if any.
    pub(super) fn source(&self) -> Result<Option<RtspSource>, AppError> {
        let Some(url) = self.rtsp_url.as_deref() else {
            let stray = self.rtsp_sub_url.is_some()
                || !self.rtsp_username.is_empty()
                || !self.rtsp_password.is_empty();
            return if stray {
                Err(AppError::BadRequest(
                    "rtsp_url is missing (the other rtsp_ fields go with it)".into(),
                ))
            } else {
                Ok(None)
            };
        };
        RtspSource::new(
            url,
            self.rtsp_sub_url.as_deref(),
            &self.rtsp_username,
            &self.rtsp_password,
            self.rtsp_transport,
        )
        .map(Some)
        .map_err(|e| AppError::BadRequest(e.to_string()))
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
    let timezone = req.timezone.clone().unwrap_or_else(|| "UTC".into());
    let kind = if source.is_some() { "rtsp" } else { "rtmp" };
    let host = source.as_ref().map(RtspSource::describe);
    let added = {
        let (st, name) = (st.clone(), req.name.clone());
        tokio::task::spawn_blocking(move || {
            let source = source.as_ref().map(|s| (s, st.pulls.sealer()));
            onboard::add_camera(st.store.as_ref(), household, &name, &timezone, source)
        })
        .await??
    };
    let camera = added.camera;
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
            serde_json::json!({"name": camera.name, "kind": kind, "source": host}),
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
            camera: CameraView::of(&st, camera, hearth_store::Access::Owner, None),
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
