//! FLV video tag payloads for H.264, as carried in RTMP video messages.
//!
//! RTMP carries video as the body of an FLV `VIDEODATA` tag (the 11-byte FLV tag header
//! is not sent; RTMP's own message header replaces it). For H.264 (codec id 7) the body is
//!
//! ```text
//! byte 0    frame type << 4 | codec id      (0x17 keyframe, 0x27 inter frame)
//! byte 1    AVCPacketType                   (0 sequence header, 1 NAL units)
//! byte 2-4  composition time offset, ms     (always 0: baseline has no B-frames)
//! byte 5..  AVCDecoderConfigurationRecord   (sequence header)
//!           or NAL units, each prefixed by its 4-byte big-endian length
//! ```
//!
//! A publisher sends the sequence header once per connection, before the first frame;
//! players need it to configure the decoder. These are pure byte layouts, no I/O, so the
//! server's tests can use them to play "camera" without a socket.

use bytes::{BufMut, Bytes, BytesMut};

/// FLV codec id of H.264/AVC.
pub const CODEC_ID_AVC: u8 = 7;
/// FLV frame type of a keyframe (IDR).
pub const FRAME_TYPE_KEY: u8 = 1;
/// FLV frame type of an inter frame.
pub const FRAME_TYPE_INTER: u8 = 2;
/// `AVCPacketType` of a sequence header.
pub const AVC_SEQUENCE_HEADER: u8 = 0;
/// `AVCPacketType` of NAL units.
pub const AVC_NALU: u8 = 1;

/// Size of the NAL length prefix in this crate's AVCC data (`lengthSizeMinusOne` = 3).
pub const NALU_LENGTH_SIZE: u8 = 4;

/// NAL unit types this crate cares about.
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

/// The `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.2.4.1) for one SPS and one
/// PPS (both without start codes), with 4-byte NAL lengths. `None` if the SPS is too
/// short to carry profile and level or either is too long for a 16-bit length.
pub fn avc_decoder_configuration_record(sps: &[u8], pps: &[u8]) -> Option<Bytes> {
    if sps.len() < 4 || pps.is_empty() || sps.len() > 0xffff || pps.len() > 0xffff {
        return None;
    }
    let mut out = BytesMut::with_capacity(11 + sps.len() + pps.len());
    out.put_u8(1); // configurationVersion
    out.put_u8(sps[1]); // AVCProfileIndication
    out.put_u8(sps[2]); // profile_compatibility (constraint flags)
    out.put_u8(sps[3]); // AVCLevelIndication
    out.put_u8(0xfc | 3); // reserved bits + lengthSizeMinusOne = 3
    out.put_u8(0xe0 | 1); // reserved bits + numOfSequenceParameterSets = 1
    out.put_u16(sps.len() as u16);
    out.put_slice(sps);
    out.put_u8(1); // numOfPictureParameterSets
    out.put_u16(pps.len() as u16);
    out.put_slice(pps);
    Some(out.freeze())
}

/// The FLV video tag payload carrying the sequence header for `sps` and `pps`.
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Option<Bytes> {
    let record = avc_decoder_configuration_record(sps, pps)?;
    let mut out = BytesMut::with_capacity(5 + record.len());
    out.put_u8(FRAME_TYPE_KEY << 4 | CODEC_ID_AVC);
    out.put_u8(AVC_SEQUENCE_HEADER);
    out.put_slice(&[0, 0, 0]);
    out.put_slice(&record);
    Some(out.freeze())
}

/// The sequence header for the SPS and PPS carried in-band in an Annex-B access unit
/// (as every IDR from [`crate::Encoder`] does); `None` if either is missing.
pub fn avc_sequence_header_from_annexb(annexb: &[u8]) -> Option<Bytes> {
    let nals = split_annexb(annexb);
    let find = |t| nals.iter().find(|n| nal_type(n) == Some(t)).copied();
    avc_sequence_header(find(NAL_SPS)?, find(NAL_PPS)?)
}

/// First byte of an FLV audio tag for AAC (sound format 10; the rate, size
/// and channel bits are fixed for AAC: the AudioSpecificConfig says).
const AAC_TAG: u8 = 0xAF;

/// The FLV audio tag payload carrying the AAC AudioSpecificConfig.
pub fn aac_sequence_header(asc: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + asc.len());
    out.put_u8(AAC_TAG);
    out.put_u8(0); // AACPacketType: sequence header
    out.put_slice(asc);
    out.freeze()
}

/// The FLV audio tag payload for one raw AAC frame.
pub fn aac_audio_tag(raw: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + raw.len());
    out.put_u8(AAC_TAG);
    out.put_u8(1); // AACPacketType: raw
    out.put_slice(raw);
    out.freeze()
}

/// The FLV video tag payload for one access unit, given as 4-byte length-prefixed NAL
/// units (`avcc`).
pub fn avc_video_tag(keyframe: bool, avcc: &[u8]) -> Bytes {
    let frame_type = if keyframe {
        FRAME_TYPE_KEY
    } else {
        FRAME_TYPE_INTER
    };
    let mut out = BytesMut::with_capacity(5 + avcc.len());
    out.put_u8(frame_type << 4 | CODEC_ID_AVC);
    out.put_u8(AVC_NALU);
    out.put_slice(&[0, 0, 0]); // composition time 0
    out.put_slice(avcc);
    out.freeze()
}

/// Splits an Annex-B byte stream into NAL units (start codes removed).
pub fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // index just after each start code
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&next| next - 3);
        // A 4-byte start code leaves one zero byte at the end of the previous NAL, and
        // trailing_zero_8bits may follow; neither belongs to the NAL.
        while end > start && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > start {
            nals.push(&data[start..end]);
        }
    }
    nals
}

/// Writes NAL units as 4-byte length-prefixed (AVCC) data.
pub fn to_avcc<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    for nal in nals {
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

/// The `nal_unit_type` of a NAL unit (its low 5 header bits).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real constrained-baseline level 3.1 SPS and its PPS (1280x720).
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x05, 0xbb, 0x01,
    ];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn sequence_header_layout() {
        let tag = avc_sequence_header(SPS, PPS).unwrap();
        assert_eq!(&tag[..5], &[0x17, 0x00, 0, 0, 0]);
        let rec = &tag[5..];
        assert_eq!(&rec[..6], &[1, 0x42, 0xc0, 0x1f, 0xff, 0xe1]);
        assert_eq!(u16::from_be_bytes([rec[6], rec[7]]) as usize, SPS.len());
        assert_eq!(&rec[8..8 + SPS.len()], SPS);
        let rest = &rec[8 + SPS.len()..];
        assert_eq!(rest[0], 1);
        assert_eq!(u16::from_be_bytes([rest[1], rest[2]]) as usize, PPS.len());
        assert_eq!(&rest[3..], PPS);
        assert!(avc_sequence_header(&SPS[..3], PPS).is_none());
        assert!(avc_sequence_header(SPS, &[]).is_none());
    }

    #[test]
    fn video_tag_layout() {
        let avcc = to_avcc([&[0x65, 0x88, 0x80][..], &[0x06, 0x05][..]]);
        assert_eq!(
            &avcc[..],
            &[0, 0, 0, 3, 0x65, 0x88, 0x80, 0, 0, 0, 2, 0x06, 0x05]
        );
        let key = avc_video_tag(true, &avcc);
        assert_eq!(&key[..5], &[0x17, 0x01, 0, 0, 0]);
        assert_eq!(&key[5..], &avcc[..]);
        let inter = avc_video_tag(false, &avcc);
        assert_eq!(&inter[..5], &[0x27, 0x01, 0, 0, 0]);
    }

    #[test]
    fn splits_annexb_with_both_start_code_lengths() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, // SPS, 4-byte start code
            0, 0, 1, 0x68, 3, // PPS, 3-byte start code
            0, 0, 0, 1, 0x65, 0, 0, 3, 0, 9, // IDR with an emulation-prevention byte
        ];
        let nals = split_annexb(&stream);
        assert_eq!(
            nals,
            vec![
                &[0x67, 1, 2][..],
                &[0x68, 3][..],
                &[0x65, 0, 0, 3, 0, 9][..]
            ]
        );
        let types: Vec<_> = nals.iter().map(|n| nal_type(n).unwrap()).collect();
        assert_eq!(types, [NAL_SPS, NAL_PPS, NAL_IDR]);
        assert!(split_annexb(&[]).is_empty());
        assert!(split_annexb(&[1, 2, 3]).is_empty());
    }
}
