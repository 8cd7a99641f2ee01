//! The audit log as the database itself keeps it: append-only enforcement and
//! checks of raw SQL, and no foreign keys. (Batches, queries and refusal of bad
//! events through the store: `crate::tests::audit`.)

use super::*;
use crate::tests::audit::event;

fn count(s: &SqliteStore) -> i64 {
    s.conn()
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap()
}

/// The schema half of `crate::tests::audit::a_bad_event_refuses_the_whole_batch`.
#[test]
fn the_schema_refuses_bad_events_from_raw_sql() {
    let s = store();
    // The schema checks the same, for writers other than this store.
    let raw = s.conn().execute(
        "INSERT INTO audit_events (at, kind, detail) VALUES (1, 'raw', '[1]')",
        [],
    );
    assert!(raw.is_err());
    let raw = s.conn().execute(
        "INSERT INTO audit_events (at, kind, detail) VALUES (1, 'raw', 'not json')",
        [],
    );
    assert!(raw.is_err());
    assert_eq!(count(&s), 0);
}

#[test]
fn the_log_refuses_update_and_delete_even_from_raw_sql() {
    let s = store();
    let cam = CameraId::random();
    s.append_audit(&[event(1, "a", Some(cam)), event(2, "b", Some(cam))])
        .unwrap();
    let before = s.audit_since(UnixMillis(0)).unwrap();
    let first = before[0].id;
    let conn = s.conn();
    let attempts = [
        "UPDATE audit_events SET kind = 'forged'".to_string(),
        format!("UPDATE audit_events SET detail = '{{}}', at = 0 WHERE id = {first}"),
        "DELETE FROM audit_events".to_string(),
        format!("DELETE FROM audit_events WHERE id = {first}"),
        // REPLACE deletes the old row without firing delete triggers; refused too.
        format!(
            "INSERT OR REPLACE INTO audit_events (id, at, kind, detail) \
             VALUES ({first}, 0, 'forged', '{{}}')"
        ),
        format!(
            "INSERT INTO audit_events (id, at, kind, detail) VALUES ({first}, 0, 'x', '{{}}') \
             ON CONFLICT (id) DO UPDATE SET kind = 'forged'"
        ),
    ];
    for sql in &attempts {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // Inside a transaction too (a caller cannot batch its way around it).
    conn.execute_batch("BEGIN").unwrap();
    assert!(conn.execute("DELETE FROM audit_events", []).is_err());
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_eq!(s.audit_since(UnixMillis(0)).unwrap(), before);
    // Appending still works.
    s.append_audit(&[event(3, "c", None)]).unwrap();
    assert_eq!(count(&s), 3);
}

#[test]
fn the_log_outlives_the_users_and_cameras_it_names() {
    let s = store();
    let (h, u) = household_with_user(&s, "alice@example.com");
    let c = s.create_camera(h.id, "Porch", "UTC", key(1)).unwrap();
    let mut e = event(1, "view_start", Some(c.id));
    e.user = Some(u.id);
    s.append_audit(&[e.clone()]).unwrap();
    s.conn()
        .execute("DELETE FROM cameras WHERE id = ?1", [c.id.to_string()])
        .unwrap();
    s.conn()
        .execute("DELETE FROM users WHERE id = ?1", [u.id.to_string()])
        .unwrap();
    let records = s.audit_for_camera(c.id, UnixMillis(0), None, 10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event, e);
}
