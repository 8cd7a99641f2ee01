//! Hearth's metadata store: households, users, cameras and login sessions.
//!
//! Callers see only the [`Store`] trait and the plain records it returns, so the
//! embedded SQLite backend ([`SqliteStore`], the default: one file at
//! `<data_dir>/hearth.db`, nothing to install) can later be joined by a PostgreSQL
//! backend without touching them. The trait is synchronous and dyn-compatible: the
//! server holds an `Arc<dyn Store>` and calls it from `tokio::task::spawn_blocking`.
//! The store is kept off the media hot path; grants and camera state are cached by
//! the server with epoch checks.
//!
//! What the store guarantees:
//! - It never sees a secret. Passwords arrive as argon2 PHC strings computed by the
//!   caller; session tokens and camera stream keys arrive as [`TokenHash`]es. The
//!   stream key hash is write-only: no method returns it.
//! - Which cameras a user may see is decided in exactly one place
//!   ([`Store::cameras_visible_to`] and its single-camera form
//!   [`Store::camera_visible_to`] share one SQL predicate), so that when sharing
//!   arrives there is one rule to change and to audit.
//! - Uniqueness violations (a taken email, a reused stream key) are reported as
//!   [`StoreError::Conflict`], distinct from internal failures, so the server can
//!   answer 409 rather than 500.

mod error;
mod migrations;
mod sqlite;

use std::fmt;

pub use error::StoreError;
pub use hearth_model::{BindingEpoch, CameraId, HouseholdId, TokenHash, UnixMillis, UserId};
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// A household: the tenant that owns cameras and to which users belong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Household {
    pub id: HouseholdId,
    pub name: String,
}

/// A user account. `Debug` redacts the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// Trimmed and lower-cased.
    pub email: String,
    /// The argon2 PHC string the caller computed; verify against it, never log it.
    pub password_hash: String,
    pub household: HouseholdId,
    pub created_at: UnixMillis,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("household", &self.household)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A camera. Its stream key hash is deliberately absent: nothing needs to read it
/// back, ingest looks cameras up by it with [`Store::camera_by_stream_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Camera {
    pub id: CameraId,
    pub household: HouseholdId,
    pub name: String,
    /// IANA time zone name (e.g. `Europe/Berlin`), as given by the caller.
    pub timezone: String,
    /// Starts at 1; bumped by [`Store::bump_camera_epoch`].
    pub epoch: BindingEpoch,
    pub created_at: UnixMillis,
}

/// The metadata store. Every method is a short blocking call; from async code run
/// it via `tokio::task::spawn_blocking`.
///
/// Inputs are normalized where stated (emails are trimmed and lower-cased); empty
/// names, emails and time zones, and password hashes that are not PHC strings
/// (they must start with `$`), are rejected with [`StoreError::InvalidInput`].
pub trait Store: Send + Sync + 'static {
    // --- households ---

    fn create_household(&self, name: &str) -> Result<Household, StoreError>;
    fn household_by_id(&self, id: HouseholdId) -> Result<Option<Household>, StoreError>;
    /// All households, ordered by name (admin).
    fn list_households(&self) -> Result<Vec<Household>, StoreError>;

    // --- users ---

    /// [`StoreError::Conflict`] if the email (after normalization) is taken,
    /// [`StoreError::NotFound`] if the household does not exist.
    fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        household: HouseholdId,
    ) -> Result<User, StoreError>;
    /// Case-insensitive; surrounding whitespace is ignored.
    fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// All users, ordered by email (admin).
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces the password hash. Does not end the user's sessions; call
    /// [`Store::delete_user_sessions`] too where that is wanted.
    fn set_user_password_hash(&self, user: UserId, password_hash: &str) -> Result<(), StoreError>;

    // --- cameras ---

    /// The camera starts at epoch 1. [`StoreError::Conflict`] if the stream key
    /// hash is already in use, [`StoreError::NotFound`] if the household does not
    /// exist.
    fn create_camera(
        &self,
        household: HouseholdId,
        name: &str,
        timezone: &str,
        stream_key_hash: TokenHash,
    ) -> Result<Camera, StoreError>;
    fn camera_by_id(&self, id: CameraId) -> Result<Option<Camera>, StoreError>;
    /// The camera that owns this stream key (ingest authentication).
    fn camera_by_stream_key(&self, hash: TokenHash) -> Result<Option<Camera>, StoreError>;
    /// The cameras `user` may see, ordered by name. This (with
    /// [`Store::camera_visible_to`]) is the only place visibility is decided:
    /// today, the cameras of the user's own household. Unknown user: empty.
    fn cameras_visible_to(&self, user: UserId) -> Result<Vec<Camera>, StoreError>;
    /// `camera` if `user` may see it (same rule as [`Store::cameras_visible_to`]),
    /// otherwise `None`, whether the camera exists or not.
    fn camera_visible_to(
        &self,
        user: UserId,
        camera: CameraId,
    ) -> Result<Option<Camera>, StoreError>;
    /// All cameras, ordered by name (admin).
    fn list_cameras(&self) -> Result<Vec<Camera>, StoreError>;
    /// Replaces the camera's stream key (the old key stops working at once).
    /// [`StoreError::NotFound`] for an unknown camera, [`StoreError::Conflict`] if
    /// the hash belongs to another camera.
    fn set_camera_stream_key(&self, camera: CameraId, hash: TokenHash) -> Result<(), StoreError>;
    /// Increments the camera's binding epoch (transfer, reset) and returns the new
    /// one. [`StoreError::NotFound`] for an unknown camera.
    fn bump_camera_epoch(&self, camera: CameraId) -> Result<BindingEpoch, StoreError>;

    // --- login sessions (only token hashes are stored) ---

    /// [`StoreError::Conflict`] if the token hash exists already,
    /// [`StoreError::NotFound`] if the user does not exist,
    /// [`StoreError::InvalidInput`] if `expires_at <= now`.
    fn create_session(
        &self,
        user: UserId,
        token_hash: TokenHash,
        now: UnixMillis,
        expires_at: UnixMillis,
    ) -> Result<(), StoreError>;
    /// The session's user, or `None` if the token is unknown or expired
    /// (`expires_at <= now`).
    fn session_user(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<UserId>, StoreError>;
    /// Idempotent: deleting an unknown session is not an error.
    fn delete_session(&self, token_hash: TokenHash) -> Result<(), StoreError>;
    /// Ends every session of `user` (logout everywhere, password change); returns
    /// how many there were.
    fn delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError>;
    /// Deletes sessions with `expires_at <= now`; returns how many.
    fn purge_expired_sessions(&self, now: UnixMillis) -> Result<u64, StoreError>;
}
