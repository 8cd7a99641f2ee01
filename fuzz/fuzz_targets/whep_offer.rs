//! What a WHEP viewer sends: the SDP offer of a `POST whep_url` (answered by
//! str0m, as the handler does) and the STUN binding requests the shared UDP
//! socket routes by ICE ufrag.
#![no_main]
use hearth_server::door::webrtc::{negotiate, udp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = udp::stun_local_ufrag(data);
    let candidates = ["127.0.0.1:8189".parse().expect("address")];
    if let Ok(n) = negotiate(data, &candidates) {
        assert!(n.answer.starts_with("v=0"), "an answer is SDP");
        assert!(!n.ufrag.is_empty());
    }
});
