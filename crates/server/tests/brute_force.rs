//! Guessing passwords: login is rate-limited per address and per account and
//! address (429 with Retry-After, no password hashing spent), the account's owner
//! elsewhere still signs in, password hashing runs in a bounded pool (a flood of
//! parallel wrong logins neither grows the server's memory without bound nor
//! starves a signed-in user), and failures are audited as one row per burst.

mod common;
use common::*;
use std::time::{Duration, Instant};

async fn login(c: &reqwest::Client, base: &str, email: &str, password: &str) -> reqwest::Response {
    c.post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_is_limited_and_bounded() {
    let mut s = Server::demo(160, 90);
    let base = s.base.clone();

    // 1,000 wrong passwords in a row on A's account from one address.
    let attacker = client_from("127.0.0.2");
    let t = Instant::now();
    let (mut unauthorized, mut limited, mut retry_after) = (0, 0, None);
    for _ in 0..1000 {
        let r = login(&attacker, &base, OWNER_A, "wrong password").await;
        match r.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                limited += 1;
                retry_after = r.headers().get("retry-after").cloned();
            }
            other => panic!("unexpected status {other}"),
        }
    }
    eprintln!(
        "1000 wrong logins: {unauthorized} x 401, {limited} x 429 in {:?}",
        t.elapsed()
    );
    assert!(unauthorized <= 12, "{unauthorized} guesses were checked");
    let wait: u64 = retry_after
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    // The right password from the same address is refused for now too ...
    assert_eq!(
        login(&attacker, &base, OWNER_A, PASSWORD).await.status(),
        429
    );
    // ... but A, elsewhere, signs in.
    let owner = client_from("127.0.0.3");
    assert_eq!(login(&owner, &base, OWNER_A, PASSWORD).await.status(), 200);

    // 64 parallel wrong logins from many addresses for a few seconds, while a
    // signed-in user lists cameras.
    let b = s.login(OWNER_B, PASSWORD).await;
    let rss_before = s.rss_mib();
    let stop = Instant::now() + Duration::from_secs(6);
    let mut flood = Vec::new();
    for i in 0..64u32 {
        let base = base.clone();
        flood.push(tokio::spawn(async move {
            let c = client_from(&format!("127.1.{}.{}", i / 200, 1 + i % 200));
            let (mut refused_busy, mut n) = (0u32, 0u32);
            while Instant::now() < stop {
                let r = login(&c, &base, &format!("nobody{n}@example.com"), "guess").await;
                n += 1;
                if r.status() == 429 {
                    refused_busy += 1;
                }
            }
            (n, refused_busy)
        }));
    }
    let mut slowest = Duration::ZERO;
    let mut peak = rss_before;
    while Instant::now() < stop {
        let t = Instant::now();
        assert_eq!(s.cameras(&b).await.len(), 1);
        slowest = slowest.max(t.elapsed());
        peak = peak.max(s.rss_mib());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut attempts, mut refused) = (0, 0);
    for f in flood {
        let (n, r) = f.await.unwrap();
        attempts += n;
        refused += r;
    }
    eprintln!(
        "flood: {attempts} logins ({refused} refused), camera list slowest {slowest:?}, \
         RSS {rss_before} -> peak {peak} MiB"
    );
    assert!(refused > 0, "the hashing pool never said no");
    assert!(
        slowest < Duration::from_secs(3),
        "a signed-in user waited {slowest:?}"
    );
    assert!(
        peak < rss_before + 400,
        "RSS grew from {rss_before} to {peak} MiB"
    );

    // One audit row per burst, not one per attempt.
    s.terminate();
    let db = rusqlite::Connection::open(s.data_dir().join("hearth.db")).unwrap();
    let rows: Vec<(i64, String)> = db
        .prepare(
            "SELECT json_extract(detail, '$.count'), json_extract(detail, '$.accounts') \
             FROM audit_events WHERE kind = 'login_failures' \
             AND json_extract(detail, '$.address') = '127.0.0.2'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // 1,000 wrong passwords and the refused right one: one row.
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, 1001);
    assert!(rows[0].1.contains(OWNER_A), "{rows:?}");
    let per_attempt: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failure'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(per_attempt, 0, "no row per attempt");
}

/// Behind a reverse proxy named in `trusted_proxies`, the login limits key on the
/// client it forwards for: one client guessing is stopped, another client through
/// the same proxy still signs in; a peer that is not a trusted proxy cannot
/// choose its own address with the header.
#[tokio::test(flavor = "multi_thread")]
async fn limits_key_on_the_forwarded_client_behind_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, "[limits]\ntrusted_proxies = [\"127.0.0.3\"]\n").unwrap();
    let s = Server::demo_with(160, 90, &["--config", path_str(&config)], &[]);
    let proxy = client_from("127.0.0.3");
    let via = |xff: &'static str, password: &'static str| {
        proxy
            .post(format!("{}/api/v1/login", s.base))
            .header("x-forwarded-for", xff)
            .json(&serde_json::json!({"email": OWNER_A, "password": password}))
            .send()
    };
    let mut limited = 0;
    for _ in 0..40 {
        if via("203.0.113.5", "wrong").await.unwrap().status() == 429 {
            limited += 1;
        }
    }
    assert!(
        limited >= 20,
        "the guessing client was not limited: {limited}"
    );
    assert_eq!(
        via("203.0.113.6", PASSWORD).await.unwrap().status(),
        200,
        "another client behind the proxy is not locked out"
    );
    // A forged header from an untrusted peer changes nothing: its own guesses
    // are limited under its own address whatever it claims.
    let liar = client_from("127.0.0.4");
    let mut limited = 0;
    for i in 0..40 {
        let r = liar
            .post(format!("{}/api/v1/login", s.base))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&serde_json::json!({"email": OWNER_A, "password": "wrong"}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited += 1;
        }
    }
    assert!(
        limited >= 20,
        "rotating the header escaped the limit: {limited}"
    );
}
