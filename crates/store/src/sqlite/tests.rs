//! What only the SQLite backend has: migrations (fresh, re-open, upgrade from
//! every older version, too new, failing script), one file shared between
//! processes, the write lock between handles, query plans, and the schema's own
//! guarantees against raw SQL (in `access`, `audit`, `generation`). Every
//! `Store` method is tested on both backends by the shared suite in
//! `crate::tests`.

use super::*;
use crate::migrations::{MIGRATIONS, migrate_with, schema_version};
use crate::tests::{PHC, household_with_user, key, session};

mod access;
mod audit;
mod generation;

fn store() -> SqliteStore {
    SqliteStore::open_in_memory().unwrap()
}

#[test]
fn stream_key_hash_is_never_selected() {
    // No record type has a field for it; this guards the column lists too.
    assert!(!CAMERA_COLUMNS.contains("stream_key"));
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
