use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead::{SymmetricKey, KEY_LEN};
use crate::node_id::NodeId;
use crate::root::{x25519_public, RootKeypair};

const INFO: &[u8] = b"polykey/envelope/v1";

/// A symmetric key sealed to a node's root key.
///
/// An ephemeral X25519 key agrees a secret with the node's X25519 key (the
/// Montgomery form of its Ed25519 key); HKDF-SHA256 turns it into the key that
/// seals the payload key. Only the holder of the root private key opens it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedKey {
    /// The ephemeral X25519 public key.
    pub ephemeral_public: [u8; 32],
    /// `nonce || ciphertext || tag` of the payload key.
    pub sealed: Vec<u8>,
}

/// Why a sealed key could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The recipient's NodeId is not a valid public key.
    #[error("the recipient is not a valid node key")]
    InvalidRecipient,
    /// The ephemeral key is a low-order point: the envelope was forged.
    #[error("the sealed key is malformed")]
    Malformed,
    /// The root key does not open it: it was sealed to another node, or altered.
    #[error("the sealed key was not sealed to this node, or was altered")]
    WrongKey,
}

fn kek(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &NodeId,
    context: &[u8],
) -> SymmetricKey {
    let salt = [ephemeral.as_slice(), recipient.as_bytes()].concat();
    let info = [INFO, context].concat();
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // HKDF-SHA256 can expand up to 8160 bytes; 32 always succeeds.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared).expand(&info, out.as_mut());
    SymmetricKey::from_bytes(*out)
}

impl SealedKey {
    /// Seal `key` so only `recipient` can open it; `context` is bound as
    /// associated data and must be given again to open.
    pub fn seal(
        key: &SymmetricKey,
        recipient: &NodeId,
        context: &[u8],
    ) -> Result<Self, EnvelopeError> {
        let recipient_x = x25519_public(recipient).map_err(|_| EnvelopeError::InvalidRecipient)?;
        let mut eph_bytes = Zeroizing::new([0u8; 32]);
        crate::random_bytes(eph_bytes.as_mut());
        let ephemeral = x25519_dalek::StaticSecret::from(*eph_bytes);
        let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
        let shared = ephemeral.diffie_hellman(&recipient_x);
        if !shared.was_contributory() {
            return Err(EnvelopeError::InvalidRecipient);
        }
        let sealed = kek(shared.as_bytes(), &ephemeral_public, recipient, context)
            .seal(key.expose_secret(), context);
        Ok(Self {
            ephemeral_public,
            sealed,
        })
    }

    /// Open with the recipient's root keypair.
    pub fn open(&self, keys: &RootKeypair, context: &[u8]) -> Result<SymmetricKey, EnvelopeError> {
        let shared = keys
            .x25519_secret()
            .diffie_hellman(&x25519_dalek::PublicKey::from(self.ephemeral_public));
        if !shared.was_contributory() {
            return Err(EnvelopeError::Malformed);
        }
        let plain = kek(
            shared.as_bytes(),
            &self.ephemeral_public,
            &keys.node_id(),
            context,
        )
        .open(&self.sealed, context)
        .map_err(|_| EnvelopeError::WrongKey)?;
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::Malformed)?;
        Ok(SymmetricKey::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens() {
        let alice = RootKeypair::from_seed(&[1; 32]);
        let bob = RootKeypair::from_seed(&[2; 32]);
        let key = SymmetricKey::generate();
        let sealed = SealedKey::seal(&key, &alice.node_id(), b"db").unwrap();
        assert_eq!(
            sealed.open(&alice, b"db").unwrap().expose_secret(),
            key.expose_secret()
        );
        assert_eq!(
            sealed.open(&bob, b"db").unwrap_err(),
            EnvelopeError::WrongKey
        );
        assert_eq!(
            sealed.open(&alice, b"vault").unwrap_err(),
            EnvelopeError::WrongKey
        );
    }

    #[test]
    fn low_order_ephemeral_is_rejected() {
        let alice = RootKeypair::from_seed(&[1; 32]);
        let sealed = SealedKey {
            ephemeral_public: [0; 32],
            sealed: vec![0; 72],
        };
        assert_eq!(
            sealed.open(&alice, b"db").unwrap_err(),
            EnvelopeError::Malformed
        );
    }
}
