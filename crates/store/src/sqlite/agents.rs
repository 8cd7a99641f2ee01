//! Camera sources and home agents (schema versions 9 and 11): the sealed
//! sources of cameras Hearth pulls, by itself or through an agent on the
//! camera's LAN; agents, with their credentials hashed; one-time claim codes.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{constraint_error, get_id, get_opt_id};
use crate::input::{non_empty, now};
use crate::{
    Agent, CameraId, CameraSource, HouseholdId, StoreError, TokenHash, UnixMillis, UserId,
};
use hearth_model::AgentId;

pub(super) fn set_source(
    conn: &Connection,
    camera: CameraId,
    sealed: Option<&[u8]>,
    agent: Option<AgentId>,
) -> Result<(), StoreError> {
    match sealed {
        Some(sealed) => {
            conn.execute(
                "INSERT INTO camera_sources (camera_id, sealed, updated_at, agent_id) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (camera_id) DO UPDATE SET sealed = ?2, updated_at = ?3, agent_id = ?4",
                params![
                    camera.to_string(),
                    sealed,
                    now().0,
                    agent.map(|a| a.to_string())
                ],
            )
            .map_err(|e| constraint_error(e, "camera source", "camera or agent"))?;
        }
        None => {
            conn.execute(
                "DELETE FROM camera_sources WHERE camera_id = ?1",
                [camera.to_string()],
            )?;
        }
    }
    Ok(())
}

pub(super) fn sources(conn: &Connection) -> Result<Vec<CameraSource>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT camera_id, sealed, agent_id FROM camera_sources ORDER BY camera_id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(CameraSource {
            camera: get_id(row, 0)?,
            sealed: row.get(1)?,
            agent: get_opt_id(row, 2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn create_claim(
    conn: &Connection,
    code_hash: TokenHash,
    household: HouseholdId,
    by: UserId,
    expires_at: UnixMillis,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO agent_claims (code_hash, household_id, created_by, expires_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            code_hash.as_bytes(),
            household.to_string(),
            by.to_string(),
            expires_at.0
        ],
    )
    .map_err(|e| constraint_error(e, "claim code", "household or user"))?;
    Ok(())
}

pub(super) fn redeem_claim(
    conn: &mut Connection,
    code_hash: TokenHash,
    id: AgentId,
    name: &str,
    credential_hash: TokenHash,
    now: UnixMillis,
) -> Result<Option<Agent>, StoreError> {
    let name = non_empty(name, "agent name")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let claim: Option<(HouseholdId, UserId, i64)> = tx
        .query_row(
            "DELETE FROM agent_claims WHERE code_hash = ?1 \
             RETURNING household_id, created_by, expires_at",
            [code_hash.as_bytes()],
            |r| Ok((get_id(r, 0)?, get_id(r, 1)?, r.get(2)?)),
        )
        .optional()?;
    // Expired claims go whenever one is redeemed.
    tx.execute("DELETE FROM agent_claims WHERE expires_at <= ?1", [now.0])?;
    let Some((household, by, expires_at)) = claim else {
        tx.commit()?;
        return Ok(None);
    };
    if expires_at <= now.0 {
        tx.commit()?; // an expired claim is used up too
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO agents (id, household_id, name, credential_hash, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id.to_string(),
            household.to_string(),
            name,
            credential_hash.as_bytes(),
            by.to_string(),
            now.0
        ],
    )
    .map_err(|e| constraint_error(e, "agent", "household"))?;
    tx.commit()?;
    Ok(Some(Agent {
        id,
        household,
        name: name.to_owned(),
        created_by: Some(by),
        created_at: now,
    }))
}

const AGENT_COLUMNS: &str = "id, household_id, name, created_by, created_at";

fn agent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: get_id(r, 0)?,
        household: get_id(r, 1)?,
        name: r.get(2)?,
        created_by: get_opt_id(r, 3)?,
        created_at: UnixMillis(r.get(4)?),
    })
}

pub(super) fn by_credential(
    conn: &Connection,
    hash: TokenHash,
) -> Result<Option<Agent>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE credential_hash = ?1"
        ))?
        .query_row([hash.as_bytes()], agent_from_row)
        .optional()?)
}

pub(super) fn of_household(
    conn: &Connection,
    household: HouseholdId,
) -> Result<Vec<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE household_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([household.to_string()], agent_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn delete(
    conn: &mut Connection,
    household: HouseholdId,
    id: AgentId,
) -> Result<Option<Vec<CameraId>>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let cameras: Vec<CameraId> = tx
        .prepare(
            "SELECT s.camera_id FROM camera_sources s JOIN agents a ON a.id = s.agent_id \
             WHERE a.id = ?1 AND a.household_id = ?2 ORDER BY s.camera_id",
        )?
        .query_map(params![id.to_string(), household.to_string()], |r| {
            get_id(r, 0)
        })?
        .collect::<Result<_, _>>()?;
    for camera in &cameras {
        tx.execute(
            "UPDATE cameras SET stream_key_hash = randomblob(32) WHERE id = ?1",
            [camera.to_string()],
        )?;
    }
    let gone = tx.execute(
        "DELETE FROM agents WHERE id = ?1 AND household_id = ?2",
        params![id.to_string(), household.to_string()],
    )? > 0;
    tx.commit()?;
    Ok(gone.then_some(cameras))
}
