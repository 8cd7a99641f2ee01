//! Placement: which node ingests which camera rendition, as a lease in a
//! JetStream key-value bucket (NATS does the consensus; Hearth keeps none).
//!
//! - A node takes a camera's rendition with `create` (fails while another
//!   node's value is there) before it accepts a publisher or starts a pull.
//! - It renews every quarter lease with `update` on the revision it last wrote
//!   (compare-and-set): a renewal that finds another revision, or none confirmed
//!   for half the lease, means the lease is lost and the publisher is dropped at
//!   once, before the key can expire and another node take it.
//! - The bucket's `max_age` is the lease: a node that dies (or loses NATS)
//!   stops renewing, its key expires, and the camera's next connection (or the
//!   puller on another node) takes it.
//! - Released with a delete on the last revision when the publisher goes.
//!
//! Every node also follows the bucket (a watch) to know where each camera is
//! ingested without asking: the edge relay ([`super::relay`]) fetches a camera
//! from the node that holds it. A holder seen renewing within the lease is
//! current; expiry by `max_age` leaves no marker, so staleness is judged here.

use async_nats::jetstream::kv;
use bytes::Bytes;
use hearth_model::{CameraId, Rendition};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, watch};

/// The bucket's name.
pub const BUCKET: &str = "hearth_placement";

/// Who holds a camera's rendition: the value of its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub node: String,
    /// Where other nodes fetch the camera from (the node's HTTP listener).
    pub internal_url: String,
}

/// Why a node may not ingest a camera now.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("ingested by node {0}")]
    Held(String),
    #[error("placement unavailable (NATS): {0}")]
    Unavailable(String),
}

fn key(camera: CameraId, rendition: Rendition) -> String {
    format!("{camera}.{}", rendition.as_str())
}

fn parse_key(key: &str) -> Option<(CameraId, Rendition)> {
    let (camera, rendition) = key.split_once('.')?;
    let rendition = match rendition {
        "main" => Rendition::Main,
        "sub" => Rendition::Sub,
        _ => return None,
    };
    Some((camera.parse().ok()?, rendition))
}

/// This node's side of placement.
pub struct Placement {
    js: async_nats::jetstream::Context,
    kv: OnceCell<kv::Store>,
    me: Holder,
    value: Bytes,
    lease: Duration,
    /// What the watch saw: key → holder, last renewal seen.
    seen: Mutex<HashMap<(CameraId, Rendition), (Holder, Instant)>>,
}

impl Placement {
    pub fn new(client: async_nats::Client, me: Holder, lease: Duration) -> Arc<Self> {
        let value = Bytes::from(serde_json::to_vec(&me).expect("a holder serializes"));
        Arc::new(Self {
            js: async_nats::jetstream::new(client),
            kv: OnceCell::new(),
            me,
            value,
            lease,
            seen: Mutex::default(),
        })
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The bucket, made on first use (NATS may be down when the node starts).
    async fn kv(&self) -> Result<&kv::Store, Refused> {
        let open = async {
            let config = kv::Config {
                bucket: BUCKET.into(),
                description: "which Hearth node ingests which camera".into(),
                history: 1,
                max_age: self.lease,
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            };
            match self.js.create_key_value(config).await {
                Ok(kv) => Ok(kv),
                // Made by a node with another lease: use it as it is.
                Err(_) => self
                    .js
                    .get_key_value(BUCKET)
                    .await
                    .map_err(|e| Refused::Unavailable(e.to_string())),
            }
        };
        self.kv
            .get_or_try_init(|| async {
                tokio::time::timeout(self.lease / 2, open)
                    .await
                    .map_err(|_| Refused::Unavailable("timed out".into()))?
            })
            .await
    }

    /// Takes `camera`'s `rendition` for this node, or says who has it.
    pub async fn acquire(
        self: &Arc<Self>,
        camera: CameraId,
        rendition: Rendition,
    ) -> Result<Lease, Refused> {
        let kv = self.kv().await?.clone();
        let key = key(camera, rendition);
        let created = tokio::time::timeout(self.lease / 2, kv.create(&key, self.value.clone()))
            .await
            .map_err(|_| Refused::Unavailable("timed out".into()))?;
        match created {
            Ok(revision) => Ok(Lease::start(self.clone(), kv, key, revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = kv
                    .entry(key.as_str())
                    .await
                    .ok()
                    .flatten()
                    .and_then(|e| serde_json::from_slice::<Holder>(&e.value).ok())
                    .map_or_else(|| "(unknown)".to_string(), |h| h.node);
                Err(Refused::Held(holder))
            }
            Err(e) => Err(Refused::Unavailable(e.to_string())),
        }
    }

    /// The node ingesting `camera`'s `rendition`, as last seen renewing within
    /// the lease (never this node: it has the hub).
    pub fn holder(&self, camera: CameraId, rendition: Rendition) -> Option<Holder> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&(camera, rendition))
            .filter(|(h, at)| at.elapsed() < self.lease && *h != self.me)
            .map(|(h, _)| h.clone())
    }

    /// Follows the bucket until the process ends (again after every break).
    pub async fn follow(self: Arc<Self>) {
        use futures_util::StreamExt;
        loop {
            let watch = match self.kv().await {
                Ok(kv) => kv.watch_all().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match watch {
                Ok(mut entries) => {
                    while let Some(entry) = entries.next().await {
                        let Ok(entry) = entry else { break };
                        let Some(at) = parse_key(&entry.key) else {
                            continue;
                        };
                        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                        match entry.operation {
                            kv::Operation::Put => {
                                if let Ok(h) = serde_json::from_slice::<Holder>(&entry.value) {
                                    seen.insert(at, (h, Instant::now()));
                                }
                            }
                            kv::Operation::Delete | kv::Operation::Purge => {
                                seen.remove(&at);
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "placement not followed; trying again"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// A camera rendition held by this node; released when dropped.
pub struct Lease {
    placement: Arc<Placement>,
    kv: kv::Store,
    key: String,
    revision: Arc<AtomicU64>,
    lost: watch::Receiver<bool>,
    renew: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn start(placement: Arc<Placement>, kv: kv::Store, key: String, revision: u64) -> Self {
        let revision = Arc::new(AtomicU64::new(revision));
        let (tx, lost) = watch::channel(false);
        let renew = tokio::spawn(renew(
            kv.clone(),
            key.clone(),
            placement.value.clone(),
            revision.clone(),
            placement.lease,
            tx,
        ));
        Self {
            placement,
            kv,
            key,
            revision,
            lost,
            renew,
        }
    }

    /// Resolves once the lease is lost (the holder must stop at once).
    pub async fn lost(&mut self) {
        // An ended renewal task without a verdict is a lost lease too.
        let _ = self.lost.wait_for(|lost| *lost).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renew.abort();
        if *self.lost.borrow() {
            return;
        }
        let (kv, key) = (self.kv.clone(), std::mem::take(&mut self.key));
        let revision = self.revision.load(Ordering::Acquire);
        let lease = self.placement.lease;
        tokio::spawn(async move {
            // Only our own revision: never another node's lease.
            let deleted = tokio::time::timeout(
                lease / 2,
                kv.delete_expect_revision(key.as_str(), Some(revision)),
            )
            .await;
            if !matches!(deleted, Ok(Ok(()))) {
                tracing::debug!(key, "placement not released; it expires with the lease");
            }
        });
    }
}

async fn renew(
    kv: kv::Store,
    key: String,
    value: Bytes,
    revision: Arc<AtomicU64>,
    lease: Duration,
    lost: watch::Sender<bool>,
) {
    let every = lease / 4;
    let mut confirmed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        let rev = revision.load(Ordering::Acquire);
        match tokio::time::timeout(every, kv.update(key.as_str(), value.clone(), rev)).await {
            Ok(Ok(next)) => {
                revision.store(next, Ordering::Release);
                confirmed = sent;
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::warn!(
                    key,
                    "placement lease taken or expired: stopping this camera here"
                );
                let _ = lost.send(true);
                return;
            }
            Ok(Err(_)) | Err(_) if confirmed.elapsed() >= lease / 2 => {
                tracing::warn!(
                    key,
                    ?lease,
                    "placement lease not renewed for half the lease: stopping this camera here"
                );
                let _ = lost.send(true);
                return;
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_a_camera_and_a_rendition() {
        let c = CameraId::random();
        assert_eq!(
            parse_key(&key(c, Rendition::Sub)),
            Some((c, Rendition::Sub))
        );
        assert_eq!(
            parse_key(&key(c, Rendition::Main)),
            Some((c, Rendition::Main))
        );
        assert_eq!(parse_key("nope.main"), None);
        assert_eq!(parse_key(&format!("{c}.other")), None);
    }
}
