//! Placement and the edge relay over three nodes (one PostgreSQL, one NATS,
//! both started by the test on loopback; lease 2 s): a camera is ingested on
//! exactly one node (a second node refuses its publisher while the lease is
//! held); viewers on other nodes play it (a linked Google display, RTSP with a
//! viewer key, HLS, and HLS through the CDN), relayed from the node that has
//! it and checked by the door of the node that serves the viewer; when the
//! ingesting node is killed (-9) the camera's next connection lands on another
//! node once the lease runs out, and the viewer resumes within 10 s; the audit
//! of the views is in PostgreSQL.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
#[path = "common/nats.rs"]
mod nats;
#[path = "common/nginx.rs"]
mod nginx;

use common::*;
use hearth_testpg::TestPostgres;
use hub_emulator::{google_stream, link, register};
use nats::Nats;
use nginx::{Nginx, free_port};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;
const SIGNATURE: u32 = 4242;

async fn decode(url: &str, seconds: f64) -> Vec<Vec<u8>> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || try_decode_rgb(&url, seconds, W, H))
        .await
        .unwrap()
}

/// `ingest` (a URL on `from`'s RTMP port) on `to`'s RTMP port.
fn ingest_on(ingest: &str, from: &Server, to: &Server) -> String {
    ingest.replace(
        &format!(":{}/", from.rtmp.port()),
        &format!(":{}/", to.rtmp.port()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_camera_lives_on_one_node_plays_on_any_and_moves_when_its_node_dies() {
    require_tool("ffmpeg");
    let db = TestPostgres::shared().fresh_database();
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("cluster.toml");
    std::fs::write(&conf, "[cluster]\nlease_seconds = 2\n").unwrap();
    let keys = dir.path().join("keys");
    let nats_url = nats.url();
    let env = [
        ("HEARTH_DATABASE_URL", db.as_str()),
        ("HEARTH_NATS_URL", nats_url.as_str()),
        ("HEARTH_KEYS_DIR", keys.to_str().unwrap()),
    ];
    let conf = conf.to_str().unwrap();
    let mut nodes: Vec<Server> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| Server::serve_with(&["--config", conf, "--node", n], &env))
        .collect();
    nodes[0].admin(
        &["user", "add", "--email", OWNER_A],
        Some(&format!("{PASSWORD}\n")),
    );
    let (porch, ingest) = nodes[0].add_camera(OWNER_A, "Porch");
    let on: Vec<String> = nodes
        .iter()
        .map(|n| ingest_on(&ingest, &nodes[0], n))
        .collect();
    let on = |i: usize| on[i].clone();
    let sig = SIGNATURE.to_string();
    let sim1 = simulate(&on(0), "Porch", (W, H), &["--signature", &sig]);
    let owner = nodes[1].login(OWNER_A, PASSWORD).await;
    nodes[0].wait_online(&owner, "Porch").await;

    // 1. While node 1 holds the camera, node 2 refuses its publisher.
    {
        let _second = simulate(&on(1), "Porch", (W, H), &["--signature", "1"]);
        assert!(
            wait_for(Duration::from_secs(10), || nodes[1]
                .log()
                .contains("ingested by node n1")),
            "node 2 did not refuse the camera held by node 1:\n{}",
            nodes[1].log()
        );
        assert!(
            !nodes[1].log().contains("camera live"),
            "{}",
            nodes[1].log()
        );
    }

    // 2. A smart display asks node 2 for the camera (Google Home: HLS): its
    // stream request starts node 2's relay, and the display plays node 1's
    // camera from node 2.
    let google = register(&nodes[1], "google");
    let linked = link(&nodes[1], &google, OWNER_A, None).await;
    let r = google_stream(&nodes[1], &linked.access, &porch).await;
    assert_eq!(r["status"], "SUCCESS", "{r}\n{}", nodes[1].log());
    let display = r["states"]["cameraStreamAccessUrl"].as_str().unwrap();
    assert!(display.starts_with(&nodes[1].base), "{display}");
    let frames = decode(display, 2.0).await;
    eprintln!(
        "node 2 played node 1's camera to a linked display: {} frames",
        frames.len()
    );
    assert!(
        frames.len() >= 10,
        "{} frames on the display\n{}",
        frames.len(),
        nodes[1].log()
    );
    assert_signature(&frames, W, H, SIGNATURE);

    // 3. A viewer on node 3 plays it, relayed from node 1: first an RTSP
    // player with a viewer key (as an NVR takes it; its DESCRIBE starts the
    // relay), then HLS.
    let viewer = nodes[2].login(OWNER_A, PASSWORD).await;
    let (st, key) = nodes[2]
        .api(
            reqwest::Method::POST,
            "/api/v1/viewer-keys",
            &viewer,
            serde_json::json!({"name": "NVR", "cameras": [porch]}),
        )
        .await;
    assert_eq!(st, 201, "{key}");
    let rtsp = key["urls"][0]["rtsp_url"].as_str().unwrap();
    let frames = decode(rtsp, 2.0).await;
    eprintln!(
        "node 3 played node 1's camera over RTSP: {} frames",
        frames.len()
    );
    assert!(
        frames.len() >= 10,
        "{} frames over RTSP\n{}",
        frames.len(),
        nodes[2].log()
    );
    assert_signature(&frames, W, H, SIGNATURE);
    let g = nodes[2].grant(&viewer, &porch).await;
    let url = g["hls_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&nodes[2].base), "{url}");
    let t = Instant::now();
    let frames = decode(&url, 3.0).await;
    eprintln!(
        "node 3 played node 1's camera: {} frames, first playlist to end {:?}",
        frames.len(),
        t.elapsed()
    );
    assert!(
        frames.len() >= 10,
        "{} frames\n{}",
        frames.len(),
        nodes[2].log()
    );
    assert_signature(&frames, W, H, SIGNATURE);
    assert!(
        nodes[2].log().contains("relaying a camera from its node"),
        "{}",
        nodes[2].log()
    );

    // ... and through the CDN in front of the three nodes.
    let cdn = Nginx::start(
        free_port(),
        &nodes.iter().map(|n| n.http.to_string()).collect::<Vec<_>>(),
        "$object",
    );
    let via_cdn = url.replace(&nodes[2].base, &cdn.base());
    let frames = decode(&via_cdn, 3.0).await;
    assert!(
        frames.len() >= 10,
        "{} frames through the CDN",
        frames.len()
    );
    assert_signature(&frames, W, H, SIGNATURE);

    // 4. Node 1 dies while viewed; the camera reconnects to node 2 (refused
    // until the lease runs out); the viewer on node 3 resumes within 10 s.
    nodes[0].kill9();
    let killed = Instant::now();
    drop(sim1);
    let _sim2 = loop {
        let s = simulate(&on(1), "Porch", (W, H), &["--signature", &sig]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if nodes[1].log().matches("camera live").count() > 0 {
            break s;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "the camera never landed on node 2:\n{}",
            nodes[1].log()
        );
    };
    let moved = killed.elapsed();
    let resumed = loop {
        let frames = decode(&url, 1.5).await;
        if frames.len() >= 5 {
            assert_signature(&frames, W, H, SIGNATURE);
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the viewer on node 3 did not resume within 10 s\n{}",
            nodes[2].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "kill -9 of the ingesting node: camera on node 2 after {moved:?}, viewer on node 3 playing again after {resumed:?}"
    );
    assert!(resumed < Duration::from_secs(10));

    // 5. The views on node 3 are in PostgreSQL's audit log (read on node 2);
    // no isolation violation anywhere.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = nodes[1].access_log(&owner, &porch).await;
        let views = log.iter().filter(|e| e["kind"] == "view_start").count();
        assert!(
            !log.iter().any(|e| e["kind"] == "isolation_violation"),
            "{log:?}"
        );
        if views >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the views on node 3 are missing from the audit log: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in &mut nodes[1..] {
        assert!(!n.log().contains("isolation violation"), "{}", n.log());
    }
}
