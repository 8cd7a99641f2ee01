//! FLV video and audio tag payloads, as RTMP ingest receives them from cameras.
#![no_main]
use bytes::Bytes;
use hearth_media::flv::{parse_audio_tag, parse_video_tag, read_flv_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    let _ = parse_video_tag(b.clone());
    let _ = parse_audio_tag(b.clone());
    let _ = read_flv_file(b);
});
