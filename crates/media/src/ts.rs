//! MPEG-2 Transport Stream muxer (ISO/IEC 13818-1) for HLS `.ts` segments.
//!
//! One program: PAT → PMT on PID 0x1000, H.264 on PID 0x100 (stream type 0x1b,
//! also the PCR PID) and AAC/ADTS on PID 0x101 (stream type 0x0f). The muxer is a
//! small state machine over continuity counters so that consecutive segments of one
//! stream form a valid continuous TS; each segment still starts with PAT/PMT and an
//! IDR carrying SPS/PPS, so it is decodable on its own.
//!
//! Guarantees: every packet is exactly 188 bytes and starts with 0x47; PSI sections
//! carry a correct MPEG-2 CRC-32; PTS/DTS are 33-bit 90 kHz (wrapping); the first
//! packet of each video PES carries a PCR, and of each IDR the random access
//! indicator. Written by hand: the format is small and the available crates are
//! demuxers, not muxers.
//!
//! Provenance travels in-band as `transport_private_data` in the adaptation field
//! of one adaptation-only packet on [`PROVENANCE_PID`], a PID the PMT does not
//! announce: demuxers drop packets of unknown PIDs without complaint (ffmpeg
//! decodes every frame, see the roundtrip test), a PID of its own can be found
//! and removed without touching any elementary stream's continuity counters, and
//! adaptation-only packets do not advance a continuity counter at all. The
//! private data is [`HEARTH_UUID`] followed by the encoded record. The packet
//! goes right after the leading PAT/PMT, because RFC 8216 §3.2 asks that a
//! segment's first two packets be the PAT and PMT.

use std::ops::Range;

use crate::MediaError;
use crate::aac::AacConfig;
use crate::h264::{self, AvcConfig, NAL_AUD, NAL_IDR, NAL_SPS};
use crate::provenance::{ENCODED_LEN, HEARTH_UUID, ProvenanceRecord};

/// TS packet size.
pub const PACKET_SIZE: usize = 188;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream (and PCR).
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC elementary stream.
pub const AUDIO_PID: u16 = 0x101;
/// Stream type H.264.
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// Stream type AAC with ADTS transport.
pub const STREAM_TYPE_AAC: u8 = 0x0f;

/// PID of the provenance packet (not listed in the PMT).
pub const PROVENANCE_PID: u16 = 0x1ff0;
/// Length of the provenance private data: UUID + record.
const PRIVATE_DATA_LEN: usize = 16 + ENCODED_LEN;

const PTS_MASK: i64 = (1 << 33) - 1;

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut j = 0;
        while j < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            };
            j += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32/MPEG-2 (poly 0x04c11db7, init all ones, no reflection, no final xor).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xffff_ffff, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[((crc >> 24) ^ u32::from(b)) as usize]
    })
}

/// Transport stream muxer state: continuity counters and PMT version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsMuxer {
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    pmt_version: u8,
}

impl TsMuxer {
    /// A muxer with all continuity counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumps the PMT version (call when the set of streams changes).
    pub fn bump_version(&mut self) {
        self.pmt_version = (self.pmt_version + 1) & 0x1f;
    }

    fn cc(&mut self, pid: u16) -> u8 {
        let cc = match pid {
            0 => &mut self.cc_pat,
            PMT_PID => &mut self.cc_pmt,
            VIDEO_PID => &mut self.cc_video,
            _ => &mut self.cc_audio,
        };
        let v = *cc;
        *cc = (*cc + 1) & 0x0f;
        v
    }

    /// Writes PAT and PMT (one packet each).
    pub fn write_tables(&mut self, has_audio: bool, out: &mut Vec<u8>) {
        let mut pat = vec![0x00, 0, 0, 0x00, 0x01, 0xc1 | (self.pmt_version << 1), 0, 0];
        pat.extend_from_slice(&[0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
        self.write_section(0, pat, out);

        let mut pmt = vec![0x02, 0, 0, 0x00, 0x01, 0xc1 | (self.pmt_version << 1), 0, 0];
        pmt.extend_from_slice(&[0xe0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xf0, 0x00]);
        pmt.extend_from_slice(&[
            STREAM_TYPE_H264,
            0xe0 | (VIDEO_PID >> 8) as u8,
            VIDEO_PID as u8,
            0xf0,
            0x00,
        ]);
        if has_audio {
            pmt.extend_from_slice(&[
                STREAM_TYPE_AAC,
                0xe0 | (AUDIO_PID >> 8) as u8,
                AUDIO_PID as u8,
                0xf0,
                0x00,
            ]);
        }
        self.write_section(PMT_PID, pmt, out);
    }

    /// `section` is the PSI section without length and CRC; both are filled in here.
    fn write_section(&mut self, pid: u16, mut section: Vec<u8>, out: &mut Vec<u8>) {
        let section_length = section.len() - 3 + 4;
        section[1] = 0xb0 | ((section_length >> 8) as u8 & 0x0f);
        section[2] = section_length as u8;
        let crc = crc32_mpeg2(&section);
        section.extend_from_slice(&crc.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(&[
            0x47,
            0x40 | (pid >> 8) as u8,
            pid as u8,
            0x10 | self.cc(pid),
            0x00,
        ]);
        out.extend_from_slice(&section);
        out.resize(start + PACKET_SIZE, 0xff);
    }

    /// Writes one video access unit (Annex B, given as pieces in order, see
    /// [`annexb_pieces`]) as a PES. Timestamps are 90 kHz; they are reduced modulo
    /// 2^33. The PCR is set to the DTS.
    pub fn write_video(
        &mut self,
        pts_90k: i64,
        dts_90k: i64,
        keyframe: bool,
        au: &[&[u8]],
        out: &mut Vec<u8>,
    ) {
        let au_len: usize = au.iter().map(|p| p.len()).sum();
        let with_dts = pts_90k != dts_90k;
        let header_len: usize = if with_dts { 10 } else { 5 };
        let payload_len = 3 + header_len + au_len;
        let pes_len = if payload_len <= 0xffff {
            payload_len as u16
        } else {
            0
        };
        let mut header = Vec::with_capacity(19);
        header.extend_from_slice(&[0, 0, 1, 0xe0]);
        header.extend_from_slice(&pes_len.to_be_bytes());
        header.extend_from_slice(&[0x84, if with_dts { 0xc0 } else { 0x80 }, header_len as u8]); // data_alignment
        write_timestamp(&mut header, if with_dts { 3 } else { 2 }, pts_90k);
        if with_dts {
            write_timestamp(&mut header, 1, dts_90k);
        }
        debug_assert_eq!(header.len(), video_pes_len(pts_90k, dts_90k, 0));
        self.write_pes(
            VIDEO_PID,
            &header,
            au,
            Some((dts_90k & PTS_MASK) as u64),
            keyframe,
            out,
        );
    }

    /// Writes ADTS frames (one or more, given as pieces in order) as one audio PES
    /// with the first frame's PTS.
    pub fn write_audio(&mut self, pts_90k: i64, adts: &[&[u8]], out: &mut Vec<u8>) {
        let adts_len: usize = adts.iter().map(|p| p.len()).sum();
        let payload_len = 3 + 5 + adts_len;
        let pes_len = if payload_len <= 0xffff {
            payload_len as u16
        } else {
            0
        };
        let mut header = Vec::with_capacity(14);
        header.extend_from_slice(&[0, 0, 1, 0xc0]);
        header.extend_from_slice(&pes_len.to_be_bytes());
        header.extend_from_slice(&[0x84, 0x80, 5]);
        write_timestamp(&mut header, 2, pts_90k);
        debug_assert_eq!(header.len(), audio_pes_len(0));
        self.write_pes(AUDIO_PID, &header, adts, None, false, out);
    }

    /// Advances the counters as [`TsMuxer::write_tables`] would.
    pub fn skip_tables(&mut self) {
        self.cc(0);
        self.cc(PMT_PID);
    }

    /// Advances the counters as [`TsMuxer::write_video`] would for an access unit
    /// of `au_len` bytes, without writing it.
    pub fn skip_video(&mut self, pts_90k: i64, dts_90k: i64, au_len: usize) {
        let n = pes_packets(video_pes_len(pts_90k, dts_90k, au_len), VIDEO_FIRST_AF);
        self.advance(VIDEO_PID, n);
    }

    /// Advances the counters as [`TsMuxer::write_audio`] would for `adts_len`
    /// bytes of ADTS frames, without writing them.
    pub fn skip_audio(&mut self, adts_len: usize) {
        self.advance(AUDIO_PID, pes_packets(audio_pes_len(adts_len), 0));
    }

    fn advance(&mut self, pid: u16, packets: usize) {
        for _ in 0..packets % 16 {
            self.cc(pid);
        }
    }

    /// Writes `header` followed by the `body` pieces as the packets of one PES.
    fn write_pes(
        &mut self,
        pid: u16,
        header: &[u8],
        body: &[&[u8]],
        pcr: Option<u64>,
        random_access: bool,
        out: &mut Vec<u8>,
    ) {
        let first_af = if pcr.is_some() { VIDEO_FIRST_AF } else { 0 };
        debug_assert!(random_access <= pcr.is_some(), "RAI only with a PCR");
        let total = header.len() + body.iter().map(|p| p.len()).sum::<usize>();
        let mut pieces = std::iter::once(header).chain(body.iter().copied());
        let mut piece: &[u8] = &[];
        let mut rest = total;
        let mut first = true;
        let mut written = 0;
        while rest > 0 {
            let start = out.len();
            let pusi = if first { 0x40 } else { 0 };
            // Adaptation field contents (after its length byte): flags [+ PCR].
            let mut af = [0u8; 7];
            let mut af_len = 0;
            if first && (pcr.is_some() || random_access) {
                af[0] = if random_access { 0x40 } else { 0 } | if pcr.is_some() { 0x10 } else { 0 };
                af_len = 1;
                if let Some(base) = pcr {
                    af[1..7].copy_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        ((base & 1) as u8) << 7 | 0x7e,
                        0x00,
                    ]);
                    af_len = 7;
                }
            }
            let af_total = if af_len == 0 { 0 } else { 1 + af_len };
            let room = PACKET_SIZE - 4 - af_total;
            let take = rest.min(room);
            // Stuff the adaptation field so the payload exactly fills the packet.
            let af_total = PACKET_SIZE - 4 - take;
            let has_af = af_total > 0;
            out.extend_from_slice(&[
                0x47,
                pusi | (pid >> 8) as u8,
                pid as u8,
                if has_af { 0x30 } else { 0x10 } | self.cc(pid),
            ]);
            if has_af {
                out.push((af_total - 1) as u8);
                if af_total > 1 {
                    // Flags (zero when there is nothing to flag), then stuffing.
                    out.extend_from_slice(&af[..af_len.max(1)]);
                    out.resize(start + 4 + af_total, 0xff);
                }
            }
            let mut need = take;
            while need > 0 {
                if piece.is_empty() {
                    piece = pieces.next().unwrap_or_default();
                    continue;
                }
                let n = need.min(piece.len());
                out.extend_from_slice(&piece[..n]);
                piece = &piece[n..];
                need -= n;
            }
            debug_assert_eq!(out.len() - start, PACKET_SIZE);
            rest -= take;
            first = false;
            written += 1;
        }
        debug_assert_eq!(written, pes_packets(total, first_af));
    }
}

/// Bytes of the adaptation field of a video PES's first packet: length, flags
/// and PCR.
const VIDEO_FIRST_AF: usize = 8;

/// Length of a video PES (header and access unit).
fn video_pes_len(pts_90k: i64, dts_90k: i64, au_len: usize) -> usize {
    9 + if pts_90k != dts_90k { 10 } else { 5 } + au_len
}

/// Length of an audio PES (header and ADTS frames).
fn audio_pes_len(adts_len: usize) -> usize {
    14 + adts_len
}

/// Packets a PES of `len` bytes takes when its first packet carries an
/// adaptation field of `first_af` bytes (the others carry none but stuffing).
fn pes_packets(len: usize, first_af: usize) -> usize {
    let first_room = PACKET_SIZE - 4 - first_af;
    if len == 0 {
        0
    } else if len <= first_room {
        1
    } else {
        1 + (len - first_room).div_ceil(PACKET_SIZE - 4)
    }
}

fn write_timestamp(out: &mut Vec<u8>, prefix: u8, ts: i64) {
    let ts = (ts & PTS_MASK) as u64;
    out.extend_from_slice(&[
        (prefix << 4) | ((ts >> 29) as u8 & 0x0e) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xfe) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8 & 0xfe) | 1,
    ]);
}

/// The pieces of an Annex B access unit for TS, appended to `out` in order: an
/// AUD, then SPS/PPS from `config` before an IDR unless the access unit already
/// carries an SPS, then the NAL units (any AUD in the input is dropped so there
/// is exactly one). The pieces borrow the input; returns their total length.
pub fn annexb_pieces<'a>(
    avcc: &'a [u8],
    config: &'a AvcConfig,
    out: &mut Vec<&'a [u8]>,
) -> Result<usize, MediaError> {
    const AUD: &[u8] = &[0, 0, 0, 1, 0x09, 0xf0];
    const START: &[u8] = &[0, 0, 0, 1];
    let mut has_idr = false;
    let mut has_sps = false;
    for nal in h264::nal_units(avcc, config.nalu_length_size) {
        match h264::nal_type(nal?) {
            NAL_IDR => has_idr = true,
            NAL_SPS => has_sps = true,
            _ => {}
        }
    }
    let mut len = AUD.len();
    out.push(AUD);
    if has_idr && !has_sps {
        for ps in config.sps.iter().chain(&config.pps) {
            out.extend([START, &ps[..]]);
            len += START.len() + ps.len();
        }
    }
    for nal in h264::nal_units(avcc, config.nalu_length_size) {
        let nal = nal?;
        if h264::nal_type(nal) == NAL_AUD {
            continue;
        }
        out.extend([START, nal]);
        len += START.len() + nal.len();
    }
    Ok(len)
}

/// [`annexb_pieces`], joined into `out`.
pub fn annexb_access_unit(
    avcc: &[u8],
    config: &AvcConfig,
    out: &mut Vec<u8>,
) -> Result<(), MediaError> {
    let mut pieces = Vec::new();
    annexb_pieces(avcc, config, &mut pieces)?;
    for p in pieces {
        out.extend_from_slice(p);
    }
    Ok(())
}

/// One adaptation-field-only TS packet on [`PROVENANCE_PID`] whose
/// `transport_private_data` is [`HEARTH_UUID`] + the encoded `record`; the rest
/// of the adaptation field is stuffing. `continuity` is written as the packet's
/// continuity counter (low 4 bits); packets without payload do not advance it,
/// so a constant is correct.
pub fn provenance_packet(record: &ProvenanceRecord, continuity: u8) -> [u8; PACKET_SIZE] {
    let mut p = [0xffu8; PACKET_SIZE];
    p[0] = 0x47;
    p[1] = (PROVENANCE_PID >> 8) as u8; // no TEI, no PUSI, priority 0
    p[2] = PROVENANCE_PID as u8;
    p[3] = 0x20 | (continuity & 0x0f); // not scrambled, adaptation field only
    p[4] = (PACKET_SIZE - 5) as u8; // adaptation_field_length
    p[5] = 0x02; // transport_private_data_flag
    p[6] = PRIVATE_DATA_LEN as u8;
    p[7..23].copy_from_slice(&HEARTH_UUID);
    p[23..23 + ENCODED_LEN].copy_from_slice(&record.encode());
    p
}

fn packet_pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// Checks that `segment` is whole, synchronised TS packets.
fn check_packets(segment: &[u8]) -> Result<(), MediaError> {
    if !segment.len().is_multiple_of(PACKET_SIZE) {
        return Err(MediaError::truncated(
            "TS packet",
            segment.len().div_ceil(PACKET_SIZE) * PACKET_SIZE,
            segment.len(),
        ));
    }
    if segment.chunks(PACKET_SIZE).any(|p| p[0] != 0x47) {
        return Err(MediaError::InvalidProvenance("TS packet without sync byte"));
    }
    Ok(())
}

/// The `transport_private_data` of a packet's adaptation field, if it has one.
fn private_data(p: &[u8]) -> Option<&[u8]> {
    if p[3] & 0x20 == 0 {
        return None;
    }
    let af_len = usize::from(p[4]);
    let af = p.get(5..5 + af_len)?;
    let (&flags, mut rest) = af.split_first()?;
    if flags & 0x10 != 0 {
        rest = rest.get(6..)?; // PCR
    }
    if flags & 0x08 != 0 {
        rest = rest.get(6..)?; // OPCR
    }
    if flags & 0x04 != 0 {
        rest = rest.get(1..)?; // splice_countdown
    }
    if flags & 0x02 == 0 {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    rest.get(..usize::from(len))
}

/// Returns `segment` with a [`provenance_packet`] inserted after its leading
/// PAT/PMT packets. Errors if the segment is not whole TS packets or already
/// carries a packet on [`PROVENANCE_PID`] (a segment is stamped once).
pub fn insert_provenance(
    segment: &[u8],
    record: &ProvenanceRecord,
) -> Result<bytes::Bytes, MediaError> {
    check_packets(segment)?;
    let mut packets = segment.chunks(PACKET_SIZE);
    if packets.any(|p| packet_pid(p) == PROVENANCE_PID) {
        return Err(MediaError::InvalidProvenance(
            "segment already carries a provenance packet",
        ));
    }
    let psi = segment
        .chunks(PACKET_SIZE)
        .take_while(|p| matches!(packet_pid(p), 0 | PMT_PID))
        .count();
    let at = psi * PACKET_SIZE;
    let mut out = Vec::with_capacity(segment.len() + PACKET_SIZE);
    out.extend_from_slice(&segment[..at]);
    out.extend_from_slice(&provenance_packet(record, 0));
    out.extend_from_slice(&segment[at..]);
    Ok(bytes::Bytes::from(out))
}

/// The provenance record of a TS segment and the byte range of its packet, so a
/// verifier can digest the packets around it.
///
/// `None` unless the segment is whole synchronised packets with exactly one
/// packet on [`PROVENANCE_PID`], whose private data is [`HEARTH_UUID`] followed
/// by a record that decodes: two records mean no single identity.
pub fn locate_provenance(segment: &[u8]) -> Option<(ProvenanceRecord, Range<usize>)> {
    check_packets(segment).ok()?;
    let mut found = segment
        .chunks(PACKET_SIZE)
        .enumerate()
        .filter(|(_, p)| packet_pid(p) == PROVENANCE_PID);
    let (i, p) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let data = private_data(p)?;
    if data.len() != PRIVATE_DATA_LEN || data[..16] != HEARTH_UUID {
        return None;
    }
    let record = ProvenanceRecord::decode(&data[16..]).ok()?;
    Some((record, i * PACKET_SIZE..(i + 1) * PACKET_SIZE))
}

/// The provenance record of a TS segment; see [`locate_provenance`].
pub fn find_provenance(segment: &[u8]) -> Option<ProvenanceRecord> {
    locate_provenance(segment).map(|(r, _)| r)
}

/// Appends an ADTS frame (header + raw AAC) to `out`.
pub fn adts_frame(config: &AacConfig, raw: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&config.adts_header(raw.len()));
    out.extend_from_slice(raw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::tests::{PPS, SPS_640X360, record};
    use bytes::Bytes;

    fn packets(ts: &[u8]) -> Vec<&[u8]> {
        assert_eq!(ts.len() % PACKET_SIZE, 0, "whole packets");
        ts.chunks(PACKET_SIZE)
            .inspect(|p| assert_eq!(p[0], 0x47))
            .collect()
    }
    fn pid(p: &[u8]) -> u16 {
        (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
    }

    #[test]
    fn crc_known_answer() {
        // CRC-32/MPEG-2 check value.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
        // The CRC over a section including its CRC is zero.
        let mut m = TsMuxer::new();
        let mut out = Vec::new();
        m.write_tables(true, &mut out);
        for p in packets(&out) {
            let len = usize::from(p[6] & 0x0f) << 8 | usize::from(p[7]);
            assert_eq!(crc32_mpeg2(&p[5..5 + 3 + len]), 0);
        }
    }

    #[test]
    fn pat_pmt_contents() {
        let mut m = TsMuxer::new();
        let mut out = Vec::new();
        m.write_tables(true, &mut out);
        let p = packets(&out);
        assert_eq!(p.len(), 2);
        assert_eq!((pid(p[0]), pid(p[1])), (0, PMT_PID));
        // PAT: program 1 -> PMT PID
        assert_eq!(&p[0][13..17], &[0x00, 0x01, 0xf0, 0x00]);
        // PMT: PCR PID, then two streams
        assert_eq!(&p[1][13..15], &[0xe1, 0x00]);
        assert_eq!(&p[1][17..22], &[0x1b, 0xe1, 0x00, 0xf0, 0x00]);
        assert_eq!(&p[1][22..27], &[0x0f, 0xe1, 0x01, 0xf0, 0x00]);
    }

    #[test]
    fn pes_packetization_sizes_cc_and_timestamps() {
        let mut m = TsMuxer::new();
        for len in [0usize, 1, 150, 163, 164, 165, 176, 182, 183, 184, 400, 5000] {
            let au = vec![0xaa; len];
            let mut out = Vec::new();
            m.write_video(9000 + 7200, 9000, true, &[&au], &mut out);
            let ps = packets(&out);
            // Reassemble the payload and check it is the PES we expect.
            let mut payload = Vec::new();
            for (i, p) in ps.iter().enumerate() {
                assert_eq!(pid(p), VIDEO_PID);
                assert_eq!(p[1] & 0x40 != 0, i == 0, "PUSI only on first");
                let afc = (p[3] >> 4) & 3;
                let start = if afc == 3 { 5 + usize::from(p[4]) } else { 4 };
                if i == 0 {
                    assert_eq!(afc, 3);
                    assert_eq!(p[5] & 0x50, 0x50, "RAI and PCR flags");
                    let pcr = (u64::from(p[6]) << 25)
                        | (u64::from(p[7]) << 17)
                        | (u64::from(p[8]) << 9)
                        | (u64::from(p[9]) << 1)
                        | (u64::from(p[10]) >> 7);
                    assert_eq!(pcr, 9000);
                }
                payload.extend_from_slice(&p[start..]);
            }
            assert_eq!(&payload[..4], &[0, 0, 1, 0xe0]);
            assert_eq!(payload[7], 0xc0, "PTS+DTS");
            let pts = ((u64::from(payload[9]) >> 1 & 7) << 30)
                | (u64::from(payload[10]) << 22)
                | ((u64::from(payload[11]) >> 1) << 15)
                | (u64::from(payload[12]) << 7)
                | (u64::from(payload[13]) >> 1);
            assert_eq!(pts, 16200);
            assert_eq!(payload.len(), 19 + len, "len {len}");
            assert!(payload[19..].iter().all(|&b| b == 0xaa));
        }
        // Continuity counters increase by one per packet across calls.
        let mut m = TsMuxer::new();
        let mut out = Vec::new();
        for _ in 0..20 {
            m.write_audio(0, &[&[1; 300]], &mut out);
        }
        let ccs: Vec<u8> = packets(&out).iter().map(|p| p[3] & 0x0f).collect();
        for (i, cc) in ccs.iter().enumerate() {
            assert_eq!(usize::from(*cc), i % 16);
        }
    }

    #[test]
    fn negative_and_wrapping_timestamps_are_masked() {
        let mut pes = Vec::new();
        write_timestamp(&mut pes, 2, -1);
        assert_eq!(pes, [0x2f, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn access_unit_gets_aud_and_parameter_sets() {
        let cfg = AvcConfig::parse_record(Bytes::from(record(SPS_640X360, PPS))).unwrap();
        let idr = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 2, 0x65, 0x88];
        let mut out = Vec::new();
        annexb_access_unit(&idr, &cfg, &mut out).unwrap();
        let mut expect = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
        expect.extend_from_slice(SPS_640X360);
        expect.extend_from_slice(&[0, 0, 0, 1]);
        expect.extend_from_slice(PPS);
        expect.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88]);
        assert_eq!(out, expect);
        let p = [0, 0, 0, 2, 0x41, 0x9a];
        out.clear();
        annexb_access_unit(&p, &cfg, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a]);
        assert!(annexb_access_unit(&[0, 0, 0, 9, 1], &cfg, &mut out).is_err());
    }

    #[test]
    fn provenance_packet_layout() {
        let r = crate::provenance::tests::sample();
        let p = provenance_packet(&r, 0x17);
        assert_eq!(p.len(), PACKET_SIZE);
        assert_eq!(&p[..7], &[0x47, 0x1f, 0xf0, 0x27, 183, 0x02, 90]);
        assert_eq!(&p[7..23], &HEARTH_UUID);
        assert_eq!(&p[23..97], &r.encode());
        assert!(p[97..].iter().all(|&b| b == 0xff));
        assert_eq!(find_provenance(&p), Some(r));
    }

    fn small_segment() -> Vec<u8> {
        let mut m = TsMuxer::new();
        let mut out = Vec::new();
        m.write_tables(true, &mut out);
        m.write_video(0, 0, true, &[&[0, 0, 0, 1, 0x65, 1, 2, 3]], &mut out);
        m.write_audio(0, &[&[9; 400]], &mut out);
        out
    }

    #[test]
    fn insert_goes_after_pat_pmt_and_is_removable() {
        let r = crate::provenance::tests::sample();
        let seg = small_segment();
        assert_eq!(find_provenance(&seg), None);
        let stamped = insert_provenance(&seg, &r).unwrap();
        let pids: Vec<u16> = packets(&stamped).iter().map(|p| pid(p)).collect();
        assert_eq!(&pids[..4], &[0, PMT_PID, PROVENANCE_PID, VIDEO_PID]);
        let (found, range) = locate_provenance(&stamped).unwrap();
        assert_eq!(found, r);
        assert_eq!(range, 2 * PACKET_SIZE..3 * PACKET_SIZE);
        assert_eq!(
            [&stamped[..range.start], &stamped[range.end..]].concat(),
            seg
        );
        assert!(insert_provenance(&stamped, &r).is_err(), "stamped once");
        // Without tables the packet goes first.
        let bare = &seg[2 * PACKET_SIZE..];
        let stamped = insert_provenance(bare, &r).unwrap();
        assert_eq!(pid(&stamped), PROVENANCE_PID);
    }

    #[test]
    fn private_data_after_pcr_is_found() {
        let r = crate::provenance::tests::sample();
        let mut p = [0xffu8; PACKET_SIZE];
        p[..4].copy_from_slice(&[0x47, 0x1f, 0xf0, 0x20]);
        p[4] = 183;
        p[5] = 0x12; // PCR + private data
        p[6..12].copy_from_slice(&[0, 0, 0, 0, 0x7e, 0]);
        p[12] = 90;
        p[13..29].copy_from_slice(&HEARTH_UUID);
        p[29..103].copy_from_slice(&r.encode());
        assert_eq!(find_provenance(&p), Some(r));
    }

    #[test]
    fn malformed_segments_give_none_without_panicking() {
        let r = crate::provenance::tests::sample();
        let stamped = insert_provenance(&small_segment(), &r).unwrap();
        assert_eq!(
            find_provenance(&[&stamped[..], &provenance_packet(&r, 0)].concat()),
            None
        );
        for n in 0..stamped.len() {
            let got = find_provenance(&stamped[..n]);
            assert_eq!(
                got.is_some(),
                n % PACKET_SIZE == 0 && n > 2 * PACKET_SIZE,
                "len {n}"
            );
            let _ = insert_provenance(&stamped[..n], &r);
        }
        let mut wrong_uuid = provenance_packet(&r, 0);
        wrong_uuid[7] ^= 1;
        assert_eq!(find_provenance(&wrong_uuid), None);
        let mut payload_only = provenance_packet(&r, 0);
        payload_only[3] = 0x10;
        assert_eq!(find_provenance(&payload_only), None);
        for seed in 0..3000u64 {
            let mut junk =
                crate::provenance::tests::noise(seed, PACKET_SIZE * (1 + seed as usize % 3));
            for p in junk.chunks_mut(PACKET_SIZE) {
                p[0] = 0x47;
                if seed % 2 == 0 {
                    p[1] = 0x1f;
                    p[2] = 0xf0;
                }
            }
            let _ = find_provenance(&junk);
            let _ = insert_provenance(&junk, &r);
        }
    }
}
