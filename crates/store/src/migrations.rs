//! Versioned schema migrations for the SQLite backend.
//!
//! [`MIGRATIONS`] is an ordered list of SQL scripts; script `i` (0-based) takes the
//! schema from version `i` to `i + 1`, and the version is kept in SQLite's
//! `PRAGMA user_version` (0 for a new file). Each script runs in its own
//! `BEGIN IMMEDIATE` transaction together with the version bump, so a failing
//! script leaves the database at the previous version, and two processes opening
//! an old database at the same moment cannot both apply a script: the second waits
//! for the write lock, then re-reads the version and finds nothing to do.
//!
//! Rules for adding a migration: append a new file, never edit a released one, and
//! keep data intact (the upgrade test in `sqlite/tests.rs` loads data at every older
//! version, upgrades, and compares the schema with a fresh database's).
//! `PRAGMA foreign_keys` cannot change inside a transaction; a script that rebuilds
//! a referenced table must use `PRAGMA defer_foreign_keys = ON`.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// The schema scripts, oldest first. `MIGRATIONS.len()` is the latest version.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_sharing_audit_suspensions.sql"),
    include_str!("migrations/0003_ended_grant_holders.sql"),
    include_str!("migrations/0004_integration_links.sql"),
    include_str!("migrations/0005_camera_bound_at.sql"),
    include_str!("migrations/0006_share_invitations.sql"),
    include_str!("migrations/0007_audit_journal_mark.sql"),
    include_str!("migrations/0008_session_ids.sql"),
    include_str!("migrations/0009_camera_sources.sql"),
    include_str!("migrations/0010_viewer_keys.sql"),
    include_str!("migrations/0011_home_agents.sql"),
    include_str!("migrations/0012_camera_drafts.sql"),
    include_str!("migrations/0013_audit_journal_marks.sql"),
];

pub(crate) fn schema_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the database up to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_with(conn, MIGRATIONS, MIGRATIONS.len())
}

/// Applies `scripts` up to version `target` (tests use this to stop at an older
/// version or to inject a failing script). A database newer than `scripts` knows
/// is refused with [`StoreError::SchemaTooNew`], even if it is at or below `target`.
pub(crate) fn migrate_with(
    conn: &mut Connection,
    scripts: &[&str],
    target: usize,
) -> Result<(), StoreError> {
    let known = scripts.len() as i64;
    let target = target.min(scripts.len()) as i64;
    // Fast path without the write lock: the usual open of an up-to-date database.
    let found = schema_version(conn)?;
    if found > known {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: known,
        });
    }
    if found >= target {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the lock: another process may have migrated meanwhile.
        let found = schema_version(&tx)?;
        if found > known {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: known,
            });
        }
        if found >= target {
            return Ok(());
        }
        let next = found + 1;
        let script = scripts[found as usize];
        let applied = tx
            .execute_batch(script)
            .and_then(|()| tx.pragma_update(None, "user_version", next))
            .and_then(|()| tx.commit());
        applied.map_err(|e| StoreError::Migration {
            version: next,
            source: Box::new(e),
        })?;
    }
}
