//! The whole HTTP surface in one router: the API and web app (`api`), the media
//! door (`door`) and the smart-display endpoints (`integrations`).
//!
//! `app(state)` builds it; [`HttpApp::serve`] answers a request, sending media
//! GETs straight to the door's handlers ahead of the router (see
//! [`crate::door::get`]).

use crate::error::AppError;
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// API request bodies are tiny; anything bigger is refused before it is read.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request body must arrive within this time (a body sent a byte at a time
/// must not hold a connection).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What one HTTP listener serves: its router and, on the public listener, the
/// door's media GETs ahead of it.
pub struct HttpApp {
    router: Router,
    media: Option<AppState>,
}

impl HttpApp {
    /// Answers one request from `peer` (the client address comes from
    /// `X-Forwarded-For` only when `peer` is one of `proxies`).
    pub async fn serve(
        &self,
        mut req: axum::http::Request<hyper::body::Incoming>,
        peer: std::net::IpAddr,
        proxies: &[std::net::IpAddr],
    ) -> Response {
        if let Some(state) = &self.media
            && req.method() == axum::http::Method::GET
            && axum::body::HttpBody::is_end_stream(req.body())
            && let Some((token, way)) = crate::door::way(req.uri().path())
        {
            return crate::door::get(state, token, way, req.uri().query(), req.headers()).await;
        }
        let addr = crate::auth::client_addr(peer, req.headers(), proxies);
        req.extensions_mut().insert(crate::auth::ClientAddr(addr));
        match tower::ServiceExt::oneshot(self.router.clone(), req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

pub fn app(state: AppState, webrtc: std::sync::Arc<crate::door::webrtc::WebRtc>) -> HttpApp {
    HttpApp {
        router: public_router(state.clone()).layer(axum::Extension(webrtc)),
        media: Some(state),
    }
}

fn public_router(state: AppState) -> Router {
    // Answers of the API and of the OAuth provider (tokens, grant URLs, camera
    // lists, access logs) are one user's: no cache may keep them. Media sets
    // its own policy in the door; the web app's files theirs.
    let private = Router::new()
        .merge(crate::api::routes())
        .merge(crate::integrations::routes())
        .merge(crate::openapi::routes())
        .layer(axum::middleware::map_response(no_store));
    Router::new()
        .merge(private)
        .merge(crate::door::routes())
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn(read_body_in_time))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Reads the whole request body within [`BODY_READ_TIMEOUT`] and at most
/// [`MAX_BODY_BYTES`] before the handler runs: 408 or 413 otherwise, and the
/// connection closes.
async fn read_body_in_time(req: Request, next: Next) -> Response {
    // Most requests (every media GET) have no body: nothing to wait for.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let refuse = |status: StatusCode, why: &str| {
        tracing::info!(%status, why, "request body refused");
        let mut r = (status, Json(serde_json::json!({ "error": why }))).into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time",
        ),
    }
}

/// The admin API, for its own listener.
pub fn admin_app(state: AppState) -> HttpApp {
    let router = Router::new()
        .merge(crate::api::admin_routes())
        .layer(axum::middleware::map_response(no_store))
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn(read_body_in_time))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    HttpApp {
        router,
        media: None,
    }
}

/// `Cache-Control: no-store` unless the handler chose a policy itself.
async fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}
