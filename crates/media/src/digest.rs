//! RTSP Digest authentication (RFC 2617, as RTSP uses it: RFC 2326 and 7826),
//! the server side: Hearth's RTSP egress for viewer keys (VLC, Home Assistant,
//! Frigate and Blue Iris take a URL with a user name and password and answer
//! the camera-style Digest challenge; the user name is the key's id, the
//! password its secret) and the simulated IP camera's RTSP server.
//!
//! Sans-IO: the challenge, the parsing of `Authorization` and the check. MD5 is
//! what every RTSP client implements; the nonce is random per connection and
//! only good on that connection, so a captured response replays nowhere else.

use md5::{Digest as _, Md5};
use subtle::ConstantTimeEq;

pub const REALM: &str = "Hearth";

/// The `WWW-Authenticate` value for a connection's `nonce`.
pub fn challenge(nonce: &str) -> String {
    format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5")
}

/// A parsed `Authorization: Digest ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: &'a str,
    realm: &'a str,
    nonce: &'a str,
    uri: &'a str,
    response: &'a str,
    qop: Option<&'a str>,
    nc: Option<&'a str>,
    cnonce: Option<&'a str>,
}

/// Parses an `Authorization` header; `None` unless it is Digest with the
/// fields a response needs.
pub fn parse(header: &str) -> Option<Credentials<'_>> {
    let rest = header.trim().strip_prefix("Digest")?.trim_start();
    let mut fields = std::collections::HashMap::new();
    let mut s = rest;
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        fields.insert(key.to_ascii_lowercase(), value);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Credentials {
        username: fields.get("username")?,
        realm: fields.get("realm")?,
        nonce: fields.get("nonce")?,
        uri: fields.get("uri")?,
        response: fields.get("response")?,
        qop: fields.get("qop").copied(),
        nc: fields.get("nc").copied(),
        cnonce: fields.get("cnonce").copied(),
    })
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Credentials<'_> {
    /// Whether this is the right answer to `nonce` for `method`, from a client
    /// that knows `password`. Compared in constant time.
    pub fn verify(&self, method: &str, nonce: &str, password: &str) -> bool {
        if self.realm != REALM || self.nonce.as_bytes().ct_eq(nonce.as_bytes()).unwrap_u8() == 0 {
            return false;
        }
        let ha1 = md5_hex(&[self.username, REALM, password]);
        let ha2 = md5_hex(&[method, self.uri]);
        let expected = match (self.qop, self.nc, self.cnonce) {
            (Some(qop @ "auth"), Some(nc), Some(cnonce)) => {
                md5_hex(&[&ha1, self.nonce, nc, cnonce, qop, &ha2])
            }
            (None, _, _) => md5_hex(&[&ha1, self.nonce, &ha2]),
            _ => return false,
        };
        expected
            .as_bytes()
            .ct_eq(self.response.to_ascii_lowercase().as_bytes())
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(user: &str, password: &str, method: &str, uri: &str, nonce: &str) -> String {
        let ha1 = md5_hex(&[user, REALM, password]);
        let ha2 = md5_hex(&[method, uri]);
        let response = md5_hex(&[&ha1, nonce, &ha2]);
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\""
        )
    }

    #[test]
    fn rfc_2617_example_verifies_with_qop() {
        // RFC 2617 section 3.5, with this realm put in (the response recomputed).
        let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
        let ha1 = md5_hex(&["Mufasa", REALM, "Circle Of Life"]);
        let ha2 = md5_hex(&["GET", "/dir/index.html"]);
        let response = md5_hex(&[&ha1, nonce, "00000001", "0a4f113b", "auth", &ha2]);
        let header = format!(
            "Digest username=\"Mufasa\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        let c = parse(&header).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert!(c.verify("GET", nonce, "Circle Of Life"));
        assert!(!c.verify("GET", nonce, "Circle of life"));
        // And the known RFC value for its own realm.
        assert_eq!(
            md5_hex(&[
                &md5_hex(&["Mufasa", "testrealm@host.com", "Circle Of Life"]),
                nonce,
                "00000001",
                "0a4f113b",
                "auth",
                &ha2
            ]),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn a_response_holds_only_for_its_password_nonce_method_and_realm() {
        let uri = "rtsp://h:8554/cameras/abc";
        let h = answer("key1", "s3cret", "DESCRIBE", uri, "n1");
        let c = parse(&h).unwrap();
        assert!(c.verify("DESCRIBE", "n1", "s3cret"));
        assert!(!c.verify("DESCRIBE", "n1", "other"));
        assert!(
            !c.verify("DESCRIBE", "n2", "s3cret"),
            "another connection's nonce"
        );
        assert!(!c.verify("SETUP", "n1", "s3cret"));
        assert!(parse("Basic a2V5MTpzM2NyZXQ=").is_none());
        assert!(parse("Digest username=\"x\"").is_none());
        assert!(parse("Digest =,=\"").is_none());
        assert!(parse("").is_none());
        let other_realm = h.replace(REALM, "Other");
        assert!(
            !parse(&other_realm)
                .unwrap()
                .verify("DESCRIBE", "n1", "s3cret")
        );
    }
}
