//! The RTSP egress driver: one camera's live video for a linked smart display
//! (Alexa's camera interface asks for RTSP), as RTP interleaved on the RTSP
//! connection, starting at the hub's current keyframe.
//!
//! A stream URL is `{rtsp_url}/media/{grant}/live`, where the grant is a linked
//! display's: one camera, one binding epoch, one account link, one integration,
//! exactly as for HLS. A web app grant is held by a browser session that an RTSP
//! client cannot present, so it opens nothing here. The grant is verified and
//! checked against the live access view on every request and, while playing,
//! before every frame and at least every [`ACCESS_RECHECK`], so unlinking, a
//! revoked share, a transfer or a kill switch ends the session within a second.
//! Every frame leaves through the egress door ([`EgressGuard::admit_frame`]), which
//! checks its provenance stamp against the grant; the driver can only send
//! admitted frames.
//!
//! Only the TCP-interleaved transport is offered (`RTP/AVP/TCP`): it is what Alexa
//! uses, and it crosses NAT and a TLS proxy. Hearth speaks plain RTSP; for
//! `rtsps://` put a TCP TLS terminator in front and set `rtsp_public_url`.
//! Parsing, the SDP and RTP packetization are sans-IO in `hearth_media::rtsp`;
//! this file owns the socket and the timers.

use crate::egress::{AdmittedFrame, EgressGuard};
use crate::error::AppError;
use crate::hub::{FrameCursor, Hub};
use crate::keys::Stamper;
use crate::state::AppState;
use bytes::Bytes;
use hearth_media::rtsp::{self, H264Packetizer, InterleavedPacket, Message, Request};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

const MAX_RTSP_CONNECTIONS: usize = 1024;
/// A client that is not playing must send its next request within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// While playing: how often access is checked when no frame comes.
pub const ACCESS_RECHECK: Duration = Duration::from_millis(250);
/// A viewer that takes longer than this to take one frame's packets is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Announced in `Session`; clients send a keepalive well within it.
const SESSION_TIMEOUT_S: u32 = 60;
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// Accepts RTSP connections until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) {
    crate::serve::accept_loop(listener, "rtsp", MAX_RTSP_CONNECTIONS, move |sock, peer| {
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

/// The grant token in a request URL `.../media/{grant}/live[/...]`.
fn grant_of(uri: &str) -> Option<&str> {
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("media"), Some(token), Some("live")) if !token.is_empty() => Some(token),
        _ => None,
    }
}

/// The frame rate the frames' decode times show, rounded (for the SDP).
fn framerate(frames: &[hearth_media::VideoFrame]) -> Option<u32> {
    let (first, last) = (frames.first()?, frames.last()?);
    let span_ms = last.dts_ms - first.dts_ms;
    let n = i64::try_from(frames.len()).ok()? - 1;
    (span_ms > 0 && n > 0).then(|| ((n * 1000 + span_ms / 2) / span_ms) as u32)
}

/// The RTSP session of a connection (one per connection).
struct Session {
    id: String,
    /// The grant token the session was set up with: every later request must
    /// present the same one.
    token: String,
    channel: u8,
}

/// What the request loop does after answering.
enum Next {
    Continue,
    Play { guard: EgressGuard, hub: Arc<Hub> },
    Close(&'static str),
}

struct Conn {
    state: AppState,
    peer: SocketAddr,
    session: Option<Session>,
}

impl Conn {
    /// The door for the grant in `req`'s URL: an error status if it does not open.
    fn door(&self, req: &Request) -> Result<(EgressGuard, String), u16> {
        let token = grant_of(&req.uri).ok_or(404u16)?;
        if self.session.as_ref().is_some_and(|s| s.token != token) {
            return Err(455);
        }
        match crate::egress::open(&self.state, token, None) {
            Ok(g) => Ok((g, token.to_string())),
            Err(AppError::NotFound) => Err(404),
            Err(e) => {
                tracing::info!(peer = %self.peer, error = %e, method = %req.method, "rtsp request refused");
                Err(403)
            }
        }
    }

    fn session_header(&self) -> Option<String> {
        self.session
            .as_ref()
            .map(|s| format!("{};timeout={SESSION_TIMEOUT_S}", s.id))
    }

    fn session_matches(&self, req: &Request) -> bool {
        let presented = req
            .header("Session")
            .map(|v| v.split(';').next().unwrap_or_default().trim());
        self.session
            .as_ref()
            .is_some_and(|s| presented == Some(s.id.as_str()))
    }

    /// Answers one request; what to do next.
    fn handle(&mut self, req: &Request) -> (Vec<u8>, Next) {
        let cseq = req.cseq();
        let status = |code: u16| (rtsp::response(code, cseq, &[], b""), Next::Continue);
        match req.method.as_str() {
            "OPTIONS" => (
                rtsp::response(200, cseq, &[("Public", PUBLIC)], b""),
                Next::Continue,
            ),
            "DESCRIBE" => {
                let (guard, _) = match self.door(req) {
                    Ok(d) => d,
                    Err(code) => return status(code),
                };
                let g = guard.grant();
                let described = self
                    .state
                    .hubs
                    .get(g.camera)
                    .and_then(|h| h.frames_after(None))
                    .filter(|b| b.epoch == g.epoch)
                    .map(|b| {
                        rtsp::sdp(
                            &b.config,
                            rand::random::<u32>().into(),
                            framerate(&b.frames),
                        )
                    });
                match described {
                    Some(Ok(sdp)) => {
                        let base = format!("{}/", req.uri.trim_end_matches('/'));
                        let headers = [
                            ("Content-Type", "application/sdp"),
                            ("Content-Base", base.as_str()),
                        ];
                        (
                            rtsp::response(200, cseq, &headers, sdp.as_bytes()),
                            Next::Continue,
                        )
                    }
                    // Offline, or no keyframe yet.
                    _ => status(503),
                }
            }
            "SETUP" => {
                let (_, token) = match self.door(req) {
                    Ok(d) => d,
                    Err(code) => return status(code),
                };
                let Some((rtp, rtcp)) = req
                    .header("Transport")
                    .and_then(rtsp::tcp_interleaved_channels)
                else {
                    return status(461);
                };
                if self.session.is_some() && !self.session_matches(req) {
                    return status(454);
                }
                let id = self.session.as_ref().map_or_else(
                    || format!("{:016x}", rand::random::<u64>()),
                    |s| s.id.clone(),
                );
                self.session = Some(Session {
                    id,
                    token,
                    channel: rtp,
                });
                let transport = format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp}");
                let session = self.session_header().unwrap_or_default();
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
                let (guard, _) = match self.door(req) {
                    Ok(d) => d,
                    Err(code) => return status(code),
                };
                let camera = guard.grant().camera;
                let hub =
                    self.state
                        .faults
                        .hub(camera, self.state.hubs.get(camera), &self.state.hubs);
                let Some(hub) = hub else {
                    return status(503);
                };
                // The response is written with the first packets (it names them).
                (Vec::new(), Next::Play { guard, hub })
            }
            "GET_PARAMETER" | "SET_PARAMETER" => {
                let session = self.session_header().unwrap_or_default();
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
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        while let Some((msg, used)) = rtsp::parse(&buf)? {
            buf.drain(..used);
            let Message::Request(req) = msg else { continue };
            let (answer, next) = conn.handle(&req);
            if !answer.is_empty() {
                wr.write_all(&answer).await?;
            }
            match next {
                Next::Continue => {}
                Next::Close(why) => return Ok(why),
                Next::Play { guard, hub } => {
                    return play(&mut conn, &req, guard, hub, &mut rd, &mut wr, &mut buf).await;
                }
            }
        }
        let n = tokio::time::timeout(REQUEST_TIMEOUT, rd.read_buf(&mut buf))
            .await
            .map_err(|_| anyhow::anyhow!("no request within {REQUEST_TIMEOUT:?}"))??;
        if n == 0 {
            return Ok("client closed");
        }
    }
}

/// Writes every packet of `packets`, headers and shared payloads, without
/// copying the payloads.
async fn write_packets(
    wr: &mut OwnedWriteHalf,
    packets: &[InterleavedPacket],
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = packets
        .iter()
        .flat_map(|p| [IoSlice::new(p.header()), IoSlice::new(&p.payload)])
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = wr.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// The stream of one PLAY: answers the request, then sends frames as the camera
/// produces them until the client leaves, access ends or the camera goes.
#[allow(clippy::too_many_arguments)]
async fn play(
    conn: &mut Conn,
    req: &Request,
    guard: EgressGuard,
    hub: Arc<Hub>,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
) -> anyhow::Result<&'static str> {
    let g = *guard.grant();
    let channel = conn.session.as_ref().map_or(0, |s| s.channel);
    let packetizer = H264Packetizer::new(channel, rand::random(), rand::random());
    let rtp_base: u32 = rand::random();
    let session = conn.session_header().unwrap_or_default();
    let track = format!("{}/trackID=0", req.uri.trim_end_matches('/'));
    let info = format!(
        "url={track};seq={};rtptime={rtp_base}",
        packetizer.next_seq()
    );
    let headers = [
        ("Session", session.as_str()),
        ("Range", "npt=now-"),
        ("RTP-Info", info.as_str()),
    ];
    wr.write_all(&rtsp::response(200, req.cseq(), &headers, b""))
        .await?;
    tracing::info!(peer = %conn.peer, grant = ?g.id, camera = ?g.camera, integration = g.integration.as_str(), "rtsp play");
    let stamper = hub.stamper(g.epoch);
    let mut frames = hub.subscribe_frames();
    let mut stream = Stream {
        guard,
        stamper,
        packetizer,
        rtp_base,
        first_pts_ms: None,
        cursor: None,
        packets: Vec::new(),
    };
    let mut recheck = tokio::time::interval(ACCESS_RECHECK);
    let why = loop {
        if let Err(why) = stream.allowed(&conn.state) {
            break why;
        }
        tokio::select! {
            changed = frames.changed() => {
                if changed.is_err() {
                    break "camera gone";
                }
                match stream.send_new(&conn.state, &hub, wr).await {
                    Ok(()) => {}
                    Err(Stop::Why(why)) => break why,
                    Err(Stop::Io(e)) => return Err(e.into()),
                }
            }
            _ = recheck.tick() => {}
            read = rd.read_buf(buf) => {
                if read? == 0 {
                    break "client closed";
                }
                while let Some((msg, used)) = rtsp::parse(buf)? {
                    buf.drain(..used);
                    let Message::Request(r) = msg else { continue };
                    let (answer, next) = match r.method.as_str() {
                        "PLAY" | "DESCRIBE" | "SETUP" => (rtsp::response(455, r.cseq(), &[], b""), Next::Continue),
                        _ => conn.handle(&r),
                    };
                    wr.write_all(&answer).await?;
                    if let Next::Close(why) = next {
                        conn.state.audit.close_session(g.id, why);
                        return Ok(why);
                    }
                }
            }
        }
    };
    conn.state.audit.close_session(g.id, why);
    Ok(why)
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
    cursor: Option<FrameCursor>,
    packets: Vec<InterleavedPacket>,
}

impl Stream {
    /// Whether the grant still holds (expiry, revocation, kill switches).
    fn allowed(&self, state: &AppState) -> Result<(), &'static str> {
        let g = self.guard.grant();
        if g.expires_at <= crate::clock::now() {
            return Err("grant expired");
        }
        if !state.bench.unguarded() && state.access.check(g).is_err() {
            return Err("access revoked");
        }
        Ok(())
    }

    /// Sends the frames the viewer has not had yet, each only as the door admits it.
    async fn send_new(
        &mut self,
        state: &AppState,
        hub: &Hub,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), Stop> {
        let Some(batch) = hub.frames_after(self.cursor) else {
            return Err(Stop::Why("camera offline"));
        };
        let batch = state
            .faults
            .frame_batch(self.guard.grant().camera, batch, &state.hubs);
        if batch.epoch != self.guard.grant().epoch {
            return Err(Stop::Why("binding epoch changed"));
        }
        self.cursor = Some(batch.cursor);
        let parameter_sets: Vec<Bytes> = batch
            .config
            .sps
            .iter()
            .chain(&batch.config.pps)
            .cloned()
            .collect();
        for frame in &batch.frames {
            let admitted: AdmittedFrame<'_> = self
                .guard
                .admit_frame(frame, &self.stamper)
                .map_err(|_| Stop::Why("isolation violation"))?;
            let f = admitted.frame();
            let first = *self.first_pts_ms.get_or_insert(f.pts_ms);
            let ts = self.rtp_base.wrapping_add(((f.pts_ms - first) * 90) as u32);
            let prefix: &[Bytes] = if f.keyframe { &parameter_sets } else { &[] };
            self.packets.clear();
            if let Err(e) = self.packetizer.packetize(
                prefix,
                &f.data,
                batch.config.nalu_length_size,
                ts,
                &mut self.packets,
            ) {
                tracing::warn!(error = %e, "rtsp: an access unit could not be packetized; skipped");
                continue;
            }
            match tokio::time::timeout(WRITE_TIMEOUT, write_packets(wr, &self.packets)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Stop::Io(e)),
                Err(_) => return Err(Stop::Why("viewer too slow")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::grant_of;

    #[test]
    fn the_grant_is_read_from_the_stream_and_track_urls() {
        assert_eq!(grant_of("rtsp://h:8554/media/abc/live"), Some("abc"));
        assert_eq!(grant_of("rtsps://h/media/abc/live/trackID=0"), Some("abc"));
        assert_eq!(grant_of("/media/abc/live"), Some("abc"));
        for bad in [
            "rtsp://h/media//live",
            "rtsp://h/other/abc/live",
            "rtsp://h",
            "*",
            "rtsp://h/media/abc",
        ] {
            assert_eq!(grant_of(bad), None, "{bad}");
        }
    }
}
