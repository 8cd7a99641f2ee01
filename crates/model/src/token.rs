//! Secrets: raw tokens live only in memory; only their hashes are stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// A secret handed to a client once (session token, stream key). Its `Debug` is
/// redacted so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(String);

impl RawToken {
    /// A new random token with 256 bits of entropy, URL-safe.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token received from a client.
    pub fn from_client(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The token text, to hand to the client exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form of this token that may be stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawToken(<redacted>)")
    }
}

/// SHA-256 of a [`RawToken`]. Tokens have 256 bits of entropy, so a fast hash is
/// enough (unlike passwords, which use argon2). Equality is constant-time.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let t = RawToken::generate();
        assert!(!format!("{t:?}").contains(t.expose()));
    }

    #[test]
    fn hash_is_stable_and_distinct() {
        let a = RawToken::from_client("abc");
        assert_eq!(a.hash(), RawToken::from_client("abc").hash());
        assert_ne!(a.hash(), RawToken::from_client("abd").hash());
        assert_ne!(RawToken::generate().hash(), RawToken::generate().hash());
    }
}
