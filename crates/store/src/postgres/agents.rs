//! Camera sources, home agents and viewer keys on PostgreSQL (see
//! `sqlite/agents.rs` and `sqlite/viewer_keys.rs` for what they are).

use deadpool_postgres::Object;
use tokio_postgres::Row;

use super::{all, constraint, id, one, opt_id};
use crate::{
    Agent, CameraId, CameraSource, HouseholdId, StoreError, TokenHash, UnixMillis, UserId,
    ViewerKey,
};
use hearth_model::{AgentId, ViewerKeyId};

pub(super) async fn set_source(
    c: &Object,
    camera: CameraId,
    sealed: Option<Vec<u8>>,
    agent: Option<AgentId>,
) -> Result<(), StoreError> {
    let camera = camera.to_string();
    match sealed {
        Some(sealed) => {
            c.execute(
                "INSERT INTO camera_sources (camera_id, sealed, updated_at, agent_id) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (camera_id) DO UPDATE SET sealed = $2, updated_at = $3, agent_id = $4",
                &[
                    &camera,
                    &sealed,
                    &crate::input::now().0,
                    &agent.map(|a| a.to_string()),
                ],
            )
            .await
            .map_err(|e| constraint(e, "camera source", "camera or agent"))?;
        }
        None => {
            c.execute(
                "DELETE FROM camera_sources WHERE camera_id = $1",
                &[&camera],
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn sources(c: &Object) -> Result<Vec<CameraSource>, StoreError> {
    all(
        &***c,
        "SELECT camera_id, sealed, agent_id FROM camera_sources ORDER BY camera_id",
        &[],
        |r| {
            Ok(CameraSource {
                camera: id(r, 0)?,
                sealed: r.try_get(1)?,
                agent: opt_id(r, 2)?,
            })
        },
    )
    .await
}

pub(super) async fn create_claim(
    c: &Object,
    code_hash: TokenHash,
    household: HouseholdId,
    by: UserId,
    expires_at: UnixMillis,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO agent_claims (code_hash, household_id, created_by, expires_at) \
         VALUES ($1, $2, $3, $4)",
        &[
            &&code_hash.as_bytes()[..],
            &household.to_string(),
            &by.to_string(),
            &expires_at.0,
        ],
    )
    .await
    .map_err(|e| constraint(e, "claim code", "household or user"))?;
    Ok(())
}

pub(super) async fn redeem_claim(
    c: &mut Object,
    code_hash: TokenHash,
    agent: AgentId,
    name: String,
    credential_hash: TokenHash,
    now: UnixMillis,
) -> Result<Option<Agent>, StoreError> {
    let tx = c.transaction().await?;
    // DELETE … RETURNING takes the claim: of two nodes redeeming it at once,
    // one gets the row, the other nothing.
    let claim = tx
        .query_opt(
            "DELETE FROM agent_claims WHERE code_hash = $1 \
             RETURNING household_id, created_by, expires_at",
            &[&&code_hash.as_bytes()[..]],
        )
        .await?;
    let claim: Option<(HouseholdId, UserId, i64)> = claim
        .map(|r| Ok::<_, StoreError>((id(&r, 0)?, id(&r, 1)?, r.try_get(2)?)))
        .transpose()?;
    // Expired claims go whenever one is redeemed.
    tx.execute("DELETE FROM agent_claims WHERE expires_at <= $1", &[&now.0])
        .await?;
    let Some((household, by, expires_at)) = claim else {
        tx.commit().await?;
        return Ok(None);
    };
    if expires_at <= now.0 {
        tx.commit().await?; // an expired claim is used up too
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO agents (id, household_id, name, credential_hash, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &agent.to_string(),
            &household.to_string(),
            &name,
            &&credential_hash.as_bytes()[..],
            &by.to_string(),
            &now.0,
        ],
    )
    .await
    .map_err(|e| constraint(e, "agent", "household"))?;
    tx.commit().await?;
    Ok(Some(Agent {
        id: agent,
        household,
        name,
        created_by: Some(by),
        created_at: now,
    }))
}

const AGENT_COLUMNS: &str = "id, household_id, name, created_by, created_at";

fn agent_from(r: &Row) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: id(r, 0)?,
        household: id(r, 1)?,
        name: r.try_get(2)?,
        created_by: opt_id(r, 3)?,
        created_at: UnixMillis(r.try_get(4)?),
    })
}

pub(super) async fn by_credential(
    c: &Object,
    hash: TokenHash,
) -> Result<Option<Agent>, StoreError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE credential_hash = $1");
    one(&***c, &sql, &[&&hash.as_bytes()[..]], agent_from).await
}

pub(super) async fn of_household(
    c: &Object,
    household: HouseholdId,
) -> Result<Vec<Agent>, StoreError> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE household_id = $1 ORDER BY created_at, id"
    );
    all(&***c, &sql, &[&household.to_string()], agent_from).await
}

pub(super) async fn delete(
    c: &mut Object,
    household: HouseholdId,
    agent: AgentId,
) -> Result<Option<Vec<CameraId>>, StoreError> {
    let (agent, household) = (agent.to_string(), household.to_string());
    let tx = c.transaction().await?;
    // The agent's cameras get a stream key nobody knows, in the same
    // transaction that removes the agent.
    let cameras: Vec<CameraId> = tx
        .query(
            "UPDATE cameras SET stream_key_hash = \
             sha256((gen_random_uuid()::text || gen_random_uuid()::text)::bytea) \
             WHERE id IN (SELECT s.camera_id FROM camera_sources s JOIN agents a \
             ON a.id = s.agent_id WHERE a.id = $1 AND a.household_id = $2) RETURNING id",
            &[&agent, &household],
        )
        .await?
        .iter()
        .map(|r| id(r, 0))
        .collect::<Result<_, _>>()?;
    let gone = tx
        .execute(
            "DELETE FROM agents WHERE id = $1 AND household_id = $2",
            &[&agent, &household],
        )
        .await?
        > 0;
    tx.commit().await?;
    let mut cameras = cameras;
    cameras.sort();
    Ok(gone.then_some(cameras))
}

pub(super) async fn create_viewer_key(c: &mut Object, key: ViewerKey) -> Result<(), StoreError> {
    let tx = c.transaction().await?;
    let key_id = key.id.to_string();
    tx.execute(
        "INSERT INTO viewer_keys (id, user_id, name, created_at) VALUES ($1, $2, $3, $4)",
        &[&key_id, &key.user.to_string(), &key.name, &key.created_at.0],
    )
    .await
    .map_err(|e| constraint(e, "viewer key", "user"))?;
    for camera in &key.cameras {
        tx.execute(
            "INSERT INTO viewer_key_cameras (key_id, camera_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[&key_id, &camera.to_string()],
        )
        .await
        .map_err(|e| constraint(e, "viewer key", "camera"))?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn viewer_keys(c: &Object) -> Result<Vec<ViewerKey>, StoreError> {
    let mut keys = all(
        &***c,
        "SELECT id, user_id, name, created_at FROM viewer_keys ORDER BY created_at, id",
        &[],
        |r| {
            Ok(ViewerKey {
                id: id(r, 0)?,
                user: id(r, 1)?,
                name: r.try_get(2)?,
                cameras: Vec::new(),
                created_at: UnixMillis(r.try_get(3)?),
            })
        },
    )
    .await?;
    let pairs = all(
        &***c,
        "SELECT key_id, camera_id FROM viewer_key_cameras ORDER BY key_id, camera_id",
        &[],
        |r| Ok((id::<ViewerKeyId>(r, 0)?, id::<CameraId>(r, 1)?)),
    )
    .await?;
    let mut by_key: std::collections::HashMap<ViewerKeyId, Vec<CameraId>> = Default::default();
    for (k, camera) in pairs {
        by_key.entry(k).or_default().push(camera);
    }
    for k in &mut keys {
        k.cameras = by_key.remove(&k.id).unwrap_or_default();
    }
    Ok(keys)
}
