//! The account: signing in and out, the user's signed-in sessions (list, end
//! one), and changing the password.
//!
//! Ending a session from another one works as signing out does: the token stops
//! working and every stream grant the session holds is refused from then on.
//! Changing the password takes the current one, checked under the login's rate
//! limits on the same account (a stolen session guesses no faster than anyone
//! else), and ends every other session of the user.

use super::parse_json;
use crate::auth::{AuthSession, ClientAddr, new_session, user_agent};
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hearth_access::audit;
use hearth_access::grant::GRANT_TTL_MS;
use hearth_access::limits::SecretKind;
use hearth_access::password::{MIN_PASSWORD_CHARS, long_enough};
use hearth_model::{SessionId, UnixMillis};
use serde::{Deserialize, Serialize};

/// Passwords longer than this are refused unread (argon2 would hash them all).
const MAX_PASSWORD_BYTES: usize = 1024;

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
    if req.email.len() > 320 || req.password.len() > MAX_PASSWORD_BYTES {
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
    session: AuthSession,
) -> Result<StatusCode, AppError> {
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
    Ok(StatusCode::NO_CONTENT)
}

/// One of the caller's signed-in sessions.
#[derive(Serialize)]
pub(super) struct SessionView {
    /// Names the session to end it; not its token, and it signs nothing in.
    id: SessionId,
    created_at: String,
    expires_at: String,
    /// The address it signed in from, if known.
    address: Option<String>,
    /// What it signed in with (the User-Agent), if known.
    client: Option<String>,
    /// The session this request came with.
    current: bool,
}

/// `GET /api/v1/sessions`: the caller's signed-in sessions, newest first.
pub(super) async fn list_sessions(
    State(st): State<AppState>,
    session: AuthSession,
) -> Result<Json<Vec<SessionView>>, AppError> {
    let (user, now) = (session.user, hearth_access::clock::now());
    let sessions = st.db(move |s| s.sessions_of_user(user, now)).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == session.id,
                id: s.id,
                created_at: hearth_access::clock::rfc3339(s.created_at),
                expires_at: hearth_access::clock::rfc3339(s.expires_at),
                address: s.address,
                client: s.client,
            })
            .collect(),
    ))
}

/// `DELETE /api/v1/sessions/{id}`: ends one of the caller's sessions as signing
/// out ends it (its token and its stream grants stop working). Another user's
/// session, an unknown or expired one and a malformed id are all 404.
pub(super) async fn end_session(
    State(st): State<AppState>,
    session: AuthSession,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id: SessionId = id.parse().map_err(|_| AppError::NotFound)?;
    let user = session.user;
    let now = hearth_access::clock::now();
    let until = UnixMillis(now.0 + GRANT_TTL_MS);
    if !st.db(move |s| s.end_session(user, id, until, now)).await? {
        return Err(AppError::NotFound);
    }
    // Apply it now rather than at the next poll.
    st.refresh_access().await?;
    tracing::info!(user = ?user, session = ?id, own = (id == session.id), "session ended");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(user),
        ..audit::event(
            "session_ended",
            None,
            serde_json::json!({"session": id, "by": session.id}),
        )
    });
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/password`: changes the caller's password. The current password
/// is checked first (403 if wrong, 429 past the login limits); the new one must
/// be long enough (400). Every other session of the user ends, with its stream
/// grants; this one stays signed in. Audited before the answer.
pub(super) async fn change_password(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    session: AuthSession,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let req: PasswordChange = parse_json(&body)?;
    if req.current_password.len() > MAX_PASSWORD_BYTES
        || req.new_password.len() > MAX_PASSWORD_BYTES
    {
        return Err(AppError::BadRequest("password too long".into()));
    }
    if !long_enough(&req.new_password) {
        return Err(AppError::BadRequest(format!(
            "the new password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let user = session.user;
    let account = st
        .db(move |s| s.user_by_id(user))
        .await?
        .ok_or(AppError::Unauthorized)?;
    // The login's limits, on the same account and address: guesses through a
    // session count with guesses at the login form.
    if let Err(wait) = st.limits.attempt(SecretKind::Login, ip, &account.email) {
        tracing::info!(address = %ip, user = ?user, "password change refused: rate limit");
        st.failures.record(
            SecretKind::Login,
            &account.email,
            ip,
            hearth_access::clock::now(),
        );
        return Err(wait.into());
    }
    let ok = st
        .hash_pool
        .verify(Some(account.password_hash), req.current_password)
        .await?;
    if !ok {
        tracing::info!(address = %ip, user = ?user, "password change refused: wrong current password");
        st.failures.record(
            SecretKind::Login,
            &account.email,
            ip,
            hearth_access::clock::now(),
        );
        return Err(AppError::WrongPassword);
    }
    let hash = st
        .hash_pool
        .hash(req.new_password)
        .await?
        .map_err(|e| AppError::internal(anyhow::anyhow!("hashing a new password: {e}")))?;
    let now = hearth_access::clock::now();
    let until = UnixMillis(now.0 + GRANT_TTL_MS);
    let keep = session.id;
    // One transaction: the new password and the end of every other session.
    let ended = st
        .db(move |s| s.change_password(user, &hash, keep, until, now))
        .await?;
    st.refresh_access().await?;
    tracing::info!(user = ?user, other_sessions_ended = ended, "password changed");
    // Durable before the answer, like a login.
    st.audit_now(hearth_store::AuditEvent {
        user: Some(user),
        ..audit::event(
            "password_changed",
            None,
            serde_json::json!({"sessions_ended": ended, "by": session.id}),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
