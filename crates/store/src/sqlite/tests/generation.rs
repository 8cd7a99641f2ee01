//! The change counter, as the server polls it: written by another process, and
//! by raw SQL behind the store's back. (From another handle through the store:
//! `crate::tests::generation`.)

use super::*;

/// The raw-SQL end of
/// `crate::tests::generation::generation_moves_with_every_access_change_seen_from_another_handle`:
/// rows deleted behind the store's back (there is no method to delete a user).
#[test]
fn generation_moves_when_a_user_or_camera_is_deleted_from_raw_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();
    let (a, alice) = household_with_user(&cli, "alice@example.com");
    let cam = cli.create_camera(a.id, "Porch", "UTC", key(1)).unwrap();

    let mut last = server.generation().unwrap();
    let mut changed = |what: &str| {
        let now = server.generation().unwrap();
        assert_ne!(now, last, "{what} did not change the generation");
        last = now;
    };
    cli.conn()
        .execute("DELETE FROM users WHERE id = ?1", [alice.id.to_string()])
        .unwrap();
    changed("user deleted");
    cli.conn()
        .execute("DELETE FROM cameras WHERE id = ?1", [cam.id.to_string()])
        .unwrap();
    changed("camera deleted");
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
