//! RTSP pull: cameras on the network that Hearth connects to (most IP cameras in
//! homes and shops are RTSP servers with a main and a sub stream).
//!
//! - [`source`]: what an owner gives (URLs, user name, password), sealed at rest.
//! - [`session`]: one attempt at one rendition, with retina, into the hub.
//! - [`backoff`]: when to try again (sans-IO).
//!
//! [`sync`] keeps one task per pulled rendition, matched to the store (what
//! runs and each one's status are in `crate::pulls`, `online`, `connecting`,
//! `auth_failed`, `unreachable`, `unsupported_codec`, for the API): the
//! sources live (sealed) in the store's `camera_sources`, and every change there
//! bumps the store's generation, so a camera added through the API, the admin
//! CLI or another process is picked up on the access view's next poll.

pub mod address;
pub mod backoff;
pub mod session;
pub mod source;

use crate::pulls::{PullState, Running};
use crate::state::AppState;
use hearth_model::{CameraId, Rendition};
use source::RtspSource;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Starts, restarts and stops pulls to match the store's sources.
pub async fn sync(state: &AppState) -> anyhow::Result<()> {
    let pulls = &state.pulls;
    let _one = pulls.syncing.lock().await;
    let sources = state.db(|s| s.camera_sources()).await?;
    let wanted: HashMap<CameraId, (Vec<u8>, Option<hearth_model::AgentId>)> = sources
        .into_iter()
        .map(|s| (s.camera, (s.sealed, s.agent)))
        .collect();
    let stopped: Vec<CameraId> = {
        let mut running = pulls.running();
        let gone: Vec<CameraId> = running
            .iter()
            .filter(|(c, r)| wanted.get(c) != Some(&(r.sealed.clone(), r.agent)))
            .map(|(c, _)| *c)
            .collect();
        for c in &gone {
            running.remove(c);
        }
        gone
    };
    let mut changed = !stopped.is_empty();
    for camera in stopped {
        if !wanted.contains_key(&camera) {
            pulls.statuses.remove(camera);
            tracing::info!(?camera, "rtsp pull stopped");
        }
    }
    for (camera, (sealed, agent)) in wanted {
        if pulls.running().contains_key(&camera) {
            continue;
        }
        changed = true;
        if let Some(agent) = agent {
            // A home agent pulls it: nothing runs here, its reports fill the
            // statuses. The host shown is read from the source as for ours.
            let host = pulls
                .sealer()
                .open(camera, &sealed)
                .ok()
                .and_then(|b| RtspSource::from_bytes(&b))
                .map_or_else(|| "(unreadable)".into(), |s| s.describe());
            let (stop, _) = watch::channel(false);
            pulls.statuses.remove(camera);
            pulls.running().insert(
                camera,
                Running {
                    sealed,
                    agent: Some(agent),
                    host,
                    stop,
                },
            );
            tracing::info!(?camera, ?agent, "camera pulled by a home agent");
            continue;
        }
        let source = pulls
            .sealer()
            .open(camera, &sealed)
            .ok()
            .and_then(|b| RtspSource::from_bytes(&b));
        let (stop, stopped) = watch::channel(false);
        let host = source
            .as_ref()
            .map_or_else(|| "(unreadable)".into(), RtspSource::describe);
        match source {
            Some(source) => {
                let source = Arc::new(source);
                for rendition in [Rendition::Main, Rendition::Sub] {
                    if source.url(rendition).is_some() {
                        tokio::spawn(pull(
                            state.clone(),
                            camera,
                            rendition,
                            source.clone(),
                            stopped.clone(),
                        ));
                    }
                }
                tracing::info!(?camera, source = %host, "rtsp pull started");
            }
            None => {
                tracing::error!(
                    ?camera,
                    "a stored camera source does not open (another master key?)"
                );
                pulls.statuses.set(
                    camera,
                    Rendition::Main,
                    PullState::Connecting,
                    Some("the stored source does not open; enter it again".into()),
                    hearth_access::clock::now(),
                );
            }
        }
        pulls.running().insert(
            camera,
            Running {
                sealed,
                agent: None,
                host,
                stop,
            },
        );
    }
    if changed {
        pulls.changed.send_modify(|v| *v += 1);
    }
    Ok(())
}

/// Pulls one rendition into this server's hub until `stop` is set or dropped.
async fn pull(
    state: AppState,
    camera: CameraId,
    rendition: Rendition,
    source: Arc<RtspSource>,
    stop: watch::Receiver<bool>,
) {
    let open = || -> Result<Box<dyn session::FrameSink>, String> {
        let epoch = state
            .access
            .epoch_of(camera)
            .ok_or("the camera is not in the access view")?;
        let hub = state.hubs.get_or_create_rendition(camera, rendition);
        let publisher = hub
            .claim(epoch)
            .map_err(|e| format!("another source is live: {e}"))?;
        Ok(Box::new(publisher))
    };
    let private = state.pulls.private_addresses();
    let statuses = &state.pulls.statuses;
    let Some(cluster) = state.cluster.get() else {
        pull_loop(statuses, camera, rendition, &source, stop, &open, private).await;
        return;
    };
    // In a cluster the node holding the camera's placement pulls it; the
    // others wait for the lease to be free (its holder gone or stopped).
    let placement = cluster.placement();
    let mut stop = stop;
    loop {
        let mut lease = match placement.acquire(camera, rendition).await {
            Ok(lease) => lease,
            Err(e) => {
                let state = match e {
                    crate::cluster::placement::Refused::Held(_) => PullState::Connecting,
                    crate::cluster::placement::Refused::Unavailable(_) => PullState::Unreachable,
                };
                statuses.set(
                    camera,
                    rendition,
                    state,
                    Some(e.to_string()),
                    hearth_access::clock::now(),
                );
                tokio::select! {
                    () = tokio::time::sleep(placement.lease() / 2) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        tracing::info!(
            ?camera,
            rendition = rendition.as_str(),
            "rtsp pull placed on this node"
        );
        tokio::select! {
            () = pull_loop(statuses, camera, rendition, &source, stop.clone(), &open, private) => return,
            () = lease.lost() => {
                tracing::warn!(?camera, rendition = rendition.as_str(), "rtsp pull stopped here: placement lease lost");
            }
        }
    }
}

/// Pulls one rendition into the sinks `open` makes, trying again after every
/// failure, until `stop` is set or dropped (here and in a home agent).
pub async fn pull_loop(
    statuses: &crate::pulls::Statuses,
    camera: CameraId,
    rendition: Rendition,
    source: &RtspSource,
    mut stop: watch::Receiver<bool>,
    open: session::OpenSink<'_>,
    private_addresses: bool,
) {
    let mut backoff = backoff::Backoff::default();
    let mut last_state = None;
    loop {
        let ended = session::Attempt {
            statuses,
            camera,
            rendition,
            source,
            stop: &mut stop,
            open,
            private_addresses,
        }
        .run()
        .await;
        if stop.has_changed().unwrap_or(true) {
            return;
        }
        statuses.set(
            camera,
            rendition,
            ended.state,
            Some(ended.error.clone()),
            hearth_access::clock::now(),
        );
        let wait = backoff.next(ended.outcome, rand::random());
        if last_state != Some(ended.state) {
            tracing::warn!(?camera, rendition = rendition.as_str(), source = %source.describe(), state = ended.state.as_str(), error = %ended.error, retry_in = ?wait, "rtsp pull ended");
        } else {
            tracing::debug!(?camera, rendition = rendition.as_str(), error = %ended.error, retry_in = ?wait, "rtsp pull ended");
        }
        last_state = Some(ended.state);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
