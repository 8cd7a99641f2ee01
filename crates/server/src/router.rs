//! The whole HTTP surface in one router: the API and web app (`api`), the media
//! door (`door`) and the smart-display endpoints (`integrations`).
//!
//! `app(state)` builds it so tests can drive it without a socket.

use crate::error::AppError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// API request bodies are tiny; anything bigger is refused before it is read.
const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn app(state: AppState) -> Router {
    // Answers of the API and of the OAuth provider (tokens, grant URLs, camera
    // lists, access logs) are one user's: no cache may keep them. Media sets
    // its own policy in the door; the web app's files theirs.
    let private = Router::new()
        .merge(crate::api::routes())
        .merge(crate::integrations::routes())
        .layer(axum::middleware::map_response(no_store));
    Router::new()
        .merge(private)
        .merge(crate::door::routes())
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `Cache-Control: no-store` unless the handler chose a policy itself.
async fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}
