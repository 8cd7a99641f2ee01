//! The rules both backends apply to what callers hand them, before any SQL:
//! normalized emails, non-empty names, PHC password hashes, canonical kill-switch
//! targets, integrations that link by OAuth. One copy, so the backends cannot
//! drift apart on what they accept.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{
    CameraId, HouseholdId, Integration, JournalMark, StoreError, SuspensionKind, UnixMillis, UserId,
};

pub(crate) fn now() -> UnixMillis {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    UnixMillis(millis)
}

pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub(crate) fn non_empty<'a>(value: &'a str, what: &'static str) -> Result<&'a str, StoreError> {
    if value.trim().is_empty() {
        Err(StoreError::InvalidInput { what })
    } else {
        Ok(value)
    }
}

/// A PHC string starts with `$` (`$argon2id$v=19$...`). Checking that much catches
/// the mistake that matters: a caller handing the store a plain password.
pub(crate) fn check_password_hash(hash: &str) -> Result<(), StoreError> {
    if hash.starts_with('$') && hash.len() > 1 {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            what: "password hash (expected a PHC string)",
        })
    }
}

/// The canonical spelling of a kill switch's target, so that one target has one
/// row and a lookup by any spelling finds it.
pub(crate) fn suspension_target(kind: SuspensionKind, target: &str) -> Result<String, StoreError> {
    fn id<T: FromStr + ToString>(target: &str, what: &'static str) -> Result<String, StoreError> {
        target
            .parse::<T>()
            .map(|id| id.to_string())
            .map_err(|_| StoreError::InvalidInput { what })
    }
    let target = target.trim();
    match kind {
        SuspensionKind::Integration => {
            let name = non_empty(target, "integration name")?;
            Ok(name.to_lowercase())
        }
        SuspensionKind::Household => id::<HouseholdId>(target, "household id"),
        SuspensionKind::Camera => id::<CameraId>(target, "camera id"),
        SuspensionKind::User => id::<UserId>(target, "user id"),
    }
}

pub(crate) fn linked(integration: Integration) -> Result<&'static str, StoreError> {
    if integration.is_linked() {
        Ok(integration.as_str())
    } else {
        Err(StoreError::InvalidInput {
            what: "integration (only google and alexa are linked by OAuth)",
        })
    }
}

/// How long an expired OAuth token's hash is kept: while it is, presenting it is
/// answered as expired (Alexa refreshes) rather than unknown, and a link can
/// still be DISCONNECTed with it.
pub(crate) const EXPIRED_TOKEN_GRACE_MS: i64 = 7 * 24 * 3600 * 1000;

/// A journal mark as stored: the journal's name (not empty) and the mark's
/// numbers in the database's signed range.
pub(crate) fn journal_mark(
    (journal, m): (&str, JournalMark),
) -> Result<(String, i64, i64), StoreError> {
    non_empty(journal, "audit journal name")?;
    match (i64::try_from(m.generation), i64::try_from(m.position)) {
        (Ok(g), Ok(p)) => Ok((journal.to_owned(), g, p)),
        _ => Err(StoreError::InvalidInput {
            what: "audit journal mark (out of range)",
        }),
    }
}
