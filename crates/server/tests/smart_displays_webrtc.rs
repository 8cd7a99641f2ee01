//! Nest Hubs and Echo Shows over WebRTC, end to end: the hub emulator
//! (`common/hub_emulator.rs`) links Google Home and Alexa as their clouds
//! would, follows each platform's WebRTC flow (Google: GetCameraStream with
//! `webrtc`, then the JSON offer/answer at the signaling URL under
//! `cameraStreamAuthToken`; Alexa: `RTCSessionController`'s
//! `InitiateSessionWithOffer`, `SessionConnected`, `SessionDisconnected`) and
//! plays what it is handed with a real WebRTC peer (str0m), decoding the
//! pictures: they are the linked camera's, every frame names it in-band, and
//! the link's consent holds. Unlinking and the kill switches end a playing
//! session within a second.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
#[path = "common/webrtc_peer.rs"]
mod webrtc_peer;
use common::*;
use hub_emulator::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use webrtc_peer::*;

const W: u32 = 160;
const H: u32 = 90;

/// Plays a session whose answer is `answer` until `want` frames came.
async fn play_answer(
    mut viewer: Viewer,
    pending: str0m::change::SdpPendingOffer,
    answer: &str,
    want: usize,
) -> (Viewer, Received) {
    viewer.accept(pending, answer);
    tokio::task::spawn_blocking(move || {
        let got = viewer.run(Duration::from_secs(20), want);
        (viewer, got)
    })
    .await
    .unwrap()
}

/// The frames are `camera`'s: each names it in-band, and they decode to its
/// signature.
fn assert_camera(got: &Received, camera: &str, what: &str) {
    assert!(
        got.connected_after.is_some(),
        "{what}: ICE and DTLS connected"
    );
    assert!(
        got.frames.len() >= 20,
        "{what}: only {} frames",
        got.frames.len()
    );
    for (i, f) in got.frames.iter().enumerate() {
        let r = provenance_in(f).unwrap_or_else(|| panic!("{what}: frame {i} names no camera"));
        assert_eq!(r.camera.to_string(), camera, "{what}: frame {i}");
    }
    assert_signature(
        &decode_frames(&got.frames, W, H),
        W,
        H,
        signature_of(camera),
    );
}

/// Keeps `viewer` playing while `act` runs, then returns how long after `act`
/// finished frames still came (zero if they stopped before).
async fn frames_after<F: std::future::Future<Output = ()>>(mut viewer: Viewer, act: F) -> Duration {
    let playing = tokio::task::spawn_blocking(move || {
        viewer.run(Duration::from_secs(5), usize::MAX).arrivals
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    act.await;
    let done = Instant::now();
    let arrivals = playing.await.unwrap();
    let before = arrivals.iter().filter(|t| **t < done).count();
    assert!(before > 0, "frames were arriving before");
    arrivals
        .last()
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(done))
}

#[tokio::test(flavor = "multi_thread")]
async fn nest_hub_and_echo_show_play_over_webrtc_until_unlinked_or_switched_off() {
    require_tool("ffmpeg");
    let s = Server::demo(W, H);
    let google_p = register(&s, "google");
    let alexa_p = register(&s, "alexa");
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    s.wait_online(&a, "Nursery").await;
    let living = s.camera_id(&a, "Living room").await;
    let nursery = s.camera_id(&a, "Nursery").await;

    // --- Google Home: the Nursery is left out at consent. ---
    let ga = link(&s, &google_p, OWNER_A, Some(&["Living room"])).await;
    let (_, sync_a) = google(&s, &ga.access, sync()).await;
    assert_eq!(
        sync_a["payload"]["devices"][0]["attributes"]["cameraStreamSupportedProtocols"],
        json!(["webrtc", "hls"])
    );
    let (_, v) = google(
        &s,
        &ga.access,
        get_camera_stream_as(&living, &["webrtc", "hls"]),
    )
    .await;
    let r = &v["payload"]["commands"][0];
    assert_eq!(r["status"], "SUCCESS", "{r}");
    let states = &r["states"];
    assert_eq!(states["cameraStreamProtocol"], "webrtc", "{r}");
    assert!(states.get("cameraStreamAccessUrl").is_none(), "{r}");
    let url = states["cameraStreamSignalingUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(url, format!("{}/integrations/google/signaling", s.base));
    let token = states["cameraStreamAuthToken"]
        .as_str()
        .unwrap()
        .to_string();
    // The grant is not in the signaling URL: only the token opens it.
    assert!(!url.contains(&token));
    // No ICE servers configured: Google uses its own STUN.
    assert!(states.get("cameraStreamIceServers").is_none(), "{r}");
    // A Cast target that lists only HLS still gets HLS.
    let (_, v) = google(&s, &ga.access, get_camera_stream_as(&living, &["hls"])).await;
    assert_eq!(
        v["payload"]["commands"][0]["states"]["cameraStreamProtocol"],
        "hls"
    );

    // Google's player asks from its origin: the preflight and the answers allow it.
    let pre = client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://www.gstatic.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://www.gstatic.com"
    );

    // Refusals: no token, the link's access token instead of the stream's, a
    // web-app grant, another device, no SDP. None starts a session.
    let (_, offer, _) = Viewer::offer();
    let app_grant = s.grant(&a, &living).await;
    let app_token = grant_token(app_grant["hls_url"].as_str().unwrap())
        .unwrap()
        .to_string();
    let msg = |device: &str| json!({"action": "offer", "deviceId": device, "sdp": offer});
    for (what, tok, body, want) in [
        ("no token", None, msg(&living), 401),
        (
            "the link's access token",
            Some(ga.access.as_str()),
            msg(&living),
            403,
        ),
        (
            "a web app grant",
            Some(app_token.as_str()),
            msg(&living),
            403,
        ),
        ("another device", Some(token.as_str()), msg(&nursery), 400),
        (
            "no sdp",
            Some(token.as_str()),
            json!({"action": "offer", "deviceId": living}),
            400,
        ),
        (
            "an answer",
            Some(token.as_str()),
            json!({"action": "answer", "sdp": offer}),
            400,
        ),
    ] {
        let (st, _, body) = google_signal(&url, tok, body).await;
        assert_eq!(st, want, "{what}: {body}");
        assert!(body.get("sdp").is_none(), "{what}: {body}");
    }

    // The offer: answered, and the display plays the Living room.
    let (viewer, offer, pending) = Viewer::offer();
    let posted = Instant::now();
    let (st, origin, body) = google_signal(
        &url,
        Some(&token),
        json!({"action": "offer", "deviceId": living, "sdp": offer}),
    )
    .await;
    let answered = posted.elapsed();
    assert_eq!(st, 200, "{body}");
    assert_eq!(origin.as_deref(), Some("https://www.gstatic.com"));
    assert_eq!(body["action"], "answer");
    let (viewer, got) = play_answer(viewer, pending, body["sdp"].as_str().unwrap(), 30).await;
    println!(
        "google webrtc: answered {answered:?} after the offer, first frame {:?} after the answer",
        got.first_frame_after
    );
    assert_camera(&got, &living, "google");
    // `end` ends it.
    let after = frames_after(viewer, async {
        let (st, _, body) = google_signal(
            &url,
            Some(&token),
            json!({"action": "end", "deviceId": living}),
        )
        .await;
        assert_eq!((st, body), (200, json!({})));
    })
    .await;
    assert!(
        after < Duration::from_millis(500),
        "frames {after:?} after end"
    );

    // Unlinking ends a playing session within a second.
    let (viewer, offer, pending) = Viewer::offer();
    let (st, _, body) =
        google_signal(&url, Some(&token), json!({"action": "offer", "sdp": offer})).await;
    assert_eq!(st, 200, "{body}");
    let (viewer, got) = play_answer(viewer, pending, body["sdp"].as_str().unwrap(), 10).await;
    assert!(got.frames.len() >= 10);
    let after = frames_after(viewer, async {
        let r = client()
            .delete(format!("{}/api/v1/integrations/google", s.base))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    })
    .await;
    println!("google webrtc: last frame {after:?} after unlinking");
    assert!(
        after < Duration::from_secs(1),
        "frames {after:?} after unlinking"
    );
    let (st, _, _) =
        google_signal(&url, Some(&token), json!({"action": "offer", "sdp": offer})).await;
    assert_eq!(st, 403, "the unlinked grant opens nothing");

    // --- Alexa: an Echo Show. ---
    let xa = link(&s, &alexa_p, OWNER_A, Some(&["Living room"])).await;
    let d = alexa(&s, discover(&xa.access)).await;
    let caps = &d["event"]["payload"]["endpoints"][0]["capabilities"];
    let rtc = caps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["interface"] == "Alexa.RTCSessionController")
        .unwrap_or_else(|| panic!("no RTCSessionController in {caps}"));
    assert_eq!(rtc["configuration"]["isFullDuplexAudioSupported"], false);

    let (viewer, offer, pending) = Viewer::offer();
    let initiate = |endpoint: &str, session: &str, sdp: &str| {
        rtc_session(
            &xa.access,
            endpoint,
            "InitiateSessionWithOffer",
            json!({"sessionId": session, "offer": {"format": "SDP", "value": sdp}}),
        )
    };
    // The Nursery was left out at consent.
    let v = alexa(&s, initiate(&nursery, "s-0", &offer)).await;
    assert_eq!(alexa_error_type(&v), Some("NO_SUCH_ENDPOINT"), "{v}");
    let v = alexa(&s, initiate(&living, "s-1", "v=0 not sdp")).await;
    assert_eq!(alexa_error_type(&v), Some("INVALID_VALUE"), "{v}");
    let v = alexa(&s, initiate(&living, "s-1", &offer)).await;
    assert_eq!(
        v["event"]["header"]["name"], "AnswerGeneratedForSession",
        "{v}"
    );
    assert_eq!(v["event"]["header"]["correlationToken"], "corr-3");
    assert_eq!(v["event"]["payload"]["answer"]["format"], "SDP");
    let answer = v["event"]["payload"]["answer"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let (viewer, got) = play_answer(viewer, pending, &answer, 30).await;
    assert_camera(&got, &living, "alexa");
    let v = alexa(
        &s,
        rtc_session(
            &xa.access,
            &living,
            "SessionConnected",
            json!({"sessionId": "s-1"}),
        ),
    )
    .await;
    assert_eq!(v["event"]["header"]["name"], "SessionConnected", "{v}");
    // SessionDisconnected ends it.
    let after = frames_after(viewer, async {
        let v = alexa(
            &s,
            rtc_session(
                &xa.access,
                &living,
                "SessionDisconnected",
                json!({"sessionId": "s-1"}),
            ),
        )
        .await;
        assert_eq!(v["event"]["header"]["name"], "SessionDisconnected", "{v}");
        assert_eq!(v["event"]["payload"]["sessionId"], "s-1");
    })
    .await;
    assert!(
        after < Duration::from_millis(500),
        "frames {after:?} after SessionDisconnected"
    );

    // The alexa kill switch ends a playing session within a second.
    let (viewer, offer, pending) = Viewer::offer();
    let v = alexa(&s, initiate(&living, "s-2", &offer)).await;
    let answer: Value = v["event"]["payload"]["answer"]["value"].clone();
    let (viewer, got) = play_answer(viewer, pending, answer.as_str().unwrap(), 10).await;
    assert!(got.frames.len() >= 10);
    let after = frames_after(viewer, async {
        s.admin(&["suspend", "integration", "alexa"], None);
    })
    .await;
    println!("alexa webrtc: last frame {after:?} after `hearth suspend integration alexa`");
    assert!(
        after < Duration::from_secs(1),
        "frames {after:?} after the kill switch"
    );
    let (_, offer, _) = Viewer::offer();
    let v = alexa(&s, initiate(&living, "s-3", &offer)).await;
    assert_eq!(
        alexa_error_type(&v),
        Some("INSUFFICIENT_PERMISSIONS"),
        "{v}"
    );

    // And Google's kill switch, on a new link.
    let ga = link(&s, &google_p, OWNER_A, Some(&["Living room"])).await;
    let (_, v) = google(&s, &ga.access, get_camera_stream_as(&living, &["webrtc"])).await;
    let token = v["payload"]["commands"][0]["states"]["cameraStreamAuthToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (viewer, offer, pending) = Viewer::offer();
    let (st, _, body) =
        google_signal(&url, Some(&token), json!({"action": "offer", "sdp": offer})).await;
    assert_eq!(st, 200, "{body}");
    let (viewer, got) = play_answer(viewer, pending, body["sdp"].as_str().unwrap(), 30).await;
    assert_camera(&got, &living, "google, new link");
    let after = frames_after(viewer, async {
        s.admin(&["suspend", "integration", "google"], None);
    })
    .await;
    println!("google webrtc: last frame {after:?} after `hearth suspend integration google`");
    assert!(
        after < Duration::from_secs(1),
        "frames {after:?} after the kill switch"
    );
}
