//! The embedded SQLite backend.
//!
//! One database file, `<data_dir>/hearth.db` ([`DB_FILE_NAME`]), shared by the
//! running server and the admin CLI (`hearth user add`, `hearth camera add`), which
//! opens the same file from another process while the server runs. That works
//! because every connection is opened the same way:
//! - `journal_mode = WAL`: readers never block the writer or each other, and a
//!   commit is visible to every other connection's next statement;
//! - `busy_timeout = 5 s`: a connection that finds the write lock taken waits for
//!   it instead of failing with `SQLITE_BUSY`;
//! - writes that read first (migrations, epoch bumps) use `BEGIN IMMEDIATE`, so they
//!   take the write lock up front and cannot deadlock on a read-to-write upgrade;
//! - `foreign_keys = ON` (it is per connection in SQLite, off by default).
//!
//! Concurrency inside the process: one `std::sync::Mutex<rusqlite::Connection>`
//! rather than a pool. SQLite allows one writer at a time anyway, every query here
//! is an indexed lookup of microseconds on a small database, and the database is
//! off the media hot path (grants and camera state are cached by the server). A
//! pool would add a dependency for contention we do not have; it can replace the
//! mutex later without touching the [`Store`] trait. A poisoned mutex is recovered:
//! a panicking holder's open transaction was rolled back when its `Transaction`
//! was dropped during unwinding, so the connection is still consistent.
//!
//! Access (who may see which camera) is one SQL rule, [`ACCESS_RULE`]: a
//! `UNION ALL` of household members (owners) and share holders (viewers), each arm
//! filtered by the kill switches on the user, the camera and the camera's
//! household. Every access method selects through it, per user with `viewer = ?`
//! (SQLite pushes that into both arms, so a per-user question is a few index
//! lookups: `users` by primary key, `cameras_by_household`, `shares_by_user`), or
//! unfiltered for [`Store::access_snapshot`]. The snapshot's cost is linear in the
//! number of pairs: one pass over `cameras` with an index lookup of each household's
//! users, one pass over `shares` with two primary-key lookups per share, and each
//! suspension list read once into a temporary b-tree. The test
//! `access_snapshot_cost` prints the measured time: about 6 ms for 10,000 pairs
//! (0.6 µs a pair, half of it SQLite, half decoding the ids) on a 2-core VM, dev
//! and release builds alike. So the server must not call it on a timer: it polls
//! [`Store::generation`] (one primary-key read, about 2 µs) and rebuilds only when
//! that moved. At vendor scale (millions of pairs) a full snapshot is the wrong
//! tool; that is for the PostgreSQL backend to solve with incremental changes.
//!
//! The audit log is written in batches, one `BEGIN IMMEDIATE` transaction per
//! batch, so the commit (with `synchronous = FULL`, an fsync) is paid once per
//! batch, not per event. The test `audit_batch_cost` prints the cost: 6 to 9 ms for
//! a batch of 1000 events on a file (6 to 9 µs an event) on the same VM.
//!
//! Ids are stored as their 32-hex-digit text form (as in URLs, readable in the
//! `sqlite3` shell), times as Unix milliseconds, token hashes as 32-byte BLOBs.
//! Session lookups go through the primary-key index on the token hash, which is not
//! a constant-time comparison; that is fine because the key is the SHA-256 of a
//! 256-bit random token, so timing reveals nothing usable about any token.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::input::{
    check_password_hash, journal_mark, non_empty, normalize_email, now, suspension_target,
};
use crate::migrations;
use crate::{
    Access, AccessToken, Agent, AuditEvent, AuditRecord, AuthCode, BindingEpoch, Camera, CameraId,
    CameraSource, Household, HouseholdId, Integration, Invitation, JournalMark, Link, LinkId,
    NewSession, OAuthClient, Redeemed, Revocation, SESSION_ADDRESS_MAX_CHARS,
    SESSION_CLIENT_MAX_CHARS, Session, SessionId, Share, Store, StoreError, Suspension,
    SuspensionKind, TokenHash, TokenPair, UnixMillis, User, UserId, ViewerKey,
};

/// The database's file name inside the data directory.
pub const DB_FILE_NAME: &str = "hearth.db";

/// How long a connection waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// `None` for an in-memory database.
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Appends `events` (and moves the journal mark) in one transaction. Checks
    /// and serializes everything before taking the write lock: a bad event refuses
    /// the whole batch and writes nothing.
    fn write_audit(
        &self,
        events: &[AuditEvent],
        mark: Option<(&str, JournalMark)>,
    ) -> Result<(), StoreError> {
        let details = events
            .iter()
            .map(|event| {
                non_empty(&event.kind, "audit event kind")?;
                if !event.detail.is_object() {
                    return Err(StoreError::InvalidInput {
                        what: "audit event detail (expected a JSON object)",
                    });
                }
                Ok(event.detail.to_string())
            })
            .collect::<Result<Vec<String>, StoreError>>()?;
        let mark = mark.map(journal_mark).transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_events \
                 (at, kind, camera_id, user_id, integration, grant_id, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (event, detail) in events.iter().zip(&details) {
                insert.execute(params![
                    event.at.0,
                    event.kind,
                    event.camera.map(|id| id.to_string()),
                    event.user.map(|id| id.to_string()),
                    event.integration,
                    event.grant,
                    detail,
                ])?;
            }
        }
        if let Some((journal, generation, position)) = mark {
            tx.execute(
                "INSERT INTO audit_journal_marks (journal, generation, position) \
                 VALUES (?1, ?2, ?3) \
                 ON CONFLICT (journal) DO UPDATE SET generation = ?2, position = ?3",
                params![journal, generation, position],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Opens (creating if needed) the database at `path` and upgrades its schema.
    /// Fails with [`StoreError::SchemaTooNew`] if a newer Hearth wrote it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |e: rusqlite::Error| StoreError::Open {
            path: path.to_owned(),
            source: Box::new(e),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_owned(),
                source: format!("cannot enable WAL journal mode (got {mode:?})").into(),
            });
        }
        // With WAL, synchronous=NORMAL can lose the last commits on power loss;
        // FULL keeps every acknowledged write. Writes here are rare (accounts,
        // logins), so the extra fsync costs nothing that matters.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        Self::finish_open(conn, Some(path.to_owned()))
    }

    /// A private in-memory database with the latest schema, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::finish_open(conn, None)
    }

    fn finish_open(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// --- conversions between records and rows ---

fn get_id<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    // Borrowed, not copied into a String: the access snapshot reads two ids per
    // row for thousands of rows.
    let text = row.get_ref(idx)?.as_str()?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn epoch_to_sql(epoch: i64, idx: usize) -> rusqlite::Result<BindingEpoch> {
    u64::try_from(epoch)
        .map(BindingEpoch)
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, epoch))
}

const HOUSEHOLD_COLUMNS: &str = "id, name";

fn household_from_row(row: &Row<'_>) -> rusqlite::Result<Household> {
    Ok(Household {
        id: get_id(row, 0)?,
        name: row.get(1)?,
    })
}

const USER_COLUMNS: &str = "id, email, password_hash, household_id, created_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: get_id(row, 0)?,
        email: row.get(1)?,
        password_hash: row.get(2)?,
        household: get_id(row, 3)?,
        created_at: UnixMillis(row.get(4)?),
    })
}

/// Never includes `stream_key_hash`: it is write-only.
const CAMERA_COLUMNS: &str =
    "c.id, c.household_id, c.name, c.timezone, c.epoch, c.created_at, c.bound_at";

fn camera_from_row(row: &Row<'_>) -> rusqlite::Result<Camera> {
    Ok(Camera {
        id: get_id(row, 0)?,
        household: get_id(row, 1)?,
        name: row.get(2)?,
        timezone: row.get(3)?,
        epoch: epoch_to_sql(row.get(4)?, 4)?,
        created_at: UnixMillis(row.get(5)?),
        bound_at: UnixMillis(row.get(6)?),
    })
}

const CAMERA_ORDER: &str = "ORDER BY c.name COLLATE NOCASE, c.name, c.id";

/// The kill-switch filter of both arms of [`ACCESS_RULE`] (`c` the camera, `u` the
/// viewer). `NOT IN` an uncorrelated subquery: each list is read once per statement
/// through the `suspensions` primary key, then probed per row.
macro_rules! not_suspended {
    () => {
        "c.id NOT IN (SELECT target FROM suspensions WHERE kind = 'camera') \
         AND c.household_id NOT IN (SELECT target FROM suspensions WHERE kind = 'household') \
         AND u.id NOT IN (SELECT target FROM suspensions WHERE kind = 'user')"
    };
}

/// THE access rule, the only place it is decided who may see which camera. One
/// row per (viewer, camera) allowed right now, with the camera's columns (named as
/// the `cameras` table's, so `CAMERA_COLUMNS` select from it under the alias `c`)
/// and `access` (0 owner, 1 viewer, see [`access_from_sql`]):
/// - owners: every member of the camera's household;
/// - viewers: every user the camera is shared with who is not in its household
///   (the store refuses such shares anyway; this keeps the arms disjoint even if
///   one slipped in, so no pair appears twice);
/// - minus every pair whose user, camera or camera's household is suspended.
const ACCESS_RULE: &str = concat!(
    "SELECT u.id AS viewer, 0 AS access, c.id AS id, c.household_id AS household_id, \
     c.name AS name, c.timezone AS timezone, c.epoch AS epoch, c.created_at AS created_at, \
     c.bound_at AS bound_at \
     FROM cameras c JOIN users u ON u.household_id = c.household_id WHERE ",
    not_suspended!(),
    " UNION ALL \
     SELECT u.id, 1, c.id, c.household_id, c.name, c.timezone, c.epoch, c.created_at, c.bound_at \
     FROM shares s JOIN cameras c ON c.id = s.camera_id \
     JOIN users u ON u.id = s.user_id AND u.household_id <> c.household_id WHERE ",
    not_suspended!()
);

fn access_from_sql(row: &Row<'_>, idx: usize) -> rusqlite::Result<Access> {
    match row.get::<_, i64>(idx)? {
        0 => Ok(Access::Owner),
        1 => Ok(Access::Viewer),
        other => Err(rusqlite::Error::IntegralValueOutOfRange(idx, other)),
    }
}

fn camera_with_access_from_row(row: &Row<'_>) -> rusqlite::Result<(Camera, Access)> {
    Ok((camera_from_row(row)?, access_from_sql(row, 7)?))
}

fn get_opt_id<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        t.parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
    })
    .transpose()
}

const AUDIT_COLUMNS: &str = "id, at, kind, camera_id, user_id, integration, grant_id, detail";

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let detail: String = row.get(7)?;
    let detail = serde_json::from_str(&detail)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, Type::Text, Box::new(e)))?;
    Ok(AuditRecord {
        id: row.get(0)?,
        event: AuditEvent {
            at: UnixMillis(row.get(1)?),
            kind: row.get(2)?,
            camera: get_opt_id(row, 3)?,
            user: get_opt_id(row, 4)?,
            integration: row.get(5)?,
            grant: row.get(6)?,
            detail,
        },
    })
}

fn suspension_from_row(row: &Row<'_>) -> rusqlite::Result<Suspension> {
    let kind: String = row.get(0)?;
    let kind = SuspensionKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            Type::Text,
            format!("unknown suspension kind {kind:?}").into(),
        )
    })?;
    Ok(Suspension {
        kind,
        target: row.get(1)?,
        reason: row.get(2)?,
        created_at: UnixMillis(row.get(3)?),
    })
}

/// Maps a constraint violation to the caller-facing error: a uniqueness violation
/// is a [`StoreError::Conflict`] on `unique`, a foreign-key violation means the
/// referenced `parent` does not exist. Anything else stays a backend error.
fn constraint_error(e: rusqlite::Error, unique: &'static str, parent: &'static str) -> StoreError {
    use rusqlite::ffi;
    match e.sqlite_error().map(|s| s.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Conflict { what: unique }
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound { what: parent },
        _ => e.into(),
    }
}

impl Store for SqliteStore {
    fn create_household(&self, name: &str) -> Result<Household, StoreError> {
        let name = non_empty(name, "household name")?;
        let household = Household {
            id: HouseholdId::random(),
            name: name.to_owned(),
        };
        self.conn().execute(
            "INSERT INTO households (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![household.id.to_string(), household.name, now().0],
        )?;
        Ok(household)
    }

    fn household_by_id(&self, id: HouseholdId) -> Result<Option<Household>, StoreError> {
        let sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE id = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([id.to_string()], household_from_row)
            .optional()?)
    }

    fn list_households(&self) -> Result<Vec<Household>, StoreError> {
        let sql = format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households ORDER BY name COLLATE NOCASE, name, id"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], household_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        household: HouseholdId,
    ) -> Result<User, StoreError> {
        let email = normalize_email(non_empty(email, "email")?);
        check_password_hash(password_hash)?;
        let user = User {
            id: UserId::random(),
            email,
            password_hash: password_hash.to_owned(),
            household,
            created_at: now(),
        };
        self.conn()
            .execute(
                "INSERT INTO users (id, email, password_hash, household_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    user.id.to_string(),
                    user.email,
                    user.password_hash,
                    user.household.to_string(),
                    user.created_at.0
                ],
            )
            .map_err(|e| constraint_error(e, "email", "household"))?;
        Ok(user)
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([normalize_email(email)], user_from_row)
            .optional()?)
    }

    fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([id.to_string()], user_from_row)
            .optional()?)
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_user_password_hash(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        check_password_hash(password_hash)?;
        let changed = self.conn().execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user.to_string(), password_hash],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        Ok(())
    }

    fn create_camera(
        &self,
        household: HouseholdId,
        name: &str,
        timezone: &str,
        stream_key_hash: TokenHash,
    ) -> Result<Camera, StoreError> {
        let name = non_empty(name, "camera name")?;
        let timezone = non_empty(timezone, "time zone")?;
        let camera = Camera {
            id: CameraId::random(),
            household,
            name: name.to_owned(),
            timezone: timezone.to_owned(),
            epoch: BindingEpoch(1),
            created_at: now(),
            bound_at: UnixMillis(0),
        };
        let camera = Camera {
            bound_at: camera.created_at,
            ..camera
        };
        self.conn()
            .execute(
                "INSERT INTO cameras \
                 (id, household_id, name, timezone, epoch, stream_key_hash, created_at, bound_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6)",
                params![
                    camera.id.to_string(),
                    camera.household.to_string(),
                    camera.name,
                    camera.timezone,
                    stream_key_hash.as_bytes(),
                    camera.created_at.0
                ],
            )
            .map_err(|e| constraint_error(e, "stream key", "household"))?;
        Ok(camera)
    }

    fn camera_by_id(&self, id: CameraId) -> Result<Option<Camera>, StoreError> {
        let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras c WHERE c.id = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([id.to_string()], camera_from_row)
            .optional()?)
    }

    fn camera_by_stream_key(&self, hash: TokenHash) -> Result<Option<Camera>, StoreError> {
        let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras c WHERE c.stream_key_hash = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([hash.as_bytes()], camera_from_row)
            .optional()?)
    }

    fn cameras_visible_to(&self, user: UserId) -> Result<Vec<Camera>, StoreError> {
        let cameras = self.cameras_visible_with_access(user)?;
        Ok(cameras.into_iter().map(|(camera, _)| camera).collect())
    }

    fn camera_visible_to(
        &self,
        user: UserId,
        camera: CameraId,
    ) -> Result<Option<Camera>, StoreError> {
        Ok(self.camera_access(user, camera)?.map(|(camera, _)| camera))
    }

    fn list_cameras(&self) -> Result<Vec<Camera>, StoreError> {
        let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras c {CAMERA_ORDER}");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], camera_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_camera_stream_key(&self, camera: CameraId, hash: TokenHash) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE cameras SET stream_key_hash = ?2 WHERE id = ?1",
                params![camera.to_string(), hash.as_bytes()],
            )
            .map_err(|e| constraint_error(e, "stream key", "camera"))?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        Ok(())
    }

    fn bump_camera_epoch(&self, camera: CameraId) -> Result<BindingEpoch, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE cameras SET epoch = epoch + 1 WHERE id = ?1",
            [camera.to_string()],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        let epoch: i64 = tx.query_row(
            "SELECT epoch FROM cameras WHERE id = ?1",
            [camera.to_string()],
            |row| row.get(0),
        )?;
        tx.commit()?;
        Ok(epoch_to_sql(epoch, 0)?)
    }

    fn transfer_camera(
        &self,
        camera: CameraId,
        to_household: HouseholdId,
        new_stream_key_hash: TokenHash,
    ) -> Result<BindingEpoch, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from: Option<String> = tx
            .query_row(
                "SELECT household_id FROM cameras WHERE id = ?1",
                [camera.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        let Some(from) = from else {
            return Err(StoreError::NotFound { what: "camera" });
        };
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM households WHERE id = ?1)",
            [to_household.to_string()],
            |row| row.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound { what: "household" });
        }
        if from == to_household.to_string() {
            return Err(StoreError::InvalidInput {
                what: "transfer (the camera is already in that household)",
            });
        }
        // A new owner gets a new stream key: the old household's publisher (and
        // anyone who saw its key) can no longer reach the new owner's viewers.
        let epoch: i64 = tx
            .query_row(
                "UPDATE cameras SET household_id = ?2, epoch = epoch + 1, \
                 stream_key_hash = ?3, bound_at = ?4 WHERE id = ?1 RETURNING epoch",
                params![
                    camera.to_string(),
                    to_household.to_string(),
                    new_stream_key_hash.as_bytes(),
                    now().0
                ],
                |row| row.get(0),
            )
            .map_err(|e| constraint_error(e, "stream key", "camera"))?;
        tx.execute(
            "DELETE FROM shares WHERE camera_id = ?1",
            [camera.to_string()],
        )?;
        // Third-party links of the old binding lose the camera too.
        links::forget_consents(&tx, camera, None)?;
        tx.commit()?;
        Ok(epoch_to_sql(epoch, 0)?)
    }

    fn reset_camera(
        &self,
        camera: CameraId,
        new_stream_key_hash: TokenHash,
    ) -> Result<BindingEpoch, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let epoch: Option<i64> = tx
            .query_row(
                "UPDATE cameras SET stream_key_hash = ?2, epoch = epoch + 1, bound_at = ?3 \
                 WHERE id = ?1 RETURNING epoch",
                params![camera.to_string(), new_stream_key_hash.as_bytes(), now().0],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| constraint_error(e, "stream key", "camera"))?;
        let Some(epoch) = epoch else {
            return Err(StoreError::NotFound { what: "camera" });
        };
        tx.execute(
            "DELETE FROM shares WHERE camera_id = ?1",
            [camera.to_string()],
        )?;
        // Third-party links of the old binding lose the camera too.
        links::forget_consents(&tx, camera, None)?;
        tx.commit()?;
        Ok(epoch_to_sql(epoch, 0)?)
    }

    fn share_camera(
        &self,
        camera: CameraId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        share_in(&tx, camera, user, now)?;
        tx.commit()?;
        Ok(())
    }

    fn invite_to_share(
        &self,
        camera: CameraId,
        email: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let email = non_empty(email, "email")?.to_ascii_lowercase();
        let inserted = self.conn().execute(
            "INSERT INTO share_invitations (camera_id, email, epoch, created_at) \
             SELECT id, ?2, epoch, ?3 FROM cameras WHERE id = ?1 \
             ON CONFLICT (camera_id, email) DO UPDATE SET \
             epoch = excluded.epoch, created_at = excluded.created_at",
            params![camera.to_string(), email, now.0],
        )?;
        if inserted == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        Ok(())
    }

    fn invitations_of_camera(&self, camera: CameraId) -> Result<Vec<Invitation>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT i.camera_id, i.email, i.created_at FROM share_invitations i \
             JOIN cameras c ON c.id = i.camera_id AND c.epoch = i.epoch \
             WHERE i.camera_id = ?1 ORDER BY i.email",
        )?;
        let rows = stmt.query_map([camera.to_string()], invitation_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT i.camera_id, i.email, i.created_at FROM share_invitations i \
             JOIN cameras c ON c.id = i.camera_id AND c.epoch = i.epoch \
             WHERE i.email = ?1 ORDER BY i.created_at DESC",
        )?;
        let rows = stmt.query_map([email.to_ascii_lowercase()], invitation_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn accept_invitation(
        &self,
        camera: CameraId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = tx.execute(
            "DELETE FROM share_invitations WHERE camera_id = ?1 \
             AND email = (SELECT email FROM users WHERE id = ?2) \
             AND epoch = (SELECT epoch FROM cameras WHERE id = ?1)",
            params![camera.to_string(), user.to_string()],
        )?;
        if taken == 0 {
            return Ok(false);
        }
        share_in(&tx, camera, user, now)?;
        tx.commit()?;
        Ok(true)
    }

    fn withdraw_invitation(&self, camera: CameraId, email: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM share_invitations WHERE camera_id = ?1 AND email = ?2",
            params![camera.to_string(), email.to_ascii_lowercase()],
        )? > 0)
    }

    fn unshare_camera(&self, camera: CameraId, user: UserId) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx.execute(
            "DELETE FROM shares WHERE camera_id = ?1 AND user_id = ?2",
            [camera.to_string(), user.to_string()],
        )?;
        // The viewer's platform links lose the camera too: sharing it again must
        // not put it back on their displays without a new consent.
        links::forget_consents(&tx, camera, Some(user))?;
        tx.commit()?;
        Ok(deleted > 0)
    }

    fn shares_of(&self, camera: CameraId) -> Result<Vec<Share>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT s.camera_id, s.user_id, u.email, s.created_at \
             FROM shares s JOIN users u ON u.id = s.user_id \
             WHERE s.camera_id = ?1 ORDER BY u.email",
        )?;
        let rows = stmt.query_map([camera.to_string()], |row| {
            Ok(Share {
                camera: get_id(row, 0)?,
                user: get_id(row, 1)?,
                email: row.get(2)?,
                created_at: UnixMillis(row.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn cameras_visible_with_access(
        &self,
        user: UserId,
    ) -> Result<Vec<(Camera, Access)>, StoreError> {
        let sql = format!(
            "SELECT {CAMERA_COLUMNS}, c.access FROM ({ACCESS_RULE}) c \
             WHERE c.viewer = ?1 {CAMERA_ORDER}"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([user.to_string()], camera_with_access_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn camera_access(
        &self,
        user: UserId,
        camera: CameraId,
    ) -> Result<Option<(Camera, Access)>, StoreError> {
        let sql = format!(
            "SELECT {CAMERA_COLUMNS}, c.access FROM ({ACCESS_RULE}) c \
             WHERE c.viewer = ?1 AND c.id = ?2"
        );
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row(
                [user.to_string(), camera.to_string()],
                camera_with_access_from_row,
            )
            .optional()?)
    }

    fn access_snapshot(&self) -> Result<Vec<(UserId, CameraId, BindingEpoch)>, StoreError> {
        let sql = format!("SELECT c.viewer, c.id, c.epoch FROM ({ACCESS_RULE}) c");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |row| {
            Ok((
                get_id(row, 0)?,
                get_id(row, 1)?,
                epoch_to_sql(row.get(2)?, 2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write_audit(events, None)
    }

    fn append_audit_journaled(
        &self,
        events: &[AuditEvent],
        journal: &str,
        mark: JournalMark,
    ) -> Result<(), StoreError> {
        self.write_audit(events, Some((journal, mark)))
    }

    fn audit_journal_mark(&self, journal: &str) -> Result<Option<JournalMark>, StoreError> {
        let conn = self.conn();
        let mark = conn
            .query_row(
                "SELECT generation, position FROM audit_journal_marks WHERE journal = ?1",
                [journal],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()?;
        Ok(mark.map(|(g, p)| JournalMark {
            generation: g as u64,
            position: p as u64,
        }))
    }

    fn audit_for_camera(
        &self,
        camera: CameraId,
        since: UnixMillis,
        before: Option<(UnixMillis, i64)>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE camera_id = ?1 AND at >= ?2 AND (at, id) < (?3, ?4) \
             ORDER BY at DESC, id DESC LIMIT ?5"
        );
        let (before_at, before_id) = before.map_or((i64::MAX, i64::MAX), |(at, id)| (at.0, id));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                camera.to_string(),
                since.0,
                before_at,
                before_id,
                i64::from(limit)
            ],
            audit_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_since(&self, since: UnixMillis) -> Result<Vec<AuditRecord>, StoreError> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE at >= ?1 ORDER BY at, id");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([since.0], audit_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn suspend(
        &self,
        kind: SuspensionKind,
        target: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let target = suspension_target(kind, target)?;
        let reason = non_empty(reason, "suspension reason")?;
        let inserted = self.conn().execute(
            "INSERT INTO suspensions (kind, target, reason, created_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, target) DO NOTHING",
            params![kind.as_str(), target, reason, now.0],
        )?;
        Ok(inserted > 0)
    }

    fn resume(&self, kind: SuspensionKind, target: &str) -> Result<bool, StoreError> {
        let target = suspension_target(kind, target)?;
        let deleted = self.conn().execute(
            "DELETE FROM suspensions WHERE kind = ?1 AND target = ?2",
            params![kind.as_str(), target],
        )?;
        Ok(deleted > 0)
    }

    fn suspensions(&self) -> Result<Vec<Suspension>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT kind, target, reason, created_at FROM suspensions \
             ORDER BY created_at, kind, target",
        )?;
        let rows = stmt.query_map([], suspension_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn generation(&self) -> Result<u64, StoreError> {
        let generation: i64 = self
            .conn()
            .prepare_cached("SELECT generation FROM meta WHERE id = 1")?
            .query_row([], |row| row.get(0))?;
        Ok(u64::try_from(generation)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, generation))?)
    }

    fn create_session(&self, session: &NewSession) -> Result<SessionId, StoreError> {
        if session.expires_at <= session.created_at {
            return Err(StoreError::InvalidInput {
                what: "session expiry (not after its creation)",
            });
        }
        let id = SessionId::random();
        let cut = |text: &Option<String>, max: usize| {
            text.as_deref()
                .map(|t| t.chars().take(max).collect::<String>())
        };
        self.conn()
            .execute(
                "INSERT INTO sessions \
                 (token_hash, public_id, user_id, created_at, expires_at, holder, address, client) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session.token_hash.as_bytes(),
                    id.to_string(),
                    session.user.to_string(),
                    session.created_at.0,
                    session.expires_at.0,
                    &session.holder[..],
                    cut(&session.address, SESSION_ADDRESS_MAX_CHARS),
                    cut(&session.client, SESSION_CLIENT_MAX_CHARS),
                ],
            )
            .map_err(|e| constraint_error(e, "session", "user"))?;
        Ok(id)
    }

    fn session_user(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT user_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![token_hash.as_bytes(), now.0], |row| get_id(row, 0))
            .optional()?)
    }

    fn session_by_token(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1 AND expires_at > ?2"
        );
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row(params![token_hash.as_bytes(), now.0], session_from_row)
            .optional()?)
    }

    fn sessions_of_user(&self, user: UserId, now: UnixMillis) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 AND expires_at > ?2 \
             ORDER BY created_at DESC, public_id"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![user.to_string(), now.0], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn end_session(
        &self,
        user: UserId,
        id: SessionId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holders = end_sessions_where(
            &tx,
            "user_id = ?1 AND public_id = ?2 AND expires_at > ?3",
            params![user.to_string(), id.to_string(), now.0],
        )?;
        let Some(holders) = holders else {
            return Ok(false);
        };
        remember_ended_holders(&tx, &holders, until, now)?;
        tx.commit()?;
        Ok(true)
    }

    fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: SessionId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        check_password_hash(password_hash)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user.to_string(), password_hash],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        let holders = end_sessions_where(
            &tx,
            "user_id = ?1 AND public_id <> ?2",
            params![user.to_string(), keep.to_string()],
        )?
        .unwrap_or_default();
        remember_ended_holders(&tx, &holders, until, now)?;
        tx.commit()?;
        Ok(holders.len() as u64)
    }

    fn delete_session(&self, token_hash: TokenHash) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [token_hash.as_bytes()],
        )?;
        Ok(())
    }

    fn sign_out(
        &self,
        token_hash: TokenHash,
        holder: [u8; 16],
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [token_hash.as_bytes()],
        )?;
        remember_ended_holders(&tx, &[Some(holder)], until, now)?;
        tx.commit()?;
        Ok(())
    }

    fn ended_grant_holders(&self, now: UnixMillis) -> Result<Vec<[u8; 16]>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT holder FROM ended_grant_holders WHERE until > ?1")?;
        let rows = stmt.query_map([now.0], |row| row.get::<_, [u8; 16]>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM sessions WHERE user_id = ?1",
            [user.to_string()],
        )?;
        Ok(deleted as u64)
    }

    fn purge_expired_sessions(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM sessions WHERE expires_at <= ?1", [now.0])?;
        Ok(deleted as u64)
    }

    fn rename_camera(&self, camera: CameraId, name: &str) -> Result<(), StoreError> {
        let name = non_empty(name, "camera name")?.trim();
        let changed = self.conn().execute(
            "UPDATE cameras SET name = ?1 WHERE id = ?2",
            params![name, camera.to_string()],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        Ok(())
    }

    fn delete_camera(&self, camera: CameraId) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM share_invitations WHERE camera_id = ?1",
            [camera.to_string()],
        )?;
        let gone = tx.execute("DELETE FROM cameras WHERE id = ?1", [camera.to_string()])? > 0;
        tx.commit()?;
        Ok(gone)
    }

    fn set_camera_source(
        &self,
        camera: CameraId,
        sealed: Option<&[u8]>,
        agent: Option<hearth_model::AgentId>,
    ) -> Result<(), StoreError> {
        agents::set_source(&self.conn(), camera, sealed, agent)
    }

    fn camera_sources(&self) -> Result<Vec<CameraSource>, StoreError> {
        agents::sources(&self.conn())
    }

    fn mark_camera_draft(
        &self,
        camera: CameraId,
        expires_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO camera_drafts (camera_id, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (camera_id) DO UPDATE SET expires_at = ?2",
                params![camera.to_string(), expires_at.0],
            )
            .map_err(|e| constraint_error(e, "draft", "camera"))?;
        Ok(())
    }

    fn save_camera_draft(&self, camera: CameraId) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM camera_drafts WHERE camera_id = ?1",
            [camera.to_string()],
        )? > 0)
    }

    fn camera_drafts(&self) -> Result<Vec<(CameraId, UnixMillis)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT camera_id, expires_at FROM camera_drafts ORDER BY camera_id")?;
        let rows = stmt.query_map([], |r| Ok((get_id(r, 0)?, UnixMillis(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_agent_claim(
        &self,
        code_hash: TokenHash,
        household: HouseholdId,
        by: UserId,
        expires_at: UnixMillis,
    ) -> Result<(), StoreError> {
        agents::create_claim(&self.conn(), code_hash, household, by, expires_at)
    }

    fn redeem_agent_claim(
        &self,
        code_hash: TokenHash,
        id: hearth_model::AgentId,
        name: &str,
        credential_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<Agent>, StoreError> {
        agents::redeem_claim(&mut self.conn(), code_hash, id, name, credential_hash, now)
    }

    fn agent_by_credential(&self, hash: TokenHash) -> Result<Option<Agent>, StoreError> {
        agents::by_credential(&self.conn(), hash)
    }

    fn agents(&self, household: HouseholdId) -> Result<Vec<Agent>, StoreError> {
        agents::of_household(&self.conn(), household)
    }

    fn delete_agent(
        &self,
        household: HouseholdId,
        id: hearth_model::AgentId,
    ) -> Result<Option<Vec<CameraId>>, StoreError> {
        agents::delete(&mut self.conn(), household, id)
    }

    fn create_viewer_key(&self, key: &ViewerKey) -> Result<(), StoreError> {
        viewer_keys::create(&mut self.conn(), key)
    }

    fn viewer_keys(&self) -> Result<Vec<ViewerKey>, StoreError> {
        viewer_keys::all(&self.conn())
    }

    fn delete_viewer_key(
        &self,
        user: UserId,
        id: hearth_model::ViewerKeyId,
    ) -> Result<bool, StoreError> {
        viewer_keys::delete(&self.conn(), user, id)
    }

    fn put_oauth_client(&self, client: &OAuthClient) -> Result<(), StoreError> {
        links::put_client(&mut self.conn(), client)
    }

    fn oauth_client_by_id(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        links::client_by_id(&self.conn(), client_id)
    }

    fn oauth_clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        links::clients(&self.conn())
    }

    fn create_auth_code(&self, code_hash: TokenHash, code: &AuthCode) -> Result<(), StoreError> {
        links::create_code(&mut self.conn(), code_hash, code, now())
    }

    fn redeem_auth_code(
        &self,
        code_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Redeemed<AuthCode>, StoreError> {
        links::redeem_code(&mut self.conn(), code_hash, now)
    }

    fn create_link(
        &self,
        code_hash: TokenHash,
        link: &Link,
        tokens: &TokenPair,
    ) -> Result<(), StoreError> {
        links::create_link(&mut self.conn(), code_hash, link, tokens, now())
    }

    fn link_by_access_token(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<AccessToken, StoreError> {
        links::link_by_access_token(&self.conn(), token_hash, now)
    }

    fn rotate_refresh_token(
        &self,
        token_hash: TokenHash,
        next: &TokenPair,
        now: UnixMillis,
    ) -> Result<Redeemed<Link>, StoreError> {
        links::rotate_refresh(&mut self.conn(), token_hash, next, now)
    }

    fn revoke_oauth_token(
        &self,
        token_hash: TokenHash,
        integration: Integration,
    ) -> Result<Revocation, StoreError> {
        links::revoke_token(&mut self.conn(), token_hash, integration)
    }

    fn link_by_id(&self, id: LinkId) -> Result<Option<Link>, StoreError> {
        links::link_by_id(&self.conn(), id)
    }

    fn links_of_user(&self, user: UserId) -> Result<Vec<Link>, StoreError> {
        links::links_of_user(&self.conn(), user)
    }

    fn links(&self) -> Result<Vec<Link>, StoreError> {
        links::links(&self.conn())
    }

    fn set_link_cameras(&self, link: LinkId, cameras: &[CameraId]) -> Result<(), StoreError> {
        links::set_link_cameras(&mut self.conn(), link, cameras)
    }

    fn delete_link(&self, link: LinkId) -> Result<bool, StoreError> {
        links::delete_link(&self.conn(), link)
    }
}

mod agents;
mod links;
mod viewer_keys;

#[cfg(test)]
mod tests;

/// Shares `camera` with `user` inside `tx` (see [`Store::share_camera`]).
fn share_in(
    tx: &rusqlite::Transaction<'_>,
    camera: CameraId,
    user: UserId,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let camera_household: Option<String> = tx
        .query_row(
            "SELECT household_id FROM cameras WHERE id = ?1",
            [camera.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(camera_household) = camera_household else {
        return Err(StoreError::NotFound { what: "camera" });
    };
    let user_household: Option<String> = tx
        .query_row(
            "SELECT household_id FROM users WHERE id = ?1",
            [user.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(user_household) = user_household else {
        return Err(StoreError::NotFound { what: "user" });
    };
    if camera_household == user_household {
        return Err(StoreError::InvalidInput {
            what: "share (the user is in the camera's household)",
        });
    }
    // DO NOTHING inserts no row, so a repeated share neither changes
    // `created_at` nor bumps the generation.
    tx.execute(
        "INSERT INTO shares (camera_id, user_id, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (camera_id, user_id) DO NOTHING",
        params![camera.to_string(), user.to_string(), now.0],
    )?;
    Ok(())
}

const SESSION_COLUMNS: &str = "public_id, user_id, created_at, expires_at, address, client";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: get_id(row, 0)?,
        user: get_id(row, 1)?,
        created_at: UnixMillis(row.get(2)?),
        expires_at: UnixMillis(row.get(3)?),
        address: row.get(4)?,
        client: row.get(5)?,
    })
}

/// Deletes the sessions `filter` selects inside `tx`; returns, one entry per
/// session ended, the holder its grants carry (`None` for a session from before
/// schema 7), or `None` if it selected none.
fn end_sessions_where(
    tx: &rusqlite::Transaction<'_>,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Option<Vec<Option<[u8; 16]>>>, StoreError> {
    let holders: Vec<Option<[u8; 16]>> = tx
        .prepare(&format!(
            "DELETE FROM sessions WHERE {filter} RETURNING holder"
        ))?
        .query_map(args, |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((!holders.is_empty()).then_some(holders))
}

/// Records ended sessions' holders until `until` inside `tx`, as
/// [`Store::sign_out`] does, forgetting those whose time passed at `now`.
fn remember_ended_holders(
    tx: &rusqlite::Transaction<'_>,
    holders: &[Option<[u8; 16]>],
    until: UnixMillis,
    now: UnixMillis,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM ended_grant_holders WHERE until <= ?1", [now.0])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO ended_grant_holders (holder, until) VALUES (?1, ?2)",
    )?;
    for holder in holders.iter().flatten() {
        insert.execute(params![&holder[..], until.0])?;
    }
    Ok(())
}

fn invitation_from_row(row: &Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        camera: get_id(row, 0)?,
        email: row.get(1)?,
        created_at: UnixMillis(row.get(2)?),
    })
}
