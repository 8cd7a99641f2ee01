//! Account linking in headless Chromium, as Google Home does it: the platform opens
//! `/oauth/authorize` (PKCE S256), owner A signs in on that page, sees exactly A's
//! cameras, leaves one out and allows. The browser is sent back to the registered
//! redirect URI with the state and a code; the code (with the PKCE verifier) buys
//! tokens; SYNC over the fulfillment endpoint lists exactly the cameras A left
//! checked. In the app, the account page's Smart displays panel shows the link with
//! those cameras; Unlink there makes the same access token answer 401, and the
//! refresh token and the code buy nothing more.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use webdriver::Driver;

const CLIENT_ID: &str = "google-test-client";
const CLIENT_SECRET: &str = "a-client-secret-of-at-least-32-characters!!";
const REDIRECT_URI: &str = "https://oauth-redirect.googleusercontent.com/r/hearth-test";
/// RFC 7636 verifier: 43..128 unreserved characters.
const VERIFIER: &str = "hearth-consent-test-verifier.0123456789_abcdefghijklmnopqrstuvwxyz~";

/// Runs `script` in the page until `done` accepts its value; panics with `what` and
/// the last value after `secs`.
async fn wait_js(
    d: &Driver,
    script: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = d.js(script).await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: last value {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("not a string: {x}"))
                .to_string()
        })
        .collect()
}

async fn sync(s: &Server, access_token: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{}/integrations/google/fulfillment", s.base))
        .bearer_auth(access_token)
        .json(&json!({"requestId": "r1", "inputs": [{"intent": "action.devices.SYNC"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn token_request(s: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(format!("{}/oauth/token", s.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_links_google_home_to_chosen_cameras_and_unlinks() {
    let started = Instant::now();
    let s = Server::demo(320, 180);
    s.admin(
        &[
            "integration",
            "add",
            "google",
            "--client-id",
            CLIENT_ID,
            "--client-secret-stdin",
            "--redirect-uri",
            REDIRECT_URI,
        ],
        Some(&format!("{CLIENT_SECRET}\n")),
    );

    // What the consent page must offer: A's cameras, and none of B's.
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let a_cams = s.cameras(&a).await;
    let b_ids: BTreeSet<String> = s
        .cameras(&b)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        a_cams.len() >= 2,
        "the demo gives A several cameras: {a_cams:?}"
    );
    let a_by_id: Vec<(String, String)> = a_cams
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (left_out, left_out_name) = a_by_id[0].clone();
    let kept: BTreeSet<String> = a_by_id[1..].iter().map(|(id, _)| id.clone()).collect();

    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let authorize = reqwest::Url::parse_with_params(
        &format!("{}/oauth/authorize", s.base),
        [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("state", "xyz"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();

    let d = Driver::start().await;
    // The redirect target is Google's: never let the browser reach it (offline it
    // would fail anyway; online it would hand Google a code). The navigation still
    // happens, and WebDriver still reports the URL it went to.
    d.call(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        json!({"cmd": "Network.enable", "params": {}}),
    )
    .await;
    d.call(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        json!({"cmd": "Network.setBlockedURLs", "params": {"urls": ["*://oauth-redirect.googleusercontent.com/*"]}}),
    )
    .await;

    // The platform opens the authorization page; no session yet: sign in there.
    d.goto(authorize.as_str()).await;
    d.type_into("[data-testid=login-email]", OWNER_A).await;
    d.type_into("[data-testid=login-password]", PASSWORD).await;
    d.click("[data-testid=login-submit]").await;

    // The consent view, on the same page (not the grid), lists exactly A's cameras,
    // all checked.
    let offered = wait_js(
        &d,
        "const v = document.querySelector('[data-testid=consent-view]');
         if (!v || v.hidden) return null;
         return [...document.querySelectorAll('[data-testid=consent-camera]')].map(b => ({
           id: b.value, checked: b.checked,
           name: document.querySelector(`label[for='${b.id}']`).textContent }));",
        30,
        "the consent view never listed A's cameras",
        |v| v.as_array().is_some_and(|a| a.len() == a_by_id.len()),
    )
    .await;
    let offered = offered.as_array().unwrap();
    for (id, name) in &a_by_id {
        let box_ = offered
            .iter()
            .find(|o| o["id"] == id.as_str())
            .unwrap_or_else(|| panic!("camera {name} ({id}) not offered: {offered:?}"));
        assert_eq!(box_["checked"], true, "{name} not checked by default");
        assert!(
            box_["name"].as_str().unwrap().contains(name.as_str()),
            "{box_}"
        );
    }
    assert!(
        offered.iter().all(|o| {
            let id = o["id"].as_str().unwrap();
            !b_ids.contains(id) || a_by_id.iter().any(|(a_id, _)| a_id == id)
        }),
        "B's cameras offered to A: {offered:?}"
    );
    let title = d
        .js("return document.querySelector('[data-testid=consent-title]').textContent")
        .await;
    assert_eq!(title, "Google Home wants to show your cameras");
    let grid_hidden = d
        .js("return document.getElementById('grid-view').hidden")
        .await;
    assert_eq!(
        grid_hidden, true,
        "the grid is shown on the authorization page"
    );

    // Leave one camera out, allow.
    d.click(&format!("[data-testid=consent-camera][value='{left_out}']"))
        .await;
    let checked = d
        .js("return [...document.querySelectorAll('[data-testid=consent-camera]')].filter(b => b.checked).map(b => b.value)")
        .await;
    assert_eq!(ids(&checked), kept, "unchecking {left_out_name}");
    d.click("[data-testid=consent-allow]").await;

    // The browser goes to the redirect URI with the state and a code.
    let deadline = Instant::now() + Duration::from_secs(30);
    let landed = loop {
        let url = d.call(reqwest::Method::GET, "/url", json!({})).await;
        let url = url.as_str().unwrap_or_default().to_string();
        if url.starts_with(REDIRECT_URI) {
            break url;
        }
        assert!(
            Instant::now() < deadline,
            "never sent to the redirect URI; at {url}, consent error: {}",
            d.js("const e = document.querySelector('[data-testid=consent-error]'); return e ? e.textContent : null")
                .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let landed = reqwest::Url::parse(&landed).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            landed.scheme(),
            landed.host_str().unwrap(),
            landed.path()
        ),
        REDIRECT_URI
    );
    let query: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(param("state").as_deref(), Some("xyz"), "{landed}");
    assert_eq!(param("error"), None, "{landed}");
    let code = param("code").unwrap_or_else(|| panic!("no code in {landed}"));
    assert!(!code.is_empty());

    // The platform exchanges the code, proving it holds the verifier.
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code_verifier", VERIFIER),
    ];
    let (status, tokens) = token_request(&s, &exchange).await;
    assert_eq!(status, 200, "token exchange: {tokens}");
    let access = tokens["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    let expires_in = tokens["expires_in"].as_u64().expect("expires_in");
    assert!((1..=3600).contains(&expires_in), "expires_in {expires_in}");

    // SYNC lists exactly the cameras A left checked.
    let (status, synced) = sync(&s, &access).await;
    assert_eq!(status, 200, "SYNC: {synced}");
    let devices: BTreeSet<String> = synced["payload"]["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no payload.devices: {synced}"))
        .iter()
        .map(|dev| dev["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(devices, kept, "SYNC devices: {synced}");

    // Back in the app (same tab, same session): the account page's panel shows the
    // link and its cameras.
    d.goto(&format!("{}/#/account", s.base)).await;
    let shown = wait_js(
        &d,
        "const p = document.querySelector('[data-testid=integrations-panel]');
         if (!p || p.offsetParent === null || !p.querySelector('[data-testid=unlink-google]')) return null;
         return {
           text: p.querySelector('[data-testid=integration-google]').textContent,
           showing: [...p.querySelectorAll('[data-testid=link-cameras-google] [data-camera-id]')].map(e => e.dataset.cameraId),
           checked: [...p.querySelectorAll('[data-testid=link-camera-google]')].filter(b => b.checked).map(b => b.value),
         };",
        30,
        "the Smart displays panel never showed the Google link",
        |v| !v.is_null(),
    )
    .await;
    assert!(
        shown["text"].as_str().unwrap().contains("Google Home"),
        "{shown}"
    );
    assert_eq!(ids(&shown["showing"]), kept, "{shown}");
    assert_eq!(ids(&shown["checked"]), kept, "{shown}");

    // Unlink: the panel empties, and the platform's tokens stop working.
    d.click("[data-testid=unlink-google]").await;
    wait_js(
        &d,
        "const e = document.querySelector('[data-testid=integrations-empty]');
         return !!e && !e.hidden && !document.querySelector('[data-testid=unlink-google]');",
        30,
        "the panel never showed 'No smart displays linked' after Unlink",
        |v| *v == true,
    )
    .await;
    let empty = d
        .js("return document.querySelector('[data-testid=integrations-empty]').textContent")
        .await;
    assert_eq!(empty, "No smart displays linked");

    let (status, after) = sync(&s, &access).await;
    assert_eq!(status, 401, "SYNC after Unlink: {after}");
    let (status, refreshed) = token_request(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert!(
        (400..500).contains(&status),
        "refresh after Unlink: {status} {refreshed}"
    );
    let (status, replayed) = token_request(&s, &exchange).await;
    assert!(
        (400..500).contains(&status),
        "code replayed: {status} {replayed}"
    );

    eprintln!(
        "oauth consent scenario took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
