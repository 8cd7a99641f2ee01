//! What a caller was answered survives `kill -9`: every login and every stream
//! grant handed out is in the audit log, written before the answer left.

mod common;
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
