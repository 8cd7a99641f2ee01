//! The server's one error type, and the one place where an error becomes an HTTP status.
//!
//! The variants say whose fault an error is: the viewer (bad input, bad or
//! expired credentials), the camera (no stream), or us (internal). Clients get a short
//! message; internal details go to the log only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("invalid email or password")]
    BadLogin,
    #[error("forbidden")]
    Forbidden,
    /// Changing a password: the current password given is not the account's.
    /// Not a 401: the session itself is fine and stays signed in.
    #[error("the current password is not correct")]
    WrongPassword,
    /// A valid grant presented without the session it was issued to.
    #[error(
        "this stream grant belongs to another session: send the session that requested it (Authorization: Bearer)"
    )]
    NotHolder,
    /// The egress door refused an object that does not belong to the grant. The
    /// connection is closed; nothing is retried.
    #[error("stream unavailable")]
    IsolationViolation,
    /// The still-image cache found a frame without this camera's stamp (a cache or
    /// mapping fault): refused like an isolation violation, after the door records it.
    #[error("stream unavailable")]
    ForeignFrame(Option<hearth_model::Provenance>),
    /// Unknown, or not visible to the caller: the two are deliberately indistinguishable.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("camera is offline")]
    CameraOffline,
    /// A rate limit or the password hashing pool said no; try again after this long.
    #[error("too many requests; try again later")]
    TooManyRequests(std::time::Duration),
    /// A kill switch is on.
    #[error("{0}")]
    Suspended(String),
    /// This node cannot serve the request now (it failed closed); another may.
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    /// A node whose access view is fenced issues no grant (see
    /// [`hearth_access::view::AccessView::fence`]).
    pub fn fenced() -> Self {
        AppError::Unavailable(
            "this node cannot confirm access right now (its cluster's control plane is unreachable)",
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::BadLogin => StatusCode::UNAUTHORIZED,
            AppError::Forbidden
            | AppError::WrongPassword
            | AppError::NotHolder
            | AppError::IsolationViolation
            | AppError::ForeignFrame(_)
            | AppError::Suspended(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::CameraOffline | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<hearth_store::StoreError> for AppError {
    fn from(e: hearth_store::StoreError) -> Self {
        use hearth_store::StoreError as S;
        match e {
            S::Conflict { .. } => AppError::Conflict(e.to_string()),
            S::NotFound { .. } => AppError::NotFound,
            S::InvalidInput { .. } => AppError::BadRequest(e.to_string()),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<hearth_access::limits::RetryAfter> for AppError {
    fn from(r: hearth_access::limits::RetryAfter) -> Self {
        AppError::TooManyRequests(r.0)
    }
}

impl From<hearth_access::limits::Busy> for AppError {
    fn from(_: hearth_access::limits::Busy) -> Self {
        AppError::TooManyRequests(std::time::Duration::from_secs(1))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let AppError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let close = matches!(
            self,
            AppError::IsolationViolation | AppError::ForeignFrame(_)
        );
        let mut resp = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if close {
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if let AppError::TooManyRequests(wait) = &self {
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        resp
    }
}
