//! The in-band provenance record: a fixed binary form of [`Provenance`] plus an
//! authentication tag, carried inside segments (fMP4 `uuid` box, TS private
//! data, H.264 SEI) so that identity travels with the bytes to the viewer.
//!
//! Why a fixed layout: any box, packet or SEI that a cache, CDN or client hands
//! back can be checked without a schema or a parser with options — a record is
//! exactly [`ENCODED_LEN`] bytes, version byte first, big-endian integers, and
//! anything else is rejected. The version byte lets a later layout coexist.
//!
//! Why the tag is opaque here: who signs (the camera with its own key, or the
//! ingest session with the server's key) and with what MAC is the caller's
//! decision. This crate only carries the 32 tag bytes, and offers
//! [`ProvenanceRecord::authenticated_fields`] (everything but the tag): the
//! fixed-length part of the message a MAC covers, together with the media bytes.
//!
//! Layout, version 2 (74 bytes; version 1 lacked the rendition byte and is no
//! longer written or read):
//!
//! | offset | len | field                                 |
//! |-------:|----:|---------------------------------------|
//! | 0      | 1   | version = 2                           |
//! | 1      | 16  | camera id (UUID bytes)                |
//! | 17     | 8   | binding epoch, u64 big-endian         |
//! | 25     | 8   | seq, u64 big-endian                   |
//! | 33     | 8   | capture time, unix ms, i64 big-endian |
//! | 41     | 1   | rendition: 0 main, 1 sub              |
//! | 42     | 32  | tag                                   |

use crate::MediaError;
use hearth_model::{BindingEpoch, CameraId, Provenance, Rendition, UnixMillis};

/// Identifies Hearth's in-band data: the fMP4 `uuid` box extended type, the
/// prefix of the TS private data and the SEI `uuid_iso_iec_11578`.
/// (UUID 25ca0d1b-351c-445a-8b15-6a3a89bd41dc, random, fixed forever.)
pub const HEARTH_UUID: [u8; 16] = [
    0x25, 0xca, 0x0d, 0x1b, 0x35, 0x1c, 0x44, 0x5a, 0x8b, 0x15, 0x6a, 0x3a, 0x89, 0xbd, 0x41, 0xdc,
];

/// The record layout version this crate writes and reads.
pub const VERSION: u8 = 2;
/// Length of the fields a tag authenticates (version through capture time).
pub const FIELDS_LEN: usize = 42;
/// Length of the tag.
pub const TAG_LEN: usize = 32;
/// Length of an encoded record.
pub const ENCODED_LEN: usize = FIELDS_LEN + TAG_LEN;

/// [`Provenance`] plus the tag its signer computed, in transportable form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProvenanceRecord {
    /// The camera whose sensor produced the bytes.
    pub camera: CameraId,
    /// The camera's binding epoch at ingest.
    pub epoch: BindingEpoch,
    /// Monotonic per camera and object kind.
    pub seq: u64,
    /// Wall-clock capture time of the first frame.
    pub capture_time: UnixMillis,
    /// The camera's stream the bytes were cut from.
    pub rendition: Rendition,
    /// MAC or signature over [`Self::authenticated_fields`] and a content digest,
    /// computed by the caller.
    pub tag: [u8; TAG_LEN],
}

impl ProvenanceRecord {
    /// A record for `p` with the given tag.
    pub fn new(p: &Provenance, tag: [u8; TAG_LEN]) -> Self {
        Self {
            camera: p.camera,
            epoch: p.epoch,
            seq: p.seq,
            capture_time: p.capture_time,
            rendition: p.rendition,
            tag,
        }
    }

    /// The provenance this record names (without the tag).
    pub fn provenance(&self) -> Provenance {
        Provenance {
            camera: self.camera,
            epoch: self.epoch,
            seq: self.seq,
            capture_time: self.capture_time,
            rendition: self.rendition,
        }
    }

    /// The encoded fields the tag covers: the record's first [`FIELDS_LEN`] bytes,
    /// version byte included so a tag never verifies under another layout.
    pub fn authenticated_fields(&self) -> [u8; FIELDS_LEN] {
        let mut out = [0u8; FIELDS_LEN];
        out[0] = VERSION;
        out[1..17].copy_from_slice(self.camera.as_bytes());
        out[17..25].copy_from_slice(&self.epoch.0.to_be_bytes());
        out[25..33].copy_from_slice(&self.seq.to_be_bytes());
        out[33..41].copy_from_slice(&self.capture_time.0.to_be_bytes());
        out[41] = self.rendition.code();
        out
    }

    /// The version-2 encoding (see the module docs for the layout).
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[..FIELDS_LEN].copy_from_slice(&self.authenticated_fields());
        out[FIELDS_LEN..].copy_from_slice(&self.tag);
        out
    }

    /// Parses exactly one encoded record. Any other length or an unknown version
    /// is an error: a record is never guessed at.
    pub fn decode(data: &[u8]) -> Result<Self, MediaError> {
        if data.len() < ENCODED_LEN {
            return Err(MediaError::truncated(
                "provenance record",
                ENCODED_LEN,
                data.len(),
            ));
        }
        if data[0] != VERSION {
            return Err(MediaError::InvalidProvenance("unknown record version"));
        }
        if data.len() != ENCODED_LEN {
            return Err(MediaError::InvalidProvenance(
                "trailing bytes after provenance record",
            ));
        }
        let arr = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut a = [0u8; 8];
            a.copy_from_slice(&data[r]);
            a
        };
        let mut camera = [0u8; 16];
        camera.copy_from_slice(&data[1..17]);
        let rendition = Rendition::from_code(data[41])
            .ok_or(MediaError::InvalidProvenance("unknown rendition"))?;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&data[FIELDS_LEN..]);
        Ok(Self {
            camera: CameraId::from_bytes(camera),
            epoch: BindingEpoch(u64::from_be_bytes(arr(17..25))),
            seq: u64::from_be_bytes(arr(25..33)),
            capture_time: UnixMillis(i64::from_be_bytes(arr(33..41))),
            rendition,
            tag,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed-pattern pseudo-random generator for no-panic tests (xorshift).
    pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    pub(crate) fn sample() -> ProvenanceRecord {
        ProvenanceRecord {
            camera: CameraId::from_bytes([0xab; 16]),
            epoch: BindingEpoch(0x0102_0304_0506_0708),
            seq: 42,
            capture_time: UnixMillis(-5),
            rendition: Rendition::Sub,
            tag: [0x5a; 32],
        }
    }

    #[test]
    fn layout_is_fixed() {
        let r = sample();
        let e = r.encode();
        assert_eq!(e.len(), 74);
        assert_eq!(e[0], 2);
        assert_eq!(&e[1..17], &[0xab; 16]);
        assert_eq!(&e[17..25], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&e[25..33], &42u64.to_be_bytes());
        assert_eq!(
            &e[33..41],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb]
        );
        assert_eq!(e[41], 1, "sub");
        assert_eq!(&e[42..], &[0x5a; 32]);
        assert_eq!(&r.authenticated_fields()[..], &e[..42]);
    }

    #[test]
    fn round_trip_and_provenance_conversion() {
        let r = sample();
        assert_eq!(ProvenanceRecord::decode(&r.encode()).unwrap(), r);
        let p = r.provenance();
        assert_eq!(ProvenanceRecord::new(&p, r.tag), r);
        assert!(p.belongs_to(r.camera, r.epoch));
    }

    #[test]
    fn decode_rejects_bad_input_without_panicking() {
        let e = sample().encode();
        for n in 0..e.len() {
            assert!(ProvenanceRecord::decode(&e[..n]).is_err(), "len {n}");
        }
        let mut long = e.to_vec();
        long.push(0);
        assert!(ProvenanceRecord::decode(&long).is_err());
        let mut v1 = e;
        v1[0] = 1;
        assert_eq!(
            ProvenanceRecord::decode(&v1),
            Err(MediaError::InvalidProvenance("unknown record version"))
        );
        let mut r9 = e;
        r9[41] = 9;
        assert_eq!(
            ProvenanceRecord::decode(&r9),
            Err(MediaError::InvalidProvenance("unknown rendition"))
        );
        for seed in 0..2000u64 {
            let mut junk = noise(seed, (seed % 100) as usize);
            if seed % 3 == 0 && !junk.is_empty() {
                junk[0] = VERSION;
            }
            let _ = ProvenanceRecord::decode(&junk);
        }
    }
}
