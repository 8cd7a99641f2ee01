//! WebRTC over WHEP, end to end on loopback with a real WebRTC peer (str0m as a
//! client: ICE, DTLS, SRTP, RTP depacketization): the owner's camera plays from
//! its cached keyframe and decodes to that camera's signature; `DELETE` ends the
//! session; other households, a missing session, wrong content and garbage SDP
//! get no session.

mod common;
#[path = "common/webrtc_peer.rs"]
mod webrtc_peer;
use common::*;
use webrtc_peer::*;

use std::time::{Duration, Instant};

async fn post_offer(
    url: &str,
    session: Option<&str>,
    content_type: &str,
    sdp: &str,
) -> reqwest::Response {
    let mut r = client()
        .post(url)
        .header("content-type", content_type)
        .body(sdp.to_string());
    if let Some(s) = session {
        r = r.bearer_auth(s);
    }
    r.send().await.unwrap()
}

fn nal_types(annexb: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < annexb.len() {
        if annexb[i..i + 3] == [0, 0, 1] {
            types.push(annexb[i + 3] & 0x1f);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_plays_over_whep_from_the_cached_keyframe_and_nothing_else_gets_a_session() {
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let camera = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &camera).await;
    let whep = g["whep_url"]
        .as_str()
        .expect("the grant names its WHEP URL")
        .to_string();
    assert!(whep.ends_with("/whep"), "{whep}");

    // Refusals first: no session is made for any of them.
    let (_, offer, _) = Viewer::offer();
    let b = s.login(OWNER_B, PASSWORD).await;
    for (what, session, ctype, sdp, want) in [
        (
            "another household's session",
            Some(b.as_str()),
            "application/sdp",
            offer.as_str(),
            403,
        ),
        ("no session", None, "application/sdp", offer.as_str(), 403),
        ("not SDP", Some(a.as_str()), "application/json", "{}", 415),
        (
            "garbage SDP",
            Some(a.as_str()),
            "application/sdp",
            "v=0\r\nthis is not sdp",
            400,
        ),
    ] {
        let r = post_offer(&whep, session, ctype, sdp).await;
        assert_eq!(r.status().as_u16(), want, "{what}");
        assert!(r.headers().get("location").is_none(), "{what}");
    }

    // The owner's offer.
    let (mut viewer, offer, pending) = Viewer::offer();
    let posted = Instant::now();
    let r = post_offer(&whep, Some(&a), "application/sdp", &offer).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("/whep/"), "{location}");
    let answer = r.text().await.unwrap();
    assert!(answer.contains("a=ice-lite"), "Hearth answers as ICE-lite");
    viewer.accept(pending, &answer);
    let (mut viewer, got) = tokio::task::spawn_blocking(move || {
        let got = viewer.run_since(posted, Duration::from_secs(20), 45);
        (viewer, got)
    })
    .await
    .unwrap();
    assert!(got.connected_after.is_some(), "ICE and DTLS connected");
    assert!(got.frames.len() >= 45, "only {} frames", got.frames.len());
    let first = nal_types(&got.frames[0]);
    assert!(
        first.contains(&5),
        "the first frame is the cached keyframe (IDR), got NAL types {first:?}"
    );
    // Every frame names its camera in-band, for the viewer to check.
    for (i, f) in got.frames.iter().enumerate() {
        let r = provenance_in(f).unwrap_or_else(|| panic!("frame {i} carries no provenance"));
        assert_eq!(r.camera.to_string(), camera, "frame {i}");
        assert_eq!(r.epoch.to_string(), g["epoch"].to_string(), "frame {i}");
    }
    println!(
        "webrtc: from POST, connected after {:?}, first frame after {:?}",
        got.connected_after.unwrap(),
        got.first_frame_after.unwrap(),
    );

    // The pictures are the owner's camera's.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("whep.h264");
    let bytes: Vec<u8> = got.frames.iter().flat_map(|f| f.iter().copied()).collect();
    std::fs::write(&file, bytes).unwrap();
    let pictures = decode_rgb(path_str(&file), 10.0, 160, 90);
    assert_signature(&pictures, 160, 90, signature_of(&camera));

    // Another household cannot end it; the holder can, once.
    let base = s.base.clone();
    let url = format!("{base}{location}");
    let r = client().delete(&url).bearer_auth(&b).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .patch(&url)
        .bearer_auth(&a)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "trickle accepted");
    let r = client().delete(&url).bearer_auth(&a).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Ended: nothing more arrives once what was in flight is in.
    let after = tokio::task::spawn_blocking(move || {
        viewer.run(Duration::from_millis(500), usize::MAX);
        viewer.run(Duration::from_secs(2), usize::MAX).frames.len()
    })
    .await
    .unwrap();
    assert_eq!(after, 0, "frames after DELETE");
    let r = client().delete(&url).bearer_auth(&a).send().await.unwrap();
    assert_eq!(r.status(), 404, "the session is gone");

    // Signing out ends what the session holds: the peer connection stops
    // within a second, without any DELETE.
    let (mut viewer, offer, pending) = Viewer::offer();
    let r = post_offer(&whep, Some(&a), "application/sdp", &offer).await;
    assert_eq!(r.status(), 201);
    viewer.accept(pending, &r.text().await.unwrap());
    let mut viewer = tokio::task::spawn_blocking(move || {
        assert!(viewer.run(Duration::from_secs(20), 10).frames.len() >= 10);
        viewer
    })
    .await
    .unwrap();
    let playing = tokio::task::spawn_blocking(move || {
        viewer.run(Duration::from_secs(4), usize::MAX).arrivals
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signed_out = Instant::now();
    let r = client()
        .post(format!("{base}/api/v1/logout"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let arrivals = playing.await.unwrap();
    let before = arrivals
        .iter()
        .filter(|t| **t < signed_out && signed_out - **t < Duration::from_millis(300))
        .count();
    assert!(before > 0, "live frames were arriving until the sign-out");
    let after = arrivals
        .last()
        .unwrap()
        .saturating_duration_since(signed_out);
    println!(
        "webrtc: {before} frames in the 300 ms before signing out, the last one {after:?} after"
    );
    assert!(
        after < Duration::from_secs(1),
        "frames went on for {after:?}"
    );
}

/// Ten cameras, fifty WebRTC viewers at once, faults injected into the grant,
/// hub and frame lookups (p = 0.2): every frame any viewer receives names its
/// own camera in-band, and every picture that decodes shows its own camera.
/// (Checked to fail when the door's comparison is switched off.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_foreign_frame_reaches_fifty_whep_viewers_of_ten_cameras_under_injected_faults() {
    require_tool("ffmpeg");
    let s = Server::demo_with(160, 90, &[], &[("HEARTH_FAULT_P", "0.2")]);
    assert!(
        s.log().contains("FAULT INJECTION ENABLED"),
        "the fault mode is not live"
    );
    // The demo's three cameras and seven more, publishing from their own processes.
    let mut sims = Vec::new();
    for i in 0..7 {
        let (id, ingest) = s.add_camera(OWNER_A, &format!("Extra {i}"));
        let sig = signature_of(&id).to_string();
        sims.push(simulate(
            &ingest,
            "extra",
            (160, 90),
            &["--signature", &sig],
        ));
    }
    let mut cameras = Vec::new();
    for owner in [OWNER_A, OWNER_B] {
        let t = s.login(owner, PASSWORD).await;
        for cam in s.cameras(&t).await {
            let (id, name) = (cam["id"].as_str().unwrap(), cam["name"].as_str().unwrap());
            s.wait_online(&t, name).await;
            cameras.push((t.clone(), id.to_string()));
        }
    }
    assert_eq!(cameras.len(), 10);
    // Five viewers per camera, all at once. Faults end sessions (a swapped
    // grant, hub or frame batch is refused at the door): a viewer offers again,
    // as a player would, up to a few times.
    let mut runs = Vec::new();
    for (t, camera) in cameras.iter().flat_map(|c| std::iter::repeat_n(c, 5)) {
        let (base, t, camera) = (s.base.clone(), t.clone(), camera.clone());
        runs.push(tokio::spawn(async move {
            let mut frames = Vec::new();
            for _ in 0..8 {
                let (status, g) = try_grant_at(&base, &t, &camera).await;
                if status != 200 {
                    continue;
                }
                let (mut viewer, offer, pending) = Viewer::offer();
                let whep = g["whep_url"].as_str().unwrap();
                let r = post_offer(whep, Some(&t), "application/sdp", &offer).await;
                if r.status() != 201 {
                    continue;
                }
                viewer.accept(pending, &r.text().await.unwrap());
                let got = tokio::task::spawn_blocking(move || {
                    viewer.run(Duration::from_secs(3), 40).frames
                })
                .await
                .unwrap();
                frames.extend(got);
                if frames.len() >= 20 {
                    break;
                }
            }
            (camera, frames)
        }));
    }
    let mut decoded_viewers = 0;
    let (mut total_frames, mut viewers) = (0, 0);
    for run in runs {
        let (camera, frames) = run.await.unwrap();
        viewers += 1;
        total_frames += frames.len();
        for (i, f) in frames.iter().enumerate() {
            let named = provenance_in(f).map(|r| r.camera.to_string());
            assert_eq!(
                named.as_deref(),
                Some(camera.as_str()),
                "FOREIGN FRAME over WHEP: a viewer of {camera}, frame {i}"
            );
        }
        if frames.is_empty() {
            continue;
        }
        let expected = signature_of(&camera);
        let mut readable = 0;
        for (i, f) in decode_frames(&frames, 160, 90).iter().enumerate() {
            if let Some(sig) = hearth_camera::read_signature(f, 160, 90) {
                assert_eq!(
                    sig, expected,
                    "FOREIGN PICTURE over WHEP: camera {camera}, frame {i}"
                );
                readable += 1;
            }
        }
        if readable > 0 {
            decoded_viewers += 1;
        }
    }
    println!(
        "webrtc under faults: {decoded_viewers}/{viewers} viewers decoded their own camera, {total_frames} frames, all naming their camera"
    );
    assert_eq!(viewers, 50);
    assert!(
        decoded_viewers * 2 >= viewers,
        "too few viewers decoded anything ({decoded_viewers}/{viewers})"
    );
    assert!(
        s.log().contains("isolation violation blocked"),
        "faults were injected into the WebRTC path and refused at the door"
    );
    drop(sims);
}

/// Whether `POST whep_url` with `session` is refused with `want` and no session.
async fn refused_offer(whep: &str, session: &str, want: u16, what: &str) {
    let (_, offer, _) = Viewer::offer();
    let r = post_offer(whep, Some(session), "application/sdp", &offer).await;
    assert_eq!(r.status().as_u16(), want, "{what}");
    assert!(r.headers().get("location").is_none(), "{what}");
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("a=ice-ufrag"),
        "{what}: an answer came back: {body}"
    );
}

/// Expired, replayed and revoked grants open no WebRTC session (so no RTP at
/// all), and revoking a share ends the session it was playing within a second.
#[tokio::test(flavor = "multi_thread")]
async fn expired_replayed_and_revoked_grants_get_no_webrtc_media() {
    use hearth_access::grant::{Grant, GrantKey};
    use hearth_model::{GrantId, UnixMillis};
    let s = Server::demo(160, 90);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &living).await;
    let whep = g["whep_url"].as_str().unwrap().to_string();
    let token = grant_token(&whep).unwrap().to_string();

    // Expired: A's own grant, signed with the server's key, already over.
    let key = GrantKey::load_or_create(&s.data_dir().join("grant.key")).unwrap();
    let real = *key.verify(&token, UnixMillis(0)).unwrap().grant();
    let expired = key.sign(&Grant {
        id: GrantId::random(),
        expires_at: UnixMillis(1_000),
        ..real
    });
    refused_offer(&whep.replace(&token, &expired), &a, 403, "expired grant").await;

    // Replayed: the grant presented by another session of the same account (a
    // second device), and by a session that has signed out.
    let a2 = s.login(OWNER_A, PASSWORD).await;
    refused_offer(&whep, &a2, 403, "another session of the same account").await;
    let a3 = s.login(OWNER_A, PASSWORD).await;
    let g3 = s.grant(&a3, &living).await;
    let r = client()
        .post(format!("{}/api/v1/logout", s.base))
        .bearer_auth(&a3)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let whep3 = g3["whep_url"].as_str().unwrap();
    for session in [a3.as_str(), a.as_str()] {
        refused_offer(whep3, session, 403, "a signed-out session's grant").await;
    }

    // Revoked share: B plays A's shared camera, A revokes, B's session ends and
    // its grant opens nothing more.
    let (st, share) = s.share(&a, &living, OWNER_B).await;
    assert_eq!(st, 202, "{share}");
    let b = s.login(OWNER_B, PASSWORD).await;
    let gb = s.grant(&b, &living).await;
    let whep_b = gb["whep_url"].as_str().unwrap().to_string();
    let (mut viewer, offer, pending) = Viewer::offer();
    let r = post_offer(&whep_b, Some(&b), "application/sdp", &offer).await;
    assert_eq!(r.status(), 201);
    viewer.accept(pending, &r.text().await.unwrap());
    let mut viewer = tokio::task::spawn_blocking(move || {
        assert!(viewer.run(Duration::from_secs(20), 10).frames.len() >= 10);
        viewer
    })
    .await
    .unwrap();
    let playing = tokio::task::spawn_blocking(move || {
        viewer.run(Duration::from_secs(4), usize::MAX).arrivals
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = client()
        .delete(format!(
            "{}/api/v1/cameras/{living}/shares/{}",
            s.base,
            share["user"].as_str().unwrap()
        ))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let revoked = Instant::now();
    let arrivals = playing.await.unwrap();
    assert!(arrivals.iter().any(|t| *t < revoked), "B was playing");
    let after = arrivals.last().unwrap().saturating_duration_since(revoked);
    println!("webrtc: the last frame {after:?} after the share was revoked");
    assert!(
        after < Duration::from_secs(1),
        "frames went on for {after:?}"
    );
    refused_offer(&whep_b, &b, 403, "a revoked share's grant").await;
}

/// One address holds at most `webrtc_sessions_per_address` sessions at once;
/// past it, `429` with `Retry-After`, and room again once one ends.
#[tokio::test(flavor = "multi_thread")]
async fn one_address_holds_at_most_its_share_of_webrtc_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, "[limits]\nwebrtc_sessions_per_address = 3\n").unwrap();
    let s = Server::demo_with(160, 90, &["--config", path_str(&config)], &[]);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let whep = s.grant(&a, &living).await["whep_url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut locations = Vec::new();
    for _ in 0..3 {
        let (_, offer, _) = Viewer::offer();
        let r = post_offer(&whep, Some(&a), "application/sdp", &offer).await;
        assert_eq!(r.status(), 201);
        locations.push(r.headers()["location"].to_str().unwrap().to_string());
    }
    let (_, offer, _) = Viewer::offer();
    let r = post_offer(&whep, Some(&a), "application/sdp", &offer).await;
    assert_eq!(r.status(), 429, "a fourth session from the same address");
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get("location").is_none());
    let r = client()
        .delete(format!("{}{}", s.base, locations[0]))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The session ends on its own task: room comes back at once after that.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, offer, _) = Viewer::offer();
        let r = post_offer(&whep, Some(&a), "application/sdp", &offer).await;
        if r.status() == 201 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(Instant::now() < deadline, "no room after a session ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
