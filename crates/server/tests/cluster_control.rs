//! Three Hearth nodes on one PostgreSQL database and one NATS server (both
//! started by the test on loopback): a share withdrawn or a kill switch thrown
//! on one node is in force on the node serving the viewer within a second
//! (NATS carries the news; the nodes' own poll of the database is 1 s); with
//! NATS gone for longer than the lease every node fails closed, and serves
//! again once NATS is back.

mod common;
#[path = "common/nats.rs"]
mod nats;

use common::*;
use hearth_testpg::TestPostgres;
use nats::Nats;
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 180;
const LEASE_SECONDS: u64 = 2;

fn playlist(grant: &serde_json::Value) -> String {
    grant["hls_url"]
        .as_str()
        .unwrap()
        .replace("index.m3u8", "live.m3u8")
}

/// Polls `url` until it is refused; returns how long that took after `since`.
async fn refused_within(url: &str, since: Instant, limit: Duration, what: &str) -> Duration {
    refused_or_offline_within(url, since, limit, what, false).await
}

/// As [`refused_within`]; with `offline`, the camera going offline (503: its
/// ingest stopped) counts too.
async fn refused_or_offline_within(
    url: &str,
    since: Instant,
    limit: Duration,
    what: &str,
    offline: bool,
) -> Duration {
    loop {
        let (st, body) = get(url).await;
        if st == 403 || st == 404 || (offline && st == 503) {
            assert!(body.len() < 200, "a refusal carried {} bytes", body.len());
            return since.elapsed();
        }
        assert_eq!(st, 200, "{what}: unexpected status");
        assert!(
            since.elapsed() < limit,
            "{what}: still served {:?} after the change",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A grant from `node`, once it gives one (within `limit`).
async fn grant_within(
    node: &Server,
    token: &str,
    camera: &str,
    limit: Duration,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let (st, g) = node.try_grant(token, camera).await;
        if st == 200 {
            return g;
        }
        assert!(
            t.elapsed() < limit,
            "no grant within {limit:?}: {st} {g}\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_every_node_within_a_second_and_nodes_fail_closed_without_nats() {
    require_tool("ffmpeg");
    let db = TestPostgres::shared().fresh_database();
    let mut nats = Nats::start();
    let conf = tempfile::tempdir().unwrap();
    let conf_file = conf.path().join("cluster.toml");
    std::fs::write(
        &conf_file,
        format!("[cluster]\nlease_seconds = {LEASE_SECONDS}\n"),
    )
    .unwrap();
    let conf_path = conf_file.to_str().unwrap();
    let nats_url = nats.url();
    let keys = conf.path().join("keys");
    let env = [
        ("HEARTH_DATABASE_URL", db.as_str()),
        ("HEARTH_NATS_URL", nats_url.as_str()),
        ("HEARTH_KEYS_DIR", keys.to_str().unwrap()),
    ];
    let nodes: Vec<Server> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| Server::serve_with(&["--config", conf_path, "--node", n], &env))
        .collect();
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    for n in &nodes {
        assert!(n.log().contains("cluster node"), "{}", n.log());
        assert!(!n.log().contains(&nats_url), "the NATS password is logged");
    }
    for email in [OWNER_A, OWNER_B] {
        n1.admin(
            &["user", "add", "--email", email],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let (porch, ingest) = n1.add_camera(OWNER_A, "Porch");
    let _sim = simulate(&ingest, "Porch", (W, H), &[]);
    let owner = n2.login(OWNER_A, PASSWORD).await;
    let viewer = n3.login(OWNER_B, PASSWORD).await;
    n1.wait_online(&owner, "Porch").await;

    // Share on node 2, watch on node 1, withdraw on node 2: node 1 refuses.
    let second = Duration::from_secs(1);
    let mut took = Vec::new();
    // Enough rounds for a p99 worth printing (each takes a fraction of a second).
    for round in 0..40 {
        let (st, share) = n2.share_with(&owner, &porch, OWNER_B, Some(&viewer)).await;
        assert_eq!(st, 202, "{share}");
        let g = grant_within(n1, &viewer, &porch, second).await;
        assert_eq!(get(&playlist(&g)).await.0, 200, "round {round}");
        let t = Instant::now();
        let r = client()
            .delete(format!(
                "{}/api/v1/cameras/{porch}/shares/{}",
                n2.base,
                share["user"].as_str().unwrap()
            ))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        took.push(
            refused_within(
                &playlist(&g),
                t,
                second,
                "unshare on node 2, view on node 1",
            )
            .await,
        );
    }
    took.sort();
    eprintln!(
        "unshare on node 2 -> refused on node 1: p50 {:?}, p99 {:?}, max {:?} ({} rounds)",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took.last().unwrap(),
        took.len()
    );

    // A kill switch thrown on node 3's admin API ends the owner's view on node 1.
    let out = n3.admin(&["admin-token"], None);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("admin token "))
        .unwrap()
        .to_string();
    let g = n1.grant(&owner, &porch).await;
    assert_eq!(get(&playlist(&g)).await.0, 200);
    let t = Instant::now();
    let r = client()
        .post(format!("{}/api/v1/admin/suspensions", n3.admin_base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "camera", "target": porch, "reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let took = refused_within(
        &playlist(&g),
        t,
        second,
        "kill switch on node 3, view on node 1",
    )
    .await;
    eprintln!("camera kill switch on node 3 -> refused on node 1 in {took:?}");
    let r = client()
        .delete(format!(
            "{}/api/v1/admin/suspensions/camera/{porch}",
            n3.admin_base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let g = grant_within(n1, &owner, &porch, second).await;
    assert_eq!(get(&playlist(&g)).await.0, 200);

    // The same from the CLI (another process, node 2's configuration): it
    // announces what it changed too.
    let t = Instant::now();
    n2.admin(&["suspend", "camera", &porch], None);
    let took = refused_within(&playlist(&g), t, second, "hearth suspend, view on node 1").await;
    eprintln!("hearth suspend (CLI) -> refused on node 1 in {took:?}");
    n2.admin(&["resume", "camera", &porch], None);
    let g = grant_within(n1, &owner, &porch, second).await;
    assert_eq!(get(&playlist(&g)).await.0, 200);

    // NATS gone: the camera's placement lease cannot be renewed, so its
    // ingest stops after half the lease (before another node could take it);
    // every node fails closed within the lease (and a probe).
    let t = Instant::now();
    nats.stop();
    let lease = Duration::from_secs(LEASE_SECONDS);
    let stopped = refused_or_offline_within(
        &playlist(&g),
        t,
        lease + Duration::from_secs(2),
        "NATS down",
        true,
    )
    .await;
    eprintln!("NATS stopped -> node 1 stopped the live view in {stopped:?} (lease {lease:?})");
    let fenced = loop {
        if n1.try_grant(&owner, &porch).await.0 == 503 {
            break t.elapsed();
        }
        assert!(
            t.elapsed() < lease + Duration::from_secs(2),
            "node 1 still grants without NATS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("NATS stopped -> node 1 refuses grants after {fenced:?}");
    assert!(
        fenced >= lease / 2,
        "fenced before the lease could run out: {fenced:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        n1.log().contains("placement lease not renewed"),
        "{}",
        n1.log()
    );
    for n in &nodes {
        let (st, body) = n.try_grant(&owner, &porch).await;
        assert_eq!(st, 503, "a fenced node answered a grant: {body}");
        assert!(n.log().contains("control plane lost"), "{}", n.log());
    }
    assert!(n1.try_grant(&owner, &porch).await.0 == 503);

    // NATS back: the nodes reload from the database and serve again.
    let t = Instant::now();
    nats.start_again();
    let g = grant_within(n1, &owner, &porch, Duration::from_secs(15)).await;
    eprintln!("NATS back -> node 1 grants again after {:?}", t.elapsed());
    // The camera reconnects (its own backoff) and is placed again.
    loop {
        let (st, _) = get(&playlist(&g)).await;
        if st == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the camera is not back: {st}\n{}",
            n1.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "NATS back -> the camera plays on node 1 again after {:?}",
        t.elapsed()
    );
    for n in [n2, n3] {
        let t = Instant::now();
        loop {
            let (st, _) = n.try_grant(&owner, &porch).await;
            if st != 503 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(15), "node still fenced");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // What was withdrawn while NATS was down is not back: the reload is the database's.
    assert_eq!(n1.try_grant(&viewer, &porch).await.0, 404);
}
