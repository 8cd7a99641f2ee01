//! The web app does what the API does, in headless Chromium: an owner shares a
//! camera by email, the invitee accepts in their own tab and watches, the owner
//! sees the share accepted and reads "Who watched" a page at a time, then revokes;
//! on the account page a user signs another session out, unlinks a smart display
//! and changes the password. Every step is checked against the API too.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
#[path = "common/webdriver.rs"]
mod webdriver;
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use webdriver::Driver;

/// The two scenarios each run a demo and a Chromium: one at a time on two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NEW_PASSWORD: &str = "correct horse battery staple";

/// The web app's page size for the access log (web/sharing.js).
const ACCESS_LOG_PAGE: u64 = 50;

async fn api_status(s: &Server, method: reqwest::Method, path: &str, token: &str) -> u16 {
    client()
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// With `HEARTH_SCREENSHOT_DIR` set, saves a screenshot of the top of the page
/// there as `name`.
async fn screenshot(d: &Driver, name: &str) {
    use base64::Engine as _;
    let Ok(dir) = std::env::var("HEARTH_SCREENSHOT_DIR") else {
        return;
    };
    d.js("window.scrollTo(0, 0)").await;
    let png = d.call(reqwest::Method::GET, "/screenshot", json!({})).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
}

/// A JS expression: the element for `css` (single quotes in `css` are escaped).
fn q(css: &str) -> String {
    format!("document.querySelector('{}')", css.replace('\'', "\\'"))
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_share_and_read_who_watched_in_the_browser() {
    let _one = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let has_living = |cams: Vec<Value>| cams.iter().any(|c| c["id"] == living.as_str());

    // The camera list says who owns what.
    let cams = s.cameras(&a).await;
    assert!(cams.iter().all(|c| c["access"] == "owner"), "{cams:?}");

    // --- The owner opens the camera, then its sharing page. ---
    let d = Driver::start().await;
    let owner_tab = d.tab().await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;
    d.click_checked(&format!(
        "[data-testid=camera-card][data-camera-id='{living}']"
    ))
    .await;
    d.wait_js(
        &format!(
            "const l = {}; return !!l && !l.hidden && l.getAttribute('href')",
            q("[data-testid=manage-link]")
        ),
        "owners get a link to sharing from the player",
    )
    .await;
    d.click_checked("[data-testid=manage-link]").await;
    let title = d
        .wait_js(
            &format!(
                "const v = {}; return v && !v.hidden && {}.offsetParent !== null && {}.textContent",
                q("[data-testid=manage-view]"),
                q("[data-testid=sharing-panel]"),
                q("[data-testid=manage-title]")
            ),
            "the sharing page never opened",
        )
        .await;
    assert_eq!(title, "Living room");

    // --- Invite B by email: the answer does not say whether B has an account. ---
    d.type_into("[data-testid=share-email]", OWNER_B).await;
    d.click_checked("[data-testid=share-submit]").await;
    let sent = d
        .wait_js(
            &format!("const e = {}; return e && e.textContent.includes('Invitation sent') && e.textContent", q("[data-testid=share-status]")),
            "no 'Invitation sent'",
        )
        .await;
    assert!(sent.as_str().unwrap().contains(OWNER_B), "{sent}");
    let pending = format!("[data-testid=share-row][data-email='{OWNER_B}'][data-status=pending]");
    d.wait_find(&pending).await;
    assert!(
        d.find(&format!("{pending} [data-testid=share-withdraw]"))
            .await
            .is_some(),
        "a pending invitation can be withdrawn"
    );
    assert!(
        !has_living(s.cameras(&b).await),
        "not shared before B accepts"
    );

    // --- B, in a tab of their own, sees the invitation and accepts it. ---
    let invitee_tab = d.new_tab().await;
    d.log_in(&s.base, OWNER_B, PASSWORD).await;
    let invitation = format!("[data-testid=invitation][data-camera-id='{living}']");
    let text = d
        .wait_js(
            &format!(
                "const i = {}; return i && i.offsetParent !== null && i.textContent",
                q(&invitation)
            ),
            "B never saw the invitation",
        )
        .await;
    assert!(text.as_str().unwrap().contains("Living room"), "{text}");
    screenshot(&d, "invitation.png").await;
    d.click_checked(&format!("{invitation} [data-testid=invitation-accept]"))
        .await;
    d.wait_js(
        &format!(
            "const e = {}; return e && e.textContent.includes('You can now watch Living room')",
            q("[data-testid=invitations-status]")
        ),
        "no word that the invitation was accepted",
    )
    .await;
    // The camera joins B's grid, marked as shared.
    let card = d
        .wait_js(
            &format!(
                "const c = {}; return c && c.textContent",
                q(&format!(
                    "[data-testid=camera-card][data-camera-id='{living}']"
                ))
            ),
            "the shared camera never joined B's grid",
        )
        .await;
    assert!(card.as_str().unwrap().contains("Shared by"), "{card}");
    assert!(
        has_living(s.cameras(&b).await),
        "B sees the camera after accepting"
    );
    assert!(
        s.cameras(&b)
            .await
            .iter()
            .any(|c| c["id"] == living.as_str() && c["access"] == "viewer")
    );
    // A viewer does not get the owner's page.
    d.goto(&format!("{}/#/camera/{living}/manage", s.base))
        .await;
    let lead = d
        .wait_js(
            &format!("const l = {}; return l && l.textContent.startsWith('Shared with you') && l.textContent", q("#manage-lead")),
            "a viewer was not told sharing is the owner's",
        )
        .await;
    assert!(lead.as_str().unwrap().contains("Shared with you"), "{lead}");
    assert_eq!(
        d.js(&format!("return {}.hidden", q("#manage-body"))).await,
        true
    );

    // B watches (through the API: a stream grant and its media).
    let grant = s.grant(&b, &living).await;
    let live = grant["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8");
    assert_eq!(
        media_get(&client(), &live).send().await.unwrap().status(),
        200
    );

    // --- Back to the owner: the share is accepted; Who watched names B. ---
    d.switch_to(&owner_tab).await;
    d.click_checked("[data-testid=access-log-refresh]").await;
    let accepted = format!("[data-testid=share-row][data-email='{OWNER_B}'][data-status=accepted]");
    d.wait_find(&accepted).await;
    assert!(
        d.find(&format!("{accepted} [data-testid=share-revoke]"))
            .await
            .is_some()
    );
    let rows = d
        .wait_js(
            "const rows = [...document.querySelectorAll('[data-testid=access-log-row]')];
             const b = rows.filter(r => r.children[1].textContent === 'owner-b@example.com');
             return b.length > 0 && rows.map(r => [...r.children].map(c => c.textContent));",
            "Who watched never named B",
        )
        .await;
    let rows = rows.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r[1] == OWNER_B && r[2] == "Web app" && r[3] == "Opened the live view"),
        "B's grant: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "owner-a@example.com (you)"),
        "the owner's own view: {rows:?}"
    );
    // The owner's view of the player ended when they left it: after the idle
    // time its row says how long it lasted.
    let deadline = Instant::now() + Duration::from_secs(45);
    let watched = loop {
        let v = d
            .js("const r = [...document.querySelectorAll('[data-testid=access-log-row][data-kind=view_end]')]
                   .find(r => r.children[1].textContent.endsWith('(you)'));
                 return r ? [...r.children].map(c => c.textContent) : null;")
            .await;
        if !v.is_null() {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no 'Watched' row for the owner's view"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        d.click_checked("[data-testid=access-log-refresh]").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(watched[3], "Watched", "{watched}");
    let how_long = watched[4].as_str().unwrap();
    assert!(
        how_long.ends_with(" s") || how_long.contains("min") || how_long == "under a second",
        "how long: {watched}"
    );

    // --- Older entries, a page at a time. ---
    for _ in 0..(ACCESS_LOG_PAGE + 10) {
        s.grant(&b, &living).await;
    }
    d.click_checked("[data-testid=access-log-refresh]").await;
    let first = d
        .wait_js(
            &format!(
                "const t = {}; const m = {};
                 return t && !t.hidden && Number(t.dataset.entries) === {ACCESS_LOG_PAGE} && !m.hidden && !m.disabled
                   && {{ rows: t.querySelectorAll('[data-testid=access-log-row]').length,
                        oldest: Date.parse([...t.querySelectorAll('time')].pop().getAttribute('datetime')) }}",
                q("[data-testid=access-log]"),
                q("[data-testid=access-log-more]")
            ),
            "the first page of Who watched (with Load older) never showed",
        )
        .await;
    d.click_checked("[data-testid=access-log-more]").await;
    let second = d
        .wait_js(
            &format!(
                "const t = {}; const n = Number(t.dataset.entries);
                 return n > {ACCESS_LOG_PAGE} && {{ entries: n,
                   rows: t.querySelectorAll('[data-testid=access-log-row]').length,
                   oldest: Date.parse([...t.querySelectorAll('time')].pop().getAttribute('datetime')),
                   cursor: performance.getEntriesByType('resource').some(e => /access-log\\?.*before=/.test(e.name)) }}",
                q("[data-testid=access-log]")
            ),
            "Load older never added older entries",
        )
        .await;
    eprintln!("access log: first page {first}, after Load older {second}");
    screenshot(&d, "sharing.png").await;
    assert_eq!(second["cursor"], true, "Load older follows x-next-page");
    assert!(
        second["rows"].as_u64() > first["rows"].as_u64(),
        "{first} {second}"
    );
    assert!(
        second["oldest"].as_f64().unwrap() < first["oldest"].as_f64().unwrap(),
        "older entries come after: {first} {second}"
    );

    // --- The owner revokes: B's camera list no longer has it. ---
    d.click_checked(&format!("{accepted} [data-testid=share-revoke]"))
        .await;
    d.wait_js(
        &format!(
            "return !{} && {}.textContent.includes('can no longer watch')",
            q(&accepted),
            q("[data-testid=share-status]")
        ),
        "the share was never shown revoked",
    )
    .await;
    assert!(
        !has_living(s.cameras(&b).await),
        "revoked: B no longer sees it"
    );
    assert_eq!(s.try_grant(&b, &living).await.0, 404);
    let _ = invitee_tab;
    eprintln!(
        "sharing scenario took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_page_signs_sessions_out_unlinks_and_changes_the_password() {
    let _one = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let s = Server::demo(160, 90);
    let google = hub_emulator::register(&s, "google");
    let linked = hub_emulator::link(&s, &google, OWNER_A, None).await;
    assert_eq!(
        hub_emulator::google(&s, &linked.access, hub_emulator::sync())
            .await
            .0,
        200
    );
    // Two more sessions of A's, as other devices would hold them.
    let phone = s.login(OWNER_A, PASSWORD).await;
    let tablet = s.login(OWNER_A, PASSWORD).await;
    let phone_id = client()
        .get(format!("{}/api/v1/sessions", s.base))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let d = Driver::start().await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;
    d.wait_find("[data-testid=camera-card]").await;
    d.click_checked("[data-testid=account-link]").await;

    // --- Where A is signed in: this browser (marked) and the others. ---
    let sessions = d
        .wait_js(
            "const l = document.querySelector('[data-testid=sessions-list]');
             const rows = l ? [...l.querySelectorAll('[data-testid=session]')] : [];
             return l && l.offsetParent !== null && rows.length >= 3
               && rows.map(r => ({ id: r.dataset.sessionId, current: r.dataset.current, text: r.textContent }));",
            "the account page never listed the sessions",
        )
        .await;
    let sessions = sessions.as_array().unwrap();
    let here: Vec<&Value> = sessions.iter().filter(|r| r["current"] == "true").collect();
    assert_eq!(here.len(), 1, "{sessions:?}");
    assert!(here[0]["text"].as_str().unwrap().contains("This browser"));
    assert!(
        here[0]["text"].as_str().unwrap().contains("Chrome"),
        "{sessions:?}"
    );
    let here_id = here[0]["id"].as_str().unwrap().to_string();
    assert!(
        sessions.iter().any(|r| r["id"] == phone_id.as_str()),
        "{sessions:?}"
    );

    // --- Sign the phone out from here: its token stops working at once. ---
    let phone_row = format!("[data-testid=session][data-session-id='{phone_id}']");
    d.click_checked(&format!("{phone_row} [data-testid=session-end]"))
        .await;
    d.wait_js(
        &format!("return !{}", q(&phone_row)),
        "the signed-out session stayed listed",
    )
    .await;
    assert_eq!(
        api_status(&s, reqwest::Method::GET, "/api/v1/cameras", &phone).await,
        401
    );
    assert_eq!(
        api_status(&s, reqwest::Method::GET, "/api/v1/cameras", &tablet).await,
        200
    );

    // --- Unlink Google Home: the platform's token stops working. ---
    d.wait_find("[data-testid=unlink-google]").await;
    d.click_checked("[data-testid=unlink-google]").await;
    d.wait_js(
        &format!(
            "const e = {}; return !!e && !e.hidden && !{}",
            q("[data-testid=integrations-empty]"),
            q("[data-testid=unlink-google]")
        ),
        "the display stayed linked",
    )
    .await;
    assert_eq!(
        hub_emulator::google(&s, &linked.access, hub_emulator::sync())
            .await
            .0,
        401
    );

    // --- Change the password: a wrong current one is refused, and says so. ---
    d.type_into("[data-testid=password-current]", "not my password")
        .await;
    d.type_into("[data-testid=password-new]", NEW_PASSWORD)
        .await;
    d.type_into("[data-testid=password-confirm]", NEW_PASSWORD)
        .await;
    d.click_checked("[data-testid=password-submit]").await;
    let err = d
        .wait_js(
            &format!(
                "const e = {}; return e && !e.hidden && e.textContent",
                q("[data-testid=password-error]")
            ),
            "a wrong current password was not reported",
        )
        .await;
    assert!(err.as_str().unwrap().contains("not correct"), "{err}");

    // The right one: changed; the other sessions end, this one carries on.
    d.type_into("[data-testid=password-current]", PASSWORD)
        .await;
    // The form kept the new password fields; type them again from empty.
    d.js(
        "document.querySelector('[data-testid=password-new]').value = '';
          document.querySelector('[data-testid=password-confirm]').value = '';",
    )
    .await;
    d.type_into("[data-testid=password-new]", NEW_PASSWORD)
        .await;
    d.type_into("[data-testid=password-confirm]", NEW_PASSWORD)
        .await;
    d.click_checked("[data-testid=password-submit]").await;
    d.wait_js(
        &format!(
            "const e = {}; return e && e.textContent.startsWith('Password changed')",
            q("[data-testid=password-status]")
        ),
        "the password change was not confirmed",
    )
    .await;
    assert_eq!(
        login_status_with(&client(), &s.base, OWNER_A, PASSWORD).await,
        401,
        "the old password"
    );
    assert_eq!(
        api_status(&s, reqwest::Method::GET, "/api/v1/cameras", &tablet).await,
        401
    );
    let browser_token = d
        .js("return JSON.parse(sessionStorage.getItem('hearth.session')).token")
        .await;
    let browser_token = browser_token.as_str().unwrap();
    assert_eq!(
        api_status(&s, reqwest::Method::GET, "/api/v1/cameras", browser_token).await,
        200,
        "this browser stays signed in"
    );
    // The list now has this browser only.
    let left = d
        .wait_js(
            "const rows = [...document.querySelectorAll('[data-testid=session]')];
             return rows.length === 1 && rows.map(r => r.dataset.sessionId);",
            "the other sessions stayed listed after the password change",
        )
        .await;
    assert_eq!(left, json!([here_id]));
    screenshot(&d, "account.png").await;
    assert_eq!(
        login_status_with(&client(), &s.base, OWNER_A, NEW_PASSWORD).await,
        200,
        "the new password"
    );
    // And the browser still works as a whole: back to the grid. (Few logins in
    // this scenario: they share the login's limit on one account and address.)
    d.click_checked(".brand").await;
    d.wait_find("[data-testid=camera-card]").await;
    eprintln!(
        "account scenario took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
