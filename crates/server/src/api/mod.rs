//! The HTTP API (JSON) and the operator's admin API (on a listener of its own).
//!
//! Request bodies are small JSON documents and are capped; every error is JSON and
//! comes from [`AppError`]. Media is not served here but by the door (`crate::door`),
//! smart-display endpoints by `crate::integrations`; `crate::router` puts them
//! together.

pub mod account;
pub mod admin;
pub mod cameras;
pub mod ops;

use crate::error::AppError;
use crate::state::AppState;
use axum::Router;
use axum::routing::{delete, get, patch, post};
use serde::Deserialize;

/// The routes of the JSON API and the web app's files.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(crate::web::web_index))
        .route("/app.js", get(crate::web::web_app_js))
        .route("/player.js", get(crate::web::web_player_js))
        .route("/link.js", get(crate::web::web_link_js))
        .route("/app.css", get(crate::web::web_css))
        .route("/api/v1/login", post(account::login))
        .route("/api/v1/logout", post(account::logout))
        .route("/api/v1/cameras", get(cameras::list_cameras))
        .route("/api/v1/cameras/{id}", patch(cameras::rename_camera))
        .route("/api/v1/cameras/{id}/streams", post(cameras::create_stream))
        .route("/api/v1/cameras/{id}/reports", post(cameras::client_report))
        .route(
            "/api/v1/cameras/{id}/shares",
            post(cameras::share).get(cameras::list_shares),
        )
        .route(
            "/api/v1/cameras/{id}/shares/{user}",
            delete(cameras::unshare),
        )
        .route(
            "/api/v1/cameras/{id}/invitations/{email}",
            delete(cameras::withdraw_invitation),
        )
        .route("/api/v1/invitations", get(cameras::my_invitations))
        .route(
            "/api/v1/invitations/{camera}/accept",
            post(cameras::accept_invitation),
        )
        .route(
            "/api/v1/invitations/{camera}",
            delete(cameras::decline_invitation),
        )
        .route("/api/v1/cameras/{id}/access-log", get(cameras::access_log))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
}

/// The operator's admin API: served on its own listener (loopback by default),
/// never on the public port.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/admin/suspensions",
            post(admin::suspend).get(admin::list),
        )
        .route(
            "/api/v1/admin/suspensions/{kind}/{target}",
            delete(admin::resume),
        )
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
}

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}
