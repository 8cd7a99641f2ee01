//! What only the PostgreSQL backend has: versioned migrations shared by nodes,
//! the monthly audit partitions, the audit log append-only for the role Hearth
//! connects as. (Every `Store` method is tested on both backends by the shared
//! suite in `crate::tests`.)

use super::*;
use hearth_testpg::TestPostgres;

fn fresh() -> (String, PgStore) {
    let url = TestPostgres::shared().fresh_database();
    let store = PgStore::connect(&url).unwrap();
    (url, store)
}

fn event(at: i64, kind: &str) -> AuditEvent {
    AuditEvent {
        at: UnixMillis(at),
        kind: kind.into(),
        camera: Some(CameraId::random()),
        user: None,
        integration: Some("app".into()),
        grant: None,
        detail: serde_json::json!({"n": 1}),
    }
}

/// Runs one statement as the app role (the role of the store's URL).
fn execute_as_app(store: &PgStore, sql: &'static str) -> Result<u64, tokio_postgres::Error> {
    store
        .run(move |c| async move { Ok(c.execute(sql, &[]).await) })
        .unwrap()
}

#[test]
fn months_are_counted_in_utc() {
    // 2026-12-05T12:00:00Z, 1970-01-01, 2024-02-29 (a leap day), 1969-12-31.
    assert_eq!(month_of(UnixMillis(1_796_472_000_000)), 2026 * 12 + 11);
    assert_eq!(month_of(UnixMillis(0)), 1970 * 12);
    assert_eq!(month_of(UnixMillis(1_709_208_000_000)), 2024 * 12 + 1);
    assert_eq!(month_of(UnixMillis(-1)), 1969 * 12 + 11);
    assert_eq!(month_start(1970 * 12), 0);
    assert_eq!(month_start(2024 * 12 + 2), 1_709_251_200_000); // 2024-03-01
    for m in [1969 * 12 + 11, 2000 * 12 + 1, 2026 * 12 + 11, 2100 * 12 + 1] {
        assert_eq!(month_of(UnixMillis(month_start(m))), m);
        assert_eq!(month_of(UnixMillis(month_start(m + 1) - 1)), m);
    }
}

#[test]
fn urls_are_shown_without_their_password() {
    let redact = crate::redact_url;
    assert_eq!(
        redact("postgres://hearth:s3cret@db:5432/hearth"),
        "postgres://hearth:***@db:5432/hearth"
    );
    assert_eq!(redact("postgres://db/hearth"), "postgres://db/hearth");
    assert_eq!(
        redact("host=db user=hearth password=s3cret dbname=hearth"),
        "host=db user=hearth password=*** dbname=hearth"
    );
    assert_eq!(
        redact("postgres://db/hearth?user=h&password=s3cret&sslmode=require"),
        "postgres://db/hearth?user=h&password=***&sslmode=require"
    );
    assert_eq!(redact("nats://s3cret@nats:4222"), "nats://***@nats:4222");
    let err =
        PgStore::connect("postgres://hearth:s3cret@127.0.0.1:1/x?connect_timeout=1").unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn audit_events_go_to_their_months_partition_and_stay_there() {
    let (url, s) = fresh();
    let now = now().0;
    s.append_audit(&[event(now, "view_start"), event(1_000, "ancient")])
        .unwrap();
    let name = TestPostgres::shared().database_of(&url);
    let placed = TestPostgres::shared().psql(
        &name,
        "SELECT kind || '=' || tableoid::regclass FROM audit_events ORDER BY at",
    );
    let month = month_of(UnixMillis(now));
    let partition = format!("audit_events_{:04}_{:02}", month / 12, month % 12 + 1);
    assert_eq!(
        placed.split_whitespace().collect::<Vec<_>>(),
        vec![
            "ancient=audit_events_default".to_string(),
            format!("view_start={partition}")
        ]
    );
    // Next month's partition is there before its first event.
    let next = month + 1;
    let exists = TestPostgres::shared().psql(
        &name,
        &format!(
            "SELECT to_regclass('audit_events_{:04}_{:02}') IS NOT NULL",
            next / 12,
            next % 12 + 1
        ),
    );
    assert_eq!(exists.trim(), "t");

    // The role Hearth connects as can read and append, never change or remove.
    for sql in [
        "UPDATE audit_events SET kind = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "TRUNCATE audit_events_default",
        "DELETE FROM audit_events_default",
    ] {
        let err = execute_as_app(&s, sql).unwrap_err();
        let code = err.code().cloned();
        assert!(
            code == Some(SqlState::INSUFFICIENT_PRIVILEGE)
                || code == Some(SqlState::RAISE_EXCEPTION),
            "{sql}: {err:?}"
        );
    }
    let update = format!("UPDATE {partition} SET kind = 'rewritten'");
    let update: &'static str = Box::leak(update.into_boxed_str());
    assert!(execute_as_app(&s, update).is_err());
    // Not even the database's superuser can rewrite it without dropping the
    // trigger first.
    let out = TestPostgres::shared().try_psql(&name, "UPDATE audit_events SET kind = 'x'");
    assert!(
        out.is_err_and(|e| e.contains("append-only")),
        "the trigger refuses even the superuser"
    );
    let kinds: Vec<String> = s
        .audit_since(UnixMillis(0))
        .unwrap()
        .into_iter()
        .map(|r| r.event.kind)
        .collect();
    assert_eq!(kinds, ["ancient", "view_start"]);
}

#[test]
fn nodes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let url = TestPostgres::shared().fresh_database();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let name = TestPostgres::shared().database_of(&url);
    let versions = TestPostgres::shared().psql(&name, "SELECT version FROM schema_migrations");
    assert_eq!(
        versions.split_whitespace().collect::<Vec<_>>(),
        (1..=MIGRATIONS.len())
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    );
    // Reopening changes nothing; a schema from a newer Hearth is left alone.
    drop(PgStore::connect(&url).unwrap());
    TestPostgres::shared().psql(
        &name,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)",
    );
    match PgStore::connect(&url) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, MIGRATIONS.len() as i64));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_failing_migration_leaves_the_previous_version() {
    let url = TestPostgres::shared().fresh_database();
    let s = PgStore::connect(&url).unwrap();
    let broken: &'static [&'static str] = Box::leak(Box::new([
        MIGRATIONS[0],
        "CREATE TABLE extra (x int); SELECT no_such_function();",
    ]));
    let err = s
        .run(move |mut c| async move { migrate(&mut c, broken).await })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 2, .. }),
        "{err:?}"
    );
    let name = TestPostgres::shared().database_of(&url);
    let db = TestPostgres::shared();
    assert_eq!(
        db.psql(&name, "SELECT max(version) FROM schema_migrations")
            .trim(),
        "1"
    );
    assert_eq!(
        db.psql(&name, "SELECT to_regclass('extra') IS NULL").trim(),
        "t"
    );
}

#[test]
fn a_single_use_code_redeemed_by_two_nodes_at_once_is_fresh_for_one_only() {
    let url = TestPostgres::shared().fresh_database();
    let a = PgStore::connect(&url).unwrap();
    let b = std::sync::Arc::new(PgStore::connect(&url).unwrap());
    let h = a.create_household("home").unwrap();
    let by = a
        .create_user("owner@example.com", "$argon2id$x", h.id)
        .unwrap();
    for round in 0..20u8 {
        let code = TokenHash::from_bytes([round; 32]);
        a.create_agent_claim(code, h.id, by.id, UnixMillis(now().0 + 60_000))
            .unwrap();
        let b2 = b.clone();
        let other = std::thread::spawn(move || {
            b2.redeem_agent_claim(
                code,
                hearth_model::AgentId::random(),
                "b",
                TokenHash::from_bytes([round; 32].map(|x| x ^ 0xaa)),
                now(),
            )
        });
        let mine = a
            .redeem_agent_claim(
                code,
                hearth_model::AgentId::random(),
                "a",
                TokenHash::from_bytes([round; 32].map(|x| x ^ 0x55)),
                now(),
            )
            .unwrap();
        let theirs = other.join().unwrap().unwrap();
        assert_eq!(
            usize::from(mine.is_some()) + usize::from(theirs.is_some()),
            1,
            "round {round}"
        );
    }
    assert_eq!(a.agents(h.id).unwrap().len(), 20);
}
