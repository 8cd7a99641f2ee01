//! Sharing, the access rule (visibility, access kind, the snapshot), transfer and
//! reset, and kill switches.

use super::*;

/// Two households: Alice's (with Alice2) owning Porch and Attic, Bob's (with Carol)
/// owning Garden, and Dave alone in a third.
pub(crate) struct World {
    pub(crate) a: Household,
    pub(crate) b: Household,
    pub(crate) d: Household,
    pub(crate) alice: User,
    pub(crate) alice2: User,
    pub(crate) bob: User,
    pub(crate) carol: User,
    pub(crate) dave: User,
    pub(crate) porch: Camera,
    pub(crate) attic: Camera,
    pub(crate) garden: Camera,
}

pub(crate) fn world(s: &dyn Store) -> World {
    let (a, alice) = household_with_user(s, "alice@example.com");
    let alice2 = s.create_user("alice2@example.com", PHC, a.id).unwrap();
    let (b, bob) = household_with_user(s, "bob@example.com");
    let carol = s.create_user("carol@example.com", PHC, b.id).unwrap();
    let (d, dave) = household_with_user(s, "dave@example.com");
    let porch = s.create_camera(a.id, "Porch", "UTC", key(1)).unwrap();
    let attic = s.create_camera(a.id, "attic", "UTC", key(2)).unwrap();
    let garden = s.create_camera(b.id, "Garden", "UTC", key(3)).unwrap();
    World {
        a,
        b,
        d,
        alice,
        alice2,
        bob,
        carol,
        dave,
        porch,
        attic,
        garden,
    }
}

fn sorted_snapshot(s: &dyn Store) -> Vec<(UserId, CameraId, BindingEpoch)> {
    let mut pairs = s.access_snapshot().unwrap();
    pairs.sort();
    pairs
}

fn sorted(
    mut pairs: Vec<(UserId, CameraId, BindingEpoch)>,
) -> Vec<(UserId, CameraId, BindingEpoch)> {
    pairs.sort();
    pairs
}

pub(crate) fn ids(cameras: &[Camera]) -> Vec<CameraId> {
    cameras.iter().map(|c| c.id).collect()
}

fn assert_err<T: std::fmt::Debug>(result: Result<T, StoreError>, check: fn(&StoreError) -> bool) {
    let err = result.unwrap_err();
    assert!(check(&err), "unexpected error {err:?}");
}

pub(super) fn a_share_makes_the_camera_visible_view_only_until_revoked(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(100))
        .unwrap();

    // Bob sees his own camera and the shared one, ordered by name; only the shared
    // camera, not the rest of Alice's household.
    assert_eq!(
        s.cameras_visible_to(w.bob.id).unwrap(),
        vec![w.garden.clone(), w.porch.clone()]
    );
    assert_eq!(
        s.cameras_visible_with_access(w.bob.id).unwrap(),
        vec![
            (w.garden.clone(), Access::Owner),
            (w.porch.clone(), Access::Viewer)
        ]
    );
    assert_eq!(
        s.camera_access(w.bob.id, w.porch.id).unwrap(),
        Some((w.porch.clone(), Access::Viewer))
    );
    assert_eq!(
        s.camera_visible_to(w.bob.id, w.porch.id).unwrap(),
        Some(w.porch.clone())
    );
    assert_eq!(s.camera_access(w.bob.id, w.attic.id).unwrap(), None);
    // The owners are still owners.
    assert_eq!(
        s.camera_access(w.alice.id, w.porch.id).unwrap(),
        Some((w.porch.clone(), Access::Owner))
    );
    assert_eq!(
        s.cameras_visible_with_access(w.alice2.id).unwrap(),
        vec![
            (w.attic.clone(), Access::Owner),
            (w.porch.clone(), Access::Owner)
        ]
    );
    // A share is per user, not per household: Carol (Bob's household) sees nothing
    // of Alice's, and neither does Dave.
    assert_eq!(s.camera_access(w.carol.id, w.porch.id).unwrap(), None);
    assert_eq!(
        ids(&s.cameras_visible_to(w.carol.id).unwrap()),
        vec![w.garden.id]
    );
    assert!(s.cameras_visible_to(w.dave.id).unwrap().is_empty());
    // Sharing does not go the other way.
    assert_eq!(s.camera_access(w.alice.id, w.garden.id).unwrap(), None);

    assert_eq!(
        s.shares_of(w.porch.id).unwrap(),
        vec![Share {
            camera: w.porch.id,
            user: w.bob.id,
            email: "bob@example.com".into(),
            created_at: UnixMillis(100),
        }]
    );

    // Revoked: gone from every form of the question at once.
    assert!(s.unshare_camera(w.porch.id, w.bob.id).unwrap());
    assert_eq!(
        ids(&s.cameras_visible_to(w.bob.id).unwrap()),
        vec![w.garden.id]
    );
    assert_eq!(s.camera_access(w.bob.id, w.porch.id).unwrap(), None);
    assert_eq!(s.camera_visible_to(w.bob.id, w.porch.id).unwrap(), None);
    assert!(
        !s.access_snapshot()
            .unwrap()
            .iter()
            .any(|&(u, c, _)| u == w.bob.id && c == w.porch.id)
    );
    assert!(s.shares_of(w.porch.id).unwrap().is_empty());
    // Unsharing twice (or something never shared) says there was nothing.
    assert!(!s.unshare_camera(w.porch.id, w.bob.id).unwrap());
    assert!(!s.unshare_camera(w.garden.id, w.alice.id).unwrap());
    assert!(
        !s.unshare_camera(CameraId::random(), UserId::random())
            .unwrap()
    );
}

pub(super) fn sharing_again_is_a_no_op_that_keeps_the_first_time(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(100))
        .unwrap();
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(200))
        .unwrap();
    let shares = s.shares_of(w.porch.id).unwrap();
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].created_at, UnixMillis(100));
    assert_eq!(
        s.cameras_visible_to(w.bob.id)
            .unwrap()
            .iter()
            .filter(|c| c.id == w.porch.id)
            .count(),
        1
    );
}

pub(super) fn share_refuses_unknown_ids_and_the_cameras_own_household(s: &dyn Store) {
    let w = world(s);
    assert_err(
        s.share_camera(CameraId::random(), w.bob.id, UnixMillis(1)),
        |e| matches!(e, StoreError::NotFound { what: "camera" }),
    );
    assert_err(
        s.share_camera(w.porch.id, UserId::random(), UnixMillis(1)),
        |e| matches!(e, StoreError::NotFound { what: "user" }),
    );
    // Alice2 already owns Porch through her household.
    for member in [w.alice.id, w.alice2.id] {
        assert_err(s.share_camera(w.porch.id, member, UnixMillis(1)), |e| {
            matches!(e, StoreError::InvalidInput { .. }) && !e.is_internal()
        });
    }
    assert!(s.shares_of(w.porch.id).unwrap().is_empty());
    assert_eq!(
        s.camera_access(w.alice2.id, w.porch.id).unwrap(),
        Some((w.porch.clone(), Access::Owner))
    );
}

pub(super) fn shares_are_listed_by_email_per_camera(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.dave.id, UnixMillis(1))
        .unwrap();
    s.share_camera(w.porch.id, w.carol.id, UnixMillis(2))
        .unwrap();
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(3)).unwrap();
    s.share_camera(w.garden.id, w.dave.id, UnixMillis(4))
        .unwrap();
    let emails: Vec<String> = s
        .shares_of(w.porch.id)
        .unwrap()
        .into_iter()
        .map(|share| share.email)
        .collect();
    assert_eq!(
        emails,
        ["bob@example.com", "carol@example.com", "dave@example.com"]
    );
    assert_eq!(s.shares_of(w.garden.id).unwrap().len(), 1);
    assert!(s.shares_of(w.attic.id).unwrap().is_empty());
    assert!(s.shares_of(CameraId::random()).unwrap().is_empty());
}

pub(crate) fn ids_of_shares(s: &dyn Store, camera: CameraId) -> Vec<UserId> {
    s.shares_of(camera)
        .unwrap()
        .into_iter()
        .map(|share| share.user)
        .collect()
}

pub(super) fn snapshot_has_every_allowed_pair_once_with_the_current_epoch(s: &dyn Store) {
    assert!(s.access_snapshot().unwrap().is_empty());
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    s.share_camera(w.garden.id, w.dave.id, UnixMillis(1))
        .unwrap();
    let e3 = s.bump_camera_epoch(w.garden.id).unwrap();
    assert_eq!(e3, BindingEpoch(2));
    let one = BindingEpoch(1);
    let expected = sorted(vec![
        (w.alice.id, w.porch.id, one),
        (w.alice.id, w.attic.id, one),
        (w.alice2.id, w.porch.id, one),
        (w.alice2.id, w.attic.id, one),
        (w.bob.id, w.garden.id, e3),
        (w.carol.id, w.garden.id, e3),
        (w.bob.id, w.porch.id, one),
        (w.dave.id, w.garden.id, e3),
    ]);
    assert_eq!(sorted_snapshot(s), expected);

    // The snapshot and the per-user questions are the same rule.
    for user in [w.alice.id, w.alice2.id, w.bob.id, w.carol.id, w.dave.id] {
        let mut from_snapshot: Vec<CameraId> = expected
            .iter()
            .filter(|(u, ..)| *u == user)
            .map(|&(_, c, _)| c)
            .collect();
        from_snapshot.sort();
        let mut visible = ids(&s.cameras_visible_to(user).unwrap());
        visible.sort();
        assert_eq!(visible, from_snapshot);
    }
}

/// Set up through the store, so SQLite runs it in memory: 14,000 writes to a
/// file would take half a minute (`sqlite::tests::access::access_snapshot_cost`
/// measures a file filled by raw SQL).
pub(super) fn access_snapshot_cost(s: &dyn Store) {
    // 2,000 households of 4 users and 1 camera, plus 2,000 shares: 10,000 pairs.
    let setup = std::time::Instant::now();
    let mut first_users = Vec::new();
    let mut cameras = Vec::new();
    for h in 0..2000u32 {
        let household = s.create_household("h").unwrap();
        for u in 0..4u32 {
            let user = s
                .create_user(&format!("u{h}-{u}@example.com"), "$x", household.id)
                .unwrap();
            if u == 0 {
                first_users.push(user.id);
            }
        }
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&h.to_be_bytes());
        cameras.push(
            s.create_camera(household.id, "cam", "UTC", TokenHash::from_bytes(hash))
                .unwrap()
                .id,
        );
    }
    for (h, camera) in cameras.iter().enumerate() {
        // Camera h shared with the first user of household h+1.
        let next = (h + 1) % 2000;
        s.share_camera(*camera, first_users[next], UnixMillis(0))
            .unwrap();
    }
    let test = std::thread::current().name().unwrap_or("").to_owned();
    println!("{test}: 14,000 writes to set up: {:?}", setup.elapsed());
    s.suspend(
        SuspensionKind::Camera,
        &cameras[0].to_string(),
        "test",
        UnixMillis(0),
    )
    .unwrap();
    assert_eq!(s.access_snapshot().unwrap().len(), 10_000 - 5);

    let runs = 20;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        assert_eq!(s.access_snapshot().unwrap().len(), 9_995);
    }
    let per_snapshot = started.elapsed() / runs;
    let polls = 10_000;
    let started = std::time::Instant::now();
    for _ in 0..polls {
        s.generation().unwrap();
    }
    let per_poll = started.elapsed() / polls;
    println!(
        "{test}: access_snapshot of 9,995 pairs: {per_snapshot:?}; generation poll: {per_poll:?}"
    );
}

pub(super) fn transfer_moves_the_camera_bumps_its_epoch_and_drops_its_shares(s: &dyn Store) {
    let w = world(s);
    s.bump_camera_epoch(w.porch.id).unwrap(); // epoch 2
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    s.share_camera(w.porch.id, w.dave.id, UnixMillis(1))
        .unwrap();
    s.share_camera(w.attic.id, w.bob.id, UnixMillis(1)).unwrap();

    let epoch = s.transfer_camera(w.porch.id, w.d.id, key(60)).unwrap();
    assert_eq!(epoch, BindingEpoch(3));
    let moved = s.camera_by_id(w.porch.id).unwrap().unwrap();
    assert_eq!((moved.household, moved.epoch), (w.d.id, BindingEpoch(3)));
    // Same camera otherwise, with a new stream key (the old one reaches nobody)
    // and a new binding start.
    assert_eq!(
        (moved.name.as_str(), moved.created_at),
        ("Porch", w.porch.created_at)
    );
    assert!(moved.bound_at >= w.porch.bound_at);
    assert_eq!(s.camera_by_stream_key(key(1)).unwrap(), None);
    assert_eq!(
        s.camera_by_stream_key(key(60)).unwrap(),
        Some(moved.clone())
    );

    // The old household and the old viewers lose it; Dave now owns it.
    for user in [w.alice.id, w.alice2.id, w.bob.id] {
        assert_eq!(s.camera_access(user, w.porch.id).unwrap(), None);
    }
    assert_eq!(
        s.camera_access(w.dave.id, w.porch.id).unwrap(),
        Some((moved.clone(), Access::Owner))
    );
    assert!(s.shares_of(w.porch.id).unwrap().is_empty());
    // Other cameras' shares are untouched.
    assert_eq!(ids_of_shares(s, w.attic.id), vec![w.bob.id]);
    let porch_pairs: Vec<_> = sorted_snapshot(s)
        .into_iter()
        .filter(|&(_, c, _)| c == w.porch.id)
        .collect();
    assert_eq!(porch_pairs, vec![(w.dave.id, w.porch.id, BindingEpoch(3))]);
}

pub(super) fn transfer_refuses_unknown_ids_and_a_no_op_move(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    assert_err(
        s.transfer_camera(CameraId::random(), w.b.id, key(61)),
        |e| matches!(e, StoreError::NotFound { what: "camera" }),
    );
    assert_err(
        s.transfer_camera(w.porch.id, HouseholdId::random(), key(62)),
        |e| matches!(e, StoreError::NotFound { what: "household" }),
    );
    assert_err(s.transfer_camera(w.porch.id, w.a.id, key(63)), |e| {
        matches!(e, StoreError::InvalidInput { .. })
    });
    // Nothing changed.
    assert_eq!(s.camera_by_id(w.porch.id).unwrap(), Some(w.porch.clone()));
    assert_eq!(ids_of_shares(s, w.porch.id), vec![w.bob.id]);
}

pub(super) fn reset_replaces_the_key_bumps_the_epoch_and_drops_shares(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    s.share_camera(w.attic.id, w.bob.id, UnixMillis(1)).unwrap();

    assert_eq!(s.reset_camera(w.porch.id, key(9)).unwrap(), BindingEpoch(2));
    assert_eq!(s.camera_by_stream_key(key(1)).unwrap(), None);
    let reset = s.camera_by_stream_key(key(9)).unwrap().unwrap();
    assert_eq!(
        (reset.id, reset.household, reset.epoch),
        (w.porch.id, w.a.id, BindingEpoch(2))
    );
    assert!(s.shares_of(w.porch.id).unwrap().is_empty());
    assert_eq!(s.camera_access(w.bob.id, w.porch.id).unwrap(), None);
    assert_eq!(ids_of_shares(s, w.attic.id), vec![w.bob.id]);
    // The household keeps it, at the new epoch.
    assert_eq!(
        s.camera_access(w.alice.id, w.porch.id).unwrap(),
        Some((reset.clone(), Access::Owner))
    );
    assert_eq!(
        s.reset_camera(w.porch.id, key(10)).unwrap(),
        BindingEpoch(3)
    );
}

pub(super) fn reset_refuses_unknown_cameras_and_taken_keys_and_then_changes_nothing(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    assert_err(s.reset_camera(CameraId::random(), key(9)), |e| {
        matches!(e, StoreError::NotFound { what: "camera" })
    });
    // Garden's key: refused as a whole, so the epoch and the shares stay.
    assert_err(s.reset_camera(w.porch.id, key(3)), |e| {
        matches!(e, StoreError::Conflict { what: "stream key" })
    });
    assert_eq!(s.camera_by_id(w.porch.id).unwrap(), Some(w.porch.clone()));
    assert_eq!(
        s.camera_by_stream_key(key(1)).unwrap(),
        Some(w.porch.clone())
    );
    assert_eq!(
        s.camera_by_stream_key(key(3)).unwrap(),
        Some(w.garden.clone())
    );
    assert_eq!(ids_of_shares(s, w.porch.id), vec![w.bob.id]);
}

#[test]
fn suspension_kind_round_trips_through_its_name() {
    for kind in SuspensionKind::ALL {
        assert_eq!(SuspensionKind::parse(kind.as_str()), Some(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    for bad in ["", "Camera", "grant", "camera "] {
        assert_eq!(SuspensionKind::parse(bad), None, "{bad:?}");
    }
}

pub(super) fn suspensions_round_trip(s: &dyn Store) {
    let w = world(s);
    assert!(s.suspensions().unwrap().is_empty());
    assert!(
        s.suspend(
            SuspensionKind::Integration,
            " Google ",
            "cache incident",
            UnixMillis(10)
        )
        .unwrap()
    );
    // Any spelling of the same target is the same switch; the first reason stays.
    assert!(
        !s.suspend(
            SuspensionKind::Integration,
            "google",
            "again",
            UnixMillis(20)
        )
        .unwrap()
    );
    let upper = w.porch.id.to_string().to_uppercase();
    assert!(
        s.suspend(SuspensionKind::Camera, &upper, "stolen", UnixMillis(30))
            .unwrap()
    );
    assert!(
        s.suspend(
            SuspensionKind::User,
            &w.bob.id.to_string(),
            "abuse",
            UnixMillis(40)
        )
        .unwrap()
    );
    assert!(
        s.suspend(
            SuspensionKind::Household,
            &w.d.id.to_string(),
            "unpaid",
            UnixMillis(50)
        )
        .unwrap()
    );
    assert_eq!(
        s.suspensions().unwrap(),
        vec![
            Suspension {
                kind: SuspensionKind::Integration,
                target: "google".into(),
                reason: "cache incident".into(),
                created_at: UnixMillis(10),
            },
            Suspension {
                kind: SuspensionKind::Camera,
                target: w.porch.id.to_string(),
                reason: "stolen".into(),
                created_at: UnixMillis(30),
            },
            Suspension {
                kind: SuspensionKind::User,
                target: w.bob.id.to_string(),
                reason: "abuse".into(),
                created_at: UnixMillis(40),
            },
            Suspension {
                kind: SuspensionKind::Household,
                target: w.d.id.to_string(),
                reason: "unpaid".into(),
                created_at: UnixMillis(50),
            },
        ]
    );
    // The same target under another kind is another switch.
    assert!(
        !s.resume(SuspensionKind::User, &w.porch.id.to_string())
            .unwrap()
    );
    assert!(s.resume(SuspensionKind::Integration, "GOOGLE").unwrap());
    assert!(!s.resume(SuspensionKind::Integration, "google").unwrap());
    assert!(s.resume(SuspensionKind::Camera, &upper).unwrap());
    assert_eq!(s.suspensions().unwrap().len(), 2);
    // Targets need not exist (suspend first, or outlive a deletion).
    assert!(
        s.suspend(
            SuspensionKind::Camera,
            &CameraId::random().to_string(),
            "pre-emptive",
            UnixMillis(60)
        )
        .unwrap()
    );
}

pub(super) fn suspension_input_is_checked(s: &dyn Store) {
    let cases = [
        (SuspensionKind::Integration, "  ", "r"),
        (SuspensionKind::Camera, "porch", "r"),
        (SuspensionKind::Camera, "alice@example.com", "r"),
        (SuspensionKind::User, "0123", "r"),
        (SuspensionKind::Household, "", "r"),
        (SuspensionKind::Integration, "alexa", " "),
    ];
    for (kind, target, reason) in cases {
        assert_err(s.suspend(kind, target, reason, UnixMillis(0)), |e| {
            matches!(e, StoreError::InvalidInput { .. })
        });
    }
    assert_err(s.resume(SuspensionKind::User, "bob"), |e| {
        matches!(e, StoreError::InvalidInput { .. })
    });
    assert!(s.suspensions().unwrap().is_empty());
    // That the schema refuses unknown kinds even from raw SQL:
    // sqlite::tests::access::the_schema_refuses_unknown_suspension_kinds.
}

pub(super) fn suspended_cameras_households_and_users_lose_access_until_resumed(s: &dyn Store) {
    let w = world(s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    let everything = sorted_snapshot(s);
    let without = |pred: &dyn Fn(&(UserId, CameraId, BindingEpoch)) -> bool| -> Vec<_> {
        everything.iter().copied().filter(|p| !pred(p)).collect()
    };

    // A camera: for its owners and its viewers alike.
    s.suspend(
        SuspensionKind::Camera,
        &w.porch.id.to_string(),
        "r",
        UnixMillis(0),
    )
    .unwrap();
    assert_eq!(sorted_snapshot(s), without(&|&(_, c, _)| c == w.porch.id));
    assert_eq!(s.camera_access(w.alice.id, w.porch.id).unwrap(), None);
    assert_eq!(s.camera_access(w.bob.id, w.porch.id).unwrap(), None);
    assert_eq!(
        ids(&s.cameras_visible_to(w.alice.id).unwrap()),
        vec![w.attic.id]
    );
    s.resume(SuspensionKind::Camera, &w.porch.id.to_string())
        .unwrap();
    assert_eq!(sorted_snapshot(s), everything);

    // A household: all its cameras, also for viewers outside it; its members keep
    // what is shared with them from elsewhere (none here).
    s.suspend(
        SuspensionKind::Household,
        &w.a.id.to_string(),
        "r",
        UnixMillis(0),
    )
    .unwrap();
    assert_eq!(
        sorted_snapshot(s),
        without(&|&(_, c, _)| c == w.porch.id || c == w.attic.id)
    );
    assert_eq!(
        ids(&s.cameras_visible_to(w.bob.id).unwrap()),
        vec![w.garden.id]
    );
    assert!(s.cameras_visible_to(w.alice2.id).unwrap().is_empty());
    s.resume(SuspensionKind::Household, &w.a.id.to_string())
        .unwrap();

    // A user: everything they see, owned or shared; nobody else is affected.
    s.suspend(
        SuspensionKind::User,
        &w.bob.id.to_string(),
        "r",
        UnixMillis(0),
    )
    .unwrap();
    assert_eq!(sorted_snapshot(s), without(&|&(u, _, _)| u == w.bob.id));
    assert!(s.cameras_visible_to(w.bob.id).unwrap().is_empty());
    assert_eq!(
        ids(&s.cameras_visible_to(w.carol.id).unwrap()),
        vec![w.garden.id]
    );
    s.resume(SuspensionKind::User, &w.bob.id.to_string())
        .unwrap();

    // An integration is not per camera: the rule ignores it, the server applies it.
    s.suspend(SuspensionKind::Integration, "google", "r", UnixMillis(0))
        .unwrap();
    assert_eq!(sorted_snapshot(s), everything);
}

pub(super) fn an_invitation_becomes_a_share_only_when_its_recipient_accepts(s: &dyn Store) {
    let w = world(s);
    s.invite_to_share(w.porch.id, "Bob@Example.com", UnixMillis(5))
        .unwrap();
    s.invite_to_share(w.porch.id, "nobody@example.com", UnixMillis(6))
        .unwrap();
    // Pending: listed for the owner and the recipient, no access yet.
    let emails: Vec<String> = s
        .invitations_of_camera(w.porch.id)
        .unwrap()
        .into_iter()
        .map(|i| i.email)
        .collect();
    assert_eq!(emails, ["bob@example.com", "nobody@example.com"]);
    assert_eq!(s.invitations_for("bob@example.com").unwrap().len(), 1);
    assert_eq!(s.camera_access(w.bob.id, w.porch.id).unwrap(), None);
    // Someone else cannot take Bob's invitation.
    assert!(
        !s.accept_invitation(w.porch.id, w.dave.id, UnixMillis(7))
            .unwrap()
    );
    assert!(
        s.accept_invitation(w.porch.id, w.bob.id, UnixMillis(7))
            .unwrap()
    );
    assert!(s.camera_access(w.bob.id, w.porch.id).unwrap().is_some());
    assert!(
        !s.accept_invitation(w.porch.id, w.bob.id, UnixMillis(8))
            .unwrap()
    );
    assert_eq!(s.invitations_of_camera(w.porch.id).unwrap().len(), 1);
    // A transfer voids what was invited under the old binding.
    s.invite_to_share(w.porch.id, "dave@example.com", UnixMillis(9))
        .unwrap();
    s.transfer_camera(w.porch.id, w.b.id, key(68)).unwrap();
    assert!(s.invitations_of_camera(w.porch.id).unwrap().is_empty());
    assert!(
        !s.accept_invitation(w.porch.id, w.dave.id, UnixMillis(10))
            .unwrap()
    );
    assert!(
        s.withdraw_invitation(w.porch.id, "NOBODY@example.com")
            .unwrap()
    );
    assert!(
        s.invite_to_share(CameraId::random(), "x@y.z", UnixMillis(0))
            .is_err()
    );
}
