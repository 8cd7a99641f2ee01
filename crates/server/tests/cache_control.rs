//! No cache may keep one user's answers: every successful `/api` and `/oauth`
//! answer (login token, grant URLs, camera lists, access logs, links) says
//! `Cache-Control: no-store` — the 2019 failure was a cache serving one user's
//! answer to another.

mod common;
use common::*;

async fn cache_control(req: reqwest::RequestBuilder) -> (u16, String) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let cc = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, cc)
}

#[tokio::test(flavor = "multi_thread")]
async fn api_and_oauth_answers_are_never_cached() {
    let s = Server::demo(160, 90);
    let c = client();
    let login = c
        .post(format!("{}/api/v1/login", s.base))
        .json(&serde_json::json!({"email": OWNER_A, "password": PASSWORD}));
    assert_eq!(cache_control(login).await, (200, "no-store".into()));
    let a = s.login(OWNER_A, PASSWORD).await;
    let camera = s.camera_id(&a, "Living room").await;
    let base = &s.base;
    for (what, req) in [
        ("cameras", c.get(format!("{base}/api/v1/cameras"))),
        (
            "grant",
            c.post(format!("{base}/api/v1/cameras/{camera}/streams")),
        ),
        (
            "access log",
            c.get(format!("{base}/api/v1/cameras/{camera}/access-log")),
        ),
        (
            "shares",
            c.get(format!("{base}/api/v1/cameras/{camera}/shares")),
        ),
        ("links", c.get(format!("{base}/api/v1/integrations"))),
    ] {
        let (status, cc) = cache_control(req.bearer_auth(&a)).await;
        assert_eq!((status, cc.as_str()), (200, "no-store"), "{what}");
    }
    // The OAuth provider's answers, an error included.
    let token = c
        .post(format!("{base}/oauth/token"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")]);
    let (status, cc) = cache_control(token).await;
    assert_eq!((status >= 400, cc.as_str()), (true, "no-store"));
    // The web app's page is revalidated, not stored blindly.
    let (status, cc) = cache_control(c.get(format!("{base}/"))).await;
    assert_eq!((status, cc.as_str()), (200, "no-cache"));
}
