//! A media GET without a body is answered straight by the door's handlers, ahead
//! of the router (`hearth_server::door::get`); HEAD, a GET with a body and every
//! other method still go through the router. Both ways must answer alike: the same
//! headers, the same refusals, the same 404 for paths that are not the door's.

mod common;
use common::*;

async fn head_of(r: reqwest::Response) -> (u16, String, String, String, String) {
    let h = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (
        r.status().as_u16(),
        h("content-type"),
        h("cache-control"),
        h("x-content-type-options"),
        h("access-control-allow-origin"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn media_answers_alike_on_the_direct_path_and_through_the_router() {
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let camera = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &camera).await;
    let playlist = g["hls_ts_url"].as_str().unwrap().to_string();
    let token = grant_token(&playlist).unwrap().to_string();
    let c = client();

    // GET, the direct path.
    let r = media_get(&c, &playlist).send().await.unwrap();
    let direct = head_of(r).await;
    assert_eq!(
        direct,
        (
            200,
            "application/vnd.apple.mpegurl".into(),
            "no-store".into(),
            "nosniff".into(),
            "*".into()
        )
    );
    let body = media_get(&c, &playlist)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("#EXTM3U"), "{body}");

    // HEAD and a GET with a body take the router: same status and headers.
    let r = c.head(&playlist).bearer_auth(&a).send().await.unwrap();
    assert_eq!(head_of(r).await, direct, "HEAD");
    let r = c
        .get(&playlist)
        .bearer_auth(&a)
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(head_of(r).await, direct, "GET with a body");

    // A segment named in the playlist, both ways.
    let seg = body.lines().rfind(|l| !l.starts_with('#')).unwrap();
    let seg_url = format!("{}/{seg}", playlist.rsplit_once('/').unwrap().0);
    let direct = media_get(&c, &seg_url).send().await.unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.headers()["content-type"], "video/mp2t");
    let direct = direct.bytes().await.unwrap();
    let routed = c
        .get(&seg_url)
        .bearer_auth(&a)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(routed.status(), 200);
    assert_eq!(routed.bytes().await.unwrap(), direct);

    // Refusals: another session, no session, a forged grant — on both paths.
    let b = s.login(OWNER_B, PASSWORD).await;
    for (what, bearer) in [("another household", Some(&b)), ("no session", None)] {
        let get = c.get(&playlist);
        let with_body = c.get(&playlist).body("x");
        let (get, with_body) = match bearer {
            Some(t) => (get.bearer_auth(t), with_body.bearer_auth(t)),
            None => (get, with_body),
        };
        let direct = get.send().await.unwrap().status().as_u16();
        let routed = with_body.send().await.unwrap().status().as_u16();
        assert_eq!(direct, routed, "{what}");
        assert!(direct == 403 || direct == 401, "{what}: {direct}");
    }
    let flipped = if &token[20..21] == "B" { "C" } else { "B" };
    let forged = playlist.replace(
        &token,
        &format!("{}{flipped}{}", &token[..20], &token[21..]),
    );
    let direct = c.get(&forged).bearer_auth(&a).send().await.unwrap();
    assert_eq!(direct.status(), 403);
    let routed = c.head(&forged).bearer_auth(&a).send().await.unwrap();
    assert_eq!(routed.status(), 403);

    // Paths that are not the door's: 404 whichever way they arrive, and nothing
    // is percent-decoded into a route.
    let base = &s.base;
    for path in [
        format!("/media/{token}/"),
        format!("/media/{token}"),
        format!("/media/{token}/a/b"),
        format!("/media/{token}/ts%2Em3u8"),
        format!("/media/{token}/seg-1.mp3"),
    ] {
        let r = c
            .get(format!("{base}{path}"))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // An empty grant is no grant.
    let r = c
        .get(format!("{base}/media//ts.m3u8"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
