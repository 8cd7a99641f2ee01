//! The cameras Hearth pulls (RTSP), as the rest of the server sees them: what
//! runs for each (a stop handle, never the source), what the API may show of
//! its source, and one status per rendition with the last error and when.
//! Errors are scrubbed of the camera's credentials before they are kept (a
//! camera or a library may echo them). Data only: the tasks that fill it are
//! `crate::ingest::rtsp`'s, so the state can hold it without knowing ingest.

use hearth_access::sealed::SecretBox;
use hearth_model::{AgentId, CameraId, Rendition, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullState {
    /// Signing in, setting up, or waiting for the first frame.
    Connecting,
    /// Frames are arriving.
    Online,
    /// The camera refused the user name or password (401 or 403).
    AuthFailed,
    /// Nothing answers at the camera's address.
    Unreachable,
    /// The camera offers no H.264 video (H.265, MJPEG...).
    UnsupportedCodec,
}

impl PullState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Online => "online",
            Self::AuthFailed => "auth_failed",
            Self::Unreachable => "unreachable",
            Self::UnsupportedCodec => "unsupported_codec",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullStatus {
    pub state: PullState,
    /// When the camera entered `state`.
    pub since: UnixMillis,
    pub last_error: Option<(UnixMillis, String)>,
}

/// Every pulled camera's status, per rendition.
#[derive(Default)]
pub struct Statuses(Mutex<HashMap<(CameraId, Rendition), PullStatus>>);

impl Statuses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(CameraId, Rendition), PullStatus>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, camera: CameraId, rendition: Rendition) -> Option<PullStatus> {
        self.lock().get(&(camera, rendition)).cloned()
    }

    /// Moves to `state` (keeping `since` if it is the same state), recording
    /// `error` as the last error if there is one.
    pub fn set(
        &self,
        camera: CameraId,
        rendition: Rendition,
        state: PullState,
        error: Option<String>,
        now: UnixMillis,
    ) {
        let mut all = self.lock();
        let entry = all.entry((camera, rendition)).or_insert(PullStatus {
            state,
            since: now,
            last_error: None,
        });
        if entry.state != state {
            entry.state = state;
            entry.since = now;
        }
        if let Some(e) = error {
            entry.last_error = Some((now, e));
        }
    }

    pub fn remove(&self, camera: CameraId) {
        self.lock().retain(|(c, _), _| *c != camera);
    }
}

/// `text` with every occurrence of the given secrets replaced.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s, "***");
    }
    out
}

/// The pulled cameras of this process.
pub struct Pulls {
    pub statuses: Statuses,
    sealer: SecretBox,
    running: Mutex<HashMap<CameraId, Running>>,
    /// One sync at a time.
    pub syncing: tokio::sync::Mutex<()>,
    /// When each home agent last reported.
    agents_seen: Mutex<HashMap<AgentId, UnixMillis>>,
    /// Bumped whenever what runs changes (home agents wait on it).
    pub changed: watch::Sender<u64>,
    /// `[pull] private_addresses`: whether this server pulls cameras at
    /// private addresses (a household's box: yes; a cloud node: no).
    private_addresses: std::sync::atomic::AtomicBool,
}

pub struct Running {
    pub sealed: Vec<u8>,
    /// The home agent that pulls the camera (`None`: this server does).
    pub agent: Option<AgentId>,
    /// What the API shows of the source.
    pub host: String,
    /// Dropping it stops the camera's tasks.
    pub stop: watch::Sender<bool>,
}

impl Pulls {
    pub fn new(keys: &hearth_access::MediaKeys) -> Self {
        Self {
            statuses: Statuses::default(),
            sealer: SecretBox::camera_sources(keys),
            running: Mutex::default(),
            syncing: tokio::sync::Mutex::default(),
            agents_seen: Mutex::default(),
            changed: watch::Sender::new(0),
            private_addresses: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// See [`Pulls::private_addresses`] (set once, at start).
    pub fn set_private_addresses(&self, allowed: bool) {
        self.private_addresses
            .store(allowed, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn private_addresses(&self) -> bool {
        self.private_addresses
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The box sources are sealed in for the store.
    pub fn sealer(&self) -> &SecretBox {
        &self.sealer
    }

    /// What runs, by camera.
    pub fn running(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `host:port` of a pulled camera's source (`None`: a push camera).
    pub fn source_host(&self, camera: CameraId) -> Option<String> {
        self.running().get(&camera).map(|r| r.host.clone())
    }

    /// The home agent that pulls `camera`, if one does.
    pub fn agent_of(&self, camera: CameraId) -> Option<AgentId> {
        self.running().get(&camera).and_then(|r| r.agent)
    }

    /// The cameras `agent` pulls, with their sealed sources.
    pub fn agent_cameras(&self, agent: AgentId) -> Vec<(CameraId, Vec<u8>)> {
        let mut cams: Vec<_> = self
            .running()
            .iter()
            .filter(|(_, r)| r.agent == Some(agent))
            .map(|(c, r)| (*c, r.sealed.clone()))
            .collect();
        cams.sort_by_key(|(c, _)| *c);
        cams
    }

    /// `agent` reported at `now`.
    pub fn agent_seen(&self, agent: AgentId, now: UnixMillis) {
        self.agents_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(agent, now);
    }

    /// When `agent` last reported to this process.
    pub fn agent_last_seen(&self, agent: AgentId) -> Option<UnixMillis> {
        self.agents_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&agent)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_keeps_its_since_and_errors_are_kept() {
        let s = Statuses::default();
        let c = CameraId::random();
        s.set(
            c,
            Rendition::Main,
            PullState::Connecting,
            None,
            UnixMillis(1),
        );
        s.set(
            c,
            Rendition::Main,
            PullState::Connecting,
            Some("x".into()),
            UnixMillis(5),
        );
        let st = s.get(c, Rendition::Main).unwrap();
        assert_eq!((st.state, st.since), (PullState::Connecting, UnixMillis(1)));
        assert_eq!(st.last_error, Some((UnixMillis(5), "x".into())));
        s.set(c, Rendition::Main, PullState::Online, None, UnixMillis(9));
        let st = s.get(c, Rendition::Main).unwrap();
        assert_eq!((st.state, st.since), (PullState::Online, UnixMillis(9)));
        assert!(st.last_error.is_some(), "the last error stays visible");
        assert!(s.get(c, Rendition::Sub).is_none());
        s.remove(c);
        assert!(s.get(c, Rendition::Main).is_none());
        assert_eq!(
            scrub("401 for admin:hunter2", &["admin", "hunter2"]),
            "401 for ***:***"
        );
    }
}
