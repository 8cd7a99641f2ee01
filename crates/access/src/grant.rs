//! Grants: short-lived, narrow permissions to view one camera.
//!
//! A grant names one viewer, one camera, one binding epoch, one integration and an
//! expiry. It travels inside media URLs (players such as Chromecast, ffmpeg or VLC
//! cannot send headers), so it is a self-contained token: a fixed binary payload and
//! an HMAC-SHA256 tag under a server key that never leaves the data directory.
//! Verifying one needs no database call, which keeps the media hot path free of I/O;
//! the tag is compared in constant time.
//!
//! The only way to obtain a [`VerifiedGrant`] is [`GrantKey::verify`], and the only way
//! to build an egress door is from a `VerifiedGrant`.
//!
//! A grant is also bound to its holder: the login session that asked for it. It
//! carries a [`Holder`] digest of that session's token, and every media request must
//! present the same session (`Authorization: Bearer`), so a grant URL that leaks —
//! copied from a log, a screen share, a player's history — is refused to anyone who
//! does not hold the session, another account included. The check is one hash and a
//! constant-time comparison, no lookup.
//!
//! At expiry every URL under the grant answers 403 with no media bytes. Players that
//! keep polling (HLS) stop at the next playlist refresh; the web app renews its grant
//! well before expiry and switches URLs without a gap.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_model::{BindingEpoch, CameraId, GrantId, Integration, UnixMillis, UserId};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// How long a stream grant lasts. Players renew before expiry.
pub const GRANT_TTL_MS: i64 = 5 * 60 * 1000;

const VERSION: u8 = 2;
/// version + grant + user + camera + epoch + expiry + integration + holder
const PAYLOAD_LEN: usize = 1 + 16 + 16 + 16 + 8 + 8 + 1 + HOLDER_LEN;
const HOLDER_LEN: usize = 16;

/// Who may present a grant: a digest of the session token that requested it.
///
/// A domain-separated SHA-256 of the raw token, truncated to 128 bits. It is not
/// the session's stored hash, and a digest of a 256-bit random token reveals nothing
/// usable: presenting a grant takes the token itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder([u8; HOLDER_LEN]);

impl Holder {
    pub fn of_session(token: &str) -> Self {
        let d = Sha256::new()
            .chain_update(b"hearth grant holder v1\0")
            .chain_update(token.as_bytes())
            .finalize();
        Self(d[..HOLDER_LEN].try_into().expect("16 of 32 bytes"))
    }

    /// The holder of a grant issued through an account link (Google Home, Alexa).
    ///
    /// Smart displays and Cast receivers fetch the stream URL as it is, without
    /// headers, so such a grant cannot demand a session. It names its link instead,
    /// and the access view lets it open the door only while that link exists,
    /// belongs to the grant's viewer and integration, and still includes the camera:
    /// unlinking, DISCONNECT, revoking the refresh token or leaving the camera out
    /// stops the stream at its next request.
    pub fn of_viewer_key(key: hearth_model::ViewerKeyId) -> Self {
        let d = Sha256::new()
            .chain_update(b"hearth viewer key holder v1\0")
            .chain_update(key.as_bytes())
            .finalize();
        Self(d[..HOLDER_LEN].try_into().expect("16 of 32 bytes"))
    }

    pub fn of_link(link: hearth_model::LinkId) -> Self {
        let d = Sha256::new()
            .chain_update(b"hearth link holder v1\0")
            .chain_update(link.as_bytes())
            .finalize();
        Self(d[..HOLDER_LEN].try_into().expect("16 of 32 bytes"))
    }

    /// The digest, as the store keeps it for signed-out sessions.
    pub fn to_bytes(self) -> [u8; HOLDER_LEN] {
        self.0
    }

    pub fn from_bytes(bytes: [u8; HOLDER_LEN]) -> Self {
        Self(bytes)
    }

    /// Whether `presented` (a session token from the request) is this holder's,
    /// in constant time.
    pub fn is_presented_by(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        Self::of_session(presented).0.ct_eq(&self.0).into()
    }
}
const TAG_LEN: usize = 32;

/// What a grant says. Constructed by the issuer; read from a [`VerifiedGrant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    pub viewer: UserId,
    pub camera: CameraId,
    pub epoch: BindingEpoch,
    pub integration: Integration,
    pub expires_at: UnixMillis,
    pub holder: Holder,
}

/// A grant whose tag verified and which had not expired at verification time. It
/// remembers its tag, so the egress door can check that the grant it was handed is
/// the one the request presented (see [`PresentedTag`]).
#[derive(Clone, Copy, Debug)]
pub struct VerifiedGrant {
    grant: Grant,
    tag: [u8; TAG_LEN],
}

impl VerifiedGrant {
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Whether this is the grant whose token the request carried (constant time).
    pub fn is_presented(&self, presented: &PresentedTag) -> bool {
        use subtle::ConstantTimeEq;
        self.tag.ct_eq(&presented.0).into()
    }
}

/// The tag of the grant token a request carried, read straight from the request
/// without any lookup. Whatever a lookup or cache answers, the door compares the
/// answer with this before writing.
#[derive(Clone, Copy)]
pub struct PresentedTag([u8; TAG_LEN]);

impl PresentedTag {
    pub fn of(token: &str) -> Option<Self> {
        if token.len() > 2 * (PAYLOAD_LEN + TAG_LEN) {
            return None;
        }
        let mut buf = [0u8; 2 * (PAYLOAD_LEN + TAG_LEN)];
        let n = URL_SAFE_NO_PAD.decode_slice(token, &mut buf).ok()?;
        let tag = buf[..n].get(PAYLOAD_LEN..)?;
        Some(Self(tag.try_into().ok()?))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("malformed grant")]
    Malformed,
    #[error("grant signature does not verify")]
    BadTag,
    #[error("grant expired")]
    Expired,
}

/// The server's grant-signing key, with its HMAC state keyed once (every media
/// request verifies a grant: the key's inner and outer pads are not rehashed).
#[derive(Clone)]
pub struct GrantKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantKey(<redacted>)")
    }
}

impl GrantKey {
    pub fn random() -> Self {
        Self::new(rand::random())
    }

    fn new(secret: [u8; 32]) -> Self {
        let mac = HmacSha256::new_from_slice(&secret).expect("HMAC takes any key length");
        Self { mac }
    }

    /// Loads the key from `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        load_or_create_secret(path).map(Self::new)
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// Encodes and signs a grant. The result is URL-path safe.
    pub fn sign(&self, g: &Grant) -> String {
        let mut p = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        p.push(VERSION);
        p.extend_from_slice(g.id.as_bytes());
        p.extend_from_slice(g.viewer.as_bytes());
        p.extend_from_slice(g.camera.as_bytes());
        p.extend_from_slice(&g.epoch.0.to_be_bytes());
        p.extend_from_slice(&g.expires_at.0.to_be_bytes());
        p.push(g.integration.code());
        p.extend_from_slice(&g.holder.0);
        let mut mac = self.mac();
        mac.update(&p);
        p.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(p)
    }

    /// Checks a grant's tag (constant time) and expiry.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<VerifiedGrant, GrantError> {
        self.verify_presented(token, now).map(|(v, _)| v)
    }

    /// [`verify`](Self::verify), also handing back the token's tag as the request
    /// carried it (what [`PresentedTag::of`] reads), from the same decoding.
    pub fn verify_presented(
        &self,
        token: &str,
        now: UnixMillis,
    ) -> Result<(VerifiedGrant, PresentedTag), GrantError> {
        if token.len() > 2 * (PAYLOAD_LEN + TAG_LEN) {
            return Err(GrantError::Malformed);
        }
        let mut buf = [0u8; 2 * (PAYLOAD_LEN + TAG_LEN)];
        let n = URL_SAFE_NO_PAD
            .decode_slice(token, &mut buf)
            .map_err(|_| GrantError::Malformed)?;
        let raw = &buf[..n];
        if raw.len() != PAYLOAD_LEN + TAG_LEN || raw[0] != VERSION {
            return Err(GrantError::Malformed);
        }
        let (payload, tag_bytes) = raw.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag_bytes)
            .map_err(|_| GrantError::BadTag)?;
        let tag: [u8; TAG_LEN] = tag_bytes.try_into().expect("length checked");

        let id16 = |at: usize| -> [u8; 16] { payload[at..at + 16].try_into().expect("16 bytes") };
        let u64at = |at: usize| -> [u8; 8] { payload[at..at + 8].try_into().expect("8 bytes") };
        let grant = Grant {
            id: GrantId::from_bytes(id16(1)),
            viewer: UserId::from_bytes(id16(17)),
            camera: CameraId::from_bytes(id16(33)),
            epoch: BindingEpoch(u64::from_be_bytes(u64at(49))),
            expires_at: UnixMillis(i64::from_be_bytes(u64at(57))),
            integration: Integration::from_code(payload[65]).ok_or(GrantError::Malformed)?,
            holder: Holder(payload[66..66 + HOLDER_LEN].try_into().expect("16 bytes")),
        };
        if now >= grant.expires_at {
            return Err(GrantError::Expired);
        }
        Ok((VerifiedGrant { grant, tag }, PresentedTag(tag)))
    }
}

/// Loads a 32-byte secret from `path`, creating a random one (mode 0600) on first use.
pub fn load_or_create_secret(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a 32-byte key", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_private(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// Writes a secret file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: i64) -> Grant {
        Grant {
            id: GrantId::random(),
            viewer: UserId::random(),
            camera: CameraId::random(),
            epoch: BindingEpoch(3),
            integration: Integration::App,
            expires_at: UnixMillis(expires),
            holder: Holder::of_session("session"),
        }
    }

    #[test]
    fn a_grant_names_its_holder() {
        let k = GrantKey::random();
        let v = k.verify(&k.sign(&grant(10_000)), UnixMillis(0)).unwrap();
        assert!(v.grant().holder.is_presented_by("session"));
        assert!(!v.grant().holder.is_presented_by("another session"));
        assert!(!v.grant().holder.is_presented_by(""));
        assert_ne!(Holder::of_session("a"), Holder::of_session("b"));
    }

    #[test]
    fn round_trip() {
        let k = GrantKey::random();
        let g = grant(10_000);
        let v = k.verify(&k.sign(&g), UnixMillis(9_999)).unwrap();
        assert_eq!(*v.grant(), g);
    }

    #[test]
    fn a_grant_knows_whether_it_was_presented() {
        let k = GrantKey::random();
        let (a, b) = (k.sign(&grant(10_000)), k.sign(&grant(10_000)));
        let va = k.verify(&a, UnixMillis(0)).unwrap();
        assert!(va.is_presented(&PresentedTag::of(&a).unwrap()));
        let (vb, presented_b) = k.verify_presented(&b, UnixMillis(0)).unwrap();
        assert!(vb.is_presented(&presented_b) && !va.is_presented(&presented_b));
        assert!(!va.is_presented(&PresentedTag::of(&b).unwrap()));
        assert!(PresentedTag::of("short").is_none());
    }

    #[test]
    fn expired_is_refused() {
        let k = GrantKey::random();
        let t = k.sign(&grant(10_000));
        assert_eq!(
            k.verify(&t, UnixMillis(10_000)).unwrap_err(),
            GrantError::Expired
        );
    }

    #[test]
    fn another_key_is_refused() {
        let t = GrantKey::random().sign(&grant(10_000));
        assert_eq!(
            GrantKey::random().verify(&t, UnixMillis(0)).unwrap_err(),
            GrantError::BadTag
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let k = GrantKey::random();
        let t = k.sign(&grant(10_000));
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            let mut r = raw.clone();
            r[i] ^= 0x01;
            let altered = URL_SAFE_NO_PAD.encode(&r);
            assert!(k.verify(&altered, UnixMillis(0)).is_err(), "byte {i}");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let k = GrantKey::random();
        for s in ["", "a", "!!!!", &"A".repeat(500), &"A".repeat(130)] {
            assert!(k.verify(s, UnixMillis(0)).is_err());
        }
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grant.key");
        let a = GrantKey::load_or_create(&p).unwrap();
        let b = GrantKey::load_or_create(&p).unwrap();
        // The same key: what one signs, the other verifies.
        let token = a.sign(&grant(i64::MAX));
        assert!(b.verify(&token, UnixMillis(0)).is_ok());
        assert!(GrantKey::random().verify(&token, UnixMillis(0)).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
