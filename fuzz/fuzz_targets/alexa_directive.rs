//! Alexa directive envelopes, and the access token read from them.
#![no_main]
use hearth_server::integrations::alexa;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = alexa::parse_directive(data) {
        let _ = alexa::token_of(&d);
    }
});
