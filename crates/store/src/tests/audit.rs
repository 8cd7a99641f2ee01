//! The audit log: batches, queries and refusal of bad events. (That the database
//! itself refuses changes to the log: `sqlite::tests::audit` and
//! `postgres::tests`.)

use super::*;
use serde_json::json;

pub(crate) fn event(at: i64, kind: &str, camera: Option<CameraId>) -> AuditEvent {
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

/// How many events the log holds (all of them are later than the earliest time).
fn count(s: &dyn Store) -> i64 {
    s.audit_since(UnixMillis(i64::MIN)).unwrap().len() as i64
}

pub(super) fn events_round_trip_in_order(s: &dyn Store) {
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

pub(super) fn camera_history_is_newest_first_bounded_and_per_camera(s: &dyn Store) {
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

pub(super) fn a_bad_event_refuses_the_whole_batch(s: &dyn Store) {
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
    assert_eq!(count(s), 0);
    // That the schema checks the same, for writers other than this store:
    // sqlite::tests::audit::the_schema_refuses_bad_events_from_raw_sql.
}

pub(super) fn audit_batch_cost(open: Open<'_>) {
    // On a file, as the server runs it (WAL, synchronous = FULL); on PostgreSQL,
    // the test server (fsync off: the number is the store's own cost).
    let s = open();
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
        "{}: append_audit: 1000 events in one batch: {per_batch:?} ({:?} per event)",
        std::thread::current().name().unwrap_or(""),
        per_batch / 1000
    );
    assert_eq!(count(&*s), 6000);
}
