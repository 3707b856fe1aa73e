use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
#[cfg(target_arch = "x86_64")]
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroizing;

use crate::secret::Plain;

/// Length of a symmetric key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the random nonce that prefixes every sealed value.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag that ends every sealed value.
pub const TAG_LEN: usize = 16;

/// On x86-64, values of at least this many bytes are sealed and opened in
/// bulk: by `ring`'s ChaCha20-Poly1305 under the XChaCha20 subkey of the
/// nonce, which makes the very bytes `chacha20poly1305`'s
/// XChaCha20-Poly1305 makes, in about half its time (3.9 against 7.3 ms
/// per 10 MiB here). Smaller values, most records, and every value on
/// other machines, are sealed by `chacha20poly1305` itself.
pub const BULK_LEN: usize = 4096;

/// Why sealed bytes could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AeadError {
    /// The bytes are shorter than a nonce and a tag: they were never sealed by us.
    #[error("sealed data is truncated")]
    Truncated,
    /// Authentication failed: wrong key, wrong associated data, or altered bytes.
    #[error("sealed data failed authentication (wrong key or tampered data)")]
    Authentication,
}

/// A 256-bit XChaCha20-Poly1305 key: zeroized on drop, `<redacted>` in Debug.
///
/// Sealed values are laid out as `nonce (24) || ciphertext || tag (16)`, with
/// a fresh random nonce for every call, so one key can seal many values.
pub struct SymmetricKey(Zeroizing<[u8; KEY_LEN]>);

impl SymmetricKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        crate::random_bytes(key.as_mut());
        Self(key)
    }

    /// Wrap existing key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Borrow the raw key bytes (to wrap them under another key).
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }

    /// XChaCha20-Poly1305 as ChaCha20-Poly1305 (RFC 8439) under the
    /// subkey HChaCha20 derives from the key and the nonce's first 16
    /// bytes, with the nonce's last 8 bytes after four zero bytes: the
    /// construction `chacha20poly1305` implements, done by `ring`.
    #[cfg(target_arch = "x86_64")]
    fn bulk_cipher(&self, nonce: &[u8]) -> (LessSafeKey, Nonce) {
        let mut derived = chacha20::hchacha::<chacha20::cipher::consts::U10>(
            self.0.as_ref().into(),
            nonce[..16].into(),
        );
        let mut subkey = Zeroizing::new([0u8; KEY_LEN]);
        subkey.copy_from_slice(&derived);
        zeroize::Zeroize::zeroize(derived.as_mut_slice());
        let mut short = [0u8; 12];
        short[4..].copy_from_slice(&nonce[16..NONCE_LEN]);
        let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice())
            .expect("a ChaCha20 key is 32 bytes");
        (LessSafeKey::new(key), Nonce::assume_unique_for_key(short))
    }

    /// Encrypt `plaintext` in place under `nonce`: its tag, or `None` for
    /// an input beyond what either implementation takes (256 GiB).
    fn encrypt(&self, nonce: &[u8], associated_data: &[u8], plaintext: &mut [u8]) -> Option<Tag> {
        #[cfg(target_arch = "x86_64")]
        if plaintext.len() >= BULK_LEN {
            let (key, nonce) = self.bulk_cipher(nonce);
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::from(associated_data), plaintext)
                .ok()?;
            return Some(Tag::clone_from_slice(tag.as_ref()));
        }
        self.cipher()
            .encrypt_in_place_detached(XNonce::from_slice(nonce), associated_data, plaintext)
            .ok()
    }

    /// Decrypt `ciphertext` in place if `tag` authenticates it; where it
    /// does not, nothing of it is left decrypted.
    fn decrypt(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        ciphertext: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        #[cfg(target_arch = "x86_64")]
        if ciphertext.len() >= BULK_LEN {
            let (key, nonce) = self.bulk_cipher(nonce);
            let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| AeadError::Truncated)?;
            // ring zeroes what it decrypted when the tag does not match.
            return key
                .open_in_place_separate_tag(
                    nonce,
                    Aad::from(associated_data),
                    ring::aead::Tag::from(tag),
                    ciphertext,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| AeadError::Authentication);
        }
        // Checks the tag before it decrypts.
        self.cipher()
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                associated_data,
                ciphertext,
                Tag::from_slice(tag),
            )
            .map_err(|_| AeadError::Authentication)
    }

    /// Encrypt and authenticate `plaintext`, binding it to `associated_data`.
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        // Encrypted where it lies in the output: one copy of the plaintext.
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        sealed.resize(NONCE_LEN, 0);
        sealed.extend_from_slice(plaintext);
        self.seal_in_place(&mut sealed, 0, associated_data);
        sealed
    }

    /// Seal `buffer[start + NONCE_LEN..]` where it lies: the nonce is
    /// written over the [`NONCE_LEN`] bytes at `start` (the caller leaves
    /// room) and the tag appended, so `buffer[start..]` becomes what
    /// [`SymmetricKey::seal`] makes of that plaintext. Bytes before `start`
    /// are left as they are: a value sealed under two keys in turn (a
    /// vault's object, then the store's record) is built in one buffer,
    /// the inner layer at a later `start`, with no copy between layers.
    /// A `buffer` too short to hold the nonce is left empty.
    pub fn seal_in_place(&self, buffer: &mut Vec<u8>, start: usize, associated_data: &[u8]) {
        let Some(nonce) = buffer.get_mut(start..start.saturating_add(NONCE_LEN)) else {
            zeroize::Zeroize::zeroize(buffer);
            buffer.clear();
            return;
        };
        crate::random_bytes(nonce);
        let (head, plaintext) = buffer.split_at_mut(start + NONCE_LEN);
        match self.encrypt(&head[start..], associated_data, plaintext) {
            Some(tag) => buffer.extend_from_slice(&tag),
            // Encryption only fails for inputs beyond 256 GiB, which no
            // caller can hold in memory; nothing of the plaintext is left.
            None => {
                zeroize::Zeroize::zeroize(buffer);
                buffer.clear();
            }
        }
    }

    /// [`SymmetricKey::open`] of bytes this caller owns, decrypted where
    /// they lie (no second buffer of the plaintext's size).
    pub fn open_in_place(
        &self,
        sealed: Vec<u8>,
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AeadError> {
        Ok(self
            .open_plain(Plain::new(sealed), associated_data)?
            .into_vec())
    }

    /// [`SymmetricKey::open_in_place`] of the bytes `sealed` holds, left
    /// where they lie: the nonce is passed over, not moved out of the way,
    /// so a second layer sealed inside opens the same way, and the whole is
    /// moved at most once, by [`Plain::into_vec`]. On failure nothing is
    /// left decrypted and the buffer is wiped.
    pub fn open_plain(
        &self,
        mut sealed: Plain,
        associated_data: &[u8],
    ) -> Result<Plain, AeadError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(AeadError::Truncated);
        }
        let body = sealed.len() - TAG_LEN;
        let (head, tag) = sealed.split_at_mut(body);
        let (nonce, ciphertext) = head.split_at_mut(NONCE_LEN);
        self.decrypt(nonce, associated_data, ciphertext, tag)?;
        sealed.truncate(body);
        sealed.advance(NONCE_LEN);
        Ok(sealed)
    }

    /// Verify and decrypt bytes made by [`SymmetricKey::seal`] with the same
    /// associated data. The plaintext is returned in a zeroizing buffer.
    pub fn open(
        &self,
        sealed: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AeadError> {
        self.open_in_place(sealed.to_vec(), associated_data)
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_with_same_key_and_associated_data() {
        let key = SymmetricKey::generate();
        let sealed = key.seal(b"hello", b"table\0key");
        assert_eq!(
            key.open(&sealed, b"table\0key").unwrap().as_slice(),
            b"hello"
        );
    }

    #[test]
    fn two_layers_sealed_in_one_buffer_open_one_after_the_other() {
        let (outer, inner) = (SymmetricKey::generate(), SymmetricKey::generate());
        for len in [0usize, 1, 64, 100_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 11) as u8).collect();
            let mut buffer = vec![0u8; 2 * NONCE_LEN];
            buffer.extend_from_slice(&plain);
            inner.seal_in_place(&mut buffer, NONCE_LEN, b"inner");
            if len > 0 {
                assert_ne!(
                    &buffer[2 * NONCE_LEN..2 * NONCE_LEN + len],
                    plain.as_slice()
                );
            }
            outer.seal_in_place(&mut buffer, 0, b"outer");
            assert_eq!(buffer.len(), 2 * (NONCE_LEN + TAG_LEN) + len);
            let once = outer.open(&buffer, b"outer").unwrap();
            assert_eq!(inner.open(&once, b"inner").unwrap().as_slice(), plain);
            // Each layer is bound to its own key and associated data.
            assert!(inner.open(&buffer, b"inner").is_err());
            assert!(inner.open(&once, b"outer").is_err());
        }
        // Two nonces drawn, not one reused.
        let mut buffer = vec![0u8; 2 * NONCE_LEN + 5];
        inner.seal_in_place(&mut buffer, NONCE_LEN, b"");
        outer.seal_in_place(&mut buffer, 0, b"");
        assert_ne!(buffer[..NONCE_LEN], buffer[NONCE_LEN..2 * NONCE_LEN]);
        // No room for the nonce: nothing is sealed and nothing is left.
        let mut short = vec![7u8; NONCE_LEN - 1];
        outer.seal_in_place(&mut short, 0, b"");
        assert!(short.is_empty());
    }

    #[test]
    fn opened_in_place_as_opened_and_refused_as_refused() {
        let key = SymmetricKey::generate();
        for len in [0usize, 1, 63, 64, 65, 4096, 100_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = key.seal(&plain, b"ad");
            assert_eq!(sealed.len(), NONCE_LEN + len + TAG_LEN);
            assert_eq!(key.open(&sealed, b"ad").unwrap().as_slice(), plain);
            assert_eq!(
                key.open_in_place(sealed.clone(), b"ad").unwrap().as_slice(),
                plain
            );
            assert_eq!(
                key.open_in_place(sealed.clone(), b"other"),
                Err(AeadError::Authentication)
            );
            let mut flipped = sealed.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert_eq!(
                key.open_in_place(flipped, b"ad"),
                Err(AeadError::Authentication)
            );
        }
        assert_eq!(
            key.open_in_place(vec![0; NONCE_LEN + TAG_LEN - 1], b"ad"),
            Err(AeadError::Truncated)
        );
    }

    /// The bulk path makes and opens exactly what `chacha20poly1305`'s
    /// XChaCha20-Poly1305 does, on both sides of its threshold and for
    /// every alignment of the associated data.
    #[test]
    fn bulk_values_are_sealed_as_the_reference_seals_them_and_open_either_way() {
        let key = SymmetricKey::from_bytes([0x42; KEY_LEN]);
        let reference = key.cipher();
        for len in [0usize, 15, BULK_LEN - 1, BULK_LEN, BULK_LEN + 17, 1 << 20] {
            for ad_len in [0usize, 5, 16, 40, 64] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 13 + ad_len) as u8).collect();
                let ad: Vec<u8> = (0..ad_len).map(|i| i as u8).collect();
                let sealed = key.seal(&plain, &ad);
                let (nonce, rest) = sealed.split_at(NONCE_LEN);
                let mut expected = plain.clone();
                let tag = reference
                    .encrypt_in_place_detached(XNonce::from_slice(nonce), &ad, &mut expected)
                    .unwrap();
                expected.extend_from_slice(&tag);
                assert_eq!(rest, expected.as_slice(), "{len} bytes, {ad_len} of ad");
                let mut by_reference = rest[..len].to_vec();
                reference
                    .decrypt_in_place_detached(
                        XNonce::from_slice(nonce),
                        &ad,
                        &mut by_reference,
                        Tag::from_slice(&rest[len..]),
                    )
                    .unwrap();
                assert_eq!(by_reference, plain);
                assert_eq!(key.open(&sealed, &ad).unwrap().as_slice(), plain);
            }
        }
    }

    #[test]
    fn a_bulk_value_refused_leaves_nothing_decrypted() {
        let key = SymmetricKey::generate();
        let plain = vec![0xAB; BULK_LEN * 3];
        let mut sealed = key.seal(&plain, b"ad");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let (head, tag) = sealed.split_at_mut(last + 1 - TAG_LEN);
        let (nonce, ciphertext) = head.split_at_mut(NONCE_LEN);
        assert_eq!(
            key.decrypt(nonce, b"ad", ciphertext, tag),
            Err(AeadError::Authentication)
        );
        assert!(!ciphertext.windows(16).any(|w| w == [0xAB; 16]));
    }

    #[test]
    fn different_associated_data_fails() {
        let key = SymmetricKey::generate();
        let sealed = key.seal(b"hello", b"a");
        assert_eq!(key.open(&sealed, b"b"), Err(AeadError::Authentication));
    }

    #[test]
    fn flipped_byte_fails_and_truncation_is_reported() {
        let key = SymmetricKey::generate();
        let mut sealed = key.seal(b"hello", b"");
        sealed[NONCE_LEN + 1] ^= 1;
        assert_eq!(key.open(&sealed, b""), Err(AeadError::Authentication));
        assert_eq!(key.open(&sealed[..10], b""), Err(AeadError::Truncated));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = SymmetricKey::generate().seal(b"hello", b"");
        assert_eq!(
            SymmetricKey::generate().open(&sealed, b""),
            Err(AeadError::Authentication)
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = SymmetricKey::generate();
        assert_ne!(key.seal(b"same", b""), key.seal(b"same", b""));
    }

    #[test]
    fn debug_is_redacted() {
        let key = SymmetricKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{key:?}"), "SymmetricKey(<redacted>)");
    }
}
