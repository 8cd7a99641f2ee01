//! The edge relay, owner and edge sides: a viewer may arrive at any node; the
//! camera is ingested on one ([`crate::cluster::placement`]). A node asked for
//! a camera it does not ingest
//! fetches the camera's frames from the node that does, over an internal HTTP
//! stream authenticated by a relay token ([`hearth_access::relay`]), and
//! feeds them into a hub of its own: from there its own door serves the viewer
//! (HLS, LL-HLS, stills, RTSP, WebRTC) with the grant and provenance checks on
//! the node that writes to the viewer.
//!
//! - Owner side ([`serve`]): `GET /internal/v1/relay/{camera}/{rendition}`
//!   with the token as bearer. Every frame goes through the owner's
//!   [`RelayGuard`] (stamp of the token's camera, epoch and rendition), from
//!   the current GOP's keyframe on; a frame's bytes are shared with the hub
//!   (the relay copies no media).
//! - Edge side ([`ensure`]): started by a viewer's request (playlist, still,
//!   WHEP offer, RTSP DESCRIBE/PLAY, a smart display's stream) when the
//!   camera's holder is another node; checks every frame's stamp
//!   again before its hub takes it (a foreign frame ends the relay, counted
//!   and logged as the isolation violation it is); ends after [`IDLE`](crate::cluster::relay::IDLE)
//!   without a viewer, when the holder changes, or when the camera's binding
//!   does.
//! - Only video goes over (as RTSP and WebRTC carry it); an edge's HLS has no
//!   audio track.
//!
//! Which relays run here, the path and the wire are in
//! [`crate::cluster::relay`].

use crate::cluster::relay::{path, wire};
use crate::error::AppError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hearth_access::relay::{RELAY_TTL_MS, RelayClaim};
use hearth_model::{BindingEpoch, CameraId, Rendition};
use std::time::{Duration, Instant};

/// How long a viewer's first request waits for a starting relay's first frames.
const START_WAIT: Duration = Duration::from_secs(4);
/// An edge that takes nothing for this long is dropped (owner side); a stream
/// that brings nothing for this long is ended (edge side).
const STALL: Duration = Duration::from_secs(10);
/// Chunks queued for one edge.
const QUEUE: usize = 256;

/// Owner side: streams a camera's frames to the node whose token names it.
pub async fn serve(
    State(st): State<AppState>,
    Path((camera, rendition)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized)?;
    let guard = st
        .door
        .open_relay(token, hearth_access::clock::now())
        .map_err(AppError::from)?;
    let claim = *guard.claim();
    let asked = (camera.parse::<CameraId>().ok(), rendition.as_str());
    if asked != (Some(claim.camera), claim.rendition.as_str()) {
        return Err(AppError::Forbidden);
    }
    // The lookup is a fault point in tests: a wrong hub's frames stop at the
    // relay door below.
    let real = st.hubs.get_rendition(claim.camera, claim.rendition);
    let hub = st
        .faults
        .hub(claim.camera, claim.rendition, real, &st.hubs)
        .filter(|h| h.is_online() && h.epoch() == claim.epoch)
        .ok_or(AppError::CameraOffline)?;
    let stamper = st
        .hubs
        .stamper(claim.camera, claim.epoch)
        .for_rendition(claim.rendition);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    tokio::spawn(async move {
        let why = feed_edge(&hub, &guard, &stamper, &tx).await;
        tracing::info!(camera = ?claim.camera, rendition = claim.rendition.as_str(), why, "relay to a node ended");
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-hearth-relay"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Sends the hub's frames, each through the relay door, until the camera goes,
/// the token's claim no longer holds, or the edge stops taking them.
async fn feed_edge(
    hub: &crate::hub::Hub,
    guard: &hearth_access::RelayGuard,
    stamper: &hearth_access::Stamper,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> &'static str {
    let claim = *guard.claim();
    let mut frames = hub.subscribe_frames();
    let (mut cursor, mut lease, mut config) = (None, None, None::<Bytes>);
    let send = |chunk: Bytes| async move {
        matches!(
            tokio::time::timeout(STALL, tx.send(chunk)).await,
            Ok(Ok(()))
        )
    };
    loop {
        if !guard.still_allowed() {
            return "the camera's binding changed or the view is fenced";
        }
        let Some(batch) = hub.frames_after(cursor) else {
            return "camera offline";
        };
        if batch.epoch != claim.epoch {
            return "binding epoch changed";
        }
        if *lease.get_or_insert(batch.lease) != batch.lease {
            return "camera reconnected";
        }
        cursor = Some(batch.cursor);
        if let Some(c) = &batch.config
            && config.as_ref() != Some(&c.record)
        {
            config = Some(c.record.clone());
            if !send(wire::config(&c.record)).await {
                return "the node stopped taking frames";
            }
        }
        for frame in &batch.frames {
            let Ok(admitted) = guard.admit_frame(frame, stamper) else {
                return "isolation violation: a frame without the camera's stamp";
            };
            let f = admitted.frame();
            if !send(wire::frame_header(f)).await || !send(f.data.clone()).await {
                return "the node stopped taking frames";
            }
        }
        tokio::select! {
            changed = frames.changed() => if changed.is_err() { return "camera gone" },
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = tx.closed() => return "the node hung up",
        }
    }
}

/// A viewer on this node asked for `camera`'s `rendition`: when another node
/// ingests it, relays it here (started if need be, and waited for up to
/// [`START_WAIT`] so that the first playlist finds it). Does nothing on a
/// single node or when this node ingests it.
pub async fn ensure(st: &AppState, camera: CameraId, rendition: Rendition) {
    let Some(cluster) = st.cluster.get() else {
        return;
    };
    let online = |st: &AppState| {
        st.hubs
            .get_rendition(camera, rendition)
            .is_some_and(|h| h.is_online())
    };
    let relays = cluster.relays();
    if online(st) {
        // Ingested here, or relayed already: keep a relay alive.
        if relays.running((camera, rendition)) {
            relays.want((camera, rendition));
        }
        return;
    }
    if cluster.placement().holder(camera, rendition).is_none() {
        return;
    }
    if relays.want((camera, rendition)) {
        tokio::spawn(run(st.clone(), camera, rendition));
    }
    let started = Instant::now();
    while !online(st) && started.elapsed() < START_WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Relays while viewers ask, following the camera to whichever node holds it.
async fn run(st: AppState, camera: CameraId, rendition: Rendition) {
    let Some(cluster) = st.cluster.get().cloned() else {
        return;
    };
    let at = (camera, rendition);
    loop {
        if cluster.relays().idle(at) {
            tracing::debug!(?camera, rendition = rendition.as_str(), "relay idle: ended");
            return;
        }
        let holder = cluster.placement().holder(camera, rendition);
        let epoch = st.access.epoch_of(camera);
        if let (Some(holder), Some(epoch)) = (holder, epoch) {
            let why = relay_once(&st, &cluster, &holder, camera, rendition, epoch).await;
            match why {
                Ok(why) => {
                    tracing::info!(?camera, rendition = rendition.as_str(), from = %holder.node, why, "relay ended")
                }
                Err(e) => {
                    tracing::warn!(?camera, rendition = rendition.as_str(), from = %holder.node, error = format!("{e:#}"), "relay failed")
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One stream from `holder` into this node's hub.
async fn relay_once(
    st: &AppState,
    cluster: &crate::cluster::Cluster,
    holder: &crate::cluster::placement::Holder,
    camera: CameraId,
    rendition: Rendition,
    epoch: BindingEpoch,
) -> anyhow::Result<&'static str> {
    use anyhow::{Context, anyhow, bail};
    use http_body_util::BodyExt;
    let token = st.door.grant_key().sign_relay(&RelayClaim {
        camera,
        rendition,
        epoch,
        expires_at: hearth_model::UnixMillis(hearth_access::clock::now().0 + RELAY_TTL_MS - 1_000),
    });
    let base = url::Url::parse(&holder.internal_url).context("the holder's internal URL")?;
    let authority = format!(
        "{}:{}",
        base.host_str().ok_or(anyhow!("no host"))?,
        base.port_or_known_default().unwrap_or(80)
    );
    let tcp = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&authority),
    )
    .await
    .map_err(|_| anyhow!("connecting to {authority}: timed out"))??;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    let conn = tokio::spawn(conn);
    let _end_conn = AbortOnDrop(conn);
    let request = hyper::Request::get(path(camera, rendition))
        .header(header::HOST, authority.as_str())
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(http_body_util::Empty::<Bytes>::new())?;
    let response = tokio::time::timeout(STALL, send.send_request(request))
        .await
        .map_err(|_| anyhow!("no answer"))??;
    if response.status() != StatusCode::OK {
        bail!("the holder answered {}", response.status());
    }
    let hub = st.hubs.get_or_create_rendition(camera, rendition);
    let mut publisher = hub
        .claim(epoch)
        .map_err(|e| anyhow!("{e} (ingested here meanwhile)"))?;
    let stamper = st.hubs.stamper(camera, epoch).for_rendition(rendition);
    let mut body = response.into_body();
    let mut decoder = wire::Decoder::default();
    tracing::info!(?camera, rendition = rendition.as_str(), from = %holder.node, "relaying a camera from its node");
    loop {
        let chunk = match tokio::time::timeout(STALL, body.frame()).await {
            Err(_) => return Ok("the holder sent nothing"),
            Ok(None) => return Ok("the holder ended the stream"),
            Ok(Some(Err(e))) => {
                return Ok(if e.is_incomplete_message() {
                    "the holder went away"
                } else {
                    "the stream broke"
                });
            }
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        decoder.push(&chunk);
        while let Some(message) = decoder.message()? {
            match message {
                wire::Message::Config(record) => {
                    let config = hearth_media::h264::AvcConfig::parse_record(record)
                        .map_err(|e| anyhow!("codec configuration: {e}"))?;
                    publisher.set_video_config(config);
                }
                wire::Message::Frame(frame) => {
                    let stamped = frame.provenance.is_some_and(|r| {
                        r.camera == camera
                            && r.epoch == epoch
                            && r.rendition == rendition
                            && stamper.verify(&r, &[&frame.data])
                    });
                    if !stamped {
                        st.door.metrics().isolation_violations.inc();
                        tracing::error!(
                            relay_camera = ?camera,
                            frame_camera = ?frame.provenance.map(|r| r.camera),
                            from = %holder.node,
                            "isolation violation blocked at the edge: a relayed frame without the camera's stamp"
                        );
                        return Ok("isolation violation: relay ended");
                    }
                    publisher.push_video(frame, hearth_access::clock::now());
                }
            }
        }
        if !publisher.is_live() {
            return Ok("the hub's binding changed");
        }
        if cluster.placement().holder(camera, rendition).as_ref() != Some(holder) {
            return Ok("the camera moved");
        }
        if cluster.relays().idle((camera, rendition)) {
            return Ok("no viewer left");
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
