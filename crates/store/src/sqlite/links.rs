//! OAuth clients, authorization codes, account links and their tokens (schema
//! version 4), for the smart-display integrations.
//!
//! Single-use credentials are redeemed inside one `BEGIN IMMEDIATE` transaction,
//! so two concurrent redemptions of one code or refresh token cannot both succeed:
//! the second finds it used, which counts as a replay and revokes the link.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{constraint_error, get_id};
use crate::input::{EXPIRED_TOKEN_GRACE_MS, linked, non_empty};
use crate::{
    AccessToken, AuthCode, CameraId, Integration, Link, LinkId, OAuthClient, Redeemed, Revocation,
    StoreError, TokenHash, TokenPair, UnixMillis, UserId,
};

fn integration_from(row: &Row<'_>, idx: usize) -> rusqlite::Result<Integration> {
    let text: String = row.get(idx)?;
    Integration::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown integration {text:?}").into(),
        )
    })
}

fn hash_from(row: &Row<'_>, idx: usize) -> rusqlite::Result<TokenHash> {
    Ok(TokenHash::from_bytes(row.get::<_, [u8; 32]>(idx)?))
}

pub(super) fn put_client(conn: &mut Connection, c: &OAuthClient) -> Result<(), StoreError> {
    let integration = linked(c.integration)?;
    non_empty(&c.client_id, "client id")?;
    if c.redirect_uris.is_empty() || c.redirect_uris.iter().any(|u| u.trim().is_empty()) {
        return Err(StoreError::InvalidInput {
            what: "redirect URIs",
        });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO oauth_clients (integration, client_id, secret_hash, created_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (integration) DO UPDATE SET \
         client_id = excluded.client_id, secret_hash = excluded.secret_hash",
        params![
            integration,
            c.client_id,
            c.secret_hash.as_bytes(),
            c.created_at.0
        ],
    )
    .map_err(|e| constraint_error(e, "client id", "integration"))?;
    tx.execute(
        "DELETE FROM oauth_redirect_uris WHERE integration = ?1",
        [integration],
    )?;
    for uri in &c.redirect_uris {
        tx.execute(
            "INSERT OR IGNORE INTO oauth_redirect_uris (integration, uri) VALUES (?1, ?2)",
            params![integration, uri],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn clients_where(
    conn: &Connection,
    filter: &str,
    arg: Option<&str>,
) -> Result<Vec<OAuthClient>, StoreError> {
    let sql = format!(
        "SELECT integration, client_id, secret_hash, created_at FROM oauth_clients {filter} \
         ORDER BY integration"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = |r: &Row<'_>| {
        Ok(OAuthClient {
            integration: integration_from(r, 0)?,
            client_id: r.get(1)?,
            secret_hash: hash_from(r, 2)?,
            redirect_uris: Vec::new(),
            created_at: UnixMillis(r.get(3)?),
        })
    };
    let mut clients: Vec<OAuthClient> = match arg {
        Some(a) => stmt.query_map([a], row)?.collect::<Result<_, _>>()?,
        None => stmt.query_map([], row)?.collect::<Result<_, _>>()?,
    };
    let mut uris = conn.prepare_cached(
        "SELECT uri FROM oauth_redirect_uris WHERE integration = ?1 ORDER BY uri",
    )?;
    for c in &mut clients {
        c.redirect_uris = uris
            .query_map([c.integration.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
    }
    Ok(clients)
}

pub(super) fn client_by_id(
    conn: &Connection,
    client_id: &str,
) -> Result<Option<OAuthClient>, StoreError> {
    Ok(
        clients_where(conn, "WHERE client_id = ?1", Some(client_id))?
            .into_iter()
            .next(),
    )
}

pub(super) fn clients(conn: &Connection) -> Result<Vec<OAuthClient>, StoreError> {
    clients_where(conn, "", None)
}

fn cameras_json(cameras: &[CameraId]) -> String {
    serde_json::Value::Array(
        cameras
            .iter()
            .map(|c| serde_json::Value::String(c.to_string()))
            .collect(),
    )
    .to_string()
}

pub(super) fn create_code(
    conn: &mut Connection,
    hash: TokenHash,
    c: &AuthCode,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let integration = linked(c.integration)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM oauth_codes WHERE expires_at <= ?1", [now.0])?;
    tx.execute(
        "INSERT INTO oauth_codes (code_hash, integration, client_id, user_id, cameras, \
         redirect_uri, code_challenge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            hash.as_bytes(),
            integration,
            c.client_id,
            c.user.to_string(),
            cameras_json(&c.cameras),
            c.redirect_uri,
            c.code_challenge,
            c.expires_at.0
        ],
    )
    .map_err(|e| constraint_error(e, "authorization code", "user"))?;
    tx.commit()?;
    Ok(())
}

pub(super) fn redeem_code(
    conn: &mut Connection,
    hash: TokenHash,
    now: UnixMillis,
) -> Result<Redeemed<AuthCode>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx
        .query_row(
            "SELECT integration, client_id, user_id, cameras, redirect_uri, code_challenge, \
             expires_at, used, link_id FROM oauth_codes WHERE code_hash = ?1",
            [hash.as_bytes()],
            |r| {
                let cameras: String = r.get(3)?;
                Ok((
                    AuthCode {
                        integration: integration_from(r, 0)?,
                        client_id: r.get(1)?,
                        user: get_id(r, 2)?,
                        cameras: serde_json::from_str(&cameras).map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                3,
                                rusqlite::types::Type::Text,
                                Box::new(e),
                            )
                        })?,
                        redirect_uri: r.get(4)?,
                        code_challenge: r.get(5)?,
                        expires_at: UnixMillis(r.get(6)?),
                    },
                    r.get::<_, bool>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()?;
    let result = match found {
        None => Redeemed::Invalid,
        Some((_, true, link)) => {
            // RFC 6749 4.1.2: a code used twice revokes what it produced, or, if
            // the first use has not produced its link yet, forbids it to.
            match link {
                Some(link) => {
                    tx.execute("DELETE FROM integration_links WHERE id = ?1", [link])?;
                }
                None => {
                    tx.execute(
                        "UPDATE oauth_codes SET link_id = '' WHERE code_hash = ?1",
                        [hash.as_bytes()],
                    )?;
                }
            }
            Redeemed::Replayed
        }
        Some((code, false, _)) if code.expires_at <= now => Redeemed::Invalid,
        Some((code, false, _)) => {
            tx.execute(
                "UPDATE oauth_codes SET used = 1 WHERE code_hash = ?1",
                [hash.as_bytes()],
            )?;
            Redeemed::Fresh(code)
        }
    };
    tx.commit()?;
    Ok(result)
}

fn sweep_tokens(tx: &Transaction<'_>, now: UnixMillis) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM oauth_tokens WHERE expires_at <= ?1",
        [now.0 - EXPIRED_TOKEN_GRACE_MS],
    )?;
    Ok(())
}

fn insert_tokens(tx: &Transaction<'_>, link: LinkId, t: &TokenPair) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO oauth_tokens (token_hash, link_id, kind, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (hash, kind, expires) in [
        (t.access, "access", t.access_expires),
        (t.refresh, "refresh", t.refresh_expires),
    ] {
        insert
            .execute(params![hash.as_bytes(), link.to_string(), kind, expires.0])
            .map_err(|e| constraint_error(e, "token", "link"))?;
    }
    Ok(())
}

/// Stores the link's consents. A camera is kept only if it is, at this moment,
/// in the link user's household or shared with them: a consent given before an
/// unshare or a transfer cannot come back through a late insert. (Suspensions are
/// not checked: they pause viewing, they do not undo consent.)
fn insert_cameras(
    tx: &Transaction<'_>,
    link: LinkId,
    cameras: &[CameraId],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO link_cameras (link_id, camera_id) \
         SELECT l.id, c.id FROM integration_links l JOIN users u ON u.id = l.user_id \
         JOIN cameras c ON c.id = ?2 \
         WHERE l.id = ?1 AND (c.household_id = u.household_id OR EXISTS \
         (SELECT 1 FROM shares s WHERE s.camera_id = c.id AND s.user_id = u.id))",
    )?;
    for c in cameras {
        insert.execute([link.to_string(), c.to_string()])?;
    }
    Ok(())
}

/// After an unshare (`user`: the viewer), a transfer or a factory reset (`None`:
/// everyone), the camera leaves the consents of those users' links, and every
/// authorization code naming it that has not yet become a link is void: only a
/// new consent can put it on a display again.
pub(super) fn forget_consents(
    tx: &Transaction<'_>,
    camera: CameraId,
    user: Option<UserId>,
) -> Result<(), StoreError> {
    let (camera, user) = (camera.to_string(), user.map(|u| u.to_string()));
    tx.execute(
        "DELETE FROM link_cameras WHERE camera_id = ?1 AND (?2 IS NULL OR link_id IN \
         (SELECT id FROM integration_links WHERE user_id = ?2))",
        params![camera, user],
    )?;
    tx.execute(
        "DELETE FROM oauth_codes WHERE link_id IS NULL AND (?2 IS NULL OR user_id = ?2) \
         AND EXISTS (SELECT 1 FROM json_each(oauth_codes.cameras) WHERE value = ?1)",
        params![camera, user],
    )?;
    Ok(())
}

pub(super) fn create_link(
    conn: &mut Connection,
    code: TokenHash,
    link: &Link,
    tokens: &TokenPair,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let integration = linked(link.integration)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    sweep_tokens(&tx, now)?;
    tx.execute(
        "DELETE FROM integration_links WHERE integration = ?1 AND user_id = ?2",
        params![integration, link.user.to_string()],
    )?;
    tx.execute(
        "INSERT INTO integration_links (id, integration, user_id, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            link.id.to_string(),
            integration,
            link.user.to_string(),
            link.created_at.0
        ],
    )
    .map_err(|e| constraint_error(e, "link", "user or integration client"))?;
    insert_cameras(&tx, link.id, &link.cameras)?;
    insert_tokens(&tx, link.id, tokens)?;
    // The code must still be unclaimed: a replay between its redemption and now
    // marked it, and then no link may come of it.
    let claimed = tx.execute(
        "UPDATE oauth_codes SET link_id = ?1 WHERE code_hash = ?2 AND link_id IS NULL",
        params![link.id.to_string(), code.as_bytes()],
    )?;
    if claimed != 1 {
        return Err(StoreError::Conflict {
            what: "authorization code",
        });
    }
    tx.commit()?;
    Ok(())
}

fn links_where(
    conn: &Connection,
    filter: &str,
    arg: Option<String>,
) -> Result<Vec<Link>, StoreError> {
    let sql = format!(
        "SELECT l.id, l.integration, l.user_id, l.created_at, \
         (SELECT json_group_array(camera_id) FROM link_cameras WHERE link_id = l.id) \
         FROM integration_links l {filter} ORDER BY l.created_at, l.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = |r: &Row<'_>| {
        let cameras: String = r.get(4)?;
        let mut cameras: Vec<CameraId> = serde_json::from_str(&cameras).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?;
        cameras.sort();
        Ok(Link {
            id: get_id(r, 0)?,
            integration: integration_from(r, 1)?,
            user: get_id(r, 2)?,
            created_at: UnixMillis(r.get(3)?),
            cameras,
        })
    };
    Ok(match arg {
        Some(a) => stmt.query_map([a], row)?.collect::<Result<_, _>>()?,
        None => stmt.query_map([], row)?.collect::<Result<_, _>>()?,
    })
}

pub(super) fn link_by_id(conn: &Connection, id: LinkId) -> Result<Option<Link>, StoreError> {
    Ok(links_where(conn, "WHERE l.id = ?1", Some(id.to_string()))?
        .into_iter()
        .next())
}

pub(super) fn links_of_user(conn: &Connection, user: UserId) -> Result<Vec<Link>, StoreError> {
    links_where(conn, "WHERE l.user_id = ?1", Some(user.to_string()))
}

pub(super) fn links(conn: &Connection) -> Result<Vec<Link>, StoreError> {
    links_where(conn, "", None)
}

pub(super) fn link_by_access_token(
    conn: &Connection,
    hash: TokenHash,
    now: UnixMillis,
) -> Result<AccessToken, StoreError> {
    let found: Option<(LinkId, i64)> = conn
        .prepare_cached(
            "SELECT link_id, expires_at FROM oauth_tokens \
             WHERE token_hash = ?1 AND kind = 'access'",
        )?
        .query_row([hash.as_bytes()], |r| Ok((get_id(r, 0)?, r.get(1)?)))
        .optional()?;
    let Some((id, expires)) = found else {
        return Ok(AccessToken::Unknown);
    };
    Ok(match link_by_id(conn, id)? {
        None => AccessToken::Unknown,
        Some(l) if expires <= now.0 => AccessToken::Expired(l),
        Some(l) => AccessToken::Live(l),
    })
}

pub(super) fn rotate_refresh(
    conn: &mut Connection,
    hash: TokenHash,
    next: &TokenPair,
    now: UnixMillis,
) -> Result<Redeemed<Link>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: Option<(LinkId, i64, bool, Option<Vec<u8>>)> = tx
        .query_row(
            "SELECT link_id, expires_at, rotated, successor FROM oauth_tokens \
             WHERE token_hash = ?1 AND kind = 'refresh'",
            [hash.as_bytes()],
            |r| Ok((get_id(r, 0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    // A rotated token whose successor was never used: the client lost our answer
    // and retries. The token rotates again; the unused successor stays as a
    // tombstone (rotated, no successor of its own), so if it ever turns up, it
    // was not lost but taken, and presenting it revokes the link.
    let retry = match &found {
        Some((_, expires, true, Some(next))) if *expires > now.0 => {
            tx.execute(
                "UPDATE oauth_tokens SET rotated = 1, successor = NULL \
             WHERE token_hash = ?1 AND kind = 'refresh' AND rotated = 0",
                [next],
            )? == 1
        }
        _ => false,
    };
    let result = match found {
        None => Redeemed::Invalid,
        Some((link, _, true, _)) if !retry => {
            // A rotated refresh token came back: someone holds a copy. Revoke all.
            tx.execute(
                "DELETE FROM integration_links WHERE id = ?1",
                [link.to_string()],
            )?;
            Redeemed::Replayed
        }
        Some((_, expires, false, _)) if expires <= now.0 => Redeemed::Invalid,
        Some((link, _, _, _)) => {
            tx.execute(
                "UPDATE oauth_tokens SET rotated = 1, successor = ?2 WHERE token_hash = ?1",
                params![hash.as_bytes(), next.refresh.as_bytes()],
            )?;
            sweep_tokens(&tx, now)?;
            insert_tokens(&tx, link, next)?;
            match link_by_id(&tx, link)? {
                Some(l) => Redeemed::Fresh(l),
                None => Redeemed::Invalid,
            }
        }
    };
    tx.commit()?;
    Ok(result)
}

pub(super) fn revoke_token(
    conn: &mut Connection,
    hash: TokenHash,
    integration: Integration,
) -> Result<Revocation, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: Option<(LinkId, String)> = tx
        .query_row(
            "SELECT link_id, kind FROM oauth_tokens WHERE token_hash = ?1",
            [hash.as_bytes()],
            |r| Ok((get_id(r, 0)?, r.get(1)?)),
        )
        .optional()?;
    let Some(link) = found
        .as_ref()
        .map(|(id, _)| link_by_id(&tx, *id))
        .transpose()?
        .flatten()
    else {
        return Ok(Revocation::Unknown);
    };
    if link.integration != integration {
        return Ok(Revocation::OtherClient(link));
    }
    if found.as_ref().is_some_and(|(_, kind)| kind == "refresh") {
        tx.execute(
            "DELETE FROM integration_links WHERE id = ?1",
            [link.id.to_string()],
        )?;
    } else {
        tx.execute(
            "DELETE FROM oauth_tokens WHERE token_hash = ?1",
            [hash.as_bytes()],
        )?;
    }
    tx.commit()?;
    Ok(Revocation::Revoked(link))
}

pub(super) fn set_link_cameras(
    conn: &mut Connection,
    link: LinkId,
    cameras: &[CameraId],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM integration_links WHERE id = ?1)",
        [link.to_string()],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NotFound { what: "link" });
    }
    tx.execute(
        "DELETE FROM link_cameras WHERE link_id = ?1",
        [link.to_string()],
    )?;
    insert_cameras(&tx, link, cameras)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn delete_link(conn: &Connection, link: LinkId) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM integration_links WHERE id = ?1",
        [link.to_string()],
    )? > 0)
}
