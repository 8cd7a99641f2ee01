//! The one door out: every media byte that reaches a viewer passes through an
//! [`EgressGuard`].
//!
//! A guard can only be made by [`Door::open`], from a grant token that verifies,
//! is presented by its holder and still passes the live access check; and a
//! [`Delivery`] — the only thing the server can turn into a media response — can only
//! be made by [`EgressGuard::write`]. Immediately before making one the guard
//! compares the object's [`Provenance`] with the grant's camera and binding epoch; on
//! a mismatch nothing is delivered, the attempt is counted, logged and audited, and
//! the caller gets a [`Refusal`] with zero media bytes. Bodies are `Bytes` shared
//! with the hub: serving a segment to a thousand viewers copies no media.
//!
//! Frame-by-frame egress (RTSP, WebRTC next) goes through the same door: a driver
//! may send a video frame only as an [`AdmittedFrame`], which only
//! [`EgressGuard::admit_frame`] makes after checking the frame's stamp against the
//! grant.
//!
//! This module lives in its own crate so that the compiler keeps it apart from
//! the HTTP handlers and protocol drivers: none of them can build a `Delivery` or
//! an `AdmittedFrame` themselves.

use crate::audit::{self, Audit};
use crate::grant::{Grant, GrantKey, PresentedTag, VerifiedGrant};
use crate::keys::Stamper;
use crate::metrics::DoorMetrics;
use crate::relay::RelayClaim;
use crate::switches::{BenchSwitch, DoorSwitch};
use crate::view::AccessView;
use bytes::Bytes;
use hearth_media::VideoFrame;
use hearth_model::{Provenance, UnixMillis};
use std::sync::Arc;

/// What a media object is; decides content type and cache policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    MasterPlaylist,
    MediaPlaylist,
    InitSegment,
    Fmp4Segment,
    TsSegment,
    /// An AES-128 segment key.
    Key,
    Snapshot,
}

impl MediaKind {
    pub fn content_type(self) -> &'static str {
        match self {
            MediaKind::MasterPlaylist | MediaKind::MediaPlaylist => "application/vnd.apple.mpegurl",
            MediaKind::InitSegment | MediaKind::Fmp4Segment => "video/mp4",
            MediaKind::TsSegment => "video/mp2t",
            MediaKind::Snapshot => "image/jpeg",
            MediaKind::Key => "application/octet-stream",
        }
    }

    /// The `Cache-Control` a delivery of this kind carries.
    pub fn cache_control(self) -> &'static str {
        match self {
            // Segments never change once named; playlists and stills do.
            // Segments are encrypted per camera and epoch: any cache may keep them.
            MediaKind::Fmp4Segment | MediaKind::TsSegment => "public, max-age=3600, immutable",
            // The init segment is clear (as HLS requires): private, but immutable.
            MediaKind::InitSegment => "private, max-age=60, immutable",
            _ => "no-store",
        }
    }
}

/// An immutable piece of media with its provenance. Everything a viewer can receive
/// (playlists included: they name a camera's segments) is one of these.
#[derive(Debug)]
pub struct MediaObject {
    provenance: Provenance,
    kind: MediaKind,
    body: Bytes,
}

impl MediaObject {
    pub fn new(provenance: Provenance, kind: MediaKind, body: Bytes) -> Arc<Self> {
        Arc::new(Self {
            provenance,
            kind,
            body,
        })
    }

    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// For tests only: in the server, bytes leave through the door alone.
    #[cfg(any(test, feature = "test-support"))]
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// Why the door refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// Not a grant, expired, revoked, suspended, unlinked: the viewer gets a plain
    /// "forbidden".
    #[error("forbidden")]
    Forbidden,
    /// A valid grant presented without the session it was issued to.
    #[error("this stream grant belongs to another session")]
    NotHolder,
    /// The object or frame does not belong to the grant. The session ends; the
    /// connection is closed; nothing is retried.
    #[error("stream unavailable")]
    IsolationViolation,
}

/// Media the door let out to one viewer: the bytes and how to label them. The
/// server turns it into its protocol's response; nothing else can make one.
#[derive(Debug)]
pub struct Delivery {
    body: Bytes,
    kind: MediaKind,
}

impl Delivery {
    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    pub fn content_type(&self) -> &'static str {
        self.kind.content_type()
    }

    pub fn cache_control(&self) -> &'static str {
        self.kind.cache_control()
    }

    /// The bytes, shared with the hub (no copy).
    pub fn into_body(self) -> Bytes {
        self.body
    }
}

/// A video frame the door let out (see [`EgressGuard::admit_frame`]).
pub struct AdmittedFrame<'a>(&'a VideoFrame);

impl AdmittedFrame<'_> {
    pub fn frame(&self) -> &VideoFrame {
        self.0
    }
}

/// What every guard consults: the grant key, the live access view, the audit
/// writer and the door's counters. One per server.
pub struct Door {
    grant_key: GrantKey,
    access: Arc<AccessView>,
    audit: Arc<Audit>,
    metrics: Arc<DoorMetrics>,
    bench: BenchSwitch,
    switch: DoorSwitch,
}

impl Door {
    pub fn new(
        grant_key: GrantKey,
        access: Arc<AccessView>,
        audit: Arc<Audit>,
        metrics: Arc<DoorMetrics>,
        bench: BenchSwitch,
        switch: DoorSwitch,
    ) -> Arc<Self> {
        Arc::new(Self {
            grant_key,
            access,
            audit,
            metrics,
            bench,
            switch,
        })
    }

    pub fn grant_key(&self) -> &GrantKey {
        &self.grant_key
    }

    pub fn metrics(&self) -> &DoorMetrics {
        &self.metrics
    }

    /// Verifies a presented grant token and opens the door for it. `holder` is the
    /// session token the request carried, if any: a grant held by a session opens
    /// only with it; a linked display's grant (Google Home, Alexa) is held by its
    /// link, which the access view checks. `lookup` stands for the lookup that
    /// found the grant: the identity in production, a wrong answer under fault
    /// injection, which the guard then refuses.
    pub fn open(
        self: &Arc<Self>,
        token: &str,
        holder: Option<&str>,
        now: UnixMillis,
        lookup: impl FnOnce(VerifiedGrant) -> VerifiedGrant,
    ) -> Result<EgressGuard, Refusal> {
        // The tag as the request carried it, taken before any lookup.
        let (v, presented) = match self.grant_key.verify_presented(token, now) {
            Ok(v) => v,
            Err(e) => {
                // The token is a credential: log why, never the token itself.
                tracing::info!(reason = %e, "media request refused");
                self.metrics.grants_refused.inc();
                return Err(Refusal::Forbidden);
            }
        };
        let g = v.grant();
        // The grant is bound to the session that asked for it: a URL replayed by
        // anyone else (another account included) stops here. Not skipped by the
        // bench switch: it is part of the grant, not of the guard. A linked grant
        // (Google Home, Alexa) is fetched by a display that cannot send headers:
        // its holder is its account link, checked live by the access view below;
        // a restream grant's is its viewer key, likewise.
        if !g.integration.is_headerless() && !holder.is_some_and(|h| g.holder.is_presented_by(h)) {
            self.metrics.grant_replays_refused.inc();
            tracing::warn!(
                grant = ?g.id,
                viewer = ?g.viewer,
                camera = ?g.camera,
                session_presented = holder.is_some(),
                "media request refused: grant presented without its holder's session"
            );
            return Err(Refusal::NotHolder);
        }
        // Revocation, suspension and epoch changes, checked live (not under the
        // bench switch, a constant false without `bench-switches`).
        let access = if self.bench.unguarded() {
            Ok(())
        } else {
            self.access.check(g)
        };
        if let Err(denied) = access {
            tracing::info!(grant = ?g.id, reason = %denied, "media request refused");
            self.metrics.grants_refused.inc();
            return Err(Refusal::Forbidden);
        }
        Ok(EgressGuard {
            grant: lookup(v),
            presented,
            door: self.clone(),
        })
    }
}

/// The egress door for one request (or one frame-by-frame session) under one
/// verified grant.
pub struct EgressGuard {
    grant: VerifiedGrant,
    /// The grant token this request carried, read from the request itself.
    presented: PresentedTag,
    door: Arc<Door>,
}

impl EgressGuard {
    pub fn grant(&self) -> &Grant {
        self.grant.grant()
    }

    /// Whether the grant still opens the door right now (revocation, kill
    /// switches, epochs, links): what a long-lived session rechecks.
    pub fn still_allowed(&self) -> bool {
        self.door.bench.unguarded() || self.door.access.check(self.grant()).is_ok()
    }

    /// Lets `frame` out to a frame-by-frame viewer (RTSP) if and only if the grant
    /// is the one presented and the frame's provenance record names the grant's
    /// camera and epoch with a tag that verifies under `stamper` (the camera's key
    /// for that epoch). A refusal is counted, audited and ends the session.
    pub fn admit_frame<'a>(
        &self,
        frame: &'a VideoFrame,
        stamper: &Stamper,
    ) -> Result<AdmittedFrame<'a>, Refusal> {
        let g = self.grant.grant();
        let unguarded = self.door.bench.unguarded();
        let found = frame.provenance.map(|r| r.provenance());
        let presented = self.grant.is_presented(&self.presented);
        let stamped = frame.provenance.is_some_and(|r| {
            r.camera == g.camera && r.epoch == g.epoch && stamper.verify(&r, &[&frame.data])
        });
        // Tests only (constant false without `fault-injection`), as for objects:
        // HEARTH_FAULT_DOOR_OPEN=1 skips the stamp comparison, to prove the
        // client's own check of each frame.
        let admitted = presented && (stamped || self.door.switch.open());
        if !unguarded && !admitted {
            self.door.metrics.isolation_violations.inc();
            let reason = if presented {
                "a frame does not carry the grant's camera stamp"
            } else {
                "grant is not the one the request presented"
            };
            self.record_violation(found.as_ref(), "AccessUnit", reason);
            tracing::error!(
                grant = ?g.id,
                grant_camera = ?g.camera,
                frame_camera = ?found.map(|p| p.camera),
                reason,
                "isolation violation blocked at egress"
            );
            return Err(Refusal::IsolationViolation);
        }
        self.door
            .metrics
            .media_bytes_out
            .add(frame.data.len() as u64);
        if let (false, Some(p)) = (unguarded, found) {
            self.door.audit.viewed(g, &p, frame.data.len());
        }
        Ok(AdmittedFrame(frame))
    }

    /// Records a frame the still cache refused (it counted and logged it already):
    /// an `isolation_violation` with both identities, and the viewer's session ends.
    pub fn refuse_frame(&self, found: Option<Provenance>) -> Refusal {
        self.record_violation(
            found.as_ref(),
            "AccessUnit",
            "a frame in the still cache does not carry the camera's stamp",
        );
        Refusal::IsolationViolation
    }

    /// Counts and records a refused object, with both identities.
    fn violation(&self, obj: &MediaObject, reason: &str) {
        self.door.metrics.isolation_violations.inc();
        self.record_violation(Some(&obj.provenance), &format!("{:?}", obj.kind), reason);
    }

    /// The `isolation_violation` audit event, with both identities. The viewer's
    /// session under this grant ends here; the server closes the connection with
    /// the refusal.
    fn record_violation(&self, object: Option<&Provenance>, kind: &str, reason: &str) {
        let g = self.grant.grant();
        self.door.audit.close_session(g.id, "isolation_violation");
        self.door.audit.record(audit::event(
            "isolation_violation",
            Some(g),
            serde_json::json!({
                "reason": reason,
                "grant_camera": g.camera, "grant_epoch": g.epoch,
                "object_camera": object.map(|p| p.camera), "object_epoch": object.map(|p| p.epoch),
                "object_seq": object.map(|p| p.seq), "object_kind": kind,
            }),
        ));
    }

    /// Lets `obj` out to the viewer if and only if the grant is the one this
    /// request presented and the object's provenance matches it.
    pub fn write(&self, obj: &MediaObject) -> Result<Delivery, Refusal> {
        let g = self.grant.grant();
        // Benchmarks only (constant false without `bench-switches`): no checks, no audit.
        let unguarded = self.door.bench.unguarded();
        if !unguarded && !self.grant.is_presented(&self.presented) {
            // The grant lookup answered with someone else's grant.
            self.violation(obj, "grant is not the one the request presented");
            tracing::error!(
                grant = ?g.id,
                grant_camera = ?g.camera,
                object_camera = ?obj.provenance.camera,
                kind = ?obj.kind,
                "isolation violation blocked at egress: grant is not the one the request presented"
            );
            return Err(Refusal::IsolationViolation);
        }
        // Tests only (constant false without `fault-injection`): HEARTH_FAULT_DOOR_OPEN=1
        // skips this one comparison, to prove the client's own check.
        let door_open = self.door.switch.open();
        if !unguarded && !door_open && !obj.provenance.belongs_to(g.camera, g.epoch) {
            self.violation(obj, "object does not belong to the grant");
            tracing::error!(
                grant = ?g.id,
                viewer = ?g.viewer,
                grant_camera = ?g.camera,
                grant_epoch = %g.epoch,
                object_camera = ?obj.provenance.camera,
                object_epoch = %obj.provenance.epoch,
                object_seq = obj.provenance.seq,
                kind = ?obj.kind,
                "isolation violation blocked at egress: object does not belong to the grant"
            );
            return Err(Refusal::IsolationViolation);
        }
        self.door.metrics.media_bytes_out.add(obj.body.len() as u64);
        if !unguarded {
            self.door.audit.viewed(g, &obj.provenance, obj.body.len());
        }
        if obj.kind == MediaKind::Snapshot {
            self.door.audit.record(audit::event(
                "snapshot_served",
                Some(g),
                serde_json::json!({"seq": obj.provenance.seq, "bytes": obj.body.len()}),
            ));
        }
        Ok(Delivery {
            body: obj.body.clone(),
            kind: obj.kind,
        })
    }
}

/// The door to another node (an edge relaying a camera to its own viewers):
/// made only by [`Door::open_relay`] from a relay token that verifies and
/// names the camera's current binding epoch; lets out only frames stamped for
/// that camera, epoch and rendition (see [`crate::relay`]).
pub struct RelayGuard {
    claim: RelayClaim,
    door: Arc<Door>,
}

impl Door {
    /// Verifies a relay token (see [`crate::relay`]) and opens the door to the
    /// node that presented it, while the camera is bound under the token's
    /// epoch and this node's view is not fenced.
    pub fn open_relay(
        self: &Arc<Self>,
        token: &str,
        now: UnixMillis,
    ) -> Result<RelayGuard, Refusal> {
        let claim = self.grant_key.verify_relay(token, now).map_err(|e| {
            tracing::warn!(reason = %e, "relay request refused");
            self.metrics.grants_refused.inc();
            Refusal::Forbidden
        })?;
        let guard = RelayGuard {
            claim,
            door: self.clone(),
        };
        if !guard.still_allowed() {
            tracing::info!(camera = ?claim.camera, "relay request refused: camera not bound under that epoch here");
            return Err(Refusal::Forbidden);
        }
        Ok(guard)
    }
}

impl RelayGuard {
    pub fn claim(&self) -> &RelayClaim {
        &self.claim
    }

    /// The camera is still bound under the claim's epoch and the view confirmed.
    pub fn still_allowed(&self) -> bool {
        !self.door.access.is_fenced()
            && self.door.access.epoch_of(self.claim.camera) == Some(self.claim.epoch)
    }

    /// Lets `frame` out to the other node if and only if its provenance record
    /// names the claim's camera, epoch and rendition with a tag that verifies
    /// under `stamper`. A refusal is counted, audited and ends the relay.
    pub fn admit_frame<'a>(
        &self,
        frame: &'a VideoFrame,
        stamper: &Stamper,
    ) -> Result<AdmittedFrame<'a>, Refusal> {
        let c = &self.claim;
        let stamped = frame.provenance.is_some_and(|r| {
            r.camera == c.camera
                && r.epoch == c.epoch
                && r.rendition == c.rendition
                && stamper.verify(&r, &[&frame.data])
        });
        if !stamped && !self.door.bench.unguarded() && !self.door.switch.open() {
            let found = frame.provenance.map(|r| r.provenance());
            self.door.metrics.isolation_violations.inc();
            self.door.audit.record(audit::event(
                "isolation_violation",
                None,
                serde_json::json!({
                    "reason": "a relayed frame does not carry the camera's stamp",
                    "relay_camera": c.camera, "relay_epoch": c.epoch,
                    "object_camera": found.map(|p| p.camera), "object_epoch": found.map(|p| p.epoch),
                    "object_kind": "AccessUnit",
                }),
            ));
            tracing::error!(
                relay_camera = ?c.camera,
                frame_camera = ?found.map(|p| p.camera),
                "isolation violation blocked at the relay door"
            );
            return Err(Refusal::IsolationViolation);
        }
        Ok(AdmittedFrame(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Holder;
    use hearth_model::{BindingEpoch, CameraId, GrantId, Integration, UserId};

    const SESSION: &str = "test session";

    fn door() -> Arc<Door> {
        let store = Arc::new(hearth_store::SqliteStore::open_in_memory().unwrap());
        let journal = tempfile::tempdir().unwrap();
        Door::new(
            GrantKey::random(),
            Arc::default(),
            Audit::open(store, journal.path()).unwrap().0,
            Arc::default(),
            BenchSwitch::default(),
            DoorSwitch::default(),
        )
    }

    fn token(door: &Door, camera: CameraId, epoch: u64) -> String {
        door.grant_key.sign(&Grant {
            id: GrantId::random(),
            viewer: UserId::random(),
            camera,
            epoch: BindingEpoch(epoch),
            integration: Integration::App,
            expires_at: UnixMillis(i64::MAX / 2),
            holder: Holder::of_session(SESSION),
        })
    }

    fn guard(door: &Arc<Door>, camera: CameraId, epoch: u64) -> EgressGuard {
        let token = token(door, camera, epoch);
        let verified = door.grant_key.verify(&token, UnixMillis(0)).unwrap();
        EgressGuard {
            grant: verified,
            presented: PresentedTag::of(&token).unwrap(),
            door: door.clone(),
        }
    }

    fn object(camera: CameraId, epoch: u64) -> Arc<MediaObject> {
        let prov = Provenance {
            camera,
            epoch: BindingEpoch(epoch),
            seq: 7,
            capture_time: UnixMillis(1),
            rendition: Default::default(),
        };
        MediaObject::new(
            prov,
            MediaKind::Fmp4Segment,
            Bytes::from_static(b"media bytes"),
        )
    }

    #[tokio::test]
    async fn writes_only_objects_of_the_grants_camera_and_epoch() {
        let door = door();
        let mine = CameraId::random();
        let g = guard(&door, mine, 2);

        let d = g.write(&object(mine, 2)).unwrap();
        assert_eq!(d.content_type(), "video/mp4");
        assert_eq!(&d.into_body()[..], b"media bytes");
        assert_eq!(door.metrics.media_bytes_out.get(), 11);

        // Another camera's object, and this camera's object of another epoch: nothing
        // is delivered, and each attempt is counted.
        for foreign in [
            object(CameraId::random(), 2),
            object(mine, 1),
            object(mine, 3),
        ] {
            let err = g
                .write(&foreign)
                .expect_err("a foreign object must be refused");
            assert_eq!(err, Refusal::IsolationViolation);
        }
        assert_eq!(door.metrics.isolation_violations.get(), 3);
        assert_eq!(
            door.metrics.media_bytes_out.get(),
            11,
            "no bytes of refused objects"
        );
    }

    #[tokio::test]
    async fn a_grant_opens_only_for_its_holder_and_while_access_holds() {
        let door = door();
        let cam = CameraId::random();
        let t = token(&door, cam, 1);
        let now = UnixMillis(0);
        assert_eq!(
            door.open(&t, None, now, |v| v).err(),
            Some(Refusal::NotHolder)
        );
        assert_eq!(
            door.open(&t, Some("another session"), now, |v| v).err(),
            Some(Refusal::NotHolder)
        );
        assert_eq!(door.metrics.grant_replays_refused.get(), 2);
        // The holder's request: the access view has not loaded, so on doubt, deny.
        assert_eq!(
            door.open(&t, Some(SESSION), now, |v| v).err(),
            Some(Refusal::Forbidden)
        );
        assert_eq!(
            door.open("not a grant", Some(SESSION), now, |v| v).err(),
            Some(Refusal::Forbidden)
        );
    }
}
