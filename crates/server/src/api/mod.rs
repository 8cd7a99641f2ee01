//! The HTTP API (JSON) and the operator's admin API (on a listener of its own).
//!
//! Request bodies are small JSON documents and are capped; every error is JSON and
//! comes from [`AppError`]. Media is not served here but by the door (`crate::door`),
//! smart-display endpoints by `crate::integrations`; `crate::router` puts them
//! together.

pub mod account;
pub mod admin;
pub mod agents;
pub mod cameras;
pub mod onboarding;
pub mod ops;
pub mod viewer_keys;

use crate::error::AppError;
use serde::Deserialize;

crate::routes::route_table! { routes, ROUTES;
    get "/" => crate::web::web_index, "The web app", "none";
    get "/app.js" => crate::web::web_app_js, "The web app's script", "none";
    get "/player.js" => crate::web::web_player_js, "The web player (HLS)", "none";
    get "/webrtc.js" => crate::web::web_webrtc_js, "The web player (WebRTC)", "none";
    get "/stills.js" => crate::web::web_stills_js, "The web player's still fallback for poor links", "none";
    get "/provenance.js" => crate::web::web_provenance_js, "The players' provenance checks", "none";
    get "/frame-check.js" => crate::web::web_frame_check_js, "The WebRTC player's frame-check worker", "none";
    get "/link.js" => crate::web::web_link_js, "The account-linking page's script", "none";
    get "/sharing.js" => crate::web::web_sharing_js, "The web app's sharing and access-log views", "none";
    get "/cameras.js" => crate::web::web_cameras_js, "The web app's add-a-camera view", "none";
    get "/keys.js" => crate::web::web_keys_js, "The web app's viewer keys panel", "none";
    get "/agents.js" => crate::web::web_agents_js, "The web app's home agents panel", "none";
    get "/account.js" => crate::web::web_account_js, "The web app's account view", "none";
    get "/app.css" => crate::web::web_css, "The web app's style sheet", "none";
    post "/api/v1/login" => account::login, "Sign in: {email, password} -> {token, expires_at}", "none";
    post "/api/v1/logout" => account::logout, "Sign out: the session and its grants end", "session";
    get "/api/v1/sessions" => account::list_sessions, "The caller's signed-in sessions: [{id, created_at, expires_at, address, client, current}]", "session";
    delete "/api/v1/sessions/{id}" => account::end_session, "End one of the caller's sessions: its token and its grants stop working", "session";
    post "/api/v1/password" => account::change_password, "Change the password: {current_password, new_password}; every other session ends", "session";
    get "/api/v1/cameras" => cameras::list_cameras, "The cameras the caller may view, with each one's status", "session";
    post "/api/v1/cameras" => onboarding::add_camera, "Add a camera: {name, rtsp_url, rtsp_username, rtsp_password[, agent][, test]} pulled (through a home agent; on trial until saved), or {name} pushing (the answer's ingest_url is shown once)", "session";
    patch "/api/v1/cameras/{id}" => onboarding::change_camera, "Change a camera (owners): {name}, a new RTSP source {rtsp_url, ...[, agent]}, {push: true}, {rotate_key: true} (the answer's ingest_url is shown once) or {save: true} (keep a camera on trial)", "session";
    delete "/api/v1/cameras/{id}" => onboarding::delete_camera, "Delete a camera (owners): ingest stops, every grant ends, the audit stays", "session";
    post "/api/v1/cameras/{id}/streams" => cameras::create_stream, "A stream grant: HLS, TS and snapshot URLs", "session";
    post "/api/v1/cameras/{id}/reports" => cameras::client_report, "A player reports media it refused", "session";
    post "/api/v1/cameras/{id}/shares" => cameras::share, "Invite an email to view the camera (owners)", "session";
    get "/api/v1/cameras/{id}/shares" => cameras::list_shares, "Accepted and pending shares (owners)", "session";
    delete "/api/v1/cameras/{id}/shares/{user}" => cameras::unshare, "Revoke a share (owners)", "session";
    delete "/api/v1/cameras/{id}/invitations/{email}" => cameras::withdraw_invitation, "Withdraw a pending invitation (owners)", "session";
    get "/api/v1/cameras/{id}/access-log" => cameras::access_log, "Who watched the camera, a page at a time (owners)", "session";
    post "/api/v1/viewer-keys" => viewer_keys::create, "A viewer key for players that cannot send headers: {name, cameras} -> its secret and RTSP/HLS URLs, shown once", "session";
    get "/api/v1/viewer-keys" => viewer_keys::list, "The caller's viewer keys (never their secrets)", "session";
    delete "/api/v1/viewer-keys/{id}" => viewer_keys::revoke, "Revoke a viewer key: its streams end within a second", "session";
    post "/api/v1/agents/claims" => agents::create_claim, "A one-time code (10 minutes) to pair a home agent with the caller's household: `hearth agent pair --server URL --code CODE`", "session";
    post "/api/v1/agents/pair" => agents::pair, "A home agent trades a claim code for its credential: {code, name} -> {agent, credential} (shown once)", "none";
    get "/api/v1/agents" => agents::list, "The household's home agents, with when each last synced and its cameras", "session";
    delete "/api/v1/agents/{id}" => agents::remove, "Remove a home agent: its credential stops working, its cameras' publishers are cut off", "session";
    post "/api/v1/agent/sync" => agents::sync, "A home agent's report (camera states) in, the cameras it pulls and the RTMPS ingest URL out", "agent";
    get "/api/v1/invitations" => cameras::my_invitations, "Invitations made out to the caller", "session";
    post "/api/v1/invitations/{camera}/accept" => cameras::accept_invitation, "Accept an invitation", "session";
    delete "/api/v1/invitations/{camera}" => cameras::decline_invitation, "Decline an invitation", "session";
    get "/healthz" => ops::healthz, "The process answers", "none";
    get "/readyz" => ops::readyz, "Ready to serve: access decisions loaded, database answering", "none";
}

crate::routes::route_table! { admin_routes, ADMIN_ROUTES;
    post "/api/v1/admin/suspensions" => admin::suspend, "Turn a kill switch on", "operator";
    get "/api/v1/admin/suspensions" => admin::list, "The kill switches that are on", "operator";
    delete "/api/v1/admin/suspensions/{kind}/{target}" => admin::resume, "Turn a kill switch off", "operator";
    get "/metrics" => ops::metrics, "Prometheus metrics", "operator";
    get "/healthz" => ops::healthz, "The process answers", "none";
    get "/readyz" => ops::readyz, "Ready to serve", "none";
}

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}
