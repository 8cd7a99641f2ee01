//! Camera-side GOP signing and ingest-side verification, sans-IO.
//!
//! Why: the design's isolation invariant wants provenance stamped at the source
//! where the camera can sign. A camera that signs its own H.264 lets ingest refuse
//! media that did not come, unaltered, from the holder of the stream key, and the
//! signature rides inside the elementary stream (an SEI `user_data_unregistered`
//! message, which decoders ignore), so it survives any relay or remux that keeps
//! the bitstream.
//!
//! Key: both ends already know the camera's stream key (the camera publishes with
//! it, ingest authenticates it), so the MAC key is derived from it
//! ([`gop_signing_key`]) and nothing new is provisioned or stored.
//!
//! Chain: every IDR access unit carries one SEI message under
//! [`GOP_SIGNATURE_UUID`] holding a [`ProvenanceRecord`] whose `seq` is the GOP
//! number on this connection (from 0) and whose tag is
//! `HMAC-SHA256(key, authenticated_fields || digest)`. The digest is SHA-256 over
//! every access unit since the previous IDR (the whole previous GOP) followed by
//! this IDR access unit, so the tag in IDR *n* authenticates GOP *n - 1* and the
//! keyframe of GOP *n*; the first IDR covers only itself. Signing one message per
//! GOP (not per frame) keeps the overhead at ~100 bytes per GOP, and chaining
//! means a dropped, inserted, altered or reordered frame anywhere breaks the next
//! tag.
//!
//! Digest encoding: for each access unit, its count of non-SEI NAL units (u32
//! big-endian), then each such NAL unit as its length (u32 big-endian) and its
//! raw bytes (header byte included, no start code). The encoding does not depend
//! on the AVCC length-prefix size, so a relay may reframe; the explicit counts and
//! lengths make it unambiguous (bare concatenated NAL bytes could be re-split into
//! other NAL units or moved between access units with the same digest). SEI NAL
//! units (type 6) are left out so the signature can sit in the bytes it signs and
//! relays may add or strip SEI; SEI does not change decoded pictures.
//!
//! Why a separate UUID from [`crate::provenance::HEARTH_UUID`]: that one carries
//! the provenance ingest stamps for viewers (camera, binding epoch, server key),
//! which players check against their grant. A camera knows neither its binding
//! epoch nor the server's key, so its record (epoch 0, possibly a zero camera id)
//! under the same UUID would be found first by [`crate::sei::find_provenance`] and
//! read as a mismatch. Under its own UUID the two never meet.
//!
//! What the verdict means for ingest ([`GopVerifier`]): a keyframe's verdict comes
//! when it arrives (its tag covers it), but the inter frames of a GOP are only
//! vouched for by the *next* IDR, one GOP later. Ingest that must never forward
//! an unverified inter frame holds a GOP back; ingest that forwards live accepts
//! that a tampered inter frame is detected (and the publisher refused) at most one
//! GOP late. Not covered: timestamps and the out-of-band sequence header (the
//! camera repeats SPS/PPS in-band in every IDR, and those are covered), replay of a
//! whole recorded connection (the record's signed `capture_time` lets ingest check
//! freshness), and which camera the record names (ingest compares it with the
//! camera the stream key belongs to).

use bytes::Bytes;
use hearth_model::{BindingEpoch, CameraId, Rendition, UnixMillis};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::MediaError;
use crate::h264::{self, NAL_SEI};
use crate::provenance::ProvenanceRecord;
use crate::sei;

type HmacSha256 = Hmac<Sha256>;

/// The SEI `uuid_iso_iec_11578` of a camera's GOP signature record.
/// (UUID 3be5d856-a16b-49a1-a62f-46f77aa80b3a, random, fixed forever.)
pub const GOP_SIGNATURE_UUID: [u8; 16] = [
    0x3b, 0xe5, 0xd8, 0x56, 0xa1, 0x6b, 0x49, 0xa1, 0xa6, 0x2f, 0x46, 0xf7, 0x7a, 0xa8, 0x0b, 0x3a,
];

/// Domain separation for [`gop_signing_key`]; a new scheme gets a new label.
const KEY_LABEL: &[u8] = b"hearth gop signing v1";

/// The per-camera GOP signing key: `HMAC-SHA256(stream_key, "hearth gop signing v1")`.
pub fn gop_signing_key(stream_key: &str) -> [u8; 32] {
    let mut mac = mac_for(stream_key.as_bytes());
    mac.update(KEY_LABEL);
    mac.finalize().into_bytes().into()
}

fn mac_for(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; the error arm cannot happen.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Why a signed stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// The keyframe's tag does not verify: wrong key, or the GOP it covers (or the
    /// keyframe itself) was altered, cut or reordered.
    BadTag,
    /// A keyframe without a signature after signed keyframes on this connection.
    Downgrade,
    /// A keyframe carries a GOP-signature SEI whose record does not decode.
    Malformed,
    /// The record's GOP number is not the expected one (a connection's chain
    /// starts at 0 and counts up by one).
    Sequence {
        /// The GOP number that would have continued the chain.
        expected: u64,
        /// The GOP number the record carries.
        found: u64,
    },
    /// The record names the other rendition than the stream it arrived on (a
    /// main-stream GOP replayed as the sub stream, or the reverse).
    Rendition,
}

impl std::fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadTag => f.write_str("tag does not verify"),
            Self::Downgrade => f.write_str("keyframe unsigned after signed ones"),
            Self::Rendition => f.write_str("signed for the other rendition"),
            Self::Malformed => f.write_str("GOP signature record does not decode"),
            Self::Sequence { expected, found } => {
                write!(f, "GOP number {found}, expected {expected}")
            }
        }
    }
}

/// The record in an access unit's GOP signature SEI, if any (malformed input: `None`).
pub fn find_gop_signature(avcc_au: &[u8], nalu_length_size: u8) -> Option<ProvenanceRecord> {
    gop_signature(avcc_au, nalu_length_size)?.ok()
}

/// Whether an access unit carries a GOP-signature SEI (`None` if not), and its
/// record or why it does not decode. Signer and verifier both decide by this one
/// answer: a signature SEI that does not decode is a signature (a broken one), so
/// the signer does not sign over it and the verifier refuses it.
fn gop_signature(
    avcc_au: &[u8],
    nalu_length_size: u8,
) -> Option<Result<ProvenanceRecord, MediaError>> {
    let payload = sei::find_user_data_unregistered(avcc_au, nalu_length_size, GOP_SIGNATURE_UUID)?;
    Some(ProvenanceRecord::decode(&payload))
}

/// Feeds one access unit, in the digest encoding (see the module docs), into
/// every hasher in `into`. Fails without feeding anything on bad framing.
fn hash_access_unit(
    avcc_au: &[u8],
    nalu_length_size: u8,
    into: &mut [&mut Sha256],
) -> Result<(), MediaError> {
    h264::validate_avcc(avcc_au, nalu_length_size)?;
    // Framing is valid, so the walks below yield no errors.
    let nals = || {
        h264::nal_units(avcc_au, nalu_length_size)
            .filter_map(Result::ok)
            .filter(|n| h264::nal_type(n) != NAL_SEI)
    };
    let count = nals().count() as u32;
    for h in into.iter_mut() {
        h.update(count.to_be_bytes());
    }
    for nal in nals() {
        for h in into.iter_mut() {
            h.update((nal.len() as u32).to_be_bytes());
            h.update(nal);
        }
    }
    Ok(())
}

fn tag(key: &[u8; 32], record: &ProvenanceRecord, digest: &[u8; 32]) -> HmacSha256 {
    let mut mac = mac_for(key);
    mac.update(&record.authenticated_fields());
    mac.update(digest);
    mac
}

/// Camera side: signs each IDR access unit over the previous GOP and itself.
///
/// One signer per connection: a new connection starts a new chain at GOP 0, and
/// its first access unit should be an IDR (inter frames before the first IDR are
/// passed through unsigned and uncovered, as a verifier ignores them too).
#[derive(Clone)]
pub struct GopSigner {
    key: [u8; 32],
    camera: CameraId,
    /// Which of the camera's streams this connection publishes.
    rendition: Rendition,
    /// The next GOP number.
    seq: u64,
    /// The digest of the GOP so far; `None` before the first IDR.
    running: Option<Sha256>,
}

impl GopSigner {
    /// A signer with `key` (from [`gop_signing_key`]); `camera` is named in every
    /// record if known, else the record carries the all-zero id.
    pub fn new(key: [u8; 32], camera: Option<CameraId>) -> Self {
        Self {
            key,
            camera: camera.unwrap_or(CameraId::from_bytes([0; 16])),
            rendition: Rendition::Main,
            seq: 0,
            running: None,
        }
    }

    /// The signer of a connection that publishes `rendition` (main by default).
    pub fn for_rendition(mut self, rendition: Rendition) -> Self {
        self.rendition = rendition;
        self
    }

    /// The access unit to send: for a keyframe, `avcc_au` with the signature SEI
    /// inserted before its first slice; otherwise `avcc_au` unchanged. Errors on a
    /// malformed access unit (which is then not part of the chain) or a keyframe
    /// that already carries a GOP signature.
    pub fn sign(
        &mut self,
        avcc_au: &[u8],
        nalu_length_size: u8,
        keyframe: bool,
        capture_time: UnixMillis,
    ) -> Result<Bytes, MediaError> {
        if !keyframe {
            if let Some(running) = &mut self.running {
                hash_access_unit(avcc_au, nalu_length_size, &mut [running])?;
            } else {
                h264::validate_avcc(avcc_au, nalu_length_size)?;
            }
            return Ok(Bytes::copy_from_slice(avcc_au));
        }
        if gop_signature(avcc_au, nalu_length_size).is_some() {
            return Err(MediaError::InvalidProvenance(
                "access unit already carries a GOP signature",
            ));
        }
        let mut covered = self.running.clone().unwrap_or_default();
        let mut next = Sha256::new();
        hash_access_unit(avcc_au, nalu_length_size, &mut [&mut covered, &mut next])?;
        let digest: [u8; 32] = covered.finalize().into();
        let mut record = ProvenanceRecord {
            camera: self.camera,
            epoch: BindingEpoch(0),
            seq: self.seq,
            capture_time,
            rendition: self.rendition,
            tag: [0; 32],
        };
        record.tag = tag(&self.key, &record, &digest)
            .finalize()
            .into_bytes()
            .into();
        let nal = sei::user_data_unregistered_nal(GOP_SIGNATURE_UUID, &record.encode());
        let out = sei::insert_before_first_slice(avcc_au, nalu_length_size, &nal)?;
        self.running = Some(next);
        self.seq += 1;
        Ok(Bytes::from(out))
    }
}

impl std::fmt::Debug for GopSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GopSigner")
            .field("camera", &self.camera)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// What [`GopVerifier::push`] concluded about one access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No signature seen yet on this connection, and this access unit (a keyframe
    /// without one, or any inter frame) has none: the stream is, so far, unsigned.
    Unsigned,
    /// A keyframe whose tag verifies: it and every access unit since the previous
    /// keyframe (those that got [`Verdict::Pending`]) are authentic.
    Verified {
        /// The record the camera signed (camera id or all-zero, epoch 0, GOP number,
        /// capture time of this keyframe).
        record: ProvenanceRecord,
        /// 0-based number of this keyframe among all keyframes pushed on this
        /// connection (equal to `record.seq` when every keyframe was signed).
        gop: u64,
    },
    /// An inter frame of a signed stream, accumulated; the next keyframe's tag
    /// covers it.
    Pending,
}

/// Ingest side: push each AVCC access unit of one connection as received.
///
/// Errors with [`MediaError::SignatureMismatch`] when a keyframe's tag does not
/// verify, a keyframe lacks a signature after signed ones (downgrade), or the GOP
/// number does not continue the chain (a chain starts at 0); with a framing error
/// on a malformed access unit of a signed stream. After an error the verifier
/// stays failed and returns the same error for every later access unit: the
/// connection should be refused. An unsigned stream is never an error.
#[derive(Clone)]
pub struct GopVerifier {
    key: [u8; 32],
    /// The rendition the connection publishes; records must name it.
    rendition: Rendition,
    /// The last verified record's GOP number; `None` until the first.
    last_seq: Option<u64>,
    /// Keyframes pushed so far.
    keyframes: u64,
    /// Digest of the current GOP (since the last verified keyframe).
    running: Sha256,
    failed: Option<MediaError>,
}

impl GopVerifier {
    /// A verifier for one connection with `key` (from [`gop_signing_key`]).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            rendition: Rendition::Main,
            last_seq: None,
            keyframes: 0,
            running: Sha256::new(),
            failed: None,
        }
    }

    /// The verifier of a connection that publishes `rendition` (main by default).
    pub fn for_rendition(mut self, rendition: Rendition) -> Self {
        self.rendition = rendition;
        self
    }

    /// Whether any signed keyframe has verified on this connection.
    pub fn is_signed(&self) -> bool {
        self.last_seq.is_some()
    }

    /// Checks one access unit; see [`Verdict`] and the type's docs for errors.
    pub fn push(
        &mut self,
        avcc_au: &[u8],
        nalu_length_size: u8,
        keyframe: bool,
    ) -> Result<Verdict, MediaError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.check(avcc_au, nalu_length_size, keyframe);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn check(
        &mut self,
        avcc_au: &[u8],
        nalu_length_size: u8,
        keyframe: bool,
    ) -> Result<Verdict, MediaError> {
        if !keyframe {
            if self.last_seq.is_none() {
                // Nothing before a chain's first IDR is covered by it.
                return Ok(Verdict::Unsigned);
            }
            hash_access_unit(avcc_au, nalu_length_size, &mut [&mut self.running])?;
            return Ok(Verdict::Pending);
        }
        let gop = self.keyframes;
        self.keyframes += 1;
        let fail = |reason| MediaError::SignatureMismatch { gop, reason };
        let record = match gop_signature(avcc_au, nalu_length_size) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(_)) => return Err(fail(SignatureFailure::Malformed)),
        };
        let (record, mut covered) = match (record, self.last_seq) {
            (None, None) => return Ok(Verdict::Unsigned),
            (None, Some(_)) => return Err(fail(SignatureFailure::Downgrade)),
            (Some(r), None) => (r, Sha256::new()),
            (Some(r), Some(_)) => (r, self.running.clone()),
        };
        let expected = self.last_seq.map_or(Some(0), |s| s.checked_add(1));
        if expected != Some(record.seq) {
            return Err(fail(SignatureFailure::Sequence {
                expected: expected.unwrap_or(u64::MAX),
                found: record.seq,
            }));
        }
        let mut next = Sha256::new();
        hash_access_unit(avcc_au, nalu_length_size, &mut [&mut covered, &mut next])?;
        let digest: [u8; 32] = covered.finalize().into();
        tag(&self.key, &record, &digest)
            .verify_slice(&record.tag)
            .map_err(|_| fail(SignatureFailure::BadTag))?;
        if record.rendition != self.rendition {
            return Err(fail(SignatureFailure::Rendition));
        }
        self.last_seq = Some(record.seq);
        self.running = next;
        Ok(Verdict::Verified { record, gop })
    }
}

impl std::fmt::Debug for GopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GopVerifier")
            .field("last_seq", &self.last_seq)
            .field("keyframes", &self.keyframes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::tests::noise;

    const KEY: &str = "cam-key";

    fn avcc(nals: &[Vec<u8>], ls: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes()[4 - usize::from(ls)..]);
            out.extend_from_slice(n);
        }
        out
    }

    fn nal(header: u8, seed: u64, len: usize) -> Vec<u8> {
        let mut n = vec![header];
        n.extend(noise(seed, len));
        n
    }

    /// `gops` GOPs of `1 + p` access units: an IDR (SPS, PPS, IDR slice) and `p`
    /// P-frames, as (keyframe, AVCC) with `ls`-byte length prefixes.
    fn stream(gops: u64, p: u64, ls: u8) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        for g in 0..gops {
            let s = g * 100;
            out.push((
                true,
                avcc(
                    &[nal(0x67, 1, 10), nal(0x68, 2, 4), nal(0x65, s + 3, 200)],
                    ls,
                ),
            ));
            for i in 0..p {
                out.push((false, avcc(&[nal(0x41, s + 10 + i, 60 + i as usize)], ls)));
            }
        }
        out
    }

    fn sign_all(aus: &[(bool, Vec<u8>)], ls: u8, key: &str) -> Vec<(bool, Vec<u8>)> {
        let mut signer = GopSigner::new(gop_signing_key(key), Some(CameraId::from_bytes([7; 16])));
        aus.iter()
            .enumerate()
            .map(|(i, (k, au))| {
                let t = UnixMillis(1_700_000_000_000 + i as i64 * 40);
                (*k, signer.sign(au, ls, *k, t).unwrap().to_vec())
            })
            .collect()
    }

    /// Verdicts until (and including) the first error.
    fn verify_all(aus: &[(bool, Vec<u8>)], ls: u8) -> Vec<Result<Verdict, MediaError>> {
        let mut v = GopVerifier::new(gop_signing_key(KEY));
        let mut out = Vec::new();
        for (k, au) in aus {
            let r = v.push(au, ls, *k);
            let stop = r.is_err();
            out.push(r);
            if stop {
                // Failed verifiers stay failed.
                let again = v.push(&aus[0].1, ls, true);
                assert_eq!(Some(&again), out.last());
                break;
            }
        }
        out
    }

    /// The first error: (index of the access unit, error).
    fn first_error(aus: &[(bool, Vec<u8>)], ls: u8) -> Option<(usize, MediaError)> {
        verify_all(aus, ls)
            .into_iter()
            .enumerate()
            .find_map(|(i, r)| r.err().map(|e| (i, e)))
    }

    fn mismatch(gop: u64, reason: SignatureFailure) -> MediaError {
        MediaError::SignatureMismatch { gop, reason }
    }

    #[test]
    fn key_is_hmac_of_the_stream_key() {
        // python3: hmac.new(b"cam-key", b"hearth gop signing v1", sha256).hexdigest()
        let hex: String = gop_signing_key(KEY)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "516d42a924688526c9105eb702cdd11d7c066d37ce26474fd0c5a64c7ca4ae5f"
        );
        assert_ne!(gop_signing_key("other"), gop_signing_key(KEY));
    }

    #[test]
    fn signed_stream_verifies_gop_by_gop() {
        for ls in [1u8, 2, 4] {
            let plain = stream(4, 5, ls);
            let signed = sign_all(&plain, ls, KEY);
            for ((k, a), (_, b)) in plain.iter().zip(&signed) {
                if *k {
                    // SPS, PPS, SEI, IDR: the signature sits before the first slice.
                    let types: Vec<u8> = h264::nal_units(b, ls)
                        .map(|n| h264::nal_type(n.unwrap()))
                        .collect();
                    assert_eq!(types, [7, 8, 6, 5]);
                } else {
                    assert_eq!(a, b, "inter frames are sent unchanged");
                }
            }
            let verdicts = verify_all(&signed, ls);
            assert_eq!(verdicts.len(), signed.len());
            for (i, v) in verdicts.into_iter().enumerate() {
                let g = (i / 6) as u64;
                match v.unwrap() {
                    Verdict::Verified { record, gop } => {
                        assert_eq!(i % 6, 0);
                        assert_eq!((gop, record.seq), (g, g));
                        assert_eq!(record.camera, CameraId::from_bytes([7; 16]));
                        assert_eq!(record.epoch, BindingEpoch(0));
                        assert_eq!(
                            record.capture_time,
                            UnixMillis(1_700_000_000_000 + i as i64 * 40)
                        );
                        assert_eq!(find_gop_signature(&signed[i].1, ls), Some(record));
                        // Not the viewer-facing provenance UUID.
                        assert_eq!(sei::find_provenance(&signed[i].1, ls), None);
                    }
                    Verdict::Pending => assert_ne!(i % 6, 0),
                    Verdict::Unsigned => panic!("signed stream reported unsigned at {i}"),
                }
            }
        }
    }

    #[test]
    fn digest_does_not_depend_on_framing_or_other_sei() {
        // A relay reframes 4-byte prefixes as 2-byte ones and adds its own SEI to
        // every access unit: still verifies.
        let signed = sign_all(&stream(3, 4, 4), 4, KEY);
        let relayed: Vec<_> = signed
            .iter()
            .map(|(k, au)| {
                let mut nals: Vec<Vec<u8>> = h264::nal_units(au, 4)
                    .map(|n| n.unwrap().to_vec())
                    .collect();
                nals.insert(0, sei::user_data_unregistered_nal([9; 16], b"relay"));
                (*k, avcc(&nals, 2))
            })
            .collect();
        assert!(first_error(&relayed, 2).is_none());
        // The unsigned camera id is all zero.
        let mut s = GopSigner::new(gop_signing_key(KEY), None);
        let au = s
            .sign(&stream(1, 0, 4)[0].1, 4, true, UnixMillis(0))
            .unwrap();
        assert_eq!(
            find_gop_signature(&au, 4).unwrap().camera,
            CameraId::from_bytes([0; 16])
        );
    }

    #[test]
    fn tampered_inter_frame_fails_at_the_next_idr() {
        let mut signed = sign_all(&stream(4, 5, 4), 4, KEY);
        // GOP 1 = access units 6..12; flip a byte deep in its third P-frame.
        let last = signed[8].1.len() - 1;
        signed[8].1[last] ^= 0x01;
        assert_eq!(
            first_error(&signed, 4),
            Some((12, mismatch(2, SignatureFailure::BadTag)))
        );
    }

    #[test]
    fn tampered_idr_or_record_fails_at_that_idr() {
        let good = sign_all(&stream(4, 5, 4), 4, KEY);
        let mut signed = good.clone();
        let last = signed[6].1.len() - 1;
        signed[6].1[last] ^= 0x80;
        assert_eq!(
            first_error(&signed, 4),
            Some((6, mismatch(1, SignatureFailure::BadTag)))
        );
        // Parameter sets are covered too.
        let mut signed = good.clone();
        signed[6].1[5] ^= 0x01;
        assert_eq!(
            first_error(&signed, 4),
            Some((6, mismatch(1, SignatureFailure::BadTag)))
        );
        // A re-signed record with another capture time (or camera) does not verify.
        let mut signed = good.clone();
        let mut rec = find_gop_signature(&signed[6].1, 4).unwrap();
        rec.capture_time = UnixMillis(rec.capture_time.0 + 1);
        signed[6].1 = replace_signature(&signed[6].1, &rec);
        assert_eq!(
            first_error(&signed, 4),
            Some((6, mismatch(1, SignatureFailure::BadTag)))
        );
    }

    /// The access unit with its GOP signature SEI replaced by one holding `rec`
    /// (or removed, with `None`).
    fn replace_signature_opt(au: &[u8], rec: Option<&ProvenanceRecord>) -> Vec<u8> {
        let mut nals = Vec::new();
        for n in h264::nal_units(au, 4) {
            let n = n.unwrap();
            if h264::nal_type(n) == NAL_SEI {
                if let Some(r) = rec {
                    nals.push(sei::user_data_unregistered_nal(
                        GOP_SIGNATURE_UUID,
                        &r.encode(),
                    ));
                }
            } else {
                nals.push(n.to_vec());
            }
        }
        avcc(&nals, 4)
    }

    fn replace_signature(au: &[u8], rec: &ProvenanceRecord) -> Vec<u8> {
        replace_signature_opt(au, Some(rec))
    }

    #[test]
    fn dropped_or_moved_frames_fail() {
        let good = sign_all(&stream(4, 5, 4), 4, KEY);
        // Drop one P-frame of GOP 1.
        let mut cut = good.clone();
        cut.remove(9);
        assert_eq!(
            first_error(&cut, 4),
            Some((11, mismatch(2, SignatureFailure::BadTag)))
        );
        // Drop the last P-frame of the last complete GOP.
        let mut cut = good.clone();
        cut.remove(17);
        assert_eq!(
            first_error(&cut, 4),
            Some((17, mismatch(3, SignatureFailure::BadTag)))
        );
        // Merge two P-frames into one access unit (same NAL bytes, other AU boundary).
        let mut merged = good.clone();
        let second = merged.remove(8).1;
        merged[7].1.extend_from_slice(&second);
        assert_eq!(
            first_error(&merged, 4),
            Some((11, mismatch(2, SignatureFailure::BadTag)))
        );
        // Drop a whole GOP: its successor's tag covers frames we never saw.
        let mut gap = good.clone();
        gap.drain(6..12);
        assert_eq!(
            first_error(&gap, 4),
            Some((
                6,
                mismatch(
                    1,
                    SignatureFailure::Sequence {
                        expected: 1,
                        found: 2
                    }
                )
            ))
        );
    }

    #[test]
    fn wrong_key_fails_at_the_first_idr() {
        let signed = sign_all(&stream(2, 3, 4), 4, "another-camera");
        assert_eq!(
            first_error(&signed, 4),
            Some((0, mismatch(0, SignatureFailure::BadTag)))
        );
    }

    #[test]
    fn stripping_a_later_signature_is_a_downgrade() {
        let mut signed = sign_all(&stream(4, 5, 4), 4, KEY);
        signed[12].1 = replace_signature_opt(&signed[12].1, None);
        assert_eq!(
            first_error(&signed, 4),
            Some((12, mismatch(2, SignatureFailure::Downgrade)))
        );
    }

    #[test]
    fn reordered_or_replayed_gops_break_the_sequence() {
        let good = sign_all(&stream(4, 5, 4), 4, KEY);
        let mut swapped = good[..6].to_vec();
        swapped.extend_from_slice(&good[12..18]);
        swapped.extend_from_slice(&good[6..12]);
        assert_eq!(
            first_error(&swapped, 4),
            Some((
                6,
                mismatch(
                    1,
                    SignatureFailure::Sequence {
                        expected: 1,
                        found: 2
                    }
                )
            ))
        );
        let mut replayed = good[..12].to_vec();
        replayed.extend_from_slice(&good[6..12]);
        assert_eq!(
            first_error(&replayed, 4),
            Some((
                12,
                mismatch(
                    2,
                    SignatureFailure::Sequence {
                        expected: 2,
                        found: 1
                    }
                )
            ))
        );
        // Joining a chain in the middle (it must start at GOP 0 on the connection).
        assert_eq!(
            first_error(&good[6..], 4),
            Some((
                0,
                mismatch(
                    0,
                    SignatureFailure::Sequence {
                        expected: 0,
                        found: 1
                    }
                )
            ))
        );
    }

    #[test]
    fn unsigned_streams_are_unsigned_forever() {
        let plain = stream(5, 4, 4);
        let mut v = GopVerifier::new(gop_signing_key(KEY));
        for (k, au) in &plain {
            assert_eq!(v.push(au, 4, *k), Ok(Verdict::Unsigned));
        }
        // Even junk, and access units carrying viewer-facing provenance SEI.
        for seed in 0..500u64 {
            let junk = noise(seed, (seed % 90) as usize);
            assert_eq!(
                v.push(&junk, (seed % 5) as u8, seed % 2 == 0),
                Ok(Verdict::Unsigned)
            );
        }
        let stamped = sei::insert_before_first_slice(
            &plain[0].1,
            4,
            &sei::provenance_nal(&crate::provenance::tests::sample()),
        )
        .unwrap();
        assert_eq!(v.push(&stamped, 4, true), Ok(Verdict::Unsigned));
        assert!(!v.is_signed());
        // An unsigned start followed by a chain from GOP 0 is fine: the unsigned part
        // was reported as such.
        let mut mixed = plain[..5].to_vec();
        mixed.extend(sign_all(&stream(2, 4, 4), 4, KEY));
        let verdicts = verify_all(&mixed, 4);
        assert!(verdicts[..5].iter().all(|v| v == &Ok(Verdict::Unsigned)));
        assert!(matches!(
            verdicts[5],
            Ok(Verdict::Verified {
                gop: 1,
                record: ProvenanceRecord { seq: 0, .. }
            })
        ));
        assert!(verdicts[5..].iter().all(Result::is_ok));
    }

    #[test]
    fn inter_frames_before_the_first_idr_are_outside_the_chain() {
        let mut aus = vec![(false, avcc(&[nal(0x41, 99, 30)], 4))];
        aus.extend(stream(2, 3, 4));
        let signed = sign_all(&aus, 4, KEY);
        assert_eq!(signed[0], aus[0]);
        let verdicts = verify_all(&signed, 4);
        assert_eq!(verdicts[0], Ok(Verdict::Unsigned));
        assert!(verdicts.iter().all(Result::is_ok));
    }

    #[test]
    fn signer_refuses_malformed_and_already_signed_access_units() {
        let mut s = GopSigner::new(gop_signing_key(KEY), None);
        assert!(s.sign(&[0, 0, 0, 9, 0x65], 4, true, UnixMillis(0)).is_err());
        assert!(s.sign(&[], 4, false, UnixMillis(0)).is_err());
        assert!(
            s.sign(&avcc(&[nal(0x67, 1, 5)], 4), 4, true, UnixMillis(0))
                .is_err()
        );
        assert!(
            s.sign(&stream(1, 0, 4)[0].1, 3, true, UnixMillis(0))
                .is_err()
        );
        // Failed calls did not advance the chain: the next IDR is GOP 0.
        let au = s
            .sign(&stream(1, 0, 4)[0].1, 4, true, UnixMillis(0))
            .unwrap();
        assert_eq!(find_gop_signature(&au, 4).unwrap().seq, 0);
        assert!(s.sign(&au, 4, true, UnixMillis(0)).is_err());
    }

    /// A keyframe that already carries a GOP-signature SEI whose record does not
    /// decode: the signer refuses to sign over it and the verifier refuses it, so
    /// the two never disagree (the signer used to sign after the broken one,
    /// the verifier stopped at it).
    #[test]
    fn a_broken_signature_sei_is_refused_by_signer_and_verifier_alike() {
        let idr = &stream(1, 0, 4)[0].1;
        let bogus = sei::user_data_unregistered_nal(GOP_SIGNATURE_UUID, &[7; 5]);
        let au = sei::insert_before_first_slice(idr, 4, &bogus).unwrap();
        let mut s = GopSigner::new(gop_signing_key(KEY), None);
        assert!(s.sign(&au, 4, true, UnixMillis(0)).is_err());
        let mut v = GopVerifier::new(gop_signing_key(KEY));
        assert_eq!(
            v.push(&au, 4, true),
            Err(MediaError::SignatureMismatch {
                gop: 0,
                reason: SignatureFailure::Malformed
            })
        );
    }

    #[test]
    fn malformed_input_never_panics() {
        let signed = sign_all(&stream(3, 3, 4), 4, KEY);
        // Truncations and junk after a verified start: errors, never panics.
        for (i, (k, au)) in signed.iter().enumerate() {
            for n in 0..au.len() {
                let mut v = GopVerifier::new(gop_signing_key(KEY));
                for (k2, prev) in &signed[..i] {
                    v.push(prev, 4, *k2).unwrap();
                }
                let _ = v.push(&au[..n], 4, *k);
                let _ = v.push(&au[..n], 2, !*k);
            }
        }
        let mut v = GopVerifier::new(gop_signing_key(KEY));
        v.push(&signed[0].1, 4, true).unwrap();
        let mut s = GopSigner::new(gop_signing_key(KEY), None);
        for seed in 0..3000u64 {
            let mut junk = noise(seed, 5 + (seed % 300) as usize);
            if seed % 2 == 0 {
                let body = (junk.len() - 4) as u32;
                junk[..4].copy_from_slice(&body.to_be_bytes());
            }
            let ls = [0u8, 1, 2, 3, 4][(seed % 5) as usize];
            let _ = s.sign(&junk, ls, seed % 3 == 0, UnixMillis(0));
            let _ = v.push(&junk, ls, seed % 3 == 0);
            let mut fresh = GopVerifier::new(gop_signing_key(KEY));
            let _ = fresh.push(&junk, ls, true);
        }
        // A malformed inter frame of a signed stream is refused.
        let mut v = GopVerifier::new(gop_signing_key(KEY));
        v.push(&signed[0].1, 4, true).unwrap();
        assert!(matches!(
            v.push(&[0, 0, 0, 9, 0x41], 4, false),
            Err(MediaError::InvalidNal { .. })
        ));
    }
}
