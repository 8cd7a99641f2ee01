//! HLS segment encryption, RFC 8216 §4.3.2.4 `METHOD=AES-128`: AES-128-CBC over
//! the whole segment with PKCS#7 padding, the IV given explicitly in the
//! playlist's `EXT-X-KEY` (see [`crate::playlist::KeyRef`]).
//!
//! Why: the design makes caches safe by making their mistakes harmless. A
//! segment is encrypted under its camera's key for the current binding epoch,
//! and the key URL is bound to the viewer's grant, so a segment that any cache,
//! CDN or bug hands to the wrong viewer decrypts to garbage that no decoder
//! shows. Public caches may then hold segments freely. Keys and IVs are chosen
//! by the caller (the server owns key rotation); this module only transforms
//! bytes, with the RustCrypto `aes` and `cbc` crates.

use aes::Aes128;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use bytes::Bytes;

use crate::MediaError;

type Enc = cbc::Encryptor<Aes128>;
type Dec = cbc::Decryptor<Aes128>;

/// Encrypts a whole segment: AES-128-CBC, PKCS#7 padding (output length is the
/// next multiple of 16 above `plain.len()`).
pub fn encrypt_segment(key: &[u8; 16], iv: &[u8; 16], plain: &[u8]) -> Bytes {
    Bytes::from(Enc::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain))
}

/// Decrypts a segment made by [`encrypt_segment`]. Fails on a length that is
/// not a positive multiple of 16 or on bad padding; note that a wrong key passes
/// the padding check about once in 256 tries, so a success is no proof of the
/// right key (the in-band provenance is).
pub fn decrypt_segment(
    key: &[u8; 16],
    iv: &[u8; 16],
    cipher: &[u8],
) -> Result<Vec<u8>, MediaError> {
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
        return Err(MediaError::Decrypt(
            "length is not a positive multiple of 16",
        ));
    }
    Dec::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(cipher)
        .map_err(|_| MediaError::Decrypt("bad padding (wrong key or IV?)"))
}

/// The IV RFC 8216 §5.2 implies when `EXT-X-KEY` has no IV attribute: the
/// media sequence number as a 128-bit big-endian integer. Hearth writes IVs
/// explicitly; this is for callers that want the conventional value.
pub fn sequence_iv(media_sequence: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&media_sequence.to_be_bytes());
    iv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::tests::noise;

    const KEY: [u8; 16] = *b"0123456789abcdef";
    const IV: [u8; 16] = [7; 16];

    #[test]
    fn known_answer_nist_sp800_38a_cbc() {
        // F.2.1 CBC-AES128.Encrypt, first block; PKCS#7 then adds one full padding block.
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
        let plain = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a,
        ];
        let c = encrypt_segment(&key, &iv, &plain);
        assert_eq!(c.len(), 32);
        assert_eq!(
            &c[..16],
            &[
                0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9,
                0x19, 0x7d
            ]
        );
        assert_eq!(decrypt_segment(&key, &iv, &c).unwrap(), plain);
    }

    #[test]
    fn round_trip_all_lengths() {
        for len in [0usize, 1, 15, 16, 17, 188, 188 * 7, 100_000] {
            let plain = noise(len as u64, len);
            let c = encrypt_segment(&KEY, &IV, &plain);
            assert_eq!(c.len(), (len / 16 + 1) * 16, "len {len}");
            if len > 0 {
                assert_ne!(&c[..len.min(16)], &plain[..len.min(16)]);
            }
            assert_eq!(decrypt_segment(&KEY, &IV, &c).unwrap(), plain);
        }
    }

    #[test]
    fn wrong_key_or_iv_never_gives_the_plaintext() {
        let plain = noise(1, 5000);
        let c = encrypt_segment(&KEY, &IV, &plain);
        let mut other = KEY;
        other[0] ^= 1;
        assert_ne!(decrypt_segment(&other, &IV, &c).ok(), Some(plain.clone()));
        // A wrong IV garbles the first block only (CBC), and never yields the plaintext.
        let mut iv2 = IV;
        iv2[3] ^= 0x80;
        let d = decrypt_segment(&KEY, &iv2, &c).unwrap();
        assert_ne!(d[..16], plain[..16]);
        assert_eq!(d[16..], plain[16..]);
    }

    #[test]
    fn malformed_ciphertext_is_an_error_not_a_panic() {
        let c = encrypt_segment(&KEY, &IV, b"hello world, this is a segment");
        for n in 0..c.len() {
            assert!(decrypt_segment(&KEY, &IV, &c[..n]).is_err(), "len {n}");
        }
        let mut errors = 0;
        for seed in 0..2000u64 {
            let junk = noise(seed, 16 * (seed as usize % 5) + usize::from(seed % 7 == 0));
            errors += usize::from(decrypt_segment(&KEY, &IV, &junk).is_err());
        }
        assert!(errors > 1800, "random blocks almost never unpad: {errors}");
    }

    #[test]
    fn sequence_iv_is_big_endian() {
        let iv = sequence_iv(0x0102);
        assert_eq!(iv[..14], [0; 14]);
        assert_eq!(iv[14..], [1, 2]);
    }
}
