//! RTSP requests (and interleaved frames between them) from displays, and the
//! Transport header.
#![no_main]
use hearth_media::rtsp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    // As the RTSP egress does: parse messages off the front until one is incomplete.
    while let Ok(Some((msg, used))) = rtsp::parse(buf) {
        assert!(used > 0 && used <= buf.len(), "parser consumed {used} of {}", buf.len());
        if let rtsp::Message::Request(req) = &msg {
            let _ = req.cseq();
            if let Some(t) = req.header("transport") {
                let _ = rtsp::tcp_interleaved_channels(t);
            }
        }
        buf = &buf[used..];
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = rtsp::tcp_interleaved_channels(s);
    }
});
