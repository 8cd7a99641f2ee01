//! Hostile input on the smart-display endpoints, the ones the internet reaches
//! through the platforms' clouds: the OAuth authorization, token and revocation
//! endpoints, the consent API, Google's fulfillment and Alexa's directives. Junk
//! bytes, truncated and wrongly typed JSON, repeated and oversized parameters,
//! broken percent-encoding and bodies over the limit each get a 4xx (or the
//! protocol's own error in a 200, where the protocol says so), never a 5xx; and
//! afterwards the link still works and nothing it may not see was revealed.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
use common::*;
use hub_emulator::*;
use serde_json::{Value, json};

/// Posts `body` with `content_type` (and `bearer`); the status and body text.
async fn post(url: &str, content_type: &str, bearer: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut r = client()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    match r.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        // The server may answer 413 and close while an oversized body is still
        // being written: status 0, "closed".
        Err(e) => (0, format!("closed: {e}")),
    }
}

fn assert_refused_cleanly(what: &str, status: u16, body: &str) {
    let closed_on_oversize = status == 0 && what.ends_with("over the body limit");
    assert!(
        (200..500).contains(&status) || closed_on_oversize,
        "{what}: HTTP {status} {body}"
    );
    assert!(!body.contains("panicked"), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_on_smart_display_endpoints_gets_4xx_never_5xx() {
    let s = Server::demo(320, 180);
    let google_p = register(&s, "google");
    let alexa_p = register(&s, "alexa");
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let front = s.camera_id(&b, "Front door").await;
    let ga = link(&s, &google_p, OWNER_A, Some(&["Living room"])).await;
    let xa = link(&s, &alexa_p, OWNER_A, Some(&["Living room"])).await;

    let big = vec![b'a'; 4 << 20];
    let mut junk: Vec<(String, Vec<u8>)> = (0..6)
        .map(|seed| (format!("random {seed}"), pseudo_random(seed, 64 << seed)))
        .collect();
    for (name, body) in [
        ("empty", ""),
        ("truncated", r#"{"requestId":"x","inputs":[{"intent":"#),
        ("array", "[1,2,3]"),
        ("string", r#""hello""#),
        ("null", "null"),
        ("inputs object", r#"{"requestId":"x","inputs":{}}"#),
        ("inputs empty", r#"{"requestId":"x","inputs":[]}"#),
        (
            "intent number",
            r#"{"requestId":"x","inputs":[{"intent":7}]}"#,
        ),
        (
            "unknown intent",
            r#"{"requestId":"x","inputs":[{"intent":"action.devices.REBOOT"}]}"#,
        ),
        (
            "devices null",
            r#"{"requestId":"x","inputs":[{"intent":"action.devices.QUERY","payload":{"devices":null}}]}"#,
        ),
        (
            "device id number",
            r#"{"requestId":"x","inputs":[{"intent":"action.devices.QUERY","payload":{"devices":[{"id":5}]}}]}"#,
        ),
        (
            "execution params wrong type",
            r#"{"requestId":"x","inputs":[{"intent":"action.devices.EXECUTE","payload":{"commands":[{"devices":[{"id":"x"}],"execution":[{"command":"action.devices.commands.GetCameraStream","params":{"SupportedStreamProtocols":"hls"}}]}]}}]}"#,
        ),
        (
            "directive without header",
            r#"{"directive":{"payload":{}}}"#,
        ),
        (
            "directive scope token number",
            r#"{"directive":{"header":{"namespace":"Alexa.Discovery","name":"Discover"},"payload":{"scope":{"token":5}}}}"#,
        ),
        (
            "endpoint id number",
            r#"{"directive":{"header":{"namespace":"Alexa.CameraStreamController","name":"InitializeCameraStreams"},"endpoint":{"endpointId":1}}}"#,
        ),
        ("deep nesting", &"[".repeat(100_000)),
        ("bad utf-8 in string", "{\"requestId\":\"\u{fffd}\"}"),
    ] {
        junk.push((name.to_string(), body.as_bytes().to_vec()));
    }
    junk.push(("not utf-8".into(), vec![b'{', 0xff, 0xfe, b'}']));
    junk.push(("over the body limit".into(), big.clone()));

    let fulfillment = format!("{}/integrations/google/fulfillment", s.base);
    let directives = format!("{}/integrations/alexa/directives", s.base);
    let consent = format!("{}/api/v1/oauth/authorize", s.base);
    for (name, body) in &junk {
        for (url, bearer) in [
            (&fulfillment, Some(ga.access.as_str())),
            (&directives, None),
            (&consent, Some(a.as_str())),
        ] {
            let (st, text) = post(url, "application/json", bearer, body.clone()).await;
            assert_refused_cleanly(&format!("{url} {name}"), st, &text);
            assert!(
                !text.contains(&front),
                "{url} {name}: another household's camera in {text}"
            );
        }
    }

    // The token and revocation endpoints take forms.
    let token = format!("{}/oauth/token", s.base);
    let revoke = format!("{}/oauth/revoke", s.base);
    let creds = format!(
        "client_id={}&client_secret={}",
        google_p.client_id, google_p.secret
    );
    let mut forms: Vec<(String, Vec<u8>)> = junk.clone();
    for (name, form) in [
        (
            "repeated grant_type",
            format!("grant_type=refresh_token&grant_type=authorization_code&{creds}"),
        ),
        (
            "broken percent-encoding",
            format!("grant_type=refresh_token&refresh_token=%zz%&{creds}"),
        ),
        ("no equals", format!("grant_type&refresh_token&{creds}")),
        (
            "huge token",
            format!(
                "grant_type=refresh_token&refresh_token={}&{creds}",
                "x".repeat(100_000)
            ),
        ),
        (
            "code without verifier shape",
            format!("grant_type=authorization_code&code=abc&code_verifier=short&{creds}"),
        ),
        (
            "two auth methods",
            format!("grant_type=refresh_token&refresh_token=x&{creds}&client_secret=again"),
        ),
        ("token empty", format!("token=&{creds}")),
        (
            "nul bytes",
            format!("grant_type=refresh_token&refresh_token=%00%00&{creds}"),
        ),
    ] {
        forms.push((name.to_string(), form.into_bytes()));
    }
    for (name, body) in &forms {
        for url in [&token, &revoke] {
            let (st, text) =
                post(url, "application/x-www-form-urlencoded", None, body.clone()).await;
            assert_refused_cleanly(&format!("{url} {name}"), st, &text);
            if st != 200 && st != 0 {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert!(
                    v["error"].is_string() || st == 413,
                    "{url} {name}: an RFC error object, got HTTP {st} {text}"
                );
            }
        }
    }
    // Basic credentials that are not base64, not UTF-8, or have no colon.
    for basic in ["!!!", "/w==", "bm9jb2xvbg==", ""] {
        let r = client()
            .post(&token)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&refresh_token=x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "Basic {basic}");
    }

    // The authorization page with hostile queries: an error page or a redirect
    // to the registered URI, nothing else.
    let long_state = "s".repeat(5000);
    for q in [
        "%zz".to_string(),
        "client_id=%ff%fe".to_string(),
        format!("client_id={}&client_id=again", google_p.client_id),
        format!("client_id={}", "c".repeat(20_000)),
        format!(
            "response_type=code&client_id={}&redirect_uri={}&state={long_state}",
            google_p.client_id,
            encode(GOOGLE_REDIRECT)
        ),
        format!(
            "response_type=code&client_id={}&redirect_uri={}&code_challenge=abc&code_challenge_method=S256",
            google_p.client_id,
            encode(GOOGLE_REDIRECT)
        ),
    ] {
        let r = no_redirects()
            .get(format!("{}/oauth/authorize?{q}", s.base))
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        assert!(
            st == 400
                || st == 431
                || (st == 303
                    && loc
                        .as_deref()
                        .is_some_and(|l| l.starts_with(GOOGLE_REDIRECT))),
            "authorize {}: HTTP {st} {loc:?}",
            &q[..q.len().min(80)]
        );
    }

    // Still standing, and still answering the link with its own camera only.
    let (st, v) = google(&s, &ga.access, sync()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(synced_ids(&v), vec![living.clone()]);
    let disc = alexa(&s, discover(&xa.access)).await;
    assert_eq!(
        disc["event"]["payload"]["endpoints"][0]["endpointId"],
        json!(living)
    );
    assert!(!s.log().contains("panicked"), "a handler panicked");
}
