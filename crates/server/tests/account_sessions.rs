//! A user's own sessions and password, through the API: the list of signed-in
//! sessions names each by a public id (never its token), ending one works as
//! signing it out (its token and its stream grants stop at once) and only for the
//! user's own sessions; changing the password takes the current one, under the
//! login's rate limits, and ends every other session.

mod common;
use common::*;
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// `hearth serve` with the two demo accounts and a camera of A's (offline: no
/// publisher, so a grant that still opens the door gets 503, a refused one 403).
fn server() -> (Server, String) {
    let s = Server::serve();
    for email in [OWNER_A, OWNER_B] {
        s.admin(
            &["user", "add", "--email", email],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let (camera, _) = s.add_camera(OWNER_A, "Porch");
    (s, camera)
}

async fn sessions(s: &Server, token: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}/api/v1/sessions", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn end_session(s: &Server, token: &str, id: &str) -> u16 {
    client()
        .delete(format!("{}/api/v1/sessions/{id}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn change_password(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    body: Value,
) -> (u16, Option<String>, Value) {
    let r = c
        .post(format!("{}/api/v1/password", s.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// The status of `token`'s API calls (200 while the session lives, 401 after).
async fn session_status(s: &Server, token: &str) -> u16 {
    client()
        .get(format!("{}/api/v1/cameras", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_lists_their_sessions_and_ends_one_with_its_streams() {
    let (s, camera) = server();
    let browser = reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) HearthTest/1.0")
        .build()
        .unwrap();
    let r = browser
        .post(format!("{}/api/v1/login", s.base))
        .json(&json!({"email": OWNER_A, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let here: String = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .into();
    let other = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;

    // Two sessions, newest first, this one marked; nothing in the answer is a
    // token (or could be mistaken for one).
    let (st, listed) = sessions(&s, &here).await;
    assert_eq!(st, 200, "{listed}");
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(&here) && !text.contains(&other), "{text}");
    let mine: Vec<&Value> = listed.iter().filter(|e| e["current"] == true).collect();
    assert_eq!(mine.len(), 1, "{listed:?}");
    let here_id = mine[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        mine[0]["client"],
        "Mozilla/5.0 (X11; Linux x86_64) HearthTest/1.0"
    );
    assert_eq!(mine[0]["address"], "127.0.0.1");
    for field in ["created_at", "expires_at"] {
        assert!(mine[0][field].as_str().unwrap().ends_with('Z'), "{field}");
    }
    let other_id = listed.iter().find(|e| e["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(here_id.len(), 32);
    assert_ne!(here_id, other_id);
    // The other session sees the same two, with itself marked.
    let (_, seen) = sessions(&s, &other).await;
    let current: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["current"] == true)
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(current, vec![other_id.as_str()]);
    // B sees only B's.
    let (_, bs) = sessions(&s, &b).await;
    assert_eq!(bs.as_array().unwrap().len(), 1);

    // The other session holds a stream grant that opens the door.
    let grant = s.grant(&other, &camera).await;
    let still = grant["snapshot_url"].as_str().unwrap().to_string();
    assert_eq!(
        get_as(&still, Some(&other)).await.0,
        503,
        "offline, not refused"
    );

    // Another user's session id, an unknown one and a malformed one: the same 404,
    // and the session lives on.
    assert_eq!(end_session(&s, &b, &other_id).await, 404);
    assert_eq!(end_session(&s, &here, &"0".repeat(32)).await, 404);
    assert_eq!(end_session(&s, &here, "not-an-id").await, 404);
    assert_eq!(end_session(&s, "not a token", &other_id).await, 401);
    assert_eq!(session_status(&s, &other).await, 200);

    // Ending it: its token and its stream stop at once; this one carries on.
    assert_eq!(end_session(&s, &here, &other_id).await, 204);
    assert_eq!(session_status(&s, &other).await, 401);
    let (st, body) = get_as(&still, Some(&other)).await;
    assert_eq!(
        st,
        403,
        "the ended session's grant: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(session_status(&s, &here).await, 200);
    assert_eq!(
        end_session(&s, &here, &other_id).await,
        404,
        "already ended"
    );
    let (_, left) = sessions(&s, &here).await;
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![here_id.as_str()]);

    // Ending one's own session is signing out.
    assert_eq!(end_session(&s, &here, &here_id).await, 204);
    assert_eq!(session_status(&s, &here).await, 401);
    assert_eq!(session_status(&s, &b).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_password_takes_the_current_one_and_ends_every_other_session() {
    let (s, camera) = server();
    let here = s.login(OWNER_A, PASSWORD).await;
    let other = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let grant = s.grant(&other, &camera).await;
    let still = grant["snapshot_url"].as_str().unwrap().to_string();
    assert_eq!(get_as(&still, Some(&other)).await.0, 503);
    let c = client();

    // A wrong current password: 403 with a clear message (not 401: this session
    // is fine), and nothing changes.
    let (st, _, body) = change_password(
        &c,
        &s,
        &here,
        json!({"current_password": "not my password", "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("current password"),
        "{body}"
    );
    // A short new password: 400, saying how long it must be.
    let (st, _, body) = change_password(
        &c,
        &s,
        &here,
        json!({"current_password": PASSWORD, "new_password": "short"}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains('8'), "{body}");
    // Malformed bodies and no session.
    let (st, _, _) = change_password(&c, &s, &here, json!({"new_password": NEW_PASSWORD})).await;
    assert_eq!(st, 400);
    let (st, _, _) = change_password(
        &c,
        &s,
        &here,
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": 1}),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = change_password(
        &c,
        &s,
        "not a token",
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(st, 401);
    assert_eq!(session_status(&s, &other).await, 200);
    assert_eq!(login_status_with(&c, &s.base, OWNER_A, PASSWORD).await, 200);

    // The right one: 204. The old password stops working, the new one works, the
    // other session ends with its streams; this one and B's carry on.
    let (st, _, body) = change_password(
        &c,
        &s,
        &here,
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    // In the audit log already, not queued (read at once, before the batch
    // writer's next flush could have written it).
    let db = rusqlite::Connection::open(s.data_dir().join("hearth.db")).unwrap();
    let detail: String = db
        .query_row(
            "SELECT detail FROM audit_events WHERE kind = 'password_changed'",
            [],
            |r| r.get(0),
        )
        .expect("the password change is audited before the answer");
    let detail: Value = serde_json::from_str(&detail).unwrap();
    // `other`, and the login that showed the old password still worked.
    assert_eq!(detail["sessions_ended"], 2, "{detail}");
    assert_eq!(login_status_with(&c, &s.base, OWNER_A, PASSWORD).await, 401);
    assert_eq!(
        login_status_with(&c, &s.base, OWNER_A, NEW_PASSWORD).await,
        200
    );
    assert_eq!(session_status(&s, &other).await, 401);
    assert_eq!(get_as(&still, Some(&other)).await.0, 403);
    assert_eq!(session_status(&s, &here).await, 200);
    assert_eq!(session_status(&s, &b).await, 200);
    assert_eq!(login_status_with(&c, &s.base, OWNER_B, PASSWORD).await, 200);
    // The signed-in sessions are this one and the login just made.
    let (_, listed) = sessions(&s, &here).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_the_current_password_through_a_session_is_rate_limited() {
    let (s, _) = server();
    let stolen = s.login(OWNER_A, PASSWORD).await;
    let c = client();
    let (mut wrong, mut limited, mut retry) = (0, 0, None);
    for i in 0..30 {
        let (st, after, body) = change_password(
            &c,
            &s,
            &stolen,
            json!({"current_password": format!("guess {i}"), "new_password": NEW_PASSWORD}),
        )
        .await;
        match st {
            403 => wrong += 1,
            429 => {
                limited += 1;
                retry = after;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    eprintln!("30 guesses through a session: {wrong} x 403, {limited} x 429");
    // The login's limit on one account from one address: a burst of 10 (one
    // spent by the login above), then 5 a minute.
    assert!(wrong <= 10, "{wrong} guesses were checked");
    assert!(limited >= 20, "{limited} refused");
    let wait: u64 = retry.expect("429 carries Retry-After").parse().unwrap();
    assert!(wait >= 1);
    // The right password is refused for now too, and so is a login to the same
    // account from the same address: the two share one limit.
    let (st, _, _) = change_password(
        &c,
        &s,
        &stolen,
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(st, 429);
    assert_eq!(login_status_with(&c, &s.base, OWNER_A, PASSWORD).await, 429);
    // The owner elsewhere still signs in, with the unchanged password.
    assert_eq!(
        login_status_with(&client_from("127.0.0.2"), &s.base, OWNER_A, PASSWORD).await,
        200
    );
}
