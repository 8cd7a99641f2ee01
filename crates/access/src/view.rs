//! The access view: who may view which camera at which binding epoch, in memory.
//!
//! Grants are self-contained, so revocation needs a second, live check: every media
//! request is checked against this view, which holds exactly the store's access
//! rule (household members and share holders, minus suspended users, cameras and
//! households) keyed by principal *and* camera *and* epoch, plus the suspended
//! integrations. It is rebuilt from the store whenever the store's generation
//! counter moves — polled every [`POLL_INTERVAL`], from this process or any other
//! (`hearth suspend`, `hearth camera transfer`...) — so a revocation, suspension,
//! transfer or reset refuses every request under an old grant within a fraction of
//! a second. Checking is a hash lookup; the database is never on the media path.
//! Until the first load succeeds, and whenever the store cannot be read, the view
//! denies (on doubt, deny).
//!
//! It holds the account links of the smart-display integrations (by the
//! [`Holder`] their grants carry): a linked grant opens the door only while its
//! link exists, is the viewer's, is of the grant's integration and includes the
//! camera (see [`Holder::of_link`]).
//!
//! Likewise the viewer keys (players and recorders that cannot send headers):
//! a restream grant opens the door only while its key exists, is the viewer's
//! and lists the camera (see [`Holder::of_viewer_key`]).
//!
//! It also holds the sessions that signed out (by the [`Holder`] digest their
//! grants carry) for as long as a grant bound to one could live, so signing out
//! stops that session's streams at once, in every process and across restarts.
//!
//! In a cluster, two more inputs: [`AccessView::wake`] (a change another node
//! announced on the control plane: reload now rather than at the next poll) and
//! [`AccessView::fence`] (the control plane is lost for longer than its lease:
//! this node can no longer confirm what it knows, so it denies everything, which
//! ends the live views at their next object or frame, until
//! [`AccessView::unfence`] and a fresh load from the store).

use crate::grant::{Grant, Holder};
use hearth_model::{BindingEpoch, CameraId, Integration, LinkId, UserId};
use hearth_store::{Store, SuspensionKind};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Snapshot {
    loaded: bool,
    generation: u64,
    allowed: HashMap<(UserId, CameraId), BindingEpoch>,
    /// Current epoch of every camera someone may view.
    epochs: HashMap<CameraId, BindingEpoch>,
    integrations_suspended: HashSet<String>,
    /// Signed-out sessions whose grants may still be live.
    ended_holders: HashSet<Holder>,
    /// Account links, by the holder their grants carry.
    links: HashMap<Holder, LinkEntry>,
    /// Viewer keys: (user, cameras), by the holder their grants carry.
    viewer_keys: HashMap<Holder, (UserId, HashSet<CameraId>)>,
}

/// One account link as the door sees it.
#[derive(Clone, Debug)]
pub struct LinkEntry {
    pub id: LinkId,
    pub integration: Integration,
    pub user: UserId,
    /// Consented cameras.
    pub cameras: HashSet<CameraId>,
}

/// Why a grant no longer opens the door.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    #[error("access to this camera was revoked or its binding changed")]
    Revoked,
    #[error("integration {0} is suspended")]
    IntegrationSuspended(&'static str),
    #[error("access state not loaded yet")]
    NotLoaded,
    #[error("the session that holds this grant has signed out")]
    SignedOut,
    #[error("the account link that holds this grant is gone or no longer includes the camera")]
    Unlinked,
    #[error("the viewer key that holds this grant was revoked or does not list the camera")]
    KeyRevoked,
}

#[derive(Default)]
pub struct AccessView {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Set while this node cannot confirm permissions: nothing is loaded.
    fenced: AtomicBool,
    /// Reload now (a change was announced, or the fence was lifted).
    wake: tokio::sync::Notify,
}

impl AccessView {
    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `grant` still opens the door right now.
    pub fn check(&self, grant: &Grant) -> Result<(), Denied> {
        let s = self.current();
        if !s.loaded {
            return Err(Denied::NotLoaded);
        }
        if s.ended_holders.contains(&grant.holder) {
            return Err(Denied::SignedOut);
        }
        if s.integrations_suspended
            .contains(grant.integration.as_str())
        {
            return Err(Denied::IntegrationSuspended(grant.integration.as_str()));
        }
        if grant.integration.is_linked() {
            match s.links.get(&grant.holder) {
                Some(l)
                    if l.integration == grant.integration
                        && l.user == grant.viewer
                        && l.cameras.contains(&grant.camera) => {}
                _ => return Err(Denied::Unlinked),
            }
        }
        if grant.integration == Integration::Restream {
            match s.viewer_keys.get(&grant.holder) {
                Some((user, cameras))
                    if *user == grant.viewer && cameras.contains(&grant.camera) => {}
                _ => return Err(Denied::KeyRevoked),
            }
        }
        match s.allowed.get(&(grant.viewer, grant.camera)) {
            Some(epoch) if *epoch == grant.epoch => Ok(()),
            _ => Err(Denied::Revoked),
        }
    }

    /// Whether the view has loaded (until then every grant is denied).
    pub fn is_loaded(&self) -> bool {
        self.current().loaded
    }

    pub fn integration_suspended(&self, integration: Integration) -> bool {
        self.current()
            .integrations_suspended
            .contains(integration.as_str())
    }

    /// Whether `user` may view `camera` at `epoch` right now (the store's rule,
    /// kill switches on users, cameras and households included).
    pub fn may_view(&self, user: UserId, camera: CameraId) -> Option<BindingEpoch> {
        let s = self.current();
        s.allowed.get(&(user, camera)).copied()
    }

    /// The links of `integration`, each with the consented cameras its user may
    /// still view (what the platform should list).
    pub fn links_of(&self, integration: Integration) -> Vec<LinkEntry> {
        let s = self.current();
        s.links
            .values()
            .filter(|l| l.integration == integration)
            .map(|l| LinkEntry {
                cameras: l
                    .cameras
                    .iter()
                    .filter(|c| s.allowed.contains_key(&(l.user, **c)))
                    .copied()
                    .collect(),
                ..l.clone()
            })
            .collect()
    }

    /// The user a live viewer key belongs to.
    pub fn viewer_key_user(&self, holder: &Holder) -> Option<UserId> {
        self.current().viewer_keys.get(holder).map(|(u, _)| *u)
    }

    /// The camera's current epoch, if anyone may view it.
    pub fn epoch_of(&self, camera: CameraId) -> Option<BindingEpoch> {
        self.current().epochs.get(&camera).copied()
    }

    /// Reload at once rather than at the next poll: another node announced a
    /// change.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Denies everything from now until [`AccessView::unfence`]: this node
    /// lost what confirms its permissions. Returns whether it was not fenced.
    pub fn fence(&self) -> bool {
        let was = self.fenced.swap(true, Ordering::SeqCst);
        self.clear();
        !was
    }

    /// Serves again, after a fresh load from the store (until then, denies).
    /// Returns whether it was fenced.
    pub fn unfence(&self) -> bool {
        let was = self.fenced.swap(false, Ordering::SeqCst);
        self.wake();
        was
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    fn clear(&self) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Snapshot::default());
    }

    /// Reloads if the store changed. Blocking: call off the runtime. While
    /// fenced, loads nothing.
    pub fn refresh(&self, store: &dyn Store) -> Result<bool, hearth_store::StoreError> {
        if self.is_fenced() {
            return Ok(false);
        }
        let generation = store.generation()?;
        let old = self.current();
        if old.loaded && old.generation == generation {
            return Ok(false);
        }
        let mut next = Snapshot {
            loaded: true,
            generation,
            ..Snapshot::default()
        };
        for (user, camera, epoch) in store.access_snapshot()? {
            next.allowed.insert((user, camera), epoch);
            next.epochs.insert(camera, epoch);
        }
        next.ended_holders = store
            .ended_grant_holders(crate::clock::now())?
            .into_iter()
            .map(Holder::from_bytes)
            .collect();
        for link in store.links()? {
            next.links.insert(
                Holder::of_link(link.id),
                LinkEntry {
                    id: link.id,
                    integration: link.integration,
                    user: link.user,
                    cameras: link.cameras.into_iter().collect(),
                },
            );
        }
        for k in store.viewer_keys()? {
            next.viewer_keys.insert(
                Holder::of_viewer_key(k.id),
                (k.user, k.cameras.into_iter().collect()),
            );
        }
        for s in store.suspensions()? {
            if s.kind == SuspensionKind::Integration {
                next.integrations_suspended.insert(s.target);
            }
        }
        // Checked under the lock that `fence` clears under: a fence raised
        // while this load ran wins, and what was read is dropped.
        let mut slot = self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.is_fenced() {
            return Ok(false);
        }
        *slot = Arc::new(next);
        Ok(true)
    }

    /// Keeps the view current until the process ends, polling the store every
    /// `every` and whenever woken; after each change, calls `on_change` (the
    /// server uses it to disconnect publishers of a past epoch).
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        on_change: impl Fn(&AccessView) + Send + 'static,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
            }
            let (view, store2) = (self.clone(), store.clone());
            match tokio::task::spawn_blocking(move || view.refresh(store2.as_ref())).await {
                Ok(Ok(true)) => on_change(&self),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "access view refresh failed; denying until it succeeds");
                    self.clear();
                }
                Err(e) => tracing::error!(error = %e, "access view refresh panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::{GrantId, RawToken, UnixMillis};
    use hearth_store::SqliteStore;

    fn grant(viewer: UserId, camera: CameraId, epoch: BindingEpoch) -> Grant {
        Grant {
            id: GrantId::random(),
            viewer,
            camera,
            epoch,
            integration: Integration::App,
            expires_at: UnixMillis(i64::MAX),
            holder: crate::grant::Holder::of_session("test session"),
        }
    }

    #[test]
    fn a_fenced_view_denies_everything_until_it_is_lifted_and_reloaded() {
        let store = SqliteStore::open_in_memory().unwrap();
        let h = store.create_household("a").unwrap();
        let a = store.create_user("a@x.y", "$argon2id$x", h.id).unwrap();
        let cam = store
            .create_camera(h.id, "c", "UTC", RawToken::generate().hash())
            .unwrap();
        let view = AccessView::default();
        view.refresh(&store).unwrap();
        let g = grant(a.id, cam.id, cam.epoch);
        assert_eq!(view.check(&g), Ok(()));
        assert!(view.fence(), "the first fence raises it");
        assert!(!view.fence(), "a second one finds it raised");
        assert_eq!(view.check(&g), Err(Denied::NotLoaded));
        // Nothing is loaded while fenced, even after a change.
        store.rename_camera(cam.id, "d").unwrap();
        assert!(!view.refresh(&store).unwrap());
        assert_eq!(view.check(&g), Err(Denied::NotLoaded));
        assert!(view.unfence());
        assert_eq!(
            view.check(&g),
            Err(Denied::NotLoaded),
            "not before a reload"
        );
        assert!(view.refresh(&store).unwrap());
        assert_eq!(view.check(&g), Ok(()));
        assert!(!view.unfence(), "it was not fenced");
    }

    #[test]
    fn a_signed_out_session_holds_no_grant() {
        let store = SqliteStore::open_in_memory().unwrap();
        let h = store.create_household("a").unwrap();
        let a = store.create_user("a@x.y", "$argon2id$x", h.id).unwrap();
        let cam = store
            .create_camera(h.id, "c", "UTC", RawToken::generate().hash())
            .unwrap();
        let view = AccessView::default();
        view.refresh(&store).unwrap();
        let g = grant(a.id, cam.id, cam.epoch);
        assert_eq!(view.check(&g), Ok(()));
        let now = crate::clock::now();
        store
            .sign_out(
                RawToken::generate().hash(),
                g.holder.to_bytes(),
                UnixMillis(now.0 + 60_000),
                now,
            )
            .unwrap();
        assert!(
            view.refresh(&store).unwrap(),
            "a sign-out moves the generation"
        );
        assert_eq!(view.check(&g), Err(Denied::SignedOut));
        // The same viewer's grant held by another session still opens.
        let other = Grant {
            holder: Holder::of_session("another session"),
            ..g
        };
        assert_eq!(view.check(&other), Ok(()));
    }

    #[test]
    fn a_restream_grant_opens_only_while_its_key_lives_and_lists_the_camera() {
        let store = SqliteStore::open_in_memory().unwrap();
        let h = store.create_household("a").unwrap();
        let a = store.create_user("a@x.y", "$argon2id$x", h.id).unwrap();
        let hb = store.create_household("b").unwrap();
        let b = store.create_user("b@x.y", "$argon2id$x", hb.id).unwrap();
        let cam = store
            .create_camera(h.id, "c", "UTC", RawToken::generate().hash())
            .unwrap();
        let other = store
            .create_camera(h.id, "d", "UTC", RawToken::generate().hash())
            .unwrap();
        let key = hearth_store::ViewerKey {
            id: hearth_model::ViewerKeyId::random(),
            user: a.id,
            name: "vlc".into(),
            cameras: vec![cam.id],
            created_at: UnixMillis(0),
        };
        store.create_viewer_key(&key).unwrap();
        let view = AccessView::default();
        view.refresh(&store).unwrap();
        let holder = Holder::of_viewer_key(key.id);
        assert_eq!(view.viewer_key_user(&holder), Some(a.id));
        let g = Grant {
            integration: Integration::Restream,
            holder,
            ..grant(a.id, cam.id, cam.epoch)
        };
        assert_eq!(view.check(&g), Ok(()));
        let unlisted = Grant {
            camera: other.id,
            ..g
        };
        assert_eq!(view.check(&unlisted), Err(Denied::KeyRevoked));
        let someone_else = Grant { viewer: b.id, ..g };
        assert_eq!(view.check(&someone_else), Err(Denied::KeyRevoked));
        let no_key = Grant {
            holder: Holder::of_viewer_key(hearth_model::ViewerKeyId::random()),
            ..g
        };
        assert_eq!(view.check(&no_key), Err(Denied::KeyRevoked));
        assert!(store.delete_viewer_key(a.id, key.id).unwrap());
        assert!(view.refresh(&store).unwrap());
        assert_eq!(view.check(&g), Err(Denied::KeyRevoked));
        assert_eq!(view.viewer_key_user(&holder), None);
    }

    #[test]
    fn follows_shares_suspensions_and_epochs() {
        let store = SqliteStore::open_in_memory().unwrap();
        let ha = store.create_household("a").unwrap();
        let hb = store.create_household("b").unwrap();
        let a = store.create_user("a@x.y", "$argon2id$x", ha.id).unwrap();
        let b = store.create_user("b@x.y", "$argon2id$x", hb.id).unwrap();
        let cam = store
            .create_camera(ha.id, "c", "UTC", RawToken::generate().hash())
            .unwrap();
        let view = AccessView::default();
        let ga = grant(a.id, cam.id, cam.epoch);
        let gb = grant(b.id, cam.id, cam.epoch);
        assert_eq!(view.check(&ga), Err(Denied::NotLoaded), "deny until loaded");

        assert!(view.refresh(&store).unwrap());
        assert!(!view.refresh(&store).unwrap(), "no change, no reload");
        assert_eq!(view.check(&ga), Ok(()));
        assert_eq!(view.check(&gb), Err(Denied::Revoked));

        store.share_camera(cam.id, b.id, UnixMillis(0)).unwrap();
        view.refresh(&store).unwrap();
        assert_eq!(view.check(&gb), Ok(()));
        store.unshare_camera(cam.id, b.id).unwrap();
        view.refresh(&store).unwrap();
        assert_eq!(view.check(&gb), Err(Denied::Revoked));

        store
            .suspend(SuspensionKind::Integration, "app", "test", UnixMillis(0))
            .unwrap();
        view.refresh(&store).unwrap();
        assert_eq!(view.check(&ga), Err(Denied::IntegrationSuspended("app")));
        store.resume(SuspensionKind::Integration, "app").unwrap();
        store
            .suspend(
                SuspensionKind::Camera,
                &cam.id.to_string(),
                "test",
                UnixMillis(0),
            )
            .unwrap();
        view.refresh(&store).unwrap();
        assert_eq!(view.check(&ga), Err(Denied::Revoked));
        store
            .resume(SuspensionKind::Camera, &cam.id.to_string())
            .unwrap();
        view.refresh(&store).unwrap();
        assert_eq!(view.check(&ga), Ok(()));

        let new_epoch = store
            .transfer_camera(cam.id, hb.id, RawToken::generate().hash())
            .unwrap();
        view.refresh(&store).unwrap();
        assert_eq!(
            view.check(&ga),
            Err(Denied::Revoked),
            "old owner, old epoch"
        );
        assert_eq!(
            view.check(&gb),
            Err(Denied::Revoked),
            "new owner, old epoch"
        );
        assert_eq!(view.check(&grant(b.id, cam.id, new_epoch)), Ok(()));
        assert_eq!(view.epoch_of(cam.id), Some(new_epoch));
    }
}
