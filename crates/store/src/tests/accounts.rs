//! Households, users and login sessions: every method with its negative cases,
//! and handles on one database seeing each other's writes.

use super::*;

pub(super) fn households_are_created_found_and_listed(s: &dyn Store) {
    let b = s.create_household("Beach house").unwrap();
    let a = s.create_household("apartment").unwrap();
    assert_eq!(s.household_by_id(a.id).unwrap(), Some(a.clone()));
    assert_eq!(s.household_by_id(HouseholdId::random()).unwrap(), None);
    assert_eq!(s.list_households().unwrap(), vec![a, b]);
}

pub(super) fn household_needs_a_name(s: &dyn Store) {
    let err = s.create_household("  ").unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
}

pub(super) fn user_email_is_normalized_and_found_case_insensitively(s: &dyn Store) {
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

pub(super) fn unknown_users_are_none(s: &dyn Store) {
    household_with_user(s, "alice@example.com");
    assert_eq!(s.user_by_email("bob@example.com").unwrap(), None);
    assert_eq!(s.user_by_email("").unwrap(), None);
    assert_eq!(s.user_by_id(UserId::random()).unwrap(), None);
}

pub(super) fn duplicate_email_is_a_conflict_not_an_internal_error(s: &dyn Store) {
    let (h, _) = household_with_user(s, "alice@example.com");
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

pub(super) fn user_needs_an_existing_household(s: &dyn Store) {
    let err = s
        .create_user("a@example.com", PHC, HouseholdId::random())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "household" }),
        "{err:?}"
    );
}

pub(super) fn user_input_is_checked(s: &dyn Store) {
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

pub(super) fn user_debug_redacts_the_password_hash(s: &dyn Store) {
    let (_, u) = household_with_user(s, "alice@example.com");
    let debug = format!("{u:?} {u:#?}");
    assert!(!debug.contains("argon2"), "{debug}");
    assert!(!debug.contains("c2FsdHNhbHQ"), "{debug}");
    assert!(debug.contains("alice@example.com"));
}

pub(super) fn users_are_listed_by_email(s: &dyn Store) {
    let h = s.create_household("home").unwrap();
    let c = s.create_user("carol@example.com", PHC, h.id).unwrap();
    let a = s.create_user("alice@example.com", PHC, h.id).unwrap();
    let b = s.create_user("Bob@example.com", PHC, h.id).unwrap();
    assert_eq!(s.list_users().unwrap(), vec![a, b, c]);
}

pub(super) fn password_hash_can_be_replaced(s: &dyn Store) {
    let (_, u) = household_with_user(s, "alice@example.com");
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

pub(super) fn session_is_valid_until_it_expires(s: &dyn Store) {
    let (_, u) = household_with_user(s, "alice@example.com");
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

pub(super) fn deleted_session_is_gone_and_deleting_is_idempotent(s: &dyn Store) {
    let (_, u) = household_with_user(s, "alice@example.com");
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

pub(super) fn signing_out_ends_the_session_and_records_its_holder_until_its_grants_expire(
    s: &dyn Store,
) {
    let (_, u) = household_with_user(s, "alice@example.com");
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
    // Every holder still recorded, whatever its time (all are later than that).
    let count = s.ended_grant_holders(UnixMillis(i64::MIN)).unwrap().len();
    assert_eq!(count, 1);
    assert_eq!(
        s.ended_grant_holders(UnixMillis(1_000)).unwrap(),
        vec![[8; 16]]
    );
}

pub(super) fn session_creation_is_checked(s: &dyn Store) {
    let (_, u) = household_with_user(s, "alice@example.com");
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

pub(super) fn purge_removes_only_expired_sessions(s: &dyn Store) {
    let (_, u) = household_with_user(s, "alice@example.com");
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

pub(super) fn deleting_a_users_sessions_leaves_others(s: &dyn Store) {
    let (h, alice) = household_with_user(s, "alice@example.com");
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

pub(super) fn sessions_are_listed_newest_first_under_ids_unrelated_to_their_tokens(s: &dyn Store) {
    let (h, alice) = household_with_user(s, "alice@example.com");
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

pub(super) fn a_session_is_ended_by_id_only_by_its_user_and_its_streams_end_with_it(s: &dyn Store) {
    let (h, alice) = household_with_user(s, "alice@example.com");
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

pub(super) fn changing_the_password_ends_every_other_session_in_one_go(s: &dyn Store) {
    const NEW_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
    let (h, alice) = household_with_user(s, "alice@example.com");
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

pub(super) fn store_is_usable_as_a_shared_trait_object(open: Open<'_>) {
    let s: std::sync::Arc<dyn Store> = std::sync::Arc::from(open());
    let worker = {
        let s = std::sync::Arc::clone(&s);
        std::thread::spawn(move || s.create_household("from a thread").unwrap())
    };
    let h = worker.join().unwrap();
    assert_eq!(s.household_by_id(h.id).unwrap(), Some(h));
}

pub(super) fn two_handles_on_one_file_see_each_others_writes_at_once(open: Open<'_>) {
    let server = open();
    let cli = open();

    // The admin CLI adds a user and a camera while the server runs.
    let (h, u) = household_with_user(&*cli, "alice@example.com");
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

pub(super) fn concurrent_writers_on_separate_handles_all_succeed(open: Open<'_>) {
    let setup = open();
    let h = setup.create_household("home").unwrap();
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3u8)
            .map(|w| {
                scope.spawn(move || {
                    let s = open();
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
    });
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
