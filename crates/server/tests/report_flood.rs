//! A viewer a camera is shared with cannot bury the owner's access log: reports
//! are capped in size, limited per viewer and camera, and a repeat is stored
//! once; the access log comes a page at a time.

mod common;
use common::*;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread")]
async fn reports_cannot_bury_the_access_log() {
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let living = s.camera_id(&a, "Living room").await;
    assert_eq!(s.share(&a, &living, OWNER_B).await.0, 202);
    // The owner watches: their own view is in the log.
    let g = s.grant(&a, &living).await;
    assert_eq!(
        get_as(g["hls_url"].as_str().unwrap(), Some(&a)).await.0,
        200
    );

    let url = format!("{}/api/v1/cameras/{living}/reports", s.base);
    let big = "x".repeat(4000);
    let too_big = client()
        .post(&url)
        .bearer_auth(&b)
        .json(&serde_json::json!({"kind": "provenance", "detail": {"junk": big}}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 400, "an oversized report");
    // The same report again and again: accepted, stored once.
    for _ in 0..3 {
        let r = client()
            .post(&url)
            .bearer_auth(&b)
            .json(&serde_json::json!({"kind": "provenance", "detail": {"same": true}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let (mut accepted, mut limited) = (0, 0);
    for i in 0..1100 {
        let r = client()
            .post(&url)
            .bearer_auth(&b)
            .json(&serde_json::json!({"kind": "provenance", "detail": {"n": i, "pad": "y".repeat(1500)}}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => limited += 1,
            other => panic!("status {other}"),
        }
    }
    eprintln!("1100 reports: {accepted} accepted, {limited} limited");
    assert!(limited > 1000, "reports were not limited: {limited}");

    // The owner's log: a page of at most 100, paged to the end without repeats;
    // the reports stored are a handful, and the owner's own view is there.
    let (mut all, mut before, mut bytes) = (Vec::new(), None::<String>, 0);
    loop {
        let mut req = client()
            .get(format!("{}/api/v1/cameras/{living}/access-log", s.base))
            .bearer_auth(&a);
        if let Some(c) = &before {
            req = req.query(&[("before", c.as_str()), ("limit", "3")]);
        } else {
            req = req.query(&[("limit", "3")]);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let next = r
            .headers()
            .get("x-next-page")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r.bytes().await.unwrap();
        bytes = bytes.max(body.len());
        let page: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert!(page.len() <= 3);
        all.extend(page);
        match next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let reports = all.iter().filter(|e| e["kind"] == "client_report").count();
    eprintln!(
        "access log: {} entries, {reports} reports, largest page {bytes} bytes",
        all.len()
    );
    assert!(reports <= 5, "{reports} reports stored");
    assert!(
        all.iter()
            .any(|e| e["kind"] == "grant_issued" && e["viewer"] == OWNER_A)
    );
    let unique: HashSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(unique.len(), all.len(), "a page repeated an entry");
    assert!(bytes < 64 * 1024, "a page of {bytes} bytes");
}
