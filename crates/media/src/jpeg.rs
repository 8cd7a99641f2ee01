//! In-band provenance for JPEG stills: an APP11 marker segment of our own.
//!
//! Why APP11: JPEG reserves APP0–APP15 for application data, and decoders and
//! browsers skip any APPn they do not understand, so a still carries its
//! [`ProvenanceRecord`] to the viewer exactly as a segment does (fMP4 `uuid` box,
//! TS private packet) and a client can check whose picture it is before showing
//! it. APP0/1/2/13/14 are taken by JFIF, Exif, ICC, Photoshop and Adobe; APP11 is
//! otherwise used only by JPEG XT, whose payloads begin with `JP`, never with our
//! UUID.
//!
//! The segment is inserted right after SOI: `FF EB`, a 2-byte big-endian length
//! (2 + 16 + 74 = 92), [`HEARTH_UUID`], the encoded record. A tag is computed over
//! the image *without* this segment, so [`locate_provenance`] returns the byte
//! range to leave out when checking it. Exactly one such segment is accepted, and
//! only among the header segments (before SOS).

use std::ops::Range;

use crate::MediaError;
use crate::provenance::{ENCODED_LEN, HEARTH_UUID, ProvenanceRecord};

const SOI: [u8; 2] = [0xFF, 0xD8];
const APP11: u8 = 0xEB;
const SOS: u8 = 0xDA;
const EOI: u8 = 0xD9;
/// Marker (2) + length (2) + UUID (16) + record.
pub const PROVENANCE_SEGMENT_LEN: usize = 2 + 2 + 16 + ENCODED_LEN;

/// Header marker segments before SOS: (marker, whole segment range).
fn header_segments(jpeg: &[u8]) -> Result<Vec<(u8, Range<usize>)>, MediaError> {
    if !jpeg.starts_with(&SOI) {
        return Err(MediaError::InvalidProvenance("not a JPEG (no SOI)"));
    }
    let mut out = Vec::new();
    let mut pos = 2;
    loop {
        let Some(&[ff, marker]) = jpeg.get(pos..pos + 2) else {
            return Err(MediaError::InvalidProvenance("JPEG ends inside its header"));
        };
        if ff != 0xFF {
            return Err(MediaError::InvalidProvenance("JPEG marker expected"));
        }
        if marker == 0xFF {
            // Fill byte before a marker.
            pos += 1;
            continue;
        }
        if marker == SOS || marker == EOI {
            return Ok(out);
        }
        let Some(&[hi, lo]) = jpeg.get(pos + 2..pos + 4) else {
            return Err(MediaError::InvalidProvenance("JPEG ends inside a marker"));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 2 || pos + 2 + len > jpeg.len() {
            return Err(MediaError::InvalidProvenance(
                "JPEG segment length out of range",
            ));
        }
        out.push((marker, pos..pos + 2 + len));
        pos += 2 + len;
    }
}

fn is_ours(jpeg: &[u8], (marker, range): &(u8, Range<usize>)) -> bool {
    *marker == APP11 && jpeg[range.start + 4..range.end].starts_with(&HEARTH_UUID)
}

/// `jpeg` with `record` in an APP11 segment right after SOI. Refuses input that
/// is not a JPEG or already carries a record.
pub fn insert_provenance(jpeg: &[u8], record: &ProvenanceRecord) -> Result<Vec<u8>, MediaError> {
    let segments = header_segments(jpeg)?;
    if segments.iter().any(|s| is_ours(jpeg, s)) {
        return Err(MediaError::InvalidProvenance(
            "still already carries a provenance segment",
        ));
    }
    let mut out = Vec::with_capacity(jpeg.len() + PROVENANCE_SEGMENT_LEN);
    out.extend_from_slice(&SOI);
    out.extend_from_slice(&[0xFF, APP11]);
    out.extend_from_slice(&((PROVENANCE_SEGMENT_LEN - 2) as u16).to_be_bytes());
    out.extend_from_slice(&HEARTH_UUID);
    out.extend_from_slice(&record.encode());
    out.extend_from_slice(&jpeg[2..]);
    Ok(out)
}

/// The record of a still and the byte range of its segment (what a tag leaves
/// out). `None` for no record, more than one, a malformed one or a damaged header.
pub fn locate_provenance(jpeg: &[u8]) -> Option<(ProvenanceRecord, Range<usize>)> {
    let segments = header_segments(jpeg).ok()?;
    let mut ours = segments.iter().filter(|s| is_ours(jpeg, s));
    let (_, range) = ours.next()?;
    if ours.next().is_some() {
        return None;
    }
    let record = ProvenanceRecord::decode(&jpeg[range.start + 4 + 16..range.end]).ok()?;
    Some((record, range.clone()))
}

/// The record of a still; see [`locate_provenance`].
pub fn find_provenance(jpeg: &[u8]) -> Option<ProvenanceRecord> {
    locate_provenance(jpeg).map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::tests::noise;
    use hearth_model::{BindingEpoch, CameraId, Provenance, UnixMillis};

    /// SOI, an APP0 (JFIF-like), a DQT-like segment, SOS, entropy data, EOI.
    fn tiny_jpeg() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xE0, 0, 7, b'J', b'F', b'I', b'F', 0]);
        j.extend_from_slice(&[0xFF, 0xDB, 0, 4, 1, 2]);
        j.extend_from_slice(&[0xFF, SOS, 0, 3, 0, 0x12, 0x34, 0xFF, 0x00, 0x56]);
        j.extend_from_slice(&[0xFF, EOI]);
        j
    }

    fn record() -> ProvenanceRecord {
        let p = Provenance {
            camera: CameraId::from_bytes([7; 16]),
            epoch: BindingEpoch(2),
            seq: 5,
            capture_time: UnixMillis(1_700_000_000_000),
            rendition: Default::default(),
        };
        ProvenanceRecord::new(&p, [9; 32])
    }

    #[test]
    fn round_trip_and_the_range_to_leave_out() {
        let jpeg = tiny_jpeg();
        let stamped = insert_provenance(&jpeg, &record()).unwrap();
        assert_eq!(stamped.len(), jpeg.len() + PROVENANCE_SEGMENT_LEN);
        let (r, range) = locate_provenance(&stamped).unwrap();
        assert_eq!(r, record());
        let mut without = stamped[..range.start].to_vec();
        without.extend_from_slice(&stamped[range.end..]);
        assert_eq!(without, jpeg);
        assert_eq!(find_provenance(&jpeg), None);
    }

    #[test]
    fn a_second_record_is_refused_and_two_are_not_read() {
        let once = insert_provenance(&tiny_jpeg(), &record()).unwrap();
        assert!(insert_provenance(&once, &record()).is_err());
        // Smuggle a second one in by hand: neither is believed.
        let mut twice = once[..2].to_vec();
        twice.extend_from_slice(&once[2..2 + PROVENANCE_SEGMENT_LEN]);
        twice.extend_from_slice(&once[2..]);
        assert_eq!(find_provenance(&twice), None);
    }

    #[test]
    fn a_real_encoders_jpeg_round_trips() {
        let mut jpeg = Vec::new();
        let rgb = vec![128u8; 16 * 8 * 3];
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(&rgb, 16, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let stamped = insert_provenance(&jpeg, &record()).unwrap();
        assert_eq!(find_provenance(&stamped), Some(record()));
    }

    #[test]
    fn garbage_never_panics() {
        assert!(insert_provenance(b"", &record()).is_err());
        assert!(insert_provenance(b"\x89PNG", &record()).is_err());
        let stamped = insert_provenance(&tiny_jpeg(), &record()).unwrap();
        for cut in 0..stamped.len() {
            let _ = locate_provenance(&stamped[..cut]);
        }
        for seed in 0..200 {
            let mut junk = noise(seed, 64);
            junk[..2].copy_from_slice(&SOI);
            let _ = locate_provenance(&junk);
            let _ = insert_provenance(&junk, &record());
        }
    }
}
