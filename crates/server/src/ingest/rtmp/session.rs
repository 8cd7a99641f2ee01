//! One RTMP publishing connection, sans I/O: bytes from the peer go in with
//! [`RtmpIngest::push`], bytes for the peer come out into a buffer, and what the
//! driver must decide (a stream key to look up) comes out of [`RtmpIngest::poll`].
//! Frames go to the camera's hub through the [`Publisher`] lease the driver hands
//! over once the key checks out. The handshake and chunk stream are `rml_rtmp`'s
//! (with Hearth's fixes, `vendor/rml_rtmp`); the fuzz target `rtmp_ingest` drives
//! this type exactly as the driver does.
//!
//! A malformed handshake, chunk stream, AMF0 command or FLV tag, a non-H.264/AAC
//! stream, a GOP whose signature fails or names another camera: each is an error
//! that ends this connection. A GOP whose signature failed never becomes a
//! segment (the publisher is discarded, not flushed).

use crate::hub::Publisher;
use anyhow::{anyhow, bail};
use hearth_media::flv::{FlvAudio, FlvVideo, parse_audio_tag, parse_video_tag};
use hearth_media::signing::{GopVerifier, Verdict, gop_signing_key};
use hearth_media::{AudioFrame, MediaError, VideoFrame};
use hearth_model::{CameraId, Rendition, UnixMillis};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::collections::VecDeque;

/// The only RTMP application cameras publish to.
pub const APP_NAME: &str = "live";

/// Signed GOPs older than this (by their capture time) are refused as replays.
const MAX_SIGNED_AGE_MS: i64 = 5 * 60 * 1000;

/// What the driver must do for the connection to go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    /// Look the stream key up; then [`RtmpIngest::accept_publish`] or
    /// [`RtmpIngest::reject_publish`]. `rendition`: the stream it publishes
    /// (the path `<key>/sub` is the camera's sub stream).
    Publish {
        request_id: u32,
        stream_key: String,
        rendition: Rendition,
    },
    /// The publisher ended its stream cleanly: close the connection.
    Finished,
}

enum Stage {
    Handshake(Box<Handshake>),
    Session(Box<ServerSession>),
}

/// One publishing connection's protocol state.
pub struct RtmpIngest {
    stage: Stage,
    /// Events of the chunk stream not handled yet (a publish request waits for
    /// the driver; what came after it waits with it).
    events: VecDeque<ServerSessionEvent>,
    publisher: Option<Publisher>,
    video_ts: Unwrap,
    audio_ts: Unwrap,
    /// Checks the camera's in-band GOP signatures (keyed by its stream key).
    verifier: Option<GopVerifier>,
    nalu_length_size: u8,
    /// A signature check failed: the open segment must be discarded, not flushed.
    unverified: bool,
    /// A publish request is with the driver.
    awaiting_publish: bool,
    /// What the app name carried after `live/` (`rtmp://host/live/<key>/sub`
    /// reaches ffmpeg's publisher as app `live/<key>`, stream `sub`).
    app_path: String,
}

impl Default for RtmpIngest {
    fn default() -> Self {
        Self::new()
    }
}

impl RtmpIngest {
    pub fn new() -> Self {
        Self {
            stage: Stage::Handshake(Box::new(Handshake::new(PeerType::Server))),
            events: VecDeque::new(),
            publisher: None,
            video_ts: Unwrap::default(),
            audio_ts: Unwrap::default(),
            verifier: None,
            nalu_length_size: 0,
            unverified: false,
            awaiting_publish: false,
            app_path: String::new(),
        }
    }

    /// Whether the handshake is over.
    pub fn handshake_done(&self) -> bool {
        matches!(self.stage, Stage::Session(_))
    }

    /// The publisher lease, once a publish was accepted.
    pub fn publisher(&self) -> Option<&Publisher> {
        self.publisher.as_ref()
    }

    /// Takes bytes from the peer; appends what to answer to `out`. Call
    /// [`RtmpIngest::poll`] afterwards.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        let chunks = match &mut self.stage {
            Stage::Handshake(hs) => match hs
                .process_bytes(data)
                .map_err(|e| anyhow!("bad handshake: {e:?}"))?
            {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    out.extend_from_slice(&response_bytes);
                    return Ok(());
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    out.extend_from_slice(&response_bytes);
                    let (session, initial) = ServerSession::new(ServerSessionConfig::new())
                        .map_err(|e| anyhow!("session setup: {e:?}"))?;
                    self.stage = Stage::Session(Box::new(session));
                    self.take(initial, out);
                    remaining_bytes
                }
            },
            Stage::Session(_) => data.to_vec(),
        };
        if chunks.is_empty() {
            return Ok(());
        }
        let Stage::Session(session) = &mut self.stage else {
            unreachable!("the handshake completed above");
        };
        let results = session
            .handle_input(&chunks)
            .map_err(|e| anyhow!("bad chunk stream: {e}"))?;
        self.take(results, out);
        Ok(())
    }

    /// Handles the events of the chunk stream until one needs the driver.
    /// On an error the connection must end (and a publisher whose GOP failed
    /// its signature check has been discarded).
    pub fn poll(&mut self, now: UnixMillis, out: &mut Vec<u8>) -> anyhow::Result<Option<Need>> {
        while !self.awaiting_publish {
            let Some(event) = self.events.pop_front() else {
                return Ok(None);
            };
            match self.handle(event, now, out) {
                Ok(None) => {}
                Ok(Some(need)) => return Ok(Some(need)),
                Err(e) => {
                    if self.unverified {
                        // Never let a GOP whose signature failed become a segment.
                        if let Some(p) = self.publisher.take() {
                            p.discard();
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// The stream key checked out: frames go to `publisher` from now on.
    pub fn accept_publish(
        &mut self,
        request_id: u32,
        stream_key: &str,
        publisher: Publisher,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        let rendition = publisher.rendition();
        self.awaiting_publish = false;
        let r = self
            .session()?
            .accept_request(request_id)
            .map_err(|e| anyhow!("{e:?}"))?;
        self.take(r, out);
        self.verifier =
            Some(GopVerifier::new(gop_signing_key(stream_key)).for_rendition(rendition));
        self.publisher = Some(publisher);
        Ok(())
    }

    /// The publish is refused (`why` goes to the peer); the connection ends.
    pub fn reject_publish(&mut self, request_id: u32, why: &str, out: &mut Vec<u8>) {
        if let Ok(session) = self.session()
            && let Ok(r) = session.reject_request(request_id, "NetStream.Publish.BadName", why)
        {
            self.take(r, out);
        }
    }

    fn session(&mut self) -> anyhow::Result<&mut ServerSession> {
        match &mut self.stage {
            Stage::Session(s) => Ok(s),
            Stage::Handshake(_) => bail!("no session before the handshake"),
        }
    }

    fn take(&mut self, results: Vec<ServerSessionResult>, out: &mut Vec<u8>) {
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(p) => out.extend_from_slice(&p.bytes),
                ServerSessionResult::RaisedEvent(e) => self.events.push_back(e),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }

    fn handle(
        &mut self,
        event: ServerSessionEvent,
        now: UnixMillis,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<Option<Need>> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                let app_path = match app_name.strip_prefix(APP_NAME) {
                    Some("") => Some(""),
                    Some(rest) => rest.strip_prefix('/').filter(|r| !r.is_empty()),
                    None => None,
                };
                if let Some(path) = app_path {
                    self.app_path = path.to_owned();
                }
                let session = self.session()?;
                if app_path.is_none() {
                    let r = session.reject_request(
                        request_id,
                        "NetConnection.Connect.Rejected",
                        "unknown app",
                    );
                    if let Ok(r) = r {
                        self.take(r, out);
                    }
                    bail!("connect to unknown app {app_name:?}");
                }
                let r = session
                    .accept_request(request_id)
                    .map_err(|e| anyhow!("{e:?}"))?;
                self.take(r, out);
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                if self.publisher.is_some() {
                    bail!("second publish on one connection");
                }
                self.awaiting_publish = true;
                let path = if self.app_path.is_empty() {
                    stream_key
                } else {
                    format!("{}/{stream_key}", self.app_path)
                };
                let (key, rendition) = Rendition::from_stream_path(&path);
                return Ok(Some(Need::Publish {
                    request_id,
                    stream_key: key.to_owned(),
                    rendition,
                }));
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.video(data, timestamp.value, now)?,
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                let Some(p) = self.publisher.as_mut() else {
                    bail!("audio before publish")
                };
                let pts = self.audio_ts.get(timestamp.value);
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
                        now,
                    ),
                }
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if let Some(p) = self.publisher.take() {
                    tracing::info!(camera = ?p.camera(), "publisher finished");
                    return Ok(Some(Need::Finished));
                }
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                if let Ok(r) = self.session()?.reject_request(
                    request_id,
                    "NetStream.Play.Failed",
                    "playback is not served over RTMP",
                ) {
                    self.take(r, out);
                }
                bail!("RTMP play requested; Hearth only ingests over RTMP");
            }
            _ => {}
        }
        Ok(None)
    }

    fn video(&mut self, data: bytes::Bytes, timestamp: u32, now: UnixMillis) -> anyhow::Result<()> {
        let Some(p) = self.publisher.as_mut() else {
            bail!("video before publish")
        };
        let dts = self.video_ts.get(timestamp);
        let tag = match parse_video_tag(data) {
            Ok(tag) => tag,
            // Command frames and the like carry no picture: skip them.
            Err(MediaError::UnsupportedPacket(what)) => {
                tracing::debug!(camera = ?p.camera(), %what, "video packet skipped");
                return Ok(());
            }
            Err(e) => bail!("camera {:?}: bad video: {e}", p.camera()),
        };
        let f = match tag {
            FlvVideo::Config(cfg) => {
                self.nalu_length_size = cfg.nalu_length_size;
                p.set_video_config(cfg);
                return Ok(());
            }
            FlvVideo::EndOfSequence => return Ok(()),
            FlvVideo::Frame(f) => f,
        };
        if let Some(v) = self.verifier.as_mut() {
            match v.push(&f.data, self.nalu_length_size, f.keyframe) {
                Ok(Verdict::Verified { record, gop }) => {
                    let zero = CameraId::from_bytes([0; 16]);
                    if record.camera != zero && record.camera != p.camera() {
                        self.unverified = true;
                        bail!(
                            "camera {:?}: signed GOP {gop} names camera {:?}",
                            p.camera(),
                            record.camera
                        );
                    }
                    if (now.0 - record.capture_time.0).abs() > MAX_SIGNED_AGE_MS {
                        self.unverified = true;
                        bail!(
                            "camera {:?}: signed GOP {gop} is stale (a replay?)",
                            p.camera()
                        );
                    }
                }
                Ok(Verdict::Pending | Verdict::Unsigned) => {}
                Err(e) => {
                    self.unverified = true;
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
                annexb: Default::default(),
            },
            now,
        );
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A session past the handshake, driven by rml_rtmp's client handshake.
    fn handshaken() -> RtmpIngest {
        let mut server = RtmpIngest::new();
        let mut client = Handshake::new(PeerType::Client);
        let mut out = Vec::new();
        let c0c1 = client.generate_outbound_p0_and_p1().unwrap();
        server.push(&c0c1, &mut out).unwrap();
        let c2 = match client.process_bytes(&out).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes }
            | HandshakeProcessResult::Completed { response_bytes, .. } => response_bytes,
        };
        out.clear();
        server.push(&c2, &mut out).unwrap();
        assert!(server.handshake_done());
        server
    }

    /// A chunk with a full (type 0) header on chunk stream `csid` (3..=63).
    fn chunk0(csid: u8, ts: u32, len: u32, type_id: u8, payload: &[u8]) -> Vec<u8> {
        let mut c = vec![csid];
        c.extend_from_slice(&ts.min(0xFF_FFFF).to_be_bytes()[1..]);
        c.extend_from_slice(&len.to_be_bytes()[1..]);
        c.push(type_id);
        c.extend_from_slice(&0u32.to_le_bytes());
        if ts >= 0xFF_FFFF {
            c.extend_from_slice(&ts.to_be_bytes());
        }
        c.extend_from_slice(payload);
        c
    }

    fn amf0_string(s: &str) -> Vec<u8> {
        let mut v = vec![0x02];
        v.extend_from_slice(&(s.len() as u16).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn amf0_number(n: f64) -> Vec<u8> {
        let mut v = vec![0x00];
        v.extend_from_slice(&n.to_be_bytes());
        v
    }

    fn feed(s: &mut RtmpIngest, bytes: &[u8]) -> anyhow::Result<Option<Need>> {
        let mut out = Vec::new();
        s.push(bytes, &mut out)?;
        s.poll(UnixMillis(0), &mut out)
    }

    #[test]
    fn an_amf0_command_with_fewer_than_three_values_is_refused_without_a_panic() {
        let mut s = handshaken();
        let mut payload = amf0_string("connect");
        payload.extend(amf0_number(1.0));
        let chunk = chunk0(3, 0, payload.len() as u32, 20, &payload);
        assert!(feed(&mut s, &chunk).is_err());
    }

    #[test]
    fn a_message_length_that_shrinks_mid_message_is_refused_without_a_panic() {
        let mut s = handshaken();
        // A 200-byte message: the first chunk carries 128 bytes (the default chunk
        // size); then a type 1 header on the same chunk stream says 10 bytes.
        let mut bytes = chunk0(3, 0, 200, 18, &[0u8; 128]);
        bytes.push(0x40 | 3);
        bytes.extend_from_slice(&[0, 0, 0]); // timestamp delta
        bytes.extend_from_slice(&[0, 0, 10]); // message length
        bytes.push(18);
        bytes.extend_from_slice(&[0u8; 10]);
        let err = feed(&mut s, &bytes).expect_err("must be refused");
        assert!(format!("{err:#}").contains("message length"), "{err:#}");
    }

    #[test]
    fn an_extended_timestamp_below_the_initial_field_wraps_without_a_panic() {
        let mut s = handshaken();
        // A window acknowledgement size message, then a type 2 chunk on the same
        // chunk stream whose delta field says "extended" and whose extended
        // timestamp is 5 (below 0xFFFFFF).
        let mut bytes = chunk0(2, 0, 4, 5, &2_500_000u32.to_be_bytes());
        bytes.push(0x80 | 2);
        bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(&2_500_000u32.to_be_bytes());
        feed(&mut s, &bytes).expect("a wrapped timestamp is not an error");
    }
}
