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
    let wanted: HashMap<CameraId, Vec<u8>> = sources.into_iter().collect();
    let stopped: Vec<CameraId> = {
        let mut running = pulls.running();
        let gone: Vec<CameraId> = running
            .iter()
            .filter(|(c, r)| wanted.get(c) != Some(&r.sealed))
            .map(|(c, _)| *c)
            .collect();
        for c in &gone {
            running.remove(c);
        }
        gone
    };
    for camera in stopped {
        if !wanted.contains_key(&camera) {
            pulls.statuses.remove(camera);
            tracing::info!(?camera, "rtsp pull stopped");
        }
    }
    for (camera, sealed) in wanted {
        if pulls.running().contains_key(&camera) {
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
        pulls
            .running()
            .insert(camera, Running { sealed, host, stop });
    }
    Ok(())
}

/// Pulls one rendition until `stop` is set or dropped, trying again after
/// every failure.
async fn pull(
    state: AppState,
    camera: CameraId,
    rendition: Rendition,
    source: Arc<RtspSource>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = backoff::Backoff::default();
    let mut last_state = None;
    loop {
        let ended = session::Attempt {
            state: &state,
            camera,
            rendition,
            source: &source,
            stop: &mut stop,
        }
        .run()
        .await;
        if stop.has_changed().unwrap_or(true) {
            return;
        }
        state.pulls.statuses.set(
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
