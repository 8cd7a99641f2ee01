//! The ways out. Every driver here writes media only through the egress guard of
//! `hearth-access` ([`hearth_access::EgressGuard`]), which exists only for a
//! verified, presented, still-valid grant and checks each object's or frame's
//! provenance before letting it out:
//!
//! - [`hls`]: playlists, init segments, segments and keys over HTTP;
//! - [`snapshot`]: the newest still as a JPEG;
//! - [`rtsp`]: RTSP for smart displays (Alexa), frame by frame;
//! - [`webrtc`]: WebRTC over WHEP, frame by frame;
//! - [`relay`]: node to node in a cluster, frame by frame: a camera's frames
//!   to a node whose viewers asked for it, each through the relay door.
//!
//! This module turns what the guard lets out (a [`Delivery`]) into an HTTP
//! response, and a refusal into the server's error; [`MediaResponse`] — the only
//! response type media handlers may return — can only be made from a `Delivery`.
//!
//! A media GET reaches the handlers one of two ways with the same result: straight
//! from the connection ([`way`] + [`get`], no router: most requests a server sees
//! are players polling playlists) or through the router's [`routes`] (HEAD, a GET
//! with a body). `tests/media_routes.rs` holds them to the same answers.

mod frames;
pub mod hls;
pub mod relay;
pub mod restream;
pub mod rtsp;
pub mod snapshot;
pub mod webrtc;

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_access::{Delivery, EgressGuard, Grant, MediaObject, Refusal};
use hearth_model::Provenance;

crate::routes::route_table! { routes, ROUTES;
    get "/media/{grant}/index.m3u8" => hls::master_playlist, "HLS master playlist (fMP4)", "grant";
    get "/media/{grant}/live.m3u8" => hls::fmp4_playlist, "HLS media playlist, main rendition: fMP4 segments and LL-HLS parts (blocking reload with _HLS_msn/_HLS_part)", "grant";
    get "/media/{grant}/sub.m3u8" => hls::sub_playlist, "HLS media playlist, sub rendition: fMP4 segments and LL-HLS parts (blocking reload with _HLS_msn/_HLS_part)", "grant";
    get "/media/{grant}/ts-index.m3u8" => hls::ts_master_playlist, "HLS master playlist (MPEG-TS: Cast receivers, Alexa)", "grant";
    get "/media/{grant}/ts.m3u8" => hls::ts_playlist, "HLS media playlist, main rendition: MPEG-TS segments", "grant";
    get "/media/{grant}/sub-ts.m3u8" => hls::sub_ts_playlist, "HLS media playlist, sub rendition: MPEG-TS segments", "grant";
    get "/media/{grant}/snapshot.jpg" => snapshot::snapshot, "The newest still (JPEG)", "grant";
    get "/media/{grant}/sub-snapshot.jpg" => snapshot::sub_snapshot, "The newest still of the sub rendition (a small JPEG)", "grant";
    get "/media/{grant}/{object}" => hls::media_object, "An init segment, segment, LL-HLS part or key (a request for the hinted part waits for it)", "grant";
    post "/media/{grant}/whep" => webrtc::offer, "WHEP: an SDP offer in; 201 with the SDP answer and the session's Location", "grant";
    patch "/media/{grant}/whep/{session}" => webrtc::trickle, "WHEP: a trickle-ICE fragment (accepted; Hearth is ICE-lite)", "grant";
    delete "/media/{grant}/whep/{session}" => webrtc::end, "WHEP: end the WebRTC session", "grant";
    get "/internal/v1/relay/{camera}/{rendition}" => crate::door::relay::serve, "Node to node: a camera's frames, for a node whose viewers asked for it (see door::relay)", "relay token";
    get "/restream/{key}/{secret}/{camera}/{playlist}" => restream::hls, "A viewer key's HLS URL: 302 to the playlist under a short-lived grant that needs no header", "viewer key";
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Forbidden => AppError::Forbidden,
            Refusal::NotHolder => AppError::NotHolder,
            Refusal::IsolationViolation => AppError::IsolationViolation,
        }
    }
}

/// A response carrying media. Only made from a [`Delivery`] of the guard.
pub struct MediaResponse(Response);

impl MediaResponse {
    fn of(d: Delivery) -> Self {
        let (content_type, cache) = (d.content_type(), d.cache_control());
        let mut resp = (StatusCode::OK, d.into_body()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // Cast receivers and smart displays fetch playlists, keys and segments from
        // their own origin. Opening CORS to any origin lends nothing: the grant is
        // in the URL, and a session-held grant needs a header no other origin can
        // send without a preflight, which is not answered.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        Self(resp)
    }
}

impl IntoResponse for MediaResponse {
    fn into_response(self) -> Response {
        self.0
    }
}

/// The guard of one HTTP media request.
pub struct HttpGuard(EgressGuard);

impl HttpGuard {
    pub fn grant(&self) -> &Grant {
        self.0.grant()
    }

    /// Writes `obj` if and only if the guard lets it out.
    pub fn write(&self, obj: &MediaObject) -> Result<MediaResponse, AppError> {
        Ok(MediaResponse::of(self.0.write(obj)?))
    }

    /// Records a frame the still cache refused and ends the viewer's session.
    pub fn refuse_frame(&self, found: Option<Provenance>) -> AppError {
        self.0.refuse_frame(found).into()
    }
}

/// Extracts the `{grant}` path segment, verifies it, and yields the door.
pub struct Egress(pub HttpGuard);

/// The grant token and the rest of a `/media/{grant}/{object}` path, read from
/// the path as it came (grant tokens and object names are URL-safe: nothing to
/// decode, and a percent sign in either simply matches nothing).
pub(super) fn media_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/media/")?.split_once('/')
}

impl FromRequestParts<AppState> for Egress {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let (token, _) = media_path(parts.uri.path()).ok_or(AppError::NotFound)?;
        open(state, token, crate::auth::bearer(&parts.headers)).map(|g| Egress(HttpGuard(g)))
    }
}

/// One way out of the door's HTTP routes, read from a request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way<'a> {
    Playlist(hls::PlaylistKind),
    Snapshot(hearth_model::Rendition),
    /// An init segment, segment or key, by name.
    Object(&'a str),
}

/// The grant token and the way out a `GET` of `path` asks for, if it is one of
/// the door's routes (the same paths as [`routes`]: one non-empty grant segment,
/// one non-empty object segment).
pub fn way(path: &str) -> Option<(&str, Way<'_>)> {
    let (token, rest) = media_path(path)?;
    if token.is_empty() || rest.is_empty() || rest.contains('/') {
        return None;
    }
    let way = match rest {
        "snapshot.jpg" => Way::Snapshot(hearth_model::Rendition::Main),
        "sub-snapshot.jpg" => Way::Snapshot(hearth_model::Rendition::Sub),
        name => hls::PlaylistKind::of_name(name).map_or(Way::Object(name), Way::Playlist),
    };
    Some((token, way))
}

/// Answers a media `GET` without the router: what the route's handler would
/// answer, for a fraction of the work (no route matching, no parameter
/// decoding, no middleware — a media GET has no body to read). Players poll
/// playlists every second or faster, so these are most of what a server answers.
pub async fn get(
    state: &AppState,
    token: &str,
    way: Way<'_>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let door = match open(state, token, crate::auth::bearer(headers)) {
        Ok(g) => HttpGuard(g),
        Err(e) => return e.into_response(),
    };
    let answer = match way {
        Way::Playlist(kind) => hls::playlist(state, &door, kind, query).await,
        Way::Snapshot(rendition) => snapshot::still(state, &door, rendition).await,
        Way::Object(name) => hls::object(state, &door, name).await,
    };
    answer.into_response()
}

/// Verifies a presented grant token and opens the door for it (see
/// [`hearth_access::Door::open`]); the grant lookup is a fault point in tests.
pub fn open(state: &AppState, token: &str, holder: Option<&str>) -> Result<EgressGuard, AppError> {
    let now = hearth_access::clock::now();
    Ok(state
        .door
        .open(token, holder, now, |v| state.faults.grant(v))?)
}
