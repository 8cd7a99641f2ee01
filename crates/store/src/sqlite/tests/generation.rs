//! The change counter, as the server polls it: from a second handle on the same
//! file (the CLI or another node's process writes, the server reads).

use super::*;

#[test]
fn generation_moves_with_every_access_change_seen_from_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();

    let mut last = server.generation().unwrap();
    let mut changed = |what: &str| {
        let now = server.generation().unwrap();
        assert_ne!(now, last, "{what} did not change the generation");
        last = now;
    };

    let (a, alice) = household_with_user(&cli, "alice@example.com");
    changed("create_user");
    let (b, bob) = household_with_user(&cli, "bob@example.com");
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
    cli.conn()
        .execute("DELETE FROM users WHERE id = ?1", [alice.id.to_string()])
        .unwrap();
    changed("user deleted");
    cli.conn()
        .execute("DELETE FROM cameras WHERE id = ?1", [cam.id.to_string()])
        .unwrap();
    changed("camera deleted");
}

#[test]
fn generation_stays_put_for_writes_that_change_no_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();
    let (a, alice) = household_with_user(&cli, "alice@example.com");
    let (_, bob) = household_with_user(&cli, "bob@example.com");
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
    cli.conn()
        .execute(
            "UPDATE cameras SET name = 'Front door' WHERE id = ?1",
            [cam.id.to_string()],
        )
        .unwrap();
    assert_eq!(server.generation().unwrap(), before);
}

/// Set to a database path to make `child_generation_writer` do its work.
const CHILD_GEN_ENV: &str = "HEARTH_STORE_TEST_CHILD_GEN_DB";

#[test]
#[ignore = "run as a child process by generation_moves_for_writes_from_another_process"]
fn child_generation_writer() {
    let Some(path) = std::env::var_os(CHILD_GEN_ENV) else {
        return;
    };
    let s = SqliteStore::open(Path::new(&path)).unwrap();
    let user = s.user_by_email("alice@example.com").unwrap().unwrap();
    s.suspend(
        SuspensionKind::User,
        &user.id.to_string(),
        "from the CLI",
        UnixMillis(1),
    )
    .unwrap();
}

#[test]
fn generation_moves_for_writes_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let server = SqliteStore::open(&path).unwrap();
    let (h, alice) = household_with_user(&server, "alice@example.com");
    server.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    assert_eq!(server.access_snapshot().unwrap().len(), 1);
    let before = server.generation().unwrap();

    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::tests::generation::child_generation_writer",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_GEN_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");

    assert_ne!(server.generation().unwrap(), before);
    assert!(server.access_snapshot().unwrap().is_empty());
    assert!(server.cameras_visible_to(alice.id).unwrap().is_empty());
}
