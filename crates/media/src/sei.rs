//! H.264 SEI `user_data_unregistered` (payloadType 5, ITU-T H.264 D.1.6): the
//! one place inside the elementary stream where identity can ride along with
//! each access unit, through any container, remux or player that keeps the
//! H.264 bitstream (WebRTC, progressive MP4, a recording a user downloads).
//!
//! Writing builds a complete SEI NAL unit: header byte `0x06`, one SEI message
//! (type and size in the 0xFF-run coding of 7.3.2.3.1), the 16-byte UUID, the
//! payload, `rbsp_trailing_bits`, then emulation prevention over the whole RBSP
//! so no start code can appear inside. Reading undoes the escaping, walks every
//! SEI message of every SEI NAL in an AVCC access unit and returns the first
//! payload under the wanted UUID. Decoders ignore user data they do not know, so
//! carrying it costs only its bytes.
//!
//! Reading outside bytes never panics: malformed framing or message sizes end
//! the search with `None`.

use crate::MediaError;
use crate::h264::{self, NAL_SEI};
use crate::provenance::{HEARTH_UUID, ProvenanceRecord};

/// SEI payloadType of `user_data_unregistered`.
pub const PAYLOAD_TYPE_USER_DATA_UNREGISTERED: usize = 5;

/// Writes `value` in the SEI 0xFF-run coding (type and size of an SEI message).
fn write_ff_coded(out: &mut Vec<u8>, mut value: usize) {
    while value >= 255 {
        out.push(0xff);
        value -= 255;
    }
    out.push(value as u8);
}

/// Reads a 0xFF-run coded value at `*pos`.
fn read_ff_coded(rbsp: &[u8], pos: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    loop {
        let b = *rbsp.get(*pos)?;
        *pos += 1;
        value = value.checked_add(usize::from(b))?;
        if b != 0xff {
            return Some(value);
        }
    }
}

/// Inserts emulation-prevention bytes: `00 00 0x` (x <= 3) becomes `00 00 03 0x`.
fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
}

/// Removes emulation-prevention bytes (`00 00 03` -> `00 00`).
fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// A complete SEI NAL unit (no start code or length prefix) holding one
/// `user_data_unregistered` message with `uuid` and `payload`.
pub fn user_data_unregistered_nal(uuid: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(payload.len() + 24);
    write_ff_coded(&mut rbsp, PAYLOAD_TYPE_USER_DATA_UNREGISTERED);
    write_ff_coded(&mut rbsp, 16 + payload.len());
    rbsp.extend_from_slice(&uuid);
    rbsp.extend_from_slice(payload);
    rbsp.push(0x80); // rbsp_stop_one_bit + alignment
    let mut nal = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 2);
    nal.push(NAL_SEI); // forbidden_zero_bit 0, nal_ref_idc 0, type 6
    escape_into(&rbsp, &mut nal);
    nal
}

/// The payload of the first `user_data_unregistered` message under `uuid` in any
/// SEI NAL unit of an AVCC access unit, or `None` (also on malformed input).
pub fn find_user_data_unregistered(
    avcc_au: &[u8],
    nalu_length_size: u8,
    uuid: [u8; 16],
) -> Option<Vec<u8>> {
    for nal in h264::nal_units(avcc_au, nalu_length_size) {
        let nal = nal.ok()?;
        if h264::nal_type(nal) != NAL_SEI {
            continue;
        }
        if let Some(found) = search_sei_rbsp(&unescape(&nal[1..]), uuid) {
            return Some(found);
        }
    }
    None
}

/// Whether `rest` holds more than the RBSP trailing bits (`0x80`, then zeros).
fn more_rbsp_data(rest: &[u8]) -> bool {
    match rest.split_first() {
        None => false,
        Some((&0x80, tail)) => tail.iter().any(|&b| b != 0),
        Some(_) => true,
    }
}

/// Walks the SEI messages of one SEI RBSP.
fn search_sei_rbsp(rbsp: &[u8], uuid: [u8; 16]) -> Option<Vec<u8>> {
    let mut pos = 0;
    // more_rbsp_data(): stop at the trailing bits (0x80 then zero bytes) or the end.
    while rbsp.get(pos..).is_some_and(more_rbsp_data) {
        let payload_type = read_ff_coded(rbsp, &mut pos)?;
        let size = read_ff_coded(rbsp, &mut pos)?;
        let payload = rbsp.get(pos..pos.checked_add(size)?)?;
        pos += size;
        if payload_type == PAYLOAD_TYPE_USER_DATA_UNREGISTERED
            && payload.len() >= 16
            && payload[..16] == uuid
        {
            return Some(payload[16..].to_vec());
        }
    }
    None
}

/// Returns the access unit with `nal` (e.g. from [`user_data_unregistered_nal`])
/// inserted, length-prefixed, right before the first slice (VCL NAL unit types
/// 1 to 5), where H.264 7.4.1.2.3 allows SEI: after any AUD, SPS and PPS.
pub fn insert_before_first_slice(
    avcc_au: &[u8],
    nalu_length_size: u8,
    nal: &[u8],
) -> Result<Vec<u8>, MediaError> {
    let ls = usize::from(nalu_length_size);
    if !matches!(ls, 1 | 2 | 4)
        || (ls < 4 && nal.len() >> (8 * ls) != 0)
        || u32::try_from(nal.len()).is_err()
    {
        return Err(MediaError::InvalidNal {
            offset: 0,
            reason: "NAL unit too long for the length prefix size",
        });
    }
    h264::validate_avcc(avcc_au, nalu_length_size)?;
    // Framing is valid, so the walk below stays in bounds.
    let mut pos = 0;
    let mut at = None;
    while pos < avcc_au.len() {
        let len = avcc_au[pos..pos + ls]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len > 0 && (1..=5).contains(&h264::nal_type(&avcc_au[pos + ls..])) {
            at = Some(pos);
            break;
        }
        pos += ls + len;
    }
    let at = at.ok_or(MediaError::InvalidNal {
        offset: 0,
        reason: "access unit has no slice",
    })?;
    let mut out = Vec::with_capacity(avcc_au.len() + ls + nal.len());
    out.extend_from_slice(&avcc_au[..at]);
    out.extend_from_slice(&(nal.len() as u32).to_be_bytes()[4 - ls..]);
    out.extend_from_slice(nal);
    out.extend_from_slice(&avcc_au[at..]);
    Ok(out)
}

/// An SEI NAL unit carrying `record` under [`HEARTH_UUID`].
pub fn provenance_nal(record: &ProvenanceRecord) -> Vec<u8> {
    user_data_unregistered_nal(HEARTH_UUID, &record.encode())
}

/// The access unit as frame-by-frame ways out (WebRTC) send it: Annex B, with
/// the parameter sets from `config` before an IDR that lacks them (as
/// [`crate::ts::annexb_pieces`] lays them out, minus its AUD: RTP marks access
/// units itself) and `record` as an SEI NAL unit right before the first slice,
/// so the viewer can check whose picture every frame is.
pub fn annexb_with_provenance(
    avcc_au: &[u8],
    config: &crate::h264::AvcConfig,
    record: &ProvenanceRecord,
) -> Result<Vec<u8>, MediaError> {
    const START: &[u8] = &[0, 0, 0, 1];
    let sei = provenance_nal(record);
    let mut pieces = Vec::new();
    let len = crate::ts::annexb_pieces(avcc_au, config, &mut pieces)?;
    let mut out = Vec::with_capacity(len + START.len() + sei.len());
    let mut inserted = false;
    // pieces: [AUD, START, nal, START, nal, ...]
    for nal in pieces.iter().skip(2).step_by(2) {
        if !inserted && (1..=5).contains(&h264::nal_type(nal)) {
            out.extend_from_slice(START);
            out.extend_from_slice(&sei);
            inserted = true;
        }
        out.extend_from_slice(START);
        out.extend_from_slice(nal);
    }
    if !inserted {
        return Err(MediaError::InvalidNal {
            offset: 0,
            reason: "access unit has no slice",
        });
    }
    Ok(out)
}

/// The provenance record carried in an access unit's SEI under [`HEARTH_UUID`].
pub fn find_provenance(avcc_au: &[u8], nalu_length_size: u8) -> Option<ProvenanceRecord> {
    let payload = find_user_data_unregistered(avcc_au, nalu_length_size, HEARTH_UUID)?;
    ProvenanceRecord::decode(&payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::tests::{noise, sample};

    const UUID: [u8; 16] = [0x11; 16];

    /// NAL units of an Annex B stream with 4-byte start codes.
    fn annexb_nals(stream: &[u8]) -> Vec<&[u8]> {
        let mut starts = Vec::new();
        for i in 0..stream.len().saturating_sub(3) {
            if stream[i..i + 4] == [0, 0, 0, 1] {
                starts.push(i + 4);
            }
        }
        starts
            .iter()
            .enumerate()
            .map(|(k, &s)| &stream[s..starts.get(k + 1).map_or(stream.len(), |n| n - 4)])
            .collect()
    }

    #[test]
    fn wire_form_has_parameter_sets_then_provenance_then_the_slices() {
        use crate::h264::tests::{PPS, SPS_640X360, record};
        let config =
            crate::h264::AvcConfig::parse_record(bytes::Bytes::from(record(SPS_640X360, PPS)))
                .unwrap();
        let rec = sample();
        let aud: &[u8] = &[0x09, 0xf0];
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00];
        let p: &[u8] = &[0x41, 0x9a, 0x02];
        let key = annexb_with_provenance(&avcc(&[aud, idr], 4), &config, &rec).unwrap();
        let nals = annexb_nals(&key);
        let types: Vec<u8> = nals.iter().map(|n| h264::nal_type(n)).collect();
        assert_eq!(types, [7, 8, 6, 5], "SPS, PPS, SEI, IDR; the AUD dropped");
        assert_eq!(nals[3], idr);
        let back = avcc(&[nals[2]], 4);
        assert_eq!(find_provenance(&back, 4), Some(rec));
        // An inter frame: the SEI, then the slice; no parameter sets.
        let inter = annexb_with_provenance(&avcc(&[p], 4), &config, &rec).unwrap();
        let types: Vec<u8> = annexb_nals(&inter)
            .iter()
            .map(|n| h264::nal_type(n))
            .collect();
        assert_eq!(types, [6, 1]);
        // No slice: nothing to carry.
        assert!(annexb_with_provenance(&avcc(&[aud], 4), &config, &rec).is_err());
    }

    fn avcc(nals: &[&[u8]], ls: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes()[4 - usize::from(ls)..]);
            out.extend_from_slice(n);
        }
        out
    }

    fn no_start_code_emulation(nal: &[u8]) {
        for w in nal.windows(3) {
            assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "{nal:02x?}");
        }
        for w in nal.windows(4) {
            assert!(!(w[..3] == [0, 0, 3] && w[3] > 3), "stray 03: {nal:02x?}");
        }
    }

    #[test]
    fn nal_layout_small_payload() {
        let nal = user_data_unregistered_nal(UUID, b"hi");
        let mut expect = vec![0x06, 5, 18];
        expect.extend_from_slice(&UUID);
        expect.extend_from_slice(b"hi");
        expect.push(0x80);
        assert_eq!(nal, expect);
    }

    #[test]
    fn round_trip_with_start_code_patterns_and_long_sizes() {
        let tricky: Vec<Vec<u8>> = vec![
            vec![],
            vec![0, 0, 1],
            vec![0, 0, 3],
            vec![0, 0, 0, 0, 0, 0],
            vec![0, 0, 1, 0, 0, 3, 0, 0, 2, 0, 0],
            vec![0; 239], // size 255: 0xff 0x00 coding
            vec![0; 238], // size 254
            (0..2000u32)
                .map(|i| if i % 3 == 2 { 1 } else { 0 })
                .collect(),
            noise(7, 70_000),
        ];
        for payload in tricky {
            let nal = user_data_unregistered_nal(UUID, &payload);
            assert_eq!(nal[0], 0x06);
            no_start_code_emulation(&nal);
            for ls in [2u8, 4] {
                if ls == 2 && nal.len() > 0xffff {
                    continue;
                }
                let au = avcc(&[&[0x09, 0xf0], &nal, &[0x65, 0x88]], ls);
                assert_eq!(
                    find_user_data_unregistered(&au, ls, UUID).as_deref(),
                    Some(&payload[..]),
                    "len {}",
                    payload.len()
                );
                assert_eq!(find_user_data_unregistered(&au, ls, [0x22; 16]), None);
            }
        }
        // 0x000003 in the payload survives the escape (it must itself be escaped).
        let nal = user_data_unregistered_nal(UUID, &[0, 0, 3, 0, 0, 3]);
        assert!(nal.windows(4).any(|w| w == [0, 0, 3, 3]));
    }

    #[test]
    fn finds_later_message_in_one_nal_and_later_nal() {
        // One SEI NAL with two messages: a recovery point (type 6), then ours
        // with a 300-byte payload (size coded 0xff 0x3c).
        let payload = vec![0xab; 300 - 16];
        let mut rbsp = vec![6, 1, 0x84];
        rbsp.extend_from_slice(&[5, 0xff, 45]); // 255 + 45 = 300
        rbsp.extend_from_slice(&UUID);
        rbsp.extend_from_slice(&payload);
        rbsp.push(0x80);
        let mut nal = vec![6];
        escape_into(&rbsp, &mut nal);
        let au = avcc(&[&nal, &[0x41, 1]], 4);
        assert_eq!(find_user_data_unregistered(&au, 4, UUID), Some(payload));
        // Two SEI NALs, the first under another UUID.
        let other = user_data_unregistered_nal([0x22; 16], b"x264 stuff");
        let ours = user_data_unregistered_nal(UUID, b"ours");
        let au = avcc(&[&other, &ours, &[0x65]], 4);
        assert_eq!(
            find_user_data_unregistered(&au, 4, UUID).as_deref(),
            Some(&b"ours"[..])
        );
        assert_eq!(
            find_user_data_unregistered(&au, 4, [0x22; 16]).as_deref(),
            Some(&b"x264 stuff"[..])
        );
    }

    #[test]
    fn insert_before_first_slice_keeps_aud_and_parameter_sets_first() {
        let sei = user_data_unregistered_nal(UUID, b"p");
        let au = avcc(
            &[
                &[0x09, 0xf0],
                &[0x67, 1],
                &[0x68, 2],
                &[0x65, 3],
                &[0x65, 4],
            ],
            4,
        );
        let out = insert_before_first_slice(&au, 4, &sei).unwrap();
        let types: Vec<u8> = h264::nal_units(&out, 4)
            .map(|n| h264::nal_type(n.unwrap()))
            .collect();
        assert_eq!(types, [9, 7, 8, 6, 5, 5]);
        assert_eq!(
            find_user_data_unregistered(&out, 4, UUID).as_deref(),
            Some(&b"p"[..])
        );
        // Non-IDR slice, 1-byte prefixes.
        let au = avcc(&[&[0x41, 9]], 1);
        let out = insert_before_first_slice(&au, 1, &sei).unwrap();
        assert_eq!(out[0] as usize, sei.len());
        // Errors: no slice, bad framing, NAL too long for the prefix.
        assert!(insert_before_first_slice(&avcc(&[&[0x67]], 4), 4, &sei).is_err());
        assert!(insert_before_first_slice(&[0, 0, 0, 9, 1], 4, &sei).is_err());
        assert!(insert_before_first_slice(&au, 1, &vec![0; 256]).is_err());
        assert!(insert_before_first_slice(&au, 3, &sei).is_err());
    }

    #[test]
    fn provenance_round_trip() {
        let r = sample();
        let au = avcc(&[&provenance_nal(&r), &[0x65, 1]], 4);
        assert_eq!(find_provenance(&au, 4), Some(r));
        let au = avcc(
            &[&user_data_unregistered_nal(HEARTH_UUID, b"short"), &[0x65]],
            4,
        );
        assert_eq!(find_provenance(&au, 4), None);
    }

    #[test]
    fn malformed_input_never_panics() {
        let nal = user_data_unregistered_nal(UUID, &[0, 0, 1, 2, 3]);
        let au = avcc(&[&nal, &[0x65, 1]], 4);
        for n in 0..au.len() {
            let _ = find_user_data_unregistered(&au[..n], 4, UUID);
            let _ = find_provenance(&au[..n], 4);
        }
        // Truncated inside the SEI NAL (length prefix patched): message size overruns.
        let cut = avcc(&[&nal[..10]], 4);
        assert_eq!(find_user_data_unregistered(&cut, 4, UUID), None);
        // Endless 0xff run.
        let ff = avcc(&[&[6, 0xff, 0xff, 0xff]], 4);
        assert_eq!(find_user_data_unregistered(&ff, 4, UUID), None);
        for seed in 0..3000u64 {
            let mut junk = noise(seed, 5 + (seed % 200) as usize);
            let body = (junk.len() - 4) as u32;
            junk[..4].copy_from_slice(&body.to_be_bytes());
            if seed % 2 == 0 {
                junk[4] = 6;
            }
            let _ = find_user_data_unregistered(&junk, 4, UUID);
            let _ = find_user_data_unregistered(&junk, (seed % 5) as u8, UUID);
            let _ = insert_before_first_slice(&junk, 4, &nal);
        }
    }
}
