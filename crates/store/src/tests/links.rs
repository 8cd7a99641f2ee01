//! OAuth clients, codes, links and tokens: single use, rotation, replay, revocation,
//! and the generation moving with every change a live stream depends on.

use super::*;
use crate::input::now;

fn client(s: &dyn Store, integration: Integration) -> OAuthClient {
    let c = OAuthClient {
        integration,
        client_id: format!("{}-client", integration.as_str()),
        secret_hash: key(9),
        redirect_uris: vec!["https://example.com/cb".into()],
        created_at: UnixMillis(1),
    };
    s.put_oauth_client(&c).unwrap();
    c
}

fn code_for(user: UserId, cameras: Vec<CameraId>) -> AuthCode {
    AuthCode {
        integration: Integration::Google,
        client_id: "google-client".into(),
        user,
        cameras,
        redirect_uri: "https://example.com/cb".into(),
        code_challenge: Some("challenge".into()),
        expires_at: UnixMillis(now().0 + 60_000),
    }
}

fn pair(n: u8) -> TokenPair {
    let later = UnixMillis(now().0 + 3_600_000);
    TokenPair {
        access: key(n),
        access_expires: later,
        refresh: key(n + 100),
        refresh_expires: later,
    }
}

fn link(user: UserId, cameras: Vec<CameraId>) -> Link {
    Link {
        id: LinkId::random(),
        integration: Integration::Google,
        user,
        cameras,
        created_at: now(),
    }
}

/// Creates a link the way the server does: a code is issued and redeemed first.
fn linked(s: &dyn Store, code: TokenHash, l: &Link, tokens: &TokenPair) {
    let mut c = code_for(l.user, l.cameras.clone());
    c.integration = l.integration;
    s.create_auth_code(code, &c).unwrap();
    linked_code_only(s, code, l, tokens);
}

pub(super) fn clients_are_registered_replaced_and_found_by_id(s: &dyn Store) {
    let mut c = client(s, Integration::Google);
    assert_eq!(
        s.oauth_client_by_id("google-client").unwrap(),
        Some(c.clone())
    );
    assert_eq!(s.oauth_client_by_id("nobody").unwrap(), None);
    c.redirect_uris = vec!["https://a/1".into(), "https://a/2".into()];
    c.client_id = "new-id".into();
    s.put_oauth_client(&c).unwrap();
    assert_eq!(s.oauth_clients().unwrap(), vec![c]);
    let app = OAuthClient {
        integration: Integration::App,
        client_id: "x".into(),
        secret_hash: key(1),
        redirect_uris: vec!["https://x".into()],
        created_at: UnixMillis(0),
    };
    assert!(matches!(
        s.put_oauth_client(&app),
        Err(StoreError::InvalidInput { .. })
    ));
}

pub(super) fn a_code_is_redeemed_once_and_a_replay_revokes_its_link(s: &dyn Store) {
    client(s, Integration::Google);
    let (h, u) = household_with_user(s, "a@x.y");
    let cam = s.create_camera(h.id, "door", "UTC", key(1)).unwrap();
    s.create_auth_code(key(50), &code_for(u.id, vec![cam.id]))
        .unwrap();
    let Redeemed::Fresh(code) = s.redeem_auth_code(key(50), now()).unwrap() else {
        panic!("a fresh code redeems")
    };
    assert_eq!(code.cameras, vec![cam.id]);
    let l = link(u.id, code.cameras);
    let g0 = s.generation().unwrap();
    s.create_link(key(50), &l, &pair(1)).unwrap();
    assert!(
        s.generation().unwrap() > g0,
        "a new link moves the generation"
    );
    assert_eq!(
        s.link_by_access_token(key(1), now()).unwrap(),
        AccessToken::Live(l.clone())
    );
    assert_eq!(
        s.link_by_access_token(key(1), UnixMillis(now().0 + 3_600_001))
            .unwrap(),
        AccessToken::Expired(l.clone()),
        "an hour later"
    );
    assert_eq!(
        s.link_by_access_token(key(101), now()).unwrap(),
        AccessToken::Unknown,
        "a refresh token is not an access token"
    );
    assert_eq!(s.links().unwrap(), vec![l.clone()]);

    assert_eq!(
        s.redeem_auth_code(key(50), now()).unwrap(),
        Redeemed::Replayed
    );
    assert_eq!(
        s.link_by_id(l.id).unwrap(),
        None,
        "the replay revoked the link"
    );
    assert_eq!(
        s.link_by_access_token(key(1), now()).unwrap(),
        AccessToken::Unknown
    );
    assert_eq!(
        s.redeem_auth_code(key(51), now()).unwrap(),
        Redeemed::Invalid
    );

    // A replay between a code's redemption and its link: no link may come of it.
    s.create_auth_code(key(53), &code_for(u.id, vec![]))
        .unwrap();
    assert!(matches!(
        s.redeem_auth_code(key(53), now()).unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        s.redeem_auth_code(key(53), now()).unwrap(),
        Redeemed::Replayed
    );
    assert!(matches!(
        s.create_link(key(53), &link(u.id, vec![]), &pair(3)),
        Err(StoreError::Conflict { .. })
    ));
    assert!(s.links_of_user(u.id).unwrap().is_empty());

    let mut expired = code_for(u.id, vec![]);
    expired.expires_at = UnixMillis(now().0 - 1);
    s.create_auth_code(key(52), &expired).unwrap();
    assert_eq!(
        s.redeem_auth_code(key(52), now()).unwrap(),
        Redeemed::Invalid
    );
}

pub(super) fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_link(s: &dyn Store) {
    client(s, Integration::Google);
    let (_, u) = household_with_user(s, "a@x.y");
    let l = link(u.id, vec![]);
    linked(s, key(50), &l, &pair(1));
    let Redeemed::Fresh(found) = s.rotate_refresh_token(key(101), &pair(2), now()).unwrap() else {
        panic!("the refresh token rotates")
    };
    assert_eq!(found.id, l.id);
    assert!(matches!(
        s.link_by_access_token(key(2), now()).unwrap(),
        AccessToken::Live(_)
    ));
    assert_eq!(
        s.rotate_refresh_token(key(1), &pair(3), now()).unwrap(),
        Redeemed::Invalid,
        "an access token is not a refresh token"
    );
    // The old refresh token again before its successor (key 102) was used: a
    // retry. The retry gets a new pair (what then becomes of 102: see
    // a_successor_dropped_by_a_retry_revokes_the_link_if_it_turns_up).
    assert!(matches!(
        s.rotate_refresh_token(key(101), &pair(4), now()).unwrap(),
        Redeemed::Fresh(_)
    ));
    // The newest one is used; now the old one is a replay: everything goes.
    assert!(matches!(
        s.rotate_refresh_token(key(104), &pair(6), now()).unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        s.rotate_refresh_token(key(101), &pair(7), now()).unwrap(),
        Redeemed::Replayed
    );
    assert_eq!(s.link_by_id(l.id).unwrap(), None);
    assert_eq!(
        s.link_by_access_token(key(2), now()).unwrap(),
        AccessToken::Unknown
    );
}

pub(super) fn revoking_a_refresh_token_revokes_the_link_an_access_token_only_itself(s: &dyn Store) {
    client(s, Integration::Google);
    client(s, Integration::Alexa);
    let (_, u) = household_with_user(s, "a@x.y");
    let l = link(u.id, vec![]);
    linked(s, key(50), &l, &pair(1));
    assert_eq!(
        s.revoke_oauth_token(key(1), Integration::Google).unwrap(),
        Revocation::Revoked(l.clone())
    );
    assert_eq!(
        s.link_by_access_token(key(1), now()).unwrap(),
        AccessToken::Unknown
    );
    assert!(s.link_by_id(l.id).unwrap().is_some());
    assert_eq!(
        s.revoke_oauth_token(key(101), Integration::Google).unwrap(),
        Revocation::Revoked(l.clone())
    );
    assert_eq!(s.link_by_id(l.id).unwrap(), None);
    assert_eq!(
        s.revoke_oauth_token(key(101), Integration::Google).unwrap(),
        Revocation::Unknown,
        "already revoked"
    );
    assert_eq!(
        s.revoke_oauth_token(key(77), Integration::Google).unwrap(),
        Revocation::Unknown
    );

    // Another client presenting a link's token: reported, not revoked here.
    let l = link(u.id, vec![]);
    linked(s, key(51), &l, &pair(2));
    assert_eq!(
        s.revoke_oauth_token(key(2), Integration::Alexa).unwrap(),
        Revocation::OtherClient(l.clone())
    );
    assert!(matches!(
        s.link_by_access_token(key(2), now()).unwrap(),
        AccessToken::Live(_)
    ));
}

pub(super) fn relinking_replaces_the_link_and_consents_follow_transfer(s: &dyn Store) {
    client(s, Integration::Google);
    client(s, Integration::Alexa);
    let (h, u) = household_with_user(s, "a@x.y");
    let (h2, _) = household_with_user(s, "b@x.y");
    let a = s.create_camera(h.id, "a", "UTC", key(1)).unwrap();
    let b = s.create_camera(h.id, "b", "UTC", key(2)).unwrap();
    let first = link(u.id, vec![a.id]);
    linked(s, key(50), &first, &pair(1));
    let second = link(u.id, vec![a.id, b.id]);
    linked(s, key(51), &second, &pair(2));
    assert_eq!(s.links_of_user(u.id).unwrap().len(), 1);
    assert_eq!(s.link_by_id(first.id).unwrap(), None);
    assert_eq!(
        s.link_by_access_token(key(1), now()).unwrap(),
        AccessToken::Unknown
    );

    let g0 = s.generation().unwrap();
    s.set_link_cameras(second.id, &[b.id]).unwrap();
    assert!(
        s.generation().unwrap() > g0,
        "consent changes move the generation"
    );
    assert_eq!(
        s.link_by_id(second.id).unwrap().unwrap().cameras,
        vec![b.id]
    );
    let (_, viewer) = household_with_user(s, "c@x.y");
    let vlink = Link {
        integration: Integration::Alexa,
        ..link(viewer.id, vec![])
    };
    s.share_camera(a.id, viewer.id, now()).unwrap();
    linked(
        s,
        key(52),
        &Link {
            cameras: vec![a.id],
            ..vlink.clone()
        },
        &pair(7),
    );
    s.unshare_camera(a.id, viewer.id).unwrap();
    s.share_camera(a.id, viewer.id, now()).unwrap();
    assert!(
        s.link_by_id(vlink.id).unwrap().unwrap().cameras.is_empty(),
        "sharing again does not restore the consent"
    );
    s.transfer_camera(b.id, h2.id, key(66)).unwrap();
    assert!(s.link_by_id(second.id).unwrap().unwrap().cameras.is_empty());

    let g1 = s.generation().unwrap();
    assert!(s.delete_link(second.id).unwrap());
    assert!(s.generation().unwrap() > g1);
    assert!(!s.delete_link(second.id).unwrap());
    assert!(matches!(
        s.set_link_cameras(second.id, &[]),
        Err(StoreError::NotFound { .. })
    ));
}

pub(super) fn consent_waiting_in_a_code_does_not_survive_unshare_transfer_or_reset(s: &dyn Store) {
    client(s, Integration::Google);
    let (h, owner) = household_with_user(s, "a@x.y");
    let (h2, viewer) = household_with_user(s, "b@x.y");
    let (_, stranger) = household_with_user(s, "c@x.y");
    let a = s.create_camera(h.id, "a", "UTC", key(1)).unwrap();
    let b = s.create_camera(h.id, "b", "UTC", key(2)).unwrap();
    let c = s.create_camera(h.id, "c", "UTC", key(3)).unwrap();
    s.share_camera(a.id, viewer.id, now()).unwrap();

    // A code is issued; before it is exchanged the camera changes hands.
    for (n, camera, user, change) in [
        (60u8, a.id, viewer.id, "unshare and share again"),
        (61, b.id, owner.id, "factory reset"),
        (62, c.id, owner.id, "transfer"),
    ] {
        s.create_auth_code(key(n), &code_for(user, vec![camera]))
            .unwrap();
        match change {
            "unshare and share again" => {
                s.unshare_camera(camera, user).unwrap();
                s.share_camera(camera, user, now()).unwrap();
            }
            "factory reset" => {
                s.reset_camera(camera, key(90)).unwrap();
            }
            _ => {
                s.transfer_camera(camera, h2.id, key(67)).unwrap();
            }
        }
        assert_eq!(
            s.redeem_auth_code(key(n), now()).unwrap(),
            Redeemed::Invalid,
            "{change}: the code is void"
        );
    }

    // Redeemed, not yet linked, when the camera is reset: no link comes of it.
    s.create_auth_code(key(63), &code_for(owner.id, vec![b.id]))
        .unwrap();
    assert!(matches!(
        s.redeem_auth_code(key(63), now()).unwrap(),
        Redeemed::Fresh(_)
    ));
    s.reset_camera(b.id, key(91)).unwrap();
    assert!(matches!(
        s.create_link(key(63), &link(owner.id, vec![b.id]), &pair(3)),
        Err(StoreError::Conflict { .. })
    ));

    // A code naming cameras the user cannot see links only the visible ones;
    // a code naming none of the changed cameras is untouched.
    s.create_auth_code(key(64), &code_for(stranger.id, vec![a.id]))
        .unwrap();
    s.reset_camera(c.id, key(92)).unwrap();
    let l = link(stranger.id, vec![a.id]);
    linked_code_only(s, key(64), &l, &pair(4));
    assert!(s.link_by_id(l.id).unwrap().unwrap().cameras.is_empty());
    s.set_link_cameras(l.id, &[a.id, b.id]).unwrap();
    assert!(
        s.link_by_id(l.id).unwrap().unwrap().cameras.is_empty(),
        "consents are stored only for cameras the user may see"
    );
}

/// Redeems an existing code and creates its link.
fn linked_code_only(s: &dyn Store, code: TokenHash, l: &Link, tokens: &TokenPair) {
    assert!(matches!(
        s.redeem_auth_code(code, now()).unwrap(),
        Redeemed::Fresh(_)
    ));
    s.create_link(code, l, tokens).unwrap();
}

pub(super) fn a_successor_dropped_by_a_retry_revokes_the_link_if_it_turns_up(s: &dyn Store) {
    client(s, Integration::Google);
    let (_, u) = household_with_user(s, "a@x.y");
    let l = link(u.id, vec![]);
    linked(s, key(50), &l, &pair(1));
    // 101 -> 102 (the answer is lost), 101 again -> 103.
    for next in [2, 3] {
        assert!(matches!(
            s.rotate_refresh_token(key(101), &pair(next), now())
                .unwrap(),
            Redeemed::Fresh(_)
        ));
    }
    // 102 was not lost but copied: whoever presents it, the link goes.
    assert_eq!(
        s.rotate_refresh_token(key(102), &pair(4), now()).unwrap(),
        Redeemed::Replayed
    );
    assert_eq!(s.link_by_id(l.id).unwrap(), None);
}

pub(super) fn expired_access_tokens_are_told_apart_from_unknown_ones_for_a_week(s: &dyn Store) {
    client(s, Integration::Google);
    let (_, u) = household_with_user(s, "a@x.y");
    let expired = TokenPair {
        access_expires: UnixMillis(now().0 - 3_600_000),
        ..pair(1)
    };
    linked(s, key(50), &link(u.id, vec![]), &expired);
    // A rotation sweeps expired tokens, but keeps their hashes a while.
    let month = TokenPair {
        refresh_expires: UnixMillis(now().0 + 30 * 24 * 3_600_000),
        ..pair(2)
    };
    assert!(matches!(
        s.rotate_refresh_token(key(101), &month, now()).unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(matches!(
        s.link_by_access_token(key(1), now()).unwrap(),
        AccessToken::Expired(_)
    ));
    let later = UnixMillis(now().0 + 8 * 24 * 3_600_000);
    assert!(matches!(
        s.rotate_refresh_token(key(102), &pair(3), later).unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        s.link_by_access_token(key(1), later).unwrap(),
        AccessToken::Unknown,
        "swept after a week"
    );
}
