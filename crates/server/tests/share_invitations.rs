//! Sharing asks the recipient: an owner's invitation is answered the same
//! whether or not an account has the email (the share endpoint tells nobody who
//! has an account), and the camera is shared only once the recipient accepts.

mod common;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_share_is_an_invitation_the_recipient_accepts() {
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    let b = s.login(OWNER_B, PASSWORD).await;
    let living = s.camera_id(&a, "Living room").await;
    let invite = |email: &'static str| {
        let url = format!("{}/api/v1/cameras/{living}/shares", s.base);
        let a = a.clone();
        async move {
            let r = client()
                .post(url)
                .bearer_auth(&a)
                .json(&serde_json::json!({ "email": email }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // An account and no account: the same answer, word for word but the email.
    let (st_b, body_b) = invite(OWNER_B).await;
    let (st_x, body_x) = invite("nobody@example.com").await;
    assert_eq!((st_b, st_x), (202, 202));
    assert_eq!(body_b["status"], body_x["status"]);
    assert_eq!(
        body_b.as_object().unwrap().keys().collect::<Vec<_>>(),
        body_x.as_object().unwrap().keys().collect::<Vec<_>>()
    );

    // Not shared yet: B cannot view, and sees the invitation.
    assert_eq!(s.try_grant(&b, &living).await.0, 404);
    let mine: Vec<Value> = client()
        .get(format!("{}/api/v1/invitations", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["camera_id"], living.as_str());
    assert_eq!(mine[0]["camera_name"], "Living room");
    // A lists both as pending.
    let shares = |t: String| {
        let url = format!("{}/api/v1/cameras/{living}/shares", s.base);
        async move {
            client()
                .get(url)
                .bearer_auth(&t)
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    let listed = shares(a.clone()).await;
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|e| e["status"] == "pending" && e["user"].is_null())
    );

    // B accepts: B views. The other invitation stays pending; A withdraws it.
    let r = client()
        .post(format!("{}/api/v1/invitations/{living}/accept", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.try_grant(&b, &living).await.0, 200);
    let listed = shares(a.clone()).await;
    let accepted: Vec<_> = listed
        .iter()
        .filter(|e| e["status"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["email"], OWNER_B);
    let r = client()
        .delete(format!(
            "{}/api/v1/cameras/{living}/invitations/nobody@example.com",
            s.base
        ))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(shares(a.clone()).await.len(), 1);

    // A declined invitation shares nothing.
    let front = s.camera_id(&a, "Nursery").await;
    let r = client()
        .post(format!("{}/api/v1/cameras/{front}/shares", s.base))
        .bearer_auth(&a)
        .json(&serde_json::json!({ "email": OWNER_B }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = client()
        .delete(format!("{}/api/v1/invitations/{front}", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client()
        .post(format!("{}/api/v1/invitations/{front}/accept", s.base))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a declined invitation cannot be accepted");
    assert_eq!(s.try_grant(&b, &front).await.0, 404);
}
