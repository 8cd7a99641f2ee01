//! OAuth clients, authorization codes, account links and their tokens on
//! PostgreSQL (see `sqlite/links.rs` for the rules). A single-use credential is
//! read `FOR UPDATE`, so of two nodes redeeming it at once the second waits for
//! the first's commit and then finds it used: a replay, which revokes the link.

use deadpool_postgres::Object;
use tokio_postgres::{GenericClient, Row, Transaction};

use super::{constraint, hash, id};
use crate::input::{EXPIRED_TOKEN_GRACE_MS, linked, non_empty};
use crate::{
    AccessToken, AuthCode, CameraId, Integration, Link, LinkId, OAuthClient, Redeemed, Revocation,
    StoreError, TokenHash, TokenPair, UnixMillis,
};

fn integration_from(row: &Row, idx: usize) -> Result<Integration, StoreError> {
    let text: &str = row.try_get(idx)?;
    Integration::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("unknown integration {text:?}").into()))
}

fn camera_ids(texts: Vec<String>) -> Result<Vec<CameraId>, StoreError> {
    texts
        .iter()
        .map(|t| t.parse().map_err(|e| StoreError::Backend(Box::new(e))))
        .collect()
}

fn camera_texts(cameras: &[CameraId]) -> Vec<String> {
    cameras.iter().map(CameraId::to_string).collect()
}

pub(super) async fn put_client(c: &mut Object, client: OAuthClient) -> Result<(), StoreError> {
    let integration = linked(client.integration)?;
    non_empty(&client.client_id, "client id")?;
    if client.redirect_uris.is_empty() || client.redirect_uris.iter().any(|u| u.trim().is_empty()) {
        return Err(StoreError::InvalidInput {
            what: "redirect URIs",
        });
    }
    let tx = c.transaction().await?;
    tx.execute(
        "INSERT INTO oauth_clients (integration, client_id, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (integration) DO UPDATE SET \
         client_id = excluded.client_id, secret_hash = excluded.secret_hash",
        &[
            &integration,
            &client.client_id,
            &&client.secret_hash.as_bytes()[..],
            &client.created_at.0,
        ],
    )
    .await
    .map_err(|e| constraint(e, "client id", "integration"))?;
    tx.execute(
        "DELETE FROM oauth_redirect_uris WHERE integration = $1",
        &[&integration],
    )
    .await?;
    for uri in &client.redirect_uris {
        tx.execute(
            "INSERT INTO oauth_redirect_uris (integration, uri) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[&integration, uri],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn clients_where<C: GenericClient>(
    c: &C,
    filter: &str,
    arg: Option<String>,
) -> Result<Vec<OAuthClient>, StoreError> {
    let sql = format!(
        "SELECT integration, client_id, secret_hash, created_at, \
         ARRAY(SELECT uri FROM oauth_redirect_uris u WHERE u.integration = o.integration \
         ORDER BY uri) FROM oauth_clients o {filter} ORDER BY integration"
    );
    let rows = match &arg {
        Some(a) => c.query(&sql, &[a]).await?,
        None => c.query(&sql, &[]).await?,
    };
    rows.iter()
        .map(|r| {
            Ok(OAuthClient {
                integration: integration_from(r, 0)?,
                client_id: r.try_get(1)?,
                secret_hash: hash(r, 2)?,
                redirect_uris: r.try_get(4)?,
                created_at: UnixMillis(r.try_get(3)?),
            })
        })
        .collect()
}

pub(super) async fn create_code(
    c: &mut Object,
    code_hash: TokenHash,
    code: AuthCode,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let integration = linked(code.integration)?;
    let tx = c.transaction().await?;
    tx.execute("DELETE FROM oauth_codes WHERE expires_at <= $1", &[&now.0])
        .await?;
    tx.execute(
        "INSERT INTO oauth_codes (code_hash, integration, client_id, user_id, cameras, \
         redirect_uri, code_challenge, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &&code_hash.as_bytes()[..],
            &integration,
            &code.client_id,
            &code.user.to_string(),
            &camera_texts(&code.cameras),
            &code.redirect_uri,
            &code.code_challenge,
            &code.expires_at.0,
        ],
    )
    .await
    .map_err(|e| constraint(e, "authorization code", "user"))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn redeem_code(
    c: &mut Object,
    code_hash: TokenHash,
    now: UnixMillis,
) -> Result<Redeemed<AuthCode>, StoreError> {
    let key = &code_hash.as_bytes()[..];
    let tx = c.transaction().await?;
    let found = tx
        .query_opt(
            "SELECT integration, client_id, user_id, cameras, redirect_uri, code_challenge, \
             expires_at, used, link_id FROM oauth_codes WHERE code_hash = $1 FOR UPDATE",
            &[&key],
        )
        .await?;
    let found = found
        .map(|r| {
            Ok::<_, StoreError>((
                AuthCode {
                    integration: integration_from(&r, 0)?,
                    client_id: r.try_get(1)?,
                    user: id(&r, 2)?,
                    cameras: camera_ids(r.try_get(3)?)?,
                    redirect_uri: r.try_get(4)?,
                    code_challenge: r.try_get(5)?,
                    expires_at: UnixMillis(r.try_get(6)?),
                },
                r.try_get::<_, bool>(7)?,
                r.try_get::<_, Option<String>>(8)?,
            ))
        })
        .transpose()?;
    let result = match found {
        None => Redeemed::Invalid,
        Some((_, true, link)) => {
            // RFC 6749 4.1.2: a code used twice revokes what it produced, or
            // forbids the first use to produce it.
            match link {
                Some(link) => {
                    tx.execute("DELETE FROM integration_links WHERE id = $1", &[&link])
                        .await?;
                }
                None => {
                    tx.execute(
                        "UPDATE oauth_codes SET link_id = '' WHERE code_hash = $1",
                        &[&key],
                    )
                    .await?;
                }
            }
            Redeemed::Replayed
        }
        Some((code, false, _)) if code.expires_at <= now => Redeemed::Invalid,
        Some((code, false, _)) => {
            tx.execute(
                "UPDATE oauth_codes SET used = true WHERE code_hash = $1",
                &[&key],
            )
            .await?;
            Redeemed::Fresh(code)
        }
    };
    tx.commit().await?;
    Ok(result)
}

async fn sweep_tokens(tx: &Transaction<'_>, now: UnixMillis) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM oauth_tokens WHERE expires_at <= $1",
        &[&(now.0 - EXPIRED_TOKEN_GRACE_MS)],
    )
    .await?;
    Ok(())
}

async fn insert_tokens(tx: &Transaction<'_>, link: &str, t: &TokenPair) -> Result<(), StoreError> {
    for (token, kind, expires) in [
        (t.access, "access", t.access_expires),
        (t.refresh, "refresh", t.refresh_expires),
    ] {
        tx.execute(
            "INSERT INTO oauth_tokens (token_hash, link_id, kind, expires_at) \
             VALUES ($1, $2, $3, $4)",
            &[&&token.as_bytes()[..], &link, &kind, &expires.0],
        )
        .await
        .map_err(|e| constraint(e, "token", "link"))?;
    }
    Ok(())
}

/// Stores the link's consents, keeping only cameras that are, at this moment, in
/// the link user's household or shared with them.
async fn insert_cameras(
    tx: &Transaction<'_>,
    link: &str,
    cameras: &[CameraId],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO link_cameras (link_id, camera_id) \
         SELECT l.id, c.id FROM integration_links l JOIN users u ON u.id = l.user_id \
         JOIN cameras c ON c.id = ANY($2) \
         WHERE l.id = $1 AND (c.household_id = u.household_id OR EXISTS \
         (SELECT 1 FROM shares s WHERE s.camera_id = c.id AND s.user_id = u.id)) \
         ON CONFLICT DO NOTHING",
        &[&link, &camera_texts(cameras)],
    )
    .await?;
    Ok(())
}

/// After an unshare (`user`: the viewer), a transfer or a factory reset (`None`:
/// everyone), the camera leaves those users' links' consents and every code
/// naming it that has not become a link yet is void.
pub(super) async fn forget_consents(
    tx: &Transaction<'_>,
    camera: &str,
    user: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM link_cameras WHERE camera_id = $1 AND ($2::text IS NULL OR link_id IN \
         (SELECT id FROM integration_links WHERE user_id = $2))",
        &[&camera, &user],
    )
    .await?;
    tx.execute(
        "DELETE FROM oauth_codes WHERE link_id IS NULL AND ($2::text IS NULL OR user_id = $2) \
         AND $1 = ANY(cameras)",
        &[&camera, &user],
    )
    .await?;
    Ok(())
}

pub(super) async fn create_link(
    c: &mut Object,
    code_hash: TokenHash,
    link: Link,
    tokens: TokenPair,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let integration = linked(link.integration)?;
    let (id, user) = (link.id.to_string(), link.user.to_string());
    let tx = c.transaction().await?;
    sweep_tokens(&tx, now).await?;
    tx.execute(
        "DELETE FROM integration_links WHERE integration = $1 AND user_id = $2",
        &[&integration, &user],
    )
    .await?;
    tx.execute(
        "INSERT INTO integration_links (id, integration, user_id, created_at) \
         VALUES ($1, $2, $3, $4)",
        &[&id, &integration, &user, &link.created_at.0],
    )
    .await
    .map_err(|e| constraint(e, "link", "user or integration client"))?;
    insert_cameras(&tx, &id, &link.cameras).await?;
    insert_tokens(&tx, &id, &tokens).await?;
    // The code must still be unclaimed: a replay since its redemption marked it.
    let claimed = tx
        .execute(
            "UPDATE oauth_codes SET link_id = $1 WHERE code_hash = $2 AND link_id IS NULL",
            &[&id, &&code_hash.as_bytes()[..]],
        )
        .await?;
    if claimed != 1 {
        return Err(StoreError::Conflict {
            what: "authorization code",
        });
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn links_where<C: GenericClient>(
    c: &C,
    filter: &str,
    arg: Option<String>,
) -> Result<Vec<Link>, StoreError> {
    let sql = format!(
        "SELECT l.id, l.integration, l.user_id, l.created_at, \
         ARRAY(SELECT camera_id FROM link_cameras WHERE link_id = l.id ORDER BY camera_id) \
         FROM integration_links l {filter} ORDER BY l.created_at, l.id"
    );
    let rows = match &arg {
        Some(a) => c.query(&sql, &[a]).await?,
        None => c.query(&sql, &[]).await?,
    };
    rows.iter()
        .map(|r| {
            Ok(Link {
                id: id(r, 0)?,
                integration: integration_from(r, 1)?,
                user: id(r, 2)?,
                created_at: UnixMillis(r.try_get(3)?),
                cameras: camera_ids(r.try_get(4)?)?,
            })
        })
        .collect()
}

pub(super) async fn link_by_id<C: GenericClient>(
    c: &C,
    link: LinkId,
) -> Result<Option<Link>, StoreError> {
    Ok(links_where(c, "WHERE l.id = $1", Some(link.to_string()))
        .await?
        .into_iter()
        .next())
}

pub(super) async fn link_by_access_token<C: GenericClient>(
    c: &C,
    token: TokenHash,
    now: UnixMillis,
) -> Result<AccessToken, StoreError> {
    let found = c
        .query_opt(
            "SELECT link_id, expires_at FROM oauth_tokens \
             WHERE token_hash = $1 AND kind = 'access'",
            &[&&token.as_bytes()[..]],
        )
        .await?;
    let Some(row) = found else {
        return Ok(AccessToken::Unknown);
    };
    let (link, expires): (LinkId, i64) = (id(&row, 0)?, row.try_get(1)?);
    Ok(match link_by_id(c, link).await? {
        None => AccessToken::Unknown,
        Some(l) if expires <= now.0 => AccessToken::Expired(l),
        Some(l) => AccessToken::Live(l),
    })
}

pub(super) async fn rotate_refresh(
    c: &mut Object,
    token: TokenHash,
    next: TokenPair,
    now: UnixMillis,
) -> Result<Redeemed<Link>, StoreError> {
    let key = &token.as_bytes()[..];
    let tx = c.transaction().await?;
    let found = tx
        .query_opt(
            "SELECT link_id, expires_at, rotated, successor FROM oauth_tokens \
             WHERE token_hash = $1 AND kind = 'refresh' FOR UPDATE",
            &[&key],
        )
        .await?;
    let found: Option<(LinkId, i64, bool, Option<Vec<u8>>)> = found
        .map(|r| Ok::<_, StoreError>((id(&r, 0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .transpose()?;
    // A rotated token whose successor was never used: the client lost our answer
    // and retries (see the SQLite backend).
    let retry = match &found {
        Some((_, expires, true, Some(successor))) if *expires > now.0 => {
            tx.execute(
                "UPDATE oauth_tokens SET rotated = true, successor = NULL \
                 WHERE token_hash = $1 AND kind = 'refresh' AND NOT rotated",
                &[successor],
            )
            .await?
                == 1
        }
        _ => false,
    };
    let result = match found {
        None => Redeemed::Invalid,
        Some((link, _, true, _)) if !retry => {
            // A rotated refresh token came back: someone holds a copy. Revoke all.
            tx.execute(
                "DELETE FROM integration_links WHERE id = $1",
                &[&link.to_string()],
            )
            .await?;
            Redeemed::Replayed
        }
        Some((_, expires, false, _)) if expires <= now.0 => Redeemed::Invalid,
        Some((link, _, _, _)) => {
            tx.execute(
                "UPDATE oauth_tokens SET rotated = true, successor = $2 WHERE token_hash = $1",
                &[&key, &&next.refresh.as_bytes()[..]],
            )
            .await?;
            sweep_tokens(&tx, now).await?;
            insert_tokens(&tx, &link.to_string(), &next).await?;
            match link_by_id(&*tx, link).await? {
                Some(l) => Redeemed::Fresh(l),
                None => Redeemed::Invalid,
            }
        }
    };
    tx.commit().await?;
    Ok(result)
}

pub(super) async fn revoke_token(
    c: &mut Object,
    token: TokenHash,
    integration: Integration,
) -> Result<Revocation, StoreError> {
    let key = &token.as_bytes()[..];
    let tx = c.transaction().await?;
    let found = tx
        .query_opt(
            "SELECT link_id, kind FROM oauth_tokens WHERE token_hash = $1 FOR UPDATE",
            &[&key],
        )
        .await?;
    let found: Option<(LinkId, String)> = found
        .map(|r| Ok::<_, StoreError>((id(&r, 0)?, r.try_get(1)?)))
        .transpose()?;
    let link = match &found {
        Some((link, _)) => link_by_id(&*tx, *link).await?,
        None => None,
    };
    let Some(link) = link else {
        return Ok(Revocation::Unknown);
    };
    if link.integration != integration {
        return Ok(Revocation::OtherClient(link));
    }
    if found.as_ref().is_some_and(|(_, kind)| kind == "refresh") {
        tx.execute(
            "DELETE FROM integration_links WHERE id = $1",
            &[&link.id.to_string()],
        )
        .await?;
    } else {
        tx.execute("DELETE FROM oauth_tokens WHERE token_hash = $1", &[&key])
            .await?;
    }
    tx.commit().await?;
    Ok(Revocation::Revoked(link))
}

pub(super) async fn set_link_cameras(
    c: &mut Object,
    link: LinkId,
    cameras: Vec<CameraId>,
) -> Result<(), StoreError> {
    let link = link.to_string();
    let tx = c.transaction().await?;
    let exists = tx
        .query_opt(
            "SELECT 1 FROM integration_links WHERE id = $1 FOR UPDATE",
            &[&link],
        )
        .await?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound { what: "link" });
    }
    tx.execute("DELETE FROM link_cameras WHERE link_id = $1", &[&link])
        .await?;
    insert_cameras(&tx, &link, &cameras).await?;
    tx.commit().await?;
    Ok(())
}
