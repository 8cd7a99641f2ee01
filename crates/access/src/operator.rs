//! The operator token: made by `hearth admin-token`, shown once, stored only as
//! its SHA-256 in the data directory (mode 0600). The server reads the hash at
//! most once a second ([`OperatorToken::current`]), not on every request.

use hearth_model::{RawToken, TokenHash};
use std::path::Path as FsPath;

pub const TOKEN_FILE: &str = "admin-token.sha256";

/// Creates (or replaces) the operator token; returns it to show once.
pub fn create_token(data_dir: &FsPath) -> std::io::Result<RawToken> {
    let token = RawToken::generate();
    let path = data_dir.join(TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    crate::grant::write_private(&path, token.hash().as_bytes())?;
    Ok(token)
}

/// The operator token's hash, read from the data directory at most once a
/// second (`hearth admin-token` may replace it while the server runs), not on
/// every request.
#[derive(Default)]
pub struct OperatorToken(std::sync::Mutex<Option<(std::time::Instant, Option<TokenHash>)>>);

impl OperatorToken {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

    pub fn current(&self, data_dir: &FsPath) -> Option<TokenHash> {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, hash)) = *cached
            && at.elapsed() < Self::FRESH
        {
            return hash;
        }
        let hash = std::fs::read(data_dir.join(TOKEN_FILE))
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(TokenHash::from_bytes);
        *cached = Some((std::time::Instant::now(), hash));
        hash
    }
}
