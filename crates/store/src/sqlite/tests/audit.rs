//! The audit log: batches, queries, refusal of bad events, and append-only
//! enforcement by the database.

use super::*;
use serde_json::json;

fn event(at: i64, kind: &str, camera: Option<CameraId>) -> AuditEvent {
    AuditEvent {
        at: UnixMillis(at),
        kind: kind.into(),
        camera,
        user: None,
        integration: None,
        grant: None,
        detail: json!({}),
    }
}

fn count(s: &SqliteStore) -> i64 {
    s.conn()
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn events_round_trip_in_order() {
    let s = store();
    let cam = CameraId::random();
    let user = UserId::random();
    let full = AuditEvent {
        at: UnixMillis(2_000),
        kind: "view_start".into(),
        camera: Some(cam),
        user: Some(user),
        integration: Some("google".into()),
        grant: Some("grant-7".into()),
        detail: json!({ "bytes": 12345, "range": [1, 9], "note": "ünïcode \"quoted\"" }),
    };
    let batch = vec![
        event(3_000, "view_end", Some(cam)),
        full.clone(),
        event(1_000, "suspend", None),
    ];
    s.append_audit(&batch).unwrap();
    s.append_audit(&[event(2_000, "later_same_time", None)])
        .unwrap();

    // Oldest first; equal times in insertion order.
    let all = s.audit_since(UnixMillis(i64::MIN)).unwrap();
    let kinds: Vec<&str> = all.iter().map(|r| r.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["suspend", "view_start", "later_same_time", "view_end"]
    );
    assert_eq!(all[1].event, full);
    assert_eq!(all[0].event, batch[2]);
    // Ids grow with insertion.
    let mut ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert!(all[2].id > all[1].id);

    // `since` is inclusive.
    let since: Vec<String> = s
        .audit_since(UnixMillis(2_000))
        .unwrap()
        .into_iter()
        .map(|r| r.event.kind)
        .collect();
    assert_eq!(since, ["view_start", "later_same_time", "view_end"]);
    assert!(s.audit_since(UnixMillis(3_001)).unwrap().is_empty());
}

#[test]
fn camera_history_is_newest_first_bounded_and_per_camera() {
    let s = store();
    let cam = CameraId::random();
    let other = CameraId::random();
    let events: Vec<AuditEvent> = (0..10)
        .map(|i| event(1_000 + i * 100, &format!("e{i}"), Some(cam)))
        .chain([
            event(1_450, "other", Some(other)),
            event(1_460, "none", None),
        ])
        .collect();
    s.append_audit(&events).unwrap();
    // Two events at one time: the later insert comes first.
    s.append_audit(&[event(1_900, "e9b", Some(cam))]).unwrap();

    let kinds = |since: i64, limit: u32| -> Vec<String> {
        s.audit_for_camera(cam, UnixMillis(since), None, limit)
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.event.camera, Some(cam));
                r.event.kind
            })
            .collect()
    };
    assert_eq!(kinds(0, 3), ["e9b", "e9", "e8"]);
    assert_eq!(kinds(1_700, 100), ["e9b", "e9", "e8", "e7"]);
    assert_eq!(kinds(0, 100).len(), 11);
    // Pages of 4, each after the last record of the one before: every event
    // once, in order, the two at one time included.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = s.audit_for_camera(cam, UnixMillis(0), before, 4).unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.event.at, last.id));
        pages.extend(page.into_iter().map(|r| r.event.kind));
    }
    assert_eq!(pages, kinds(0, 100));
    assert!(kinds(0, 0).is_empty());
    assert!(kinds(5_000, 10).is_empty());
    assert_eq!(
        s.audit_for_camera(other, UnixMillis(0), None, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.audit_for_camera(CameraId::random(), UnixMillis(0), None, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_bad_event_refuses_the_whole_batch() {
    let s = store();
    s.append_audit(&[]).unwrap();
    let good = event(1, "ok", None);
    let mut not_object = event(2, "bad", None);
    not_object.detail = json!([1, 2]);
    let mut null = event(2, "bad", None);
    null.detail = serde_json::Value::Null;
    let empty_kind = event(3, " ", None);
    for bad in [not_object, null, empty_kind] {
        let err = s.append_audit(&[good.clone(), bad]).unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(count(&s), 0);
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

#[test]
fn audit_batch_cost() {
    // On a file, as the server runs it (WAL, synchronous = FULL).
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join(DB_FILE_NAME)).unwrap();
    let cameras: Vec<CameraId> = (0..20).map(|_| CameraId::random()).collect();
    let batch: Vec<AuditEvent> = (0..1000)
        .map(|i| AuditEvent {
            at: UnixMillis(1_700_000_000_000 + i),
            kind: "segment_served".into(),
            camera: Some(cameras[i as usize % cameras.len()]),
            user: Some(UserId::random()),
            integration: Some("app".into()),
            grant: Some(format!("grant-{}", i % 50)),
            detail: json!({ "bytes": 187_000 + i, "seq": [i, i + 1], "rendition": "main" }),
        })
        .collect();
    s.append_audit(&batch).unwrap(); // warm up (statement cache, file growth)
    let runs = 5u32;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        s.append_audit(&batch).unwrap();
    }
    let per_batch = started.elapsed() / runs;
    println!(
        "append_audit: 1000 events in one batch: {per_batch:?} ({:?} per event)",
        per_batch / 1000
    );
    assert_eq!(count(&s), 6000);
}
