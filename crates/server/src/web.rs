//! The embedded web app: static files with a strict content security policy.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn static_file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn web_index() -> Response {
    web_index_response()
}

/// The web app's page (also the OAuth authorization page).
pub fn web_index_response() -> Response {
    static_file(
        include_str!("../../../web/index.html"),
        "text/html; charset=utf-8",
    )
}
pub async fn web_app_js() -> Response {
    static_file(
        include_str!("../../../web/app.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_link_js() -> Response {
    static_file(
        include_str!("../../../web/link.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_sharing_js() -> Response {
    static_file(
        include_str!("../../../web/sharing.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_cameras_js() -> Response {
    static_file(
        include_str!("../../../web/cameras.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_keys_js() -> Response {
    static_file(
        include_str!("../../../web/keys.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_agents_js() -> Response {
    static_file(
        include_str!("../../../web/agents.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_account_js() -> Response {
    static_file(
        include_str!("../../../web/account.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_player_js() -> Response {
    static_file(
        include_str!("../../../web/player.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_webrtc_js() -> Response {
    static_file(
        include_str!("../../../web/webrtc.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_stills_js() -> Response {
    static_file(
        include_str!("../../../web/stills.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_provenance_js() -> Response {
    static_file(
        include_str!("../../../web/provenance.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_frame_check_js() -> Response {
    static_file(
        include_str!("../../../web/frame-check.js"),
        "text/javascript; charset=utf-8",
    )
}
pub async fn web_css() -> Response {
    static_file(
        include_str!("../../../web/app.css"),
        "text/css; charset=utf-8",
    )
}
