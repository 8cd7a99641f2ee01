//! Signing in and out: login sessions for the web app and the API.

use super::parse_json;
use crate::auth::{ClientAddr, new_session, user_agent};
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hearth_access::audit;
use hearth_access::grant::GRANT_TTL_MS;
use hearth_access::limits::SecretKind;
use hearth_model::UnixMillis;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize)]
pub(super) struct LoginResponse {
    token: String,
    expires_at: String,
}

pub(super) async fn login(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LoginResponse>, AppError> {
    let req: LoginRequest = parse_json(&body)?;
    if req.email.len() > 320 || req.password.len() > 1024 {
        return Err(AppError::BadRequest("email or password too long".into()));
    }
    // Before any work: one address on one account, and one address overall.
    if let Err(wait) = st.limits.attempt(SecretKind::Login, ip, &req.email) {
        tracing::info!(address = %ip, "login refused: rate limit");
        st.failures.record(
            SecretKind::Login,
            &req.email,
            ip,
            hearth_access::clock::now(),
        );
        return Err(wait.into());
    }
    let email = req.email.clone();
    let user = st.db(move |s| s.user_by_email(&email)).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = st.hash_pool.verify(hash, req.password).await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            tracing::info!(address = %ip, "login failed");
            // One audit row per burst of failures (see `audit_failures`).
            st.failures.record(
                SecretKind::Login,
                &req.email,
                ip,
                hearth_access::clock::now(),
            );
            return Err(AppError::BadLogin);
        }
    };
    let (token, expires) = new_session(&st, user.id, ip, user_agent(&headers)).await?;
    tracing::info!(user = ?user.id, "login");
    // Durable before the token is handed out.
    st.audit_now(hearth_store::AuditEvent {
        user: Some(user.id),
        ..audit::event("login", None, serde_json::json!({}))
    })
    .await?;
    Ok(Json(LoginResponse {
        token: token.expose().to_string(),
        expires_at: hearth_access::clock::rfc3339(expires),
    }))
}

/// Ends the caller's session: its token stops working, and every stream grant it
/// holds is refused from now on (live players stop at their next request).
pub(super) async fn logout(
    State(st): State<AppState>,
    session: crate::auth::AuthSession,
) -> Result<axum::http::StatusCode, AppError> {
    let (hash, holder) = (session.token, session.holder.to_bytes());
    let now = hearth_access::clock::now();
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
