//! H.264 plumbing: the avcC configuration record, AVCC ⇄ Annex B, NAL iteration.
//!
//! RTMP/FLV and fMP4 carry H.264 as AVCC (each NAL unit prefixed by its length);
//! MPEG-TS carries Annex B (start codes). This module converts between them and
//! parses the avcC record that RTMP sends as the sequence header. SPS fields
//! (dimensions) are decoded with `h264-reader`, which is fuzzed upstream; this
//! module only adds the record framing around it.
//!
//! Guarantees: every function here bounds-checks its input and returns
//! [`MediaError`] on malformed bytes; nothing panics on outside input.

use bytes::Bytes;
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitReader, decode_nal};

use crate::MediaError;

/// NAL unit type of a coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// `nal_unit_type` of a NAL unit (low 5 bits of its first byte); 0 for an empty slice.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Decoder configuration from an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (66 baseline, 77 main, 100 high, ...).
    pub profile_idc: u8,
    /// `profile_compatibility` (constraint_set flags).
    pub constraint_flags: u8,
    /// `AVCLevelIndication` (31 = level 3.1).
    pub level_idc: u8,
    /// Size of the NAL length prefix in AVCC access units: 1, 2 or 4.
    pub nalu_length_size: u8,
    /// Sequence parameter sets (NAL units including their header byte).
    pub sps: Vec<Bytes>,
    /// Picture parameter sets (NAL units including their header byte).
    pub pps: Vec<Bytes>,
    /// Display width in pixels (after cropping), from the first SPS.
    pub width: u32,
    /// Display height in pixels (after cropping), from the first SPS.
    pub height: u32,
    /// The original record, byte for byte; it becomes the fMP4 `avcC` box body.
    pub record: Bytes,
}

impl AvcConfig {
    /// Parses an avcC record (the body of an FLV AVC sequence header).
    ///
    /// Requires at least one SPS and one PPS and a decodable first SPS.
    pub fn parse_record(record: Bytes) -> Result<Self, MediaError> {
        let r = &record[..];
        if r.len() < 7 {
            return Err(MediaError::truncated("avcC record", 7, r.len()));
        }
        if r[0] != 1 {
            return Err(MediaError::InvalidAvcConfig(format!(
                "configurationVersion {} (expected 1)",
                r[0]
            )));
        }
        let nalu_length_size = (r[4] & 0x03) + 1;
        if nalu_length_size == 3 {
            return Err(MediaError::InvalidAvcConfig(
                "NAL length size 3 is not allowed".into(),
            ));
        }
        let mut pos = 5;
        let num_sps = usize::from(r[pos] & 0x1f);
        pos += 1;
        let mut sps = Vec::with_capacity(num_sps);
        for _ in 0..num_sps {
            sps.push(read_parameter_set(&record, &mut pos, "avcC SPS")?);
        }
        let Some(&num_pps) = r.get(pos) else {
            return Err(MediaError::truncated("avcC PPS count", pos + 1, r.len()));
        };
        pos += 1;
        let mut pps = Vec::with_capacity(usize::from(num_pps));
        for _ in 0..num_pps {
            pps.push(read_parameter_set(&record, &mut pos, "avcC PPS")?);
        }
        // Any trailing bytes are the High-profile extension (chroma format, bit depth,
        // SPS-ext); the decoder reads them from the record we pass through verbatim.
        let first_sps = sps
            .first()
            .ok_or_else(|| MediaError::InvalidAvcConfig("record has no SPS".into()))?;
        if pps.is_empty() {
            return Err(MediaError::InvalidAvcConfig("record has no PPS".into()));
        }
        if nal_type(first_sps) != NAL_SPS {
            return Err(MediaError::InvalidAvcConfig(format!(
                "first SPS has NAL type {}",
                nal_type(first_sps)
            )));
        }
        if let Some(p) = pps.iter().find(|p| nal_type(p) != NAL_PPS) {
            return Err(MediaError::InvalidAvcConfig(format!(
                "PPS has NAL type {}",
                nal_type(p)
            )));
        }
        let (width, height) = sps_dimensions(first_sps)?;
        Ok(AvcConfig {
            profile_idc: r[1],
            constraint_flags: r[2],
            level_idc: r[3],
            nalu_length_size,
            sps,
            pps,
            width,
            height,
            record,
        })
    }

    /// RFC 6381 codec string for HLS `CODECS` / MSE, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

fn read_parameter_set(
    record: &Bytes,
    pos: &mut usize,
    what: &'static str,
) -> Result<Bytes, MediaError> {
    let r = &record[..];
    let len_bytes = r
        .get(*pos..*pos + 2)
        .ok_or_else(|| MediaError::truncated(what, *pos + 2, r.len()))?;
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let start = *pos + 2;
    let end = start + len;
    if end > r.len() {
        return Err(MediaError::truncated(what, end, r.len()));
    }
    if len == 0 {
        return Err(MediaError::InvalidAvcConfig(format!("empty {what}")));
    }
    *pos = end;
    Ok(record.slice(start..end))
}

/// Display dimensions (cropped) from an SPS NAL unit (including its header byte).
pub fn sps_dimensions(sps: &[u8]) -> Result<(u32, u32), MediaError> {
    // h264-reader indexes the NAL header byte unchecked.
    if sps.len() < 2 || nal_type(sps) != 7 {
        return Err(MediaError::InvalidAvcConfig(
            "SPS: not an SPS NAL unit".into(),
        ));
    }
    let rbsp = decode_nal(sps).map_err(|e| MediaError::InvalidAvcConfig(format!("SPS: {e}")))?;
    let parsed = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
        .map_err(|e| MediaError::InvalidAvcConfig(format!("SPS: {e:?}")))?;
    let (w, h) = parsed
        .pixel_dimensions()
        .map_err(|e| MediaError::InvalidAvcConfig(format!("SPS dimensions: {e:?}")))?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(MediaError::InvalidAvcConfig(format!(
            "implausible dimensions {w}x{h}"
        )));
    }
    Ok((w, h))
}

/// Iterator over the NAL units of an AVCC access unit. See [`nal_units`].
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    pos: usize,
    length_size: u8,
    failed: bool,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = Result<&'a [u8], MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed || self.pos >= self.data.len() {
                return None;
            }
            let ls = usize::from(self.length_size);
            if !matches!(ls, 1 | 2 | 4) {
                self.failed = true;
                return Some(Err(MediaError::InvalidNal {
                    offset: 0,
                    reason: "NAL length size must be 1, 2 or 4",
                }));
            }
            let Some(prefix) = self.data.get(self.pos..self.pos + ls) else {
                self.failed = true;
                return Some(Err(MediaError::InvalidNal {
                    offset: self.pos,
                    reason: "truncated NAL length prefix",
                }));
            };
            let len = prefix
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            let start = self.pos + ls;
            if len > self.data.len() - start {
                self.failed = true;
                return Some(Err(MediaError::InvalidNal {
                    offset: self.pos,
                    reason: "NAL length runs past the end of the access unit",
                }));
            }
            self.pos = start + len;
            if len == 0 {
                // Zero-length NAL units carry nothing; skip them.
                continue;
            }
            return Some(Ok(&self.data[start..start + len]));
        }
    }
}

/// Iterates the NAL units of an AVCC access unit. Yields one `Err` and stops on a
/// malformed length prefix; empty NAL units are skipped.
pub fn nal_units(avcc: &[u8], nalu_length_size: u8) -> NalUnits<'_> {
    NalUnits {
        data: avcc,
        pos: 0,
        length_size: nalu_length_size,
        failed: false,
    }
}

/// Checks that an AVCC access unit is well framed and holds at least one NAL unit.
pub fn validate_avcc(avcc: &[u8], nalu_length_size: u8) -> Result<(), MediaError> {
    let mut count = 0;
    for nal in nal_units(avcc, nalu_length_size) {
        nal?;
        count += 1;
    }
    if count == 0 {
        return Err(MediaError::InvalidNal {
            offset: 0,
            reason: "access unit has no NAL units",
        });
    }
    Ok(())
}

/// Appends the access unit to `out` in Annex B form (4-byte start codes).
/// On error, `out` may hold a partial conversion.
pub fn avcc_to_annexb(
    avcc: &[u8],
    nalu_length_size: u8,
    out: &mut Vec<u8>,
) -> Result<(), MediaError> {
    for nal in nal_units(avcc, nalu_length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal?);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SPS/PPS of x264 High@3.0 640x360 (from `ffmpeg -c:v libx264 -s 640x360`).
    pub const SPS_640X360: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
    ];
    pub const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    /// `sps_dimensions(&[])` panicked inside h264-reader; no input may.
    #[test]
    fn sps_dimensions_never_panics() {
        assert!(sps_dimensions(&[]).is_err());
        assert!(sps_dimensions(&[0x67]).is_err());
        assert!(sps_dimensions(PPS).is_err());
        assert_eq!(sps_dimensions(SPS_640X360).unwrap(), (640, 360));
        for n in 0..SPS_640X360.len() {
            let _ = sps_dimensions(&SPS_640X360[..n]);
        }
        for i in 1..SPS_640X360.len() {
            for v in [0x00, 0x01, 0x03, 0x7f, 0x80, 0xff] {
                let mut m = SPS_640X360.to_vec();
                m[i] = v;
                let _ = sps_dimensions(&m);
            }
        }
    }

    pub fn record(sps: &[u8], pps: &[u8]) -> Vec<u8> {
        let mut r = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(sps);
        r.push(1);
        r.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        r.extend_from_slice(pps);
        r
    }

    #[test]
    fn parses_x264_record() {
        let cfg = AvcConfig::parse_record(Bytes::from(record(SPS_640X360, PPS))).unwrap();
        assert_eq!((cfg.width, cfg.height), (640, 360));
        assert_eq!(cfg.profile_idc, 100);
        assert_eq!(cfg.level_idc, 30);
        assert_eq!(cfg.nalu_length_size, 4);
        assert_eq!(cfg.sps.len(), 1);
        assert_eq!(&cfg.pps[0][..], PPS);
        assert_eq!(cfg.codec_string(), "avc1.64001e");
    }

    #[test]
    fn rejects_bad_records() {
        let good = record(SPS_640X360, PPS);
        let mut bad_version = good.clone();
        bad_version[0] = 0;
        assert!(AvcConfig::parse_record(Bytes::from(bad_version)).is_err());
        let mut len3 = good.clone();
        len3[4] = 0xfe;
        assert!(AvcConfig::parse_record(Bytes::from(len3)).is_err());
        let mut no_pps = good.clone();
        no_pps.truncate(6 + 2 + SPS_640X360.len());
        no_pps.push(0);
        assert!(matches!(
            AvcConfig::parse_record(Bytes::from(no_pps)),
            Err(MediaError::InvalidAvcConfig(_))
        ));
        for n in 0..good.len() {
            assert!(
                AvcConfig::parse_record(Bytes::copy_from_slice(&good[..n])).is_err(),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn nal_iteration_and_annexb() {
        let au = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 0, 0, 0, 0, 3, 0x65, 1, 2];
        let nals: Vec<_> = nal_units(&au, 4).collect::<Result<_, _>>().unwrap();
        assert_eq!(nals, vec![&[0x09, 0xf0][..], &[0x65, 1, 2][..]]);
        let mut out = Vec::new();
        avcc_to_annexb(&au, 4, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 1, 2]);

        let two = [0, 2, 0x41, 0xaa, 0, 1, 0x06];
        assert_eq!(nal_units(&two, 2).count(), 2);

        let overrun = [0, 0, 0, 9, 0x65, 1];
        let mut it = nal_units(&overrun, 4);
        assert!(matches!(
            it.next(),
            Some(Err(MediaError::InvalidNal { offset: 0, .. }))
        ));
        assert!(it.next().is_none());
        assert!(validate_avcc(&[0, 0, 0], 4).is_err());
        assert!(validate_avcc(&[], 4).is_err());
        assert!(validate_avcc(&au, 3).is_err());
    }
}
