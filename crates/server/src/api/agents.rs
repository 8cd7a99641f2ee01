//! Home agents, as this server sees them: Hearths on a household's LAN that
//! pull cameras this server cannot reach (behind NAT) and push them here over
//! RTMPS (see `crate::agent` for the agent's side).
//!
//! - Pairing: an owner asks for a one-time claim code (`POST
//!   /api/v1/agents/claims`, valid 10 minutes, stored hashed); `hearth agent
//!   pair` trades it for the agent's own credential (`POST
//!   /api/v1/agents/pair`), returned once and stored as its SHA-256. Claim
//!   codes are rate-limited per address on every try.
//! - The agent then calls `POST /api/v1/agent/sync` with its credential: it
//!   reports each camera's state, and is answered with the cameras it is to
//!   pull (their sources, and the stream key each is published with) and the
//!   RTMPS ingest URL. A long poll: when the agent names the `version` of the
//!   cameras it has and they are still those, the answer waits (up to
//!   [`LONG_POLL`]) for a change, so a camera added or removed reaches the
//!   agent at once and an idle agent costs a request every 20 seconds; the
//!   agent sends a new request as soon as one of its cameras changes state.
//!   It only ever hears of cameras of its household that an owner put behind
//!   it, and its stream keys open only those cameras.
//! - Removing an agent gives its cameras fresh stream keys (their publishers
//!   are cut off) and drops their sources, in one transaction.

use super::parse_json;
use crate::auth::{AuthUser, ClientAddr};
use crate::error::AppError;
use crate::ingest::rtsp::source::RtspSource;
use crate::pulls::PullState;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_access::audit;
use hearth_access::limits::SecretKind;
use hearth_model::{AgentId, CameraId, RawToken, Rendition};
use hearth_store::Agent;
use serde::{Deserialize, Serialize};

/// How long a claim code can be redeemed.
pub const CLAIM_TTL_MS: i64 = 10 * 60 * 1000;
/// At most this many agents per household.
pub const MAX_AGENTS_PER_HOUSEHOLD: usize = 16;
/// How long a sync waits for the agent's cameras to change.
pub const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(20);
/// An agent not heard from for this long is not connected.
const CONNECTED_WITHIN_MS: i64 = 30_000;
/// Claim codes: 12 characters of Crockford's base32 (60 bits), no look-alikes.
const CLAIM_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CLAIM_LEN: usize = 12;

/// A claim code as typed (case, dashes and spaces ignored), hashed.
fn claim_hash(code: &str) -> hearth_model::TokenHash {
    let canonical: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    RawToken::from_client(canonical).hash()
}

fn new_claim_code() -> String {
    let mut out = String::with_capacity(CLAIM_LEN + 2);
    for i in 0..CLAIM_LEN {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(CLAIM_ALPHABET[rand::random_range(0..CLAIM_ALPHABET.len())] as char);
    }
    out
}

#[derive(Serialize)]
pub(super) struct Claim {
    /// Shown once: `XXXX-XXXX-XXXX`.
    code: String,
    expires_at: String,
    /// The command that pairs an agent with it.
    command: String,
}

/// `POST /api/v1/agents/claims`: a one-time code to pair an agent with the
/// caller's household.
pub(super) async fn create_claim(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<(StatusCode, Json<Claim>), AppError> {
    let household = st
        .db(move |s| s.user_by_id(user))
        .await?
        .ok_or(AppError::Unauthorized)?
        .household;
    let count = st.db(move |s| s.agents(household)).await?.len();
    if count >= MAX_AGENTS_PER_HOUSEHOLD {
        return Err(AppError::BadRequest(format!(
            "a household has at most {MAX_AGENTS_PER_HOUSEHOLD} home agents"
        )));
    }
    let code = new_claim_code();
    let hash = claim_hash(&code);
    let expires = hearth_model::UnixMillis(hearth_access::clock::now().0 + CLAIM_TTL_MS);
    st.db(move |s| s.create_agent_claim(hash, household, user, expires))
        .await?;
    tracing::info!(by = ?user, ?household, "home agent claim code issued");
    Ok((
        StatusCode::CREATED,
        Json(Claim {
            command: format!("hearth agent pair --server {} --code {code}", st.public_url),
            code,
            expires_at: hearth_access::clock::rfc3339(expires),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PairRequest {
    code: String,
    /// What the owner sees the agent as [default: "Home agent"].
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Paired {
    agent: AgentId,
    name: String,
    /// The agent's credential: in this answer only (stored hashed).
    credential: String,
}

/// `POST /api/v1/agents/pair` (no session: the claim code is the
/// credential): an agent trades a claim code for its own credential.
pub(super) async fn pair(
    State(st): State<AppState>,
    ClientAddr(ip): ClientAddr,
    body: Bytes,
) -> Result<(StatusCode, Json<Paired>), AppError> {
    st.limits.attempt(SecretKind::Agent, ip, "")?;
    let req: PairRequest = parse_json(&body)?;
    let name = req
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Home agent")
        .to_owned();
    if name.chars().count() > 100 {
        return Err(AppError::BadRequest(
            "an agent's name is at most 100 characters".into(),
        ));
    }
    let credential = RawToken::generate();
    let (hash, cred_hash, id) = (claim_hash(&req.code), credential.hash(), AgentId::random());
    let now = hearth_access::clock::now();
    let agent = {
        let name = name.clone();
        st.db(move |s| s.redeem_agent_claim(hash, id, &name, cred_hash, now))
            .await?
    };
    let Some(agent) = agent else {
        st.failures.record(SecretKind::Agent, "", ip, now);
        tracing::warn!(address = %ip, "home agent pairing refused: unknown, used or expired claim code");
        return Err(AppError::Unauthorized);
    };
    tracing::info!(agent = ?agent.id, household = ?agent.household, address = %ip, "home agent paired");
    st.audit.record(hearth_store::AuditEvent {
        user: agent.created_by,
        ..audit::event(
            "agent_paired",
            None,
            serde_json::json!({"agent": agent.id, "name": agent.name, "address": ip.to_string()}),
        )
    });
    Ok((
        StatusCode::CREATED,
        Json(Paired {
            agent: agent.id,
            name: agent.name,
            credential: credential.expose().to_owned(),
        }),
    ))
}

#[derive(Serialize)]
pub(super) struct AgentView {
    id: AgentId,
    name: String,
    created_at: String,
    /// When it last synced with this server (absent: not since it started).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
    /// Heard from (or waiting on a sync) within the last 30 seconds.
    connected: bool,
    cameras: Vec<CameraId>,
}

fn view(st: &AppState, a: Agent) -> AgentView {
    let seen = st.pulls.agent_last_seen(a.id);
    let now = hearth_access::clock::now();
    AgentView {
        connected: seen.is_some_and(|t| now.0 - t.0 < CONNECTED_WITHIN_MS),
        last_seen: seen.map(hearth_access::clock::rfc3339),
        cameras: st
            .pulls
            .agent_cameras(a.id)
            .into_iter()
            .map(|(c, _)| c)
            .collect(),
        id: a.id,
        name: a.name,
        created_at: hearth_access::clock::rfc3339(a.created_at),
    }
}

async fn household_of(
    st: &AppState,
    user: hearth_model::UserId,
) -> Result<hearth_model::HouseholdId, AppError> {
    Ok(st
        .db(move |s| s.user_by_id(user))
        .await?
        .ok_or(AppError::Unauthorized)?
        .household)
}

/// `GET /api/v1/agents`: the caller's household's agents.
pub(super) async fn list(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<AgentView>>, AppError> {
    let household = household_of(&st, user).await?;
    let agents = st.db(move |s| s.agents(household)).await?;
    Ok(Json(agents.into_iter().map(|a| view(&st, a)).collect()))
}

/// `DELETE /api/v1/agents/{id}`: the agent's credential stops working at
/// once, its cameras' publishers are cut off and their keys replaced.
pub(super) async fn remove(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id: AgentId = id.parse().map_err(|_| AppError::NotFound)?;
    let household = household_of(&st, user).await?;
    let cameras = st
        .db(move |s| s.delete_agent(household, id))
        .await?
        .ok_or(AppError::NotFound)?;
    for c in &cameras {
        st.hubs.disconnect(*c);
    }
    st.refresh_access().await?;
    crate::ingest::rtsp::sync(&st)
        .await
        .map_err(AppError::Internal)?;
    tracing::info!(agent = ?id, by = ?user, cameras = cameras.len(), "home agent removed");
    st.audit_now(hearth_store::AuditEvent {
        user: Some(user),
        ..audit::event(
            "agent_removed",
            None,
            serde_json::json!({"agent": id, "cameras": cameras}),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A request carrying a home agent's credential.
pub struct AgentAuth(pub Agent);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, AppError> {
        let ClientAddr(ip) = ClientAddr::from_request_parts(parts, st)
            .await
            .unwrap_or(ClientAddr(std::net::Ipv4Addr::UNSPECIFIED.into()));
        let presented = crate::auth::bearer(&parts.headers).ok_or(AppError::Unauthorized)?;
        let hash = RawToken::from_client(presented).hash();
        // Looked up by its hash: the comparison never sees the secret.
        match st.db(move |s| s.agent_by_credential(hash)).await? {
            Some(agent) => Ok(AgentAuth(agent)),
            None => {
                let now = hearth_access::clock::now();
                st.failures.record(SecretKind::Agent, "", ip, now);
                st.limits.attempt(SecretKind::Agent, ip, "")?;
                tracing::warn!(address = %ip, "home agent refused: unknown credential");
                Err(AppError::Unauthorized)
            }
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReportedStatus {
    pub camera: CameraId,
    #[serde(default = "main")]
    pub rendition: Rendition,
    pub state: PullState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn main() -> Rendition {
    Rendition::Main
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    #[serde(default)]
    pub statuses: Vec<ReportedStatus>,
    /// The `version` of the last answer: the answer waits for a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One camera an agent pulls, as it is told of it: the camera's stored source
/// itself, whose `push_key` is what the agent publishes it with, at
/// `ingest_url/<push_key>`. (`Debug` hides the credentials, as `RtspSource`'s
/// does.)
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AgentCamera {
    pub id: CameraId,
    pub name: String,
    #[serde(flatten)]
    pub source: RtspSource,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SyncAnswer {
    pub agent: AgentId,
    /// `rtmps://host:port/live`.
    pub ingest_url: String,
    pub cameras: Vec<AgentCamera>,
    /// Names these cameras, for the next request's long poll.
    pub version: String,
}

/// A digest of what an agent is told: its cameras' sealed sources and the
/// ingest URL.
fn version_of(cameras: &[(CameraId, Vec<u8>)], ingest: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(ingest.as_bytes());
    for (c, sealed) in cameras {
        h.update(c.to_string().as_bytes());
        h.update((sealed.len() as u64).to_be_bytes());
        h.update(sealed);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// At most this many statuses per sync (two renditions of the household's
/// cameras).
const MAX_STATUSES: usize = 2 * crate::ingest::onboard::MAX_CAMERAS_PER_HOUSEHOLD;

/// `POST /api/v1/agent/sync` (agents): the agent's report in, its cameras out.
pub(super) async fn sync(
    State(st): State<AppState>,
    AgentAuth(agent): AgentAuth,
    body: Bytes,
) -> Result<Json<SyncAnswer>, AppError> {
    let req: SyncRequest = parse_json(&body)?;
    if req.statuses.len() > MAX_STATUSES {
        return Err(AppError::BadRequest(format!(
            "at most {MAX_STATUSES} statuses"
        )));
    }
    let Some(ingest) = st.rtmps_url.get() else {
        return Err(AppError::Conflict(
            "this server has no RTMPS listener for agents ([tls] rtmps)".into(),
        ));
    };
    let now = hearth_access::clock::now();
    st.pulls.agent_seen(agent.id, now);
    let mut mine = st.pulls.agent_cameras(agent.id);
    for r in req.statuses {
        // Only its own cameras' states: an agent cannot speak for others.
        if mine.iter().any(|(c, _)| *c == r.camera) {
            let error = r.error.map(|e| e.chars().take(300).collect());
            st.pulls
                .statuses
                .set(r.camera, r.rendition, r.state, error, now);
        }
    }
    // The long poll: wait while the agent already has these cameras.
    let mut version = version_of(&mine, ingest);
    if req.version.as_deref() == Some(version.as_str()) {
        let mut changed = st.pulls.changed.subscribe();
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        while version == *req.version.as_deref().unwrap_or_default() {
            if !matches!(
                tokio::time::timeout_at(deadline, changed.changed()).await,
                Ok(Ok(()))
            ) {
                break;
            }
            mine = st.pulls.agent_cameras(agent.id);
            version = version_of(&mine, ingest);
        }
        st.pulls.agent_seen(agent.id, hearth_access::clock::now());
    }
    let names = {
        let ids: Vec<CameraId> = mine.iter().map(|(c, _)| *c).collect();
        st.db(move |s| {
            ids.iter()
                .map(|c| Ok(s.camera_by_id(*c)?.map(|cam| (cam.id, cam.name))))
                .collect::<Result<Vec<_>, hearth_store::StoreError>>()
        })
        .await?
    };
    let names: std::collections::HashMap<CameraId, String> = names.into_iter().flatten().collect();
    let mut cameras = Vec::with_capacity(mine.len());
    for (camera, sealed) in mine {
        let Some(source) = st
            .pulls
            .sealer()
            .open(camera, &sealed)
            .ok()
            .and_then(|b| RtspSource::from_bytes(&b))
        else {
            tracing::error!(?camera, "an agent camera's stored source does not open");
            continue;
        };
        if source.push_key.is_none() {
            continue;
        }
        let Some(name) = names.get(&camera).cloned() else {
            continue;
        };
        cameras.push(AgentCamera {
            id: camera,
            name,
            source,
        });
    }
    Ok(Json(SyncAnswer {
        agent: agent.id,
        ingest_url: ingest.clone(),
        cameras,
        version,
    }))
}
