//! One WebRTC viewer: its str0m instance, driven by datagrams, timers and the
//! hub's frames, on its own task.
//!
//! str0m is sans-IO: this loop feeds it input (a datagram, the time) and drains
//! its output (datagrams to send, events, the next deadline). Frames come from
//! the hub exactly as for RTSP ([`Hub::frames_after`]): the first batch starts at
//! the current GOP's keyframe, so the viewer's first picture is the cached
//! keyframe, sent as soon as DTLS is up. Every frame goes through
//! [`EgressGuard::admit_frame`] (the grant's camera stamp, checked per frame)
//! before str0m sees a byte of it, and access is rechecked before every frame and
//! every [`ACCESS_RECHECK`]: a revoked share, a kill switch, an expired grant, an
//! epoch change or a reconnecting publisher ends the peer connection. A frame
//! the door refused never reaches str0m, so it cannot be retransmitted.
//!
//! A keyframe request (PLI/FIR) is answered from the GOP cache: the viewer's
//! cursor is reset, so the current GOP is sent again from its keyframe.
//!
//! Renditions: where the camera publishes a sub stream, the session runs
//! str0m's bandwidth estimator (transport-wide congestion control) and moves the
//! viewer to the sub rendition when the estimate falls below what the main one
//! needs, and back when there has been room for it for a while ([`choose`]).
//! A switch happens at the other rendition's next keyframe (its SPS and PPS go
//! with it), and its frames pass the same door with the same stamp check: they
//! are the same camera and epoch, and a foreign frame is refused at a switch
//! as anywhere else.

use super::super::frames::{Feed, Why, allowed};
use super::udp::Datagram;
use crate::hub::Hub;
use crate::state::AppState;
use hearth_access::keys::Stamper;
use hearth_access::{AdmittedFrame, EgressGuard};
use hearth_media::VideoFrame;
use hearth_media::h264::AvcConfig;
use hearth_model::Rendition;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::bwe::{Bitrate, BweKind};
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

/// How often access is rechecked while no frame comes.
pub const ACCESS_RECHECK: Duration = Duration::from_millis(250);
/// Keyframe requests are answered at most this often (each resends a GOP).
const KEYFRAME_RESEND_INTERVAL: Duration = Duration::from_secs(1);
/// How long sent packets are kept for retransmission: a NACK comes within a
/// round trip, and a frame resent later than this would be too late to show.
pub const RTX_AGE: Duration = Duration::from_millis(500);

/// Packets in [`RTX_AGE`] of a stream of `bitrate` bits per second (about
/// 1,100 bytes each), 16 to 256: what the retransmission buffer needs to hold.
pub fn rtx_packets(bitrate: Option<u64>) -> usize {
    let bytes = bitrate.unwrap_or(2_000_000) / 8 * RTX_AGE.as_millis() as u64 / 1000;
    usize::try_from(bytes / 1100 + 1).map_or(256, |n| n.clamp(16, 256))
}
/// Main needs an estimate this much above its bitrate (`DOWN_MARGIN / 100`) ...
const DOWN_MARGIN: u64 = 115;
/// ... and this much, for [`UP_AFTER`], to come back to it.
const UP_MARGIN: u64 = 150;
const UP_AFTER: Duration = Duration::from_secs(3);

/// The rendition a viewer on `on` should get, given the bandwidth `estimate`
/// (bits per second), what the main rendition needs (`main_bps`), and how long
/// the estimate has had room for main (`roomy_for`). `None`: stay.
pub fn choose(
    on: Rendition,
    estimate: u64,
    main_bps: u64,
    roomy_for: Duration,
) -> Option<Rendition> {
    match on {
        Rendition::Main if estimate * 100 < main_bps * DOWN_MARGIN => Some(Rendition::Sub),
        Rendition::Sub if estimate * 100 > main_bps * UP_MARGIN && roomy_for >= UP_AFTER => {
            Some(Rendition::Main)
        }
        _ => None,
    }
}

/// A peer that has not connected (ICE and DTLS) this long after the answer is
/// dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What the HTTP side keeps of a running session.
pub struct Handle {
    /// Notified by `DELETE` on the session's resource.
    pub end: Arc<Notify>,
    /// The grant the session was opened under (`DELETE`/`PATCH` must present it).
    pub grant: hearth_model::GrantId,
    /// What its opener calls it, if anything (Alexa: the link and its session id).
    pub tag: Option<String>,
    /// The address a WHEP offer came from (counted against the per-address cap).
    pub client: Option<std::net::IpAddr>,
}

pub struct Session {
    pub rtc: Rtc,
    pub guard: EgressGuard,
    pub hub: Arc<Hub>,
    /// The camera's sub rendition, where it has one (then the session adapts).
    pub sub: Option<Arc<Hub>>,
    /// The rendition the viewer starts on.
    pub first: Rendition,
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub rx: mpsc::Receiver<Datagram>,
    pub end: Arc<Notify>,
    /// Events str0m gave while frames were being sent, handled next.
    pub deferred: VecDeque<Event>,
}

/// Runs the session until the peer leaves or access ends, then closes the peer
/// connection (DTLS close, so the viewer knows at once); returns why.
pub async fn run(mut s: Session, state: AppState) -> Why {
    let why = drive(&mut s, &state).await;
    s.rtc.disconnect();
    for _ in 0..64 {
        match s.rtc.poll_output() {
            Ok(Output::Transmit(t)) => {
                let _ = s.socket.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(_)) => {}
            Ok(Output::Timeout(_)) | Err(_) => break,
        }
    }
    why
}

async fn drive(s: &mut Session, state: &AppState) -> Why {
    let g = *s.guard.grant();
    let stamper = state.hubs.stamper(g.camera, g.epoch);
    let mut video = Video {
        mid: None,
        pt: None,
        feed: Feed::default(),
        last_dts_ms: None,
        rtp_ms: 0,
        connected: false,
        resent_at: None,
        on: s.first,
        switching: None,
        roomy_since: None,
    };
    let mut frames = s.hub.subscribe_frames();
    // The sub rendition's frames too (a viewer on it, or moving to it).
    let mut sub_frames = s.sub.as_ref().map(|h| h.subscribe_frames());
    let mut recheck = tokio::time::interval(ACCESS_RECHECK);
    let connect_by = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        // Drain what str0m has to say. A deadline already due (str0m asks for
        // one right after a write, to time the queued packets) is handled here,
        // not through a timer and another wakeup: a few rounds at most.
        let mut due_rounds = 0;
        let deadline = loop {
            let out = match s.deferred.pop_front() {
                Some(e) => Ok(Output::Event(e)),
                None => s.rtc.poll_output(),
            };
            match out {
                Ok(Output::Timeout(t)) => {
                    let now = Instant::now();
                    if t <= now && due_rounds < 4 {
                        due_rounds += 1;
                        if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                            tracing::info!(grant = ?g.id, error = %e, "webrtc timeout handling failed");
                            return "webrtc error";
                        }
                        continue;
                    }
                    break t;
                }
                Ok(Output::Transmit(t)) => {
                    // Non-blocking: a full send buffer drops the packet, as the
                    // network would; RTP recovers with NACK/PLI.
                    let _ = s.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        video.connected = true;
                        tracing::info!(grant = ?g.id, camera = ?g.camera, "webrtc connected");
                        if let Err(why) = video.send_new(s, state, &stamper) {
                            return why;
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return "peer disconnected";
                    }
                    Event::MediaAdded(m) if m.kind == str0m::media::MediaKind::Video => {
                        video.mid.get_or_insert(m.mid);
                        let packets = rtx_packets(s.hub.gop_bitrate());
                        if let Some(tx) = s.rtc.direct_api().stream_tx_by_mid(m.mid, None) {
                            tx.set_rtx_cache(packets, RTX_AGE, Some(0.15));
                        }
                    }
                    Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                        video.on_estimate(s, estimate.as_u64());
                    }
                    Event::KeyframeRequest(_)
                        if video
                            .resent_at
                            .is_none_or(|t| t.elapsed() >= KEYFRAME_RESEND_INTERVAL) =>
                    {
                        // From the GOP cache: the current GOP again, keyframe first.
                        video.feed.restart();
                        video.resent_at = Some(Instant::now());
                        if video.connected
                            && let Err(why) = video.send_new(s, state, &stamper)
                        {
                            return why;
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::info!(grant = ?g.id, error = %e, "webrtc session error");
                    return "webrtc error";
                }
            }
        };
        if !s.rtc.is_alive() {
            return "peer connection closed";
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            d = s.rx.recv() => {
                let Some(d) = d else { return "server shutting down" };
                let now = Instant::now();
                // Anything but STUN, DTLS and RTP/RTCP is ignored.
                if let Ok(r) = Receive::new(Protocol::Udp, d.from, s.local, &d.data)
                    && let Err(e) = s.rtc.handle_input(Input::Receive(now, r))
                {
                    tracing::debug!(grant = ?g.id, error = %e, "webrtc input refused");
                }
            }
            _ = tokio::time::sleep(wait) => {
                if let Err(e) = s.rtc.handle_input(Input::Timeout(Instant::now())) {
                    tracing::info!(grant = ?g.id, error = %e, "webrtc timeout handling failed");
                    return "webrtc error";
                }
            }
            changed = frames.changed(), if video.connected => {
                if changed.is_err() {
                    return "camera gone";
                }
                if let Err(why) = video.send_new(s, state, &stamper) {
                    return why;
                }
            }
            changed = async { sub_frames.as_mut().expect("checked").changed().await },
                if video.connected && sub_frames.is_some() && (video.on == Rendition::Sub || video.switching.is_some()) => {
                if changed.is_err() {
                    sub_frames = None;
                } else if let Err(why) = video.send_new(s, state, &stamper) {
                    return why;
                }
            }
            _ = recheck.tick() => {
                if let Err(why) = allowed(&s.guard) {
                    return why;
                }
                if !video.connected && tokio::time::Instant::now() >= connect_by {
                    return "peer did not connect";
                }
            }
            _ = s.end.notified() => return "ended by the viewer",
        }
    }
}

/// The sending side of the session's one video track.
struct Video {
    mid: Option<Mid>,
    pt: Option<Pt>,
    feed: Feed,
    /// The previous frame's decode time, and the RTP clock (ms) it was sent at.
    last_dts_ms: Option<i64>,
    rtp_ms: u64,
    connected: bool,
    /// When a keyframe request last resent the GOP.
    resent_at: Option<Instant>,
    /// The rendition being sent.
    on: Rendition,
    /// The rendition to move to at its next keyframe, and the viewer's place in it.
    switching: Option<(Rendition, Feed)>,
    /// Since when the estimate has had room for the main rendition.
    roomy_since: Option<Instant>,
}

impl Video {
    fn hub(s: &Session, r: Rendition) -> Option<&Arc<Hub>> {
        match r {
            Rendition::Main => Some(&s.hub),
            Rendition::Sub => s.sub.as_ref(),
        }
    }

    /// A new bandwidth estimate: perhaps move to the other rendition (at its
    /// next keyframe), and keep the estimator probing for room for main.
    fn on_estimate(&mut self, s: &mut Session, estimate: u64) {
        let Some(main_bps) = s.hub.gop_bitrate() else {
            return;
        };
        let roomy = estimate * 100 > main_bps * UP_MARGIN;
        let since = match (roomy, self.roomy_since) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, Some(t)) => Some(t),
        };
        self.roomy_since = since;
        // Probe for what main needs with room to spare; pad nothing.
        s.rtc.bwe().set_bitrate(
            Bitrate::ZERO,
            Bitrate::bps(main_bps * UP_MARGIN / 100 + 100_000),
        );
        let roomy_for = since.map_or(Duration::ZERO, |t| t.elapsed());
        let target = self.switching.as_ref().map_or(self.on, |(r, _)| *r);
        let Some(to) = choose(self.on, estimate, main_bps, roomy_for) else {
            if target != self.on {
                self.switching = None; // the reason to move went away
            }
            return;
        };
        if target == to || Self::hub(s, to).is_none_or(|h| !h.is_online()) {
            return;
        }
        tracing::info!(grant = ?s.guard.grant().id, from = self.on.as_str(), to = to.as_str(), estimate, main_bps, "webrtc viewer changes rendition at the next keyframe");
        self.switching = Some((to, Feed::default()));
    }

    /// Sends the frames the viewer has not had yet, each only while the grant
    /// holds and as the door admits it; at a pending switch, from the other
    /// rendition's next keyframe on.
    fn send_new(
        &mut self,
        s: &mut Session,
        state: &AppState,
        stamper: &Stamper,
    ) -> Result<(), Why> {
        let Some(mid) = self.mid else {
            return Ok(()); // the offer had no video we could send
        };
        if let Some((to, mut feed)) = self.switching.take() {
            let Some(hub) = Self::hub(s, to).cloned() else {
                return self.send_from(mid, s, state, stamper);
            };
            let fresh = feed.is_new();
            // Down to sub (congestion): at once, from its cached keyframe. Up to
            // main: at its next keyframe, without a burst of its current GOP.
            let at_once = to == Rendition::Sub;
            match feed.next(state, &hub, &s.guard) {
                // The other rendition's new GOP: the viewer changes over here.
                Ok(batch)
                    if (at_once || !fresh) && batch.frames.first().is_some_and(|f| f.keyframe) =>
                {
                    self.feed = feed;
                    self.on = to;
                    self.last_dts_ms = batch.frames.first().map(|f| f.dts_ms - 40);
                    return self.send_batch(mid, s, stamper, batch);
                }
                // Its current GOP is behind us; wait for its next keyframe.
                Ok(_) => self.switching = Some((to, feed)),
                // It went offline or changed: stay where we are.
                Err(_) => {}
            }
        }
        self.send_from(mid, s, state, stamper)
    }

    fn send_from(
        &mut self,
        mid: Mid,
        s: &mut Session,
        state: &AppState,
        stamper: &Stamper,
    ) -> Result<(), Why> {
        let hub = Self::hub(s, self.on).cloned().ok_or("rendition gone")?;
        let batch = self.feed.next(state, &hub, &s.guard)?;
        self.send_batch(mid, s, stamper, batch)
    }

    fn send_batch(
        &mut self,
        mid: Mid,
        s: &mut Session,
        stamper: &Stamper,
        batch: crate::hub::FrameBatch,
    ) -> Result<(), Why> {
        let Some(config) = batch.config.as_ref() else {
            return Ok(()); // no codec configuration yet, so no frames
        };
        let pt = match self.pt {
            Some(pt) => pt,
            None => {
                let writer = s.rtc.writer(mid).ok_or("video track gone")?;
                let pt = writer
                    .payload_params()
                    .find(|p| {
                        p.spec().codec == str0m::format::Codec::H264
                            && p.spec().format.packetization_mode == Some(1)
                    })
                    .map(|p| p.pt())
                    .ok_or("the viewer offered no H.264 we can send")?;
                *self.pt.insert(pt)
            }
        };
        let last = batch.frames.len().saturating_sub(1);
        for (i, frame) in batch.frames.iter().enumerate() {
            allowed(&s.guard)?;
            let admitted: AdmittedFrame<'_> = s
                .guard
                .admit_frame(frame, stamper)
                .map_err(|_| "isolation violation")?;
            let f = admitted.frame();
            // The RTP clock follows the camera's, except that frames a viewer
            // catches up on (all but the newest of a batch: the cached GOP when it
            // starts or asks for a keyframe) are 1 ms apart, so it reaches live at once.
            let step_ms = match self.last_dts_ms {
                None => 0,
                Some(prev) if i == last => (f.dts_ms - prev).clamp(1, 1000),
                Some(_) => 1,
            };
            self.last_dts_ms = Some(f.dts_ms);
            self.rtp_ms += step_ms as u64;
            // Built once per frame, by its first viewer (Annex B, provenance
            // SEI first): each viewer shares it.
            let Some(data) = f.annexb.get_or_build(|| wire_form(f, config)) else {
                continue;
            };
            let zero = MediaTime::from_millis(0);
            s.rtc
                .writer(mid)
                .ok_or("video track gone")?
                .playout_delay(zero, zero)
                .write(
                    pt,
                    Instant::now(),
                    MediaTime::from_90khz(self.rtp_ms * 90),
                    data,
                )
                .map_err(|e| {
                    tracing::info!(error = %e, "webrtc write failed");
                    "webrtc write failed"
                })?;
            // Out before the next frame is written: str0m's send queue then
            // holds one frame's packets, not a whole GOP's (a catch-up of two
            // seconds at 2 Mbit/s would leave its capacity, ~200 KB, behind).
            flush(s)?;
        }
        Ok(())
    }
}

/// `frame` as WebRTC sends it: Annex B with its provenance record as an SEI
/// before the first slice. `None` (the frame is not sent) for an access unit
/// without a slice; without a record (the bench's unguarded switch only), plain
/// Annex B.
fn wire_form(frame: &VideoFrame, config: &AvcConfig) -> Option<Arc<[u8]>> {
    let built = match &frame.provenance {
        Some(record) => hearth_media::sei::annexb_with_provenance(&frame.data, config, record),
        None => {
            let mut out = Vec::new();
            hearth_media::ts::annexb_access_unit(&frame.data, config, &mut out).map(|()| out)
        }
    };
    match built {
        Ok(au) => Some(au.into()),
        Err(e) => {
            tracing::warn!(error = %e, "webrtc: an access unit could not be converted; not sent");
            None
        }
    }
}

/// Sends what str0m has queued, handling deadlines already due; keeps the
/// events it gives for the session loop.
fn flush(s: &mut Session) -> Result<(), Why> {
    let mut due_rounds = 0;
    loop {
        match s.rtc.poll_output() {
            Ok(Output::Transmit(t)) => {
                let _ = s.socket.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Timeout(t)) => {
                let now = Instant::now();
                if t > now || due_rounds == 4 {
                    return Ok(());
                }
                due_rounds += 1;
                s.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|_| "webrtc error")?;
            }
            Ok(Output::Event(e)) => s.deferred.push_back(e),
            Err(_) => return Err("webrtc error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_congested_viewer_moves_to_sub_and_back_only_with_room_to_spare() {
        let main = 1_000_000;
        let long = Duration::from_secs(10);
        assert_eq!(choose(Rendition::Main, 2_000_000, main, long), None);
        assert_eq!(
            choose(Rendition::Main, 1_100_000, main, long),
            Some(Rendition::Sub)
        );
        assert_eq!(
            choose(Rendition::Main, 300_000, main, long),
            Some(Rendition::Sub)
        );
        // Back to main only with half as much again, for a while.
        assert_eq!(choose(Rendition::Sub, 1_400_000, main, long), None);
        assert_eq!(
            choose(Rendition::Sub, 1_600_000, main, Duration::from_secs(1)),
            None
        );
        assert_eq!(
            choose(Rendition::Sub, 1_600_000, main, long),
            Some(Rendition::Main)
        );
        assert_eq!(choose(Rendition::Sub, 100_000, main, long), None);
    }

    #[test]
    fn the_retransmission_buffer_holds_half_a_second_of_the_stream() {
        assert_eq!(rtx_packets(Some(250_000)), 16, "the floor");
        assert_eq!(rtx_packets(Some(2_000_000)), 114);
        assert_eq!(rtx_packets(Some(4_000_000)), 228);
        assert_eq!(rtx_packets(Some(50_000_000)), 256, "the ceiling");
        assert_eq!(rtx_packets(None), 114, "unknown: as for 2 Mbit/s");
    }
}
