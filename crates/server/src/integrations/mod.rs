//! Smart displays: Hearth as an OAuth 2.0 provider, the account links it grants,
//! and the platforms that use them.
//!
//! - [`oauth`]: authorization (consent page), token and revocation endpoints;
//! - [`links`]: account links, the cameras they show, and the grants they hold;
//! - [`google`]: Google Home fulfillment (SYNC, QUERY, EXECUTE, DISCONNECT);
//! - [`homegraph`]: reporting changes to Google's HomeGraph;
//! - [`alexa`]: Alexa directives (Discovery, InitializeCameraStreams, ...).
//!
//! Streams for displays are grants like any other and leave through the door.

pub mod alexa;
pub mod google;
pub mod homegraph;
pub mod links;
pub mod oauth;

use crate::state::AppState;
use axum::Router;
use axum::routing::{delete, get, post, put};

/// The OAuth provider's endpoints, the web app's link endpoints and the
/// platforms' fulfillment endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(oauth::authorize_page))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/api/v1/oauth/request", get(oauth::consent_request))
        .route("/api/v1/oauth/authorize", post(oauth::consent))
        .route("/api/v1/integrations", get(links::list))
        .route("/api/v1/integrations/{integration}", delete(links::delete))
        .route(
            "/api/v1/integrations/{integration}/cameras",
            put(links::set_cameras),
        )
        .route(
            "/integrations/google/fulfillment",
            post(google::fulfillment),
        )
        .route("/integrations/alexa/directives", post(alexa::directive))
}
