//! WebRTC egress over WHEP (draft-ietf-wish-whep): a viewer `POST`s an SDP offer
//! to its grant's `whep_url` (with its session as `Authorization: Bearer`, as for
//! HLS) and gets `201 Created`, the SDP answer and a `Location` naming the
//! session; `DELETE` on that ends it; `PATCH` with a trickle-ICE fragment is
//! accepted (Hearth is ICE-lite: it learns the viewer's addresses from the
//! viewer's own connectivity checks, so there is nothing to add).
//!
//! Built on str0m (sans-IO WebRTC; DTLS and SRTP with AWS-LC): every session is
//! one `Rtc` on its own task ([`session`]), and all of them share one UDP socket
//! ([`udp`]), so a box behind a firewall opens one port. Video is the camera's
//! own H.264, packetized, not transcoded; there is no audio track yet (the
//! cameras send AAC, which WebRTC browsers do not take; Opus would need a
//! transcode per camera).
//!
//! The isolation rules are those of every way out: the session exists only under
//! a grant the door opened (verified, presented by its holder, live), and every
//! frame passes [`hearth_access::EgressGuard::admit_frame`] before str0m sees it.

pub mod ice;
pub mod session;
pub mod udp;

use super::{
    Egress,
    hls::{hub_for, rendition_hub_for},
};
use crate::auth::ClientAddr;
use crate::error::AppError;
use crate::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_access::EgressGuard;
use hearth_model::{Rendition, WhepSessionId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::rtp::{Extension as RtpExtension, ExtensionMap};
use str0m::{Candidate, IceCreds, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// WebRTC sessions at once, in all (each is a task, a DTLS context and send
/// buffers): past this, `503`.
const MAX_SESSIONS: usize = 10_000;

/// The most sent video packets a session keeps for retransmission (NACK): the
/// builder's size, before [`session::rtx_packets`] fits it to the stream.
/// str0m's default (1000 packets, 3 s) cost about 300 KB more per viewer
/// (bench/README.md); a live view needs a round trip's worth.
const RTX_PACKETS: usize = 256;

/// The WebRTC side of the server: the shared socket and the running sessions.
pub struct WebRtc {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// Host candidates announced in answers: the socket's port on each address.
    candidates: Vec<SocketAddr>,
    demux: Arc<udp::Demux>,
    sessions: Mutex<HashMap<WhepSessionId, session::Handle>>,
    /// STUN/TURN servers handed to viewers.
    ice: ice::IceServers,
    /// The DTLS certificate every session presents (its fingerprint is in each
    /// answer): made once, not per session.
    cert: Option<DtlsCert>,
    /// Sessions at once from one client address (WHEP; see [`WebRtc::start`]).
    per_address: usize,
}

impl WebRtc {
    /// Binds the UDP socket at `addr` and starts reading it. `announce` are the
    /// addresses viewers reach this machine at (default: the bound address; an
    /// unspecified one announces loopback, with a warning).
    pub async fn bind(
        addr: SocketAddr,
        announce: &[IpAddr],
        ice: ice::IceServers,
        per_address: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding WebRTC UDP {addr}: {e}"))?;
        let local = socket.local_addr()?;
        let ips: Vec<IpAddr> = if !announce.is_empty() {
            announce.to_vec()
        } else if local.ip().is_unspecified() {
            tracing::warn!(%local, "WebRTC listens on every address but announces only loopback: set webrtc_candidates to the addresses viewers reach");
            vec![crate::config::reachable(local).ip()]
        } else {
            vec![local.ip()]
        };
        let candidates = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, local.port()))
            .collect();
        let socket = Arc::new(socket);
        let demux = Arc::new(udp::Demux::default());
        tokio::spawn(udp::receive(socket.clone(), demux.clone()));
        Ok(Arc::new(Self {
            socket,
            local,
            candidates,
            demux,
            sessions: Mutex::new(HashMap::new()),
            ice,
            cert: str0m::crypto::from_feature_flags()
                .dtls_provider
                .generate_certificate(),
            per_address,
        }))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The STUN/TURN servers a viewer holding `grant` may use.
    pub fn ice_servers(&self, grant: &hearth_access::grant::Grant) -> Vec<ice::IceServer> {
        self.ice.for_grant(grant)
    }

    /// Sessions running now.
    pub fn sessions(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WhepSessionId, session::Handle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn sdp_response(status: StatusCode, location: Option<&str>, sdp: String) -> Response {
    let mut r = (status, sdp).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    // The answer carries the session's ICE credentials: nobody may keep it.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        h.insert(header::LOCATION, l);
    }
    r
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// The str0m instance of a new session: ICE-lite, H.264 only, the playout-delay
/// extension (a viewer may render each frame as it is decoded), and the
/// credentials the demultiplexer knows it by. `adaptive` (the camera has a sub
/// rendition to move a congested viewer to): transport-wide congestion control
/// and str0m's bandwidth estimator too.
fn new_rtc(
    creds: IceCreds,
    candidates: &[SocketAddr],
    cert: Option<&DtlsCert>,
    adaptive: bool,
) -> Result<Rtc, AppError> {
    // Only what a one-way live view uses: the MID (BUNDLE) and the playout
    // delay; transport-wide sequence numbers only where an estimate can be
    // acted on: without one, the feedback (about 20 RTCP packets a second from
    // each viewer) would only wake every session for nothing.
    let mut exts = ExtensionMap::empty();
    exts.set(4, RtpExtension::RtpMid);
    exts.set(5, RtpExtension::PlayoutDelay);
    if adaptive {
        exts.set(3, RtpExtension::TransportSequenceNumber);
    }
    let mut config = Rtc::builder()
        .set_ice_lite(true)
        .set_local_ice_credentials(creds)
        .clear_codecs()
        .enable_h264(true)
        .set_extension_map(exts)
        .set_send_buffer_video(RTX_PACKETS);
    if adaptive {
        // Start high: a good link is not held back while the estimate settles
        // (a poor one shows itself at once, in losses and delay).
        config = config.enable_bwe(Some(str0m::bwe::Bitrate::mbps(8)));
    }
    if let Some(cert) = cert {
        config = config.set_dtls_cert(cert.clone());
    }
    let mut rtc = config.build(Instant::now());
    for addr in candidates {
        let c = Candidate::host(*addr, "udp")
            .map_err(|e| AppError::internal(anyhow::anyhow!("webrtc candidate {addr}: {e}")))?;
        rtc.add_local_candidate(c);
    }
    Ok(rtc)
}

/// A session's str0m instance after the viewer's offer was accepted.
pub struct Negotiated {
    pub rtc: Rtc,
    /// The SDP answer.
    pub answer: String,
    /// The local ICE ufrag the viewer's connectivity checks name.
    pub ufrag: String,
}

/// Answers an SDP offer (the bytes of a `POST` body, from anyone holding a
/// grant: outside input, fuzzed by `fuzz/fuzz_targets/whep_offer.rs`).
pub fn negotiate(offer: &[u8], candidates: &[SocketAddr]) -> Result<Negotiated, AppError> {
    negotiate_as(offer, candidates, None, true)
}

/// [`negotiate`], presenting `cert` (a fresh one when `None`).
fn negotiate_as(
    offer: &[u8],
    candidates: &[SocketAddr],
    cert: Option<&DtlsCert>,
    adaptive: bool,
) -> Result<Negotiated, AppError> {
    let sdp = std::str::from_utf8(offer)
        .map_err(|_| AppError::BadRequest("the offer is not UTF-8".into()))?;
    let offer = SdpOffer::from_sdp_string(sdp)
        .map_err(|e| AppError::BadRequest(format!("the offer is not valid SDP: {e}")))?;
    let creds = IceCreds::new();
    let ufrag = creds.ufrag.clone();
    let mut rtc = new_rtc(creds, candidates, cert, adaptive)?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| AppError::BadRequest(format!("the offer cannot be answered: {e}")))?;
    Ok(Negotiated {
        rtc,
        answer: answer.to_sdp_string(),
        ufrag,
    })
}

/// A WebRTC session that was started: its id and the SDP answer.
pub struct Started {
    pub id: WhepSessionId,
    pub answer: String,
}

/// What ends sessions from outside ([`WebRtc::end_where`]).
pub enum Select<'a> {
    /// Every session under this grant.
    Grant(hearth_model::GrantId),
    /// The session its opener tagged so (Alexa's session id, say).
    Tag(&'a str),
}

impl WebRtc {
    /// Starts a session for the viewer `guard` was opened for, answering
    /// `offer`: every way a WebRTC viewer comes in (WHEP, Google's signaling,
    /// Alexa's directive) comes through here, with a guard the door opened.
    /// `tag` names the session for [`WebRtc::end_where`]; `client` is the
    /// address a WHEP offer came from, which may hold at most `per_address`
    /// sessions at once (smart displays' offers come from their platforms'
    /// clouds, for many homes, and pass `None`).
    pub fn start(
        self: &Arc<Self>,
        st: &AppState,
        guard: EgressGuard,
        offer: &[u8],
        tag: Option<String>,
        client: Option<IpAddr>,
        first: Rendition,
    ) -> Result<Started, AppError> {
        let hub = hub_for(st, guard.grant(), AppError::CameraOffline)?;
        // The sub rendition a congested viewer is moved to, if the camera has one.
        let sub = rendition_hub_for(st, guard.grant(), Rendition::Sub, AppError::NotFound)
            .ok()
            .filter(|h| h.is_online());
        let (all, from_client) = {
            let sessions = self.lock();
            let from = client.map_or(0, |ip| {
                sessions.values().filter(|h| h.client == Some(ip)).count()
            });
            (sessions.len(), from)
        };
        if all >= MAX_SESSIONS {
            tracing::warn!(
                sessions = MAX_SESSIONS,
                "webrtc session refused: the server is full"
            );
            return Err(AppError::TooManyRequests(std::time::Duration::from_secs(5)));
        }
        if from_client >= self.per_address {
            tracing::warn!(
                client = ?client,
                sessions = from_client,
                "webrtc session refused: too many from this address"
            );
            return Err(AppError::TooManyRequests(std::time::Duration::from_secs(5)));
        }
        let Negotiated { rtc, answer, ufrag } =
            negotiate_as(offer, &self.candidates, self.cert.as_ref(), sub.is_some())?;
        let id = WhepSessionId::random();
        let end = Arc::new(Notify::new());
        let g = *guard.grant();
        let rx = self.demux.register(&ufrag);
        self.lock().insert(
            id,
            session::Handle {
                end: end.clone(),
                grant: g.id,
                tag,
                client,
            },
        );
        tracing::info!(grant = ?g.id, camera = ?g.camera, integration = g.integration.as_str(), session = %id, "webrtc session offered");
        let s = session::Session {
            rtc,
            guard,
            hub,
            first: if sub.is_some() {
                first
            } else {
                Rendition::Main
            },
            sub,
            socket: self.socket.clone(),
            local: self.local,
            rx,
            end,
            deferred: Default::default(),
        };
        let (w, st) = (self.clone(), st.clone());
        let counted = st.metrics.webrtc_sessions.hold();
        tokio::spawn(async move {
            let why = session::run(s, st).await;
            drop(counted);
            w.demux.remove(&ufrag);
            w.lock().remove(&id);
            tracing::info!(grant = ?g.id, camera = ?g.camera, session = %id, why, "webrtc session ended");
        });
        Ok(Started { id, answer })
    }

    /// Ends the sessions `which` selects; returns how many.
    pub fn end_where(&self, which: Select<'_>) -> usize {
        let sessions = self.lock();
        let mut n = 0;
        for h in sessions.values() {
            let hit = match &which {
                Select::Grant(g) => h.grant == *g,
                Select::Tag(t) => h.tag.as_deref() == Some(*t),
            };
            if hit {
                h.end.notify_one();
                n += 1;
            }
        }
        n
    }
}

/// `POST whep_url`: an SDP offer in, `201` with the answer and the session's
/// `Location` out.
pub(in crate::door) async fn offer(
    State(st): State<AppState>,
    Extension(w): Extension<Arc<WebRtc>>,
    Egress(door): Egress,
    ClientAddr(client): ClientAddr,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let (grant, _) = super::media_path(uri.path()).ok_or(AppError::NotFound)?;
    if !content_type_is(&headers, "application/sdp") {
        return Ok((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an SDP offer (Content-Type: application/sdp) is expected",
        )
            .into_response());
    }
    let servers = w.ice_servers(door.grant());
    // A player that was just starved on this link asks to start on the sub
    // rendition (`?rendition=sub`); the session moves it up when there is room.
    let first = match uri.query() {
        Some("rendition=sub") => Rendition::Sub,
        _ => Rendition::Main,
    };
    // In a cluster, a camera ingested on another node is relayed here.
    for rendition in [Rendition::Main, Rendition::Sub] {
        crate::door::relay::ensure(&st, door.grant().camera, rendition).await;
    }
    let Started { id, answer } = w.start(&st, door.0, &body, None, Some(client), first)?;
    let location = format!("/media/{grant}/whep/{id}");
    let mut r = sdp_response(StatusCode::CREATED, Some(&location), answer);
    for link in ice::link_headers(&servers) {
        r.headers_mut().append(header::LINK, link);
    }
    Ok(r)
}

/// The session named in the path, if it runs under the presented grant.
fn session_of(w: &WebRtc, grant: hearth_model::GrantId, id: &str) -> Result<Arc<Notify>, AppError> {
    let id: WhepSessionId = id.parse().map_err(|_| AppError::NotFound)?;
    let sessions = w.lock();
    match sessions.get(&id) {
        Some(h) if h.grant == grant => Ok(h.end.clone()),
        _ => Err(AppError::NotFound),
    }
}

/// `DELETE` on a session's `Location`: ends it.
pub(in crate::door) async fn end(
    Extension(w): Extension<Arc<WebRtc>>,
    Egress(door): Egress,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let end = session_of(&w, door.grant().id, &id)?;
    end.notify_one();
    Ok(StatusCode::OK.into_response())
}

/// `PATCH` on a session's `Location` with a trickle-ICE fragment: accepted.
/// Hearth is ICE-lite and answers the viewer's checks from wherever they come,
/// so the viewer's candidates add nothing; ICE restarts are not offered.
pub(in crate::door) async fn trickle(
    Extension(w): Extension<Arc<WebRtc>>,
    Egress(door): Egress,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    session_of(&w, door.grant().id, &id)?;
    if !content_type_is(&headers, "application/trickle-ice-sdpfrag") {
        return Ok((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a trickle-ICE fragment (Content-Type: application/trickle-ice-sdpfrag) is expected",
        )
            .into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Chromium 156 offers for `addTransceiver('video')` and
    /// `addTransceiver('audio')`, both receive-only (a WHEP player's offer).
    const CHROMIUM_OFFER: &str = include_str!("chrome-offer.sdp");

    #[test]
    fn a_browsers_audio_and_video_offer_gets_h264_video_and_no_audio() {
        let candidates = ["127.0.0.1:8189".parse().unwrap()];
        let n = negotiate(CHROMIUM_OFFER.as_bytes(), &candidates).expect("answered");
        let answer = n.answer;
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains("H264/90000"), "{answer}");
        assert!(answer.contains("127.0.0.1 8189 typ host"), "{answer}");
        assert!(
            answer.contains(&format!("a=ice-ufrag:{}", n.ufrag)),
            "{answer}"
        );
        // The audio m-line is refused (port 0) or inactive: Hearth sends no audio.
        let audio = answer
            .split("m=")
            .find(|m| m.starts_with("audio"))
            .expect("every offered m-line is answered");
        assert!(
            audio.starts_with("audio 0 ") || audio.contains("a=inactive"),
            "{audio}"
        );
    }

    #[test]
    fn what_is_not_an_offer_is_a_bad_request() {
        let candidates = ["127.0.0.1:8189".parse().unwrap()];
        for bad in [&b"\xff\xfe"[..], b"", b"v=0\r\n", b"hello"] {
            assert!(matches!(
                negotiate(bad, &candidates),
                Err(AppError::BadRequest(_))
            ));
        }
    }
}
