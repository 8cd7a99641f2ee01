//! Node to node: the token an edge node presents to the node that ingests a
//! camera, to have that camera's frames relayed (see the server's
//! `cluster::relay`).
//!
//! A relay token is signed with the grant key (every node of a cluster has the
//! same one) under its own version byte and length, so it can never pass as a
//! viewer's grant, nor a grant as it. It is narrow and short-lived: one camera,
//! one rendition, one binding epoch, an expiry of at most [`RELAY_TTL_MS`].
//! The owner's [`crate::door::RelayGuard`] then lets out only frames stamped
//! for that camera and epoch, as the viewer-facing door does; the edge checks
//! every stamp again before its own hub takes the frame, and its own door
//! checks the viewer's grant.

use crate::grant::{GrantError, GrantKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_model::{BindingEpoch, CameraId, Rendition, UnixMillis};
use hmac::Mac;

/// How long a relay token opens the stream for (the stream then lives while
/// the camera stays bound and the view is not fenced).
pub const RELAY_TTL_MS: i64 = 30_000;

const VERSION: u8 = 0x72;
const PAYLOAD_LEN: usize = 1 + 16 + 1 + 8 + 8;
const TAG_LEN: usize = 32;

/// What a relay token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayClaim {
    pub camera: CameraId,
    pub rendition: Rendition,
    pub epoch: BindingEpoch,
    pub expires_at: UnixMillis,
}

impl GrantKey {
    /// Encodes and signs a relay claim. The result is URL-path safe.
    pub fn sign_relay(&self, c: &RelayClaim) -> String {
        let mut p = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        p.push(VERSION);
        p.extend_from_slice(c.camera.as_bytes());
        p.push(c.rendition.code());
        p.extend_from_slice(&c.epoch.0.to_be_bytes());
        p.extend_from_slice(&c.expires_at.0.to_be_bytes());
        let mut mac = self.mac();
        mac.update(&p);
        p.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(p)
    }

    /// Checks a relay token's tag (constant time) and expiry.
    pub fn verify_relay(&self, token: &str, now: UnixMillis) -> Result<RelayClaim, GrantError> {
        let mut buf = [0u8; PAYLOAD_LEN + TAG_LEN];
        if token.len() > 2 * buf.len() {
            return Err(GrantError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| GrantError::Malformed)?;
        if raw.len() != buf.len() || raw[0] != VERSION {
            return Err(GrantError::Malformed);
        }
        buf.copy_from_slice(&raw);
        let (payload, tag) = buf.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| GrantError::BadTag)?;
        let u64at = |at: usize| -> [u8; 8] { payload[at..at + 8].try_into().expect("8 bytes") };
        let claim = RelayClaim {
            camera: CameraId::from_bytes(payload[1..17].try_into().expect("16 bytes")),
            rendition: Rendition::from_code(payload[17]).ok_or(GrantError::Malformed)?,
            epoch: BindingEpoch(u64::from_be_bytes(u64at(18))),
            expires_at: UnixMillis(i64::from_be_bytes(u64at(26))),
        };
        if now >= claim.expires_at || claim.expires_at.0 - now.0 > RELAY_TTL_MS {
            return Err(GrantError::Expired);
        }
        Ok(claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Grant;

    fn claim(now: i64) -> RelayClaim {
        RelayClaim {
            camera: CameraId::random(),
            rendition: Rendition::Sub,
            epoch: BindingEpoch(3),
            expires_at: UnixMillis(now + 10_000),
        }
    }

    #[test]
    fn a_relay_token_opens_for_its_claim_only_under_the_same_key() {
        let key = GrantKey::random();
        let c = claim(1_000);
        let token = key.sign_relay(&c);
        assert_eq!(key.verify_relay(&token, UnixMillis(1_000)).unwrap(), c);
        assert!(matches!(
            GrantKey::random().verify_relay(&token, UnixMillis(1_000)),
            Err(GrantError::BadTag)
        ));
        assert!(matches!(
            key.verify_relay(&token, UnixMillis(11_000)),
            Err(GrantError::Expired)
        ));
        // Tampered: another camera in the same token.
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        raw[5] ^= 1;
        assert!(matches!(
            key.verify_relay(&URL_SAFE_NO_PAD.encode(raw), UnixMillis(1_000)),
            Err(GrantError::BadTag)
        ));
    }

    #[test]
    fn a_relay_token_is_not_a_grant_and_a_grant_is_not_a_relay_token() {
        let key = GrantKey::random();
        let token = key.sign_relay(&claim(1_000));
        assert!(key.verify(&token, UnixMillis(1_000)).is_err());
        let grant = Grant {
            id: hearth_model::GrantId::random(),
            viewer: hearth_model::UserId::random(),
            camera: CameraId::random(),
            epoch: BindingEpoch(1),
            expires_at: UnixMillis(5_000),
            integration: hearth_model::Integration::App,
            holder: crate::grant::Holder::of_session("s"),
        };
        assert!(
            key.verify_relay(&key.sign(&grant), UnixMillis(1_000))
                .is_err()
        );
    }

    #[test]
    fn a_token_longer_lived_than_the_ttl_is_refused() {
        let key = GrantKey::random();
        let mut c = claim(0);
        c.expires_at = UnixMillis(RELAY_TTL_MS + 1);
        assert!(
            key.verify_relay(&key.sign_relay(&c), UnixMillis(0))
                .is_err()
        );
    }
}
