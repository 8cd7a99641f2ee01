//! The one door out: every media byte that reaches a viewer passes through
//! [`EgressGuard::write`].
//!
//! A guard can only be built from a [`VerifiedGrant`] (see the [`Egress`] extractor),
//! and a [`MediaResponse`] — the only response type media handlers may return — can
//! only be built by a guard. Immediately before producing a response the guard
//! compares the object's [`Provenance`] with the grant's camera and binding epoch; on a
//! mismatch nothing is written, the attempt is logged and counted, and the caller gets
//! an error with zero media bytes. Bodies are `Bytes` shared with the hub: serving a
//! segment to a thousand viewers copies no media.
//!
//! Frame-by-frame egress (RTSP) goes through the same door: the driver may send a
//! video frame only as an [`AdmittedFrame`], which only [`EgressGuard::admit_frame`]
//! makes after checking the frame's stamp against the grant.

use crate::error::AppError;
use crate::grant::{Grant, PresentedTag, VerifiedGrant};
use crate::keys::Stamper;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hearth_media::VideoFrame;
use hearth_model::Provenance;
use std::collections::HashMap;
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
    fn content_type(self) -> &'static str {
        match self {
            MediaKind::MasterPlaylist | MediaKind::MediaPlaylist => "application/vnd.apple.mpegurl",
            MediaKind::InitSegment | MediaKind::Fmp4Segment => "video/mp4",
            MediaKind::TsSegment => "video/mp2t",
            MediaKind::Snapshot => "image/jpeg",
            MediaKind::Key => "application/octet-stream",
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

    /// For unit tests only: in the server, bytes leave through the door alone.
    #[cfg(test)]
    pub(crate) fn body(&self) -> &Bytes {
        &self.body
    }
}

/// A response carrying media. Only [`EgressGuard::write`] creates one.
pub struct MediaResponse(Response);

impl IntoResponse for MediaResponse {
    fn into_response(self) -> Response {
        self.0
    }
}

/// The egress door for one request under one verified grant.
pub struct EgressGuard {
    grant: VerifiedGrant,
    /// The grant token this request carried, read from the request itself.
    presented: PresentedTag,
    state: AppState,
}

impl EgressGuard {
    fn new(grant: VerifiedGrant, presented: PresentedTag, state: AppState) -> Self {
        Self {
            grant,
            presented,
            state,
        }
    }

    pub fn grant(&self) -> &Grant {
        self.grant.grant()
    }

    /// Lets `frame` out to a frame-by-frame viewer (RTSP) if and only if the grant
    /// is the one presented and the frame's provenance record names the grant's
    /// camera and epoch with a tag that verifies under `stamper` (the camera's key
    /// for that epoch). A refusal is counted, audited and ends the session.
    pub fn admit_frame<'a>(
        &self,
        frame: &'a VideoFrame,
        stamper: &Stamper,
    ) -> Result<AdmittedFrame<'a>, AppError> {
        let g = self.grant.grant();
        let unguarded = self.state.bench.unguarded();
        let found = frame.provenance.map(|r| r.provenance());
        let presented = self.grant.is_presented(&self.presented);
        let stamped = frame.provenance.is_some_and(|r| {
            r.camera == g.camera && r.epoch == g.epoch && stamper.verify(&r, &[&frame.data])
        });
        let admitted = presented && stamped;
        if !unguarded && !admitted {
            self.state.metrics.isolation_violations.inc();
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
            return Err(AppError::IsolationViolation);
        }
        self.state
            .metrics
            .media_bytes_out
            .add(frame.data.len() as u64);
        if let (false, Some(p)) = (unguarded, found) {
            self.state.audit.viewed(g, &p, frame.data.len());
        }
        Ok(AdmittedFrame(frame))
    }

    /// Records a frame the still cache refused (it counted and logged it already):
    /// an `isolation_violation` with both identities, and the viewer's session ends.
    pub fn refuse_frame(&self, found: Option<Provenance>) -> AppError {
        self.record_violation(
            found.as_ref(),
            "AccessUnit",
            "a frame in the still cache does not carry the camera's stamp",
        );
        AppError::IsolationViolation
    }

    /// Counts and records a refused object, with both identities.
    fn violation(&self, obj: &MediaObject, reason: &str) {
        self.state.metrics.isolation_violations.inc();
        self.record_violation(Some(&obj.provenance), &format!("{:?}", obj.kind), reason);
    }

    /// The `isolation_violation` audit event, with both identities. The viewer's
    /// session under this grant ends here; the connection closes with the refusal
    /// (see `AppError::IsolationViolation`).
    fn record_violation(&self, object: Option<&Provenance>, kind: &str, reason: &str) {
        let g = self.grant.grant();
        self.state.audit.close_session(g.id, "isolation_violation");
        self.state.audit.record(crate::audit::event(
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

    /// Writes `obj` to the viewer if and only if the grant is the one this request
    /// presented and the object's provenance matches it.
    pub fn write(&self, obj: &MediaObject) -> Result<MediaResponse, AppError> {
        let g = self.grant.grant();
        // Benchmarks only (constant false without `bench-switches`): no checks, no audit.
        let unguarded = self.state.bench.unguarded();
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
            return Err(AppError::IsolationViolation);
        }
        // Tests only (constant false without `fault-injection`): HEARTH_FAULT_DOOR_OPEN=1
        // skips this one comparison, to prove the client's own check (see `fault`).
        let door_open = self.state.faults.door_open();
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
            return Err(AppError::IsolationViolation);
        }
        self.state
            .metrics
            .media_bytes_out
            .add(obj.body.len() as u64);
        if !unguarded {
            self.state.audit.viewed(g, &obj.provenance, obj.body.len());
        }
        if obj.kind == MediaKind::Snapshot {
            self.state.audit.record(crate::audit::event(
                "snapshot_served",
                Some(g),
                serde_json::json!({"seq": obj.provenance.seq, "bytes": obj.body.len()}),
            ));
        }
        let cache = match obj.kind {
            // Segments never change once named; playlists and stills do.
            // Segments are encrypted per camera and epoch: any cache may keep them.
            MediaKind::Fmp4Segment | MediaKind::TsSegment => "public, max-age=3600, immutable",
            // The init segment is clear (as HLS requires): private, but immutable.
            MediaKind::InitSegment => "private, max-age=60, immutable",
            _ => "no-store",
        };
        let mut resp = (StatusCode::OK, obj.body.clone()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(obj.kind.content_type()),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        // Cast receivers and smart displays fetch playlists, keys and segments from
        // their own origin. Opening CORS to any origin lends nothing: the grant is
        // in the URL, and a session-held grant needs a header no other origin can
        // send without a preflight, which is not answered.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        Ok(MediaResponse(resp))
    }
}

/// A video frame the door let out (see [`EgressGuard::admit_frame`]).
pub struct AdmittedFrame<'a>(&'a VideoFrame);

impl AdmittedFrame<'_> {
    pub fn frame(&self) -> &VideoFrame {
        self.0
    }
}

/// Extracts the `{grant}` path segment, verifies it, and yields the door.
pub struct Egress(pub EgressGuard);

impl FromRequestParts<AppState> for Egress {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        let token = params.get("grant").ok_or(AppError::NotFound)?;
        open(state, token, crate::auth::bearer(&parts.headers)).map(Egress)
    }
}

/// Verifies a presented grant token and opens the door for it. `holder` is the
/// session token the request carried, if any: a grant held by a session opens only
/// with it; a linked display's grant (Google Home, Alexa) is held by its link,
/// which the access view checks.
pub fn open(state: &AppState, token: &str, holder: Option<&str>) -> Result<EgressGuard, AppError> {
    let presented = PresentedTag::of(token).ok_or(AppError::Forbidden)?;
    match state.grant_key.verify(token, crate::clock::now()) {
        Ok(v) => {
            // The grant is bound to the session that asked for it: a URL replayed
            // by anyone else (another account included) stops here. Not skipped
            // by the bench switch: it is part of the grant, not of the guard.
            // A linked grant (Google Home, Alexa) is fetched by a display that
            // cannot send headers: its holder is its account link, checked live
            // by the access view below.
            let linked = v.grant().integration.is_linked();
            if !linked && !holder.is_some_and(|h| v.grant().holder.is_presented_by(h)) {
                state.metrics.grant_replays_refused.inc();
                tracing::warn!(
                    grant = ?v.grant().id,
                    viewer = ?v.grant().viewer,
                    camera = ?v.grant().camera,
                    session_presented = holder.is_some(),
                    "media request refused: grant presented without its holder's session"
                );
                return Err(AppError::NotHolder);
            }
            // Revocation, suspension and epoch changes, checked live.
            // Not checked only under the bench switch (constant false without
            // `bench-switches`; see `bench_switch`).
            let access = if state.bench.unguarded() {
                Ok(())
            } else {
                state.access.check(v.grant())
            };
            if let Err(denied) = access {
                tracing::info!(grant = ?v.grant().id, reason = %denied, "media request refused");
                return Err(AppError::Forbidden);
            }
            let v = state.faults.grant(v);
            Ok(EgressGuard::new(v, presented, state.clone()))
        }
        Err(e) => {
            // The token is a credential: log why, never the token itself.
            tracing::info!(reason = %e, "media request refused");
            Err(AppError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::GrantKey;
    use hearth_model::{BindingEpoch, CameraId, GrantId, Integration, UnixMillis, UserId};

    fn state() -> AppState {
        let store = hearth_store::SqliteStore::open_in_memory().unwrap();
        AppState::new(
            Arc::new(store),
            GrantKey::random(),
            crate::keys::MediaKeys::random(),
            "http://x".into(),
        )
    }

    fn door(st: &AppState, camera: CameraId, epoch: u64) -> EgressGuard {
        let grant = Grant {
            id: GrantId::random(),
            viewer: UserId::random(),
            camera,
            epoch: BindingEpoch(epoch),
            integration: Integration::App,
            expires_at: UnixMillis(i64::MAX / 2),
            holder: crate::grant::Holder::of_session("test session"),
        };
        let token = st.grant_key.sign(&grant);
        let verified = st.grant_key.verify(&token, UnixMillis(0)).unwrap();
        EgressGuard::new(verified, PresentedTag::of(&token).unwrap(), st.clone())
    }

    fn object(camera: CameraId, epoch: u64) -> Arc<MediaObject> {
        let prov = Provenance {
            camera,
            epoch: BindingEpoch(epoch),
            seq: 7,
            capture_time: UnixMillis(1),
        };
        MediaObject::new(
            prov,
            MediaKind::Fmp4Segment,
            Bytes::from_static(b"media bytes"),
        )
    }

    #[tokio::test]
    async fn writes_only_objects_of_the_grants_camera_and_epoch() {
        let st = state();
        let mine = CameraId::random();
        let d = door(&st, mine, 2);

        let resp = d.write(&object(mine, 2)).unwrap().into_response();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "video/mp4");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&body[..], b"media bytes");
        assert_eq!(st.metrics.media_bytes_out.get(), 11);

        // Another camera's object, and this camera's object of another epoch: nothing
        // is written, and each attempt is counted.
        for foreign in [
            object(CameraId::random(), 2),
            object(mine, 1),
            object(mine, 3),
        ] {
            let err = d
                .write(&foreign)
                .err()
                .expect("a foreign object must be refused");
            assert!(matches!(err, AppError::IsolationViolation));
            // The viewer's connection is closed with the refusal.
            let resp = err.into_response();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
            assert_eq!(resp.headers()[header::CONNECTION], "close");
        }
        assert_eq!(st.metrics.isolation_violations.get(), 3);
        assert_eq!(
            st.metrics.media_bytes_out.get(),
            11,
            "no bytes of refused objects"
        );
    }
}
