//! The operator's HTTP API: kill switches over HTTP, the same as `hearth suspend`.
//!
//! Operators authenticate with a bearer token made by `hearth admin-token`
//! (`hearth_access::operator`): shown once, stored only as its SHA-256 in the
//! data directory (mode 0600), compared in constant time, rate-limited per
//! address. Without that file the admin API refuses everything. User session
//! tokens never open it.

use crate::auth::ClientAddr;
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_access::limits::SecretKind;
use hearth_model::RawToken;
use hearth_store::{Camera, Store, SuspensionKind};
use serde::{Deserialize, Serialize};

/// A request carrying the operator token.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let ClientAddr(ip) = ClientAddr::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientAddr(std::net::Ipv4Addr::UNSPECIFIED.into()));
        let now = hearth_access::clock::now();
        if let Err(wait) = state.limits.attempt(SecretKind::AdminToken, ip, "") {
            state.failures.record(SecretKind::AdminToken, "", ip, now);
            return Err(wait.into());
        }
        let presented = crate::auth::bearer(&parts.headers).ok_or(AppError::Unauthorized)?;
        let stored = state.admin_token.current(&state.data_dir);
        let presented = RawToken::from_client(presented).hash();
        let ok = stored.is_some_and(|s| {
            subtle::ConstantTimeEq::ct_eq(&presented.as_bytes()[..], &s.as_bytes()[..]).into()
        });
        if ok {
            Ok(AdminAuth)
        } else {
            tracing::warn!(address = %ip, "admin API: wrong operator token");
            state.failures.record(SecretKind::AdminToken, "", ip, now);
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
