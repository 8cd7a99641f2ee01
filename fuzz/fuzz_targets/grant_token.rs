//! Grant tokens as they arrive in media URLs: the presented tag and verification.
#![no_main]
use hearth_access::grant::{GrantKey, PresentedTag};
use hearth_model::UnixMillis;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEY: OnceLock<GrantKey> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let key = KEY.get_or_init(GrantKey::random);
    let _ = PresentedTag::of(token);
    // A random key: nothing the fuzzer makes may verify.
    assert!(key.verify(token, UnixMillis(0)).is_err(), "a forged grant verified");
});
