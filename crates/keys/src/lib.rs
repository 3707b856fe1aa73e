//! Cryptographic ground floor of a Polykey node.
//!
//! This crate owns the node's root identity (an Ed25519 keypair derived from a
//! 12- or 24-word BIP39 recovery code), the [`NodeId`] that names it, the Argon2id
//! password wrapping of the private key, the X25519 envelope that wraps other
//! keys to the root key, and XChaCha20-Poly1305 sealing with associated data.
//!
//! It deliberately does no IO: callers decide where wrapped keys and sealed
//! bytes live. Every secret value is held in a type from [`secret`] that
//! zeroizes on drop and never prints its contents.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// XChaCha20-Poly1305 symmetric keys and sealing with associated data.
pub mod aead;
/// Wrapping a symmetric key to the root key through X25519 and HKDF.
pub mod envelope;
/// Argon2id parameters, their floor, and the key-encryption key they derive.
pub mod kdf;
/// The public name of a node: its Ed25519 public key in multibase base32hex.
pub mod node_id;
/// The BIP39 recovery code (12 or 24 words) and the seed it gives.
pub mod recovery;
/// The node's root Ed25519 keypair: signing, verification, X25519 conversion.
pub mod root;
/// Newtypes for secret material: zeroized on drop, redacted in Debug.
pub mod secret;
/// OpenSSH signatures (SSHSIG), as `git verify-commit` checks them.
pub mod sshsig;
/// Checks for names people read: control and invisible characters.
pub mod text;
/// The root private key wrapped under a password, as stored on disk.
pub mod wrapped;

pub use aead::{AeadError, SymmetricKey};
pub use envelope::{EnvelopeError, SealedKey};
pub use kdf::{KdfError, KdfFloor, KdfParams};
pub use node_id::{NodeId, NodeIdError};
pub use recovery::{CodeLength, RecoveryCode, RecoveryCodeError};
pub use root::{RootKeypair, Signature, SignatureError};
pub use secret::{wipe, Password, Plain, SecretBytes};
pub use wrapped::{UnwrapError, WrappedRootKey};

/// Fill `buf` with bytes from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    use rand_core::RngCore;
    rand_core::OsRng.fill_bytes(buf);
}
