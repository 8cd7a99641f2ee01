//! The change counter, as the server polls it: from a second handle on the same
//! database (the CLI or another node writes, the server reads).

use super::*;

pub(super) fn generation_moves_with_every_access_change_seen_from_another_handle(open: Open<'_>) {
    let server = open();
    let cli = open();

    let mut last = server.generation().unwrap();
    let mut changed = |what: &str| {
        let now = server.generation().unwrap();
        assert_ne!(now, last, "{what} did not change the generation");
        last = now;
    };

    let (a, alice) = household_with_user(&*cli, "alice@example.com");
    changed("create_user");
    let (b, bob) = household_with_user(&*cli, "bob@example.com");
    changed("create_user");
    let cam = cli.create_camera(a.id, "Porch", "UTC", key(1)).unwrap();
    changed("create_camera");
    cli.set_user_password_hash(alice.id, PHC).unwrap();
    changed("set_user_password_hash");
    cli.set_camera_stream_key(cam.id, key(2)).unwrap();
    changed("set_camera_stream_key");
    cli.bump_camera_epoch(cam.id).unwrap();
    changed("bump_camera_epoch");
    cli.share_camera(cam.id, bob.id, UnixMillis(1)).unwrap();
    changed("share_camera");
    cli.unshare_camera(cam.id, bob.id).unwrap();
    changed("unshare_camera");
    cli.transfer_camera(cam.id, b.id, key(64)).unwrap();
    changed("transfer_camera");
    cli.reset_camera(cam.id, key(3)).unwrap();
    changed("reset_camera");
    cli.suspend(SuspensionKind::Integration, "alexa", "r", UnixMillis(1))
        .unwrap();
    changed("suspend");
    cli.resume(SuspensionKind::Integration, "alexa").unwrap();
    changed("resume");
    assert!(cli.delete_camera(cam.id).unwrap());
    changed("camera deleted");
    // A user deleted (there is no method for it yet) and a camera deleted
    // behind the store's back: sqlite::tests::generation.
}

pub(super) fn generation_stays_put_for_writes_that_change_no_access(open: Open<'_>) {
    let server = open();
    let cli = open();
    let (a, alice) = household_with_user(&*cli, "alice@example.com");
    let (_, bob) = household_with_user(&*cli, "bob@example.com");
    let cam = cli.create_camera(a.id, "Porch", "UTC", key(1)).unwrap();
    cli.share_camera(cam.id, bob.id, UnixMillis(1)).unwrap();
    cli.suspend(SuspensionKind::Integration, "alexa", "r", UnixMillis(1))
        .unwrap();
    let before = server.generation().unwrap();

    // Repeats and refusals.
    cli.share_camera(cam.id, bob.id, UnixMillis(2)).unwrap();
    assert!(!cli.unshare_camera(cam.id, alice.id).unwrap());
    assert!(
        !cli.suspend(SuspensionKind::Integration, "alexa", "r", UnixMillis(2))
            .unwrap()
    );
    assert!(!cli.resume(SuspensionKind::Integration, "google").unwrap());
    assert!(cli.share_camera(cam.id, alice.id, UnixMillis(2)).is_err());
    assert!(cli.transfer_camera(cam.id, a.id, key(65)).is_err());
    // Writes to other tables.
    cli.create_household("elsewhere").unwrap();
    cli.create_session(&session(alice.id, key(9), UnixMillis(0), UnixMillis(10)))
        .unwrap();
    cli.append_audit(&[AuditEvent {
        at: UnixMillis(1),
        kind: "view_start".into(),
        camera: Some(cam.id),
        user: Some(alice.id),
        integration: None,
        grant: None,
        detail: serde_json::json!({}),
    }])
    .unwrap();
    // A rename is not an access change.
    cli.rename_camera(cam.id, "Front door").unwrap();
    assert_eq!(server.generation().unwrap(), before);
}
