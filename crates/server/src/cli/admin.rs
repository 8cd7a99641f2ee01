//! Operator commands that work directly on the data directory's database. They are
//! safe to run while the server is up (SQLite WAL); the server reads users and
//! cameras from the store when it needs them, so it picks changes up without a
//! restart.

use crate::api::admin::{camera_by_id_text, record_admin};
use crate::ingest::rtsp::source::RtspSource;
use hearth_access::sealed::SecretBox;
use hearth_model::BindingEpoch;
use hearth_model::RawToken;
use hearth_store::{Camera, Store, User};

/// Creates a user with a household of their own.
pub fn add_user(store: &dyn Store, email: &str, password: &str) -> anyhow::Result<User> {
    let email = email.trim();
    if !email.contains('@') || email.len() > 320 {
        anyhow::bail!("{email:?} is not an email address");
    }
    if !hearth_access::password::long_enough(password) {
        anyhow::bail!(
            "password must have at least {} characters",
            hearth_access::password::MIN_PASSWORD_CHARS
        );
    }
    if store.user_by_email(email)?.is_some() {
        anyhow::bail!("a user with email {email} exists already");
    }
    let hash =
        hearth_access::password::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let household = store.create_household(email)?;
    Ok(store.create_user(email, &hash, household.id)?)
}

/// Creates a camera in `owner`'s household, pulled from `source` if given
/// (sealed with `sealer`). Returns it with its stream key, which is shown once
/// and stored only as a hash.
pub fn add_camera(
    store: &dyn Store,
    owner: &str,
    name: &str,
    timezone: &str,
    source: Option<(&RtspSource, &SecretBox)>,
) -> anyhow::Result<(Camera, RawToken)> {
    let user = store
        .user_by_email(owner)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {owner}"))?;
    let added =
        crate::ingest::onboard::add_camera(store, user.household, name, timezone, source, None)?;
    Ok((added.camera, added.stream_key))
}

/// Gives a camera a new stream key; the old one stops working at once.
pub fn rotate_stream_key(store: &dyn Store, camera: &Camera) -> anyhow::Result<RawToken> {
    Ok(crate::ingest::onboard::rotate_stream_key(store, camera)?)
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

/// Moves a camera to another user's household. Its binding epoch goes up: every
/// grant, key and share of the old epoch stops working, and its publisher must
/// reconnect. It gets a new stream key (returned, to provision the camera for
/// its new owner): the previous household's publisher cannot reach the new one.
pub fn transfer_camera(
    store: &dyn Store,
    camera: &str,
    to_email: &str,
) -> anyhow::Result<(BindingEpoch, RawToken)> {
    let cam = camera_by_id_text(store, camera)?;
    let to = store
        .user_by_email(to_email)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {to_email}"))?;
    let key = RawToken::generate();
    let epoch = store.transfer_camera(cam.id, to.household, key.hash())?;
    record_admin(
        store,
        "transfer",
        Some(cam.id),
        serde_json::json!({"to": to.id, "epoch": epoch}),
    )?;
    Ok((epoch, key))
}

/// Factory reset: a new stream key and a new binding epoch; shares are dropped.
pub fn reset_camera(
    store: &dyn Store,
    camera: &str,
) -> anyhow::Result<(Camera, BindingEpoch, RawToken)> {
    let cam = camera_by_id_text(store, camera)?;
    let key = RawToken::generate();
    let epoch = store.reset_camera(cam.id, key.hash())?;
    record_admin(
        store,
        "reset",
        Some(cam.id),
        serde_json::json!({"epoch": epoch}),
    )?;
    Ok((cam, epoch, key))
}

/// Checks an operator's registration of an integration's OAuth client.
pub fn oauth_client(
    integration: &str,
    client_id: &str,
    secret: &str,
    redirect_uris: Vec<String>,
) -> anyhow::Result<hearth_store::OAuthClient> {
    let integration = hearth_model::Integration::parse(integration)
        .filter(|i| i.is_linked())
        .ok_or_else(|| anyhow::anyhow!("integration must be google or alexa"))?;
    anyhow::ensure!(
        !client_id.trim().is_empty() && client_id.len() <= 256,
        "--client-id must be 1 to 256 characters"
    );
    anyhow::ensure!(
        secret.len() >= crate::integrations::oauth::MIN_CLIENT_SECRET_LEN,
        "the client secret must be at least {} characters (generate one: openssl rand -base64 32)",
        crate::integrations::oauth::MIN_CLIENT_SECRET_LEN
    );
    for u in &redirect_uris {
        // http only to this machine: the authority must be exactly a loopback host.
        let loopback = u.strip_prefix("http://").is_some_and(|rest| {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let host = match authority.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => authority,
            };
            host == "127.0.0.1" || host == "localhost" || host == "[::1]"
        });
        let ok = (u.starts_with("https://") && !u.contains('@')) || loopback;
        anyhow::ensure!(
            ok && !u.contains('#') && !u.chars().any(char::is_whitespace),
            "redirect URI {u:?} must be https:// (http only on loopback), without a fragment"
        );
    }
    Ok(hearth_store::OAuthClient {
        integration,
        client_id: client_id.to_string(),
        secret_hash: crate::integrations::oauth::secret_hash(secret),
        redirect_uris,
        created_at: hearth_access::clock::now(),
    })
}

/// `--since`: unix milliseconds or an RFC 3339 time; default: the beginning.
pub fn parse_since(since: Option<&str>) -> anyhow::Result<hearth_model::UnixMillis> {
    let Some(s) = since else {
        return Ok(hearth_model::UnixMillis(0));
    };
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(hearth_model::UnixMillis(ms));
    }
    let t: jiff::Timestamp = s
        .parse()
        .map_err(|e| anyhow::anyhow!("--since {s:?}: {e}"))?;
    Ok(hearth_model::UnixMillis(t.as_millisecond()))
}

fn emails(
    store: &dyn Store,
) -> anyhow::Result<std::collections::HashMap<hearth_model::UserId, String>> {
    Ok(store
        .list_users()?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect())
}

/// `hearth audit views`: every view of one camera.
pub fn audit_views(
    store: &dyn Store,
    camera: &str,
    since: hearth_model::UnixMillis,
) -> anyhow::Result<String> {
    use std::fmt::Write;
    // A deleted camera's history stays readable by its id.
    let id: hearth_model::CameraId = camera
        .parse()
        .map_err(|_| anyhow::anyhow!("{camera:?} is not a camera id"))?;
    let name = store
        .camera_by_id(id)?
        .map_or_else(|| "deleted".to_string(), |c| c.name);
    let emails = emails(store)?;
    let mut records = store.audit_for_camera(id, since, None, u32::MAX)?;
    records.reverse();
    let mut out = format!("views of camera {id} ({name})\n");
    for r in records {
        let e = r.event;
        if !matches!(
            e.kind.as_str(),
            "grant_issued" | "view_start" | "view_end" | "snapshot_served"
        ) {
            continue;
        }
        let who = e
            .user
            .map(|u| emails.get(&u).cloned().unwrap_or_else(|| u.to_string()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {:<16} {:<28} {:<6} {}",
            hearth_access::clock::rfc3339(e.at),
            e.kind,
            who,
            e.integration.unwrap_or_default(),
            e.detail
        );
    }
    Ok(out)
}

/// `hearth audit exposure`: for each camera, every principal that was sent its
/// bytes (and whether a grant for that principal and camera was issued), and every
/// isolation violation that was blocked — what an operator needs to tell each user
/// whether their footage was seen.
pub fn audit_exposure(
    store: &dyn Store,
    since: hearth_model::UnixMillis,
) -> anyhow::Result<String> {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt::Write;
    let emails = emails(store)?;
    let name = |u: &hearth_model::UserId| emails.get(u).cloned().unwrap_or_else(|| u.to_string());
    let records = store.audit_since(since)?;
    let mut out = String::new();
    for cam in store.list_cameras()? {
        let mut sent: BTreeMap<String, (u64, BTreeSet<String>, bool)> = BTreeMap::new();
        let mut granted: BTreeSet<hearth_model::UserId> = BTreeSet::new();
        let mut blocked: Vec<String> = Vec::new();
        for r in &records {
            let e = &r.event;
            let mine = e.camera == Some(cam.id);
            match e.kind.as_str() {
                "grant_issued" if mine => {
                    granted.extend(e.user);
                }
                "view_start" | "view_end" | "snapshot_served" if mine => {
                    if let Some(u) = e.user {
                        let entry = sent.entry(name(&u)).or_insert((0, BTreeSet::new(), false));
                        entry.0 += e.detail["bytes"].as_u64().unwrap_or(0);
                        entry.1.extend(e.integration.clone());
                        entry.2 = granted.contains(&u);
                    }
                }
                "isolation_violation" if e.detail["object_camera"] == serde_json::json!(cam.id) => {
                    blocked.push(format!(
                        "{} to {} (grant for camera {})",
                        hearth_access::clock::rfc3339(e.at),
                        e.user.map(|u| name(&u)).unwrap_or_default(),
                        e.detail["grant_camera"].as_str().unwrap_or("?")
                    ));
                }
                _ => {}
            }
        }
        let _ = writeln!(out, "camera {} ({})", cam.id, cam.name);
        if sent.is_empty() {
            let _ = writeln!(out, "  sent to: nobody");
        }
        for (who, (bytes, via, had_grant)) in &sent {
            let via: Vec<&str> = via.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "  sent to {who}: {bytes} bytes via {} — {}",
                via.join(","),
                if *had_grant {
                    "matches an issued grant"
                } else {
                    "NO MATCHING GRANT"
                }
            );
        }
        let _ = writeln!(out, "  isolation violations blocked: {}", blocked.len());
        for b in blocked.iter().take(20) {
            let _ = writeln!(out, "    {b}");
        }
        if blocked.len() > 20 {
            let _ = writeln!(out, "    ... and {} more", blocked.len() - 20);
        }
    }
    Ok(out)
}
