//! The web player's own provenance check, proved in real Chromium against the real
//! server with foreign media actually reaching the browser.
//!
//! The egress door never sends a foreign segment, so this test opens it: the server
//! runs with `HEARTH_FAULT_DOOR_OPEN=1` (the door skips its provenance comparison,
//! and only that) and `HEARTH_FAULT_P=1 HEARTH_FAULT_POINTS=hub` (every stream-hub
//! lookup answers with another camera's hub; no other fault). With exactly two
//! cameras, A's owner asking for A under a grant for A gets B's playlists, B's init
//! segment, B's key and B's segments: they decrypt (B's key, B's IVs) and carry B's
//! in-band provenance, so the player's check is what stands between B's pictures and
//! A's owner. The test asserts the player refuses before appending anything, shows
//! "Stream unavailable", and reports the foreign camera to the server, which records
//! it in A's access log.
//!
//! Control, first: the same setup with the door open but no faults plays A's own
//! pictures, so the refusal is the check's doing, not a broken stream or page.
//!
//! Both ways the web app plays are proved: HLS (the check reads each segment's
//! `uuid` box before it is appended) and WebRTC (the check reads each frame's
//! SEI in an encoded transform before it is decoded).

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use webdriver::Driver;

const W: u32 = 320;
const H: u32 = 180;

fn simulate(ingest: &str, signature: u32) -> Sim {
    common::simulate(
        ingest,
        "cam",
        (W, H),
        &["--signature", &signature.to_string()],
    )
}

/// A server with two households of one publishing camera each, and Chromium signed
/// in as A's owner.
struct Setup {
    s: Server,
    a: String,
    b: String,
    token_a: String,
    d: Driver,
    _sims: [Sim; 2],
}

async fn setup(env: &[(&str, &str)]) -> Setup {
    let s = Server::serve_with_env(env);
    for owner in [OWNER_A, OWNER_B] {
        s.admin(
            &["user", "add", "--email", owner],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let (a, ingest_a) = s.add_camera(OWNER_A, "Front door");
    let (b, ingest_b) = s.add_camera(OWNER_B, "Back yard");
    assert_ne!(signature_of(&a), signature_of(&b));
    let sims = [
        simulate(&ingest_a, signature_of(&a)),
        simulate(&ingest_b, signature_of(&b)),
    ];
    let token_a = s.login(OWNER_A, PASSWORD).await;
    let token_b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&token_a, "Front door").await;
    s.wait_online(&token_b, "Back yard").await;
    let d = Driver::start().await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;
    d.wait_find(&format!("[data-testid=camera-card][data-camera-id='{a}']"))
        .await;
    Setup {
        s,
        a,
        b,
        token_a,
        d,
        _sims: sims,
    }
}

/// How the web app is made to play.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Transport {
    Hls,
    WebRtc,
}

impl Setup {
    async fn open_player(&self, transport: Transport) {
        let choice = match transport {
            Transport::Hls => "localStorage.setItem('hearth.transport', 'hls')",
            Transport::WebRtc => "localStorage.removeItem('hearth.transport')",
        };
        self.d.js(choice).await;
        self.d
            .click(&format!(
                "[data-testid=camera-card][data-camera-id='{}']",
                self.a
            ))
            .await;
    }

    async fn stats(&self) -> Value {
        let s = self
            .d
            .js("return window.hearthPlayer ? JSON.stringify(window.hearthPlayer) : 'null'")
            .await;
        serde_json::from_str(s.as_str().unwrap_or("null")).unwrap()
    }

    /// Waits until the player's state is `want`; fails at once on `never`.
    async fn wait_state(&self, want: &str, never: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let st = self.stats().await;
            if st["state"] == want {
                return st;
            }
            assert!(
                st["state"] != never,
                "the player reached '{never}' (waiting for '{want}'): {st}"
            );
            assert!(
                Instant::now() < deadline,
                "the player never reached '{want}': {st}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn current_time(&self) -> f64 {
        self.d
            .js("return document.getElementById('player').currentTime")
            .await
            .as_f64()
            .unwrap()
    }

    /// The player's reports in A's access log: `client_report` entries about
    /// anything but a still (the grid's thumbnails check and report stills).
    async fn player_reports(&self) -> Vec<Value> {
        let (stills, player): (Vec<Value>, Vec<Value>) = self
            .client_reports()
            .await
            .into_iter()
            .partition(|r| r["detail"]["detail"]["object"] == "snapshot.jpg");
        // A thumbnail refused on the grid before the player opened: B's still too.
        for r in &stills {
            assert_eq!(r["detail"]["detail"]["got_camera"], self.b.as_str(), "{r}");
        }
        player
    }

    /// A's access log as A's owner sees it, `client_report` entries only.
    async fn client_reports(&self) -> Vec<Value> {
        let r = client()
            .get(format!(
                "{}/api/v1/cameras/{}/access-log",
                self.s.base, self.a
            ))
            .bearer_auth(&self.token_a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let log: Vec<Value> = r.json().await.unwrap();
        log.into_iter()
            .filter(|e| e["kind"] == "client_report")
            .collect()
    }
}

/// The server log without its ANSI colours.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_player_refuses_and_reports_another_cameras_stream_over_hls() {
    refuses_and_reports(Transport::Hls).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_player_refuses_and_reports_another_cameras_stream_over_webrtc() {
    refuses_and_reports(Transport::WebRtc).await;
}

/// What the player counted as checked (segments or frames) and shown.
fn checked_and_shown(st: &Value, transport: Transport) -> (u64, u64) {
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    match transport {
        Transport::Hls => (n("provenanceChecked"), n("segmentsAppended")),
        Transport::WebRtc => (n("framesChecked"), n("framesChecked")),
    }
}

async fn refuses_and_reports(transport: Transport) {
    let want = match transport {
        Transport::Hls => "hls",
        Transport::WebRtc => "webrtc",
    };
    // Control: the door is open but nothing answers wrongly. A's page plays A.
    {
        let c = setup(&[("HEARTH_FAULT_DOOR_OPEN", "1"), ("HEARTH_FAULT_P", "0")]).await;
        assert!(
            c.s.log().contains("THE EGRESS DOOR IS OPEN"),
            "the door-open switch is not live:\n{}",
            c.s.log()
        );
        c.open_player(transport).await;
        let st = c
            .wait_state("playing", "refused", Duration::from_secs(20))
            .await;
        assert_eq!(st["transport"], want, "{st}");
        assert!(checked_and_shown(&st, transport).1 >= 1, "{st}");
        let t0 = c.current_time().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t1 = c.current_time().await;
        assert!(t1 - t0 >= 1.0, "currentTime advanced only {:.2}s", t1 - t0);
        let rgb = c.d.video_rgb(W, H).await;
        assert_eq!(
            hearth_camera::read_signature(&rgb, W, H),
            Some(signature_of(&c.a)),
            "the control does not show camera A"
        );
        assert_eq!(c.stats().await["state"], "playing");
        assert!(c.client_reports().await.is_empty());
    }

    // Every hub lookup answers with B's hub, and the door lets B's objects out.
    let t = setup(&[
        ("HEARTH_FAULT_DOOR_OPEN", "1"),
        ("HEARTH_FAULT_P", "1"),
        ("HEARTH_FAULT_POINTS", "hub"),
    ])
    .await;
    let log = plain(&t.s.log());
    assert!(log.contains("THE EGRESS DOOR IS OPEN"), "{log}");
    assert!(
        log.contains("FAULT INJECTION ENABLED") && log.contains("points=hub"),
        "{log}"
    );
    let (a, b) = (&t.a, &t.b);

    // On the grid, A's thumbnail request is answered with B's still: the app checks
    // the still's in-band provenance, never shows it, and reports it.
    let probe = format!(
        "const c = document.querySelector(\"[data-testid=camera-card][data-camera-id='{a}']\");
         return c ? {{text: c.querySelector('.thumb-placeholder').textContent,
                      img: !!c.querySelector('.thumb-img')}} : null;"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let card = t.d.js(&probe).await;
        if !card.is_null() {
            assert_eq!(card["img"], false, "a still is shown in A's card: {card}");
            if card["text"] == "Picture unavailable" {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "A's card never refused B's still: {card}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t
        .client_reports()
        .await
        .iter()
        .any(|r| r["detail"]["detail"]["object"] == "snapshot.jpg")
    {
        assert!(Instant::now() < deadline, "no still report from the grid");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // (`player_reports` checks that every still report names B.)
    assert!(t.player_reports().await.is_empty());

    t.open_player(transport).await;
    let st = t
        .wait_state("refused", "playing", Duration::from_secs(20))
        .await;
    assert_eq!(st["transport"], want, "{st}");

    // The player checked what it got, found B, and showed nothing.
    match transport {
        Transport::Hls => {
            assert_eq!(st["segmentsAppended"], 0, "{st}");
            assert!(st["provenanceChecked"].as_u64().unwrap() >= 1, "{st}");
        }
        Transport::WebRtc => {
            // A session was made (B's frames came), none of its frames passed.
            assert!(st["sessions"].as_u64().unwrap() >= 1, "{st}");
            assert_eq!(st["framesChecked"], 0, "{st}");
        }
    }
    let why = st["lastError"].as_str().unwrap();
    assert!(
        why.starts_with("provenance check failed for ")
            && why.ends_with(&format!(": camera {b}, expected {a}")),
        "{why}"
    );

    // What the page shows: the refused state, no picture.
    let page = t
        .d
        .js("const v = document.getElementById('player');
             const o = document.getElementById('video-overlay');
             const s = document.getElementById('player-status');
             return {overlayHidden: o.hidden, overlayText: document.getElementById('video-overlay-text').textContent,
                     refusedClass: o.classList.contains('is-refused'),
                     badgeState: s.dataset.state, badgeText: s.textContent,
                     src: v.getAttribute('src'), srcObject: !!v.srcObject, buffered: v.buffered.length, currentTime: v.currentTime,
                     readyState: v.readyState};")
        .await;
    assert_eq!(page["overlayHidden"], false, "{page}");
    assert_eq!(page["overlayText"], "Stream unavailable", "{page}");
    assert_eq!(page["refusedClass"], true, "{page}");
    assert_eq!(page["badgeState"], "refused", "{page}");
    assert_eq!(page["badgeText"], "Unavailable", "{page}");
    assert_eq!(page["src"], Value::Null, "{page}");
    assert_eq!(page["srcObject"], false, "{page}");
    assert_eq!(page["buffered"], 0, "{page}");
    assert_eq!(page["currentTime"], 0.0, "{page}");
    assert_eq!(page["readyState"], 0, "{page}");

    // The server recorded the player's report in A's access log, naming B.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reports = loop {
        let r = t.player_reports().await;
        if !r.is_empty() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no client_report in A's access log\n{}",
            t.s.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(reports.len(), 1, "one report per player: {reports:?}");
    let r = &reports[0];
    eprintln!("client report in A's access log: {r}");
    assert_eq!(r["viewer"], OWNER_A, "{r}");
    assert_eq!(r["detail"]["kind"], "provenance_mismatch", "{r}");
    let detail = &r["detail"]["detail"];
    assert_eq!(detail["expected_camera"], a.as_str(), "{r}");
    assert_eq!(detail["got_camera"], b.as_str(), "{r}");
    assert_eq!(detail["expected_epoch"], 1, "{r}");
    assert_eq!(detail["got_epoch"], 1, "{r}");
    let object = detail["object"].as_str().unwrap_or_default();
    // Either rendition's object (the sub rendition's names begin with `sub-`).
    let object = object.strip_prefix("sub-").unwrap_or(object);
    match transport {
        Transport::Hls => assert!(
            object.starts_with("init-") || object.ends_with(".m4s"),
            "the report names no media object: {r}"
        ),
        Transport::WebRtc => assert_eq!(object, "webrtc frame", "{r}"),
    }

    // Stopped for good: a while later still nothing appended, nothing playing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = t.stats().await;
    assert_eq!(st["state"], "refused", "{st}");
    assert_eq!(checked_and_shown(&st, transport).1, 0, "{st}");
    assert_eq!(t.current_time().await, 0.0);
    assert_eq!(t.player_reports().await.len(), 1);

    // The foreign bytes went out through the open door (nothing was blocked there);
    // the refusal was the browser's.
    let log = plain(&t.s.log());
    assert!(log.contains("player refused media"), "{log}");
    assert!(
        !log.contains("isolation violation blocked at egress"),
        "{log}"
    );
}
