//! The OAuth 2.0 authorization server that links a Hearth account to a smart-display
//! platform (Google Home, Alexa).
//!
//! RFC 6749's authorization code grant, with PKCE S256 (RFC 7636) accepted and
//! checked when the client sends a challenge, refresh tokens rotated on every use
//! (a rotated token presented again revokes the link: someone holds a copy), and
//! RFC 7009 revocation. Clients are registered by the operator (`hearth integration
//! add`), one per integration; redirect URIs match exactly. Codes live 5 minutes and
//! are single use (a second use revokes the link the first created), access tokens
//! 1 hour, refresh tokens 180 days from their last rotation. Only SHA-256 hashes of
//! codes, tokens and client secrets are stored; client secrets are compared in
//! constant time.
//!
//! The authorization page is the web app (`GET /oauth/authorize` serves it once the
//! client and redirect URI check out): the user signs in, sees the cameras and may
//! leave some out; `POST /api/v1/oauth/authorize` turns that consent into a code.
//!
//! Errors follow the RFC: before the redirect URI is known to be the client's, the
//! user sees an error page and nothing is redirected (4.1.2.1); after, the error
//! goes back to the client in the redirect; the token and revocation endpoints
//! answer `{"error": ..., "error_description": ...}` with 400, or 401 for
//! `invalid_client`.
//!
//! Hand-written rather than a crate: the OAuth server crates on crates.io either
//! bring their own storage and web framework or are unmaintained; the protocol
//! surface needed here (two grant types, one revocation endpoint) is small, and
//! every storage step must run in the store's transactions.

use crate::auth::{AuthSession, AuthUser, ClientAddr};
use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hearth_access::limits::SecretKind;
use hearth_model::{CameraId, Integration, LinkId, RawToken, UnixMillis};
use hearth_store::{AuthCode, Link, OAuthClient, Redeemed, Revocation, TokenPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const CODE_TTL_MS: i64 = 5 * 60 * 1000;
pub const ACCESS_TTL_MS: i64 = 3600 * 1000;
pub const REFRESH_TTL_MS: i64 = 180 * 24 * 3600 * 1000;
/// Client secrets are chosen by the operator; short ones are refused at
/// registration, so a plain SHA-256 is a sound way to store them.
pub const MIN_CLIENT_SECRET_LEN: usize = 32;

/// How a platform is named to the user.
pub fn display_name(i: Integration) -> &'static str {
    match i {
        Integration::Google => "Google Home",
        Integration::Alexa => "Alexa",
        Integration::App => "Hearth web app",
        Integration::Api => "Hearth API",
        Integration::Restream => "a viewer key",
    }
}

pub fn secret_hash(secret: &str) -> hearth_model::TokenHash {
    RawToken::from_client(secret).hash()
}

/// An error of the protocol, in the RFC's vocabulary.
#[derive(Debug)]
pub struct OAuthError {
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }

    fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }

    fn invalid_client() -> Self {
        Self::new("invalid_client", "client authentication failed")
    }
}

/// A token- or revocation-endpoint answer: an RFC error or an internal failure.
pub enum TokenError {
    OAuth(OAuthError),
    App(AppError),
}

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> Self {
        TokenError::OAuth(e)
    }
}

impl From<AppError> for TokenError {
    fn from(e: AppError) -> Self {
        TokenError::App(e)
    }
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let e = match self {
            TokenError::App(e) => return e.into_response(),
            TokenError::OAuth(e) => e,
        };
        tracing::info!(error = e.code, description = %e.description, "oauth request refused");
        let status = if e.code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut r = (
            status,
            Json(serde_json::json!({"error": e.code, "error_description": e.description})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hearth\""),
            );
        }
        no_store(r)
    }
}

// --- the authorization request ---

/// The parameters of an authorization request (4.1.1), as received.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    scope: Option<String>,
}

/// A checked authorization request.
struct Authorize {
    client: OAuthClient,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: Option<String>,
}

/// Why an authorization request is refused.
enum AuthorizeError {
    /// The client or redirect URI is wrong: tell the user, redirect nowhere.
    NoRedirect(String),
    /// Tell the client through its redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

impl AuthorizeError {
    fn message(&self) -> String {
        match self {
            AuthorizeError::NoRedirect(m) => m.clone(),
            AuthorizeError::Redirect { error, .. } => {
                format!("{}: {}", error.code, error.description)
            }
        }
    }
}

/// `redirect_uri` with `params` added to its query.
fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{}", q.finish())
}

fn error_redirect(redirect_uri: &str, state: Option<&str>, e: &OAuthError) -> String {
    let mut p = vec![
        ("error", e.code),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = state {
        p.push(("state", s));
    }
    with_query(redirect_uri, &p)
}

/// RFC 7636 4.1: 43 to 128 characters of the unreserved set.
fn valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

async fn check_authorize(st: &AppState, p: AuthorizeParams) -> Result<Authorize, AuthorizeError> {
    let no = |m: &str| AuthorizeError::NoRedirect(m.to_string());
    let client_id = p.client_id.ok_or_else(|| no("client_id is missing"))?;
    if client_id.len() > 256 {
        return Err(no("client_id is too long"));
    }
    let client = st
        .db(move |s| s.oauth_client_by_id(&client_id))
        .await
        .map_err(|_| no("the server could not check the client; try again"))?
        .ok_or_else(|| no("unknown client_id"))?;
    let redirect_uri = match p.redirect_uri {
        Some(u) if client.redirect_uris.contains(&u) => u,
        Some(_) => return Err(no("redirect_uri is not registered for this client")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(no("redirect_uri is missing")),
    };
    let refuse = |error: OAuthError| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: p.state.clone(),
        error,
    };
    if st.access.integration_suspended(client.integration) {
        // RFC 6749 4.1.2.1; the kill switch lets no new link start either.
        return Err(refuse(OAuthError::new(
            "temporarily_unavailable",
            "linking is suspended by the operator",
        )));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(refuse(OAuthError::invalid_request(
                "response_type is missing",
            )));
        }
        Some(_) => {
            return Err(refuse(OAuthError::new(
                "unsupported_response_type",
                "only response_type=code is supported",
            )));
        }
    }
    if p.state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(refuse(OAuthError::invalid_request("state is too long")));
    }
    let code_challenge = match (p.code_challenge, p.code_challenge_method.as_deref()) {
        (None, None) => None,
        (Some(c), Some("S256")) if valid_pkce_string(&c) => Some(c),
        (Some(_), Some("S256")) => {
            return Err(refuse(OAuthError::invalid_request(
                "code_challenge must be 43-128 unreserved characters",
            )));
        }
        (Some(_), None | Some("plain")) => {
            return Err(refuse(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            )));
        }
        _ => {
            return Err(refuse(OAuthError::invalid_request(
                "code_challenge and code_challenge_method go together (S256)",
            )));
        }
    };
    Ok(Authorize {
        client,
        redirect_uri,
        state: p.state,
        code_challenge,
    })
}

/// The authorization request's query (RFC 6749 4.1.1): no repeated parameter,
/// empty ones omitted, unknown ones ignored. Pure, so `fuzz/` drives it.
pub fn parse_query(raw: Option<&str>) -> Result<AuthorizeParams, String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut seen = std::collections::HashSet::new();
    if let Some((k, _)) = pairs.iter().find(|(k, _)| !seen.insert(k.clone())) {
        return Err(format!("parameter {k} is repeated"));
    }
    let mut p = AuthorizeParams::default();
    for (k, v) in pairs {
        if v.is_empty() {
            continue; // RFC 6749 3.1: a parameter without a value is omitted
        }
        let slot = match k.as_str() {
            "response_type" => &mut p.response_type,
            "client_id" => &mut p.client_id,
            "redirect_uri" => &mut p.redirect_uri,
            "state" => &mut p.state,
            "code_challenge" => &mut p.code_challenge,
            "code_challenge_method" => &mut p.code_challenge_method,
            "scope" => &mut p.scope,
            _ => continue, // RFC 6749 3.1: unknown parameters are ignored
        };
        *slot = Some(v);
    }
    Ok(p)
}

fn error_page(message: &str) -> Response {
    let escaped: String = message
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Hearth: \
         cannot link</title><link rel=\"stylesheet\" href=\"/app.css\"></head><body><main>\
         <h1>This link request cannot be completed</h1><p>{escaped}</p></main></body></html>"
    );
    let mut r = (StatusCode::BAD_REQUEST, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    no_store(r)
}

/// `GET /oauth/authorize`: checks the request, then serves the web app, which
/// signs the user in and asks for consent.
pub async fn authorize_page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let params = match parse_query(q.as_deref()) {
        Ok(p) => p,
        Err(m) => return error_page(&m),
    };
    match check_authorize(&st, params).await {
        Ok(_) => crate::web::web_index_response(),
        Err(AuthorizeError::NoRedirect(m)) => {
            tracing::info!(reason = %m, "authorization request refused");
            error_page(&m)
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            Redirect::to(&error_redirect(&redirect_uri, state.as_deref(), &error)).into_response()
        }
    }
}

#[derive(Serialize)]
pub struct ConsentCamera {
    id: CameraId,
    name: String,
    online: bool,
}

#[derive(Serialize)]
pub struct ConsentRequest {
    integration: Integration,
    display_name: &'static str,
    cameras: Vec<ConsentCamera>,
}

/// `GET /api/v1/oauth/request?<the authorization request>`: what the consent page
/// shows: who asks, and the cameras the user may share.
pub async fn consent_request(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    RawQuery(q): RawQuery,
) -> Result<Json<ConsentRequest>, AppError> {
    let params = parse_query(q.as_deref()).map_err(AppError::BadRequest)?;
    let a = check_authorize(&st, params)
        .await
        .map_err(|e| AppError::BadRequest(e.message()))?;
    let cams = st.db(move |s| s.cameras_visible_to(user)).await?;
    Ok(Json(ConsentRequest {
        integration: a.client.integration,
        display_name: display_name(a.client.integration),
        cameras: cams
            .into_iter()
            .map(|c| ConsentCamera {
                online: st.camera_online(c.id),
                id: c.id,
                name: c.name,
            })
            .collect(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentAnswer {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    cameras: Vec<CameraId>,
    approve: bool,
}

#[derive(Serialize)]
pub struct ConsentRedirect {
    redirect: String,
}

/// `POST /api/v1/oauth/authorize`: the user's answer. Approval issues a code for
/// the chosen cameras; either way the answer is where the browser goes next.
pub async fn consent(
    State(st): State<AppState>,
    session: AuthSession,
    body: Bytes,
) -> Result<Json<ConsentRedirect>, AppError> {
    let answer: ConsentAnswer = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let params = AuthorizeParams {
        response_type: Some("code".into()),
        client_id: answer.client_id,
        redirect_uri: answer.redirect_uri,
        state: answer.state,
        code_challenge: answer.code_challenge,
        code_challenge_method: answer.code_challenge_method,
        scope: answer.scope,
    };
    let a = match check_authorize(&st, params).await {
        Ok(a) => a,
        Err(AuthorizeError::NoRedirect(m)) => return Err(AppError::BadRequest(m)),
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            return Ok(Json(ConsentRedirect {
                redirect: error_redirect(&redirect_uri, state.as_deref(), &error),
            }));
        }
    };
    let user = session.user;
    let integration = a.client.integration;
    if !answer.approve {
        tracing::info!(user = ?user, integration = integration.as_str(), "account link declined");
        let e = OAuthError::new("access_denied", "the user declined");
        return Ok(Json(ConsentRedirect {
            redirect: error_redirect(&a.redirect_uri, a.state.as_deref(), &e),
        }));
    }
    let cameras = crate::integrations::links::chosen_cameras(&st, user, answer.cameras).await?;
    let code = RawToken::generate();
    let record = AuthCode {
        integration,
        client_id: a.client.client_id.clone(),
        user,
        cameras: cameras.clone(),
        redirect_uri: a.redirect_uri.clone(),
        code_challenge: a.code_challenge,
        expires_at: UnixMillis(hearth_access::clock::now().0 + CODE_TTL_MS),
    };
    let hash = code.hash();
    st.db(move |s| s.create_auth_code(hash, &record)).await?;
    tracing::info!(user = ?user, integration = integration.as_str(), cameras = cameras.len(), "account link authorized");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(user),
        integration: Some(integration.as_str().into()),
        ..hearth_access::audit::event(
            "integration_authorized",
            None,
            serde_json::json!({"cameras": cameras}),
        )
    });
    let mut p = vec![("code", code.expose())];
    if let Some(s) = a.state.as_deref() {
        p.push(("state", s));
    }
    Ok(Json(ConsentRedirect {
        redirect: with_query(&a.redirect_uri, &p),
    }))
}

// --- the token and revocation endpoints ---

/// A form body (application/x-www-form-urlencoded) with no repeated parameter.
pub fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut form = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if form.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k} is repeated"
            )));
        }
    }
    Ok(form)
}

/// The client id and the secrets to try from an HTTP Basic credential (the part
/// after `Basic `): RFC 6749 2.3.1 form-encodes both before Basic; many clients
/// do not, so the form-decoded secret is tried, and the raw one (a secret with
/// `+` or `%` in it would otherwise never match). Pure, so `fuzz/` drives it.
pub fn basic_credentials(b: &str) -> Option<(String, Vec<String>)> {
    let decoded = STANDARD
        .decode(b.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())?;
    let (id, secret) = decoded.split_once(':')?;
    let dec = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), vec![dec(secret), secret.to_string()]))
}

/// [`authenticate_client`] under the rate limit of the client secret check
/// (per address, and per client id and address); failures are audited in bursts.
async fn checked_client(
    st: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<OAuthClient, TokenError> {
    let claimed = form.get("client_id").map_or("", String::as_str);
    let now = hearth_access::clock::now();
    if let Err(wait) = st.limits.attempt(SecretKind::OAuthToken, ip, claimed) {
        st.failures.record(SecretKind::OAuthToken, claimed, ip, now);
        return Err(AppError::from(wait).into());
    }
    let client = authenticate_client(st, headers, form).await;
    if matches!(&client, Err(TokenError::OAuth(e)) if e.code == "invalid_client") {
        st.failures.record(SecretKind::OAuthToken, claimed, ip, now);
    }
    client
}

/// RFC 6749 2.3.1: HTTP Basic (form-urlencoded id and secret) or the body's
/// `client_id` and `client_secret`, not both.
async fn authenticate_client(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<OAuthClient, TokenError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme name is case-insensitive (RFC 7235 2.1).
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest)
        });
    let (id, secrets) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            )
            .into());
        }
        (Some(b), None) => basic_credentials(b).ok_or_else(OAuthError::invalid_client)?,
        (None, Some(secret)) => (
            form.get("client_id")
                .cloned()
                .ok_or_else(OAuthError::invalid_client)?,
            vec![secret.clone()],
        ),
        (None, None) => return Err(OAuthError::invalid_client().into()),
    };
    if id.len() > 256 || secrets.iter().any(|s| s.len() > 1024) {
        return Err(OAuthError::invalid_client().into());
    }
    let client = st.db(move |s| s.oauth_client_by_id(&id)).await?;
    // Hash and compare even for an unknown client, so timing does not tell.
    let stored = client
        .as_ref()
        .map_or([0u8; 32], |c| *c.secret_hash.as_bytes());
    let equal = secrets.iter().fold(subtle::Choice::from(0), |any, s| {
        any | subtle::ConstantTimeEq::ct_eq(&secret_hash(s).as_bytes()[..], &stored[..])
    });
    let equal: bool = equal.into();
    match client {
        Some(c) if equal => {
            if form.get("client_id").is_some_and(|f| *f != c.client_id) {
                return Err(OAuthError::invalid_client().into());
            }
            Ok(c)
        }
        _ => Err(OAuthError::invalid_client().into()),
    }
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

fn new_tokens() -> (RawToken, RawToken, TokenPair) {
    let (access, refresh) = (RawToken::generate(), RawToken::generate());
    let now = hearth_access::clock::now();
    let pair = TokenPair {
        access: access.hash(),
        access_expires: UnixMillis(now.0 + ACCESS_TTL_MS),
        refresh: refresh.hash(),
        refresh_expires: UnixMillis(now.0 + REFRESH_TTL_MS),
    };
    (access, refresh, pair)
}

fn token_response(access: RawToken, refresh: RawToken) -> Response {
    no_store(
        Json(TokenResponse {
            access_token: access.expose().to_string(),
            token_type: "Bearer",
            expires_in: ACCESS_TTL_MS / 1000,
            refresh_token: refresh.expose().to_string(),
        })
        .into_response(),
    )
}

fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
}

/// `POST /oauth/token`.
pub async fn token(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    let form = parse_form(&body)?;
    let client = checked_client(&st, ip, &headers, &form).await?;
    match required(&form, "grant_type")? {
        "authorization_code" => exchange_code(&st, &client, &form).await,
        "refresh_token" => refresh(&st, &client, &form).await,
        other => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type {other} is not supported"),
        )
        .into()),
    }
}

fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

async fn exchange_code(
    st: &AppState,
    client: &OAuthClient,
    form: &HashMap<String, String>,
) -> Result<Response, TokenError> {
    let code = RawToken::from_client(required(form, "code")?);
    // RFC 6749 4.1.3: required if the authorization request had it. Hearth lets it
    // be left out there only when the client has a single redirect URI.
    let redirect_uri = match form.get("redirect_uri").filter(|u| !u.is_empty()) {
        Some(u) => u.clone(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(OAuthError::invalid_request("redirect_uri is missing").into()),
    };
    let verifier = form.get("code_verifier").cloned();
    if verifier.as_deref().is_some_and(|v| !valid_pkce_string(v)) {
        return Err(OAuthError::invalid_request("code_verifier is malformed").into());
    }
    let hash = code.hash();
    let now = hearth_access::clock::now();
    let found = match st.db(move |s| s.redeem_auth_code(hash, now)).await? {
        Redeemed::Fresh(c) => c,
        Redeemed::Replayed => {
            st.refresh_access().await?;
            tracing::warn!(
                integration = client.integration.as_str(),
                "authorization code replayed; its link is revoked"
            );
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; the link it created is revoked",
            )
            .into());
        }
        Redeemed::Invalid => {
            return Err(OAuthError::invalid_grant("unknown or expired authorization code").into());
        }
    };
    if found.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client").into());
    }
    if found.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )
        .into());
    }
    match (&found.code_challenge, &verifier) {
        (Some(ch), Some(v)) if pkce_matches(ch, v) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant("code_verifier does not match").into());
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing").into()),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no challenge",
            )
            .into());
        }
        (None, None) => {}
    }
    let link = Link {
        id: LinkId::random(),
        integration: client.integration,
        user: found.user,
        cameras: found.cameras,
        created_at: now,
    };
    let (access, refresh, pair) = new_tokens();
    let (l, code_hash) = (link.clone(), hash);
    match st.db(move |s| s.create_link(code_hash, &l, &pair)).await {
        Ok(()) => {}
        // The code was replayed meanwhile, or a consented camera or the user is gone.
        Err(AppError::Conflict(_) | AppError::NotFound | AppError::BadRequest(_)) => {
            return Err(
                OAuthError::invalid_grant("the authorization code can no longer be used").into(),
            );
        }
        Err(e) => return Err(e.into()),
    }
    st.refresh_access().await?;
    tracing::info!(user = ?link.user, integration = link.integration.as_str(), link = ?link.id, "account linked");
    st.audit.record(hearth_store::AuditEvent {
        user: Some(link.user),
        integration: Some(link.integration.as_str().into()),
        ..hearth_access::audit::event(
            "integration_linked",
            None,
            serde_json::json!({"link": link.id, "cameras": link.cameras}),
        )
    });
    Ok(token_response(access, refresh))
}

async fn refresh(
    st: &AppState,
    client: &OAuthClient,
    form: &HashMap<String, String>,
) -> Result<Response, TokenError> {
    let presented = RawToken::from_client(required(form, "refresh_token")?).hash();
    let (access, refresh, pair) = new_tokens();
    let now = hearth_access::clock::now();
    match st
        .db(move |s| s.rotate_refresh_token(presented, &pair, now))
        .await?
    {
        Redeemed::Fresh(link) if link.integration == client.integration => {
            Ok(token_response(access, refresh))
        }
        Redeemed::Fresh(link) => {
            // Another client's token: it leaked. Revoke what it opens.
            crate::integrations::links::unlink(
                st,
                &link,
                "refresh token presented by another client",
            )
            .await?;
            Err(OAuthError::invalid_grant("unknown refresh token").into())
        }
        Redeemed::Replayed => {
            st.refresh_access().await?;
            tracing::warn!(
                integration = client.integration.as_str(),
                "rotated refresh token replayed; its link is revoked"
            );
            Err(OAuthError::invalid_grant(
                "the refresh token was already used; the link is revoked",
            )
            .into())
        }
        Redeemed::Invalid => {
            Err(OAuthError::invalid_grant("unknown or expired refresh token").into())
        }
    }
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known. A
/// token issued to the other platform's client is refused (`unauthorized_client`,
/// 2.1), and its link is revoked: that client should never have seen it.
pub async fn revoke(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    let form = parse_form(&body)?;
    let client = checked_client(&st, ip, &headers, &form).await?;
    let hash = RawToken::from_client(required(&form, "token")?).hash();
    let integration = client.integration;
    match st
        .db(move |s| s.revoke_oauth_token(hash, integration))
        .await?
    {
        Revocation::Unknown => {}
        Revocation::Revoked(link) => {
            st.refresh_access().await?;
            tracing::info!(link = ?link.id, integration = integration.as_str(), "oauth token revoked");
            st.audit.record(hearth_store::AuditEvent {
                user: Some(link.user),
                integration: Some(integration.as_str().into()),
                ..hearth_access::audit::event(
                    "oauth_token_revoked",
                    None,
                    serde_json::json!({"link": link.id}),
                )
            });
        }
        Revocation::OtherClient(link) => {
            crate::integrations::links::unlink(
                &st,
                &link,
                "token presented by another client to revoke",
            )
            .await?;
            return Err(OAuthError::new(
                "unauthorized_client",
                "the token was not issued to this client",
            )
            .into());
        }
    }
    Ok(no_store(StatusCode::OK.into_response()))
}
