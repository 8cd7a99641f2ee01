//! Hearth's metadata store: households, users, cameras, login sessions, view-only
//! sharing, the audit log and kill switches.
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
//!   stream key hash is write-only: no method returns it, nor a session's token
//!   hash: a session is named by a random [`SessionId`] that signs nothing in.
//! - Who may see which camera is decided in exactly one place, one SQL rule in the
//!   backend that every access question goes through: [`Store::cameras_visible_to`],
//!   [`Store::camera_visible_to`], [`Store::cameras_visible_with_access`],
//!   [`Store::camera_access`] and [`Store::access_snapshot`] (the server's in-memory
//!   view) cannot disagree. The rule: members of the camera's household
//!   ([`Access::Owner`]) and users it is shared with ([`Access::Viewer`]), except
//!   while the user, the camera or the camera's household is suspended. Integration
//!   kill switches are not per camera; the server applies them from
//!   [`Store::suspensions`].
//! - Transfer and factory reset bump the camera's binding epoch and drop its shares
//!   in the same transaction, so no grant, key or share of the old binding survives.
//! - The audit log is append-only in the database itself (triggers refuse UPDATE and
//!   DELETE from any connection) and has no foreign keys, so it outlives the users
//!   and cameras it names.
//! - [`Store::generation`] changes in the same transaction as every write that can
//!   change access, so a poller never rebuilds from a half-applied change nor misses
//!   one.
//! - Uniqueness violations (a taken email, a reused stream key) are reported as
//!   [`StoreError::Conflict`], distinct from internal failures, so the server can
//!   answer 409 rather than 500.

mod error;
mod input;
mod migrations;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

use std::fmt;

pub use error::StoreError;
pub use hearth_model::{
    BindingEpoch, CameraId, HouseholdId, Integration, LinkId, SessionId, TokenHash, UnixMillis,
    UserId,
};
pub use postgres::PgStore;
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// A connection string fit for logs: the password of `scheme://user:password@…`
/// and every `password=…` (a query parameter, or a libpq `key=value` pair)
/// replaced by `***`. Used for database and NATS URLs alike.
pub fn redact_url(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    };
    let mut from = 0;
    while let Some(i) = out[from..].find("password=").map(|i| i + from) {
        let start = i + "password=".len();
        let end = out[start..]
            .find(|c: char| c == '&' || c.is_whitespace())
            .map_or(out.len(), |e| e + start);
        out.replace_range(start..end, "***");
        from = start + 3;
    }
    out
}

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
    /// When the current binding epoch began (creation, the last transfer or
    /// reset): what happened before belongs to an earlier binding.
    pub bound_at: UnixMillis,
}

/// How a user gets to see a camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A member of the camera's household.
    Owner,
    /// A user outside the household the camera is shared with (view-only).
    Viewer,
}

/// A camera shared with a user outside its household.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub camera: CameraId,
    pub user: UserId,
    /// The user's (normalized) email, for the owner's list of who can watch.
    pub email: String,
    pub created_at: UnixMillis,
}

/// A share not accepted yet: made out to an email under the camera's current
/// binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub camera: CameraId,
    pub email: String,
    pub created_at: UnixMillis,
}

/// A place in the server's local audit journal: the journal file's generation
/// and a byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct JournalMark {
    pub generation: u64,
    pub position: u64,
}

/// A login session as its user sees it in their list of signed-in sessions. It
/// never carries the token or its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user: UserId,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// The address it signed in from, if known.
    pub address: Option<String>,
    /// What it signed in with (the User-Agent), if known.
    pub client: Option<String>,
}

/// What [`Store::create_session`] stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    pub user: UserId,
    pub token_hash: TokenHash,
    /// The digest the session's stream grants carry (`Holder` in hearth-access),
    /// so that ending the session from another one ends its streams too.
    pub holder: [u8; 16],
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// Kept to [`SESSION_ADDRESS_MAX_CHARS`] characters.
    pub address: Option<String>,
    /// Kept to [`SESSION_CLIENT_MAX_CHARS`] characters.
    pub client: Option<String>,
}

/// How much of a session's address the store keeps (an IPv6 address is at most 45).
pub const SESSION_ADDRESS_MAX_CHARS: usize = 64;
/// How much of a session's User-Agent the store keeps.
pub const SESSION_CLIENT_MAX_CHARS: usize = 256;

/// One audit log entry as the server writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: UnixMillis,
    /// What happened (`"view_start"`, `"isolation_violation"`, ...). Not empty.
    pub kind: String,
    pub camera: Option<CameraId>,
    pub user: Option<UserId>,
    /// `app`, `google`, `alexa`, `api`...
    pub integration: Option<String>,
    /// The grant's (session) id, as the server names it.
    pub grant: Option<String>,
    /// Must be a JSON object (use `{}` for nothing).
    pub detail: serde_json::Value,
}

/// A stored audit event with its log position (increasing in insertion order,
/// never reused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub event: AuditEvent,
}

/// What a kill switch applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SuspensionKind {
    /// An integration by name (`google`, `alexa`, `api`...).
    Integration,
    /// A household (tenant) by id: all its cameras, for every viewer.
    Household,
    /// A camera by id, for every viewer.
    Camera,
    /// A user by id: everything they watch.
    User,
}

impl SuspensionKind {
    pub const ALL: [SuspensionKind; 4] = [
        SuspensionKind::Integration,
        SuspensionKind::Household,
        SuspensionKind::Camera,
        SuspensionKind::User,
    ];

    /// The stored (and CLI) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SuspensionKind::Integration => "integration",
            SuspensionKind::Household => "household",
            SuspensionKind::Camera => "camera",
            SuspensionKind::User => "user",
        }
    }

    /// The inverse of [`SuspensionKind::as_str`] (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for SuspensionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An active kill switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    pub kind: SuspensionKind,
    /// The integration name (lower case) or the id's 32-hex-digit form.
    pub target: String,
    pub reason: String,
    pub created_at: UnixMillis,
}

/// The metadata store. Every method is a short blocking call; from async code run
/// it via `tokio::task::spawn_blocking`.
///
/// Inputs are normalized where stated (emails are trimmed and lower-cased); empty
/// names, emails and time zones, and password hashes that are not PHC strings
/// (they must start with `$`), are rejected with [`StoreError::InvalidInput`].
/// An OAuth client registered by the operator for a linked integration.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub integration: Integration,
    pub client_id: String,
    pub secret_hash: TokenHash,
    /// Matched exactly.
    pub redirect_uris: Vec<String>,
    pub created_at: UnixMillis,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("integration", &self.integration)
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// What an authorization code stands for: a user's consent, for one client and
/// redirect URI, with the PKCE challenge if the client sent one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCode {
    pub integration: Integration,
    pub client_id: String,
    pub user: UserId,
    pub cameras: Vec<CameraId>,
    pub redirect_uri: String,
    /// BASE64URL(SHA-256(code_verifier)) (PKCE S256).
    pub code_challenge: Option<String>,
    pub expires_at: UnixMillis,
}

/// A camera's sealed source, and the home agent that pulls it (`None`: this
/// server pulls it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraSource {
    pub camera: CameraId,
    pub sealed: Vec<u8>,
    pub agent: Option<hearth_model::AgentId>,
}

/// A home agent: a Hearth on a household's LAN that pulls cameras this server
/// cannot reach and pushes them here. Its credential is stored hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: hearth_model::AgentId,
    pub household: HouseholdId,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: UnixMillis,
}

/// A viewer key: one user's named, revocable credential for some cameras, for
/// players that cannot send headers. Its secret is derived, never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewerKey {
    pub id: hearth_model::ViewerKeyId,
    pub user: UserId,
    pub name: String,
    pub cameras: Vec<CameraId>,
    pub created_at: UnixMillis,
}

/// An account link: a user's authorization of one integration for some cameras.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub id: LinkId,
    pub integration: Integration,
    pub user: UserId,
    /// The consented cameras (whether the user may still see each is the access
    /// rule's business).
    pub cameras: Vec<CameraId>,
    pub created_at: UnixMillis,
}

/// A pair of tokens to store for a link (hashes only).
#[derive(Clone, Copy, Debug)]
pub struct TokenPair {
    pub access: TokenHash,
    pub access_expires: UnixMillis,
    pub refresh: TokenHash,
    pub refresh_expires: UnixMillis,
}

/// What presenting a single-use credential (a code, a refresh token) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// Valid and unused; it is now used.
    Fresh(T),
    /// Used before: a replay. The link it produced has been revoked.
    Replayed,
    /// Unknown or expired.
    Invalid,
}

/// What presenting an access token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessToken {
    /// Unexpired, of this link.
    Live(Link),
    /// Known but past its expiry (for a week; then swept): the client should
    /// refresh.
    Expired(Link),
    /// Never issued, revoked, or swept.
    Unknown,
}

/// What a revocation request (RFC 7009) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The token was the asking client's: an access token is revoked, a refresh
    /// token takes its whole link with it.
    Revoked(Link),
    /// The token was issued to another client's link: nothing is revoked here;
    /// the caller decides (it leaked: the server unlinks).
    OtherClient(Link),
    /// Unknown or already revoked: nothing to do.
    Unknown,
}

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
    /// The cameras `user` may see, ordered by name: those of the user's household
    /// and those shared with the user, unless suspended (see the crate docs for
    /// the one rule). Unknown user: empty.
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
    /// Increments the camera's binding epoch and returns the new one. Shares are
    /// kept; for a transfer or reset use [`Store::transfer_camera`] or
    /// [`Store::reset_camera`]. [`StoreError::NotFound`] for an unknown camera.
    fn bump_camera_epoch(&self, camera: CameraId) -> Result<BindingEpoch, StoreError>;
    /// Moves the camera to another household, bumps its epoch, replaces its
    /// stream key (the previous household's publisher must not reach the new
    /// owner) and deletes its shares, in one transaction; returns the new epoch.
    /// [`StoreError::NotFound`] for an unknown camera or household,
    /// [`StoreError::InvalidInput`] if the camera is already in that household.
    fn transfer_camera(
        &self,
        camera: CameraId,
        to_household: HouseholdId,
        new_stream_key_hash: TokenHash,
    ) -> Result<BindingEpoch, StoreError>;
    /// Factory reset: bumps the epoch, deletes the camera's shares and replaces its
    /// stream key, in one transaction; returns the new epoch.
    /// [`StoreError::NotFound`] for an unknown camera, [`StoreError::Conflict`] if
    /// the new key hash belongs to another camera.
    fn reset_camera(
        &self,
        camera: CameraId,
        new_stream_key_hash: TokenHash,
    ) -> Result<BindingEpoch, StoreError>;

    // --- sharing (view-only) and access ---

    /// Shares `camera` view-only with `user`. Idempotent: sharing again keeps the
    /// original `created_at`. [`StoreError::NotFound`] for an unknown camera or
    /// user, [`StoreError::InvalidInput`] if the user is a member of the camera's
    /// household (they own it already).
    fn share_camera(
        &self,
        camera: CameraId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<(), StoreError>;
    /// Invites `email` to view the camera (replacing an earlier invitation to the
    /// same email). Made out to an email, account or not. [`StoreError::NotFound`]
    /// for an unknown camera.
    fn invite_to_share(
        &self,
        camera: CameraId,
        email: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError>;
    /// The camera's invitations of its current binding, by email.
    fn invitations_of_camera(&self, camera: CameraId) -> Result<Vec<Invitation>, StoreError>;
    /// The invitations of current bindings made out to `email`, newest first.
    fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError>;
    /// Accepts the invitation to `camera` made out to `user`'s email: it becomes
    /// a share ([`Store::share_camera`]'s rules), in one transaction. `false` if
    /// there is no such invitation under the camera's current binding.
    fn accept_invitation(
        &self,
        camera: CameraId,
        user: UserId,
        now: UnixMillis,
    ) -> Result<bool, StoreError>;
    /// Withdraws (owner) or declines (recipient) an invitation; whether there was one.
    fn withdraw_invitation(&self, camera: CameraId, email: &str) -> Result<bool, StoreError>;
    /// Revokes a share; returns whether there was one.
    fn unshare_camera(&self, camera: CameraId, user: UserId) -> Result<bool, StoreError>;
    /// The camera's shares, ordered by email. Unknown camera: empty.
    fn shares_of(&self, camera: CameraId) -> Result<Vec<Share>, StoreError>;
    /// [`Store::cameras_visible_to`] with how the user sees each camera.
    fn cameras_visible_with_access(
        &self,
        user: UserId,
    ) -> Result<Vec<(Camera, Access)>, StoreError>;
    /// [`Store::camera_visible_to`] with how the user sees the camera.
    fn camera_access(
        &self,
        user: UserId,
        camera: CameraId,
    ) -> Result<Option<(Camera, Access)>, StoreError>;
    /// Every `(viewer, camera, camera's current epoch)` allowed right now, by the
    /// same rule as [`Store::cameras_visible_to`], in no particular order, each
    /// pair once. For the server's in-memory access view; poll
    /// [`Store::generation`] to know when to call it again. One query, linear in
    /// the number of pairs (see the backend's docs for measured costs).
    fn access_snapshot(&self) -> Result<Vec<(UserId, CameraId, BindingEpoch)>, StoreError>;

    // --- audit log (append-only) ---

    /// Appends the batch in one transaction: all events or none.
    /// [`StoreError::InvalidInput`] (and nothing written) if any event has an
    /// empty kind or a `detail` that is not a JSON object. An empty batch is a
    /// no-op.
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// As [`Store::append_audit`], and records in the same transaction that the
    /// audit journal named `journal` (one per server process's data directory:
    /// several nodes may share one database) has been copied up to `mark`, so
    /// that after a crash the rest is copied exactly once. The batch may be
    /// empty (the mark moves). An empty `journal` is refused.
    fn append_audit_journaled(
        &self,
        events: &[AuditEvent],
        journal: &str,
        mark: JournalMark,
    ) -> Result<(), StoreError>;
    /// How far the journal named `journal` has been copied; `None` before its
    /// first copy.
    fn audit_journal_mark(&self, journal: &str) -> Result<Option<JournalMark>, StoreError>;
    /// The camera's events with `at >= since`, newest first, at most `limit`;
    /// with `before`, only those older than that (at, id): the next page after a
    /// page whose last record that was.
    fn audit_for_camera(
        &self,
        camera: CameraId,
        since: UnixMillis,
        before: Option<(UnixMillis, i64)>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Every event with `at >= since`, oldest first (the operator's exposure
    /// report). Unbounded: choose `since` accordingly.
    fn audit_since(&self, since: UnixMillis) -> Result<Vec<AuditRecord>, StoreError>;

    // --- kill switches ---

    /// Switches `target` off; returns whether it was newly suspended (suspending
    /// again keeps the first reason and time). Household, camera and user targets
    /// must be ids in their 32-hex-digit form (the caller resolves emails); the
    /// store keeps the canonical lower-case spelling. Integration names are
    /// trimmed and lower-cased. Targets need not exist. [`StoreError::InvalidInput`]
    /// for a malformed target or an empty reason.
    fn suspend(
        &self,
        kind: SuspensionKind,
        target: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError>;
    /// Lifts a kill switch (target normalized as by [`Store::suspend`]); returns
    /// whether there was one.
    fn resume(&self, kind: SuspensionKind, target: &str) -> Result<bool, StoreError>;
    /// Every active kill switch, oldest first.
    fn suspensions(&self) -> Result<Vec<Suspension>, StoreError>;

    // --- change detection ---

    /// A counter that changes (in the same transaction) with every write to
    /// shares, users, suspensions and the access-relevant columns of cameras
    /// (household, epoch, stream key), from any handle or process. Cheap: one
    /// primary-key read. Compare for equality only.
    fn generation(&self) -> Result<u64, StoreError>;

    // --- login sessions (only token hashes are stored) ---

    /// Stores a session and returns its public id (random, see [`SessionId`]);
    /// a longer address or client is cut short.
    /// [`StoreError::Conflict`] if the token hash exists already,
    /// [`StoreError::NotFound`] if the user does not exist,
    /// [`StoreError::InvalidInput`] if `expires_at <= created_at`.
    fn create_session(&self, session: &NewSession) -> Result<SessionId, StoreError>;
    /// The session's user, or `None` if the token is unknown or expired
    /// (`expires_at <= now`).
    fn session_user(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<UserId>, StoreError>;
    /// The session of this token, or `None` if it is unknown or expired (as
    /// [`Store::session_user`]).
    fn session_by_token(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<Session>, StoreError>;
    /// The user's unexpired sessions, newest first.
    fn sessions_of_user(&self, user: UserId, now: UnixMillis) -> Result<Vec<Session>, StoreError>;
    /// Ends the user's unexpired session `id` as a sign-out does
    /// ([`Store::sign_out`]), in one transaction: deletes it and records its
    /// holder as ended until `until`. `false`, and nothing changed, if `user` has
    /// no such session (another user's id included).
    fn end_session(
        &self,
        user: UserId,
        id: SessionId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool, StoreError>;
    /// Replaces the user's password hash and ends every other session of theirs
    /// (`keep` stays signed in), recording the ended sessions' holders until
    /// `until`, in one transaction; returns how many sessions ended.
    /// [`StoreError::NotFound`] for an unknown user, [`StoreError::InvalidInput`]
    /// for a hash that is not a PHC string.
    fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: SessionId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<u64, StoreError>;
    /// Idempotent: deleting an unknown session is not an error.
    fn delete_session(&self, token_hash: TokenHash) -> Result<(), StoreError>;
    /// Signs a session out, in one transaction: deletes it and records `holder`
    /// (the digest its stream grants carry) as ended until `until`, which bumps
    /// the generation. Ended holders whose time has passed at `now` are forgotten.
    /// Idempotent.
    fn sign_out(
        &self,
        token_hash: TokenHash,
        holder: [u8; 16],
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), StoreError>;
    /// Holders of signed-out sessions whose grants may still be live at `now`.
    fn ended_grant_holders(&self, now: UnixMillis) -> Result<Vec<[u8; 16]>, StoreError>;
    /// Ends every session of `user` (logout everywhere, password change); returns
    /// how many there were.
    fn delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError>;
    /// Deletes sessions with `expires_at <= now`; returns how many.
    fn purge_expired_sessions(&self, now: UnixMillis) -> Result<u64, StoreError>;

    // --- smart-display integrations: OAuth clients, codes, links, tokens ---

    fn rename_camera(&self, camera: CameraId, name: &str) -> Result<(), StoreError>;
    /// Deletes a camera with its shares, pending invitations, source, consents
    /// and viewer-key entries; the audit log keeps its history. False if there
    /// is no such camera.
    fn delete_camera(&self, camera: CameraId) -> Result<bool, StoreError>;
    /// Sets (or with `None` removes) the sealed source of a camera Hearth pulls,
    /// itself or through `agent`. The store never sees the source in the clear.
    fn set_camera_source(
        &self,
        camera: CameraId,
        sealed: Option<&[u8]>,
        agent: Option<hearth_model::AgentId>,
    ) -> Result<(), StoreError>;
    /// Every pulled camera's sealed source.
    fn camera_sources(&self) -> Result<Vec<CameraSource>, StoreError>;

    /// Marks `camera` a draft (on trial) until `expires_at`.
    fn mark_camera_draft(&self, camera: CameraId, expires_at: UnixMillis)
    -> Result<(), StoreError>;
    /// Saves a draft; false if the camera is no draft.
    fn save_camera_draft(&self, camera: CameraId) -> Result<bool, StoreError>;
    /// Every draft and when it expires.
    fn camera_drafts(&self) -> Result<Vec<(CameraId, UnixMillis)>, StoreError>;

    /// Stores a one-time claim code (hashed) for pairing an agent with
    /// `household`, until `expires_at`.
    fn create_agent_claim(
        &self,
        code_hash: TokenHash,
        household: HouseholdId,
        by: UserId,
        expires_at: UnixMillis,
    ) -> Result<(), StoreError>;
    /// Uses up a claim code that has not expired at `agent.created_at`: the
    /// agent joins the claim's household with the credential. `None` for an
    /// unknown, used or expired code.
    fn redeem_agent_claim(
        &self,
        code_hash: TokenHash,
        id: hearth_model::AgentId,
        name: &str,
        credential_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Option<Agent>, StoreError>;
    /// The agent whose credential this is.
    fn agent_by_credential(&self, hash: TokenHash) -> Result<Option<Agent>, StoreError>;
    /// A household's agents.
    fn agents(&self, household: HouseholdId) -> Result<Vec<Agent>, StoreError>;
    /// Removes `household`'s agent `id` in one transaction: the cameras it
    /// pulled get a random stream key (so it can publish none of them) and
    /// lose their source. Returns those cameras; `None` if there is no such
    /// agent.
    fn delete_agent(
        &self,
        household: HouseholdId,
        id: hearth_model::AgentId,
    ) -> Result<Option<Vec<CameraId>>, StoreError>;

    /// Stores a new viewer key (its cameras must exist).
    fn create_viewer_key(&self, key: &ViewerKey) -> Result<(), StoreError>;
    /// Every viewer key (for the access view).
    fn viewer_keys(&self) -> Result<Vec<ViewerKey>, StoreError>;
    /// Revokes `user`'s key `id`; false if they have no such key.
    fn delete_viewer_key(
        &self,
        user: UserId,
        id: hearth_model::ViewerKeyId,
    ) -> Result<bool, StoreError>;
    /// Registers or replaces the integration's client (its links stay).
    fn put_oauth_client(&self, client: &OAuthClient) -> Result<(), StoreError>;
    fn oauth_client_by_id(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError>;
    fn oauth_clients(&self) -> Result<Vec<OAuthClient>, StoreError>;
    fn create_auth_code(&self, code_hash: TokenHash, code: &AuthCode) -> Result<(), StoreError>;
    /// Marks the code used and returns it; a second use revokes the link the first
    /// one created.
    fn redeem_auth_code(
        &self,
        code_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<Redeemed<AuthCode>, StoreError>;
    /// In one transaction: replaces the user's link to the integration with `link`,
    /// stores its consents and tokens, and notes it on the code that created it.
    fn create_link(
        &self,
        code_hash: TokenHash,
        link: &Link,
        tokens: &TokenPair,
    ) -> Result<(), StoreError>;
    /// The link an unexpired access token belongs to.
    fn link_by_access_token(
        &self,
        token_hash: TokenHash,
        now: UnixMillis,
    ) -> Result<AccessToken, StoreError>;
    /// Rotates a refresh token: the old one is marked used, `next` is stored. A
    /// rotated token presented again revokes the link.
    fn rotate_refresh_token(
        &self,
        token_hash: TokenHash,
        next: &TokenPair,
        now: UnixMillis,
    ) -> Result<Redeemed<Link>, StoreError>;
    /// RFC 7009: revoking a refresh token revokes the link (the whole grant);
    /// revoking an access token revokes that token. `integration` is the client
    /// asking; a token of another integration's link is left alone and reported.
    fn revoke_oauth_token(
        &self,
        token_hash: TokenHash,
        integration: Integration,
    ) -> Result<Revocation, StoreError>;
    fn link_by_id(&self, id: LinkId) -> Result<Option<Link>, StoreError>;
    fn links_of_user(&self, user: UserId) -> Result<Vec<Link>, StoreError>;
    /// Every link (the access view loads them).
    fn links(&self) -> Result<Vec<Link>, StoreError>;
    fn set_link_cameras(&self, link: LinkId, cameras: &[CameraId]) -> Result<(), StoreError>;
    /// Deletes a link with its tokens and consents.
    fn delete_link(&self, link: LinkId) -> Result<bool, StoreError>;
}
