//! The operator's HTTP API: kill switches over HTTP, the same as `hearth suspend`.
//!
//! Operators authenticate with a bearer token made by `hearth admin token`: shown
//! once, stored only as its SHA-256 in the data directory (mode 0600), compared in
//! constant time. Without that file the admin API refuses everything. User session
//! tokens never open it.

use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_model::{RawToken, TokenHash};
use hearth_store::{Camera, Store, SuspensionKind};
use serde::{Deserialize, Serialize};
use std::path::Path as FsPath;

pub const TOKEN_FILE: &str = "admin-token.sha256";

/// Creates (or replaces) the operator token; returns it to show once.
pub fn create_token(data_dir: &FsPath) -> std::io::Result<RawToken> {
    let token = RawToken::generate();
    let path = data_dir.join(TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    hearth_access::grant::write_private(&path, token.hash().as_bytes())?;
    Ok(token)
}

/// A request carrying the operator token.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(AppError::Unauthorized)?;
        let stored =
            std::fs::read(state.data_dir.join(TOKEN_FILE)).map_err(|_| AppError::Unauthorized)?;
        let stored: [u8; 32] = stored.try_into().map_err(|_| AppError::Unauthorized)?;
        if RawToken::from_client(presented).hash() == TokenHash::from_bytes(stored) {
            Ok(AdminAuth)
        } else {
            tracing::warn!("admin API: wrong operator token");
            Err(AppError::Unauthorized)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    kind: String,
    target: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Serialize)]
pub struct SuspensionView {
    kind: &'static str,
    target: String,
    reason: String,
    created_at: String,
}

/// Runs an operator operation off the runtime; operator mistakes (unknown user,
/// bad kind) are 400s, store errors map as usual.
async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn hearth_store::Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, AppError> {
    let store = st.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await?
        .map_err(|e| match e.downcast::<hearth_store::StoreError>() {
            Ok(se) => AppError::from(se),
            Err(e) => AppError::BadRequest(e.to_string()),
        })
}

pub async fn suspend(
    State(st): State<AppState>,
    _: AdminAuth,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let req: SuspendRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let now = hearth_access::clock::now();
    let reason = req.reason.unwrap_or_else(|| "suspended by operator".into());
    blocking(&st, move |s| {
        let (kind, target) = suspension_target(s, &req.kind, &req.target)?;
        s.suspend(kind, &target, &reason, now)?;
        record_admin(
            s,
            "suspend",
            target.parse().ok(),
            serde_json::json!({"kind": kind.as_str(), "target": target, "reason": reason, "via": "admin api"}),
        )
    })
    .await?;
    st.refresh_access().await?;
    Ok(StatusCode::CREATED)
}

pub async fn resume(
    State(st): State<AppState>,
    _: AdminAuth,
    Path((kind, target)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let was = blocking(&st, move |s| {
        let (kind, target) = suspension_target(s, &kind, &target)?;
        let was = s.resume(kind, &target)?;
        record_admin(
            s,
            "resume",
            target.parse().ok(),
            serde_json::json!({"kind": kind.as_str(), "target": target, "via": "admin api"}),
        )?;
        Ok(was)
    })
    .await?;
    st.refresh_access().await?;
    Ok(if was {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    })
}

pub async fn list(
    State(st): State<AppState>,
    _: AdminAuth,
) -> Result<Json<Vec<SuspensionView>>, AppError> {
    let list = st.db(|s| s.suspensions()).await?;
    Ok(Json(
        list.into_iter()
            .map(|s| SuspensionView {
                kind: s.kind.as_str(),
                target: s.target,
                reason: s.reason,
                created_at: hearth_access::clock::rfc3339(s.created_at),
            })
            .collect(),
    ))
}

/// A camera named by its id as text (operator input).
pub fn camera_by_id_text(store: &dyn Store, camera: &str) -> anyhow::Result<Camera> {
    let id: hearth_model::CameraId = camera
        .parse()
        .map_err(|_| anyhow::anyhow!("{camera:?} is not a camera id"))?;
    store
        .camera_by_id(id)?
        .ok_or_else(|| anyhow::anyhow!("no camera {camera}"))
}

/// The suspension kind and the stored target of `hearth suspend KIND TARGET` (and
/// the admin API's): a user by email, a camera by id, the rest as given.
pub fn suspension_target(
    store: &dyn Store,
    kind: &str,
    target: &str,
) -> anyhow::Result<(SuspensionKind, String)> {
    let kind = SuspensionKind::parse(kind).ok_or_else(|| {
        anyhow::anyhow!("kind must be one of integration, household, camera, user")
    })?;
    let target = match kind {
        SuspensionKind::User => store
            .user_by_email(target)?
            .ok_or_else(|| anyhow::anyhow!("no user with email {target}"))?
            .id
            .to_string(),
        SuspensionKind::Camera => camera_by_id_text(store, target)?.id.to_string(),
        SuspensionKind::Household | SuspensionKind::Integration => target.to_string(),
    };
    Ok((kind, target))
}

/// Records an operator action in the audit log (the CLI runs in its own process,
/// so it writes directly rather than through the server's queue).
pub fn record_admin(
    store: &dyn Store,
    kind: &str,
    camera: Option<hearth_model::CameraId>,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store.append_audit(&[hearth_store::AuditEvent {
        at: hearth_access::clock::now(),
        kind: kind.to_string(),
        camera,
        user: None,
        integration: Some("admin".into()),
        grant: None,
        detail,
    }])?;
    Ok(())
}
