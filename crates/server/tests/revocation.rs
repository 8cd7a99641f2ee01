//! Revocation and kill switches take effect within a second, for live viewers:
//! unsharing, suspending an integration, a camera or a user, transferring and
//! resetting a camera. Suspensions survive a restart.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Polls `url` until it is refused; returns how long after `since` that happened.
async fn refused_within(url: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        let (st, body) = get(url).await;
        if st == 403 || st == 404 {
            assert!(body.len() < 200, "a refusal carried {} bytes", body.len());
            return since.elapsed();
        }
        assert_eq!(st, 200, "unexpected status");
        assert!(
            since.elapsed() < limit,
            "still served {:?} after the change",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A grant, once a resumed switch has taken effect (within `limit`).
async fn grant_within(s: &Server, token: &str, camera: &str, limit: Duration) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let (st, g) = s.try_grant(token, camera).await;
        if st == 200 {
            return g;
        }
        assert!(
            t.elapsed() < limit,
            "no grant {:?} after resume: {g}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn playlist(grant: &serde_json::Value) -> String {
    grant["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8")
}

async fn names(s: &Server, token: &str) -> Vec<String> {
    s.cameras(token)
        .await
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_and_kill_switches_end_live_views_within_a_second() {
    let s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let second = Duration::from_secs(1);

    // Share view-only with B; B watches; A revokes.
    let (st, share) = s.share(&a, &living, OWNER_B).await;
    assert_eq!(st, 202);
    assert!(names(&s, &b).await.contains(&"Living room".to_string()));
    let listed = s.cameras(&b).await;
    let shared = listed.iter().find(|c| c["id"] == living.as_str()).unwrap();
    assert_eq!(shared["shared_by"], OWNER_A, "B is told who shares it");
    let own = listed.iter().find(|c| c["name"] == "Front door").unwrap();
    assert!(own["shared_by"].is_null(), "{own}");
    // A viewer cannot re-share or revoke.
    assert_eq!(s.share(&b, &living, OWNER_A).await.0, 403);
    let gb = s.grant(&b, &living).await;
    assert_eq!(
        get(&playlist(&gb)).await.0,
        200,
        "B watches the shared camera"
    );
    let t = Instant::now();
    let r = client()
        .delete(format!(
            "{}/api/v1/cameras/{living}/shares/{}",
            s.base,
            share["user"].as_str().unwrap()
        ))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let took = refused_within(&playlist(&gb), t, second).await;
    eprintln!("unshare -> refused in {took:?}");
    assert!(!names(&s, &b).await.contains(&"Living room".to_string()));
    assert_eq!(s.try_grant(&b, &living).await.0, 404);

    // Kill switch: the web app integration.
    let ga = s.grant(&a, &living).await;
    let t = Instant::now();
    s.admin(&["suspend", "integration", "app"], None);
    let took = refused_within(&playlist(&ga), t, second).await;
    eprintln!("suspend integration -> refused in {took:?}");
    let (st, body) = s.try_grant(&a, &living).await;
    assert_eq!(st, 403);
    assert!(
        body["error"].as_str().unwrap().contains("suspended"),
        "{body}"
    );
    s.admin(&["resume", "integration", "app"], None);

    // Kill switch: one camera. Its other cameras' owner keeps the rest.
    let ga = grant_within(&s, &a, &living, second).await;
    assert_eq!(get(&playlist(&ga)).await.0, 200);
    let t = Instant::now();
    s.admin(&["suspend", "camera", &living], None);
    let took = refused_within(&playlist(&ga), t, second).await;
    eprintln!("suspend camera -> refused in {took:?}");
    assert_eq!(names(&s, &a).await, ["Nursery"]);
    // The owner is told why; nobody else learns that the camera exists.
    let (st, body) = s.try_grant(&a, &living).await;
    assert_eq!(st, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("camera is suspended"),
        "{body}"
    );
    assert_eq!(s.try_grant(&b, &living).await.0, 404);
    s.admin(&["resume", "camera", &living], None);
    let ga = grant_within(&s, &a, &living, second).await;
    assert_eq!(get(&playlist(&ga)).await.0, 200);

    // Transfer to B: A's live view ends. The camera gets a new stream key: the
    // old household's publisher (the demo's camera, which keeps reconnecting with
    // the old key) never reaches B; B provisions the camera with the new key and
    // owns it under a new binding epoch.
    let t = Instant::now();
    let out = s.admin(
        &["camera", "transfer", "--camera", &living, "--to", OWNER_B],
        None,
    );
    assert!(out.contains("epoch is now 2"), "{out}");
    let ingest = out
        .lines()
        .find_map(|l| l.strip_prefix("ingest "))
        .unwrap_or_else(|| panic!("no new ingest URL in {out}"))
        .to_string();
    let took = refused_within(&playlist(&ga), t, second).await;
    eprintln!("transfer -> old owner refused in {took:?}");
    assert_eq!(names(&s, &a).await, ["Nursery"]);
    assert!(names(&s, &b).await.contains(&"Living room".to_string()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed = s.cameras(&b).await;
    let cam = listed.iter().find(|c| c["id"] == living.as_str()).unwrap();
    assert_eq!(
        cam["online"], false,
        "the old household's publisher must not publish to the new owner"
    );
    let _new_camera = simulate(&ingest, "Living room", (320, 180), &[]);
    s.wait_online(&b, "Living room").await;
    let gb = s.grant(&b, &living).await;
    assert_eq!(gb["epoch"], 2);
    let (st, text) = get(&playlist(&gb)).await;
    assert_eq!(st, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(&format!("{living}-2-")),
        "segments of the new epoch only:\n{text}"
    );
    assert!(
        !text.contains(&format!("{living}-1-")),
        "old-epoch segments listed:\n{text}"
    );
    // B's access log starts at the transfer: nothing of A's household.
    let log = s.access_log(&b, &living).await;
    assert!(!log.is_empty(), "B's own views are logged");
    for e in &log {
        assert_ne!(e["viewer"], OWNER_A, "the previous owner's events: {e}");
        assert_ne!(e["kind"], "unshare", "the previous binding's shares: {e}");
        if let Some(epoch) = e["detail"].get("epoch") {
            assert_eq!(epoch, 2, "an event of the previous binding: {e}");
        }
    }

    // Reset: a new key and epoch; the camera (old key) cannot come back; B's view ends.
    let t = Instant::now();
    let out = s.admin(&["camera", "reset", "--camera", &living], None);
    assert!(
        out.contains("epoch is now 3") && out.contains("ingest rtmp://"),
        "{out}"
    );
    let took = refused_within(&playlist(&gb), t, second).await;
    eprintln!("reset -> refused in {took:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed = s.cameras(&b).await;
    let cam = listed.iter().find(|c| c["id"] == living.as_str()).unwrap();
    assert_eq!(
        cam["online"], false,
        "the old key must not publish after a reset"
    );

    // Kill switch: a user; it survives a restart.
    s.admin(&["suspend", "user", OWNER_B], None);
    let s = s.restart_serve();
    let r = client()
        .get(format!("{}/api/v1/cameras", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    // B's session still exists, but B may view nothing.
    assert_eq!(r.status(), 200);
    let v: Vec<serde_json::Value> = r.json().await.unwrap();
    assert!(v.is_empty(), "a suspended user sees {v:?}");
    let (st, body) = s.try_grant(&b, &living).await;
    assert_eq!(st, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("account is suspended"),
        "{body}"
    );
    s.admin(&["resume", "user", OWNER_B], None);
    let deadline = Instant::now() + second;
    while s.cameras(&b).await.is_empty() {
        assert!(Instant::now() < deadline, "resume did not take effect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same kill switches over the admin API, with the operator token only.
    let out = s.admin(&["admin-token"], None);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("admin token "))
        .unwrap()
        .to_string();
    // The admin API is not on the public port at all.
    let public = client()
        .get(format!("{}/api/v1/admin/suspensions", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "admin API on the public port");
    let url = format!("{}/api/v1/admin/suspensions", s.admin_base);
    let body = serde_json::json!({"kind": "user", "target": OWNER_B, "reason": "test"});
    for bearer in [None, Some(b.as_str()), Some("not-the-token")] {
        let mut req = client().post(&url).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        assert_eq!(
            req.send().await.unwrap().status(),
            401,
            "admin API without the operator token"
        );
    }
    let r = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        s.cameras(&b).await.is_empty(),
        "suspension over the API is in force at once"
    );
    let list: Vec<serde_json::Value> = client()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.iter().any(|x| x["kind"] == "user"), "{list:?}");
    let r = client()
        .delete(format!("{url}/user/{OWNER_B}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!s.cameras(&b).await.is_empty());
}
