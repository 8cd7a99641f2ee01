//! Operations: `/healthz` and `/readyz` answer on the public port; `/metrics`
//! (Prometheus text) only on the admin listener and only with the operator
//! token, and its numbers follow what the server does.

mod common;
use common::*;

fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics() {
    let s = Server::demo(160, 90);
    for path in ["/healthz", "/readyz"] {
        let (st, _) = get(&format!("{}{path}", s.base)).await;
        assert_eq!(st, 200, "{path}");
    }
    // Never public.
    assert_eq!(get(&format!("{}/metrics", s.base)).await.0, 404);
    assert_eq!(get(&format!("{}/metrics", s.admin_base)).await.0, 401);
    let out = s.admin(&["admin-token"], None);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("admin token "))
        .unwrap()
        .to_string();
    let scrape = || async {
        let r = client()
            .get(format!("{}/metrics", s.admin_base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let before = scrape().await;
    assert!(value(&before, "hearth_cameras_live") >= 1.0, "{before}");
    assert!(value(&before, "hearth_rtmp_connections") >= 1.0);

    // A view moves bytes out; a wrong password moves the failures.
    let camera = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &camera).await;
    assert_eq!(
        get_as(g["hls_url"].as_str().unwrap(), Some(&a)).await.0,
        200
    );
    let (replayed, _) = get_as(g["hls_url"].as_str().unwrap(), None).await;
    assert_eq!(replayed, 403, "no holder");
    let r = client()
        .post(format!("{}/api/v1/login", s.base))
        .json(&serde_json::json!({"email": OWNER_A, "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A segment leaves from its sealed memfd with sendfile: every byte of it
    // counted as sent without a copy, and the viewer gets exactly the bytes the
    // door checked (the playback and isolation scenarios decode them).
    let ts_url = g["hls_ts_url"].as_str().unwrap();
    let (st, playlist) = get_as(ts_url, Some(&a)).await;
    assert_eq!(st, 200);
    let newest = String::from_utf8(playlist)
        .unwrap()
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .unwrap()
        .to_string();
    let segment_url = format!("{}/{newest}", ts_url.rsplit_once('/').unwrap().0);
    let zero_copy = value(&scrape().await, "hearth_bytes_sent_zero_copy_total");
    let (st, segment) = get_as(&segment_url, Some(&a)).await;
    assert_eq!(st, 200);
    assert!(
        segment.len() >= hearth_zerocopy::MIN_LEN,
        "{}",
        segment.len()
    );
    assert_eq!(segment.len() % 16, 0, "AES-128-CBC");
    let after = scrape().await;
    assert_eq!(
        value(&after, "hearth_bytes_sent_zero_copy_total") - zero_copy,
        segment.len() as f64
    );
    assert!(
        value(&after, "hearth_media_bytes_out_total")
            > value(&before, "hearth_media_bytes_out_total")
    );
    assert!(
        after.contains("hearth_secret_failures{kind=\"login\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("hearth_door_refusals{reason=\"not_holder\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("hearth_viewers{integration=\"app\"} 1"),
        "{after}"
    );
    for name in [
        "hearth_isolation_violations_total",
        "hearth_segments_produced_total",
        "hearth_rate_limited",
        "hearth_audit_queue_depth",
    ] {
        assert!(after.contains(name), "{name} missing:\n{after}");
    }
}
