//! The PostgreSQL backend, for when one box is not enough: several Hearth nodes
//! share one database (`database_url = "postgres://…"`).
//!
//! The [`Store`] trait stays synchronous (every caller already runs it off the
//! async runtime, in `spawn_blocking` or the CLI), so this backend owns a small
//! tokio runtime of its own (one worker thread) that drives tokio-postgres
//! connections from a deadpool pool. A call sends its work to that runtime and
//! waits on a channel for the answer: it works from any thread, including a
//! blocking-pool thread of the server's runtime, and never needs a runtime
//! context of the caller's.
//!
//! The schema is the SQLite one (the same tables, the same rules, the same
//! access query: see `sqlite.rs` for why it is shaped this way) with
//! PostgreSQL's types, and some PostgreSQL-only strength:
//! - Versioned migrations ([`MIGRATIONS`], kept in `schema_migrations`), applied
//!   under an advisory lock so that nodes starting together apply each once.
//! - The audit log is partitioned by month (`audit_events_YYYY_MM`, created ahead
//!   of time, a default partition for the rest) and append-only twice over: a
//!   trigger refuses UPDATE and DELETE from anyone, and the role Hearth connects
//!   as holds only SELECT and INSERT on it (it revokes the rest from itself).
//! - Writes that read first lock the rows they read (`FOR UPDATE`) where SQLite
//!   takes its one write lock (`BEGIN IMMEDIATE`); each such write is one
//!   transaction, so a failure leaves nothing half-applied.
//!
//! Single-use credentials (OAuth codes, refresh tokens, agent claims) are taken
//! with a row lock or a `DELETE … RETURNING`, so two nodes redeeming the same one
//! at the same moment cannot both succeed.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};

use crate::input::{
    check_password_hash, journal_mark, non_empty, normalize_email, now, suspension_target,
};
use crate::{
    Access, AccessToken, Agent, AuditEvent, AuditRecord, AuthCode, BindingEpoch, Camera, CameraId,
    CameraSource, Household, HouseholdId, Integration, Invitation, JournalMark, Link, LinkId,
    NewSession, OAuthClient, Redeemed, Revocation, SESSION_ADDRESS_MAX_CHARS,
    SESSION_CLIENT_MAX_CHARS, Session, SessionId, Share, Store, StoreError, Suspension,
    SuspensionKind, TokenHash, TokenPair, UnixMillis, User, UserId, ViewerKey,
};

mod agents;
mod links;
#[cfg(test)]
mod tests;

/// The schema scripts, oldest first; version `i + 1` is script `i`.
const MIGRATIONS: &[&str] = &[include_str!("postgres/migrations/0001_initial.sql")];

/// How many connections one node keeps to the database.
const POOL_SIZE: usize = 8;
/// How long a call waits for a connection or an answer before it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Advisory lock keys (any constants, the same on every node).
const MIGRATION_LOCK: i64 = 0x4845_4152_5448_0001;
const PARTITION_LOCK: i64 = 0x4845_4152_5448_0002;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    /// Months (`year * 12 + month - 1`) whose audit partition is known to exist.
    partitions: std::sync::Arc<Mutex<HashSet<i64>>>,
    /// The URL without its password, for logs.
    shown: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A runtime may not be dropped (and block) inside an async context.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`
    /// or `postgresql://…`, libpq key-value strings too) and brings its schema up
    /// to date. Fails with [`StoreError::SchemaTooNew`] if a newer Hearth wrote it.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let shown = crate::redact_url(url);
        let named = shown.clone();
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: named.clone().into(),
            source,
        };
        let config: tokio_postgres::Config = url.parse().map_err(|e| open_error(Box::new(e)))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hearth-postgres")
            .enable_all()
            .build()
            .map_err(|e| open_error(Box::new(e)))?;
        let pool = {
            let _in = runtime.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .wait_timeout(Some(CALL_TIMEOUT))
                .create_timeout(Some(CALL_TIMEOUT))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| open_error(Box::new(e)))?
        };
        let store = Self {
            pool,
            runtime: Some(runtime),
            partitions: Default::default(),
            shown,
        };
        store
            .run(|mut c| async move { migrate(&mut c, MIGRATIONS).await })
            .map_err(|e| match e {
                StoreError::Backend(source) => open_error(source),
                other => other,
            })?;
        store.ensure_partitions(now())?;
        Ok(store)
    }

    /// Runs `work` with a pooled connection on the store's runtime and waits for
    /// its answer.
    fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(StoreError::Backend("the store is shut down".into()));
        };
        let pool = self.pool.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let answer = tokio::time::timeout(CALL_TIMEOUT, async move {
                let conn = pool.get().await?;
                work(conn).await
            })
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "the database did not answer in time".into(),
                ))
            });
            let _ = tx.send(answer);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the store's runtime stopped".into()))?
    }

    /// Makes sure the audit partitions of the months around `at` exist: the
    /// month before, its own, and the two after.
    fn ensure_partitions(&self, at: UnixMillis) -> Result<(), StoreError> {
        let month = month_of(at);
        let wanted: Vec<i64> = (month - 1..=month + 2)
            .filter(|m| {
                !self
                    .partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(m)
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let known = self.partitions.clone();
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
                .await?;
            for m in &wanted {
                let name = format!("audit_events_{:04}_{:02}", m / 12, m % 12 + 1);
                let exists: bool = tx
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                    .await?
                    .get(0);
                if !exists {
                    let (from, to) = (month_start(*m), month_start(m + 1));
                    tx.batch_execute(&format!(
                        "CREATE TABLE {name} PARTITION OF audit_events FOR VALUES FROM ({from}) TO ({to}); \
                         REVOKE UPDATE, DELETE, TRUNCATE ON {name} FROM CURRENT_USER; \
                         CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON {name} \
                         FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();"
                    ))
                    .await?;
                }
            }
            tx.commit().await?;
            known
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(wanted);
            Ok(())
        })
    }

    /// Appends `events` (and moves the journal mark) in one transaction, after
    /// checking every event: a bad one refuses the whole batch.
    fn write_audit(
        &self,
        events: &[AuditEvent],
        mark: Option<(&str, JournalMark)>,
    ) -> Result<(), StoreError> {
        let rows = events
            .iter()
            .map(|event| {
                non_empty(&event.kind, "audit event kind")?;
                if !event.detail.is_object() {
                    return Err(StoreError::InvalidInput {
                        what: "audit event detail (expected a JSON object)",
                    });
                }
                Ok((
                    event.at.0,
                    event.kind.clone(),
                    event.camera.map(|id| id.to_string()),
                    event.user.map(|id| id.to_string()),
                    event.integration.clone(),
                    event.grant.clone(),
                    event.detail.to_string(),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mark = mark.map(journal_mark).transpose()?;
        // A month's partition is made before its events arrive; a failure to make
        // one is not a reason to lose events (they go to the default partition).
        let _ = self.ensure_partitions(now());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            // One statement for the batch: the columns as arrays, unnested.
            let mut cols = AuditColumns::default();
            for (at, kind, camera, user, integration, grant, detail) in rows {
                cols.at.push(at);
                cols.kind.push(kind);
                cols.camera.push(camera);
                cols.user.push(user);
                cols.integration.push(integration);
                cols.grant.push(grant);
                cols.detail.push(detail);
            }
            if !cols.at.is_empty() {
                tx.execute(
                    "INSERT INTO audit_events \
                     (at, kind, camera_id, user_id, integration, grant_id, detail) \
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], \
                     $5::text[], $6::text[], $7::text[])",
                    &[
                        &cols.at,
                        &cols.kind,
                        &cols.camera,
                        &cols.user,
                        &cols.integration,
                        &cols.grant,
                        &cols.detail,
                    ],
                )
                .await?;
            }
            if let Some((journal, generation, position)) = mark {
                tx.execute(
                    "INSERT INTO audit_journal_marks (journal, generation, position) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (journal) DO UPDATE SET generation = $2, position = $3",
                    &[&journal, &generation, &position],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// An audit batch as columns, for one `INSERT … SELECT FROM unnest(…)`.
#[derive(Default)]
struct AuditColumns {
    at: Vec<i64>,
    kind: Vec<String>,
    camera: Vec<Option<String>>,
    user: Vec<Option<String>>,
    integration: Vec<Option<String>>,
    grant: Vec<Option<String>>,
    detail: Vec<String>,
}

// --- schema ---

/// Applies the scripts this database has not seen, each in its own transaction
/// with its version row, under an advisory lock held for the whole upgrade.
async fn migrate(c: &mut Object, scripts: &[&str]) -> Result<(), StoreError> {
    let known = scripts.len() as i64;
    loop {
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        // Under the lock: `IF NOT EXISTS` is not safe between concurrent creators.
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
        )
        .await?;
        let found: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await?
            .get(0);
        if found > known {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: known,
            });
        }
        if found == known {
            return Ok(());
        }
        let next = found + 1;
        let applied = async {
            tx.batch_execute(scripts[found as usize]).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&(next as i32), &now().0],
            )
            .await?;
            tx.commit().await
        };
        applied.await.map_err(|e| StoreError::Migration {
            version: next,
            source: Box::new(e),
        })?;
    }
}

/// The month of `at` as `year * 12 + (month - 1)` (UTC).
fn month_of(at: UnixMillis) -> i64 {
    let days = at.0.div_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + month - 1
}

/// Unix milliseconds at the start of month `m` (as [`month_of`] counts).
fn month_start(m: i64) -> i64 {
    let (y, month) = (m.div_euclid(12), m.rem_euclid(12) + 1);
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400_000
}

// --- rows ---

fn bad_row(what: impl Into<String>) -> StoreError {
    StoreError::Backend(what.into().into())
}

fn id<T>(row: &Row, idx: usize) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: &str = row.try_get(idx)?;
    text.parse().map_err(|e| StoreError::Backend(Box::new(e)))
}

fn opt_id<T>(row: &Row, idx: usize) -> Result<Option<T>, StoreError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<&str> = row.try_get(idx)?;
    text.map(|t| t.parse().map_err(|e| StoreError::Backend(Box::new(e) as _)))
        .transpose()
}

fn epoch(row: &Row, idx: usize) -> Result<BindingEpoch, StoreError> {
    let e: i64 = row.try_get(idx)?;
    u64::try_from(e)
        .map(BindingEpoch)
        .map_err(|_| bad_row(format!("epoch {e} out of range")))
}

fn hash(row: &Row, idx: usize) -> Result<TokenHash, StoreError> {
    let bytes: &[u8] = row.try_get(idx)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad_row("a stored hash is not 32 bytes"))?;
    Ok(TokenHash::from_bytes(bytes))
}

fn household_from(row: &Row) -> Result<Household, StoreError> {
    Ok(Household {
        id: id(row, 0)?,
        name: row.try_get(1)?,
    })
}

const USER_COLUMNS: &str = "id, email, password_hash, household_id, created_at";

fn user_from(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: id(row, 0)?,
        email: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        household: id(row, 3)?,
        created_at: UnixMillis(row.try_get(4)?),
    })
}

/// Never includes `stream_key_hash`: it is write-only.
const CAMERA_COLUMNS: &str =
    "c.id, c.household_id, c.name, c.timezone, c.epoch, c.created_at, c.bound_at";

fn camera_from(row: &Row) -> Result<Camera, StoreError> {
    Ok(Camera {
        id: id(row, 0)?,
        household: id(row, 1)?,
        name: row.try_get(2)?,
        timezone: row.try_get(3)?,
        epoch: epoch(row, 4)?,
        created_at: UnixMillis(row.try_get(5)?),
        bound_at: UnixMillis(row.try_get(6)?),
    })
}

/// SQLite's `COLLATE NOCASE` folds ASCII only; so does `lower` under "C".
const CAMERA_ORDER: &str = "ORDER BY lower(c.name), c.name, c.id";

/// The kill-switch filter of both arms of [`ACCESS_RULE`].
macro_rules! not_suspended {
    () => {
        "c.id NOT IN (SELECT target FROM suspensions WHERE kind = 'camera') \
         AND c.household_id NOT IN (SELECT target FROM suspensions WHERE kind = 'household') \
         AND u.id NOT IN (SELECT target FROM suspensions WHERE kind = 'user')"
    };
}

/// THE access rule on PostgreSQL, the same as SQLite's (`sqlite.rs`): household
/// members are owners, share holders outside the household are viewers, minus
/// every pair whose user, camera or camera's household is suspended.
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

fn camera_with_access(row: &Row) -> Result<(Camera, Access), StoreError> {
    let access = match row.try_get::<_, i32>(7)? {
        0 => Access::Owner,
        1 => Access::Viewer,
        other => return Err(bad_row(format!("access kind {other}"))),
    };
    Ok((camera_from(row)?, access))
}

const AUDIT_COLUMNS: &str = "id, at, kind, camera_id, user_id, integration, grant_id, detail";

fn audit_from(row: &Row) -> Result<AuditRecord, StoreError> {
    let detail: &str = row.try_get(7)?;
    Ok(AuditRecord {
        id: row.try_get(0)?,
        event: AuditEvent {
            at: UnixMillis(row.try_get(1)?),
            kind: row.try_get(2)?,
            camera: opt_id(row, 3)?,
            user: opt_id(row, 4)?,
            integration: row.try_get(5)?,
            grant: row.try_get(6)?,
            detail: serde_json::from_str(detail).map_err(|e| StoreError::Backend(Box::new(e)))?,
        },
    })
}

fn suspension_from(row: &Row) -> Result<Suspension, StoreError> {
    let kind: &str = row.try_get(0)?;
    Ok(Suspension {
        kind: SuspensionKind::parse(kind)
            .ok_or_else(|| bad_row(format!("unknown suspension kind {kind:?}")))?,
        target: row.try_get(1)?,
        reason: row.try_get(2)?,
        created_at: UnixMillis(row.try_get(3)?),
    })
}

const SESSION_COLUMNS: &str = "public_id, user_id, created_at, expires_at, address, client";

fn session_from(row: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        id: id(row, 0)?,
        user: id(row, 1)?,
        created_at: UnixMillis(row.try_get(2)?),
        expires_at: UnixMillis(row.try_get(3)?),
        address: row.try_get(4)?,
        client: row.try_get(5)?,
    })
}

fn invitation_from(row: &Row) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        camera: id(row, 0)?,
        email: row.try_get(1)?,
        created_at: UnixMillis(row.try_get(2)?),
    })
}

/// Maps a constraint violation to the caller-facing error, as SQLite's
/// `constraint_error` does.
fn constraint(e: tokio_postgres::Error, unique: &'static str, parent: &'static str) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict { what: unique },
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound { what: parent },
        _ => e.into(),
    }
}

/// Rows of `sql`, each decoded by `decode`.
async fn all<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: Params<'_>,
    decode: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    c.query(sql, params).await?.iter().map(decode).collect()
}

/// The row of `sql` if there is one, decoded by `decode`.
async fn one<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: Params<'_>,
    decode: fn(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    c.query_opt(sql, params)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Shares `camera` with `user` inside `tx` (see [`Store::share_camera`]).
async fn share_in(
    tx: &tokio_postgres::Transaction<'_>,
    camera: &str,
    user: &str,
    now: i64,
) -> Result<(), StoreError> {
    let Some(camera_household) = tx
        .query_opt(
            "SELECT household_id FROM cameras WHERE id = $1 FOR UPDATE",
            &[&camera],
        )
        .await?
        .map(|r| r.get::<_, String>(0))
    else {
        return Err(StoreError::NotFound { what: "camera" });
    };
    let Some(user_household) = tx
        .query_opt("SELECT household_id FROM users WHERE id = $1", &[&user])
        .await?
        .map(|r| r.get::<_, String>(0))
    else {
        return Err(StoreError::NotFound { what: "user" });
    };
    if camera_household == user_household {
        return Err(StoreError::InvalidInput {
            what: "share (the user is in the camera's household)",
        });
    }
    tx.execute(
        "INSERT INTO shares (camera_id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (camera_id, user_id) DO NOTHING",
        &[&camera, &user, &now],
    )
    .await?;
    Ok(())
}

/// Deletes the sessions `filter` selects inside `tx`; returns the holders their
/// grants carry, or `None` if it selected none.
async fn end_sessions_where(
    tx: &tokio_postgres::Transaction<'_>,
    filter: &str,
    params: Params<'_>,
) -> Result<Option<Vec<Option<Vec<u8>>>>, StoreError> {
    let holders: Vec<Option<Vec<u8>>> = tx
        .query(
            &format!("DELETE FROM sessions WHERE {filter} RETURNING holder"),
            params,
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok((!holders.is_empty()).then_some(holders))
}

/// Records ended sessions' holders until `until` inside `tx`, forgetting those
/// whose time passed at `now`.
async fn remember_ended_holders(
    tx: &tokio_postgres::Transaction<'_>,
    holders: &[Option<Vec<u8>>],
    until: i64,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM ended_grant_holders WHERE until <= $1", &[&now])
        .await?;
    for holder in holders.iter().flatten() {
        tx.execute(
            "INSERT INTO ended_grant_holders (holder, until) VALUES ($1, $2) \
             ON CONFLICT (holder) DO UPDATE SET until = excluded.until",
            &[holder, &until],
        )
        .await?;
    }
    Ok(())
}

impl Store for PgStore {
    fn create_household(&self, name: &str) -> Result<Household, StoreError> {
        let name = non_empty(name, "household name")?;
        let household = Household {
            id: HouseholdId::random(),
            name: name.to_owned(),
        };
        let (id, name) = (household.id.to_string(), household.name.clone());
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO households (id, name, created_at) VALUES ($1, $2, $3)",
                &[&id, &name, &now().0],
            )
            .await?;
            Ok(())
        })?;
        Ok(household)
    }

    fn household_by_id(&self, id: HouseholdId) -> Result<Option<Household>, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move {
            one(
                &**c,
                "SELECT id, name FROM households WHERE id = $1",
                &[&id],
                household_from,
            )
            .await
        })
    }

    fn list_households(&self) -> Result<Vec<Household>, StoreError> {
        self.run(|c| async move {
            all(
                &**c,
                "SELECT id, name FROM households ORDER BY lower(name), name, id",
                &[],
                household_from,
            )
            .await
        })
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
        let u = user.clone();
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO users (id, email, password_hash, household_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &u.id.to_string(),
                    &u.email,
                    &u.password_hash,
                    &u.household.to_string(),
                    &u.created_at.0,
                ],
            )
            .await
            .map_err(|e| constraint(e, "email", "household"))?;
            Ok(())
        })?;
        Ok(user)
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = normalize_email(email);
        self.run(move |c| async move {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
            one(&**c, &sql, &[&email], user_from).await
        })
    }

    fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
            one(&**c, &sql, &[&id], user_from).await
        })
    }

    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.run(|c| async move {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
            all(&**c, &sql, &[], user_from).await
        })
    }

    fn set_user_password_hash(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        check_password_hash(password_hash)?;
        let (user, hash) = (user.to_string(), password_hash.to_owned());
        let changed = self.run(move |c| async move {
            Ok(c.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                &[&user, &hash],
            )
            .await?)
        })?;
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
        let created_at = now();
        let camera = Camera {
            id: CameraId::random(),
            household,
            name: name.to_owned(),
            timezone: timezone.to_owned(),
            epoch: BindingEpoch(1),
            created_at,
            bound_at: created_at,
        };
        let cam = camera.clone();
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO cameras \
                 (id, household_id, name, timezone, epoch, stream_key_hash, created_at, bound_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $6, $6)",
                &[
                    &cam.id.to_string(),
                    &cam.household.to_string(),
                    &cam.name,
                    &cam.timezone,
                    &&stream_key_hash.as_bytes()[..],
                    &cam.created_at.0,
                ],
            )
            .await
            .map_err(|e| constraint(e, "stream key", "household"))?;
            Ok(())
        })?;
        Ok(camera)
    }

    fn camera_by_id(&self, id: CameraId) -> Result<Option<Camera>, StoreError> {
        let id = id.to_string();
        self.run(move |c| async move {
            let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras c WHERE c.id = $1");
            one(&**c, &sql, &[&id], camera_from).await
        })
    }

    fn camera_by_stream_key(&self, hash: TokenHash) -> Result<Option<Camera>, StoreError> {
        self.run(move |c| async move {
            let sql =
                format!("SELECT {CAMERA_COLUMNS} FROM cameras c WHERE c.stream_key_hash = $1");
            one(&**c, &sql, &[&&hash.as_bytes()[..]], camera_from).await
        })
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
        self.run(|c| async move {
            let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras c {CAMERA_ORDER}");
            all(&**c, &sql, &[], camera_from).await
        })
    }

    fn set_camera_stream_key(&self, camera: CameraId, hash: TokenHash) -> Result<(), StoreError> {
        let camera = camera.to_string();
        let changed = self.run(move |c| async move {
            c.execute(
                "UPDATE cameras SET stream_key_hash = $2 WHERE id = $1",
                &[&camera, &&hash.as_bytes()[..]],
            )
            .await
            .map_err(|e| constraint(e, "stream key", "camera"))
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        Ok(())
    }

    fn bump_camera_epoch(&self, camera: CameraId) -> Result<BindingEpoch, StoreError> {
        let camera = camera.to_string();
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "UPDATE cameras SET epoch = epoch + 1 WHERE id = $1 RETURNING epoch",
                    &[&camera],
                )
                .await?;
            match row {
                Some(r) => epoch(&r, 0),
                None => Err(StoreError::NotFound { what: "camera" }),
            }
        })
    }

    fn transfer_camera(
        &self,
        camera: CameraId,
        to_household: HouseholdId,
        new_stream_key_hash: TokenHash,
    ) -> Result<BindingEpoch, StoreError> {
        let (camera, to) = (camera.to_string(), to_household.to_string());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let Some(from) = tx
                .query_opt(
                    "SELECT household_id FROM cameras WHERE id = $1 FOR UPDATE",
                    &[&camera],
                )
                .await?
                .map(|r| r.get::<_, String>(0))
            else {
                return Err(StoreError::NotFound { what: "camera" });
            };
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM households WHERE id = $1)",
                    &[&to],
                )
                .await?
                .get(0);
            if !exists {
                return Err(StoreError::NotFound { what: "household" });
            }
            if from == to {
                return Err(StoreError::InvalidInput {
                    what: "transfer (the camera is already in that household)",
                });
            }
            // A new owner gets a new stream key (see the SQLite backend).
            let row = tx
                .query_one(
                    "UPDATE cameras SET household_id = $2, epoch = epoch + 1, \
                     stream_key_hash = $3, bound_at = $4 WHERE id = $1 RETURNING epoch",
                    &[&camera, &to, &&new_stream_key_hash.as_bytes()[..], &now().0],
                )
                .await
                .map_err(|e| constraint(e, "stream key", "camera"))?;
            tx.execute("DELETE FROM shares WHERE camera_id = $1", &[&camera])
                .await?;
            links::forget_consents(&tx, &camera, None).await?;
            tx.commit().await?;
            epoch(&row, 0)
        })
    }

    fn reset_camera(
        &self,
        camera: CameraId,
        new_stream_key_hash: TokenHash,
    ) -> Result<BindingEpoch, StoreError> {
        let camera = camera.to_string();
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "UPDATE cameras SET stream_key_hash = $2, epoch = epoch + 1, bound_at = $3 \
                     WHERE id = $1 RETURNING epoch",
                    &[&camera, &&new_stream_key_hash.as_bytes()[..], &now().0],
                )
                .await
                .map_err(|e| constraint(e, "stream key", "camera"))?
            else {
                return Err(StoreError::NotFound { what: "camera" });
            };
            tx.execute("DELETE FROM shares WHERE camera_id = $1", &[&camera])
                .await?;
            links::forget_consents(&tx, &camera, None).await?;
            tx.commit().await?;
            epoch(&row, 0)
        })
    }

    fn share_camera(
        &self,
        camera: CameraId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let (camera, user) = (camera.to_string(), user.to_string());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            share_in(&tx, &camera, &user, now.0).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn invite_to_share(
        &self,
        camera: CameraId,
        email: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let email = non_empty(email, "email")?.to_ascii_lowercase();
        let camera = camera.to_string();
        let inserted = self.run(move |c| async move {
            Ok(c.execute(
                "INSERT INTO share_invitations (camera_id, email, epoch, created_at) \
                 SELECT id, $2, epoch, $3 FROM cameras WHERE id = $1 \
                 ON CONFLICT (camera_id, email) DO UPDATE SET \
                 epoch = excluded.epoch, created_at = excluded.created_at",
                &[&camera, &email, &now.0],
            )
            .await?)
        })?;
        if inserted == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        Ok(())
    }

    fn invitations_of_camera(&self, camera: CameraId) -> Result<Vec<Invitation>, StoreError> {
        let camera = camera.to_string();
        self.run(move |c| async move {
            all(
                &**c,
                "SELECT i.camera_id, i.email, i.created_at FROM share_invitations i \
                 JOIN cameras c ON c.id = i.camera_id AND c.epoch = i.epoch \
                 WHERE i.camera_id = $1 ORDER BY i.email",
                &[&camera],
                invitation_from,
            )
            .await
        })
    }

    fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError> {
        let email = email.to_ascii_lowercase();
        self.run(move |c| async move {
            all(
                &**c,
                "SELECT i.camera_id, i.email, i.created_at FROM share_invitations i \
                 JOIN cameras c ON c.id = i.camera_id AND c.epoch = i.epoch \
                 WHERE i.email = $1 ORDER BY i.created_at DESC",
                &[&email],
                invitation_from,
            )
            .await
        })
    }

    fn accept_invitation(
        &self,
        camera: CameraId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let (camera, user) = (camera.to_string(), user.to_string());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let taken = tx
                .execute(
                    "DELETE FROM share_invitations WHERE camera_id = $1 \
                     AND email = (SELECT email FROM users WHERE id = $2) \
                     AND epoch = (SELECT epoch FROM cameras WHERE id = $1)",
                    &[&camera, &user],
                )
                .await?;
            if taken == 0 {
                return Ok(false);
            }
            share_in(&tx, &camera, &user, now.0).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn withdraw_invitation(&self, camera: CameraId, email: &str) -> Result<bool, StoreError> {
        let (camera, email) = (camera.to_string(), email.to_ascii_lowercase());
        self.run(move |c| async move {
            Ok(c.execute(
                "DELETE FROM share_invitations WHERE camera_id = $1 AND email = $2",
                &[&camera, &email],
            )
            .await?
                > 0)
        })
    }

    fn unshare_camera(&self, camera: CameraId, user: UserId) -> Result<bool, StoreError> {
        let (camera, user) = (camera.to_string(), user.to_string());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let deleted = tx
                .execute(
                    "DELETE FROM shares WHERE camera_id = $1 AND user_id = $2",
                    &[&camera, &user],
                )
                .await?;
            links::forget_consents(&tx, &camera, Some(&user)).await?;
            tx.commit().await?;
            Ok(deleted > 0)
        })
    }

    fn shares_of(&self, camera: CameraId) -> Result<Vec<Share>, StoreError> {
        let camera = camera.to_string();
        self.run(move |c| async move {
            all(
                &**c,
                "SELECT s.camera_id, s.user_id, u.email, s.created_at \
                 FROM shares s JOIN users u ON u.id = s.user_id \
                 WHERE s.camera_id = $1 ORDER BY u.email",
                &[&camera],
                |r| {
                    Ok(Share {
                        camera: id(r, 0)?,
                        user: id(r, 1)?,
                        email: r.try_get(2)?,
                        created_at: UnixMillis(r.try_get(3)?),
                    })
                },
            )
            .await
        })
    }

    fn cameras_visible_with_access(
        &self,
        user: UserId,
    ) -> Result<Vec<(Camera, Access)>, StoreError> {
        let user = user.to_string();
        self.run(move |c| async move {
            let sql = format!(
                "SELECT {CAMERA_COLUMNS}, c.access FROM ({ACCESS_RULE}) c \
                 WHERE c.viewer = $1 {CAMERA_ORDER}"
            );
            all(&**c, &sql, &[&user], camera_with_access).await
        })
    }

    fn camera_access(
        &self,
        user: UserId,
        camera: CameraId,
    ) -> Result<Option<(Camera, Access)>, StoreError> {
        let (user, camera) = (user.to_string(), camera.to_string());
        self.run(move |c| async move {
            let sql = format!(
                "SELECT {CAMERA_COLUMNS}, c.access FROM ({ACCESS_RULE}) c \
                 WHERE c.viewer = $1 AND c.id = $2"
            );
            one(&**c, &sql, &[&user, &camera], camera_with_access).await
        })
    }

    fn access_snapshot(&self) -> Result<Vec<(UserId, CameraId, BindingEpoch)>, StoreError> {
        self.run(|c| async move {
            let sql = format!("SELECT c.viewer, c.id, c.epoch FROM ({ACCESS_RULE}) c");
            all(&**c, &sql, &[], |r| {
                Ok((id(r, 0)?, id(r, 1)?, epoch(r, 2)?))
            })
            .await
        })
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
        let journal = journal.to_owned();
        self.run(move |c| async move {
            one(
                &**c,
                "SELECT generation, position FROM audit_journal_marks WHERE journal = $1",
                &[&journal],
                |r| {
                    Ok(JournalMark {
                        generation: r.try_get::<_, i64>(0)? as u64,
                        position: r.try_get::<_, i64>(1)? as u64,
                    })
                },
            )
            .await
        })
    }

    fn audit_for_camera(
        &self,
        camera: CameraId,
        since: UnixMillis,
        before: Option<(UnixMillis, i64)>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let camera = camera.to_string();
        let (before_at, before_id) = before.map_or((i64::MAX, i64::MAX), |(at, id)| (at.0, id));
        self.run(move |c| async move {
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events \
                 WHERE camera_id = $1 AND at >= $2 AND (at, id) < ($3, $4) \
                 ORDER BY at DESC, id DESC LIMIT $5"
            );
            all(
                &**c,
                &sql,
                &[&camera, &since.0, &before_at, &before_id, &i64::from(limit)],
                audit_from,
            )
            .await
        })
    }

    fn audit_since(&self, since: UnixMillis) -> Result<Vec<AuditRecord>, StoreError> {
        self.run(move |c| async move {
            let sql =
                format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE at >= $1 ORDER BY at, id");
            all(&**c, &sql, &[&since.0], audit_from).await
        })
    }

    fn suspend(
        &self,
        kind: SuspensionKind,
        target: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let target = suspension_target(kind, target)?;
        let reason = non_empty(reason, "suspension reason")?.to_owned();
        self.run(move |c| async move {
            Ok(c.execute(
                "INSERT INTO suspensions (kind, target, reason, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (kind, target) DO NOTHING",
                &[&kind.as_str(), &target, &reason, &now.0],
            )
            .await?
                > 0)
        })
    }

    fn resume(&self, kind: SuspensionKind, target: &str) -> Result<bool, StoreError> {
        let target = suspension_target(kind, target)?;
        self.run(move |c| async move {
            Ok(c.execute(
                "DELETE FROM suspensions WHERE kind = $1 AND target = $2",
                &[&kind.as_str(), &target],
            )
            .await?
                > 0)
        })
    }

    fn suspensions(&self) -> Result<Vec<Suspension>, StoreError> {
        self.run(|c| async move {
            all(
                &**c,
                "SELECT kind, target, reason, created_at FROM suspensions \
                 ORDER BY created_at, kind, target",
                &[],
                suspension_from,
            )
            .await
        })
    }

    fn generation(&self) -> Result<u64, StoreError> {
        self.run(|c| async move {
            let g: i64 = c
                .query_one("SELECT generation FROM meta WHERE id = 1", &[])
                .await?
                .try_get(0)?;
            u64::try_from(g).map_err(|_| bad_row(format!("generation {g} out of range")))
        })
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
        let s = session.clone();
        let address = cut(&session.address, SESSION_ADDRESS_MAX_CHARS);
        let client = cut(&session.client, SESSION_CLIENT_MAX_CHARS);
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO sessions \
                 (token_hash, public_id, user_id, created_at, expires_at, holder, address, client) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &&s.token_hash.as_bytes()[..],
                    &id.to_string(),
                    &s.user.to_string(),
                    &s.created_at.0,
                    &s.expires_at.0,
                    &&s.holder[..],
                    &address,
                    &client,
                ],
            )
            .await
            .map_err(|e| constraint(e, "session", "user"))?;
            Ok(id)
        })
    }

    fn session_user(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<UserId>, StoreError> {
        self.run(move |c| async move {
            one(
                &**c,
                "SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > $2",
                &[&&token_hash.as_bytes()[..], &now.0],
                |r| id(r, 0),
            )
            .await
        })
    }

    fn session_by_token(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<Session>, StoreError> {
        self.run(move |c| async move {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2"
            );
            one(
                &**c,
                &sql,
                &[&&token_hash.as_bytes()[..], &now.0],
                session_from,
            )
            .await
        })
    }

    fn sessions_of_user(&self, user: UserId, now: UnixMillis) -> Result<Vec<Session>, StoreError> {
        let user = user.to_string();
        self.run(move |c| async move {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at > $2 \
                 ORDER BY created_at DESC, public_id"
            );
            all(&**c, &sql, &[&user, &now.0], session_from).await
        })
    }

    fn end_session(
        &self,
        user: UserId,
        id: SessionId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let (user, id) = (user.to_string(), id.to_string());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let Some(holders) = end_sessions_where(
                &tx,
                "user_id = $1 AND public_id = $2 AND expires_at > $3",
                &[&user, &id, &now.0],
            )
            .await?
            else {
                return Ok(false);
            };
            remember_ended_holders(&tx, &holders, until.0, now.0).await?;
            tx.commit().await?;
            Ok(true)
        })
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
        let (user, hash, keep) = (user.to_string(), password_hash.to_owned(), keep.to_string());
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            let changed = tx
                .execute(
                    "UPDATE users SET password_hash = $2 WHERE id = $1",
                    &[&user, &hash],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NotFound { what: "user" });
            }
            let holders =
                end_sessions_where(&tx, "user_id = $1 AND public_id <> $2", &[&user, &keep])
                    .await?
                    .unwrap_or_default();
            remember_ended_holders(&tx, &holders, until.0, now.0).await?;
            tx.commit().await?;
            Ok(holders.len() as u64)
        })
    }

    fn delete_session(&self, token_hash: TokenHash) -> Result<(), StoreError> {
        self.run(move |c| async move {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = $1",
                &[&&token_hash.as_bytes()[..]],
            )
            .await?;
            Ok(())
        })
    }

    fn sign_out(
        &self,
        token_hash: TokenHash,
        holder: [u8; 16],
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            tx.execute(
                "DELETE FROM sessions WHERE token_hash = $1",
                &[&&token_hash.as_bytes()[..]],
            )
            .await?;
            remember_ended_holders(&tx, &[Some(holder.to_vec())], until.0, now.0).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn ended_grant_holders(&self, now: UnixMillis) -> Result<Vec<[u8; 16]>, StoreError> {
        self.run(move |c| async move {
            all(
                &**c,
                "SELECT holder FROM ended_grant_holders WHERE until > $1",
                &[&now.0],
                |r| {
                    let h: &[u8] = r.try_get(0)?;
                    h.try_into()
                        .map_err(|_| bad_row("a stored holder is not 16 bytes"))
                },
            )
            .await
        })
    }

    fn delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError> {
        let user = user.to_string();
        self.run(move |c| async move {
            Ok(
                c.execute("DELETE FROM sessions WHERE user_id = $1", &[&user])
                    .await?,
            )
        })
    }

    fn purge_expired_sessions(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.run(move |c| async move {
            Ok(
                c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now.0])
                    .await?,
            )
        })
    }

    fn rename_camera(&self, camera: CameraId, name: &str) -> Result<(), StoreError> {
        let name = non_empty(name, "camera name")?.trim().to_owned();
        let camera = camera.to_string();
        let changed = self.run(move |c| async move {
            Ok(c.execute(
                "UPDATE cameras SET name = $1 WHERE id = $2",
                &[&name, &camera],
            )
            .await?)
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "camera" });
        }
        Ok(())
    }

    fn delete_camera(&self, camera: CameraId) -> Result<bool, StoreError> {
        let camera = camera.to_string();
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            tx.execute(
                "DELETE FROM share_invitations WHERE camera_id = $1",
                &[&camera],
            )
            .await?;
            let gone = tx
                .execute("DELETE FROM cameras WHERE id = $1", &[&camera])
                .await?
                > 0;
            tx.commit().await?;
            Ok(gone)
        })
    }

    fn set_camera_source(
        &self,
        camera: CameraId,
        sealed: Option<&[u8]>,
        agent: Option<hearth_model::AgentId>,
    ) -> Result<(), StoreError> {
        let sealed = sealed.map(<[u8]>::to_vec);
        self.run(move |c| async move { agents::set_source(&c, camera, sealed, agent).await })
    }

    fn camera_sources(&self) -> Result<Vec<CameraSource>, StoreError> {
        self.run(|c| async move { agents::sources(&c).await })
    }

    fn mark_camera_draft(
        &self,
        camera: CameraId,
        expires_at: UnixMillis,
    ) -> Result<(), StoreError> {
        let camera = camera.to_string();
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO camera_drafts (camera_id, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (camera_id) DO UPDATE SET expires_at = $2",
                &[&camera, &expires_at.0],
            )
            .await
            .map_err(|e| constraint(e, "draft", "camera"))?;
            Ok(())
        })
    }

    fn save_camera_draft(&self, camera: CameraId) -> Result<bool, StoreError> {
        let camera = camera.to_string();
        self.run(move |c| async move {
            Ok(
                c.execute("DELETE FROM camera_drafts WHERE camera_id = $1", &[&camera])
                    .await?
                    > 0,
            )
        })
    }

    fn camera_drafts(&self) -> Result<Vec<(CameraId, UnixMillis)>, StoreError> {
        self.run(|c| async move {
            all(
                &**c,
                "SELECT camera_id, expires_at FROM camera_drafts ORDER BY camera_id",
                &[],
                |r| Ok((id(r, 0)?, UnixMillis(r.try_get(1)?))),
            )
            .await
        })
    }

    fn create_agent_claim(
        &self,
        code_hash: TokenHash,
        household: HouseholdId,
        by: UserId,
        expires_at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.run(move |c| async move {
            agents::create_claim(&c, code_hash, household, by, expires_at).await
        })
    }

    fn redeem_agent_claim(
        &self,
        code_hash: TokenHash,
        id: hearth_model::AgentId,
        name: &str,
        credential_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<Agent>, StoreError> {
        let name = non_empty(name, "agent name")?.to_owned();
        self.run(move |mut c| async move {
            agents::redeem_claim(&mut c, code_hash, id, name, credential_hash, now).await
        })
    }

    fn agent_by_credential(&self, hash: TokenHash) -> Result<Option<Agent>, StoreError> {
        self.run(move |c| async move { agents::by_credential(&c, hash).await })
    }

    fn agents(&self, household: HouseholdId) -> Result<Vec<Agent>, StoreError> {
        self.run(move |c| async move { agents::of_household(&c, household).await })
    }

    fn delete_agent(
        &self,
        household: HouseholdId,
        id: hearth_model::AgentId,
    ) -> Result<Option<Vec<CameraId>>, StoreError> {
        self.run(move |mut c| async move { agents::delete(&mut c, household, id).await })
    }

    fn create_viewer_key(&self, key: &ViewerKey) -> Result<(), StoreError> {
        non_empty(&key.name, "key name")?;
        let key = key.clone();
        self.run(move |mut c| async move { agents::create_viewer_key(&mut c, key).await })
    }

    fn viewer_keys(&self) -> Result<Vec<ViewerKey>, StoreError> {
        self.run(|c| async move { agents::viewer_keys(&c).await })
    }

    fn delete_viewer_key(
        &self,
        user: UserId,
        id: hearth_model::ViewerKeyId,
    ) -> Result<bool, StoreError> {
        let (user, id) = (user.to_string(), id.to_string());
        self.run(move |c| async move {
            Ok(c.execute(
                "DELETE FROM viewer_keys WHERE id = $1 AND user_id = $2",
                &[&id, &user],
            )
            .await?
                > 0)
        })
    }

    fn put_oauth_client(&self, client: &OAuthClient) -> Result<(), StoreError> {
        let client = client.clone();
        self.run(move |mut c| async move { links::put_client(&mut c, client).await })
    }

    fn oauth_client_by_id(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        let client_id = client_id.to_owned();
        self.run(move |c| async move {
            Ok(
                links::clients_where(&**c, "WHERE client_id = $1", Some(client_id))
                    .await?
                    .into_iter()
                    .next(),
            )
        })
    }

    fn oauth_clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        self.run(|c| async move { links::clients_where(&**c, "", None).await })
    }

    fn create_auth_code(&self, code_hash: TokenHash, code: &AuthCode) -> Result<(), StoreError> {
        let code = code.clone();
        self.run(
            move |mut c| async move { links::create_code(&mut c, code_hash, code, now()).await },
        )
    }

    fn redeem_auth_code(
        &self,
        code_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Redeemed<AuthCode>, StoreError> {
        self.run(move |mut c| async move { links::redeem_code(&mut c, code_hash, now).await })
    }

    fn create_link(
        &self,
        code_hash: TokenHash,
        link: &Link,
        tokens: &TokenPair,
    ) -> Result<(), StoreError> {
        let (link, tokens) = (link.clone(), *tokens);
        self.run(move |mut c| async move {
            links::create_link(&mut c, code_hash, link, tokens, now()).await
        })
    }

    fn link_by_access_token(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<AccessToken, StoreError> {
        self.run(move |c| async move { links::link_by_access_token(&**c, token_hash, now).await })
    }

    fn rotate_refresh_token(
        &self,
        token_hash: TokenHash,
        next: &TokenPair,
        now: UnixMillis,
    ) -> Result<Redeemed<Link>, StoreError> {
        let next = *next;
        self.run(
            move |mut c| async move { links::rotate_refresh(&mut c, token_hash, next, now).await },
        )
    }

    fn revoke_oauth_token(
        &self,
        token_hash: TokenHash,
        integration: Integration,
    ) -> Result<Revocation, StoreError> {
        self.run(
            move |mut c| async move { links::revoke_token(&mut c, token_hash, integration).await },
        )
    }

    fn link_by_id(&self, id: LinkId) -> Result<Option<Link>, StoreError> {
        self.run(move |c| async move { links::link_by_id(&**c, id).await })
    }

    fn links_of_user(&self, user: UserId) -> Result<Vec<Link>, StoreError> {
        self.run(move |c| async move {
            links::links_where(&**c, "WHERE l.user_id = $1", Some(user.to_string())).await
        })
    }

    fn links(&self) -> Result<Vec<Link>, StoreError> {
        self.run(|c| async move { links::links_where(&**c, "", None).await })
    }

    fn set_link_cameras(&self, link: LinkId, cameras: &[CameraId]) -> Result<(), StoreError> {
        let cameras = cameras.to_vec();
        self.run(move |mut c| async move { links::set_link_cameras(&mut c, link, cameras).await })
    }

    fn delete_link(&self, link: LinkId) -> Result<bool, StoreError> {
        let link = link.to_string();
        self.run(move |c| async move {
            Ok(
                c.execute("DELETE FROM integration_links WHERE id = $1", &[&link])
                    .await?
                    > 0,
            )
        })
    }
}
