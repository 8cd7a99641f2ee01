//! The AVC decoder configuration record, SPS dimensions, AVCC framing and the
//! AAC AudioSpecificConfig.
#![no_main]
use bytes::Bytes;
use hearth_media::aac::AacConfig;
use hearth_media::h264::{self, AvcConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    if let Ok(cfg) = AvcConfig::parse_record(b.clone()) {
        let _ = cfg.codec_string();
    }
    let _ = h264::sps_dimensions(data);
    if let Some((&len, rest)) = data.split_first() {
        let len = len % 5;
        for nal in h264::nal_units(rest, len) {
            if nal.is_err() {
                break;
            }
        }
        let _ = h264::validate_avcc(rest, len);
    }
    if let Ok(c) = AacConfig::parse(b) {
        let _ = c.codec_string();
        let _ = c.adts_header(data.len());
    }
});
