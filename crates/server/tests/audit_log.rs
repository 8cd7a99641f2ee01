//! The audit log records who was sent which camera's bytes, survives a clean
//! shutdown with nothing lost, and answers both the owner (access log) and the
//! operator (`hearth audit views`, `hearth audit exposure`).

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn views_are_audited_and_survive_a_clean_shutdown() {
    let mut s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let r = client()
        .post(format!("{}/api/v1/login", s.base))
        .json(&serde_json::json!({"email": OWNER_B, "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;

    // A watches; A shares with B, B takes a snapshot.
    let ga = s.grant(&a, &living).await;
    let base = ga["hls_url"]
        .as_str()
        .unwrap()
        .trim_end_matches("/index.m3u8")
        .to_string();
    let (st, pl) = get(&format!("{base}/live.m3u8")).await;
    assert_eq!(st, 200);
    let seg = String::from_utf8(pl)
        .unwrap()
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .unwrap()
        .to_string();
    let (st, body) = get(&format!("{base}/{seg}")).await;
    assert_eq!(st, 200);
    let seg_bytes = body.len();
    assert_eq!(s.share(&a, &living, OWNER_B).await.0, 202);
    let gb = s.grant(&b, &living).await;
    assert_eq!(get(gb["snapshot_url"].as_str().unwrap()).await.0, 200);

    // A clean shutdown ends the open view sessions and writes everything.
    s.terminate();
    assert!(s.log().contains("flushing the audit log"), "{}", s.log());
    let s = s.restart_serve();
    let a = s.login(OWNER_A, PASSWORD).await;

    let r = client()
        .get(format!("{}/api/v1/cameras/{living}/access-log", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log: Vec<serde_json::Value> = r.json().await.unwrap();
    let has = |kind: &str, who: &str| log.iter().any(|e| e["kind"] == kind && e["viewer"] == who);
    assert!(
        has("grant_issued", OWNER_A) && has("grant_issued", OWNER_B),
        "{log:#?}"
    );
    assert!(
        has("view_start", OWNER_A) && has("view_end", OWNER_A),
        "{log:#?}"
    );
    assert!(has("snapshot_served", OWNER_B), "{log:#?}");
    assert!(log.iter().any(|e| e["kind"] == "share"), "{log:#?}");
    let end = log
        .iter()
        .find(|e| e["kind"] == "view_end" && e["viewer"] == OWNER_A)
        .unwrap();
    assert!(
        end["detail"]["bytes"].as_u64().unwrap() >= seg_bytes as u64,
        "{end}"
    );
    assert_eq!(end["integration"], "app");

    // Only owners read a camera's access log.
    let b = s.login(OWNER_B, PASSWORD).await;
    let r = client()
        .get(format!("{}/api/v1/cameras/{living}/access-log", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a share holder may not read the owner's log"
    );

    let views = s.admin(&["audit", "views", "--camera", &living], None);
    assert!(
        views.contains("view_end") && views.contains(OWNER_A),
        "{views}"
    );
    let exposure = s.admin(&["audit", "exposure"], None);
    assert!(
        exposure.contains(&format!("sent to {OWNER_A}")),
        "{exposure}"
    );
    assert!(
        exposure.contains(&format!("sent to {OWNER_B}")),
        "{exposure}"
    );
    assert!(!exposure.contains("NO MATCHING GRANT"), "{exposure}");
}
