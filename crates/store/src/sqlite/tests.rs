//! Tests of the SQLite backend: every `Store` method with its negative cases,
//! migrations (fresh, re-open, upgrade from every older version, too new, failing
//! script), and sharing one file between handles and between processes.
//! Sharing, transfer/reset and kill switches are in `access`, the audit log in
//! `audit`, the change counter in `generation`.

use super::*;
use crate::migrations::{MIGRATIONS, migrate_with, schema_version};
use std::sync::Arc;

mod access;
mod audit;
mod generation;
mod links;

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn key(n: u8) -> TokenHash {
    TokenHash::from_bytes([n; 32])
}

fn store() -> SqliteStore {
    SqliteStore::open_in_memory().unwrap()
}

/// A session of `user` under token hash `token`, whose grants carry the holder
/// `[n; 16]` for `key(n)`.
fn session(user: UserId, token: TokenHash, now: UnixMillis, expires_at: UnixMillis) -> NewSession {
    NewSession {
        user,
        token_hash: token,
        holder: [token.as_bytes()[0]; 16],
        created_at: now,
        expires_at,
        address: None,
        client: None,
    }
}

/// A household with one user, for tests that need an owner.
fn household_with_user(s: &dyn Store, email: &str) -> (Household, User) {
    let h = s.create_household(&format!("home of {email}")).unwrap();
    let u = s.create_user(email, PHC, h.id).unwrap();
    (h, u)
}

// --- households ---

#[test]
fn households_are_created_found_and_listed() {
    let s = store();
    let b = s.create_household("Beach house").unwrap();
    let a = s.create_household("apartment").unwrap();
    assert_eq!(s.household_by_id(a.id).unwrap(), Some(a.clone()));
    assert_eq!(s.household_by_id(HouseholdId::random()).unwrap(), None);
    assert_eq!(s.list_households().unwrap(), vec![a, b]);
}

#[test]
fn household_needs_a_name() {
    let err = store().create_household("  ").unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
}

// --- users ---

#[test]
fn user_email_is_normalized_and_found_case_insensitively() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let u = s.create_user("  Alice@Example.COM ", PHC, h.id).unwrap();
    assert_eq!(u.email, "alice@example.com");
    assert_eq!(u.household, h.id);
    assert_eq!(u.password_hash, PHC);
    for spelling in [
        "alice@example.com",
        "ALICE@EXAMPLE.COM",
        " Alice@example.com\n",
    ] {
        assert_eq!(s.user_by_email(spelling).unwrap().as_ref(), Some(&u));
    }
    assert_eq!(s.user_by_id(u.id).unwrap(), Some(u));
}

#[test]
fn unknown_users_are_none() {
    let s = store();
    household_with_user(&s, "alice@example.com");
    assert_eq!(s.user_by_email("bob@example.com").unwrap(), None);
    assert_eq!(s.user_by_email("").unwrap(), None);
    assert_eq!(s.user_by_id(UserId::random()).unwrap(), None);
}

#[test]
fn duplicate_email_is_a_conflict_not_an_internal_error() {
    let s = store();
    let (h, _) = household_with_user(&s, "alice@example.com");
    let other = s.create_household("other").unwrap();
    for (email, household) in [
        ("alice@example.com", h.id),
        (" ALICE@example.com", other.id),
    ] {
        let err = s.create_user(email, PHC, household).unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { what: "email" }),
            "{err:?}"
        );
        assert!(!err.is_internal());
    }
    assert_eq!(s.list_users().unwrap().len(), 1);
}

#[test]
fn user_needs_an_existing_household() {
    let err = store()
        .create_user("a@example.com", PHC, HouseholdId::random())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "household" }),
        "{err:?}"
    );
}

#[test]
fn user_input_is_checked() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let empty = s.create_user(" ", PHC, h.id).unwrap_err();
    assert!(
        matches!(empty, StoreError::InvalidInput { .. }),
        "{empty:?}"
    );
    // A plain password handed over by mistake is refused, not stored.
    let plain = s.create_user("a@example.com", "hunter2", h.id).unwrap_err();
    assert!(
        matches!(plain, StoreError::InvalidInput { .. }),
        "{plain:?}"
    );
    assert!(s.list_users().unwrap().is_empty());
}

#[test]
fn user_debug_redacts_the_password_hash() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    let debug = format!("{u:?} {u:#?}");
    assert!(!debug.contains("argon2"), "{debug}");
    assert!(!debug.contains("c2FsdHNhbHQ"), "{debug}");
    assert!(debug.contains("alice@example.com"));
}

#[test]
fn users_are_listed_by_email() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let c = s.create_user("carol@example.com", PHC, h.id).unwrap();
    let a = s.create_user("alice@example.com", PHC, h.id).unwrap();
    let b = s.create_user("Bob@example.com", PHC, h.id).unwrap();
    assert_eq!(s.list_users().unwrap(), vec![a, b, c]);
}

#[test]
fn password_hash_can_be_replaced() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
    s.set_user_password_hash(u.id, new_hash).unwrap();
    assert_eq!(s.user_by_id(u.id).unwrap().unwrap().password_hash, new_hash);

    let err = s.set_user_password_hash(u.id, "plain").unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    let err = s
        .set_user_password_hash(UserId::random(), new_hash)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "user" }),
        "{err:?}"
    );
}

// --- cameras ---

#[test]
fn camera_is_created_at_epoch_one_and_found() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let c = s
        .create_camera(h.id, "Porch", "Europe/Berlin", key(1))
        .unwrap();
    assert_eq!(c.epoch, BindingEpoch(1));
    assert_eq!(c.household, h.id);
    assert_eq!(
        (c.name.as_str(), c.timezone.as_str()),
        ("Porch", "Europe/Berlin")
    );
    assert!(c.created_at.0 > 0);
    assert_eq!(s.camera_by_id(c.id).unwrap(), Some(c.clone()));
    assert_eq!(s.camera_by_stream_key(key(1)).unwrap(), Some(c));
}

#[test]
fn a_pulled_cameras_sealed_source_is_set_replaced_and_removed() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let c = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    let other = s.create_camera(h.id, "Yard", "UTC", key(2)).unwrap();
    assert!(s.camera_sources().unwrap().is_empty());
    let before = s.generation().unwrap();
    s.set_camera_source(c.id, Some(b"sealed one"), None)
        .unwrap();
    let after_set = s.generation().unwrap();
    assert_ne!(after_set, before, "processes notice a new source");
    s.set_camera_source(c.id, Some(b"sealed two"), None)
        .unwrap();
    assert_ne!(s.generation().unwrap(), after_set, "and a changed one");
    assert_eq!(
        s.camera_sources().unwrap(),
        vec![crate::CameraSource {
            camera: c.id,
            sealed: b"sealed two".to_vec(),
            agent: None
        }]
    );
    s.set_camera_source(other.id, None, None).unwrap();
    s.set_camera_source(c.id, None, None).unwrap();
    assert!(s.camera_sources().unwrap().is_empty());
    assert!(matches!(
        s.set_camera_source(CameraId::random(), Some(b"x"), None),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn an_agent_is_made_once_from_a_live_claim_and_its_removal_locks_its_cameras_out() {
    use hearth_model::AgentId;
    let s = store();
    let (h, owner) = household_with_user(&s, "a@example.com");
    let (other_home, _) = household_with_user(&s, "b@example.com");
    let c = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    s.create_agent_claim(key(10), h.id, owner.id, UnixMillis(1_000))
        .unwrap();
    // Expired: used up, no agent.
    s.create_agent_claim(key(11), h.id, owner.id, UnixMillis(50))
        .unwrap();
    assert_eq!(
        s.redeem_agent_claim(key(11), AgentId::random(), "Home", key(20), UnixMillis(60))
            .unwrap(),
        None
    );
    let id = AgentId::random();
    let agent = s
        .redeem_agent_claim(key(10), id, "Home", key(21), UnixMillis(100))
        .unwrap()
        .expect("a live claim makes an agent");
    assert_eq!((agent.household, agent.created_by), (h.id, Some(owner.id)));
    assert_eq!(
        s.redeem_agent_claim(
            key(10),
            AgentId::random(),
            "Again",
            key(22),
            UnixMillis(101)
        )
        .unwrap(),
        None,
        "a claim code works once"
    );
    assert_eq!(s.agent_by_credential(key(21)).unwrap(), Some(agent.clone()));
    assert_eq!(s.agent_by_credential(key(20)).unwrap(), None);
    assert_eq!(s.agents(h.id).unwrap(), vec![agent.clone()]);
    assert!(s.agents(other_home.id).unwrap().is_empty());

    s.set_camera_source(c.id, Some(b"sealed"), Some(id))
        .unwrap();
    assert_eq!(s.camera_sources().unwrap()[0].agent, Some(id));
    assert_eq!(
        s.delete_agent(other_home.id, id).unwrap(),
        None,
        "another household cannot remove it"
    );
    let before = s.generation().unwrap();
    assert_eq!(s.delete_agent(h.id, id).unwrap(), Some(vec![c.id]));
    assert_ne!(s.generation().unwrap(), before);
    assert!(s.camera_sources().unwrap().is_empty());
    assert_eq!(
        s.camera_by_stream_key(key(1)).unwrap(),
        None,
        "the agent's stream key no longer opens the camera"
    );
    assert_eq!(s.agent_by_credential(key(21)).unwrap(), None);
}

#[test]
fn a_draft_camera_is_marked_saved_and_goes_with_its_camera() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let c = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    let d = s.create_camera(h.id, "Trial", "UTC", key(2)).unwrap();
    s.mark_camera_draft(c.id, UnixMillis(10)).unwrap();
    s.mark_camera_draft(d.id, UnixMillis(20)).unwrap();
    assert_eq!(s.camera_drafts().unwrap().len(), 2, "both on trial");
    assert!(s.save_camera_draft(c.id).unwrap());
    assert!(!s.save_camera_draft(c.id).unwrap(), "saved once");
    assert!(s.delete_camera(d.id).unwrap());
    assert!(s.camera_drafts().unwrap().is_empty());
    assert!(matches!(
        s.mark_camera_draft(CameraId::random(), UnixMillis(1)),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_deleted_camera_takes_its_shares_invitations_and_source_but_not_its_audit() {
    let s = store();
    let (h, owner) = household_with_user(&s, "a@example.com");
    let (_, friend) = household_with_user(&s, "b@example.com");
    let c = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    s.share_camera(c.id, friend.id, UnixMillis(0)).unwrap();
    s.invite_to_share(c.id, "c@example.com", UnixMillis(0))
        .unwrap();
    s.set_camera_source(c.id, Some(b"sealed"), None).unwrap();
    s.append_audit(&[AuditEvent {
        at: UnixMillis(1),
        kind: "grant_issued".into(),
        camera: Some(c.id),
        user: Some(owner.id),
        integration: None,
        grant: None,
        detail: serde_json::json!({}),
    }])
    .unwrap();
    let before = s.generation().unwrap();
    assert!(s.delete_camera(c.id).unwrap());
    assert_ne!(
        s.generation().unwrap(),
        before,
        "every process stops serving it"
    );
    assert_eq!(s.camera_by_id(c.id).unwrap(), None);
    assert!(s.cameras_visible_to(friend.id).unwrap().is_empty());
    assert!(s.camera_sources().unwrap().is_empty());
    assert!(s.invitations_for("c@example.com").unwrap().is_empty());
    assert_eq!(
        s.audit_for_camera(c.id, UnixMillis(0), None, 10)
            .unwrap()
            .len(),
        1,
        "the audit stays"
    );
    assert!(!s.delete_camera(c.id).unwrap());
}

#[test]
fn viewer_keys_are_created_listed_and_revoked_by_their_owner_only() {
    let s = store();
    let (h, u) = household_with_user(&s, "a@example.com");
    let (_, other) = household_with_user(&s, "b@example.com");
    let c1 = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    let c2 = s.create_camera(h.id, "Yard", "UTC", key(2)).unwrap();
    let k = ViewerKey {
        id: hearth_model::ViewerKeyId::random(),
        user: u.id,
        name: "VLC".into(),
        cameras: vec![c1.id, c2.id],
        created_at: UnixMillis(5),
    };
    let before = s.generation().unwrap();
    s.create_viewer_key(&k).unwrap();
    assert_ne!(s.generation().unwrap(), before);
    let mut listed = s.viewer_keys().unwrap();
    listed[0].cameras.sort();
    let mut want = k.clone();
    want.cameras.sort();
    assert_eq!(listed, vec![want]);
    assert!(!s.delete_viewer_key(other.id, k.id).unwrap(), "not theirs");
    let before = s.generation().unwrap();
    assert!(s.delete_viewer_key(u.id, k.id).unwrap());
    assert_ne!(
        s.generation().unwrap(),
        before,
        "revocation reaches every process"
    );
    assert!(s.viewer_keys().unwrap().is_empty());
    let bad = ViewerKey {
        id: hearth_model::ViewerKeyId::random(),
        cameras: vec![CameraId::random()],
        ..k
    };
    assert!(s.create_viewer_key(&bad).is_err(), "unknown camera");
    assert!(s.viewer_keys().unwrap().is_empty(), "nothing half-made");
}

#[test]
fn unknown_cameras_are_none() {
    let s = store();
    let h = s.create_household("home").unwrap();
    s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    assert_eq!(s.camera_by_id(CameraId::random()).unwrap(), None);
    assert_eq!(s.camera_by_stream_key(key(2)).unwrap(), None);
}

#[test]
fn duplicate_stream_key_is_a_conflict() {
    let s = store();
    let a = s.create_household("a").unwrap();
    let b = s.create_household("b").unwrap();
    let first = s.create_camera(a.id, "Porch", "UTC", key(1)).unwrap();
    let err = s.create_camera(b.id, "Garden", "UTC", key(1)).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "stream key" }),
        "{err:?}"
    );
    // The key still names the first camera only.
    assert_eq!(s.camera_by_stream_key(key(1)).unwrap(), Some(first));
    assert_eq!(s.list_cameras().unwrap().len(), 1);
}

#[test]
fn camera_input_is_checked() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let err = s
        .create_camera(HouseholdId::random(), "Porch", "UTC", key(1))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "household" }),
        "{err:?}"
    );
    let err = s.create_camera(h.id, "", "UTC", key(1)).unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    let err = s.create_camera(h.id, "Porch", " ", key(1)).unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    assert!(s.list_cameras().unwrap().is_empty());
}

#[test]
fn users_see_only_their_households_cameras() {
    let s = store();
    let (a, alice) = household_with_user(&s, "alice@example.com");
    let (b, bob) = household_with_user(&s, "bob@example.com");
    let alice2 = s.create_user("alice2@example.com", PHC, a.id).unwrap();
    let porch = s.create_camera(a.id, "porch", "UTC", key(1)).unwrap();
    let attic = s.create_camera(a.id, "Attic", "UTC", key(2)).unwrap();
    let garden = s.create_camera(b.id, "Garden", "UTC", key(3)).unwrap();

    // Ordered by name, case-insensitively.
    let alices = vec![attic.clone(), porch.clone()];
    assert_eq!(s.cameras_visible_to(alice.id).unwrap(), alices);
    assert_eq!(s.cameras_visible_to(alice2.id).unwrap(), alices);
    assert_eq!(s.cameras_visible_to(bob.id).unwrap(), vec![garden.clone()]);
    assert!(s.cameras_visible_to(UserId::random()).unwrap().is_empty());

    assert_eq!(
        s.camera_visible_to(alice.id, porch.id).unwrap(),
        Some(porch.clone())
    );
    assert_eq!(
        s.camera_visible_to(bob.id, garden.id).unwrap(),
        Some(garden.clone())
    );
    // Never across households, in either direction; unknown ids look the same.
    assert_eq!(s.camera_visible_to(alice.id, garden.id).unwrap(), None);
    assert_eq!(s.camera_visible_to(bob.id, porch.id).unwrap(), None);
    assert_eq!(s.camera_visible_to(bob.id, attic.id).unwrap(), None);
    assert_eq!(
        s.camera_visible_to(alice.id, CameraId::random()).unwrap(),
        None
    );
    assert_eq!(
        s.camera_visible_to(UserId::random(), porch.id).unwrap(),
        None
    );

    // The admin list has everything.
    assert_eq!(s.list_cameras().unwrap(), vec![attic, garden, porch]);
}

#[test]
fn stream_key_hash_is_never_selected() {
    // No record type has a field for it; this guards the column lists too.
    assert!(!CAMERA_COLUMNS.contains("stream_key"));
}

#[test]
fn stream_key_can_be_replaced() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let porch = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    let garden = s.create_camera(h.id, "Garden", "UTC", key(2)).unwrap();

    s.set_camera_stream_key(porch.id, key(9)).unwrap();
    assert_eq!(s.camera_by_stream_key(key(1)).unwrap(), None);
    assert_eq!(s.camera_by_stream_key(key(9)).unwrap(), Some(porch.clone()));

    let err = s.set_camera_stream_key(porch.id, key(2)).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "stream key" }),
        "{err:?}"
    );
    assert_eq!(s.camera_by_stream_key(key(2)).unwrap(), Some(garden));
    let err = s
        .set_camera_stream_key(CameraId::random(), key(7))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "camera" }),
        "{err:?}"
    );
}

#[test]
fn epoch_bumps_are_stored() {
    let s = store();
    let h = s.create_household("home").unwrap();
    let c = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    assert_eq!(s.bump_camera_epoch(c.id).unwrap(), BindingEpoch(2));
    assert_eq!(s.bump_camera_epoch(c.id).unwrap(), BindingEpoch(3));
    assert_eq!(
        s.camera_by_id(c.id).unwrap().unwrap().epoch,
        BindingEpoch(3)
    );
    assert_eq!(
        s.camera_by_stream_key(key(1)).unwrap().unwrap().epoch,
        BindingEpoch(3)
    );
    let err = s.bump_camera_epoch(CameraId::random()).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "camera" }),
        "{err:?}"
    );
}

// --- sessions ---

#[test]
fn session_is_valid_until_it_expires() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    s.create_session(&session(u.id, key(1), UnixMillis(1_000), UnixMillis(2_000)))
        .unwrap();
    assert_eq!(
        s.session_user(key(1), UnixMillis(1_000)).unwrap(),
        Some(u.id)
    );
    assert_eq!(
        s.session_user(key(1), UnixMillis(1_999)).unwrap(),
        Some(u.id)
    );
    assert_eq!(s.session_user(key(1), UnixMillis(2_000)).unwrap(), None);
    assert_eq!(s.session_user(key(1), UnixMillis(9_999)).unwrap(), None);
    assert_eq!(s.session_user(key(2), UnixMillis(1_500)).unwrap(), None);
}

#[test]
fn deleted_session_is_gone_and_deleting_is_idempotent() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    s.create_session(&session(u.id, key(1), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    s.create_session(&session(u.id, key(2), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    s.delete_session(key(1)).unwrap();
    assert_eq!(s.session_user(key(1), UnixMillis(5)).unwrap(), None);
    assert_eq!(s.session_user(key(2), UnixMillis(5)).unwrap(), Some(u.id));
    s.delete_session(key(1)).unwrap();
    s.delete_session(key(3)).unwrap();
}

#[test]
fn signing_out_ends_the_session_and_records_its_holder_until_its_grants_expire() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    s.create_session(&session(u.id, key(1), UnixMillis(0), UnixMillis(10_000)))
        .unwrap();
    s.create_session(&session(u.id, key(2), UnixMillis(0), UnixMillis(10_000)))
        .unwrap();
    let before = s.generation().unwrap();
    s.sign_out(key(1), [7; 16], UnixMillis(500), UnixMillis(100))
        .unwrap();
    assert!(
        s.generation().unwrap() > before,
        "the access view must notice"
    );
    assert_eq!(s.session_user(key(1), UnixMillis(200)).unwrap(), None);
    assert_eq!(s.session_user(key(2), UnixMillis(200)).unwrap(), Some(u.id));
    assert_eq!(
        s.ended_grant_holders(UnixMillis(499)).unwrap(),
        vec![[7; 16]]
    );
    assert!(s.ended_grant_holders(UnixMillis(500)).unwrap().is_empty());
    // Idempotent; a later sign-out forgets holders whose time has passed.
    s.sign_out(key(1), [7; 16], UnixMillis(900), UnixMillis(200))
        .unwrap();
    s.sign_out(key(2), [8; 16], UnixMillis(2_000), UnixMillis(1_000))
        .unwrap();
    let count: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM ended_grant_holders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        s.ended_grant_holders(UnixMillis(1_000)).unwrap(),
        vec![[8; 16]]
    );
}

#[test]
fn session_creation_is_checked() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    s.create_session(&session(u.id, key(1), UnixMillis(0), UnixMillis(10)))
        .unwrap();

    let err = s
        .create_session(&session(u.id, key(1), UnixMillis(0), UnixMillis(10)))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "session" }),
        "{err:?}"
    );
    let err = s
        .create_session(&session(
            UserId::random(),
            key(2),
            UnixMillis(0),
            UnixMillis(10),
        ))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "user" }),
        "{err:?}"
    );
    for expires in [UnixMillis(0), UnixMillis(-1)] {
        let err = s
            .create_session(&session(u.id, key(3), UnixMillis(0), expires))
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(s.session_user(key(2), UnixMillis(5)).unwrap(), None);
    assert_eq!(s.session_user(key(3), UnixMillis(-5)).unwrap(), None);
}

#[test]
fn purge_removes_only_expired_sessions() {
    let s = store();
    let (_, u) = household_with_user(&s, "alice@example.com");
    s.create_session(&session(u.id, key(1), UnixMillis(0), UnixMillis(100)))
        .unwrap();
    s.create_session(&session(u.id, key(2), UnixMillis(0), UnixMillis(200)))
        .unwrap();
    s.create_session(&session(u.id, key(3), UnixMillis(0), UnixMillis(300)))
        .unwrap();
    assert_eq!(s.purge_expired_sessions(UnixMillis(50)).unwrap(), 0);
    assert_eq!(s.purge_expired_sessions(UnixMillis(200)).unwrap(), 2);
    assert_eq!(s.purge_expired_sessions(UnixMillis(200)).unwrap(), 0);
    assert_eq!(s.session_user(key(3), UnixMillis(250)).unwrap(), Some(u.id));
    // Purged rows are really gone, not just filtered by time.
    assert_eq!(s.session_user(key(1), UnixMillis(-1)).unwrap(), None);
}

#[test]
fn deleting_a_users_sessions_leaves_others() {
    let s = store();
    let (h, alice) = household_with_user(&s, "alice@example.com");
    let bob = s.create_user("bob@example.com", PHC, h.id).unwrap();
    s.create_session(&session(alice.id, key(1), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    s.create_session(&session(alice.id, key(2), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    s.create_session(&session(bob.id, key(3), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    assert_eq!(s.delete_user_sessions(alice.id).unwrap(), 2);
    assert_eq!(s.delete_user_sessions(alice.id).unwrap(), 0);
    assert_eq!(s.session_user(key(1), UnixMillis(5)).unwrap(), None);
    assert_eq!(s.session_user(key(3), UnixMillis(5)).unwrap(), Some(bob.id));
}

#[test]
fn sessions_are_listed_newest_first_under_ids_unrelated_to_their_tokens() {
    let s = store();
    let (h, alice) = household_with_user(&s, "alice@example.com");
    let bob = s.create_user("bob@example.com", PHC, h.id).unwrap();
    let long_client = "Mozilla/5.0 ".repeat(40);
    let first = s
        .create_session(&NewSession {
            address: Some("192.0.2.7".into()),
            client: Some(long_client.clone()),
            ..session(alice.id, key(1), UnixMillis(1_000), UnixMillis(9_000))
        })
        .unwrap();
    let second = s
        .create_session(&session(
            alice.id,
            key(2),
            UnixMillis(2_000),
            UnixMillis(9_000),
        ))
        .unwrap();
    s.create_session(&session(alice.id, key(3), UnixMillis(0), UnixMillis(1_500)))
        .unwrap();
    s.create_session(&session(
        bob.id,
        key(4),
        UnixMillis(3_000),
        UnixMillis(9_000),
    ))
    .unwrap();
    assert_ne!(first, second);

    let listed = s.sessions_of_user(alice.id, UnixMillis(2_500)).unwrap();
    // Newest first; the expired one and Bob's are not there.
    assert_eq!(
        listed.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![second, first]
    );
    let one = &listed[1];
    assert_eq!(one.user, alice.id);
    assert_eq!(
        (one.created_at, one.expires_at),
        (UnixMillis(1_000), UnixMillis(9_000))
    );
    assert_eq!(one.address.as_deref(), Some("192.0.2.7"));
    // A long User-Agent is cut short, not refused.
    let client = one.client.as_deref().unwrap();
    assert_eq!(client.chars().count(), crate::SESSION_CLIENT_MAX_CHARS);
    assert!(long_client.starts_with(client));
    assert_eq!(listed[0].address, None);
    // The public id is not the token's hash, nor any part of it.
    for x in &listed {
        let id = x.id.to_string();
        for k in [key(1), key(2)] {
            let hash: String = k.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            assert!(!hash.contains(&id[..8]), "{id} vs {hash}");
        }
    }

    // By token: the same record; unknown or expired tokens find nothing.
    assert_eq!(
        s.session_by_token(key(1), UnixMillis(2_500))
            .unwrap()
            .as_ref(),
        Some(one)
    );
    assert_eq!(s.session_by_token(key(3), UnixMillis(2_500)).unwrap(), None);
    assert_eq!(s.session_by_token(key(9), UnixMillis(2_500)).unwrap(), None);
    assert!(
        s.sessions_of_user(UserId::random(), UnixMillis(0))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_session_is_ended_by_id_only_by_its_user_and_its_streams_end_with_it() {
    let s = store();
    let (h, alice) = household_with_user(&s, "alice@example.com");
    let bob = s.create_user("bob@example.com", PHC, h.id).unwrap();
    let a1 = s
        .create_session(&session(
            alice.id,
            key(1),
            UnixMillis(0),
            UnixMillis(10_000),
        ))
        .unwrap();
    s.create_session(&session(
        alice.id,
        key(2),
        UnixMillis(0),
        UnixMillis(10_000),
    ))
    .unwrap();
    let old = s
        .create_session(&session(alice.id, key(3), UnixMillis(0), UnixMillis(50)))
        .unwrap();
    let (until, now) = (UnixMillis(500), UnixMillis(100));

    // Bob cannot end Alice's session, nor can anyone end one that does not
    // exist or has expired: nothing changes.
    let before = s.generation().unwrap();
    assert!(!s.end_session(bob.id, a1, until, now).unwrap());
    assert!(
        !s.end_session(alice.id, SessionId::random(), until, now)
            .unwrap()
    );
    assert!(!s.end_session(alice.id, old, until, now).unwrap());
    assert_eq!(s.generation().unwrap(), before);
    assert_eq!(s.session_user(key(1), now).unwrap(), Some(alice.id));
    assert!(s.ended_grant_holders(now).unwrap().is_empty());

    // Alice ends it: the token stops working and its grants' holder is recorded
    // until they expire, as at sign-out; her other session stays.
    assert!(s.end_session(alice.id, a1, until, now).unwrap());
    assert!(
        s.generation().unwrap() > before,
        "the access view must notice"
    );
    assert_eq!(s.session_user(key(1), now).unwrap(), None);
    assert_eq!(s.session_user(key(2), now).unwrap(), Some(alice.id));
    assert_eq!(s.ended_grant_holders(now).unwrap(), vec![[1; 16]]);
    assert!(s.ended_grant_holders(until).unwrap().is_empty());
    assert!(!s.end_session(alice.id, a1, until, now).unwrap());
}

#[test]
fn changing_the_password_ends_every_other_session_in_one_go() {
    const NEW_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
    let s = store();
    let (h, alice) = household_with_user(&s, "alice@example.com");
    let bob = s.create_user("bob@example.com", PHC, h.id).unwrap();
    for k in [1, 3] {
        s.create_session(&session(
            alice.id,
            key(k),
            UnixMillis(0),
            UnixMillis(10_000),
        ))
        .unwrap();
    }
    let keep = s
        .create_session(&session(
            alice.id,
            key(2),
            UnixMillis(0),
            UnixMillis(10_000),
        ))
        .unwrap();
    s.create_session(&session(bob.id, key(4), UnixMillis(0), UnixMillis(10_000)))
        .unwrap();
    let (until, now) = (UnixMillis(500), UnixMillis(100));

    // Refused input changes nothing.
    let err = s
        .change_password(alice.id, "plain password", keep, until, now)
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    let err = s
        .change_password(UserId::random(), NEW_PHC, keep, until, now)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "user" }),
        "{err:?}"
    );
    assert_eq!(s.sessions_of_user(alice.id, now).unwrap().len(), 3);
    assert_eq!(s.user_by_id(alice.id).unwrap().unwrap().password_hash, PHC);

    let before = s.generation().unwrap();
    assert_eq!(
        s.change_password(alice.id, NEW_PHC, keep, until, now)
            .unwrap(),
        2
    );
    assert!(s.generation().unwrap() > before);
    assert_eq!(
        s.user_by_id(alice.id).unwrap().unwrap().password_hash,
        NEW_PHC
    );
    assert_eq!(s.session_user(key(2), now).unwrap(), Some(alice.id));
    assert_eq!(s.session_user(key(1), now).unwrap(), None);
    assert_eq!(s.session_user(key(3), now).unwrap(), None);
    assert_eq!(s.session_user(key(4), now).unwrap(), Some(bob.id));
    let mut ended = s.ended_grant_holders(now).unwrap();
    ended.sort();
    assert_eq!(ended, vec![[1; 16], [3; 16]]);
    // Again: nobody else is left to sign out.
    assert_eq!(
        s.change_password(alice.id, PHC, keep, until, now).unwrap(),
        0
    );
}

#[test]
fn store_is_usable_as_a_shared_trait_object() {
    let s: Arc<dyn Store> = Arc::new(store());
    let worker = {
        let s = Arc::clone(&s);
        std::thread::spawn(move || s.create_household("from a thread").unwrap())
    };
    let h = worker.join().unwrap();
    assert_eq!(s.household_by_id(h.id).unwrap(), Some(h));
}

// --- migrations ---

fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Everything SQLite knows about the schema, in a stable order.
fn schema(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn fresh_schema() -> Vec<(String, String, String, Option<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join(DB_FILE_NAME)).unwrap();
    schema(&s.conn())
}

fn raw_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    conn
}

const FIXTURE_HOUSEHOLD: &str = "0123456789abcdef0123456789abcdef";
const FIXTURE_USER: &str = "11111111111111111111111111111111";
const FIXTURE_CAMERA: &str = "22222222222222222222222222222222";

/// Data written with the version-1 schema, exactly as a version-1 binary would
/// have. Must never change: it stands for databases already in the field.
const FIXTURE_V1: &str = "
    INSERT INTO households (id, name, created_at)
        VALUES ('0123456789abcdef0123456789abcdef', 'Home', 1000);
    INSERT INTO users (id, email, password_hash, household_id, created_at)
        VALUES ('11111111111111111111111111111111', 'alice@example.com',
                '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
                '0123456789abcdef0123456789abcdef', 2000);
    INSERT INTO cameras (id, household_id, name, timezone, epoch, stream_key_hash, created_at)
        VALUES ('22222222222222222222222222222222', '0123456789abcdef0123456789abcdef',
                'Porch', 'Europe/Berlin', 4, zeroblob(32), 3000);
    INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
        VALUES (x'0101010101010101010101010101010101010101010101010101010101010101',
                '11111111111111111111111111111111', 4000, 5000);
";

fn check_fixture_v1(s: &SqliteStore) {
    let household: HouseholdId = FIXTURE_HOUSEHOLD.parse().unwrap();
    let user_id: UserId = FIXTURE_USER.parse().unwrap();
    let camera_id: CameraId = FIXTURE_CAMERA.parse().unwrap();
    assert_eq!(
        s.household_by_id(household).unwrap(),
        Some(Household {
            id: household,
            name: "Home".into()
        })
    );
    assert_eq!(
        s.user_by_email("Alice@example.com").unwrap(),
        Some(User {
            id: user_id,
            email: "alice@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            household,
            created_at: UnixMillis(2000),
        })
    );
    let camera = Camera {
        id: camera_id,
        household,
        name: "Porch".into(),
        timezone: "Europe/Berlin".into(),
        epoch: BindingEpoch(4),
        created_at: UnixMillis(3000),
        // No transfer or reset in its audit log: the binding began at creation.
        bound_at: UnixMillis(3000),
    };
    assert_eq!(
        s.camera_by_stream_key(key(0)).unwrap(),
        Some(camera.clone())
    );
    assert_eq!(s.cameras_visible_to(user_id).unwrap(), vec![camera]);
    assert_eq!(
        s.session_user(key(1), UnixMillis(4500)).unwrap(),
        Some(user_id)
    );
    assert_eq!(s.session_user(key(1), UnixMillis(5000)).unwrap(), None);
}

/// The fixture's session, written before sessions had public ids: it has one
/// now, is listed, and can be ended by it (it has no holder to record: its
/// grants, minutes long, run out on their own).
fn check_sessions_from_before_v7(s: &SqliteStore) {
    let user: UserId = FIXTURE_USER.parse().unwrap();
    let listed = s.sessions_of_user(user, UnixMillis(4500)).unwrap();
    assert_eq!(listed.len(), 1);
    let legacy = &listed[0];
    assert_eq!(
        (
            legacy.created_at,
            legacy.expires_at,
            &legacy.address,
            &legacy.client
        ),
        (UnixMillis(4000), UnixMillis(5000), &None, &None)
    );
    assert!(
        s.end_session(user, legacy.id, UnixMillis(9000), UnixMillis(4500))
            .unwrap()
    );
    assert_eq!(s.session_user(key(1), UnixMillis(4500)).unwrap(), None);
    assert!(s.ended_grant_holders(UnixMillis(4500)).unwrap().is_empty());
}

const FIXTURE_NEIGHBOUR_HOUSEHOLD: &str = "33333333333333333333333333333333";
const FIXTURE_NEIGHBOUR: &str = "44444444444444444444444444444444";

/// Data written with the version-2 schema (on top of [`FIXTURE_V1`]), exactly as a
/// version-2 binary would have. Must never change.
const FIXTURE_V2: &str = r#"
    INSERT INTO households (id, name, created_at)
        VALUES ('33333333333333333333333333333333', 'Neighbours', 1500);
    INSERT INTO users (id, email, password_hash, household_id, created_at)
        VALUES ('44444444444444444444444444444444', 'bob@example.com',
                '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
                '33333333333333333333333333333333', 2500);
    INSERT INTO shares (camera_id, user_id, created_at)
        VALUES ('22222222222222222222222222222222', '44444444444444444444444444444444', 6000);
    INSERT INTO audit_events (at, kind, camera_id, user_id, integration, grant_id, detail)
        VALUES (7000, 'view_start', '22222222222222222222222222222222',
                '44444444444444444444444444444444', 'app', 'g1', '{"bytes":0}');
    INSERT INTO suspensions (kind, target, reason, created_at)
        VALUES ('integration', 'alexa', 'partner incident', 8000);
"#;

fn check_fixture_v2(s: &SqliteStore) {
    let camera: CameraId = FIXTURE_CAMERA.parse().unwrap();
    let bob: UserId = FIXTURE_NEIGHBOUR.parse().unwrap();
    let (seen, access) = s.camera_access(bob, camera).unwrap().unwrap();
    assert_eq!((seen.id, access), (camera, Access::Viewer));
    assert_eq!(
        s.shares_of(camera).unwrap(),
        vec![Share {
            camera,
            user: bob,
            email: "bob@example.com".into(),
            created_at: UnixMillis(6000),
        }]
    );
    let audit = s.audit_since(UnixMillis(0)).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].event,
        AuditEvent {
            at: UnixMillis(7000),
            kind: "view_start".into(),
            camera: Some(camera),
            user: Some(bob),
            integration: Some("app".into()),
            grant: Some("g1".into()),
            detail: serde_json::json!({ "bytes": 0 }),
        }
    );
    assert_eq!(
        s.suspensions().unwrap(),
        vec![Suspension {
            kind: SuspensionKind::Integration,
            target: "alexa".into(),
            reason: "partner incident".into(),
            created_at: UnixMillis(8000),
        }]
    );
    let neighbours: HouseholdId = FIXTURE_NEIGHBOUR_HOUSEHOLD.parse().unwrap();
    assert!(s.household_by_id(neighbours).unwrap().is_some());
}

#[test]
fn fresh_database_gets_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join(DB_FILE_NAME)).unwrap();
    let conn = s.conn();
    assert_eq!(schema_version(&conn).unwrap(), latest());
    let tables: Vec<String> = schema(&conn)
        .into_iter()
        .filter(|(kind, ..)| kind == "table")
        .map(|(_, name, ..)| name)
        .collect();
    for table in [
        "audit_events",
        "cameras",
        "households",
        "meta",
        "sessions",
        "shares",
        "suspensions",
        "users",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fks: bool = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(fks);
}

#[test]
fn in_memory_database_has_the_fresh_schema() {
    let s = store();
    assert_eq!(schema(&s.conn()), fresh_schema());
    assert_eq!(schema_version(&s.conn()).unwrap(), latest());
}

#[test]
fn reopening_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let (before, user) = {
        let s = SqliteStore::open(&path).unwrap();
        let (_, u) = household_with_user(&s, "alice@example.com");
        let before = schema(&s.conn());
        (before, u)
    };
    for _ in 0..2 {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(schema(&s.conn()), before);
        assert_eq!(schema_version(&s.conn()).unwrap(), latest());
        assert_eq!(s.user_by_id(user.id).unwrap(), Some(user.clone()));
        assert_eq!(s.list_users().unwrap().len(), 1);
    }
}

/// For every version from 1 up: a database written at version 1 and migrated to
/// that version by older binaries, opened by this one, keeps its data and ends up
/// with exactly the schema of a fresh database.
#[test]
fn every_older_version_upgrades_with_data_intact() {
    let fresh = fresh_schema();
    for version in 1..=MIGRATIONS.len() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE_NAME);
        {
            let mut conn = raw_connection(&path);
            migrate_with(&mut conn, MIGRATIONS, 1).unwrap();
            conn.execute_batch(FIXTURE_V1).unwrap();
            // One step at a time, as successive releases would have, each
            // release writing its own kind of data.
            for step in 2..=version {
                migrate_with(&mut conn, MIGRATIONS, step).unwrap();
                assert_eq!(schema_version(&conn).unwrap(), step as i64);
                if step == 2 {
                    conn.execute_batch(FIXTURE_V2).unwrap();
                }
            }
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            schema_version(&s.conn()).unwrap(),
            latest(),
            "from {version}"
        );
        assert_eq!(
            schema(&s.conn()),
            fresh,
            "schema after upgrade from {version}"
        );
        check_fixture_v1(&s);
        if version >= 2 {
            check_fixture_v2(&s);
        }
        check_sessions_from_before_v7(&s);
        // The upgraded database counts changes like a fresh one.
        let before = s.generation().unwrap();
        s.bump_camera_epoch(FIXTURE_CAMERA.parse().unwrap())
            .unwrap();
        assert_ne!(s.generation().unwrap(), before, "from {version}");
    }
}

#[test]
fn newer_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    drop(SqliteStore::open(&path).unwrap());
    let too_new = latest() + 1;
    raw_connection(&path)
        .pragma_update(None, "user_version", too_new)
        .unwrap();

    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported }
            if found == too_new && supported == latest()),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(schema_version(&raw_connection(&path)).unwrap(), too_new);
}

#[test]
fn failing_migration_rolls_back_to_the_previous_version() {
    let mut conn = Connection::open_in_memory().unwrap();
    let scripts = [
        "CREATE TABLE one (x INTEGER);",
        "CREATE TABLE two (x INTEGER); INSERT INTO one VALUES (1); THIS IS NOT SQL;",
    ];
    let err = migrate_with(&mut conn, &scripts, 2).unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 2, .. }),
        "{err:?}"
    );
    assert_eq!(schema_version(&conn).unwrap(), 1);
    let names: Vec<String> = schema(&conn).into_iter().map(|(_, n, ..)| n).collect();
    assert_eq!(names, vec!["one".to_string()]);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM one", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn unopenable_path_is_an_open_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join(DB_FILE_NAME);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("missing-dir"), "{err}");
    assert!(err.is_internal());
}

// --- sharing one file ---

#[test]
fn two_handles_on_one_file_see_each_others_writes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();

    // The admin CLI adds a user and a camera while the server runs.
    let (h, u) = household_with_user(&cli, "alice@example.com");
    let c = cli.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    assert_eq!(
        server.user_by_email("alice@example.com").unwrap(),
        Some(u.clone())
    );
    assert_eq!(
        server.camera_by_stream_key(key(1)).unwrap(),
        Some(c.clone())
    );
    assert_eq!(server.cameras_visible_to(u.id).unwrap(), vec![c.clone()]);

    // And the other way round.
    server
        .create_session(&session(u.id, key(2), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    assert_eq!(cli.session_user(key(2), UnixMillis(5)).unwrap(), Some(u.id));
    assert_eq!(cli.bump_camera_epoch(c.id).unwrap(), BindingEpoch(2));
    assert_eq!(
        server.camera_by_id(c.id).unwrap().unwrap().epoch,
        BindingEpoch(2)
    );

    // Conflicts are detected across handles too.
    let err = server
        .create_user("ALICE@example.com", PHC, h.id)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

#[test]
fn a_writer_waits_for_another_handles_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let holder = SqliteStore::open(&path).unwrap();
    let waiter = SqliteStore::open(&path).unwrap();

    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let hold = std::thread::spawn(move || {
        let mut conn = holder.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();
    // Blocks until the holder commits (well inside the busy timeout), then succeeds.
    let h = waiter.create_household("waited").unwrap();
    hold.join().unwrap();
    assert_eq!(waiter.household_by_id(h.id).unwrap(), Some(h));
}

#[test]
fn concurrent_writers_on_separate_handles_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let setup = SqliteStore::open(&path).unwrap();
    let h = setup.create_household("home").unwrap();
    let writers: Vec<_> = (0..3u8)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let s = SqliteStore::open(&path).unwrap();
                for i in 0..40u8 {
                    s.create_user(&format!("w{w}-u{i}@example.com"), PHC, h.id)
                        .unwrap();
                    s.create_camera(h.id, &format!("cam {w}/{i}"), "UTC", key_for(w, i))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(setup.list_users().unwrap().len(), 120);
    assert_eq!(setup.list_cameras().unwrap().len(), 120);
}

fn key_for(writer: u8, i: u8) -> TokenHash {
    let mut bytes = [0; 32];
    bytes[0] = writer;
    bytes[1] = i;
    bytes[31] = 0xff;
    TokenHash::from_bytes(bytes)
}

/// Set to a database path to make `child_process_writer` do its work.
const CHILD_DB_ENV: &str = "HEARTH_STORE_TEST_CHILD_DB";

/// The other process of `another_process_shares_the_file`: the test binary
/// re-runs itself with only this test selected. Does nothing when run otherwise.
#[test]
#[ignore = "run as a child process by another_process_shares_the_file"]
fn child_process_writer() {
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let s = SqliteStore::open(Path::new(&path)).unwrap();
    // The parent's write, made before we started, is visible here...
    let parent = s.user_by_email("parent@example.com").unwrap().unwrap();
    // ...and ours will be visible to the parent's already-open handle.
    s.create_user("child@example.com", PHC, parent.household)
        .unwrap();
    s.create_session(&session(parent.id, key(7), UnixMillis(0), UnixMillis(10)))
        .unwrap();
}

#[test]
fn another_process_shares_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let server = SqliteStore::open(&path).unwrap();
    let (h, parent) = household_with_user(&server, "parent@example.com");

    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::tests::child_process_writer",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");

    let child = server.user_by_email("child@example.com").unwrap().unwrap();
    assert_eq!(child.household, h.id);
    assert_eq!(
        server.session_user(key(7), UnixMillis(5)).unwrap(),
        Some(parent.id)
    );
}
