//! RTSP 1.0 (RFC 2326), the server half, sans-IO: requests parsed out of a byte
//! buffer (interleaved `$` frames, such as a player's RTCP receiver reports, are
//! recognised and skipped), responses written, the SDP of one H.264 track, and RTP
//! packetization of H.264 access units (RFC 6184, packetization mode 1: single NAL
//! unit packets and FU-A fragments) framed for RTSP's interleaved TCP transport.
//!
//! Why here and hand-written: Hearth serves RTSP to smart displays (Alexa's camera
//! interface asks for RTSP with RTP interleaved over TCP), which needs six methods
//! and one transport. retina is a client, and the RTSP message crates bring a
//! general model the server would still have to drive. Packets reference the access
//! unit's bytes (`Bytes::slice_ref`): per viewer, only their 16- or 18-byte headers
//! are built.

use crate::error::MediaError;
use crate::h264::{AvcConfig, nal_units};
use base64::Engine as _;
use bytes::Bytes;

/// The longest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The longest request body accepted (RTSP clients send none, or a few parameters).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
const MAX_HEADERS: usize = 64;

/// The RTP payload type of the H.264 track (dynamic).
pub const PAYLOAD_TYPE: u8 = 96;
/// RTP payload bytes per packet at most: FU-A fragments are cut to fit.
pub const MAX_RTP_PAYLOAD: usize = 1400;

fn invalid(reason: impl Into<String>) -> MediaError {
    MediaError::InvalidRtsp(reason.into())
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `CSeq`, if it is a number (it is echoed in the response).
    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.parse().ok()
    }
}

/// What the front of a client's byte stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    /// An interleaved binary frame on `channel` (RTCP from the player): skipped.
    Interleaved {
        channel: u8,
    },
}

/// Parses one message from the front of `buf`. `Ok(None)`: more bytes are
/// needed; `Ok(Some((message, consumed)))`; an error for a malformed or oversized
/// message (the connection should be closed).
pub fn parse(buf: &[u8]) -> Result<Option<(Message, usize)>, MediaError> {
    // Empty lines between messages are allowed (RFC 2326 15.1, via RFC 2616).
    let blank = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    if blank > 0 {
        if blank > MAX_HEAD_BYTES {
            return Err(invalid("too many empty lines"));
        }
        return Ok(parse(&buf[blank..])?.map(|(m, n)| (m, n + blank)));
    }
    match buf.first() {
        None => return Ok(None),
        Some(b'$') => {
            let Some(head) = buf.get(..4) else {
                return Ok(None);
            };
            let len = 4 + usize::from(u16::from_be_bytes([head[2], head[3]]));
            return Ok(
                (buf.len() >= len).then_some((Message::Interleaved { channel: head[1] }, len))
            );
        }
        Some(_) => {}
    }
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES + 4)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD_BYTES {
            return Err(invalid("request head too long"));
        }
        return Ok(None);
    };
    let head =
        std::str::from_utf8(&buf[..end]).map_err(|_| invalid("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        || uri.is_empty()
        || !version.starts_with("RTSP/1.")
    {
        return Err(invalid("malformed request line"));
    }
    let mut headers = Vec::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Err(invalid("header without a colon"));
        };
        if headers.len() == MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let request = Request {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
    };
    let body = match request.header("Content-Length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_BODY_BYTES)
            .ok_or_else(|| invalid("bad or oversized Content-Length"))?,
    };
    let consumed = end + 4 + body;
    Ok((buf.len() >= consumed).then_some((Message::Request(request), consumed)))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        _ => "Error",
    }
}

/// A response, with `CSeq` echoed and `Content-Length` set when there is a body.
pub fn response(status: u16, cseq: Option<u32>, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("RTSP/1.0 {status} {}\r\n", reason(status));
    if let Some(c) = cseq {
        out.push_str(&format!("CSeq: {c}\r\n"));
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The interleaved channels a `Transport` header asks for, if it asks for RTP over
/// the RTSP connection (`RTP/AVP/TCP`); `interleaved` defaults to 0-1.
pub fn tcp_interleaved_channels(transport: &str) -> Option<(u8, u8)> {
    for spec in transport.split(',') {
        let mut fields = spec.split(';').map(str::trim);
        if !fields
            .next()
            .is_some_and(|p| p.eq_ignore_ascii_case("RTP/AVP/TCP"))
        {
            continue;
        }
        let channels = fields.find_map(|f| f.strip_prefix("interleaved="));
        let Some(channels) = channels else {
            return Some((0, 1));
        };
        let (rtp, rtcp) = match channels.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let a: u8 = channels.parse().ok()?;
                (a, a.checked_add(1)?)
            }
        };
        return Some((rtp, rtcp));
    }
    None
}

/// The session description of one H.264 video track whose control URL is
/// `trackID=0` (relative to the `Content-Base`). `framerate`, when known, is
/// announced (`a=framerate`): a player that sees only a few frames before a
/// session ends otherwise guesses the RTP clock rate as the frame rate.
pub fn sdp(
    config: &AvcConfig,
    session_id: u64,
    framerate: Option<u32>,
) -> Result<String, MediaError> {
    let (Some(sps), Some(pps)) = (config.sps.first(), config.pps.first()) else {
        return Err(invalid("no SPS/PPS to describe"));
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let profile_level_id = format!(
        "{:02X}{:02X}{:02X}",
        config.profile_idc, config.constraint_flags, config.level_idc
    );
    let framerate = framerate
        .filter(|f| *f > 0)
        .map(|f| format!("a=framerate:{f}\r\n"))
        .unwrap_or_default();
    Ok(format!(
        "v=0\r\n\
         o=- {session_id} 1 IN IP4 0.0.0.0\r\n\
         s=Hearth camera\r\n\
         c=IN IP4 0.0.0.0\r\n\
         t=0 0\r\n\
         a=control:*\r\n\
         a=range:npt=now-\r\n\
         m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
         a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n\
         a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile_level_id};\
         sprop-parameter-sets={},{}\r\n\
         {framerate}\
         a=control:trackID=0\r\n",
        b64.encode(sps),
        b64.encode(pps)
    ))
}

/// One RTP packet framed for RTSP's interleaved transport: a header of its own
/// (`$`, channel, length, the RTP header and, for FU-A, two more bytes) and a
/// payload that shares the access unit's bytes.
#[derive(Debug, Clone)]
pub struct InterleavedPacket {
    header: [u8; 18],
    header_len: u8,
    pub payload: Bytes,
}

impl InterleavedPacket {
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    /// The packet's two parts, in wire order.
    fn part(&self, i: usize) -> &[u8] {
        if i == 0 { self.header() } else { &self.payload }
    }
}

/// A run of packets read as one [`bytes::Buf`], headers and shared payloads in
/// wire order, nothing copied. Its `chunks_vectored` hands every part to a
/// vectored write, so `write_all_buf(&mut InterleavedBuf::new(&packets))` sends
/// a whole access unit in as few system calls as the socket takes.
#[derive(Debug)]
pub struct InterleavedBuf<'a> {
    packets: &'a [InterleavedPacket],
    /// Index of the current part: packet `part / 2`, header if even.
    part: usize,
    /// Bytes of the current part already consumed.
    offset: usize,
    remaining: usize,
}

impl<'a> InterleavedBuf<'a> {
    pub fn new(packets: &'a [InterleavedPacket]) -> Self {
        let remaining = packets
            .iter()
            .map(|p| p.header().len() + p.payload.len())
            .sum();
        Self {
            packets,
            part: 0,
            offset: 0,
            remaining,
        }
    }

    fn part(&self, i: usize) -> Option<&'a [u8]> {
        self.packets.get(i / 2).map(|p| p.part(i % 2))
    }
}

impl bytes::Buf for InterleavedBuf<'_> {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        let mut i = self.part;
        let mut offset = self.offset;
        while let Some(part) = self.part(i) {
            if offset < part.len() {
                return &part[offset..];
            }
            i += 1;
            offset = 0;
        }
        &[]
    }

    fn advance(&mut self, mut n: usize) {
        assert!(n <= self.remaining, "advanced past the end of the packets");
        self.remaining -= n;
        while let Some(part) = self.part(self.part) {
            let left = part.len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.part += 1;
            self.offset = 0;
        }
    }

    fn chunks_vectored<'s>(&'s self, dst: &mut [std::io::IoSlice<'s>]) -> usize {
        let mut filled = 0;
        let mut i = self.part;
        let mut offset = self.offset;
        while filled < dst.len() {
            let Some(part) = self.part(i) else { break };
            if offset < part.len() {
                dst[filled] = std::io::IoSlice::new(&part[offset..]);
                filled += 1;
            }
            i += 1;
            offset = 0;
        }
        filled
    }
}

/// Packetizes H.264 access units for one RTP stream (one SSRC, one sequence).
#[derive(Debug, Clone)]
pub struct H264Packetizer {
    channel: u8,
    ssrc: u32,
    next_seq: u16,
}

impl H264Packetizer {
    pub fn new(channel: u8, ssrc: u32, first_seq: u16) -> Self {
        Self {
            channel,
            ssrc,
            next_seq: first_seq,
        }
    }

    /// The sequence number of the next packet (for `RTP-Info`).
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    fn packet(
        &mut self,
        marker: bool,
        timestamp: u32,
        fu: Option<[u8; 2]>,
        payload: Bytes,
    ) -> InterleavedPacket {
        let mut header = [0u8; 18];
        let rtp_len = 12 + fu.map_or(0, |_| 2) + payload.len();
        header[0] = b'$';
        header[1] = self.channel;
        header[2..4].copy_from_slice(&(rtp_len as u16).to_be_bytes());
        header[4] = 0x80; // version 2, no padding, extension or CSRC
        header[5] = (u8::from(marker) << 7) | PAYLOAD_TYPE;
        header[6..8].copy_from_slice(&self.next_seq.to_be_bytes());
        header[8..12].copy_from_slice(&timestamp.to_be_bytes());
        header[12..16].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut header_len = 16;
        if let Some(fu) = fu {
            header[16..18].copy_from_slice(&fu);
            header_len = 18;
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        InterleavedPacket {
            header,
            header_len,
            payload,
        }
    }

    /// Appends to `out` the packets of one access unit: `prefix` NAL units (the
    /// parameter sets, before a keyframe) and then the AVCC access unit `au`, at
    /// RTP `timestamp` (90 kHz). The last packet carries the marker bit.
    pub fn packetize(
        &mut self,
        prefix: &[Bytes],
        au: &Bytes,
        nalu_length_size: u8,
        timestamp: u32,
        out: &mut Vec<InterleavedPacket>,
    ) -> Result<(), MediaError> {
        let mut nals: Vec<Bytes> = prefix.iter().filter(|n| !n.is_empty()).cloned().collect();
        for nal in nal_units(au, nalu_length_size) {
            nals.push(au.slice_ref(nal?));
        }
        let count = nals.len();
        for (i, nal) in nals.into_iter().enumerate() {
            let last_nal = i + 1 == count;
            if nal.len() <= MAX_RTP_PAYLOAD {
                out.push(self.packet(last_nal, timestamp, None, nal));
                continue;
            }
            // FU-A: the NAL header is replaced by the FU indicator and header.
            let (nri, kind) = (nal[0] & 0x60, nal[0] & 0x1f);
            let body = nal.slice(1..);
            let chunk = MAX_RTP_PAYLOAD - 2;
            let pieces = body.len().div_ceil(chunk);
            for p in 0..pieces {
                let start = p == 0;
                let end = p + 1 == pieces;
                let fu_header = (u8::from(start) << 7) | (u8::from(end) << 6) | kind;
                let piece = body.slice(p * chunk..((p + 1) * chunk).min(body.len()));
                out.push(self.packet(
                    last_nal && end,
                    timestamp,
                    Some([nri | 28, fu_header]),
                    piece,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(buf: &[u8]) -> (Request, usize) {
        match parse(buf).unwrap() {
            Some((Message::Request(r), n)) => (r, n),
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn parses_requests_skips_interleaved_frames_and_waits_for_more() {
        let describe = b"DESCRIBE rtsp://h/media/g/live RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n";
        let (r, n) = request(describe);
        assert_eq!(
            (r.method.as_str(), r.uri.as_str(), n),
            ("DESCRIBE", "rtsp://h/media/g/live", describe.len())
        );
        assert_eq!(r.cseq(), Some(2));
        assert_eq!(r.header("accept"), Some("application/sdp"));
        for cut in 0..describe.len() {
            assert_eq!(parse(&describe[..cut]).unwrap(), None, "cut at {cut}");
        }
        // An RTCP receiver report, then a pipelined request with a body.
        let mut buf = vec![b'$', 1, 0, 3, 9, 9, 9];
        buf.extend_from_slice(
            b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 4\r\n\r\nabcd",
        );
        assert_eq!(
            parse(&buf).unwrap(),
            Some((Message::Interleaved { channel: 1 }, 7))
        );
        assert_eq!(parse(&buf[..5]).unwrap(), None);
        let (r, n) = request(&buf[7..]);
        assert_eq!((r.method.as_str(), n), ("SET_PARAMETER", buf.len() - 7));
        assert_eq!(
            parse(&buf[7..buf.len() - 1]).unwrap(),
            None,
            "the body is awaited"
        );
        // A stray empty line before a request is skipped.
        let (r, n) = request(b"\r\nOPTIONS * RTSP/1.0\r\nCSeq: 4\r\n\r\n");
        assert_eq!((r.method.as_str(), r.cseq(), n), ("OPTIONS", Some(4), 33));
        assert_eq!(parse(b"\r\n\r\n").unwrap(), None);
        assert!(parse(&vec![b'\n'; MAX_HEAD_BYTES + 1]).is_err());
    }

    #[test]
    fn malformed_and_oversized_requests_are_errors() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"DESCRIBE rtsp://h RTSP/1.0 extra\r\n\r\n",
            b"describe rtsp://h RTSP/1.0\r\n\r\n",
            b"DESCRIBE  RTSP/1.0\r\n\r\n",
            b"DESCRIBE rtsp://h RTSP/1.0\r\nno colon\r\n\r\n",
            b"DESCRIBE rtsp://h RTSP/1.0\r\nContent-Length: 99999\r\n\r\n",
            b"DESCRIBE rtsp://h RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
            b"DESCRIBE \xff RTSP/1.0\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let endless = vec![b'A'; MAX_HEAD_BYTES + 10];
        assert!(parse(&endless).is_err());
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        assert!(parse(format!("OPTIONS * RTSP/1.0\r\n{many}\r\n").as_bytes()).is_err());
    }

    #[test]
    fn responses_echo_cseq_and_transport_channels_are_read() {
        let r = response(200, Some(7), &[("Session", "abc")], b"v=0");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "RTSP/1.0 200 OK\r\nCSeq: 7\r\nSession: abc\r\nContent-Length: 3\r\n\r\nv=0"
        );
        assert_eq!(
            tcp_interleaved_channels("RTP/AVP/TCP;unicast;interleaved=0-1"),
            Some((0, 1))
        );
        assert_eq!(
            tcp_interleaved_channels(
                "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;interleaved=4-5"
            ),
            Some((4, 5))
        );
        assert_eq!(
            tcp_interleaved_channels("RTP/AVP/TCP;unicast"),
            Some((0, 1))
        );
        assert_eq!(
            tcp_interleaved_channels("RTP/AVP;unicast;client_port=5000-5001"),
            None
        );
        assert_eq!(
            tcp_interleaved_channels("RTP/AVP/TCP;interleaved=x-1"),
            None
        );
        assert_eq!(
            tcp_interleaved_channels("RTP/AVP/TCP;interleaved=255"),
            None
        );
    }

    /// Reassembles the NAL units of one access unit from its packets.
    fn depacketize(packets: &[InterleavedPacket]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fu: Vec<u8> = Vec::new();
        for p in packets {
            let h = p.header();
            assert_eq!(h[0], b'$');
            assert_eq!(
                usize::from(u16::from_be_bytes([h[2], h[3]])),
                h.len() - 4 + p.payload.len()
            );
            assert_eq!(h[4], 0x80);
            assert_eq!(h[5] & 0x7f, PAYLOAD_TYPE);
            if h.len() == 18 {
                let (ind, fh) = (h[16], h[17]);
                assert_eq!(ind & 0x1f, 28);
                if fh & 0x80 != 0 {
                    fu = vec![(ind & 0xe0) | (fh & 0x1f)];
                }
                fu.extend_from_slice(&p.payload);
                if fh & 0x40 != 0 {
                    nals.push(std::mem::take(&mut fu));
                }
            } else {
                nals.push(p.payload.to_vec());
            }
        }
        nals
    }

    #[test]
    fn access_units_become_single_nal_and_fu_a_packets_sharing_the_bytes() {
        let small: Vec<u8> = vec![0x06, 1, 2, 3]; // SEI
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..3000u32).map(|i| i as u8))
            .collect(); // IDR
        let mut au = Vec::new();
        for nal in [&small, &big] {
            au.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            au.extend_from_slice(nal);
        }
        let au = Bytes::from(au);
        let sps = Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]);
        let mut p = H264Packetizer::new(0, 0xdead_beef, 65_534);
        let mut out = Vec::new();
        p.packetize(std::slice::from_ref(&sps), &au, 4, 90_000, &mut out)
            .unwrap();
        assert_eq!(
            out.len(),
            2 + 3,
            "SPS, SEI, then the IDR in three FU-A fragments"
        );
        assert_eq!(depacketize(&out), vec![sps.to_vec(), small, big.clone()]);
        let seqs: Vec<u16> = out
            .iter()
            .map(|p| u16::from_be_bytes([p.header()[6], p.header()[7]]))
            .collect();
        assert_eq!(seqs, vec![65_534, 65_535, 0, 1, 2], "the sequence wraps");
        let markers: Vec<bool> = out.iter().map(|p| p.header()[5] & 0x80 != 0).collect();
        assert_eq!(markers, vec![false, false, false, false, true]);
        for p in &out {
            assert_eq!(&p.header()[8..12], &90_000u32.to_be_bytes());
            assert_eq!(&p.header()[12..16], &0xdead_beefu32.to_be_bytes());
            assert!(p.payload.len() <= MAX_RTP_PAYLOAD);
        }
        // The payloads are the access unit's own bytes, not copies.
        let range = au.as_ptr() as usize..au.as_ptr() as usize + au.len();
        assert!(
            out[4].payload.as_ptr() as usize >= range.start
                && (out[4].payload.as_ptr() as usize) < range.end
        );
        // Read as one Buf, in uneven steps and in vectors of three, the
        // packets give exactly their bytes in wire order.
        let wire: Vec<u8> = out
            .iter()
            .flat_map(|p| p.header().iter().chain(p.payload.iter()).copied())
            .collect();
        for step in [1, 7, 1000, wire.len()] {
            use bytes::Buf;
            let mut buf = InterleavedBuf::new(&out);
            let mut read = Vec::new();
            while buf.has_remaining() {
                let mut slices = [std::io::IoSlice::new(&[]); 3];
                let n = buf.chunks_vectored(&mut slices);
                assert!(n > 0);
                let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
                assert!(joined.starts_with(buf.chunk()));
                let take = step.min(joined.len());
                read.extend_from_slice(&joined[..take]);
                buf.advance(take);
            }
            assert_eq!(read, wire, "step {step}");
        }
        // A malformed access unit is an error, not a panic.
        let mut out = Vec::new();
        assert!(
            p.packetize(&[], &Bytes::from_static(&[0, 0, 0, 9, 1]), 4, 0, &mut out)
                .is_err()
        );
    }

    #[test]
    fn sdp_names_the_profile_and_parameter_sets() {
        use crate::h264::tests::{PPS, SPS_640X360, record};
        let config = AvcConfig::parse_record(Bytes::from(record(SPS_640X360, PPS))).unwrap();
        let sdp = sdp(&config, 42, Some(15)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        for line in [
            "m=video 0 RTP/AVP 96".to_string(),
            "a=rtpmap:96 H264/90000".to_string(),
            format!(
                "a=fmtp:96 packetization-mode=1;profile-level-id=64001E;sprop-parameter-sets={},{}",
                b64.encode(SPS_640X360),
                b64.encode(PPS)
            ),
            "a=framerate:15".to_string(),
            "a=control:trackID=0".to_string(),
        ] {
            assert!(sdp.contains(&format!("{line}\r\n")), "{line} not in {sdp}");
        }
        let mut empty = config.clone();
        empty.pps.clear();
        assert!(super::sdp(&empty, 1, None).is_err());
        assert!(!super::sdp(&config, 1, None).unwrap().contains("framerate"));
    }
}
