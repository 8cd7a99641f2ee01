//! The OAuth provider's inputs: the authorization query, token/revoke form
//! bodies and HTTP Basic client credentials.
#![no_main]
use hearth_server::integrations::oauth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = oauth::parse_form(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = oauth::parse_query(Some(s));
        let _ = oauth::basic_credentials(s);
    }
});
