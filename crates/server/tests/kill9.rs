//! What a caller was answered survives `kill -9`: every login and every stream
//! grant handed out is in the audit log, written before the answer left, and
//! every view that received bytes, with the bytes counted up to the last
//! journal checkpoint.

mod common;
#[path = "common/hub_emulator.rs"]
mod hub_emulator;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn answered_grants_and_logins_survive_kill_9() {
    let mut s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    let living = s.camera_id(&a, "Living room").await;
    let mut grants = Vec::new();
    for _ in 0..5 {
        let g = s.grant(&a, &living).await;
        grants.push(g["hls_url"].as_str().unwrap().to_string());
    }
    // Killed right after the last answer: no flush, no shutdown.
    s.kill9();
    let db = rusqlite::Connection::open(s.data_dir().join("hearth.db")).unwrap();
    let count = |kind: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM audit_events WHERE kind = ?1",
            [kind],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("grant_issued"), 5, "every grant answered is audited");
    assert!(count("login") >= 1, "the login answered is audited");
}

/// The grant id inside a grant token (version byte, then the id's 16 bytes).
fn grant_id(token: &str) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .expect("a grant token");
    raw[1..17].iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetches the TS playlist under `url`'s grant and every segment it lists;
/// returns the body bytes received.
async fn fetch_round(http: &reqwest::Client, playlist: &str) -> u64 {
    let base = playlist.rsplit_once('/').unwrap().0;
    let r = media_get(http, playlist).send().await.unwrap();
    assert_eq!(r.status(), 200, "{playlist}");
    let text = r.text().await.unwrap();
    let mut bytes = text.len() as u64;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let r = media_get(http, &format!("{base}/{line}"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            bytes += r.bytes().await.unwrap().len() as u64;
        }
    }
    bytes
}

/// Under load — viewers fetching segments, a Google display streaming — the
/// server is killed with SIGKILL and restarted: every grant answered (web app
/// and linked display) is in the audit, every view that received bytes has its
/// `view_start`, and the views open at the crash are closed by the restart with
/// the byte counts journaled before it.
#[tokio::test(flavor = "multi_thread")]
async fn views_and_linked_grants_survive_kill_9_under_load() {
    use hub_emulator::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    let s = Server::demo(160, 90);
    let google_p = register(&s, "google");
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let http = client();

    // Quiet viewers: two rounds each, then nothing (their totals are journaled
    // by the next checkpoint, well before the kill).
    let mut quiet = Vec::new();
    for _ in 0..3 {
        let g = s.grant(&a, &living).await;
        let url = g["hls_ts_url"].as_str().unwrap().to_string();
        let mut got = fetch_round(&http, &url).await;
        got += fetch_round(&http, &url).await;
        quiet.push((grant_id(grant_token(&url).unwrap()), got));
    }
    // A linked Google display asks for a stream and plays a round.
    let ga = link(&s, &google_p, OWNER_A, None).await;
    let cmd = google_stream(&s, &ga.access, &living).await;
    assert_eq!(cmd["status"], "SUCCESS", "{cmd}");
    let display_url = cmd["states"]["cameraStreamAccessUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let display_got = fetch_round(&http, &display_url).await;
    let display_grant = grant_id(grant_token(&display_url).unwrap());

    // Busy viewers: fetching in a loop when the server dies.
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy = Vec::new();
    for _ in 0..6 {
        let g = s.grant(&a, &living).await;
        let url = g["hls_ts_url"].as_str().unwrap().to_string();
        let got = Arc::new(AtomicU64::new(0));
        let (http, stop, counter) = (http.clone(), stop.clone(), got.clone());
        let u = url.clone();
        let task = tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let base = u.rsplit_once('/').unwrap().0.to_string();
                let Ok(r) = media_get(&http, &u).send().await else {
                    return;
                };
                let Ok(text) = r.text().await else { return };
                counter.fetch_add(text.len() as u64, Ordering::Relaxed);
                for line in text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                {
                    let Ok(r) = media_get(&http, &format!("{base}/{line}")).send().await else {
                        return;
                    };
                    let Ok(body) = r.bytes().await else { return };
                    counter.fetch_add(body.len() as u64, Ordering::Relaxed);
                }
            }
        });
        busy.push((grant_id(grant_token(&url).unwrap()), got, task));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut s = s;
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for (_, _, task) in &mut busy {
        let _ = task.await;
    }
    let s = s.restart_serve();
    assert!(
        s.log().contains("audit journal replayed"),
        "the restart replays the journal: {}",
        s.log()
    );

    let db = rusqlite::Connection::open(s.data_dir().join("hearth.db")).unwrap();
    let events = |grant: &str, kind: &str| -> Vec<serde_json::Value> {
        let mut st = db
            .prepare("SELECT detail FROM audit_events WHERE grant_id = ?1 AND kind = ?2")
            .unwrap();
        st.query_map([grant, kind], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
            .collect()
    };
    for (grant, got) in &quiet {
        assert_eq!(events(grant, "grant_issued").len(), 1, "grant {grant}");
        assert_eq!(events(grant, "view_start").len(), 1, "view of {grant}");
        let end = events(grant, "view_end");
        assert_eq!(end.len(), 1, "one end for {grant}: {end:?}");
        assert_eq!(end[0]["closed_by"], "restart", "{end:?}");
        assert_eq!(
            end[0]["bytes"].as_u64(),
            Some(*got),
            "the journaled count of {grant} is what the viewer received"
        );
    }
    assert_eq!(events(&display_grant, "grant_issued").len(), 1);
    assert_eq!(events(&display_grant, "view_start").len(), 1);
    let end = events(&display_grant, "view_end");
    assert_eq!(end.len(), 1, "{end:?}");
    assert_eq!(end[0]["bytes"].as_u64(), Some(display_got));
    for (grant, got, _) in &busy {
        let got = got.load(Ordering::Relaxed);
        assert!(got > 0, "busy viewer {grant} received bytes");
        assert_eq!(events(grant, "grant_issued").len(), 1, "grant {grant}");
        assert_eq!(events(grant, "view_start").len(), 1, "view of {grant}");
        let end = events(grant, "view_end");
        assert_eq!(end.len(), 1, "{end:?}");
        let counted = end[0]["bytes"].as_u64().unwrap();
        assert!(counted > 0, "{grant}: {end:?}");
    }
    // Nothing copied twice: one view_start per grant overall.
    let dupes: i64 = db
        .query_row(
            "SELECT count(*) FROM (SELECT grant_id FROM audit_events WHERE kind = 'view_start' \
             GROUP BY grant_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dupes, 0);
}
