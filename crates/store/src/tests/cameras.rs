//! Cameras: creation, stream keys and epochs, visibility within a household,
//! pulled sources, home agents, drafts, deletion and viewer keys.

use super::*;

pub(super) fn camera_is_created_at_epoch_one_and_found(s: &dyn Store) {
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

pub(super) fn a_pulled_cameras_sealed_source_is_set_replaced_and_removed(s: &dyn Store) {
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

pub(super) fn an_agent_is_made_once_from_a_live_claim_and_its_removal_locks_its_cameras_out(
    s: &dyn Store,
) {
    use hearth_model::AgentId;
    let (h, owner) = household_with_user(s, "a@example.com");
    let (other_home, _) = household_with_user(s, "b@example.com");
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

pub(super) fn a_draft_camera_is_marked_saved_and_goes_with_its_camera(s: &dyn Store) {
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

pub(super) fn a_deleted_camera_takes_its_shares_invitations_and_source_but_not_its_audit(
    s: &dyn Store,
) {
    let (h, owner) = household_with_user(s, "a@example.com");
    let (_, friend) = household_with_user(s, "b@example.com");
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

pub(super) fn viewer_keys_are_created_listed_and_revoked_by_their_owner_only(s: &dyn Store) {
    let (h, u) = household_with_user(s, "a@example.com");
    let (_, other) = household_with_user(s, "b@example.com");
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

pub(super) fn unknown_cameras_are_none(s: &dyn Store) {
    let h = s.create_household("home").unwrap();
    s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    assert_eq!(s.camera_by_id(CameraId::random()).unwrap(), None);
    assert_eq!(s.camera_by_stream_key(key(2)).unwrap(), None);
}

pub(super) fn duplicate_stream_key_is_a_conflict(s: &dyn Store) {
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

pub(super) fn camera_input_is_checked(s: &dyn Store) {
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

pub(super) fn users_see_only_their_households_cameras(s: &dyn Store) {
    let (a, alice) = household_with_user(s, "alice@example.com");
    let (b, bob) = household_with_user(s, "bob@example.com");
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

pub(super) fn stream_key_can_be_replaced(s: &dyn Store) {
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

pub(super) fn epoch_bumps_are_stored(s: &dyn Store) {
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
