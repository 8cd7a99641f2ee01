//! Operator commands that work directly on the data directory's database. They are
//! safe to run while the server is up (SQLite WAL); the server reads users and
//! cameras from the store when it needs them, so it picks changes up without a
//! restart.

use hearth_model::BindingEpoch;
use hearth_model::RawToken;
use hearth_store::{Camera, Store, SuspensionKind, User};

/// Creates a user with a household of their own.
pub fn add_user(store: &dyn Store, email: &str, password: &str) -> anyhow::Result<User> {
    let email = email.trim();
    if !email.contains('@') || email.len() > 320 {
        anyhow::bail!("{email:?} is not an email address");
    }
    if password.chars().count() < 8 {
        anyhow::bail!("password must have at least 8 characters");
    }
    if store.user_by_email(email)?.is_some() {
        anyhow::bail!("a user with email {email} exists already");
    }
    let hash = crate::auth::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let household = store.create_household(email)?;
    Ok(store.create_user(email, &hash, household.id)?)
}

/// Creates a camera in `owner`'s household. Returns it with its stream key, which is
/// shown once and stored only as a hash.
pub fn add_camera(
    store: &dyn Store,
    owner: &str,
    name: &str,
    timezone: &str,
) -> anyhow::Result<(Camera, RawToken)> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        anyhow::bail!("camera name must have 1 to 100 characters");
    }
    hearth_camera::validate_timezone(timezone).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = store
        .user_by_email(owner)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {owner}"))?;
    let key = RawToken::generate();
    let camera = store.create_camera(user.household, name, timezone, key.hash())?;
    Ok((camera, key))
}

/// Gives a camera a new stream key; the old one stops working at once.
pub fn rotate_stream_key(store: &dyn Store, camera: &Camera) -> anyhow::Result<RawToken> {
    let key = RawToken::generate();
    store.set_camera_stream_key(camera.id, key.hash())?;
    Ok(key)
}

/// `camera list` as a table.
pub fn camera_table(store: &dyn Store) -> anyhow::Result<String> {
    use std::fmt::Write;
    let users = store.list_users()?;
    let mut out = format!(
        "{:<32}  {:<20}  {:<28}  {:<20}  {}\n",
        "ID", "NAME", "OWNER", "TIMEZONE", "EPOCH"
    );
    for c in store.list_cameras()? {
        let owner = users
            .iter()
            .filter(|u| u.household == c.household)
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(
            out,
            "{:<32}  {:<20}  {:<28}  {:<20}  {}",
            c.id, c.name, owner, c.timezone, c.epoch
        );
    }
    Ok(out)
}

fn camera_by_id_text(store: &dyn Store, camera: &str) -> anyhow::Result<Camera> {
    let id: hearth_model::CameraId = camera
        .parse()
        .map_err(|_| anyhow::anyhow!("{camera:?} is not a camera id"))?;
    store
        .camera_by_id(id)?
        .ok_or_else(|| anyhow::anyhow!("no camera {camera}"))
}

/// Moves a camera to another user's household. Its binding epoch goes up: every
/// grant, key and share of the old epoch stops working, and its publisher must
/// reconnect. The stream key is kept; reset the camera too if the old owner must
/// not be able to publish to it.
pub fn transfer_camera(
    store: &dyn Store,
    camera: &str,
    to_email: &str,
) -> anyhow::Result<BindingEpoch> {
    let cam = camera_by_id_text(store, camera)?;
    let to = store
        .user_by_email(to_email)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {to_email}"))?;
    Ok(store.transfer_camera(cam.id, to.household)?)
}

/// Factory reset: a new stream key and a new binding epoch; shares are dropped.
pub fn reset_camera(
    store: &dyn Store,
    camera: &str,
) -> anyhow::Result<(Camera, BindingEpoch, RawToken)> {
    let cam = camera_by_id_text(store, camera)?;
    let key = RawToken::generate();
    let epoch = store.reset_camera(cam.id, key.hash())?;
    Ok((cam, epoch, key))
}

/// Resolves a kill-switch target as the operator names it (`integration app`,
/// `household ID`, `camera ID`, `user EMAIL`).
pub fn suspension_target(
    store: &dyn Store,
    kind: &str,
    target: &str,
) -> anyhow::Result<(SuspensionKind, String)> {
    let kind = SuspensionKind::parse(kind).ok_or_else(|| {
        anyhow::anyhow!("kind must be one of integration, household, camera, user")
    })?;
    let target = match kind {
        SuspensionKind::User => store
            .user_by_email(target)?
            .ok_or_else(|| anyhow::anyhow!("no user with email {target}"))?
            .id
            .to_string(),
        SuspensionKind::Camera => camera_by_id_text(store, target)?.id.to_string(),
        SuspensionKind::Household | SuspensionKind::Integration => target.to_string(),
    };
    Ok((kind, target))
}
