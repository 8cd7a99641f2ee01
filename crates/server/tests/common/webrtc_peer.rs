//! A WebRTC viewer for tests: str0m as a client (ICE, DTLS, SRTP, RTP
//! depacketization) on its own UDP socket, offering to receive H.264 video.
//! Tests include it with `#[path = "common/webrtc_peer.rs"] mod webrtc_peer;`.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// A WHEP viewer: a str0m peer on its own UDP socket.
pub struct Viewer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
}

/// What a viewer received.
#[derive(Default)]
pub struct Received {
    pub frames: Vec<Arc<[u8]>>,
    pub first_frame_after: Option<Duration>,
    pub arrivals: Vec<Instant>,
    pub connected_after: Option<Duration>,
}

impl Viewer {
    /// Builds an offer (video, receive only) and returns it with the peer.
    pub fn offer() -> (Viewer, String, str0m::change::SdpPendingOffer) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_h264(true)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        (
            Viewer { rtc, socket, local },
            offer.to_sdp_string(),
            pending,
        )
    }

    pub fn accept(&mut self, pending: str0m::change::SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Runs the peer for up to `limit`, until `want` frames arrived; times are
    /// counted from `since`.
    pub fn run_since(&mut self, since: Instant, limit: Duration, want: usize) -> Received {
        let start = since;
        let stop = Instant::now() + limit;
        let mut got = Received::default();
        let mut buf = vec![0u8; 2048];
        while Instant::now() < stop && got.frames.len() < want {
            let deadline = loop {
                let Ok(out) = self.rtc.poll_output() else {
                    return got; // closed by the server
                };
                match out {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.socket.send_to(&t.contents, t.destination);
                    }
                    Output::Event(Event::Connected) => {
                        got.connected_after = Some(start.elapsed());
                    }
                    Output::Event(Event::MediaData(d)) => {
                        got.first_frame_after.get_or_insert(start.elapsed());
                        got.arrivals.push(Instant::now());
                        got.frames.push(d.data);
                    }
                    Output::Event(_) => {}
                }
            };
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            let input = match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => Input::Receive(
                    Instant::now(),
                    Receive::new(Protocol::Udp, from, self.local, &buf[..n]).unwrap(),
                ),
                Err(_) => Input::Timeout(Instant::now()),
            };
            if self.rtc.handle_input(input).is_err() || !self.rtc.is_alive() {
                return got;
            }
        }
        got
    }

    pub fn run(&mut self, limit: Duration, want: usize) -> Received {
        self.run_since(Instant::now(), limit, want)
    }
}

/// The provenance record a frame (Annex B) carries in its SEI, as the web
/// player reads it.
pub fn provenance_in(annexb: &[u8]) -> Option<hearth_media::provenance::ProvenanceRecord> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annexb.len() {
        if annexb[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut avcc = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(annexb.len(), |n| n - 3);
        while end > s && annexb[end - 1] == 0 {
            end -= 1;
        }
        avcc.extend_from_slice(&((end - s) as u32).to_be_bytes());
        avcc.extend_from_slice(&annexb[s..end]);
    }
    hearth_media::sei::find_provenance(&avcc, 4)
}

/// Decodes received frames (Annex B) with ffmpeg to `w`x`h` RGB pictures.
pub fn decode_frames(frames: &[Arc<[u8]>], w: u32, h: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webrtc.h264");
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    std::fs::write(&file, bytes).unwrap();
    super::common::decode_rgb(file.to_str().unwrap(), 30.0, w, h)
}
