//! The simulated camera as an RTSP server, as most IP cameras are: H.264 over
//! RTP interleaved on the RTSP connection (TCP), behind Digest auth, at any
//! path of `rtsp://host:port/`. It is what `hearth demo` offers to add in the
//! web app (and what a home agent can pull), so a newcomer can try the RTSP
//! onboarding without a camera. Video only.
//!
//! The protocol pieces are hearth-media's sans-IO ones, the same Hearth's RTSP
//! egress uses: request parsing, responses, SDP, RTP packetization, Digest.
//! This module moves bytes: one encoder thread for the camera (it runs whether
//! or not anyone watches, like a camera), every frame broadcast to the playing
//! clients; a client that falls behind skips to the next keyframe, and one that
//! stops reading for [`WRITE_TIMEOUT`] is dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use hearth_media::digest;
use hearth_media::h264::AvcConfig;
use hearth_media::rtsp::{
    self, H264Packetizer, InterleavedBuf, InterleavedPacket, Message, Request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use crate::config::SimCameraConfig;
use crate::encoder::{EncodedFrame, Encoder};
use crate::error::CameraError;
use crate::flv;
use crate::rtmp::{FrameSource, stopped};

/// A client must finish its requests up to PLAY within this time.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// A client that takes no bytes for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many clients at once (a camera serves a few).
const MAX_CLIENTS: usize = 16;
const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER";

/// Who may watch: the camera's user name and password.
#[derive(Clone)]
pub struct RtspLogin {
    pub user: String,
    pub password: String,
}

/// What every client shares: the frames and the stream's parameters.
struct Shared {
    frames: broadcast::Sender<Arc<EncodedFrame>>,
    config: watch::Receiver<Option<AvcConfig>>,
    login: RtspLogin,
    fps: u32,
    keyframe: Arc<std::sync::atomic::AtomicBool>,
    clients: Arc<tokio::sync::Semaphore>,
}

/// Serves the simulated camera `cfg` on `listener` until `shutdown`.
pub async fn serve_rtsp(
    listener: TcpListener,
    cfg: SimCameraConfig,
    login: RtspLogin,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), CameraError> {
    let encoder = Encoder::new(cfg.clone())?;
    let mut source = FrameSource::spawn(encoder)?;
    let (frames, _) = broadcast::channel(2 * cfg.fps.max(1) as usize);
    let (config_tx, config) = watch::channel(None);
    let shared = Arc::new(Shared {
        frames,
        config,
        login,
        fps: cfg.fps,
        keyframe: source.keyframe_requester(),
        clients: Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS)),
    });
    info!(camera = %cfg.name, addr = ?listener.local_addr().ok(), "simulated RTSP camera serving");
    let result = loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break Ok(()),
            frame = source.frames.recv() => {
                let Some(frame) = frame else { break Err(CameraError::EncoderStopped) };
                if frame.keyframe
                    && let Some(c) = avc_config(&frame.annexb)
                    && config_tx.borrow().as_ref() != Some(&c)
                {
                    config_tx.send_replace(Some(c));
                }
                let _ = shared.frames.send(Arc::new(frame));
            }
            accepted = listener.accept() => {
                let Ok((sock, peer)) = accepted else { continue };
                let Ok(permit) = shared.clients.clone().try_acquire_owned() else {
                    warn!(%peer, "rtsp: too many clients; closing");
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match client(sock, &shared).await {
                        Ok(why) => debug!(%peer, why, "rtsp client ended"),
                        Err(e) => debug!(%peer, error = %e, "rtsp client ended"),
                    }
                });
            }
        }
    };
    source.stop().await;
    result
}

/// The decoder configuration an IDR's in-band SPS and PPS make.
fn avc_config(annexb: &[u8]) -> Option<AvcConfig> {
    let nals = flv::split_annexb(annexb);
    let find = |t| nals.iter().find(|n| flv::nal_type(n) == Some(t)).copied();
    let record = flv::avc_decoder_configuration_record(find(flv::NAL_SPS)?, find(flv::NAL_PPS)?)?;
    AvcConfig::parse_record(record).ok()
}

/// Parses every whole request at the front of `buf` (skipping interleaved
/// RTCP); an error for a malformed one.
fn requests(buf: &mut Vec<u8>) -> std::io::Result<Vec<Request>> {
    let mut out = Vec::new();
    loop {
        match rtsp::parse(buf) {
            Ok(Some((msg, used))) => {
                buf.drain(..used);
                if let Message::Request(r) = msg {
                    out.push(r);
                }
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ));
            }
        }
    }
}

async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// One client connection, until it leaves; why it ended.
async fn client(sock: tokio::net::TcpStream, shared: &Shared) -> std::io::Result<&'static str> {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let nonce = format!("{:032x}", rand_u128());
    let session = format!("{:016x}", rand_u128() as u64);
    let mut channel = None;
    let mut buf = Vec::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        for req in requests(&mut buf)? {
            let cseq = req.cseq();
            let authorized = req
                .header("Authorization")
                .and_then(digest::parse)
                .is_some_and(|c| {
                    c.username == shared.login.user
                        && c.verify(&req.method, &nonce, &shared.login.password)
                });
            let challenge = digest::challenge(&nonce);
            let answer = match req.method.as_str() {
                "OPTIONS" => rtsp::response(200, cseq, &[("Public", PUBLIC)], b""),
                "TEARDOWN" => {
                    write(&mut wr, &rtsp::response(200, cseq, &[], b"")).await?;
                    return Ok("teardown");
                }
                _ if !authorized => {
                    rtsp::response(401, cseq, &[("WWW-Authenticate", challenge.as_str())], b"")
                }
                "DESCRIBE" => {
                    let config = shared.config.borrow().clone();
                    match config
                        .map(|c| rtsp::sdp(&c, u64::from(rand_u128() as u32), Some(shared.fps)))
                    {
                        Some(Ok(sdp)) => {
                            let base = format!("{}/", req.uri.trim_end_matches('/'));
                            rtsp::response(
                                200,
                                cseq,
                                &[("Content-Type", "application/sdp"), ("Content-Base", &base)],
                                sdp.as_bytes(),
                            )
                        }
                        _ => rtsp::response(503, cseq, &[], b""),
                    }
                }
                "SETUP" => match req
                    .header("Transport")
                    .and_then(rtsp::tcp_interleaved_channels)
                {
                    Some((rtp, rtcp)) => {
                        channel = Some(rtp);
                        let transport = format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp}");
                        rtsp::response(
                            200,
                            cseq,
                            &[("Transport", &transport), ("Session", &session)],
                            b"",
                        )
                    }
                    // This camera speaks RTP over the RTSP connection only.
                    None => rtsp::response(461, cseq, &[], b""),
                },
                "PLAY" => match channel {
                    Some(ch) => {
                        return play(&req, ch, &session, shared, &mut rd, &mut wr, &mut buf).await;
                    }
                    None => rtsp::response(455, cseq, &[], b""),
                },
                "GET_PARAMETER" | "SET_PARAMETER" => {
                    rtsp::response(200, cseq, &[("Session", &session)], b"")
                }
                _ => rtsp::response(501, cseq, &[("Public", PUBLIC)], b""),
            };
            write(&mut wr, &answer).await?;
        }
        let read = tokio::time::timeout_at(deadline, rd.read_buf(&mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if read == 0 {
            return Ok("client closed");
        }
        if buf.len() > 64 * 1024 {
            return Ok("request too long");
        }
    }
}

/// Answers PLAY, then sends frames until the client leaves.
async fn play(
    req: &Request,
    channel: u8,
    session: &str,
    shared: &Shared,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    buf: &mut Vec<u8>,
) -> std::io::Result<&'static str> {
    let mut packetizer = H264Packetizer::new(channel, rand_u128() as u32, rand_u128() as u16);
    let rtp_base = rand_u128() as u32;
    let info = format!(
        "url={}/trackID=0;seq={};rtptime={rtp_base}",
        req.uri.trim_end_matches('/'),
        packetizer.next_seq()
    );
    let answer = rtsp::response(
        200,
        req.cseq(),
        &[
            ("Session", session),
            ("Range", "npt=now-"),
            ("RTP-Info", &info),
        ],
        b"",
    );
    write(wr, &answer).await?;
    let mut frames = shared.frames.subscribe();
    // Start with a fresh keyframe rather than wait for the next one.
    shared.keyframe.store(true, Ordering::Relaxed);
    let mut first_pts = None;
    let mut waiting_for_keyframe = true;
    let mut packets: Vec<InterleavedPacket> = Vec::new();
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        waiting_for_keyframe = true;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok("camera stopped"),
                };
                // Nothing decodes before a keyframe (also after falling behind).
                if waiting_for_keyframe && !frame.keyframe {
                    continue;
                }
                waiting_for_keyframe = false;
                let first = *first_pts.get_or_insert(frame.pts_ms);
                let ts = rtp_base.wrapping_add(((frame.pts_ms - first) * 90) as u32);
                packets.clear();
                let au = Bytes::clone(&frame.avcc);
                if packetizer
                    .packetize(&[], &au, flv::NALU_LENGTH_SIZE, ts, &mut packets)
                    .is_err()
                {
                    continue;
                }
                let mut batch = InterleavedBuf::new(&packets);
                tokio::time::timeout(WRITE_TIMEOUT, wr.write_all_buf(&mut batch))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            }
            read = rd.read_buf(buf) => {
                if read? == 0 {
                    return Ok("client closed");
                }
                for r in requests(buf)? {
                    if r.method == "TEARDOWN" {
                        write(wr, &rtsp::response(200, r.cseq(), &[], b"")).await?;
                        return Ok("teardown");
                    }
                    // Keep-alives (GET_PARAMETER, OPTIONS) and anything else.
                    write(wr, &rtsp::response(200, r.cseq(), &[("Session", session)], b"")).await?;
                }
                if buf.len() > 64 * 1024 {
                    return Ok("request too long");
                }
            }
        }
    }
}

fn rand_u128() -> u128 {
    rand::random()
}
