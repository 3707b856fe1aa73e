use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::node_id::NodeId;

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// Why a signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The NodeId is not a valid Ed25519 public key.
    #[error("the NodeId is not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// The signature does not match the message and key.
    #[error("the signature does not match")]
    Mismatch,
}

/// The node's root identity: an Ed25519 keypair.
///
/// The private half never leaves this type except wrapped
/// ([`crate::WrappedRootKey`]) or as the X25519 secret used for envelopes.
pub struct RootKeypair {
    signing: SigningKey,
}

impl RootKeypair {
    /// The keypair whose Ed25519 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte Ed25519 seed, for wrapping under a password.
    pub fn expose_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// This node's public name.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_bytes(self.signing.verifying_key().to_bytes())
    }

    /// Sign `message` with the root key.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    /// The X25519 secret that corresponds to this Ed25519 key (RFC 8032
    /// expanded scalar), for Diffie-Hellman with [`x25519_public`].
    /// The seed, its SHA-512 and the scalar are wiped once used.
    pub fn x25519_secret(&self) -> x25519_dalek::StaticSecret {
        let seed = self.expose_seed();
        let mut hash = Sha512::digest(seed.as_slice());
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&hash[..32]);
        hash.as_mut_slice().zeroize();
        x25519_dalek::StaticSecret::from(*scalar)
    }

    /// A 32-byte key for `purpose` that only the root secret yields
    /// (HKDF-SHA256 over the seed), such as the key that binds the store to
    /// this root key. Different purposes give unrelated keys.
    pub fn derive_key(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let seed = self.expose_seed();
        let info = [DERIVE_INFO, purpose].concat();
        let mut out = Zeroizing::new([0u8; 32]);
        // HKDF-SHA256 expands up to 8160 bytes; 32 always succeeds.
        let _ = Hkdf::<Sha256>::new(None, seed.as_slice()).expand(&info, out.as_mut());
        out
    }
}

/// Prefix of every [`RootKeypair::derive_key`] purpose.
const DERIVE_INFO: &[u8] = b"polykey/root-derived/v1/";

impl fmt::Debug for RootKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootKeypair({}, <redacted>)", self.node_id())
    }
}

/// Verify `signature` over `message` by the node `signer`.
pub fn verify(
    signer: &NodeId,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(signer.as_bytes())
        .map_err(|_| SignatureError::InvalidPublicKey)?;
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
        .map_err(|_| SignatureError::Mismatch)
}

/// The X25519 public key of a node, from its Ed25519 public key (birational
/// map to Montgomery form).
pub fn x25519_public(node: &NodeId) -> Result<x25519_dalek::PublicKey, SignatureError> {
    let key =
        VerifyingKey::from_bytes(node.as_bytes()).map_err(|_| SignatureError::InvalidPublicKey)?;
    Ok(x25519_dalek::PublicKey::from(
        key.to_montgomery().to_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let keys = RootKeypair::from_seed(&[3; 32]);
        let sig = keys.sign(b"claim");
        assert_eq!(verify(&keys.node_id(), b"claim", &sig), Ok(()));
        assert_eq!(
            verify(&keys.node_id(), b"claim!", &sig),
            Err(SignatureError::Mismatch)
        );
        let other = RootKeypair::from_seed(&[4; 32]);
        assert_eq!(
            verify(&other.node_id(), b"claim", &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_root() {
        let a = RootKeypair::from_seed(&[5; 32]);
        let b = RootKeypair::from_seed(&[6; 32]);
        assert_eq!(*a.derive_key(b"db"), *a.derive_key(b"db"));
        assert_ne!(*a.derive_key(b"db"), *a.derive_key(b"dc"));
        assert_ne!(*a.derive_key(b"db"), *b.derive_key(b"db"));
        assert_ne!(*a.derive_key(b"db"), *a.expose_seed());
    }

    #[test]
    fn x25519_halves_agree() {
        let a = RootKeypair::from_seed(&[5; 32]);
        let b = RootKeypair::from_seed(&[6; 32]);
        let ab = a
            .x25519_secret()
            .diffie_hellman(&x25519_public(&b.node_id()).unwrap());
        let ba = b
            .x25519_secret()
            .diffie_hellman(&x25519_public(&a.node_id()).unwrap());
        assert_eq!(ab.as_bytes(), ba.as_bytes());
        assert_eq!(
            x25519_dalek::PublicKey::from(&a.x25519_secret()).as_bytes(),
            x25519_public(&a.node_id()).unwrap().as_bytes()
        );
    }

    #[test]
    fn debug_shows_only_public_half() {
        let keys = RootKeypair::from_seed(&[9; 32]);
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.node_id().to_string()));
        assert!(shown.contains("redacted"));
    }
}
