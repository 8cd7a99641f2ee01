//! Passwords: argon2id hashing and verification.
//!
//! Login answers the same way, after the same work, for a wrong password and an
//! unknown email: an unknown email is verified against a dummy hash so the timing
//! does not tell them apart.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

pub use argon2::password_hash::Error as HashError;

/// The shortest password an account may have, in characters (the admin CLI, the
/// demo and changing one's password all hold to it).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Whether `password` is long enough to be an account's password.
pub fn long_enough(password: &str) -> bool {
    password.chars().count() >= MIN_PASSWORD_CHARS
}

pub struct PasswordHasher {
    dummy_hash: String,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self {
            dummy_hash: hash_password("not a real password").expect("hashing a constant"),
        }
    }
}

/// The PHC string of `password` under a fresh salt. Blocking (tens of
/// milliseconds): call off the runtime.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

impl PasswordHasher {
    /// Verifies `password` against `stored`, or against a dummy hash when there is no
    /// such user, so both cases cost the same. Blocking: call off the runtime.
    pub fn verify(&self, stored: Option<&str>, password: &str) -> bool {
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let ok = PasswordHash::new(phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && real
    }
}
