//! A hub emulator: plays Google's and Alexa's part against a real `hearth` over
//! real HTTP. It registers as the operator would (`hearth integration add`), runs
//! the account-linking flow as the user's browser and the platform's cloud would
//! (authorization page, sign-in, consent, code, token with PKCE, refresh), sends
//! fulfillment requests in the documented shapes, and plays the stream URLs it gets
//! with ffmpeg, without any header, as a Nest Hub or Echo Show would.
//! Each test file includes it with `#[path = "common/hub_emulator.rs"] mod hub_emulator;`.
#![allow(dead_code)]

use super::common::*;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

pub const GOOGLE_REDIRECT: &str = "https://oauth-redirect.googleusercontent.com/r/hearth-test";
pub const ALEXA_REDIRECT: &str = "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA";

/// A platform's registration with Hearth.
#[derive(Clone)]
pub struct Platform {
    pub integration: &'static str,
    pub client_id: String,
    pub secret: String,
    pub redirect: &'static str,
}

/// What a platform holds for one linked account.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub expires_in: i64,
}

/// `hearth integration add` for `integration` (google or alexa).
pub fn register(s: &Server, integration: &'static str) -> Platform {
    let redirect = if integration == "google" {
        GOOGLE_REDIRECT
    } else {
        ALEXA_REDIRECT
    };
    let p = Platform {
        integration,
        client_id: format!("{integration}-client-id"),
        secret: format!("{integration}-secret-{}", "s3cr3t".repeat(8)),
        redirect,
    };
    let out = s.admin(
        &[
            "integration",
            "add",
            integration,
            "--client-id",
            &p.client_id,
            "--client-secret-stdin",
            "--redirect-uri",
            redirect,
        ],
        Some(&format!("{}\n", p.secret)),
    );
    assert!(out.contains(integration), "{out}");
    p
}

pub fn pkce() -> (String, String) {
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}

pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The authorization request's query string.
pub fn authorize_query(p: &Platform, state: &str, challenge: &str) -> String {
    format!(
        "response_type=code&client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256&scope=cameras",
        encode(&p.client_id),
        encode(p.redirect),
        encode(state),
        challenge
    )
}

/// The parameters of a redirect URL's query.
pub fn redirect_params(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The linking flow as the user's browser runs it, up to the redirect back to the
/// platform: opens the authorization page, signs in, reads the consent request,
/// and approves it with `keep` (camera names; `None`: all offered). Returns the
/// redirect URL.
pub async fn consent(
    s: &Server,
    p: &Platform,
    email: &str,
    keep: Option<&[&str]>,
    state: &str,
    challenge: &str,
) -> String {
    let c = client();
    let query = authorize_query(p, state, challenge);
    let page = c
        .get(format!("{}/oauth/authorize?{query}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the authorization page opens");
    assert!(page.text().await.unwrap().contains("<html"));
    let session = s.login(email, PASSWORD).await;
    let req: Value = c
        .get(format!("{}/api/v1/oauth/request?{query}", s.base))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(req["integration"], p.integration, "{req}");
    let cameras: Vec<String> = req["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| keep.is_none_or(|k| k.contains(&c["name"].as_str().unwrap())))
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let answer: Value = c
        .post(format!("{}/api/v1/oauth/authorize", s.base))
        .bearer_auth(&session)
        .json(&json!({
            "client_id": p.client_id, "redirect_uri": p.redirect, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256", "scope": "cameras",
            "cameras": cameras, "approve": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["redirect"].as_str().expect("a redirect").to_string()
}

/// POST to the token endpoint with client credentials in the body; (status, JSON).
pub async fn token_request(s: &Server, p: &Platform, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all: Vec<(&str, &str)> = form.to_vec();
    all.push(("client_id", &p.client_id));
    all.push(("client_secret", &p.secret));
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(all)
        .finish();
    let r = client()
        .post(format!("{}/oauth/token", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap_or(Value::Null))
}

fn tokens(v: &Value) -> Tokens {
    Tokens {
        access: v["access_token"].as_str().expect("access_token").into(),
        refresh: v["refresh_token"].as_str().expect("refresh_token").into(),
        expires_in: v["expires_in"].as_i64().unwrap(),
    }
}

/// The whole linking flow: consent as `email` keeping `keep`, then the code
/// exchange with the PKCE verifier.
pub async fn link(s: &Server, p: &Platform, email: &str, keep: Option<&[&str]>) -> Tokens {
    let (verifier, challenge) = pkce();
    let redirect = consent(s, p, email, keep, "st-123", &challenge).await;
    assert!(redirect.starts_with(p.redirect), "{redirect}");
    let q = redirect_params(&redirect);
    assert_eq!(q["state"], "st-123");
    let (status, v) = token_request(
        s,
        p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", p.redirect),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    let t = tokens(&v);
    assert!(t.expires_in > 0 && t.expires_in <= 3600, "{v}");
    t
}

pub async fn refresh(s: &Server, p: &Platform, refresh: &str) -> (u16, Value) {
    token_request(
        s,
        p,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
}

pub fn refreshed(v: &Value) -> Tokens {
    tokens(v)
}

// --- Google Home ---

pub async fn google(s: &Server, access: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/integrations/google/fulfillment", s.base))
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn sync() -> Value {
    json!({"requestId": "sync-1", "inputs": [{"intent": "action.devices.SYNC"}]})
}

pub fn query(ids: &[&str]) -> Value {
    let devices: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    json!({"requestId": "query-1", "inputs": [{"intent": "action.devices.QUERY", "payload": {"devices": devices}}]})
}

pub fn get_camera_stream(id: &str) -> Value {
    json!({"requestId": "exec-1", "inputs": [{"intent": "action.devices.EXECUTE", "payload": {"commands": [{
        "devices": [{"id": id}],
        "execution": [{"command": "action.devices.commands.GetCameraStream", "params": {
            "StreamToChromecast": true,
            "SupportedStreamProtocols": ["progressive_mp4", "hls", "dash", "smooth_stream"],
        }}],
    }]}}]})
}

/// GetCameraStream from a surface that plays `protocols` (a Nest Hub lists
/// `webrtc`).
pub fn get_camera_stream_as(id: &str, protocols: &[&str]) -> Value {
    json!({"requestId": "exec-2", "inputs": [{"intent": "action.devices.EXECUTE", "payload": {"commands": [{
        "devices": [{"id": id}],
        "execution": [{"command": "action.devices.commands.GetCameraStream", "params": {
            "StreamToChromecast": false,
            "SupportedStreamProtocols": protocols,
        }}],
    }]}}]})
}

/// A message to Google's WebRTC signaling URL, as Google's player sends it:
/// JSON, the stream's auth token as Bearer, from its gstatic origin.
pub async fn google_signal(
    url: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut r = client()
        .post(url)
        .header("origin", "https://www.gstatic.com")
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let origin = r
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, origin, r.json().await.unwrap_or(Value::Null))
}

pub fn disconnect() -> Value {
    json!({"requestId": "disc-1", "inputs": [{"intent": "action.devices.DISCONNECT"}]})
}

/// The device ids a SYNC response lists.
pub fn synced_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["payload"]["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no devices in {v}"))
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// EXECUTE GetCameraStream's single command result.
pub async fn google_stream(s: &Server, access: &str, id: &str) -> Value {
    let (status, v) = google(s, access, get_camera_stream(id)).await;
    assert_eq!(status, 200, "{v}");
    v["payload"]["commands"][0].clone()
}

// --- Alexa ---

pub async fn alexa(s: &Server, directive: Value) -> Value {
    let r = client()
        .post(format!("{}/integrations/alexa/directives", s.base))
        .json(&json!({ "directive": directive }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub fn discover(token: &str) -> Value {
    json!({
        "header": {"namespace": "Alexa.Discovery", "name": "Discover", "payloadVersion": "3", "messageId": "m-1"},
        "payload": {"scope": {"type": "BearerToken", "token": token}},
    })
}

pub fn initialize_streams(token: &str, endpoint: &str) -> Value {
    json!({
        "header": {"namespace": "Alexa.CameraStreamController", "name": "InitializeCameraStreams",
                   "payloadVersion": "3", "messageId": "m-2", "correlationToken": "corr-2"},
        "endpoint": {"endpointId": endpoint, "scope": {"type": "BearerToken", "token": token}, "cookie": {}},
        "payload": {"cameraStreams": [{"protocol": "HLS", "resolution": {"width": 1280, "height": 720},
                    "authorizationType": "NONE", "videoCodec": "H264", "audioCodec": "AAC"}]},
    })
}

/// An `Alexa.RTCSessionController` directive for `endpoint`.
pub fn rtc_session(token: &str, endpoint: &str, name: &str, payload: Value) -> Value {
    json!({
        "header": {"namespace": "Alexa.RTCSessionController", "name": name,
                   "payloadVersion": "3", "messageId": "m-3", "correlationToken": "corr-3"},
        "endpoint": {"endpointId": endpoint, "scope": {"type": "BearerToken", "token": token}, "cookie": {}},
        "payload": payload,
    })
}

pub fn alexa_error_type(v: &Value) -> Option<&str> {
    (v["event"]["header"]["name"] == "ErrorResponse")
        .then(|| v["event"]["payload"]["type"].as_str())
        .flatten()
}

/// Decodes `seconds` of `url` as a display does: the URL alone, no headers.
pub fn play(url: &str, w: u32, h: u32, seconds: f64) -> Vec<Vec<u8>> {
    assert!(holder_of(url).is_none(), "a display sends no session");
    decode_rgb(url, seconds, w, h)
}
