//! Google Home fulfillment request bodies.
#![no_main]
use hearth_server::integrations::google;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = google::parse_request(data);
});
