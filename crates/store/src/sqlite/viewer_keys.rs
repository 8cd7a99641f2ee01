//! Viewer keys (schema version 10): a user's named credentials for players that
//! cannot send headers, each for a set of cameras. No secret is stored.

use rusqlite::{Connection, TransactionBehavior, params};

use super::{constraint_error, get_id};
use crate::input::non_empty;
use crate::{StoreError, UnixMillis, UserId, ViewerKey};
use hearth_model::ViewerKeyId;

pub(super) fn create(conn: &mut Connection, key: &ViewerKey) -> Result<(), StoreError> {
    let name = non_empty(&key.name, "key name")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO viewer_keys (id, user_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            key.id.to_string(),
            key.user.to_string(),
            name,
            key.created_at.0
        ],
    )
    .map_err(|e| constraint_error(e, "viewer key", "user"))?;
    for camera in &key.cameras {
        tx.execute(
            "INSERT OR IGNORE INTO viewer_key_cameras (key_id, camera_id) VALUES (?1, ?2)",
            params![key.id.to_string(), camera.to_string()],
        )
        .map_err(|e| constraint_error(e, "viewer key", "camera"))?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn all(conn: &Connection) -> Result<Vec<ViewerKey>, StoreError> {
    let mut keys: Vec<ViewerKey> = conn
        .prepare_cached(
            "SELECT id, user_id, name, created_at FROM viewer_keys ORDER BY created_at, id",
        )?
        .query_map([], |r| {
            Ok(ViewerKey {
                id: get_id(r, 0)?,
                user: get_id(r, 1)?,
                name: r.get(2)?,
                cameras: Vec::new(),
                created_at: UnixMillis(r.get(3)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT key_id, camera_id FROM viewer_key_cameras ORDER BY key_id, camera_id",
    )?;
    let pairs = stmt.query_map([], |r| Ok((get_id::<ViewerKeyId>(r, 0)?, get_id(r, 1)?)))?;
    let mut by_key: std::collections::HashMap<ViewerKeyId, Vec<_>> = Default::default();
    for p in pairs {
        let (k, c) = p?;
        by_key.entry(k).or_default().push(c);
    }
    for k in &mut keys {
        k.cameras = by_key.remove(&k.id).unwrap_or_default();
    }
    Ok(keys)
}

pub(super) fn delete(conn: &Connection, user: UserId, id: ViewerKeyId) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM viewer_keys WHERE id = ?1 AND user_id = ?2",
        params![id.to_string(), user.to_string()],
    )? > 0)
}
