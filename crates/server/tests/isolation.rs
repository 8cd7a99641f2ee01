//! Households cannot reach each other's cameras: not through the API, not by
//! splicing another camera's segment names into a grant URL, not with a forged,
//! altered or expired grant. Every refusal carries zero media bytes.

mod common;
use common::*;
use hearth_access::grant::{Grant, GrantKey};
use hearth_model::{BindingEpoch, CameraId, GrantId, UnixMillis};
use std::time::{Duration, Instant};

fn names_in(playlist: &[u8], ext: &str) -> Vec<String> {
    String::from_utf8_lossy(playlist)
        .lines()
        .filter(|l| !l.starts_with('#') && l.ends_with(ext))
        .map(str::to_string)
        .collect()
}

fn init_name(playlist: &[u8]) -> String {
    let text = String::from_utf8_lossy(playlist);
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-MAP:URI=\""))
        .expect("EXT-X-MAP");
    line["#EXT-X-MAP:URI=\"".len()..]
        .trim_end_matches('"')
        .to_string()
}

/// A refusal: 403 or 404, a JSON error body, and no media.
fn assert_refused(what: &str, status: u16, body: &[u8]) {
    assert!(status == 403 || status == 404, "{what}: status {status}");
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("{what}: body is not a JSON error ({} bytes)", body.len()));
    assert!(v["error"].is_string(), "{what}: {v}");
    assert!(body.len() < 200, "{what}: refusal body too large");
}

fn base_of(url: &str) -> String {
    url.rsplit_once('/').unwrap().0.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn households_cannot_reach_each_others_media() {
    let s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    s.wait_online(&b, "Front door").await;
    let living = s.camera_id(&a, "Living room").await;
    let front = s.camera_id(&b, "Front door").await;

    // B cannot get a grant for A's camera, and cannot tell it from a missing one.
    let (st1, body1) = s.try_grant(&b, &living).await;
    let (st2, body2) = s.try_grant(&b, &CameraId::random().to_string()).await;
    let (st3, _) = s.try_grant(&b, "not-a-camera").await;
    assert_eq!((st1, st2, st3), (404, 404, 404));
    assert_eq!(body1, body2);

    // No token, or a wrong one: 401.
    let r = client()
        .get(format!("{}/api/v1/cameras", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{}/api/v1/cameras", s.base))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let ga = s.grant(&a, &living).await;
    let gb = s.grant(&b, &front).await;
    let a_base = base_of(ga["hls_url"].as_str().unwrap());
    let b_base = base_of(gb["hls_url"].as_str().unwrap());

    // Learn B's object names through B's own grant (waits for the first segment).
    let (st, b_fmp4) = get(&format!("{b_base}/live.m3u8")).await;
    assert_eq!(st, 200);
    let (_, b_ts) = get(&format!("{b_base}/ts.m3u8")).await;
    let b_segments = names_in(&b_fmp4, ".m4s");
    let b_ts_segments = names_in(&b_ts, ".ts");
    assert!(!b_segments.is_empty() && !b_ts_segments.is_empty());
    let b_init = init_name(&b_fmp4);

    // B's names are served under B's grant...
    let (st, body) = get(&format!("{b_base}/{}", b_segments[0])).await;
    assert_eq!(st, 200);
    assert!(body.len() > 1000);
    // ...and refused under A's grant, with zero media bytes.
    for name in b_segments
        .iter()
        .chain(&b_ts_segments)
        .chain(std::iter::once(&b_init))
    {
        let (st, body) = get(&format!("{a_base}/{name}")).await;
        assert_refused(&format!("A's grant with B's {name}"), st, &body);
    }
    // Path tricks do not escape the grant either.
    for trick in [
        "../snapshot.jpg",
        "..%2Fsnapshot.jpg",
        "%2e%2e/live.m3u8",
        "x.m4s",
        "init-.mp4",
    ] {
        let (st, body) = get(&format!("{a_base}/{trick}")).await;
        assert!(st == 403 || st == 404 || st == 400, "{trick}: {st}");
        assert!(
            !body.starts_with(&[0xff, 0xd8]) && !body.starts_with(b"#EXTM3U"),
            "{trick} leaked media"
        );
    }

    // A's own objects work under A's grant (sanity for the refusals above).
    let (st, _) = get(&format!("{a_base}/live.m3u8")).await;
    assert_eq!(st, 200);

    // Forged, altered and expired grants: 403, no bytes.
    let a_token = a_base.rsplit('/').next().unwrap().to_string();
    let media_root = a_base.trim_end_matches(&a_token).to_string();
    let mut altered = a_token.clone().into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let forged = "A".repeat(a_token.len());
    // The variants below are A's own grant with one thing changed, presented with
    // A's own session, so that each is refused for its own reason.
    let key = GrantKey::load_or_create(&s.data_dir().join("grant.key")).unwrap();
    let real = *key.verify(&a_token, UnixMillis(0)).unwrap().grant();
    let expired = key.sign(&Grant {
        id: GrantId::random(),
        expires_at: UnixMillis(1_000),
        ..real
    });
    let other_key = GrantKey::random().sign(&Grant {
        id: GrantId::random(),
        ..real
    });
    for (what, token) in [
        ("altered", altered),
        ("forged", forged),
        ("expired", expired),
        ("other key", other_key),
    ] {
        for obj in [
            "index.m3u8",
            "live.m3u8",
            "ts.m3u8",
            "snapshot.jpg",
            &b_segments[0],
        ] {
            let (st, body) = get_as(&format!("{media_root}{token}/{obj}"), Some(&a)).await;
            assert_eq!(st, 403, "{what} grant, {obj}");
            assert_refused(&format!("{what} grant, {obj}"), st, &body);
            assert!(
                !is_not_holder(&body),
                "{what} grant, {obj}: refused for the holder"
            );
        }
    }

    // A grant for a past epoch names a camera state that no longer exists: refused at the door.
    let stale_epoch = key.sign(&Grant {
        id: GrantId::random(),
        epoch: BindingEpoch(real.epoch.0 + 7),
        ..real
    });
    let (st, body) = get_as(&format!("{media_root}{stale_epoch}/live.m3u8"), Some(&a)).await;
    assert_refused("wrong-epoch grant", st, &body);
    assert!(!is_not_holder(&body));
    // The same grant at the right epoch opens (so the epoch alone was refused).
    let right_epoch = key.sign(&Grant {
        id: GrantId::random(),
        ..real
    });
    let (st, _) = get_as(&format!("{media_root}{right_epoch}/live.m3u8"), Some(&a)).await;
    assert_eq!(st, 200);
}

fn is_not_holder(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("belongs to another session")
}

/// A grant is bound to the session that asked for it: its URLs, replayed by
/// another account (even one that may watch the same camera), by another session of
/// the same account, or with no session at all, are refused with zero media bytes.
#[tokio::test(flavor = "multi_thread")]
async fn a_grant_replayed_from_another_account_is_refused() {
    let s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let ga = s.grant(&a, &living).await;
    let a_base = base_of(ga["hls_url"].as_str().unwrap());

    // The holder plays: learn the object names (segment, init, key, TS segment).
    let (st, pl) = get_as(&format!("{a_base}/live.m3u8"), Some(&a)).await;
    assert_eq!(st, 200);
    let (st, ts) = get_as(&format!("{a_base}/ts.m3u8"), Some(&a)).await;
    assert_eq!(st, 200);
    let segment = names_in(&pl, ".m4s").pop().expect("a segment");
    let key = String::from_utf8_lossy(&pl)
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .expect("an EXT-X-KEY URI")
        .to_string();
    let objects = [
        "index.m3u8".to_string(),
        "live.m3u8".into(),
        "ts.m3u8".into(),
        "snapshot.jpg".into(),
        init_name(&pl),
        segment,
        key,
        names_in(&ts, ".ts").pop().expect("a TS segment"),
    ];
    for obj in &objects {
        let (st, body) = get_as(&format!("{a_base}/{obj}"), Some(&a)).await;
        assert_eq!(st, 200, "the holder gets {obj}");
        assert!(!body.is_empty());
    }

    // B may even watch this camera (A shares it): A's grant is still not B's.
    assert_eq!(s.share(&a, &living, OWNER_B).await.0, 202);
    assert_eq!(s.try_grant(&b, &living).await.0, 200);
    let a_again = s.login(OWNER_A, PASSWORD).await;
    for (who, session) in [
        ("another account", Some(b.as_str())),
        (
            "another session of the same account",
            Some(a_again.as_str()),
        ),
        ("no session", None),
        ("a made-up session", Some("not-a-session")),
    ] {
        for obj in &objects {
            let (st, body) = get_as(&format!("{a_base}/{obj}"), session).await;
            assert_eq!(st, 403, "{who}, {obj}");
            assert_refused(&format!("{who}, {obj}"), st, &body);
            assert!(
                is_not_holder(&body),
                "{who}, {obj}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    assert!(
        s.log()
            .contains("grant presented without its holder's session")
    );
    // The holder still plays.
    let (st, _) = get_as(&format!("{a_base}/live.m3u8"), Some(&a)).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_does_not_reveal_which_emails_exist() {
    let s = Server::demo(320, 180);
    let try_login = |email: &'static str, pw: &'static str| {
        let base = s.base.clone();
        async move {
            let t = Instant::now();
            let r = client()
                .post(format!("{base}/api/v1/login"))
                .json(&serde_json::json!({"email": email, "password": pw}))
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.text().await.unwrap(), t.elapsed())
        }
    };
    let mut wrong = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    let (mut wrong_body, mut unknown_body) = (String::new(), String::new());
    for _ in 0..5 {
        let (st, body, d) = try_login(OWNER_A, "wrong password").await;
        assert_eq!(st, 401);
        wrong += d;
        wrong_body = body;
        let (st, body, d) = try_login("nobody@example.com", "wrong password").await;
        assert_eq!(st, 401);
        unknown += d;
        unknown_body = body;
    }
    assert_eq!(wrong_body, unknown_body);
    // Both paths run one argon2 verification; a shortcut for unknown emails would be
    // an order of magnitude faster.
    let ratio = wrong.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.4..2.5).contains(&ratio),
        "wrong-password {wrong:?} vs unknown-email {unknown:?}"
    );

    // Malformed login bodies are clear 400s, oversized ones are refused.
    let r = client()
        .post(format!("{}/api/v1/login", s.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("JSON"));
    let r = client()
        .post(format!("{}/api/v1/login", s.base))
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// Signing out ends the session on the server: its token stops working and every
/// stream grant it holds is refused at once, with no media. Other sessions of the
/// same account carry on.
#[tokio::test(flavor = "multi_thread")]
async fn signing_out_stops_that_sessions_streams_at_once() {
    let s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    let other = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let ga = s.grant(&a, &living).await;
    let go = s.grant(&other, &living).await;
    let a_live = format!("{}/live.m3u8", base_of(ga["hls_url"].as_str().unwrap()));
    let o_live = format!("{}/live.m3u8", base_of(go["hls_url"].as_str().unwrap()));
    assert_eq!(get_as(&a_live, Some(&a)).await.0, 200);
    assert_eq!(get_as(&o_live, Some(&other)).await.0, 200);

    let logout = |token: String| {
        let url = format!("{}/api/v1/logout", s.base);
        async move {
            let r = client().post(url).bearer_auth(token).send().await.unwrap();
            r.status().as_u16()
        }
    };
    assert_eq!(logout(a.clone()).await, 204);
    // The token is gone...
    let r = client()
        .get(format!("{}/api/v1/cameras", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(logout(a.clone()).await, 401);
    // ...and so is every stream it held, although the grant has not expired.
    for obj in ["live.m3u8", "index.m3u8", "snapshot.jpg"] {
        let url = a_live.replace("live.m3u8", obj);
        let (st, body) = get_as(&url, Some(&a)).await;
        assert_eq!(st, 403, "signed-out session, {obj}");
        assert_refused(&format!("signed-out session, {obj}"), st, &body);
    }
    // The account's other session still plays.
    assert_eq!(get_as(&o_live, Some(&other)).await.0, 200);

    // The sign-out is in the database: after a restart the grant is still refused,
    // while the other session's grant still opens the door (the camera is offline
    // now, so the snapshot is a 503, not a refusal).
    let still = |live: &str| {
        live.split_once("/media/")
            .unwrap()
            .1
            .replace("live.m3u8", "snapshot.jpg")
    };
    let (a_still, o_still) = (still(&a_live), still(&o_live));
    let s = s.restart_serve();
    let (st, body) = get_as(&format!("{}/media/{a_still}", s.base), Some(&a)).await;
    assert_eq!(st, 403, "signed-out session after a restart");
    assert_refused("signed-out session after a restart", st, &body);
    let (st, _) = get_as(&format!("{}/media/{o_still}", s.base), Some(&other)).await;
    assert_eq!(st, 503, "the other session after a restart");
}
