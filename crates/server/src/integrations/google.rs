//! Google Home cloud-to-cloud fulfillment (`POST /integrations/google/fulfillment`):
//! SYNC, QUERY, EXECUTE (`GetCameraStream`) and DISCONNECT, in Google's published
//! request and response shapes, for cameras with the `CameraStream` trait.
//!
//! The caller is authenticated by the Bearer access token of an account link
//! (a missing, expired or revoked token is HTTP 401, which makes Google refresh or
//! ask the user to re-link). A link sees only the cameras its user consented to and
//! may still view; every other device id, whoever owns it, is `deviceNotFound`.
//! `GetCameraStream` answers with a stream grant for exactly that camera, link and
//! integration (see `links::issue_stream`): WebRTC when the request lists
//! `webrtc` (a signaling URL and the grant as `cameraStreamAuthToken`: Google
//! `POST`s `{"action": "offer", "sdp"}` there with the token as Bearer and gets
//! `{"action": "answer", "sdp"}`; `{"action": "end"}` ends the session), else
//! an HLS playlist with MPEG-TS segments, which the default Cast receiver plays,
//! AES-128 encrypted like every stream. Either way the media leaves through the
//! door under that grant.
//!
//! While the `google` kill switch is on, every intent but DISCONNECT answers
//! `transientError`, and the access view refuses every request under a Google
//! grant, so live streams stop within a poll.

use crate::door::webrtc::{Select, WebRtc};
use crate::error::AppError;
use crate::integrations::links::{self, StreamRefusal};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_model::{CameraId, Integration, Rendition};
use hearth_store::{AccessToken, Link};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// What we serve, in preference order (Google's protocol names): WebRTC to the
/// displays that take it (Nest Hubs), HLS with MPEG-TS segments to Cast.
pub const PROTOCOLS: [&str; 2] = ["webrtc", "hls"];

/// The only origin whose scripts may call the signaling endpoint (Google's
/// player on displays, as its documentation requires).
const SIGNALING_ORIGIN: &str = "https://www.gstatic.com";

/// A fulfillment request, as parsed by [`parse_request`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    request_id: String,
    inputs: Vec<Input>,
}

/// One input of a fulfillment request.
#[derive(Deserialize)]
#[serde(tag = "intent")]
pub enum Input {
    #[serde(rename = "action.devices.SYNC")]
    Sync,
    #[serde(rename = "action.devices.QUERY")]
    Query { payload: QueryPayload },
    #[serde(rename = "action.devices.EXECUTE")]
    Execute { payload: ExecutePayload },
    #[serde(rename = "action.devices.DISCONNECT")]
    Disconnect,
}

#[derive(Deserialize)]
struct DeviceRef {
    id: String,
}

#[derive(Deserialize)]
pub struct QueryPayload {
    devices: Vec<DeviceRef>,
}

#[derive(Deserialize)]
pub struct ExecutePayload {
    commands: Vec<Command>,
}

#[derive(Deserialize)]
struct Command {
    devices: Vec<DeviceRef>,
    execution: Vec<Execution>,
}

#[derive(Deserialize)]
struct Execution {
    command: String,
    #[serde(default)]
    params: Value,
}

fn unauthorized() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token", "error_description": "missing, expired or revoked access token"})),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

pub async fn fulfillment(
    State(st): State<AppState>,
    Extension(webrtc): Extension<Arc<WebRtc>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let token = match crate::auth::bearer(&headers) {
        Some(t) => links::link_for_token(&st, Integration::Google, t).await?,
        None => AccessToken::Unknown,
    };
    // Expired and unknown tokens are both 401 (Google refreshes, or asks the user
    // to re-link), except that an expired one may still DISCONNECT its link.
    let (link, live) = match token {
        AccessToken::Live(link) => (link, true),
        AccessToken::Expired(link) => (link, false),
        AccessToken::Unknown => {
            tracing::info!("google fulfillment refused: unknown access token");
            return Ok(unauthorized());
        }
    };
    let (request_id, input) = parse_request(&body)?;
    let input = match input {
        Input::Disconnect => {
            links::unlink(&st, &link, "DISCONNECT from Google").await?;
            return Ok(Json(json!({})).into_response());
        }
        _ if !live => {
            tracing::info!(link = ?link.id, "google fulfillment refused: expired access token");
            return Ok(unauthorized());
        }
        Input::Sync => Intent::Sync,
        Input::Query { payload } => Intent::Query(payload),
        Input::Execute { payload } => Intent::Execute(payload),
    };
    if st.access.integration_suspended(Integration::Google) {
        tracing::info!(link = ?link.id, "google fulfillment refused: integration suspended");
        return Ok(Json(json!({
            "requestId": request_id,
            "payload": {"errorCode": "transientError", "debugString": "the google integration is suspended by the operator"},
        }))
        .into_response());
    }
    let payload = match input {
        Intent::Sync => sync(&st, &link).await?,
        Intent::Query(payload) => query(&st, &link, payload),
        Intent::Execute(payload) => execute(&st, &webrtc, &link, payload).await,
    };
    Ok(Json(json!({"requestId": request_id, "payload": payload})).into_response())
}

/// A fulfillment body's request id and (first) input, parsed without app state
/// (`fuzz/` drives it). Google sends one input per request.
pub fn parse_request(body: &[u8]) -> Result<(String, Input), AppError> {
    let req: Request = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("not a fulfillment request: {e}")))?;
    let Some(input) = req.inputs.into_iter().next() else {
        return Err(AppError::BadRequest("inputs is empty".into()));
    };
    Ok((req.request_id, input))
}

/// The intents answered with a payload (DISCONNECT is answered with `{}`).
enum Intent {
    Sync,
    Query(QueryPayload),
    Execute(ExecutePayload),
}

async fn sync(st: &AppState, link: &Link) -> Result<Value, AppError> {
    let user = link.user;
    let cams = st.db(move |s| s.cameras_visible_to(user)).await?;
    let devices: Vec<Value> = cams
        .into_iter()
        .filter(|c| links::consented(st, link, c.id))
        .map(|c| {
            json!({
                "id": c.id,
                "type": "action.devices.types.CAMERA",
                "traits": ["action.devices.traits.CameraStream"],
                "name": {"name": c.name, "defaultNames": ["Hearth camera"]},
                "willReportState": st.homegraph.enabled(),
                "attributes": {
                    "cameraStreamSupportedProtocols": PROTOCOLS,
                    "cameraStreamNeedAuthToken": true,
                },
                "deviceInfo": {"manufacturer": "Hearth", "model": "Hearth camera", "swVersion": env!("CARGO_PKG_VERSION")},
            })
        })
        .collect();
    Ok(json!({
        "agentUserId": links::agent_user_id(Integration::Google, link.user),
        "devices": devices,
    }))
}

/// The device, if the link may see it.
fn device(st: &AppState, link: &Link, id: &str) -> Option<CameraId> {
    id.parse().ok().filter(|c| links::consented(st, link, *c))
}

fn query(st: &AppState, link: &Link, payload: QueryPayload) -> Value {
    let mut out = serde_json::Map::new();
    for d in payload.devices.into_iter().take(1000) {
        let state = match device(st, link, &d.id) {
            None => json!({"status": "ERROR", "errorCode": "deviceNotFound"}),
            Some(c) if !st.camera_online(c) => {
                json!({"online": false, "status": "ERROR", "errorCode": "deviceOffline"})
            }
            Some(_) => json!({"online": true, "status": "SUCCESS"}),
        };
        out.insert(d.id, state);
    }
    json!({"devices": out})
}

/// At most this many (device, command) pairs are answered per request: a display
/// asks for one stream at a time.
const MAX_EXECUTIONS: usize = 64;

async fn execute(st: &AppState, webrtc: &WebRtc, link: &Link, payload: ExecutePayload) -> Value {
    let mut results = Vec::new();
    let mut seen = std::collections::HashSet::new();
    'all: for cmd in &payload.commands {
        for d in &cmd.devices {
            for ex in &cmd.execution {
                if results.len() == MAX_EXECUTIONS {
                    break 'all;
                }
                if seen.insert((d.id.as_str(), ex.command.as_str())) {
                    results.push(execute_one(st, webrtc, link, &d.id, ex).await);
                }
            }
        }
    }
    json!({"commands": results})
}

fn error(id: &str, code: &str) -> Value {
    json!({"ids": [id], "status": "ERROR", "errorCode": code})
}

async fn execute_one(
    st: &AppState,
    webrtc: &WebRtc,
    link: &Link,
    id: &str,
    ex: &Execution,
) -> Value {
    if ex.command != "action.devices.commands.GetCameraStream" {
        return error(id, "functionNotSupported");
    }
    let Some(camera) = device(st, link, id) else {
        return error(id, "deviceNotFound");
    };
    // The surface's protocols, in our order of preference; HLS for a request
    // that names none (Cast's default receiver, as before WebRTC).
    let protocol = match ex.params.get("SupportedStreamProtocols") {
        Some(wanted) => {
            let listed = |p: &str| wanted.as_array().is_some_and(|w| w.iter().any(|x| x == p));
            match PROTOCOLS.into_iter().find(|p| listed(p)) {
                Some(p) => p,
                None => return error(id, "functionNotSupported"),
            }
        }
        None => "hls",
    };
    let s = match links::issue_stream(st, link, camera).await {
        Ok(s) => s,
        Err(StreamRefusal::NotFound) => return error(id, "deviceNotFound"),
        Err(StreamRefusal::Offline) => return error(id, "deviceOffline"),
        Err(StreamRefusal::Suspended | StreamRefusal::Unavailable) => {
            return error(id, "transientError");
        }
    };
    let states = if protocol == "webrtc" {
        let mut states = json!({
            "online": true,
            "cameraStreamProtocol": "webrtc",
            "cameraStreamSignalingUrl": format!("{}/integrations/google/signaling", st.public_url),
            "cameraStreamAuthToken": s.token,
        });
        let servers = webrtc.ice_servers(&s.grant);
        if !servers.is_empty() {
            // A JSON string, as Google documents it; none means Google's own STUN.
            states["cameraStreamIceServers"] =
                json!(serde_json::to_string(&servers).unwrap_or_default());
        }
        states
    } else {
        json!({
            "online": true,
            // MPEG-TS segments: what the default Cast receiver plays. The
            // master lists the sub rendition too: Google's request says nothing
            // of the network, and the receiver's own bandwidth estimate picks.
            "cameraStreamAccessUrl": format!("{}/ts-index.m3u8", s.base),
            "cameraStreamProtocol": "hls",
            "cameraStreamAuthToken": s.token,
        })
    };
    json!({"ids": [id], "status": "SUCCESS", "states": states})
}

/// A signaling message from Google's player.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Signal {
    action: String,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    sdp: Option<String>,
}

fn signaling_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(SIGNALING_ORIGIN),
    );
    // The answer carries the session's ICE credentials.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /integrations/google/signaling`: Google's WebRTC signaling, under
/// the grant `GetCameraStream` handed out as `cameraStreamAuthToken` (Bearer).
/// `offer` starts a session (the door opens it for that grant, as for WHEP and
/// HLS) and answers it; `end` ends the grant's sessions.
pub async fn signaling(
    State(st): State<AppState>,
    Extension(webrtc): Extension<Arc<WebRtc>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |status: StatusCode, why: &str| signaling_response(status, json!({"error": why}));
    let Some(token) = crate::auth::bearer(&headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the stream's auth token is required",
        );
    };
    let guard = match crate::door::open(&st, token, None) {
        Ok(g) if g.grant().integration == Integration::Google => g,
        Ok(_) => return refuse(StatusCode::FORBIDDEN, "not a Google stream"),
        Err(e) => return e.into_response(),
    };
    let signal: Signal = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("malformed signaling message: {e}"),
            );
        }
    };
    let camera = guard.grant().camera;
    if signal
        .device_id
        .as_deref()
        .is_some_and(|d| d.parse::<CameraId>().ok() != Some(camera))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "deviceId is not the stream's camera",
        );
    }
    match signal.action.as_str() {
        "offer" => {
            let Some(sdp) = signal.sdp else {
                return refuse(StatusCode::BAD_REQUEST, "an offer needs its sdp");
            };
            match webrtc.start(&st, guard, sdp.as_bytes(), None, None, Rendition::Main) {
                Ok(started) => signaling_response(
                    StatusCode::OK,
                    json!({"action": "answer", "sdp": started.answer}),
                ),
                Err(e) => e.into_response(),
            }
        }
        "end" => {
            let n = webrtc.end_where(Select::Grant(guard.grant().id));
            tracing::info!(grant = ?guard.grant().id, sessions = n, "google ended its webrtc session");
            signaling_response(StatusCode::OK, json!({}))
        }
        // Hearth never sends an offer, so there is nothing to answer.
        other => refuse(
            StatusCode::BAD_REQUEST,
            &format!("unsupported action {other:?}"),
        ),
    }
}

/// `OPTIONS /integrations/google/signaling`: the CORS preflight of Google's
/// player (a JSON body and an `Authorization` header need one).
pub async fn signaling_preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(SIGNALING_ORIGIN),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}
