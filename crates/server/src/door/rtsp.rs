//! The RTSP egress driver: one camera's live video for a linked smart display
//! (Alexa's camera interface asks for RTSP), as RTP interleaved on the RTSP
//! connection, starting at the hub's current keyframe.
//!
//! A stream URL is `{rtsp_url}/media/{grant}/live` (the main rendition) or
//! `{rtsp_url}/media/{grant}/sub` (the sub rendition, for a display that asked
//! for a small picture), where the grant is a linked display's: one camera, one binding epoch, one account link, one integration,
//! exactly as for HLS. A web app grant is held by a browser session that an RTSP
//! client cannot present, so it opens nothing here.
//!
//! Players and recorders (VLC, Home Assistant, Frigate, Blue Iris) use a viewer
//! key instead: `{rtsp_url}/cameras/{camera}` (or `.../sub`), with the key's id
//! as user name and its secret as password, answered with Digest auth
//! (`super::digest`; a nonce per connection). The key buys a restream grant
//! (`super::restream`) and from there it is the same door. The grant is verified and
//! checked against the live access view on every request and, while playing,
//! before every frame and at least every [`ACCESS_RECHECK`] (also while a write
//! waits on a slow viewer), so unlinking, a revoked share, a transfer, a kill
//! switch or the grant's expiry ends the session within a second; the socket is
//! then reset, so what the kernel still buffers is not delivered. Every frame
//! leaves through the egress door ([`EgressGuard::admit_frame`]), which checks its
//! provenance stamp against the grant; the driver can only send admitted frames.
//! A publisher that reconnects starts a new timeline: the session ends and the
//! display asks again.
//!
//! Only the TCP-interleaved transport is offered (`RTP/AVP/TCP`): it is what Alexa
//! uses, and it crosses NAT and a TLS proxy. Hearth speaks plain RTSP; for
//! `rtsps://` put a TCP TLS terminator in front and set `rtsp_public_url`.
//! Parsing, the SDP and RTP packetization are sans-IO in `hearth_media::rtsp`;
//! this file owns the socket and the timers. Every read and write has a deadline:
//! a connection must reach `PLAY` within [`PRE_PLAY_TIMEOUT`] of connecting
//! (keep-alives do not extend it: idle connections cannot hold the slots), and a
//! viewer must take each frame within [`WRITE_TIMEOUT`]. One address holds at
//! most a few dozen connections.

use super::frames::{Feed, allowed};
use crate::error::AppError;
use crate::hub::Hub;
use crate::state::AppState;
use bytes::Bytes;
use hearth_access::keys::Stamper;
use hearth_access::{AdmittedFrame, EgressGuard};
use hearth_media::rtsp::{
    self, H264Packetizer, InterleavedBuf, InterleavedPacket, Message, Request,
};
use hearth_model::{CameraId, GrantId, Rendition, ViewerKeyId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

const MAX_RTSP_CONNECTIONS: usize = 1024;
/// Until it plays, a client must complete each request within this time of the
/// previous answer (or of connecting); it is also the announced session timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// From connecting to `PLAY`: a display does OPTIONS, DESCRIBE, SETUP and PLAY in
/// well under a second.
pub const PRE_PLAY_TIMEOUT: Duration = Duration::from_secs(20);
/// While playing: how often access is checked when no frame comes, or while a
/// write waits on the viewer.
pub const ACCESS_RECHECK: Duration = Duration::from_millis(250);
/// A viewer that takes longer than this to take one frame (or one answer) is
/// dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// Accepts RTSP connections until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState, per_address: usize) {
    let limits = crate::net::Limits {
        max: MAX_RTSP_CONNECTIONS,
        per_address,
    }
    .fit(0.15);
    crate::net::accept_loop(listener, "rtsp", limits, move |sock, peer| {
        let st = state.clone();
        async move {
            match connection(sock, peer, st).await {
                Ok(why) => tracing::info!(%peer, why, "rtsp connection ended"),
                Err(e) => tracing::info!(%peer, error = %e, "rtsp connection closed"),
            }
        }
    })
    .await;
}

/// The grant token and rendition in a request URL `.../media/{grant}/live[/...]`
/// or `.../media/{grant}/sub[/...]`.
fn grant_of(uri: &str) -> Option<(&str, Rendition)> {
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("media"), Some(token), Some(stream)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let rendition = match stream {
        "live" => Rendition::Main,
        "sub" => Rendition::Sub,
        _ => return None,
    };
    (!token.is_empty()).then_some((token, rendition))
}

/// The camera and rendition in a viewer-key stream URL
/// `.../cameras/{camera}` or `.../cameras/{camera}/sub` (without the track).
fn camera_of(uri: &str) -> Option<(CameraId, Rendition)> {
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or_default();
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("cameras"), Some(id)) = (parts.next(), parts.next()) else {
        return None;
    };
    let rendition = match (parts.next(), parts.next()) {
        (None | Some(""), None) => Rendition::Main,
        (Some("sub"), None | Some("")) => Rendition::Sub,
        _ => return None,
    };
    Some((id.parse().ok()?, rendition))
}

/// The stream URL of a request URL (which may name the track).
fn stream_url(uri: &str) -> &str {
    let uri = uri.trim_end_matches('/');
    uri.strip_suffix("/trackID=0").unwrap_or(uri)
}

/// The RTSP session of a connection (one per connection).
struct Session {
    id: String,
    /// The grant token and rendition the session was set up with: every later
    /// request must name the same.
    token: String,
    rendition: Rendition,
    channel: u8,
}

/// What the request loop does after answering.
enum Next {
    Continue,
    Play {
        guard: EgressGuard,
        hub: Arc<Hub>,
    },
    Close(&'static str),
    /// Another node of the cluster ingests the camera: relay it here, then
    /// handle the request again.
    Relay(CameraId, Rendition),
}

struct Conn {
    state: AppState,
    peer: SocketAddr,
    session: Option<Session>,
    /// This connection's Digest nonce (viewer keys).
    nonce: String,
    /// The restream grant a viewer key bought on this connection: for which
    /// camera and key, and its token.
    restream: Option<(CameraId, ViewerKeyId, String)>,
    /// The request is being handled again after waiting for a relay: answer
    /// it as it stands.
    relay_waited: bool,
}

impl Conn {
    /// In a cluster, a camera that another node ingests is relayed here
    /// before DESCRIBE or PLAY is answered ([`Next::Relay`]).
    fn relay_first(&self, camera: CameraId, rendition: Rendition) -> Option<(Vec<u8>, Next)> {
        let elsewhere = self
            .state
            .cluster
            .get()
            .is_some_and(|c| c.placement().holder(camera, rendition).is_some());
        (elsewhere && !self.relay_waited).then_some((Vec::new(), Next::Relay(camera, rendition)))
    }

    /// The door for the grant in `req`'s URL, and the rendition the URL names:
    /// an error status if it does not open.
    fn door(&mut self, req: &Request) -> Result<(EgressGuard, String, Rendition), u16> {
        let (token, rendition) = match grant_of(&req.uri) {
            Some((t, r)) => (t.to_owned(), r),
            None => {
                let (camera, r) = camera_of(stream_url(&req.uri)).ok_or(404u16)?;
                (self.restream_token(req, camera)?, r)
            }
        };
        let token = token.as_str();
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.token != token || s.rendition != rendition)
        {
            return Err(455);
        }
        match crate::door::open(&self.state, token, None) {
            Ok(g) => Ok((g, token.to_string(), rendition)),
            Err(AppError::NotFound) => Err(404),
            Err(e) => {
                tracing::info!(peer = %self.peer, error = %e, method = %req.method, "rtsp request refused");
                Err(403)
            }
        }
    }

    /// The restream grant token for `camera`, if the request's Digest answer
    /// proves a viewer key: 401 (challenge) without one or with a wrong one.
    fn restream_token(&mut self, req: &Request, camera: CameraId) -> Result<String, u16> {
        let Some(creds) = req
            .header("Authorization")
            .and_then(hearth_media::digest::parse)
        else {
            return Err(401);
        };
        let key = creds.username.parse::<ViewerKeyId>().ok().filter(|k| {
            let secret = self.state.keys.viewer_key_secret(*k);
            creds.verify(&req.method, &self.nonce, &secret)
        });
        let Some(key) = key else {
            tracing::warn!(peer = %self.peer, "rtsp: wrong viewer key");
            return Err(match super::restream::failed(&self.state, self.peer.ip()) {
                Ok(()) => 401,
                Err(_) => 403, // over the address's budget: no new challenge
            });
        };
        if let Some((c, k, token)) = &self.restream
            && *c == camera
            && *k == key
        {
            return Ok(token.clone());
        }
        let grant = super::restream::grant_for(&self.state, key, camera).map_err(|e| match e {
            AppError::NotFound => 404u16,
            AppError::Unavailable(_) => 503,
            _ => 403,
        })?;
        let token = self.state.door.grant_key().sign(&grant);
        self.restream = Some((camera, key, token.clone()));
        Ok(token)
    }

    fn session_header(&self) -> String {
        self.session.as_ref().map_or_else(String::new, |s| {
            format!("{};timeout={}", s.id, REQUEST_TIMEOUT.as_secs())
        })
    }

    /// The session id a request names, if any.
    fn named_session(req: &Request) -> Option<&str> {
        req.header("Session")
            .map(|v| v.split(';').next().unwrap_or_default().trim())
    }

    fn session_matches(&self, req: &Request) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| Self::named_session(req) == Some(s.id.as_str()))
    }

    /// Answers one request; what to do next (for PLAY the answer is written by
    /// [`play`], which names the first packet in it).
    fn handle(&mut self, req: &Request) -> (Vec<u8>, Next) {
        let Some(cseq) = req.cseq() else {
            // RFC 2326 12.17: every request carries CSeq.
            return (rtsp::response(400, None, &[], b""), Next::Continue);
        };
        let cseq = Some(cseq);
        let challenge = hearth_media::digest::challenge(&self.nonce);
        let status = |code: u16| {
            let headers: &[(&str, &str)] = if code == 401 {
                &[("WWW-Authenticate", challenge.as_str())]
            } else {
                &[]
            };
            (rtsp::response(code, cseq, headers, b""), Next::Continue)
        };
        match req.method.as_str() {
            "OPTIONS" => (
                rtsp::response(200, cseq, &[("Public", PUBLIC)], b""),
                Next::Continue,
            ),
            "DESCRIBE" => {
                let (guard, _, rendition) = match self.door(req) {
                    Ok(d) => d,
                    Err(code) => return status(code),
                };
                let g = guard.grant();
                let described = self
                    .state
                    .hubs
                    .get_rendition(g.camera, rendition)
                    .and_then(|h| h.video_info())
                    .filter(|(epoch, _, _)| *epoch == g.epoch)
                    .map(|(_, config, fps)| rtsp::sdp(&config, rand::random::<u32>().into(), fps));
                match described {
                    Some(Ok(sdp)) => {
                        let base = format!("{}/", stream_url(&req.uri));
                        let headers = [
                            ("Content-Type", "application/sdp"),
                            ("Content-Base", base.as_str()),
                        ];
                        (
                            rtsp::response(200, cseq, &headers, sdp.as_bytes()),
                            Next::Continue,
                        )
                    }
                    // Offline, or no codec configuration yet.
                    _ => self
                        .relay_first(g.camera, rendition)
                        .unwrap_or_else(|| status(503)),
                }
            }
            "SETUP" => {
                let (_, token, rendition) = match self.door(req) {
                    Ok(d) => d,
                    Err(code) => return status(code),
                };
                let Some((rtp, rtcp)) = req
                    .header("Transport")
                    .and_then(rtsp::tcp_interleaved_channels)
                else {
                    return status(461);
                };
                // A session named must be this connection's.
                if Self::named_session(req).is_some() && !self.session_matches(req) {
                    return status(454);
                }
                let id = self.session.as_ref().map_or_else(
                    || format!("{:016x}", rand::random::<u64>()),
                    |s| s.id.clone(),
                );
                self.session = Some(Session {
                    id,
                    token,
                    rendition,
                    channel: rtp,
                });
                let transport = format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp}");
                let session = self.session_header();
                let headers = [
                    ("Transport", transport.as_str()),
                    ("Session", session.as_str()),
                ];
                (rtsp::response(200, cseq, &headers, b""), Next::Continue)
            }
            "PLAY" => {
                if !self.session_matches(req) {
                    return status(454);
                }
                let (guard, _, rendition) = match self.door(req) {
                    Ok(d) => d,
                    Err(code) => return status(code),
                };
                let camera = guard.grant().camera;
                let real = self.state.hubs.get_rendition(camera, rendition);
                let hub = self
                    .state
                    .faults
                    .hub(camera, rendition, real, &self.state.hubs);
                let Some(hub) = hub else {
                    return self
                        .relay_first(camera, rendition)
                        .unwrap_or_else(|| status(503));
                };
                (Vec::new(), Next::Play { guard, hub })
            }
            "GET_PARAMETER" | "SET_PARAMETER" => {
                let session = self.session_header();
                (
                    rtsp::response(200, cseq, &[("Session", session.as_str())], b""),
                    Next::Continue,
                )
            }
            "TEARDOWN" => (rtsp::response(200, cseq, &[], b""), Next::Close("teardown")),
            _ => (
                rtsp::response(501, cseq, &[("Public", PUBLIC)], b""),
                Next::Continue,
            ),
        }
    }
}

/// Reads into `buf` until `deadline`; false when the peer closed.
async fn read_until(
    rd: &mut OwnedReadHalf,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> anyhow::Result<bool> {
    let n = tokio::time::timeout_at(deadline, rd.read_buf(buf))
        .await
        .map_err(|_| anyhow::anyhow!("no complete request in time"))??;
    Ok(n > 0)
}

/// Writes an answer, within [`WRITE_TIMEOUT`].
async fn answer(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> anyhow::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(bytes))
        .await
        .map_err(|_| anyhow::anyhow!("the client does not read its answers"))??;
    Ok(())
}

/// The complete messages at the front of `buf`, which is then left with the
/// rest (one move per read, however many messages it held).
fn take_messages(buf: &mut Vec<u8>) -> anyhow::Result<Vec<Request>> {
    let (mut used, mut requests) = (0, Vec::new());
    while let Some((msg, n)) = rtsp::parse(&buf[used..])? {
        used += n;
        if let Message::Request(r) = msg {
            requests.push(r);
        }
    }
    buf.drain(..used);
    Ok(requests)
}

async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    state: AppState,
) -> anyhow::Result<&'static str> {
    let (mut rd, mut wr) = sock.into_split();
    let mut conn = Conn {
        state,
        peer,
        session: None,
        nonce: format!("{:032x}", rand::random::<u128>()),
        restream: None,
        relay_waited: false,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // Fixed from the connection's start: requests before PLAY do not extend it.
    let deadline = Instant::now() + PRE_PLAY_TIMEOUT;
    loop {
        for req in take_messages(&mut buf)? {
            let (mut bytes, mut next) = conn.handle(&req);
            if let Next::Relay(camera, rendition) = next {
                crate::door::relay::ensure(&conn.state, camera, rendition).await;
                conn.relay_waited = true;
                (bytes, next) = conn.handle(&req);
                conn.relay_waited = false;
            }
            if !bytes.is_empty() {
                answer(&mut wr, &bytes).await?;
            }
            match next {
                Next::Continue | Next::Relay(..) => {}
                Next::Close(why) => return Ok(why),
                Next::Play { guard, hub } => {
                    let grant = guard.grant().id;
                    let _playing = conn.state.metrics.rtsp_sessions.hold();
                    let ended = play(&mut conn, &req, guard, hub, &mut rd, &mut wr, &mut buf).await;
                    let why = match &ended {
                        Ok(why) => *why,
                        Err(_) => "connection error",
                    };
                    conn.state.audit.close_session(grant, why);
                    if matches!(
                        why,
                        "access revoked" | "grant expired" | "isolation violation"
                    ) {
                        // Drop what the kernel still holds for this viewer.
                        let _ = wr.as_ref().set_zero_linger();
                    }
                    return ended;
                }
            }
        }
        if !read_until(&mut rd, &mut buf, deadline).await? {
            return Ok("client closed");
        }
    }
}

/// The stream of one PLAY: answers the request, then sends frames as the camera
/// produces them until the client leaves, access ends or the camera goes.
async fn play(
    conn: &mut Conn,
    req: &Request,
    guard: EgressGuard,
    hub: Arc<Hub>,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
) -> anyhow::Result<&'static str> {
    let g = *guard.grant();
    let channel = conn.session.as_ref().map_or(0, |s| s.channel);
    let packetizer = H264Packetizer::new(channel, rand::random(), rand::random());
    let rtp_base: u32 = rand::random();
    let session = conn.session_header();
    let info = format!(
        "url={}/trackID=0;seq={};rtptime={rtp_base}",
        stream_url(&req.uri),
        packetizer.next_seq()
    );
    let headers = [
        ("Session", session.as_str()),
        ("Range", "npt=now-"),
        ("RTP-Info", info.as_str()),
    ];
    answer(wr, &rtsp::response(200, req.cseq(), &headers, b"")).await?;
    tracing::info!(peer = %conn.peer, grant = ?g.id, camera = ?g.camera, integration = g.integration.as_str(), "rtsp play");
    let mut frames = hub.subscribe_frames();
    let rendition = conn
        .session
        .as_ref()
        .map_or(Rendition::Main, |s| s.rendition);
    let mut stream = Stream {
        // From the grant and the URL, not from the hub a lookup returned.
        stamper: conn
            .state
            .hubs
            .stamper(g.camera, g.epoch)
            .for_rendition(rendition),
        guard,
        packetizer,
        rtp_base,
        first_pts_ms: None,
        feed: Feed::default(),
        packets: Vec::new(),
    };
    let mut recheck = tokio::time::interval(ACCESS_RECHECK);
    loop {
        if let Err(why) = stream.allowed() {
            return Ok(why);
        }
        tokio::select! {
            changed = frames.changed() => {
                if changed.is_err() {
                    return Ok("camera gone");
                }
                match stream.send_new(&conn.state, &hub, wr).await {
                    Ok(()) => {}
                    Err(Stop::Why(why)) => return Ok(why),
                    Err(Stop::Io(e)) => return Err(e.into()),
                }
            }
            _ = recheck.tick() => {
                // A relayed camera stays relayed while it is watched here.
                crate::door::relay::ensure(&conn.state, g.camera, rendition).await;
            }
            read = rd.read_buf(buf) => {
                if read? == 0 {
                    return Ok("client closed");
                }
                for r in take_messages(buf)? {
                    let (bytes, next) = match r.method.as_str() {
                        "PLAY" | "DESCRIBE" | "SETUP" => {
                            (rtsp::response(455, r.cseq(), &[], b""), Next::Continue)
                        }
                        _ => conn.handle(&r),
                    };
                    answer(wr, &bytes).await?;
                    if let Next::Close(why) = next {
                        return Ok(why);
                    }
                }
            }
        }
    }
}

enum Stop {
    Why(&'static str),
    Io(std::io::Error),
}

/// The sending half of a playing session.
struct Stream {
    guard: EgressGuard,
    stamper: Stamper,
    packetizer: H264Packetizer,
    rtp_base: u32,
    first_pts_ms: Option<i64>,
    feed: Feed,
    packets: Vec<InterleavedPacket>,
}

impl Stream {
    fn grant(&self) -> GrantId {
        self.guard.grant().id
    }

    /// Whether the grant still holds (expiry, revocation, kill switches).
    fn allowed(&self) -> Result<(), &'static str> {
        allowed(&self.guard)
    }

    /// Sends the frames the viewer has not had yet, each only while the grant
    /// holds and as the door admits it.
    async fn send_new(
        &mut self,
        state: &AppState,
        hub: &Hub,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), Stop> {
        let batch = self.feed.next(state, hub, &self.guard).map_err(Stop::Why)?;
        let Some(config) = batch.config else {
            return Ok(()); // no codec configuration yet, so no frames
        };
        let parameter_sets: Vec<Bytes> = config.sps.iter().chain(&config.pps).cloned().collect();
        for frame in &batch.frames {
            self.allowed().map_err(Stop::Why)?;
            let admitted: AdmittedFrame<'_> = self
                .guard
                .admit_frame(frame, &self.stamper)
                .map_err(|_| Stop::Why("isolation violation"))?;
            let f = admitted.frame();
            let first = *self.first_pts_ms.get_or_insert(f.pts_ms);
            // Wrapping: B-frames' earlier pts are negative deltas, modulo 2^32.
            let ts = self
                .rtp_base
                .wrapping_add(f.pts_ms.wrapping_sub(first).wrapping_mul(90) as u32);
            let prefix: &[Bytes] = if f.keyframe { &parameter_sets } else { &[] };
            self.packets.clear();
            if let Err(e) = self.packetizer.packetize(
                prefix,
                &f.data,
                config.nalu_length_size,
                ts,
                &mut self.packets,
            ) {
                tracing::warn!(grant = ?self.grant(), error = %e, "rtsp: an access unit could not be packetized; skipped");
                continue;
            }
            self.write_frame(wr).await?;
        }
        Ok(())
    }

    /// Writes the packets of one frame; gives up when the viewer takes longer
    /// than [`WRITE_TIMEOUT`], and stops at once if access ends meanwhile.
    async fn write_frame(&mut self, wr: &mut OwnedWriteHalf) -> Result<(), Stop> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let mut batch = InterleavedBuf::new(&self.packets);
        let write = wr.write_all_buf(&mut batch);
        tokio::pin!(write);
        loop {
            tokio::select! {
                written = &mut write => return written.map_err(Stop::Io),
                _ = tokio::time::sleep(ACCESS_RECHECK) => {
                    self.allowed().map_err(Stop::Why)?;
                    if Instant::now() >= deadline {
                        return Err(Stop::Why("viewer too slow"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{camera_of, grant_of, stream_url};

    #[test]
    fn the_camera_is_read_from_viewer_key_urls() {
        use hearth_model::Rendition::{Main, Sub};
        let c = hearth_model::CameraId::random();
        let at = |p: &str| camera_of(stream_url(&format!("rtsp://h:8554/cameras/{c}{p}")));
        assert_eq!(at(""), Some((c, Main)));
        assert_eq!(at("/"), Some((c, Main)));
        assert_eq!(at("/trackID=0"), Some((c, Main)));
        assert_eq!(at("/sub"), Some((c, Sub)));
        assert_eq!(at("/sub/trackID=0"), Some((c, Sub)));
        assert_eq!(at("/main"), None);
        assert_eq!(at("/sub/x"), None);
        assert_eq!(camera_of("rtsp://h/cameras/not-an-id"), None);
        assert_eq!(camera_of("rtsp://h/media/abc/live"), None);
    }

    #[test]
    fn the_grant_is_read_from_the_stream_and_track_urls() {
        use hearth_model::Rendition::{Main, Sub};
        assert_eq!(
            grant_of("rtsp://h:8554/media/abc/live"),
            Some(("abc", Main))
        );
        assert_eq!(
            grant_of("rtsps://h/media/abc/live/trackID=0"),
            Some(("abc", Main))
        );
        assert_eq!(grant_of("/media/abc/live"), Some(("abc", Main)));
        assert_eq!(grant_of("rtsp://h/media/abc/sub"), Some(("abc", Sub)));
        assert_eq!(
            grant_of("rtsp://h/media/abc/sub/trackID=0"),
            Some(("abc", Sub))
        );
        for bad in [
            "rtsp://h/media//live",
            "rtsp://h/media//sub",
            "rtsp://h/other/abc/live",
            "rtsp://h/media/abc/main",
            "rtsp://h",
            "*",
            "rtsp://h/media/abc",
        ] {
            assert_eq!(grant_of(bad), None, "{bad}");
        }
        assert_eq!(
            stream_url("rtsp://h/media/a/live/trackID=0"),
            "rtsp://h/media/a/live"
        );
        assert_eq!(
            stream_url("rtsp://h/media/a/live/"),
            "rtsp://h/media/a/live"
        );
    }
}
