//! Secrets Hearth must read back: a pulled camera's RTSP source (its URLs, user
//! name and password). Passwords of people are hashed (`password`); a camera's
//! password cannot be, since Hearth has to present it to the camera.
//!
//! Each secret is sealed with AES-256-GCM under a key derived from the master key
//! (`HMAC(master, "hearth camera source v1")`), so the database alone (a backup,
//! a leaked file) reveals nothing. The camera's id is the associated data: a
//! sealed blob copied onto another camera's row does not open, so a mix-up in
//! the store cannot point one household's camera at another's source.
//!
//! Layout: version byte `1`, a random 96-bit nonce, the ciphertext and its
//! 16-byte tag. The AEAD is aws-lc-rs's (already built for WebRTC's DTLS).

use crate::keys::MediaKeys;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use hearth_model::CameraId;

const VERSION: u8 = 1;

/// Sealing failed, or a blob did not open (wrong key, wrong camera, altered).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealed secret does not open (altered, or another camera's)")]
    Open,
    #[error("the system random source failed")]
    Random,
}

/// Seals and opens one kind of camera secret.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<redacted>)")
    }
}

impl SecretBox {
    /// The box for pulled cameras' sources.
    pub fn camera_sources(keys: &MediaKeys) -> Self {
        let key = keys.derive(b"hearth camera source v1");
        Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key")),
        }
    }

    pub fn seal(&self, camera: CameraId, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(camera.as_bytes()),
                &mut body,
            )
            .map_err(|_| SealError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, camera: CameraId, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let [VERSION, rest @ ..] = sealed else {
            return Err(SealError::Open);
        };
        if rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let clear = self
            .key
            .open_in_place(nonce, Aad::from(camera.as_bytes()), &mut body)
            .map_err(|_| SealError::Open)?;
        Ok(clear.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_for_its_camera_and_key_and_unaltered() {
        let keys = MediaKeys::random();
        let b = SecretBox::camera_sources(&keys);
        let (a, other) = (CameraId::random(), CameraId::random());
        let sealed = b.seal(a, b"rtsp password").unwrap();
        assert!(
            !sealed.windows(8).any(|w| w == b"password"),
            "sealed, not encoded"
        );
        assert_eq!(b.open(a, &sealed).unwrap(), b"rtsp password");
        assert!(b.open(other, &sealed).is_err(), "another camera's row");
        let stranger = SecretBox::camera_sources(&MediaKeys::random());
        assert!(stranger.open(a, &sealed).is_err(), "another master key");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(b.open(a, &bad).is_err(), "byte {i} altered");
        }
        assert!(b.open(a, &sealed[..10]).is_err());
        assert!(b.open(a, &[]).is_err());
        assert_ne!(sealed, b.seal(a, b"rtsp password").unwrap(), "fresh nonce");
    }
}
