//! HTTP authentication: the Bearer session token as an extractor, and new sessions.
//!
//! Session tokens are random 256-bit values handed out once; only their SHA-256
//! is stored, and lookups compare hashes. (Passwords: `hearth_access::password`.)

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hearth_access::grant::Holder;
use hearth_model::{RawToken, SessionId, TokenHash, UnixMillis, UserId};

/// Login sessions last this long.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// The token a request carries in `Authorization: Bearer`, unchecked. The scheme
/// name is case-insensitive (RFC 7235 2.1).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = headers.get(AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

/// A request authenticated by a Bearer session token.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        AuthSession::from_request_parts(parts, state)
            .await
            .map(|s| AuthUser(s.user))
    }
}

/// A request authenticated by a Bearer session token, with the [`Holder`] of that
/// session: what a grant issued to this request is bound to.
#[derive(Clone, Copy, Debug)]
pub struct AuthSession {
    pub user: UserId,
    pub holder: Holder,
    /// The stored form of the session's token.
    pub token: TokenHash,
    /// The session's public name (its entry in the user's list of sessions).
    pub id: SessionId,
}

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers).ok_or(AppError::Unauthorized)?;
        let holder = Holder::of_session(token);
        let hash = RawToken::from_client(token).hash();
        let now = hearth_access::clock::now();
        let session = state.db(move |s| s.session_by_token(hash, now)).await?;
        let session = session.ok_or(AppError::Unauthorized)?;
        Ok(AuthSession {
            user: session.user,
            holder,
            token: hash,
            id: session.id,
        })
    }
}

/// Creates a session for `user`, signed in from `address` with `client` (its
/// User-Agent, if it sent one), returning the raw token (shown once) and its expiry.
pub async fn new_session(
    state: &AppState,
    user: UserId,
    address: std::net::IpAddr,
    client: Option<String>,
) -> Result<(RawToken, UnixMillis), AppError> {
    let token = RawToken::generate();
    let now = hearth_access::clock::now();
    let expires = UnixMillis(now.0 + SESSION_TTL_MS);
    let session = hearth_store::NewSession {
        user,
        token_hash: token.hash(),
        holder: Holder::of_session(token.expose()).to_bytes(),
        created_at: now,
        expires_at: expires,
        // No address where the request had none (tests calling the router).
        address: (!address.is_unspecified()).then(|| address.to_string()),
        client,
    };
    state.db(move |s| s.create_session(&session)).await?;
    Ok((token, expires))
}

/// The request's `User-Agent`, if it is printable text (what a user's list of
/// sessions shows to tell them apart).
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers
        .get(axum::http::header::USER_AGENT)?
        .to_str()
        .ok()?
        .trim();
    (!ua.is_empty()).then(|| ua.to_string())
}

/// The address of the client that sent the request: the peer, or for a request
/// through a trusted reverse proxy the client it forwards for (see
/// [`client_addr`]). The HTTP driver puts it in the request's extensions; the
/// unspecified address where there is none, as in tests that call the router
/// directly.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(std::net::Ipv4Addr::UNSPECIFIED.into())))
    }
}

/// The client behind a request from `peer`: `peer` itself unless it is a trusted
/// proxy, else the nearest address in `X-Forwarded-For` (read right to left, each
/// hop appending the address it heard from) that is not a trusted proxy. A
/// malformed header counts as none: the limits then key on the proxy, which is
/// strict, never lax.
pub fn client_addr(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for hop in text.split(',') {
            match hop.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => hops.push(ip),
                Err(_) => return peer,
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::client_addr;
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        // Not a trusted peer: the header is the client's word, ignored.
        assert_eq!(
            client_addr(ip("198.51.100.9"), &xff(&["203.0.113.5"]), &trusted),
            ip("198.51.100.9")
        );
        // Through the proxy: the client it heard from.
        assert_eq!(
            client_addr(proxy, &xff(&["203.0.113.5"]), &trusted),
            ip("203.0.113.5")
        );
        // A client's forged first hop is not believed: the nearest untrusted one is.
        assert_eq!(
            client_addr(proxy, &xff(&["1.2.3.4, 203.0.113.5, 10.0.0.2"]), &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_addr(proxy, &xff(&["1.2.3.4", "203.0.113.5"]), &trusted),
            ip("203.0.113.5")
        );
        // No header, or a malformed one: the proxy itself.
        assert_eq!(client_addr(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(
            client_addr(proxy, &xff(&["not an address"]), &trusted),
            proxy
        );
        assert_eq!(client_addr(proxy, &xff(&["10.0.0.2"]), &trusted), proxy);
    }
}
