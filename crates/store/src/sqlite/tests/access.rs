//! The access rule and the schema behind it, seen through raw SQL: cascades,
//! a share written behind the store's back, query plans, the snapshot's cost on
//! a file filled in one transaction, the kinds of kill switch. (Sharing, the
//! snapshot, transfer/reset and kill switches through the store:
//! `crate::tests::access`.)

use super::*;
use crate::tests::access::{ids, ids_of_shares, world};

// --- sharing ---

#[test]
fn shares_go_with_a_deleted_user_or_camera() {
    let s = store();
    let w = world(&s);
    s.share_camera(w.porch.id, w.bob.id, UnixMillis(1)).unwrap();
    s.share_camera(w.porch.id, w.dave.id, UnixMillis(1))
        .unwrap();
    s.share_camera(w.garden.id, w.dave.id, UnixMillis(1))
        .unwrap();
    // No delete methods yet; the schema's cascades must hold regardless.
    s.conn()
        .execute("DELETE FROM users WHERE id = ?1", [w.dave.id.to_string()])
        .unwrap();
    assert_eq!(ids_of_shares(&s, w.porch.id), vec![w.bob.id]);
    assert!(s.shares_of(w.garden.id).unwrap().is_empty());
    s.conn()
        .execute(
            "DELETE FROM cameras WHERE id = ?1",
            [w.porch.id.to_string()],
        )
        .unwrap();
    let left: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM shares", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(
        ids(&s.cameras_visible_to(w.bob.id).unwrap()),
        vec![w.garden.id]
    );
}

// --- the snapshot ---

#[test]
fn a_share_that_slipped_into_the_household_counts_once_as_owner() {
    // The store refuses such shares; written behind its back, the rule still
    // answers Owner and lists the pair once.
    let s = store();
    let w = world(&s);
    s.conn()
        .execute(
            "INSERT INTO shares (camera_id, user_id, created_at) VALUES (?1, ?2, 0)",
            [w.porch.id.to_string(), w.alice.id.to_string()],
        )
        .unwrap();
    assert_eq!(
        s.camera_access(w.alice.id, w.porch.id).unwrap(),
        Some((w.porch.clone(), Access::Owner))
    );
    assert_eq!(s.cameras_visible_to(w.alice.id).unwrap().len(), 2);
    let pairs = s.access_snapshot().unwrap();
    assert_eq!(
        pairs
            .iter()
            .filter(|&&(u, c, _)| u == w.alice.id && c == w.porch.id)
            .count(),
        1
    );
}

/// The per-user questions are index lookups; only the snapshot reads whole tables.
/// (Guards against a change to the rule that makes every page load scan.)
#[test]
fn per_user_access_queries_use_indexes() {
    let s = store();
    let conn = s.conn();
    let plan = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params: Vec<&dyn rusqlite::ToSql> = (0..stmt.parameter_count())
            .map(|_| &"x" as &dyn rusqlite::ToSql)
            .collect();
        stmt.query_map(params.as_slice(), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for sql in [
        format!(
            "SELECT {CAMERA_COLUMNS}, c.access FROM ({ACCESS_RULE}) c \
             WHERE c.viewer = ?1 {CAMERA_ORDER}"
        ),
        format!(
            "SELECT {CAMERA_COLUMNS}, c.access FROM ({ACCESS_RULE}) c \
             WHERE c.viewer = ?1 AND c.id = ?2"
        ),
    ] {
        let plan = plan(&sql);
        // "SCAN c" once at most: reading the subquery's own output.
        let scans: Vec<&String> = plan.iter().filter(|l| l.starts_with("SCAN")).collect();
        assert!(
            scans.len() <= 1 && scans.iter().all(|l| l.as_str() == "SCAN c"),
            "{plan:#?}"
        );
        assert!(
            plan.iter().any(|l| l.contains("shares_by_user")),
            "{plan:#?}"
        );
    }
}

/// On a file, as the server runs it, filled by raw SQL in one transaction (the
/// same 10,000 pairs through the store, on both backends:
/// `crate::tests::access::access_snapshot_cost`).
#[test]
fn access_snapshot_cost() {
    // 2,000 households of 4 users and 1 camera, plus 2,000 shares: 10,000 pairs.
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join(DB_FILE_NAME)).unwrap();
    {
        let mut conn = s.conn();
        let tx = conn.transaction().unwrap();
        for h in 0..2000u32 {
            let hid = format!("{:032x}", u128::from(h) + 1);
            tx.execute(
                "INSERT INTO households (id, name, created_at) VALUES (?1, 'h', 0)",
                [&hid],
            )
            .unwrap();
            for u in 0..4u32 {
                tx.execute(
                    "INSERT INTO users (id, email, password_hash, household_id, created_at) \
                     VALUES (?1, ?2, '$x', ?3, 0)",
                    [
                        format!("{:032x}", (1u128 << 64) + u128::from(h * 4 + u)),
                        format!("u{h}-{u}@example.com"),
                        hid.clone(),
                    ],
                )
                .unwrap();
            }
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&h.to_be_bytes());
            tx.execute(
                "INSERT INTO cameras (id, household_id, name, timezone, stream_key_hash, created_at) \
                 VALUES (?1, ?2, 'cam', 'UTC', ?3, 0)",
                params![format!("{:032x}", (2u128 << 64) + u128::from(h)), hid, hash.as_slice()],
            )
            .unwrap();
        }
        for h in 0..2000u32 {
            // Camera h shared with the first user of household h+1.
            let next = (h + 1) % 2000;
            tx.execute(
                "INSERT INTO shares (camera_id, user_id, created_at) VALUES (?1, ?2, 0)",
                [
                    format!("{:032x}", (2u128 << 64) + u128::from(h)),
                    format!("{:032x}", (1u128 << 64) + u128::from(next * 4)),
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    s.suspend(
        SuspensionKind::Camera,
        &format!("{:032x}", 2u128 << 64),
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
    println!("access_snapshot of 9,995 pairs: {per_snapshot:?}; generation poll: {per_poll:?}");
}

// --- kill switches ---

/// The kill-switch half of `crate::tests::access::suspension_input_is_checked`.
#[test]
fn the_schema_refuses_unknown_suspension_kinds() {
    let s = store();
    // The schema refuses unknown kinds even from raw SQL.
    let raw = s.conn().execute(
        "INSERT INTO suspensions (kind, target, reason, created_at) VALUES ('grant', 'g', 'r', 0)",
        [],
    );
    assert!(raw.is_err());
}
