//! The whole HTTP surface in one router: the API and web app (`api`), the media
//! door (`door`) and the smart-display endpoints (`integrations`).
//!
//! `app(state)` builds it so tests can drive it without a socket.

use crate::error::AppError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;

/// API request bodies are tiny; anything bigger is refused before it is read.
const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(crate::api::routes())
        .merge(crate::integrations::routes())
        .merge(crate::door::routes())
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
