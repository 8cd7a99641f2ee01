//! Fragmented MP4 (ISO/IEC 14496-12) writer for HLS fMP4 / CMAF-style delivery.
//!
//! Two products: an *init segment* (`ftyp` + `moov` with `mvex`/`trex`, no samples)
//! describing the tracks, and *media segments* (`styp` + `moof` + `mdat`) carrying
//! samples. Video is track 1 at 90 kHz; AAC audio, when present, is track 2 at its
//! sample rate. Every `traf` uses default-base-is-moof, a `tfdt`, and a version-1
//! `trun` with per-sample durations, sizes, and (video) flags and signed composition
//! offsets, so B-frames keep `pts != dts` exactly.
//!
//! Written by hand because the job is narrow (two sample entries, one fragment
//! layout) and the existing muxer crates either own I/O or bring far more than we
//! use. Brands: `iso6` + `mp41`; not `cmfc`, because one file carries two tracks,
//! which a strict CMAF track file does not.
//!
//! Guarantees: output is deterministic for a given input; the writer never panics
//! (sizes are checked by construction: boxes are length-patched after writing).
//!
//! Provenance travels in-band as a top-level `uuid` box whose extended type is
//! [`HEARTH_UUID`] and whose body is one encoded [`ProvenanceRecord`]. In a media
//! segment it sits right before `moof` (after `styp`, which stays first); in an
//! init segment after `moov`. Players skip unknown top-level boxes, and `trun`
//! data offsets are relative to `moof` (default-base-is-moof), so inserting the
//! box moves nothing they depend on. It is added after muxing
//! ([`insert_provenance`]) because the stamp is the ingest's decision, not the
//! muxer's, and the box can be located ([`locate_provenance`]) so a verifier can
//! digest exactly the bytes around it.

use std::ops::Range;

use bytes::Bytes;

use crate::MediaError;
use crate::aac::AacConfig;
use crate::h264::AvcConfig;
use crate::provenance::{ENCODED_LEN, HEARTH_UUID, ProvenanceRecord};

/// Track ID of the video track.
pub const VIDEO_TRACK_ID: u32 = 1;
/// Track ID of the audio track.
pub const AUDIO_TRACK_ID: u32 = 2;
/// Video timescale (ticks per second).
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Sample flags: depends on no other sample (sync sample).
const FLAGS_SYNC: u32 = 0x0200_0000;
/// Sample flags: depends on others, is_non_sync_sample.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// One video sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSample {
    /// Decode duration in 90 kHz ticks.
    pub duration_90k: u32,
    /// Composition offset (`pts - dts`) in 90 kHz ticks; may be negative.
    pub cts_offset_90k: i32,
    /// Sync sample (IDR).
    pub keyframe: bool,
    /// AVCC access unit (length prefixes as in the init segment's avcC).
    pub data: Bytes,
}

/// One audio sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSample {
    /// Duration in audio timescale ticks (samples); 1024 for AAC.
    pub duration: u32,
    /// Raw AAC frame.
    pub data: Bytes,
}

/// Everything needed to write one media segment.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// `mfhd` sequence number (1-based, increasing).
    pub sequence_number: u32,
    /// Decode time of the first video sample, 90 kHz.
    pub video_base_90k: u64,
    /// Video samples in decode order.
    pub video: &'a [VideoSample],
    /// Decode time of the first audio sample, in audio timescale ticks.
    pub audio_base: u64,
    /// Audio samples in order (empty: no audio `traf`).
    pub audio: &'a [AudioSample],
}

/// Length-patched box writer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    fn start(&mut self, fourcc: &[u8; 4]) -> usize {
        let pos = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(fourcc);
        pos
    }
    fn start_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
        let pos = self.start(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        pos
    }
    fn end(&mut self, pos: usize) {
        let size = (self.buf.len() - pos) as u32;
        self.buf[pos..pos + 4].copy_from_slice(&size.to_be_bytes());
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

/// Writes the init segment (`ftyp` + `moov`) for video and optional audio.
pub fn init_segment(video: &AvcConfig, audio: Option<&AacConfig>) -> Bytes {
    let mut w = Writer::default();
    let ftyp = w.start(b"ftyp");
    w.bytes(b"iso6");
    w.u32(0);
    w.bytes(b"iso6mp41");
    w.end(ftyp);

    let moov = w.start(b"moov");
    let mvhd = w.start_full(b"mvhd", 0, 0);
    w.u32(0); // creation time
    w.u32(0); // modification time
    w.u32(1000); // timescale
    w.u32(0); // duration: unknown (fragmented)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    matrix(&mut w);
    w.zeros(24); // pre_defined
    w.u32(if audio.is_some() { 3 } else { 2 }); // next_track_ID
    w.end(mvhd);

    trak(&mut w, VIDEO_TRACK_ID, Track::Video(video));
    if let Some(a) = audio {
        trak(&mut w, AUDIO_TRACK_ID, Track::Audio(a));
    }

    let mvex = w.start(b"mvex");
    for id in std::iter::once(VIDEO_TRACK_ID).chain(audio.map(|_| AUDIO_TRACK_ID)) {
        let trex = w.start_full(b"trex", 0, 0);
        w.u32(id);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
        w.end(trex);
    }
    w.end(mvex);
    w.end(moov);
    Bytes::from(w.buf)
}

fn matrix(w: &mut Writer) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
        w.u32(v);
    }
}

enum Track<'a> {
    Video(&'a AvcConfig),
    Audio(&'a AacConfig),
}

fn trak(w: &mut Writer, id: u32, track: Track<'_>) {
    let trak = w.start(b"trak");
    let tkhd = w.start_full(b"tkhd", 0, 0x3); // enabled | in movie
    w.u32(0);
    w.u32(0);
    w.u32(id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate group
    w.u16(if matches!(track, Track::Audio(_)) {
        0x0100
    } else {
        0
    });
    w.u16(0);
    matrix(w);
    let (width, height) = match track {
        Track::Video(v) => (v.width, v.height),
        Track::Audio(_) => (0, 0),
    };
    w.u32(width << 16);
    w.u32(height << 16);
    w.end(tkhd);

    let mdia = w.start(b"mdia");
    let mdhd = w.start_full(b"mdhd", 0, 0);
    w.u32(0);
    w.u32(0);
    w.u32(match track {
        Track::Video(_) => VIDEO_TIMESCALE,
        Track::Audio(a) => a.sample_rate,
    });
    w.u32(0);
    w.u16(0x55c4); // language "und"
    w.u16(0);
    w.end(mdhd);

    let hdlr = w.start_full(b"hdlr", 0, 0);
    w.u32(0);
    match track {
        Track::Video(_) => {
            w.bytes(b"vide");
            w.zeros(12);
            w.bytes(b"VideoHandler\0");
        }
        Track::Audio(_) => {
            w.bytes(b"soun");
            w.zeros(12);
            w.bytes(b"SoundHandler\0");
        }
    }
    w.end(hdlr);

    let minf = w.start(b"minf");
    match track {
        Track::Video(_) => {
            let vmhd = w.start_full(b"vmhd", 0, 1);
            w.zeros(8);
            w.end(vmhd);
        }
        Track::Audio(_) => {
            let smhd = w.start_full(b"smhd", 0, 0);
            w.zeros(4);
            w.end(smhd);
        }
    }
    let dinf = w.start(b"dinf");
    let dref = w.start_full(b"dref", 0, 0);
    w.u32(1);
    let url = w.start_full(b"url ", 0, 1); // self-contained
    w.end(url);
    w.end(dref);
    w.end(dinf);

    let stbl = w.start(b"stbl");
    let stsd = w.start_full(b"stsd", 0, 0);
    w.u32(1);
    match track {
        Track::Video(v) => avc1(w, v),
        Track::Audio(a) => mp4a(w, a),
    }
    w.end(stsd);
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = w.start_full(fourcc, 0, 0);
        w.u32(0);
        w.end(b);
    }
    let stsz = w.start_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.end(stsz);
    w.end(stbl);
    w.end(minf);
    w.end(mdia);
    w.end(trak);
}

fn avc1(w: &mut Writer, v: &AvcConfig) {
    let avc1 = w.start(b"avc1");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved
    w.u16(v.width.min(u32::from(u16::MAX)) as u16);
    w.u16(v.height.min(u32::from(u16::MAX)) as u16);
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame_count
    w.zeros(32); // compressorname
    w.u16(0x0018); // depth
    w.u16(0xffff); // pre_defined = -1
    let avcc = w.start(b"avcC");
    w.bytes(&v.record);
    w.end(avcc);
    w.end(avc1);
}

/// Writes an MPEG-4 descriptor tag and length (ISO/IEC 14496-1 expandable size).
fn descriptor(w: &mut Writer, tag: u8, len: usize) {
    w.u8(tag);
    let mut shift = 21;
    while shift > 0 && len >> shift == 0 {
        shift -= 7;
    }
    while shift > 0 {
        w.u8(0x80 | ((len >> shift) & 0x7f) as u8);
        shift -= 7;
    }
    w.u8((len & 0x7f) as u8);
}

fn mp4a(w: &mut Writer, a: &AacConfig) {
    let mp4a = w.start(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8);
    w.u16(u16::from(if a.channels == 0 { 2 } else { a.channels }));
    w.u16(16); // sample size
    w.zeros(4);
    // 16.16 fixed point; rates above 65535 Hz do not fit and are written as 0
    // (decoders take the rate from the AudioSpecificConfig).
    w.u32(if a.sample_rate <= 0xffff {
        a.sample_rate << 16
    } else {
        0
    });

    let esds = w.start_full(b"esds", 0, 0);
    let asc_len = a.asc.len();
    let dec_specific = 1 + size_of_len(asc_len) + asc_len;
    let dec_config = 13 + dec_specific;
    let sl_config = 3;
    let es = 3 + 1 + size_of_len(dec_config) + dec_config + sl_config;
    descriptor(w, 0x03, es);
    w.u16(0); // ES_ID
    w.u8(0); // flags
    descriptor(w, 0x04, dec_config);
    w.u8(0x40); // objectTypeIndication: MPEG-4 Audio
    w.u8(0x15); // streamType audio (5) << 2 | reserved 1
    w.bytes(&[0, 0, 0]); // bufferSizeDB
    w.u32(0); // maxBitrate
    w.u32(0); // avgBitrate
    descriptor(w, 0x05, asc_len);
    w.bytes(&a.asc);
    descriptor(w, 0x06, 1);
    w.u8(0x02); // predefined: MP4
    w.end(esds);
    w.end(mp4a);
}

fn size_of_len(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        _ => 4,
    }
}

/// Writes a media segment: `styp` + `moof` + `mdat`.
pub fn media_segment(frag: &Fragment<'_>) -> Bytes {
    media_segment_of(std::slice::from_ref(frag))
}

/// Writes a media segment of several fragments (a segment whose LL-HLS parts
/// are its fragments): `styp`, then `moof` + `mdat` per fragment.
pub fn media_segment_of(frags: &[Fragment<'_>]) -> Bytes {
    let mut w = Writer::default();
    w.buf
        .reserve(frags.iter().map(fragment_len).sum::<usize>() + 1024);
    let styp = w.start(b"styp");
    w.bytes(b"msdh");
    w.u32(0);
    w.bytes(b"msdhmsix");
    w.end(styp);
    for f in frags {
        write_fragment(&mut w, f);
    }
    Bytes::from(w.buf)
}

/// Writes one fragment alone, `moof` + `mdat` (an LL-HLS part, a CMAF chunk).
pub fn fragment(frag: &Fragment<'_>) -> Bytes {
    let mut w = Writer::default();
    w.buf.reserve(fragment_len(frag) + 512);
    write_fragment(&mut w, frag);
    Bytes::from(w.buf)
}

fn fragment_len(frag: &Fragment<'_>) -> usize {
    frag.video.iter().map(|s| s.data.len()).sum::<usize>()
        + frag.audio.iter().map(|s| s.data.len()).sum::<usize>()
}

fn write_fragment(w: &mut Writer, frag: &Fragment<'_>) {
    let video_bytes: usize = frag.video.iter().map(|s| s.data.len()).sum();
    let audio_bytes: usize = frag.audio.iter().map(|s| s.data.len()).sum();
    let moof = w.start(b"moof");
    let mfhd = w.start_full(b"mfhd", 0, 0);
    w.u32(frag.sequence_number);
    w.end(mfhd);

    // trun data_offset fields are relative to the moof start; patched below.
    let mut offsets = Vec::new();
    if !frag.video.is_empty() {
        let traf = w.start(b"traf");
        tfhd_tfdt(w, VIDEO_TRACK_ID, frag.video_base_90k);
        let trun = w.start_full(
            b"trun",
            1,
            0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800,
        );
        w.u32(frag.video.len() as u32);
        offsets.push(w.buf.len());
        w.u32(0);
        for s in frag.video {
            w.u32(s.duration_90k);
            w.u32(s.data.len() as u32);
            w.u32(if s.keyframe {
                FLAGS_SYNC
            } else {
                FLAGS_NON_SYNC
            });
            w.u32(s.cts_offset_90k as u32);
        }
        w.end(trun);
        w.end(traf);
    }
    if !frag.audio.is_empty() {
        let traf = w.start(b"traf");
        tfhd_tfdt(w, AUDIO_TRACK_ID, frag.audio_base);
        let trun = w.start_full(b"trun", 1, 0x000001 | 0x000100 | 0x000200);
        w.u32(frag.audio.len() as u32);
        offsets.push(w.buf.len());
        w.u32(0);
        for s in frag.audio {
            w.u32(s.duration);
            w.u32(s.data.len() as u32);
        }
        w.end(trun);
        w.end(traf);
    }
    w.end(moof);
    let moof_size = w.buf.len() - moof;
    let mut data_offset = moof_size + 8;
    let mut sizes = Vec::new();
    if !frag.video.is_empty() {
        sizes.push(video_bytes);
    }
    if !frag.audio.is_empty() {
        sizes.push(audio_bytes);
    }
    for (at, size) in offsets.into_iter().zip(sizes) {
        w.buf[at..at + 4].copy_from_slice(&(data_offset as u32).to_be_bytes());
        data_offset += size;
    }

    let mdat = w.start(b"mdat");
    for s in frag.video {
        w.bytes(&s.data);
    }
    for s in frag.audio {
        w.bytes(&s.data);
    }
    w.end(mdat);
}

fn tfhd_tfdt(w: &mut Writer, track_id: u32, base: u64) {
    let tfhd = w.start_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
    w.u32(track_id);
    w.end(tfhd);
    let tfdt = w.start_full(b"tfdt", 1, 0);
    w.u64(base);
    w.end(tfdt);
}

/// Size of the provenance `uuid` box: header, extended type, record.
pub const PROVENANCE_BOX_LEN: usize = 8 + 16 + ENCODED_LEN;

/// The top-level `uuid` box carrying `record`.
pub fn provenance_box(record: &ProvenanceRecord) -> Bytes {
    let mut out = Vec::with_capacity(PROVENANCE_BOX_LEN);
    out.extend_from_slice(&(PROVENANCE_BOX_LEN as u32).to_be_bytes());
    out.extend_from_slice(b"uuid");
    out.extend_from_slice(&HEARTH_UUID);
    out.extend_from_slice(&record.encode());
    Bytes::from(out)
}

/// One top-level box: fourcc and byte range (header included).
struct TopBox {
    fourcc: [u8; 4],
    range: Range<usize>,
    header_len: usize,
    /// Size field 0: the box extends to the end of the file.
    to_end: bool,
}

/// Walks the top-level boxes of `data`; `Err` if any box header or size is bad.
fn top_level_boxes(data: &[u8]) -> Result<Vec<TopBox>, MediaError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < 8 {
            return Err(MediaError::truncated("box header", 8, rest.len()));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let fourcc = [rest[4], rest[5], rest[6], rest[7]];
        let (size, header_len) = match size32 {
            0 => (rest.len(), 8),
            1 => {
                if rest.len() < 16 {
                    return Err(MediaError::truncated("box largesize", 16, rest.len()));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[8..16]);
                let large = u64::from_be_bytes(b);
                (usize::try_from(large).unwrap_or(usize::MAX), 16)
            }
            n => (n as usize, 8),
        };
        if size < header_len || size > rest.len() {
            return Err(MediaError::truncated(
                "box",
                size.max(header_len),
                rest.len(),
            ));
        }
        out.push(TopBox {
            fourcc,
            range: pos..pos + size,
            header_len,
            to_end: size32 == 0,
        });
        pos += size;
    }
    Ok(out)
}

fn is_hearth_uuid(data: &[u8], b: &TopBox) -> bool {
    b.fourcc == *b"uuid"
        && data[b.range.clone()].get(b.header_len..b.header_len + 16) == Some(&HEARTH_UUID[..])
}

/// Returns `segment` with the provenance box inserted: immediately before the
/// first `moof` of a media segment, or after the last box (after `moov`) of an
/// init segment — before it if that box has size 0 (extends to the end of file). Errors if the top-level box structure is malformed or the
/// segment already carries a Hearth provenance box (a segment is stamped once).
pub fn insert_provenance(segment: &[u8], record: &ProvenanceRecord) -> Result<Bytes, MediaError> {
    let boxes = top_level_boxes(segment)?;
    if boxes.iter().any(|b| is_hearth_uuid(segment, b)) {
        return Err(MediaError::InvalidProvenance(
            "segment already carries a provenance box",
        ));
    }
    // A last box of size 0 extends to the end of the file: anything appended
    // after it would be read as part of it, so the record goes before it.
    let at = boxes
        .iter()
        .find(|b| b.fourcc == *b"moof" || b.to_end)
        .map_or(segment.len(), |b| b.range.start);
    let mut out = Vec::with_capacity(segment.len() + PROVENANCE_BOX_LEN);
    out.extend_from_slice(&segment[..at]);
    out.extend_from_slice(&provenance_box(record));
    out.extend_from_slice(&segment[at..]);
    Ok(Bytes::from(out))
}

/// The provenance record of a segment and the byte range of its box, so a
/// verifier can digest `segment[..range.start]` and `segment[range.end..]`.
///
/// `None` unless the top-level structure is well formed and carries exactly one
/// Hearth `uuid` box whose record decodes: a segment with two (possibly
/// conflicting) records has no single identity and is treated as having none.
pub fn locate_provenance(segment: &[u8]) -> Option<(ProvenanceRecord, Range<usize>)> {
    let boxes = top_level_boxes(segment).ok()?;
    let mut found = boxes.iter().filter(|b| is_hearth_uuid(segment, b));
    let b = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let body = &segment[b.range.start + b.header_len + 16..b.range.end];
    let record = ProvenanceRecord::decode(body).ok()?;
    Some((record, b.range.clone()))
}

/// The provenance record of an fMP4 segment (media or init); see [`locate_provenance`].
pub fn find_provenance(segment: &[u8]) -> Option<ProvenanceRecord> {
    locate_provenance(segment).map(|(r, _)| r)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::h264::tests::{PPS, SPS_640X360, record};

    /// Minimal box walker for assertions: (fourcc, body range) of each child.
    pub fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 8 <= data.len() {
            let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            assert!(
                size >= 8 && pos + size <= data.len(),
                "bad box size {size} at {pos}"
            );
            let fourcc: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
            out.push((fourcc, &data[pos + 8..pos + size]));
            pos += size;
        }
        assert_eq!(pos, data.len(), "trailing bytes");
        out
    }

    pub fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
        let (first, rest) = path.split_first().unwrap();
        let body = boxes(data)
            .into_iter()
            .find(|(f, _)| f == *first)
            .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(*first)))
            .1;
        if rest.is_empty() {
            body
        } else {
            find(body, rest)
        }
    }

    fn configs() -> (AvcConfig, AacConfig) {
        (
            AvcConfig::parse_record(Bytes::from(record(SPS_640X360, PPS))).unwrap(),
            AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap(),
        )
    }

    /// A last box of size 0 extends to the end of the file: the record used to
    /// be appended inside it, and lost.
    #[test]
    fn provenance_survives_a_last_box_of_size_zero() {
        let rec = crate::provenance::tests::sample();
        let mut init = mp4_box_for_test(b"ftyp", b"isom\0\0\0\0");
        let moov_at = init.len();
        init.extend(mp4_box_for_test(b"moov", &[1, 2, 3, 4]));
        init[moov_at..moov_at + 4].copy_from_slice(&[0, 0, 0, 0]);
        let stamped = insert_provenance(&init, &rec).unwrap();
        assert_eq!(find_provenance(&stamped), Some(rec));
    }

    fn mp4_box_for_test(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((8 + payload.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }
    #[test]
    fn init_segment_layout() {
        let (v, a) = configs();
        let init = init_segment(&v, Some(&a));
        let top: Vec<_> = boxes(&init).iter().map(|b| b.0).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
        assert_eq!(&find(&init, &[b"ftyp"])[..4], b"iso6");
        let moov: Vec<_> = boxes(find(&init, &[b"moov"])).iter().map(|b| b.0).collect();
        assert_eq!(moov, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
        let mvex = boxes(find(&init, &[b"moov", b"mvex"]));
        assert_eq!(mvex.len(), 2);
        assert_eq!(&mvex[1].1[4..8], &2u32.to_be_bytes(), "trex track 2");
        // The avcC box carries the record verbatim, after the 78-byte visual sample entry.
        let stsd = find(
            &init,
            &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
        );
        let entries = boxes(&stsd[8..]);
        assert_eq!(&entries[0].0, b"avc1");
        let avc1 = entries[0].1;
        assert_eq!(u16::from_be_bytes([avc1[24], avc1[25]]), 640);
        assert_eq!(u16::from_be_bytes([avc1[26], avc1[27]]), 360);
        assert_eq!(find(&avc1[78..], &[b"avcC"]), &v.record[..]);
        // Video timescale 90k.
        let mdhd = find(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]);
        assert_eq!(&mdhd[12..16], &90_000u32.to_be_bytes());
    }

    #[test]
    fn esds_descriptor_lengths_are_consistent() {
        let (_, a) = configs();
        let mut w = Writer::default();
        mp4a(&mut w, &a);
        let mp4a_body = boxes(&w.buf)[0].1;
        let esds = find(&mp4a_body[28..], &[b"esds"]);
        // version/flags, then ES_Descriptor tag 3 with a one-byte length.
        assert_eq!(esds[4], 0x03);
        assert_eq!(usize::from(esds[5]), esds.len() - 6);
        let dsi = esds.windows(2).position(|p| p == [0x05, 0x02]).unwrap();
        assert_eq!(&esds[dsi + 2..dsi + 4], &[0x12, 0x10]);
        assert_eq!(&esds[esds.len() - 3..], &[0x06, 0x01, 0x02]);
        // Long lengths use the expandable form.
        let mut w = Writer::default();
        descriptor(&mut w, 4, 300);
        assert_eq!(w.buf, [4, 0x82, 0x2c]);
    }

    #[test]
    fn media_segment_offsets_point_at_samples() {
        let video = [
            VideoSample {
                duration_90k: 3600,
                cts_offset_90k: 7200,
                keyframe: true,
                data: Bytes::from_static(b"IDR!"),
            },
            VideoSample {
                duration_90k: 3600,
                cts_offset_90k: -3600,
                keyframe: false,
                data: Bytes::from_static(b"P"),
            },
        ];
        let audio = [AudioSample {
            duration: 1024,
            data: Bytes::from_static(b"aac"),
        }];
        let seg = media_segment(&Fragment {
            sequence_number: 7,
            video_base_90k: 90_000,
            video: &video,
            audio_base: 44_100,
            audio: &audio,
        });
        let top = boxes(&seg);
        assert_eq!(
            top.iter().map(|b| b.0).collect::<Vec<_>>(),
            [*b"styp", *b"moof", *b"mdat"]
        );
        let moof_start = 8 + top[0].1.len();
        let moof = top[1].1;
        assert_eq!(&find(moof, &[b"mfhd"])[4..], &7u32.to_be_bytes());
        let trafs: Vec<_> = boxes(moof)
            .into_iter()
            .filter(|b| &b.0 == b"traf")
            .collect();
        assert_eq!(trafs.len(), 2);
        let vtrun = find(trafs[0].1, &[b"trun"]);
        assert_eq!(vtrun[0], 1, "trun version 1");
        assert_eq!(&find(trafs[0].1, &[b"tfdt"])[4..], &90_000u64.to_be_bytes());
        let off = u32::from_be_bytes(vtrun[8..12].try_into().unwrap()) as usize;
        assert_eq!(&seg[moof_start + off..moof_start + off + 5], b"IDR!P");
        // second sample: flags non-sync, cts -3600
        assert_eq!(
            &vtrun[12 + 16 + 8..12 + 16 + 12],
            &FLAGS_NON_SYNC.to_be_bytes()
        );
        assert_eq!(&vtrun[12 + 16 + 12..12 + 32], &(-3600i32).to_be_bytes());
        let atrun = find(trafs[1].1, &[b"trun"]);
        let off = u32::from_be_bytes(atrun[8..12].try_into().unwrap()) as usize;
        assert_eq!(&seg[moof_start + off..moof_start + off + 3], b"aac");
        assert_eq!(&find(trafs[1].1, &[b"tfhd"])[4..8], &2u32.to_be_bytes());
    }

    fn small_segment() -> Bytes {
        let video = [VideoSample {
            duration_90k: 3600,
            cts_offset_90k: 0,
            keyframe: true,
            data: Bytes::from_static(b"IDR!"),
        }];
        media_segment(&Fragment {
            sequence_number: 1,
            video_base_90k: 0,
            video: &video,
            audio_base: 0,
            audio: &[],
        })
    }

    #[test]
    fn provenance_box_layout() {
        let r = crate::provenance::tests::sample();
        let b = provenance_box(&r);
        assert_eq!(b.len(), PROVENANCE_BOX_LEN);
        assert_eq!(PROVENANCE_BOX_LEN, 98);
        let top = boxes(&b);
        assert_eq!(top.len(), 1);
        assert_eq!(&top[0].0, b"uuid");
        assert_eq!(&top[0].1[..16], &HEARTH_UUID);
        assert_eq!(&top[0].1[16..], &r.encode());
        // A bare box is a valid (if empty) segment with a provenance.
        assert_eq!(find_provenance(&b), Some(r));
    }

    #[test]
    fn insert_goes_before_moof_and_keeps_sample_offsets() {
        let r = crate::provenance::tests::sample();
        let seg = small_segment();
        assert_eq!(find_provenance(&seg), None);
        let stamped = insert_provenance(&seg, &r).unwrap();
        let top = boxes(&stamped);
        assert_eq!(
            top.iter().map(|b| b.0).collect::<Vec<_>>(),
            [*b"styp", *b"uuid", *b"moof", *b"mdat"]
        );
        let (found, range) = locate_provenance(&stamped).unwrap();
        assert_eq!(found, r);
        // Removing the box gives back the unstamped segment byte for byte.
        assert_eq!(
            [&stamped[..range.start], &stamped[range.end..]].concat(),
            &seg[..]
        );
        // trun data offset is relative to moof, which moved as a whole with its mdat.
        let moof_start = 8 + top[0].1.len() + 8 + top[1].1.len();
        let trun = find(top[2].1, &[b"traf", b"trun"]);
        let off = u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
        assert_eq!(&stamped[moof_start + off..moof_start + off + 4], b"IDR!");
        // Stamped once only.
        assert!(insert_provenance(&stamped, &r).is_err());
    }

    #[test]
    fn insert_into_init_segment_goes_after_moov() {
        let (v, a) = configs();
        let init = init_segment(&v, Some(&a));
        let r = crate::provenance::tests::sample();
        let stamped = insert_provenance(&init, &r).unwrap();
        let top: Vec<_> = boxes(&stamped).iter().map(|b| b.0).collect();
        assert_eq!(top, [*b"ftyp", *b"moov", *b"uuid"]);
        assert_eq!(find_provenance(&stamped), Some(r));
    }

    #[test]
    fn find_handles_largesize_size0_and_foreign_uuid_boxes() {
        let r = crate::provenance::tests::sample();
        let rec_box = provenance_box(&r);
        // A foreign uuid box, then the record in a largesize box, then a size-0 mdat.
        let mut data = Vec::new();
        data.extend_from_slice(&24u32.to_be_bytes());
        data.extend_from_slice(b"uuid");
        data.extend_from_slice(&[7u8; 16]);
        data.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(b"uuid");
        data.extend_from_slice(&((rec_box.len() + 8) as u64).to_be_bytes());
        data.extend_from_slice(&rec_box[8..]);
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(b"mdat");
        data.extend_from_slice(b"anything to the end");
        assert_eq!(find_provenance(&data), Some(r));
    }

    #[test]
    fn two_records_or_bad_structure_mean_none() {
        let r = crate::provenance::tests::sample();
        let b = provenance_box(&r);
        assert_eq!(find_provenance(&[&b[..], &b[..]].concat()), None);
        let mut bad = b.to_vec();
        bad[8 + 16] = 9; // unknown record version
        assert_eq!(find_provenance(&bad), None);
        assert!(insert_provenance(&bad[..50], &r).is_err());
        let stamped = insert_provenance(&small_segment(), &r).unwrap();
        for n in 0..stamped.len() {
            let _ = find_provenance(&stamped[..n]);
            let _ = insert_provenance(&stamped[..n], &r);
        }
        // Truncation inside the record's box hides it.
        assert_eq!(find_provenance(&stamped[..60]), None);
        for seed in 0..3000u64 {
            let mut junk = crate::provenance::tests::noise(seed, (seed % 300) as usize);
            if seed % 2 == 0 && junk.len() > 24 {
                // Make a plausible header so the walker goes deeper.
                let n = (seed as usize % junk.len()).max(8) as u32;
                junk[..4].copy_from_slice(&n.to_be_bytes());
                junk[4..8].copy_from_slice(b"uuid");
                junk[8..24].copy_from_slice(&HEARTH_UUID);
            }
            let _ = find_provenance(&junk);
            let _ = locate_provenance(&junk);
        }
    }
}
