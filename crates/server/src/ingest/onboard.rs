//! Adding a camera, the same from the API and the admin CLI: a push camera gets
//! a stream key (shown once, stored hashed); a pulled camera gets its RTSP
//! source sealed into the store (and a stream key nobody is shown, so that no
//! camera lacks one). The running server starts pulling on the store's change.

use super::rtsp::source::RtspSource;
use hearth_access::sealed::SecretBox;
use hearth_model::{AgentId, HouseholdId, RawToken};
use hearth_store::{Camera, Store, StoreError};

/// At most this many cameras in one household (a runaway script, not a home).
pub const MAX_CAMERAS_PER_HOUSEHOLD: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Added {
    pub camera: Camera,
    /// The push camera's stream key (for a pulled camera, nobody's).
    pub stream_key: RawToken,
}

/// A camera name as stored: trimmed, 1 to 100 characters.
pub fn camera_name(name: &str) -> Result<&str, AddError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AddError::Invalid(
            "a camera name is 1 to 100 characters".into(),
        ));
    }
    Ok(name)
}

/// Creates a camera in `household`, pulled from a source (sealed in the box
/// given with it) if there is one.
pub fn add_camera(
    store: &dyn Store,
    household: HouseholdId,
    name: &str,
    timezone: &str,
    source: Option<(&RtspSource, &SecretBox)>,
    agent: Option<AgentId>,
) -> Result<Added, AddError> {
    let name = camera_name(name)?;
    hearth_camera::validate_timezone(timezone).map_err(|e| AddError::Invalid(e.to_string()))?;
    let existing = store
        .list_cameras()?
        .iter()
        .filter(|c| c.household == household)
        .count();
    if existing >= MAX_CAMERAS_PER_HOUSEHOLD {
        return Err(AddError::Invalid(format!(
            "a household has at most {MAX_CAMERAS_PER_HOUSEHOLD} cameras"
        )));
    }
    let stream_key = RawToken::generate();
    let camera = store.create_camera(household, name, timezone, stream_key.hash())?;
    if let Some((source, sealer)) = source {
        set_source(store, sealer, &camera, Some(source), agent)?;
    }
    Ok(Added { camera, stream_key })
}

/// Gives a camera a new stream key (shown once, stored hashed); the old one
/// stops opening at once.
pub fn rotate_stream_key(store: &dyn Store, camera: &Camera) -> Result<RawToken, StoreError> {
    let key = RawToken::generate();
    store.set_camera_stream_key(camera.id, key.hash())?;
    Ok(key)
}

/// Points `camera` at `source`, pulled by this server or by home agent
/// `agent` (or, with `None`, makes it a push camera). A pulled camera gets a
/// new stream key, so whatever published it before (an earlier agent, a
/// camera pushing) no longer can; an agent is handed that key, sealed into
/// the source, and nobody else is.
pub fn set_source(
    store: &dyn Store,
    sealer: &SecretBox,
    camera: &Camera,
    source: Option<&RtspSource>,
    agent: Option<AgentId>,
) -> Result<(), AddError> {
    let Some(source) = source else {
        store.set_camera_source(camera.id, None, None)?;
        return Ok(());
    };
    let key = rotate_stream_key(store, camera)?;
    let source = RtspSource {
        push_key: agent.map(|_| key.expose().to_owned()),
        ..source.clone()
    };
    let sealed = sealer
        .seal(camera.id, &source.to_bytes())
        .map_err(|e| AddError::Invalid(e.to_string()))?;
    store.set_camera_source(camera.id, Some(&sealed), agent)?;
    Ok(())
}
