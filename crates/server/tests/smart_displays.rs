//! Cameras on smart displays, end to end, with a hub emulator playing Google's and
//! Alexa's part over real HTTP (see `common/hub_emulator.rs`) and a local recorder
//! standing in for Google's HomeGraph.
//!
//! Two households link Google Home; household A also links Alexa. The emulator
//! checks SYNC/QUERY/EXECUTE/DISCONNECT and Discovery/InitializeCameraStreams in
//! the documented shapes, plays every stream URL with ffmpeg (no headers, as a
//! display does) and checks from the decoded pictures that it is the right camera.
//! Then: A asking for B's device, a camera left out at consent, an offline camera,
//! expired and revoked tokens, refresh rotation and replay, RFC errors, HomeGraph
//! Request Sync and Report State, DISCONNECT, and the google kill switch.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
use common::*;
use hub_emulator::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;

/// What the HomeGraph stand-in received: (path, authorization, body).
type Calls = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn homegraph_recorder() -> (String, Calls) {
    use axum::extract::State;
    let calls: Calls = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(c): State<Calls>, req: axum::extract::Request| async move {
                let path = req.uri().path().to_string();
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                c.lock().unwrap().push((path, auth, v));
                axum::Json(json!({}))
            },
        )
        .with_state(calls.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, calls)
}

/// Waits until the recorder got a call on `method` for `agent` that `pred` accepts.
async fn wait_call(calls: &Calls, method: &str, agent: &str, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hit = calls.lock().unwrap().iter().any(|(p, auth, v)| {
            p.ends_with(method)
                && auth == "Bearer homegraph-test-token"
                && v["agentUserId"] == agent
                && pred(v)
        });
        if hit {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no HomeGraph {method} for {agent}: {:?}",
            calls.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `url` (no headers, as a display's player does) until it is refused;
/// returns how long that took.
async fn refused_within(url: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, _) = get_as(url, None).await;
        if status == 403 {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{url} still answers {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sets an OAuth token's expiry in the past, as an hour passing would.
fn expire_token(s: &Server, token: &str) {
    use sha2::Digest as _;
    let db = rusqlite::Connection::open(s.data_dir().join("hearth.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let hash = sha2::Sha256::digest(token.as_bytes()).to_vec();
    let n = db
        .execute(
            "UPDATE oauth_tokens SET expires_at = 0 WHERE token_hash = ?1",
            [hash],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Alexa's Discovery contract: a refused Discover lists no endpoints.
fn assert_no_endpoints(v: &Value) {
    assert_eq!(v["event"]["header"]["name"], "Discover.Response", "{v}");
    assert_eq!(v["event"]["payload"]["endpoints"], json!([]), "{v}");
}

fn assert_camera(url: &str, camera: &str) {
    let frames = play(url, W, H, 2.0);
    assert_signature(&frames, W, H, signature_of(camera));
}

#[tokio::test(flavor = "multi_thread")]
async fn google_home_and_alexa_show_each_household_only_its_own_cameras() {
    require_tool("ffmpeg");
    let (homegraph, calls) = homegraph_recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(
        &config,
        format!(
            "[google]\nhomegraph_url = \"{homegraph}\"\nhomegraph_token_command = \"echo homegraph-test-token\"\n"
        ),
    )
    .unwrap();
    let s = Server::demo_with(W, H, &["--config", path_str(&config)], &[]);
    let (garage, garage_ingest) = s.add_camera(OWNER_A, "Garage");
    let google_p = register(&s, "google");
    let alexa_p = register(&s, "alexa");
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    for (t, name) in [(&a, "Living room"), (&a, "Nursery"), (&b, "Front door")] {
        s.wait_online(t, name).await;
    }
    let living = s.camera_id(&a, "Living room").await;
    let nursery = s.camera_id(&a, "Nursery").await;
    let front = s.camera_id(&b, "Front door").await;

    // --- Linking: A leaves the Nursery out; B shares everything. ---
    let ga = link(&s, &google_p, OWNER_A, Some(&["Living room", "Garage"])).await;
    let gb = link(&s, &google_p, OWNER_B, None).await;

    // SYNC: each household's consented cameras, nothing else.
    let (st, sync_a) = google(&s, &ga.access, sync()).await;
    assert_eq!(st, 200, "{sync_a}");
    assert_eq!(sync_a["requestId"], "sync-1");
    let mut want = vec![living.clone(), garage.clone()];
    want.sort();
    assert_eq!(synced_ids(&sync_a), want);
    let (_, sync_b) = google(&s, &gb.access, sync()).await;
    assert_eq!(synced_ids(&sync_b), vec![front.clone()]);
    let dev = &sync_a["payload"]["devices"][0];
    assert_eq!(dev["type"], "action.devices.types.CAMERA");
    assert_eq!(dev["traits"], json!(["action.devices.traits.CameraStream"]));
    assert_eq!(
        dev["attributes"]["cameraStreamSupportedProtocols"],
        json!(["webrtc", "hls"])
    );
    assert_eq!(dev["attributes"]["cameraStreamNeedAuthToken"], true);
    assert_eq!(dev["willReportState"], true);
    let agent_a = sync_a["payload"]["agentUserId"]
        .as_str()
        .unwrap()
        .to_string();
    let agent_b = sync_b["payload"]["agentUserId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!agent_a.contains('@') && !agent_a.is_empty());
    assert_ne!(agent_a, agent_b);
    assert_eq!(
        google(&s, &ga.access, sync()).await.1["payload"]["agentUserId"],
        agent_a.as_str()
    );

    // QUERY: online, offline, left out, another household's.
    let (_, q) = google(
        &s,
        &ga.access,
        query(&[&living, &garage, &nursery, &front, "nonsense"]),
    )
    .await;
    let d = &q["payload"]["devices"];
    assert_eq!(d[&living], json!({"online": true, "status": "SUCCESS"}));
    assert_eq!(d[&garage]["errorCode"], "deviceOffline");
    assert_eq!(d[&garage]["online"], false);
    for id in [&nursery, &front, &"nonsense".to_string()] {
        assert_eq!(d[id]["errorCode"], "deviceNotFound", "{id}: {q}");
    }

    // EXECUTE GetCameraStream: a URL the display plays as it is, of the right camera.
    let r = google_stream(&s, &ga.access, &living).await;
    assert_eq!(r["status"], "SUCCESS", "{r}");
    assert_eq!(r["ids"], json!([living]));
    assert_eq!(r["states"]["cameraStreamProtocol"], "hls");
    let living_url = r["states"]["cameraStreamAccessUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(living_url.ends_with("/ts-index.m3u8"), "{living_url}");
    let auth_token = r["states"]["cameraStreamAuthToken"].as_str().unwrap();
    assert!(
        living_url.contains(auth_token),
        "the auth token is the device-scoped grant"
    );
    let r = client().get(&living_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "*",
        "a Cast receiver fetches from its own origin"
    );
    // A master playlist of MPEG-TS renditions (only main: this camera is too
    // small to publish a sub stream).
    let master = r.text().await.unwrap();
    assert!(
        master.contains("#EXT-X-STREAM-INF:") && master.lines().any(|l| l == "ts.m3u8"),
        "{master}"
    );
    let media_url = living_url.replace("/ts-index.m3u8", "/ts.m3u8");
    let playlist = String::from_utf8(get_as(&media_url, None).await.1).unwrap();
    assert!(
        playlist.contains("METHOD=AES-128") && playlist.contains(".ts"),
        "{playlist}"
    );
    assert!(
        !playlist.contains(".m4s"),
        "MPEG-TS for the default Cast receiver"
    );
    assert_camera(&living_url, &living);
    let r = google_stream(&s, &gb.access, &front).await;
    let front_url = r["states"]["cameraStreamAccessUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert_camera(&front_url, &front);

    // A's link asking for B's camera, the camera A left out, an offline one.
    for (id, code) in [
        (&front, "deviceNotFound"),
        (&nursery, "deviceNotFound"),
        (&garage, "deviceOffline"),
    ] {
        let r = google_stream(&s, &ga.access, id).await;
        assert_eq!(
            (r["status"].as_str(), r["errorCode"].as_str()),
            (Some("ERROR"), Some(code)),
            "{id}: {r}"
        );
    }
    // Commands and protocols we do not serve.
    let mut cmd = get_camera_stream(&living);
    cmd["inputs"][0]["payload"]["commands"][0]["execution"][0]["command"] =
        json!("action.devices.commands.OnOff");
    assert_eq!(
        google(&s, &ga.access, cmd).await.1["payload"]["commands"][0]["errorCode"],
        "functionNotSupported"
    );
    let mut dash = get_camera_stream(&living);
    dash["inputs"][0]["payload"]["commands"][0]["execution"][0]["params"]["SupportedStreamProtocols"] =
        json!(["dash"]);
    assert_eq!(
        google(&s, &ga.access, dash).await.1["payload"]["commands"][0]["errorCode"],
        "functionNotSupported"
    );
    // Malformed fulfillment bodies are 400s, an unknown token a 401.
    assert_eq!(google(&s, &ga.access, json!({"inputs": "x"})).await.0, 400);
    assert_eq!(google(&s, "not-a-token", sync()).await.0, 401);

    // --- Alexa: A links it for the Nursery and the Garage. ---
    let xa = link(&s, &alexa_p, OWNER_A, Some(&["Nursery", "Garage"])).await;
    assert_eq!(
        google(&s, &xa.access, sync()).await.0,
        401,
        "an Alexa token is not a Google one"
    );
    let disc = alexa(&s, discover(&xa.access)).await;
    assert_eq!(
        disc["event"]["header"]["name"], "Discover.Response",
        "{disc}"
    );
    let endpoints = disc["event"]["payload"]["endpoints"].as_array().unwrap();
    let mut ids: Vec<&str> = endpoints
        .iter()
        .map(|e| e["endpointId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![nursery.as_str(), garage.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let e = &endpoints[0];
    assert_eq!(e["displayCategories"], json!(["CAMERA"]));
    let csc = e["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["interface"] == "Alexa.CameraStreamController")
        .expect("CameraStreamController");
    let configs: Vec<&Value> = csc["cameraStreamConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["protocols"])
        .collect();
    assert_eq!(
        configs,
        [&json!(["RTSP"]), &json!(["HLS"])],
        "what we serve, RTSP first (alexa_rtsp.rs plays it)"
    );

    let init = alexa(&s, initialize_streams(&xa.access, &nursery)).await;
    assert_eq!(init["event"]["header"]["name"], "Response", "{init}");
    assert_eq!(init["event"]["header"]["correlationToken"], "corr-2");
    let stream = &init["event"]["payload"]["cameraStreams"][0];
    let nursery_url = stream["uri"].as_str().unwrap().to_string();
    assert!(stream["expirationTime"].as_str().unwrap().ends_with('Z'));
    assert_camera(&nursery_url, &nursery);
    let image = init["event"]["payload"]["imageUri"].as_str().unwrap();
    let (st, jpeg) = get_as(image, None).await;
    assert_eq!(st, 200);
    let still = decode_image(&jpeg, W, H);
    assert_signature(&[still], W, H, signature_of(&nursery));
    for (id, kind) in [
        (&living, "NO_SUCH_ENDPOINT"),
        (&front, "NO_SUCH_ENDPOINT"),
        (&garage, "ENDPOINT_UNREACHABLE"),
    ] {
        let v = alexa(&s, initialize_streams(&xa.access, id)).await;
        assert_eq!(alexa_error_type(&v), Some(kind), "{id}: {v}");
    }
    let v = alexa(&s, initialize_streams(&ga.access, &nursery)).await;
    assert_eq!(
        alexa_error_type(&v),
        Some("INVALID_AUTHORIZATION_CREDENTIAL")
    );
    let accept = alexa(&s, json!({
        "header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant", "payloadVersion": "3", "messageId": "m"},
        "payload": {"grant": {"type": "OAuth2.AuthorizationCode", "code": "amazon-code"},
                    "grantee": {"type": "BearerToken", "token": xa.access}},
    })).await;
    assert_eq!(
        (
            accept["event"]["header"]["namespace"].as_str(),
            accept["event"]["header"]["name"].as_str(),
            accept["event"]["payload"]["type"].as_str()
        ),
        (
            Some("Alexa.Authorization"),
            Some("ErrorResponse"),
            Some("ACCEPT_GRANT_FAILED")
        ),
        "Hearth sends no Alexa events, so it does not accept the grant: {accept}"
    );

    // Every integration view is in the owner's access log under its name.
    tokio::time::sleep(Duration::from_millis(1500)).await; // the audit writer's batch
    for (cam, integration) in [(&living, "google"), (&nursery, "alexa")] {
        let log = s.access_log(&a, cam).await;
        assert!(
            log.iter()
                .any(|e| e["integration"] == integration && e["viewer"] == OWNER_A),
            "{integration} views of {cam} not in the access log: {log:?}"
        );
    }

    // --- Tokens: expiry, refresh rotation, revocation. ---
    expire_token(&s, &ga.access);
    assert_eq!(
        google(&s, &ga.access, sync()).await.0,
        401,
        "an expired access token"
    );
    expire_token(&s, &xa.access);
    let v = alexa(&s, initialize_streams(&xa.access, &nursery)).await;
    assert_eq!(
        alexa_error_type(&v),
        Some("EXPIRED_AUTHORIZATION_CREDENTIAL"),
        "Alexa is told to refresh: {v}"
    );
    assert_no_endpoints(&alexa(&s, discover(&xa.access)).await);
    let (st, v) = refresh(&s, &google_p, &ga.refresh).await;
    assert_eq!(st, 200, "{v}");
    let ga = refreshed(&v);
    assert_eq!(google(&s, &ga.access, sync()).await.0, 200);
    let (st, v) = refresh(&s, &alexa_p, &xa.refresh).await;
    assert_eq!(st, 200, "{v}");
    let xa = refreshed(&v);
    // RFC errors, never a 500.
    let bad_secret = Platform {
        secret: "wrong".repeat(8),
        ..google_p.clone()
    };
    let (st, v) = refresh(&s, &bad_secret, &ga.refresh).await;
    assert_eq!((st, v["error"].as_str()), (401, Some("invalid_client")));
    let (st, v) = token_request(&s, &google_p, &[("grant_type", "password")]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (st, v) = token_request(&s, &google_p, &[("grant_type", "authorization_code")]).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
    let (st, v) = token_request(
        &s,
        &google_p,
        &[
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("redirect_uri", GOOGLE_REDIRECT),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    let (_, challenge) = pkce();
    let redirect = consent(&s, &google_p, OWNER_B, None, "s", &challenge).await;
    let code = redirect_params(&redirect)["code"].clone();
    let (wrong_verifier, _) = pkce();
    let (st, v) = token_request(
        &s,
        &google_p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", GOOGLE_REDIRECT),
            ("code_verifier", &wrong_verifier),
        ],
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "PKCE mismatch"
    );
    // The authorization page: wrong client or redirect URI is shown, not redirected.
    for q in [
        format!(
            "response_type=code&client_id=nobody&redirect_uri={}",
            encode(GOOGLE_REDIRECT)
        ),
        format!(
            "response_type=code&client_id={}&redirect_uri={}",
            google_p.client_id,
            encode("https://evil.example/cb")
        ),
    ] {
        let r = no_redirects()
            .get(format!("{}/oauth/authorize?{q}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
    let r = no_redirects()
        .get(format!(
            "{}/oauth/authorize?response_type=token&client_id={}&redirect_uri={}&state=k",
            s.base,
            google_p.client_id,
            encode(GOOGLE_REDIRECT)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with(GOOGLE_REDIRECT)
            && loc.contains("error=unsupported_response_type")
            && loc.contains("state=k"),
        "{loc}"
    );

    // --- HomeGraph: online/offline and consent changes are reported. ---
    let sim = simulate(&garage_ingest, "Garage", (W, H), &[]);
    wait_call(&calls, "reportStateAndNotification", &agent_a, |v| {
        v["payload"]["devices"]["states"][&garage]["online"] == true
    })
    .await;
    let (_, q) = google(&s, &ga.access, query(&[&garage])).await;
    assert_eq!(q["payload"]["devices"][&garage]["status"], "SUCCESS");
    drop(sim);
    wait_call(&calls, "reportStateAndNotification", &agent_a, |v| {
        v["payload"]["devices"]["states"][&garage]["online"] == false
    })
    .await;
    // Leaving a camera out later: its live stream stops, Google is told to re-sync.
    let r = client()
        .put(format!("{}/api/v1/integrations/google/cameras", s.base))
        .bearer_auth(&a)
        .json(&json!({"cameras": [garage]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let took = refused_within(&living_url, Duration::from_secs(2)).await;
    println!("stream refused {took:?} after its camera was left out");
    wait_call(&calls, "requestSync", &agent_a, |_| true).await;
    assert_eq!(
        synced_ids(&google(&s, &ga.access, sync()).await.1),
        vec![garage.clone()]
    );
    calls.lock().unwrap().clear();
    let r = client()
        .put(format!("{}/api/v1/integrations/google/cameras", s.base))
        .bearer_auth(&a)
        .json(&json!({"cameras": [garage, living]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    wait_call(&calls, "requestSync", &agent_a, |_| true).await;
    calls.lock().unwrap().clear();
    let r = client()
        .patch(format!("{}/api/v1/cameras/{living}", s.base))
        .bearer_auth(&a)
        .json(&json!({"name": "Lounge"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_call(&calls, "requestSync", &agent_a, |_| true).await;
    assert!(
        google(&s, &ga.access, sync()).await.1["payload"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"]["name"] == "Lounge")
    );
    // A camera deleted by its owner: Google is told to re-sync, and forgets it.
    calls.lock().unwrap().clear();
    let r = client()
        .delete(format!("{}/api/v1/cameras/{garage}", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    wait_call(&calls, "requestSync", &agent_a, |_| true).await;
    assert_eq!(
        synced_ids(&google(&s, &ga.access, sync()).await.1),
        vec![living.clone()]
    );

    // --- The kill switch: google only, live sessions end within a second. ---
    let r = google_stream(&s, &ga.access, &living).await;
    let live_url = r["states"]["cameraStreamAccessUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get_as(&live_url, None).await.0, 200);
    let t0 = Instant::now();
    s.admin(&["suspend", "integration", "google"], None);
    let took = refused_within(&live_url, Duration::from_secs(2)).await + t0.elapsed();
    println!("google stream refused {took:?} after `hearth suspend integration google` started");
    assert!(
        took < Duration::from_millis(1000) + Duration::from_millis(500),
        "{took:?}"
    );
    let (st, v) = google(&s, &ga.access, sync()).await;
    assert_eq!(
        (st, v["payload"]["errorCode"].as_str()),
        (200, Some("transientError")),
        "{v}"
    );
    let (_, challenge) = pkce();
    let r = no_redirects()
        .get(format!(
            "{}/oauth/authorize?{}",
            s.base,
            authorize_query(&google_p, "k", &challenge)
        ))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.contains("error=temporarily_unavailable"),
        "no new link starts under the kill switch: {loc}"
    );
    assert_eq!(
        get_as(&nursery_url, None).await.0,
        200,
        "alexa is unaffected"
    );
    let web = s.grant(&a, &living).await;
    assert_eq!(
        get(web["hls_url"].as_str().unwrap()).await.0,
        200,
        "the web app is unaffected"
    );
    s.admin(&["resume", "integration", "google"], None);

    // --- Revocation (RFC 7009), a replayed refresh token, DISCONNECT. ---
    let revoke = |p: &Platform, token: &str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("token", token),
                ("client_id", &p.client_id),
                ("client_secret", &p.secret),
            ])
            .finish();
        let url = format!("{}/oauth/revoke", s.base);
        async move {
            let r = client()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(revoke(&alexa_p, &xa.access).await.0, 200);
    let v = alexa(&s, initialize_streams(&xa.access, &nursery)).await;
    assert_eq!(
        alexa_error_type(&v),
        Some("INVALID_AUTHORIZATION_CREDENTIAL"),
        "a revoked access token"
    );
    assert_no_endpoints(&alexa(&s, discover(&xa.access)).await);
    assert_eq!(revoke(&alexa_p, &xa.refresh).await.0, 200);
    refused_within(&nursery_url, Duration::from_secs(2)).await;
    assert_eq!(
        refresh(&s, &alexa_p, &xa.refresh).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        revoke(&alexa_p, "unknown-token").await.0,
        200,
        "RFC 7009: unknown tokens are fine"
    );

    let (st, _) = refresh(&s, &google_p, &gb.refresh).await;
    assert_eq!(st, 200);
    // The platform lost our answer and retries: fine while the new token is unused.
    let (st, v) = refresh(&s, &google_p, &gb.refresh).await;
    assert_eq!(st, 200, "a retried refresh: {v}");
    let (st, v) = refresh(&s, &google_p, &refreshed(&v).refresh).await;
    assert_eq!(st, 200, "{v}");
    let gb2 = refreshed(&v);
    let (st, v) = refresh(&s, &google_p, &gb.refresh).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "a replayed refresh token"
    );
    assert_eq!(
        google(&s, &gb2.access, sync()).await.0,
        401,
        "the replay revoked the link"
    );
    refused_within(&front_url, Duration::from_secs(2)).await;

    // Google may DISCONNECT with an access token that has expired meanwhile.
    expire_token(&s, &ga.access);
    assert_eq!(google(&s, &ga.access, sync()).await.0, 401);
    let (st, v) = google(&s, &ga.access, disconnect()).await;
    assert_eq!((st, v), (200, json!({})));
    assert_eq!(google(&s, &ga.access, sync()).await.0, 401);
    refused_within(&live_url, Duration::from_secs(2)).await;
    let (st, v) = refresh(&s, &google_p, &ga.refresh).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    // Another client presenting a link's refresh token: it leaked; the link goes.
    let gb3 = link(&s, &google_p, OWNER_B, None).await;
    let (st, v) = refresh(&s, &alexa_p, &gb3.refresh).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client's token"
    );
    assert_eq!(google(&s, &gb3.access, sync()).await.0, 401);
    // ...and another client asking to revoke a link's token (RFC 7009 2.1).
    let gb4 = link(&s, &google_p, OWNER_B, None).await;
    let (st, v) = revoke(&alexa_p, &gb4.access).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    assert_eq!(google(&s, &gb4.access, sync()).await.0, 401);

    // HTTP Basic client authentication, with a secret that form-encoding changes:
    // accepted raw (as many clients send it) and form-encoded (RFC 6749 2.3.1).
    let plus_secret = "a+b/c=d%e".repeat(4);
    s.admin(
        &[
            "integration",
            "add",
            "alexa",
            "--client-id",
            &alexa_p.client_id,
            "--client-secret-stdin",
            "--redirect-uri",
            ALEXA_REDIRECT,
        ],
        Some(&format!("{plus_secret}\n")),
    );
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    for (secret, want) in [
        (plus_secret.clone(), "invalid_grant"),
        (enc(&plus_secret), "invalid_grant"),
        ("wrong".repeat(8), "invalid_client"),
    ] {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{secret}", alexa_p.client_id));
        let r = client()
            .post(format!("{}/oauth/token", s.base))
            .header("authorization", format!("basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&refresh_token=made-up")
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], want, "{secret}");
    }

    let links: Vec<Value> = client()
        .get(format!("{}/api/v1/integrations", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(links.is_empty(), "{links:?}");
}

/// Smart displays and renditions. Alexa names the picture sizes a display takes
/// in `InitializeCameraStreams` (a small screen, or a display on a constrained
/// network, asks for less): a display that asks for less than the main picture
/// gets the sub rendition, over RTSP and over HLS, with the sub still, and a
/// display that asks for the main size gets main. Discovery lists both sizes.
/// Google's request says nothing of the network, so the Cast URL is a master of
/// both MPEG-TS renditions and the receiver's own estimate picks. Every stream
/// decodes to the linked camera's picture.
#[tokio::test(flavor = "multi_thread")]
async fn a_display_that_asks_for_a_small_picture_gets_the_sub_rendition() {
    require_tool("ffmpeg");
    // The harness publishes a half-size sub stream.
    const MW: u32 = 512;
    const MH: u32 = 288;
    const SW: u32 = MW / 2;
    const SH: u32 = MH / 2;
    let s = Server::demo(MW, MH);
    let alexa_p = register(&s, "alexa");
    let google_p = register(&s, "google");
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let xa = link(&s, &alexa_p, OWNER_A, Some(&["Living room"])).await;

    // Discovery lists both sizes, main first, once the sub stream is live.
    let want = json!([{"width": MW, "height": MH}, {"width": SW, "height": SH}]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let disc = alexa(&s, discover(&xa.access)).await;
        let e = &disc["event"]["payload"]["endpoints"][0];
        let csc = e["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["interface"] == "Alexa.CameraStreamController")
            .unwrap()
            .clone();
        let sizes = &csc["cameraStreamConfigurations"][0]["resolutions"];
        if *sizes == want {
            break;
        }
        assert!(Instant::now() < deadline, "discovery sizes: {disc}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let init = |protocol: &str, w: u32, h: u32| {
        let mut d = initialize_streams(&xa.access, &living);
        d["payload"]["cameraStreams"][0]["protocol"] = json!(protocol);
        d["payload"]["cameraStreams"][0]["resolution"] = json!({"width": w, "height": h});
        d
    };
    for (protocol, asked, path, size) in [
        ("RTSP", (1280, 720), "/live", (MW, MH)),
        ("RTSP", (320, 180), "/sub", (SW, SH)),
        ("HLS", (MW, MH), "/ts.m3u8", (MW, MH)),
        ("HLS", (320, 180), "/sub-ts.m3u8", (SW, SH)),
    ] {
        let v = alexa(&s, init(protocol, asked.0, asked.1)).await;
        let what = format!("{protocol} asking for {}x{}", asked.0, asked.1);
        let stream = &v["event"]["payload"]["cameraStreams"][0];
        let url = stream["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {v}"))
            .to_string();
        assert!(url.ends_with(path), "{what}: {url}");
        assert_eq!(
            stream["resolution"],
            json!({"width": size.0, "height": size.1}),
            "{what}"
        );
        let probed = tokio::task::spawn_blocking({
            let url = url.clone();
            move || ffprobe_video(&url)
        })
        .await
        .unwrap();
        assert_eq!((probed.1, probed.2), size, "{what}: the picture served");
        let frames = tokio::task::spawn_blocking(move || play(&url, size.0, size.1, 1.5))
            .await
            .unwrap();
        assert_signature(&frames, size.0, size.1, signature_of(&living));
        let image = v["event"]["payload"]["imageUri"].as_str().unwrap();
        let still = if size == (SW, SH) {
            "/sub-snapshot.jpg"
        } else {
            "/snapshot.jpg"
        };
        assert!(image.ends_with(still), "{what}: {image}");
        let (st, jpeg) = get_as(image, None).await;
        assert_eq!(st, 200, "{what}");
        let still = decode_image(&jpeg, size.0, size.1);
        assert_signature(&[still], size.0, size.1, signature_of(&living));
    }

    // Google: a master of both MPEG-TS renditions, with their sizes.
    let ga = link(&s, &google_p, OWNER_A, Some(&["Living room"])).await;
    let r = google_stream(&s, &ga.access, &living).await;
    let url = r["states"]["cameraStreamAccessUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let master = String::from_utf8(get_as(&url, None).await.1).unwrap();
    let variants: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(inf, _)| inf.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    for ((inf, uri), (name, w, h)) in variants
        .into_iter()
        .zip([("ts.m3u8", MW, MH), ("sub-ts.m3u8", SW, SH)])
    {
        assert_eq!(uri, name, "{master}");
        assert!(
            inf.contains(&format!("RESOLUTION={w}x{h}")) && inf.contains("BANDWIDTH="),
            "{master}"
        );
        let variant = url.replace("ts-index.m3u8", name);
        let frames = tokio::task::spawn_blocking(move || play(&variant, w, h, 1.5))
            .await
            .unwrap();
        assert_signature(&frames, w, h, signature_of(&living));
    }
}
