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

crate::routes::route_table! { routes, ROUTES;
    get "/oauth/authorize" => oauth::authorize_page, "OAuth 2.0 authorization (the consent page)", "none";
    post "/oauth/token" => oauth::token, "OAuth 2.0 token endpoint (code and refresh grants)", "oauth_client";
    post "/oauth/revoke" => oauth::revoke, "OAuth 2.0 token revocation (RFC 7009)", "oauth_client";
    get "/api/v1/oauth/request" => oauth::consent_request, "The authorization request the consent page shows", "session";
    post "/api/v1/oauth/authorize" => oauth::consent, "The user's consent: the cameras to link", "session";
    get "/api/v1/integrations" => links::list, "The caller's smart-display links", "session";
    delete "/api/v1/integrations/{integration}" => links::delete, "Unlink a smart-display platform", "session";
    put "/api/v1/integrations/{integration}/cameras" => links::set_cameras, "The cameras a link shows", "session";
    post "/integrations/google/fulfillment" => google::fulfillment, "Google Home: SYNC, QUERY, EXECUTE, DISCONNECT", "link";
    post "/integrations/google/signaling" => google::signaling, "Google Home WebRTC signaling: {action: offer|end, sdp} under a GetCameraStream grant", "grant";
    options "/integrations/google/signaling" => google::signaling_preflight, "CORS preflight of Google's WebRTC player", "none";
    post "/integrations/alexa/directives" => alexa::directive, "Alexa directives (through the forwarding Lambda)", "link";
}
