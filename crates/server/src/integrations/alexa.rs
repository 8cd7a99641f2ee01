//! Alexa Smart Home (payload version 3) for cameras: `Alexa.Discovery`,
//! `Alexa.CameraStreamController.InitializeCameraStreams`,
//! `Alexa.RTCSessionController` (WebRTC, one-way video:
//! `InitiateSessionWithOffer` is answered with `AnswerGeneratedForSession`,
//! `SessionConnected` acknowledged, `SessionDisconnected` ends the session),
//! `Alexa.ReportState` (endpoint health), `Alexa.Authorization.AcceptGrant`,
//! and `Alexa.ErrorResponse`.
//!
//! Alexa delivers smart-home directives to an AWS Lambda function, not to a URL;
//! the operator's Lambda forwards each directive unchanged to
//! `POST /integrations/alexa/directives` and returns our answer (docs/integrations.md
//! has the ten-line function). Authentication is the link's access token that
//! Alexa puts in the directive (`endpoint.scope`, or `payload.scope` for Discovery,
//! `payload.grantee` for AcceptGrant); an expired one is
//! `EXPIRED_AUTHORIZATION_CREDENTIAL` (Alexa refreshes and retries), an unknown or
//! revoked one `INVALID_AUTHORIZATION_CREDENTIAL`. Discovery is the exception: as
//! Alexa's contract asks, a refused Discover is answered with no endpoints.
//!
//! A stream is a grant for exactly that camera, link and integration, the same as
//! for Google (see `links::issue_stream`), served over RTSP (`crate::door::rtsp`, what
//! Alexa's camera interface asks for) when the RTSP egress listens, otherwise as
//! HLS with MPEG-TS segments; its
//! `expirationTime` is the grant's. While the `alexa` kill switch is on, every
//! directive answers `INSUFFICIENT_PERMISSIONS` (Discover: no endpoints) and live
//! streams are refused.
//!
//! Not done: Hearth does not exchange AcceptGrant's code for Login with Amazon
//! tokens, so it sends no proactive events (ChangeReport, AddOrUpdateReport) to
//! Alexa's event gateway; Alexa learns of changes by re-discovery and ReportState.
//! AcceptGrant is therefore answered `ACCEPT_GRANT_FAILED` (with the reason) rather
//! than accepted and ignored.

use crate::door::webrtc::{Select, WebRtc};
use crate::error::AppError;
use crate::integrations::links::{self, StreamRefusal};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_model::{CameraId, Integration, Rendition};
use hearth_store::{AccessToken, Link};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
struct Envelope {
    directive: Directive,
}

/// One directive, as parsed by [`parse_directive`].
#[derive(Deserialize)]
pub struct Directive {
    header: Header,
    #[serde(default)]
    endpoint: Option<Endpoint>,
    #[serde(default)]
    payload: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    namespace: String,
    name: String,
    #[serde(default)]
    correlation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    endpoint_id: String,
    #[serde(default)]
    scope: Option<Scope>,
}

#[derive(Deserialize)]
struct Scope {
    token: String,
}

/// An event's header: a fresh message id, the directive's correlation token.
fn header(namespace: &str, name: &str, correlation: Option<&str>) -> Value {
    let mut h = json!({
        "namespace": namespace,
        "name": name,
        "payloadVersion": "3",
        "messageId": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(c) = correlation {
        h["correlationToken"] = json!(c);
    }
    h
}

/// `Alexa.Authorization.ErrorResponse`: AcceptGrant's own error event.
fn accept_grant_failed(correlation: Option<&str>, message: &str) -> Value {
    json!({"event": {
        "header": header("Alexa.Authorization", "ErrorResponse", correlation),
        "payload": {"type": "ACCEPT_GRANT_FAILED", "message": message},
    }})
}

fn error_event(
    correlation: Option<&str>,
    endpoint: Option<&str>,
    kind: &str,
    message: &str,
) -> Value {
    let mut event = json!({
        "header": header("Alexa", "ErrorResponse", correlation),
        "payload": {"type": kind, "message": message},
    });
    if let Some(e) = endpoint {
        event["endpoint"] = json!({"endpointId": e});
    }
    json!({ "event": event })
}

/// `POST /integrations/alexa/directives`.
pub async fn directive(
    State(st): State<AppState>,
    Extension(webrtc): Extension<Arc<WebRtc>>,
    body: Bytes,
) -> Result<Response, AppError> {
    match parse_directive(&body) {
        Ok(d) => Ok(Json(handle(&st, &webrtc, d).await?).into_response()),
        Err(ev) => Ok((StatusCode::BAD_REQUEST, Json(ev)).into_response()),
    }
}

/// A directive from its envelope, parsed without app state (`fuzz/` drives it);
/// a malformed one is answered with the `INVALID_DIRECTIVE` error event returned.
pub fn parse_directive(body: &[u8]) -> Result<Directive, Value> {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => Ok(e.directive),
        Err(e) => {
            tracing::info!(error = %e, "alexa directive refused: malformed");
            Err(error_event(
                None,
                None,
                "INVALID_DIRECTIVE",
                &format!("malformed directive: {e}"),
            ))
        }
    }
}

/// The access token a directive carries: in the payload for Discovery and
/// AcceptGrant, in the endpoint's scope otherwise.
pub fn token_of(d: &Directive) -> Option<String> {
    match (d.header.namespace.as_str(), d.header.name.as_str()) {
        ("Alexa.Discovery", "Discover") => d.payload.pointer("/scope/token"),
        ("Alexa.Authorization", "AcceptGrant") => d.payload.pointer("/grantee/token"),
        _ => None,
    }
    .and_then(Value::as_str)
    .map(str::to_owned)
    .or_else(|| {
        d.endpoint
            .as_ref()
            .and_then(|e| e.scope.as_ref())
            .map(|s| s.token.clone())
    })
}

async fn handle(st: &AppState, webrtc: &Arc<WebRtc>, d: Directive) -> Result<Value, AppError> {
    let corr = d.header.correlation_token.as_deref();
    let endpoint_id = d.endpoint.as_ref().map(|e| e.endpoint_id.clone());
    let ep = endpoint_id.as_deref();
    let token = token_of(&d);
    let found = match token {
        Some(t) => links::link_for_token(st, Integration::Alexa, &t).await?,
        None => AccessToken::Unknown,
    };
    let checked = match found {
        AccessToken::Live(link) if !st.access.integration_suspended(Integration::Alexa) => Ok(link),
        AccessToken::Live(_) => Err((
            "INSUFFICIENT_PERMISSIONS",
            "the alexa integration is suspended by the operator",
        )),
        // Alexa refreshes and retries.
        AccessToken::Expired(_) => Err((
            "EXPIRED_AUTHORIZATION_CREDENTIAL",
            "the access token has expired",
        )),
        AccessToken::Unknown => Err((
            "INVALID_AUTHORIZATION_CREDENTIAL",
            "missing or revoked access token",
        )),
    };
    let link = match checked {
        Ok(link) => link,
        Err((kind, message)) => {
            tracing::info!(namespace = %d.header.namespace, name = %d.header.name, kind, "alexa directive refused");
            return Ok(if d.header.namespace == "Alexa.Authorization" {
                accept_grant_failed(corr, message)
            } else if d.header.namespace == "Alexa.Discovery" {
                // Alexa's Discovery contract: on an error such as an expired
                // token, answer with no endpoints, not with an ErrorResponse.
                discovery_response(Vec::new())
            } else {
                error_event(corr, ep, kind, message)
            });
        }
    };
    match (d.header.namespace.as_str(), d.header.name.as_str()) {
        ("Alexa.Discovery", "Discover") => discover(st, &link).await,
        // Accepting would promise proactive events that Hearth does not send: say
        // so, and the skill's operator turns "Send Alexa Events" off (the doc).
        ("Alexa.Authorization", "AcceptGrant") => Ok(accept_grant_failed(
            corr,
            "this Hearth sends no Alexa events; turn off Send Alexa Events in the skill's permissions",
        )),
        ("Alexa.CameraStreamController", "InitializeCameraStreams") => {
            Ok(initialize(st, &link, corr, ep, &d.payload).await)
        }
        ("Alexa", "ReportState") => Ok(report_state(st, &link, corr, ep)),
        ("Alexa.RTCSessionController", name) => {
            Ok(rtc_session(st, webrtc, &link, corr, ep, name, &d.payload).await)
        }
        (ns, name) => Ok(error_event(
            corr,
            ep,
            "INVALID_DIRECTIVE",
            &format!("{ns}.{name} is not supported"),
        )),
    }
}

/// The picture sizes of a camera's renditions: main's, and sub's while the
/// camera publishes one.
struct Sizes {
    main: (u32, u32),
    sub: Option<(u32, u32)>,
}

impl Sizes {
    fn of(st: &AppState, camera: CameraId) -> Self {
        let size = |r| {
            st.hubs
                .get_rendition(camera, r)
                .filter(|h| h.is_online())
                .and_then(|h| h.resolution())
        };
        Sizes {
            main: size(Rendition::Main).unwrap_or((1280, 720)),
            sub: size(Rendition::Sub),
        }
    }

    /// Every size, main first, as discovery lists them.
    fn all(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        std::iter::once(self.main).chain(self.sub)
    }

    /// The rendition for a display that accepts the `requested` sizes. Alexa
    /// names the sizes it will take in `InitializeCameraStreams`; a display
    /// with a small screen or on a constrained network asks for less. Main when
    /// it fits within the largest size asked for (or none is named), else the
    /// sub rendition: a smaller picture first, never a larger one than asked.
    fn rendition_for(&self, requested: &[(u32, u32)]) -> Rendition {
        let Some(&(w, h)) = requested
            .iter()
            .max_by_key(|(w, h)| u64::from(*w) * u64::from(*h))
        else {
            return Rendition::Main;
        };
        match self.sub {
            Some(_) if self.main.0 > w || self.main.1 > h => Rendition::Sub,
            _ => Rendition::Main,
        }
    }

    fn of_rendition(&self, rendition: Rendition) -> (u32, u32) {
        match rendition {
            Rendition::Sub => self.sub.unwrap_or(self.main),
            Rendition::Main => self.main,
        }
    }
}

async fn discover(st: &AppState, link: &Link) -> Result<Value, AppError> {
    let user = link.user;
    let cams = st.db(move |s| s.cameras_visible_to(user)).await?;
    let endpoints: Vec<Value> = cams
        .into_iter()
        .filter(|c| links::consented(st, link, c.id))
        .map(|c| {
            let sizes: Vec<Value> = Sizes::of(st, c.id)
                .all()
                .map(|(w, h)| json!({"width": w, "height": h}))
                .collect();
            json!({
                "endpointId": c.id,
                "manufacturerName": "Hearth",
                "friendlyName": c.name,
                "description": "Hearth camera",
                "displayCategories": ["CAMERA"],
                "cookie": {},
                "capabilities": [
                    {
                        "type": "AlexaInterface",
                        "interface": "Alexa.CameraStreamController",
                        "version": "3",
                        "cameraStreamConfigurations": protocols(st)
                            .iter()
                            .map(|p| json!({
                                "protocols": [p.name()],
                                "resolutions": sizes,
                                "authorizationTypes": ["NONE"],
                                "videoCodecs": ["H264"],
                                "audioCodecs": [p.audio_codec()],
                            }))
                            .collect::<Vec<_>>(),
                    },
                    {
                        "type": "AlexaInterface",
                        "interface": "Alexa.EndpointHealth",
                        "version": "3",
                        "properties": {
                            "supported": [{"name": "connectivity"}],
                            "proactivelyReported": false,
                            "retrievable": true,
                        },
                    },
                    {
                        "type": "AlexaInterface",
                        "interface": "Alexa.RTCSessionController",
                        "version": "3",
                        // One-way: video from the camera, nothing back.
                        "configuration": {"isFullDuplexAudioSupported": false},
                    },
                    {"type": "AlexaInterface", "interface": "Alexa", "version": "3"},
                ],
            })
        })
        .collect();
    Ok(discovery_response(endpoints))
}

fn discovery_response(endpoints: Vec<Value>) -> Value {
    json!({"event": {
        "header": header("Alexa.Discovery", "Discover.Response", None),
        "payload": {"endpoints": endpoints},
    }})
}

fn device(st: &AppState, link: &Link, endpoint: Option<&str>) -> Option<CameraId> {
    endpoint?
        .parse()
        .ok()
        .filter(|c| links::consented(st, link, *c))
}

async fn initialize(
    st: &AppState,
    link: &Link,
    corr: Option<&str>,
    ep: Option<&str>,
    payload: &Value,
) -> Value {
    let Some(camera) = device(st, link, ep) else {
        return error_event(corr, ep, "NO_SUCH_ENDPOINT", "no such camera on this link");
    };
    let requested = payload.get("cameraStreams").and_then(Value::as_array);
    let chosen = protocols(st)
        .into_iter()
        .find(|p| requested.is_none_or(|r| r.iter().any(|s| s["protocol"] == p.name())));
    let Some(protocol) = chosen else {
        let served: Vec<&str> = protocols(st).iter().map(|p| p.name()).collect();
        return error_event(
            corr,
            ep,
            "INVALID_VALUE",
            &format!("the streams served are {}", served.join(", ")),
        );
    };
    let stream = match links::issue_stream(st, link, camera).await {
        Ok(s) => s,
        Err(refusal) => return refusal_event(corr, ep, refusal),
    };
    // The sizes the display takes for that protocol.
    let sizes_asked: Vec<(u32, u32)> = requested
        .into_iter()
        .flatten()
        .filter(|s| s["protocol"] == protocol.name())
        .filter_map(|s| {
            let r = &s["resolution"];
            Some((
                u32::try_from(r["width"].as_u64()?).ok()?,
                u32::try_from(r["height"].as_u64()?).ok()?,
            ))
        })
        .collect();
    let sizes = Sizes::of(st, camera);
    let rendition = sizes.rendition_for(&sizes_asked);
    let (w, h) = sizes.of_rendition(rendition);
    let still = match rendition {
        Rendition::Main => "snapshot.jpg",
        Rendition::Sub => "sub-snapshot.jpg",
    };
    json!({"event": {
        "header": header("Alexa.CameraStreamController", "Response", corr),
        "endpoint": {"endpointId": camera},
        "payload": {
            "cameraStreams": [{
                "uri": protocol.uri(st, &stream, rendition),
                "expirationTime": hearth_access::clock::rfc3339(stream.grant.expires_at),
                "idleTimeoutSeconds": 30,
                "protocol": protocol.name(),
                "resolution": {"width": w, "height": h},
                "authorizationType": "NONE",
                "videoCodec": "H264",
                "audioCodec": protocol.audio_codec(),
            }],
            "imageUri": format!("{}/{still}", stream.base),
        },
    }})
}

/// The error event for a stream the link may not have.
fn refusal_event(corr: Option<&str>, ep: Option<&str>, refusal: StreamRefusal) -> Value {
    match refusal {
        StreamRefusal::NotFound => {
            error_event(corr, ep, "NO_SUCH_ENDPOINT", "no such camera on this link")
        }
        StreamRefusal::Offline => {
            error_event(corr, ep, "ENDPOINT_UNREACHABLE", "the camera is offline")
        }
        StreamRefusal::Suspended => error_event(
            corr,
            ep,
            "INSUFFICIENT_PERMISSIONS",
            "the alexa integration is suspended",
        ),
        StreamRefusal::Unavailable => error_event(
            corr,
            ep,
            "INTERNAL_ERROR",
            "access cannot be confirmed right now",
        ),
    }
}

/// A way Hearth streams to Alexa.
#[derive(Clone, Copy)]
enum Protocol {
    /// What Alexa's camera interface asks for: RTP over the RTSP connection
    /// (`crate::door::rtsp`), video only.
    Rtsp,
    /// HLS with MPEG-TS segments, video and audio.
    Hls,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Rtsp => "RTSP",
            Protocol::Hls => "HLS",
        }
    }

    fn audio_codec(self) -> &'static str {
        match self {
            Protocol::Rtsp => "NONE",
            Protocol::Hls => "AAC",
        }
    }

    fn uri(self, st: &AppState, stream: &links::LinkedStream, rendition: Rendition) -> String {
        match (self, st.rtsp_url.get()) {
            (Protocol::Rtsp, Some(base)) => {
                let path = match rendition {
                    Rendition::Main => "live",
                    Rendition::Sub => "sub",
                };
                format!("{base}/media/{}/{path}", stream.token)
            }
            _ => format!(
                "{}/{}",
                stream.base,
                crate::hub::media_playlist_name(rendition, crate::hub::Container::Ts)
            ),
        }
    }
}

/// What this server streams, in preference order: RTSP first when it listens.
fn protocols(st: &AppState) -> Vec<Protocol> {
    match st.rtsp_url.get() {
        Some(_) => vec![Protocol::Rtsp, Protocol::Hls],
        None => vec![Protocol::Hls],
    }
}

/// Longest Alexa session id taken (they are UUID-like).
const MAX_SESSION_ID: usize = 256;

/// `Alexa.RTCSessionController`: a WebRTC session under a grant of this link,
/// named by Alexa's session id (scoped to the link, so no other link can end it).
async fn rtc_session(
    st: &AppState,
    webrtc: &Arc<WebRtc>,
    link: &Link,
    corr: Option<&str>,
    ep: Option<&str>,
    name: &str,
    payload: &Value,
) -> Value {
    let Some(camera) = device(st, link, ep) else {
        return error_event(corr, ep, "NO_SUCH_ENDPOINT", "no such camera on this link");
    };
    let Some(session) = payload
        .get("sessionId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SESSION_ID)
    else {
        return error_event(corr, ep, "INVALID_VALUE", "a sessionId is required");
    };
    let tag = format!("alexa {} {session}", link.id);
    let event = |event_name: &str, payload: Value| {
        json!({"event": {
            "header": header("Alexa.RTCSessionController", event_name, corr),
            "endpoint": {"endpointId": camera},
            "payload": payload,
        }})
    };
    match name {
        "InitiateSessionWithOffer" => {
            let offer = payload.get("offer");
            let sdp = match (
                offer.and_then(|o| o.get("format")).and_then(Value::as_str),
                offer.and_then(|o| o.get("value")).and_then(Value::as_str),
            ) {
                (Some("SDP"), Some(v)) => v,
                _ => return error_event(corr, ep, "INVALID_VALUE", "an SDP offer is required"),
            };
            let stream = match links::issue_stream(st, link, camera).await {
                Ok(s) => s,
                Err(refusal) => return refusal_event(corr, ep, refusal),
            };
            // The door opens the grant just issued, as for any viewer; a second
            // offer for the same session replaces the first.
            webrtc.end_where(Select::Tag(&tag));
            let started = crate::door::open(st, &stream.token, None).and_then(|guard| {
                webrtc.start(st, guard, sdp.as_bytes(), Some(tag), None, Rendition::Main)
            });
            match started {
                Ok(s) => event(
                    "AnswerGeneratedForSession",
                    json!({"answer": {"format": "SDP", "value": s.answer}}),
                ),
                Err(AppError::BadRequest(why)) => error_event(corr, ep, "INVALID_VALUE", &why),
                Err(AppError::CameraOffline) => {
                    error_event(corr, ep, "ENDPOINT_UNREACHABLE", "the camera is offline")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alexa webrtc session not started");
                    error_event(
                        corr,
                        ep,
                        "INTERNAL_ERROR",
                        "the session could not be started",
                    )
                }
            }
        }
        "SessionConnected" => event("SessionConnected", json!({"sessionId": session})),
        "SessionDisconnected" => {
            let n = webrtc.end_where(Select::Tag(&tag));
            tracing::info!(link = ?link.id, sessions = n, "alexa ended its webrtc session");
            event("SessionDisconnected", json!({"sessionId": session}))
        }
        other => error_event(
            corr,
            ep,
            "INVALID_DIRECTIVE",
            &format!("Alexa.RTCSessionController.{other} is not supported"),
        ),
    }
}

fn report_state(st: &AppState, link: &Link, corr: Option<&str>, ep: Option<&str>) -> Value {
    let Some(camera) = device(st, link, ep) else {
        return error_event(corr, ep, "NO_SUCH_ENDPOINT", "no such camera on this link");
    };
    let online = st.camera_online(camera);
    json!({
        "event": {
            "header": header("Alexa", "StateReport", corr),
            "endpoint": {"endpointId": camera},
            "payload": {},
        },
        "context": {"properties": [{
            "namespace": "Alexa.EndpointHealth",
            "name": "connectivity",
            "value": {"value": if online { "OK" } else { "UNREACHABLE" }},
            "timeOfSample": hearth_access::clock::rfc3339(hearth_access::clock::now()),
            "uncertaintyInMilliseconds": 0,
        }]},
    })
}
