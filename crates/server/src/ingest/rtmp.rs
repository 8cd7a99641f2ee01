//! RTMP ingest: the thin I/O driver around `rml_rtmp`'s sans-IO handshake and
//! session, feeding a camera's hub through its [`Publisher`] lease.
//!
//! A connection must complete the handshake within [`HANDSHAKE_TIMEOUT`], connect to
//! the `live` app and publish a valid stream key within [`PUBLISH_TIMEOUT`], and then
//! keep sending within [`IDLE_TIMEOUT`]. The stream key is hashed and looked up once,
//! at publish time; the key itself is never logged. An unknown key, a second
//! publisher for a live camera, a non-H.264/AAC stream, a malformed handshake or chunk
//! stream: each closes this connection with a logged reason and touches no other
//! camera.
//!
//! `rml_rtmp`'s chunk deserializer can panic on some malformed chunk headers (an
//! unchecked subtraction when a message length shrinks mid-message). Its calls are
//! wrapped in `catch_unwind` so such input is treated as what it is — a malformed
//! stream that closes its own connection — and never reaches the runtime.

use crate::hub::Publisher;
use crate::state::AppState;
use anyhow::{Context, anyhow, bail};
use hearth_media::flv::{FlvAudio, FlvVideo, parse_audio_tag, parse_video_tag};
use hearth_media::signing::{GopVerifier, Verdict, gop_signing_key};
use hearth_media::{AudioFrame, MediaError, VideoFrame};
use hearth_model::{CameraId, RawToken};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 4096;
const APP_NAME: &str = "live";

/// Accepts RTMP connections until the process ends.
pub async fn serve(listener: TcpListener, state: AppState) {
    crate::net::accept_loop(listener, "rtmp", MAX_CONNECTIONS, move |sock, peer| {
        let state = state.clone();
        async move {
            match handle(sock, peer, &state).await {
                Ok(()) => tracing::info!(%peer, "rtmp connection closed"),
                Err(e) => {
                    state.metrics.rtmp_connections_refused.inc();
                    tracing::warn!(%peer, reason = format!("{e:#}"), "rtmp connection closed");
                }
            }
        }
    })
    .await;
}

/// Extends RTMP's 32-bit millisecond timestamps across wrap-around.
#[derive(Default)]
struct Unwrap {
    last: Option<u32>,
    base: i64,
}

impl Unwrap {
    fn get(&mut self, ts: u32) -> i64 {
        if let Some(last) = self.last
            && ts < last
            && last - ts > u32::MAX / 2
        {
            self.base += 1 << 32;
        }
        self.last = Some(ts);
        self.base + i64::from(ts)
    }
}

struct Conn {
    sock: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
}

impl Conn {
    async fn read(&mut self, timeout: Duration) -> anyhow::Result<usize> {
        let n = tokio::time::timeout(timeout, self.sock.read(&mut self.buf))
            .await
            .map_err(|_| anyhow!("timed out after {timeout:?} without data"))??;
        Ok(n)
    }

    async fn send(
        &mut self,
        results: Vec<ServerSessionResult>,
    ) -> anyhow::Result<Vec<ServerSessionEvent>> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.sock.write_all(&p.bytes).await?,
                ServerSessionResult::RaisedEvent(e) => events.push(e),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }
}

fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| anyhow!("malformed {what} (parser rejected it)"))
}

async fn handle(sock: TcpStream, peer: SocketAddr, state: &AppState) -> anyhow::Result<()> {
    let mut c = Conn {
        sock,
        peer,
        buf: vec![0u8; 64 * 1024],
    };

    // Handshake.
    let mut hs = Handshake::new(PeerType::Server);
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let leftover = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = c.read(left).await.context("handshake")?;
        if n == 0 {
            bail!("peer closed during handshake");
        }
        let data = c.buf[..n].to_vec();
        match guarded("handshake", || hs.process_bytes(&data))?
            .map_err(|e| anyhow!("bad handshake: {e:?}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                c.sock.write_all(&response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                c.sock.write_all(&response_bytes).await?;
                break remaining_bytes;
            }
        }
    };

    let (mut session, initial) = ServerSession::new(ServerSessionConfig::new())
        .map_err(|e| anyhow!("session setup: {e:?}"))?;
    c.send(initial).await?;

    let mut st = Ingest::default();
    let publish_deadline = tokio::time::Instant::now() + PUBLISH_TIMEOUT;
    let mut pending = leftover;

    loop {
        if !pending.is_empty() {
            let results = guarded("chunk stream", || session.handle_input(&pending))?
                .map_err(|e| anyhow!("bad chunk stream: {e:?}"))?;
            pending.clear();
            for event in c.send(results).await? {
                let flow = match handle_event(&mut c, &mut session, state, &mut st, event).await {
                    Ok(flow) => flow,
                    Err(e) => {
                        if st.unverified {
                            // Never let a GOP whose signature failed become a segment.
                            if let Some(p) = st.publisher.take() {
                                p.discard();
                            }
                        }
                        return Err(e);
                    }
                };
                if flow == Flow::Finished {
                    return Ok(());
                }
            }
        }
        let timeout = match &st.publisher {
            Some(_) => IDLE_TIMEOUT,
            None => publish_deadline.saturating_duration_since(tokio::time::Instant::now()),
        };
        let n = c.read(timeout).await.context(if st.publisher.is_some() {
            "publishing"
        } else {
            "waiting for publish"
        })?;
        if n == 0 {
            return match st.publisher {
                Some(p) => {
                    tracing::info!(peer = %c.peer, camera = ?p.camera(), "publisher disconnected");
                    Ok(())
                }
                None => bail!("peer closed before publishing"),
            };
        }
        if st.publisher.as_ref().is_some_and(|p| !p.is_live()) {
            bail!("publisher disconnected: the camera's binding changed");
        }
        pending.extend_from_slice(&c.buf[..n]);
    }
}

/// What one publishing connection keeps between events.
#[derive(Default)]
struct Ingest {
    publisher: Option<Publisher>,
    video_ts: Unwrap,
    audio_ts: Unwrap,
    /// Checks the camera's in-band GOP signatures (keyed by its stream key).
    verifier: Option<GopVerifier>,
    nalu_length_size: u8,
    /// A signature check failed: the open segment must be discarded, not flushed.
    unverified: bool,
}

/// Signed GOPs older than this (by their capture time) are refused as replays.
const MAX_SIGNED_AGE_MS: i64 = 5 * 60 * 1000;

/// Whether the connection goes on after an event.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// The publisher ended its stream cleanly.
    Finished,
}

async fn handle_event(
    c: &mut Conn,
    session: &mut ServerSession,
    state: &AppState,
    st: &mut Ingest,
    event: ServerSessionEvent,
) -> anyhow::Result<Flow> {
    match event {
        ServerSessionEvent::ConnectionRequested {
            request_id,
            app_name,
        } => {
            if app_name != APP_NAME {
                let r = session.reject_request(
                    request_id,
                    "NetConnection.Connect.Rejected",
                    "unknown app",
                );
                if let Ok(r) = r {
                    c.send(r).await?;
                }
                bail!("connect to unknown app {app_name:?}");
            }
            let r = session
                .accept_request(request_id)
                .map_err(|e| anyhow!("{e:?}"))?;
            c.send(r).await?;
        }
        ServerSessionEvent::PublishStreamRequested {
            request_id,
            stream_key,
            ..
        } => {
            if st.publisher.is_some() {
                bail!("second publish on one connection");
            }
            let hash = RawToken::from_client(stream_key.clone()).hash();
            let camera = state
                .db(move |s| s.camera_by_stream_key(hash))
                .await
                .map_err(|e| anyhow!("{e}"))?;
            let Some(camera) = camera else {
                if let Ok(r) = session.reject_request(
                    request_id,
                    "NetStream.Publish.BadName",
                    "invalid stream key",
                ) {
                    c.send(r).await?;
                }
                bail!("publish refused: unknown stream key");
            };
            let hub = state.hubs.get_or_create(camera.id);
            match hub.claim(camera.epoch) {
                Ok(p) => {
                    let r = session
                        .accept_request(request_id)
                        .map_err(|e| anyhow!("{e:?}"))?;
                    c.send(r).await?;
                    tracing::info!(peer = %c.peer, camera = ?camera.id, name = %camera.name, "camera live");
                    st.verifier = Some(GopVerifier::new(gop_signing_key(&stream_key)));
                    st.publisher = Some(p);
                }
                Err(e) => {
                    if let Ok(r) = session.reject_request(
                        request_id,
                        "NetStream.Publish.BadName",
                        "already live",
                    ) {
                        c.send(r).await?;
                    }
                    bail!("publish refused for camera {:?}: {e}", camera.id);
                }
            }
        }
        ServerSessionEvent::VideoDataReceived {
            data, timestamp, ..
        } => {
            let Some(p) = st.publisher.as_mut() else {
                bail!("video before publish")
            };
            let dts = st.video_ts.get(timestamp.value);
            let tag = match parse_video_tag(data) {
                Ok(tag) => tag,
                // Command frames and the like carry no picture: skip them.
                Err(MediaError::UnsupportedPacket(what)) => {
                    tracing::debug!(camera = ?p.camera(), %what, "video packet skipped");
                    return Ok(Flow::Continue);
                }
                Err(e) => bail!("camera {:?}: bad video: {e}", p.camera()),
            };
            match tag {
                FlvVideo::Config(cfg) => {
                    st.nalu_length_size = cfg.nalu_length_size;
                    p.set_video_config(cfg);
                }
                FlvVideo::Frame(f) => {
                    let now = hearth_access::clock::now();
                    if let Some(v) = st.verifier.as_mut() {
                        match v.push(&f.data, st.nalu_length_size, f.keyframe) {
                            Ok(Verdict::Verified { record, gop }) => {
                                let zero = CameraId::from_bytes([0; 16]);
                                if record.camera != zero && record.camera != p.camera() {
                                    st.unverified = true;
                                    bail!(
                                        "camera {:?}: signed GOP {gop} names camera {:?}",
                                        p.camera(),
                                        record.camera
                                    );
                                }
                                if (now.0 - record.capture_time.0).abs() > MAX_SIGNED_AGE_MS {
                                    st.unverified = true;
                                    bail!(
                                        "camera {:?}: signed GOP {gop} is stale (a replay?)",
                                        p.camera()
                                    );
                                }
                            }
                            Ok(Verdict::Pending | Verdict::Unsigned) => {}
                            Err(e) => {
                                st.unverified = true;
                                bail!("camera {:?}: signed GOP does not verify: {e}", p.camera());
                            }
                        }
                    }
                    p.push_video(
                        VideoFrame {
                            dts_ms: dts,
                            pts_ms: dts + i64::from(f.cts_ms),
                            keyframe: f.keyframe,
                            data: f.data,
                            provenance: None,
                        },
                        now,
                    );
                }
                FlvVideo::EndOfSequence => {}
            }
        }
        ServerSessionEvent::AudioDataReceived {
            data, timestamp, ..
        } => {
            let Some(p) = st.publisher.as_mut() else {
                bail!("audio before publish")
            };
            let pts = st.audio_ts.get(timestamp.value);
            match parse_audio_tag(data)
                .map_err(|e| anyhow!("camera {:?}: bad audio: {e}", p.camera()))?
            {
                FlvAudio::Config(cfg) => p.set_audio_config(cfg),
                FlvAudio::Frame(data) => p.push_audio(
                    AudioFrame {
                        pts_ms: pts,
                        data,
                        provenance: None,
                    },
                    hearth_access::clock::now(),
                ),
            }
        }
        ServerSessionEvent::PublishStreamFinished { .. } => {
            if let Some(p) = st.publisher.take() {
                tracing::info!(peer = %c.peer, camera = ?p.camera(), "publisher finished");
                return Ok(Flow::Finished);
            }
        }
        ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
            if let Ok(r) = session.reject_request(
                request_id,
                "NetStream.Play.Failed",
                "playback is not served over RTMP",
            ) {
                c.send(r).await?;
            }
            bail!("RTMP play requested; Hearth only ingests over RTMP");
        }
        _ => {}
    }
    Ok(Flow::Continue)
}
