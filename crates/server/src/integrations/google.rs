//! Google Home cloud-to-cloud fulfillment (`POST /integrations/google/fulfillment`):
//! SYNC, QUERY, EXECUTE (`GetCameraStream`) and DISCONNECT, in Google's published
//! request and response shapes, for cameras with the `CameraStream` trait.
//!
//! The caller is authenticated by the Bearer access token of an account link
//! (a missing, expired or revoked token is HTTP 401, which makes Google refresh or
//! ask the user to re-link). A link sees only the cameras its user consented to and
//! may still view; every other device id, whoever owns it, is `deviceNotFound`.
//! `GetCameraStream` answers with a stream grant for exactly that camera, link and
//! integration (see `links::issue_stream`): an HLS playlist with MPEG-TS segments,
//! which the default Cast receiver plays, AES-128 encrypted like every stream.
//!
//! While the `google` kill switch is on, every intent but DISCONNECT answers
//! `transientError`, and the access view refuses every request under a Google
//! grant, so live streams stop within a poll.

use crate::error::AppError;
use crate::integrations::links::{self, StreamRefusal};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_model::{CameraId, Integration};
use hearth_store::{AccessToken, Link};
use serde::Deserialize;
use serde_json::{Value, json};

/// What we serve, in preference order (Google's protocol names).
pub const PROTOCOLS: [&str; 1] = ["hls"];

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
        Intent::Execute(payload) => execute(&st, &link, payload).await,
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
            Some(c) if !st.hubs.is_online(c) => {
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

async fn execute(st: &AppState, link: &Link, payload: ExecutePayload) -> Value {
    let mut results = Vec::new();
    let mut seen = std::collections::HashSet::new();
    'all: for cmd in &payload.commands {
        for d in &cmd.devices {
            for ex in &cmd.execution {
                if results.len() == MAX_EXECUTIONS {
                    break 'all;
                }
                if seen.insert((d.id.as_str(), ex.command.as_str())) {
                    results.push(execute_one(st, link, &d.id, ex).await);
                }
            }
        }
    }
    json!({"commands": results})
}

fn error(id: &str, code: &str) -> Value {
    json!({"ids": [id], "status": "ERROR", "errorCode": code})
}

async fn execute_one(st: &AppState, link: &Link, id: &str, ex: &Execution) -> Value {
    if ex.command != "action.devices.commands.GetCameraStream" {
        return error(id, "functionNotSupported");
    }
    let Some(camera) = device(st, link, id) else {
        return error(id, "deviceNotFound");
    };
    if let Some(wanted) = ex.params.get("SupportedStreamProtocols") {
        let ok = wanted
            .as_array()
            .is_some_and(|w| w.iter().any(|p| PROTOCOLS.iter().any(|ours| p == ours)));
        if !ok {
            return error(id, "functionNotSupported");
        }
    }
    match links::issue_stream(st, link, camera).await {
        Ok(s) => json!({
            "ids": [id],
            "status": "SUCCESS",
            "states": {
                "online": true,
                // MPEG-TS segments: what the default Cast receiver plays.
                "cameraStreamAccessUrl": format!("{}/ts.m3u8", s.base),
                "cameraStreamProtocol": "hls",
                "cameraStreamAuthToken": s.token,
            },
        }),
        Err(StreamRefusal::NotFound) => error(id, "deviceNotFound"),
        Err(StreamRefusal::Offline) => error(id, "deviceOffline"),
        Err(StreamRefusal::Suspended) => error(id, "transientError"),
    }
}
