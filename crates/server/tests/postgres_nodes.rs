//! Two Hearth processes on one PostgreSQL database (Debian's `postgresql`,
//! started by the test in a temp dir): accounts, sessions, cameras, shares and
//! the audit log made on one node are the other's at once; a share withdrawn on
//! one node ends the view on the other. (Until the control plane carries
//! changes, a node learns them by polling the store's change counter.)

mod common;

use common::*;
use hearth_testpg::TestPostgres;
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;

fn playlist(grant: &serde_json::Value) -> String {
    grant["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_postgres_database_share_accounts_cameras_shares_and_audit() {
    require_tool("ffmpeg");
    let url = TestPostgres::shared().fresh_database();
    let env = [("HEARTH_DATABASE_URL", url.as_str())];
    let a = Server::serve_with_env(&env);
    let b = Server::serve_with_env(&env);
    for s in [&a, &b] {
        assert!(s.log().contains("metadata in PostgreSQL"), "{}", s.log());
        assert!(
            !s.data_dir().join("hearth.db").exists(),
            "no SQLite file beside a PostgreSQL store"
        );
        let pass = url.split(':').nth(2).unwrap().split('@').next().unwrap();
        assert!(!s.log().contains(pass), "the database password is logged");
    }

    // Accounts made with the CLI against node A's configuration.
    for email in [OWNER_A, OWNER_B] {
        a.admin(
            &["user", "add", "--email", email],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let (porch, ingest) = a.add_camera(OWNER_A, "Porch");
    let _sim = simulate(&ingest, "Porch", (W, H), &["--signature", "4242"]);

    // A session opened on node B works on node A, and the other way round.
    let owner_on_b = b.login(OWNER_A, PASSWORD).await;
    let owner_on_a = a.login(OWNER_A, PASSWORD).await;
    assert_eq!(
        b.cameras(&owner_on_a).await[0]["id"],
        porch.as_str(),
        "B lists the camera added on A"
    );
    a.wait_online(&owner_on_b, "Porch").await;
    let g = a.grant(&owner_on_b, &porch).await;
    let url_a = g["hls_ts_url"].as_str().unwrap().to_string();
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&url_a, 2.0, W, H))
        .await
        .unwrap();
    assert_signature(&frames, W, H, 4242);

    // Shared on node B; B's viewer watches on node A.
    let (st, share) = b.share(&owner_on_b, &porch, OWNER_B).await;
    assert_eq!(st, 202, "{share}");
    let viewer = a.login(OWNER_B, PASSWORD).await;
    let started = Instant::now();
    let gv = loop {
        let (st, g) = a.try_grant(&viewer, &porch).await;
        if st == 200 {
            break g;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "node A never let the viewer in: {st} {g}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(get(&playlist(&gv)).await.0, 200);

    // Withdrawn on node B: node A refuses the live playlist soon after.
    let t = Instant::now();
    let r = client()
        .delete(format!(
            "{}/api/v1/cameras/{porch}/shares/{}",
            b.base,
            share["user"].as_str().unwrap()
        ))
        .bearer_auth(&owner_on_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let took = loop {
        let (st, _) = get(&playlist(&gv)).await;
        if st == 403 || st == 404 {
            break t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "node A still serves the withdrawn share after {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    eprintln!("unshare on node B -> refused on node A in {took:?}");

    // The audit log is one: node B's access log shows the views on node A.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = b.access_log(&owner_on_b, &porch).await;
        let viewers: Vec<&str> = log
            .iter()
            .filter(|e| e["kind"] == "view_start")
            .filter_map(|e| e["viewer"].as_str())
            .collect();
        if viewers.contains(&OWNER_A) && viewers.contains(&OWNER_B) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "views on node A are missing from node B's access log: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
