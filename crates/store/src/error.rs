//! The store's one error type.
//!
//! The variants a caller acts on differently come first: [`StoreError::Conflict`]
//! (a uniqueness rule was violated: answer 409), [`StoreError::NotFound`] (a record
//! the call refers to does not exist: 404 or 400), [`StoreError::InvalidInput`]
//! (400). Everything else is internal (500) and carries its source for the logs.
//! Backend errors are boxed so that no backend's error type leaks into callers.

use std::error::Error as StdError;
use std::path::PathBuf;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; `what` names the taken value's kind
    /// (`"email"`, `"stream key"`, `"session"`).
    #[error("{what} already in use")]
    Conflict { what: &'static str },

    /// A record the call refers to does not exist (`"household"`, `"user"`,
    /// `"camera"`).
    #[error("{what} not found")]
    NotFound { what: &'static str },

    /// An argument the store refuses to write (empty email, non-PHC password hash...).
    #[error("invalid {what}")]
    InvalidInput { what: &'static str },

    /// The database was written by a newer Hearth; refusing to touch it.
    #[error(
        "database schema version {found} is newer than this binary supports \
         (at most {supported}); upgrade hearth"
    )]
    SchemaTooNew { found: i64, supported: i64 },

    /// The database could not be opened or configured.
    #[error("cannot open database {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: BoxError,
    },

    /// Upgrading the schema to `version` failed; the database stays at the version
    /// before it.
    #[error("schema migration to version {version} failed")]
    Migration {
        version: i64,
        #[source]
        source: BoxError,
    },

    /// Any other backend failure (I/O, lock timeout, corrupt row...).
    #[error("database error")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Whether this is a failure of the store itself rather than of the request.
    pub fn is_internal(&self) -> bool {
        !matches!(
            self,
            StoreError::Conflict { .. }
                | StoreError::NotFound { .. }
                | StoreError::InvalidInput { .. }
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}
