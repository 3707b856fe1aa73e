//! The node's keys for `polykey keys`: encrypt to any node (X25519 sealed
//! key + XChaCha20-Poly1305), decrypt with this node's key, sign and verify
//! files.
//!
//! A user signature is an SSH signature (SSHSIG) in the namespace `file`, as
//! `ssh-keygen -Y sign -n file` makes, never a bare Ed25519 signature: the
//! root key also signs link and revocation claims (bare Ed25519 over the
//! claim's bytes) and commits (SSHSIG in the namespace `git`), and a user
//! can be talked into signing any file. SSHSIG signs `"SSHSIG" ‖ namespace ‖
//! … ‖ SHA-512(file)`, which no claim's signing input (base64url text) can
//! equal, and the namespace keeps it apart from commit signatures.

use data_encoding::BASE64;
use polykey_keys::sshsig::{self, SshSigError};
use polykey_keys::{NodeId, SealedKey, SymmetricKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::NodeError;
use crate::node::Node;

const CONTEXT: &[u8] = b"polykey keys encrypt v1";

#[derive(Serialize, Deserialize)]
struct Envelope {
    to: NodeId,
    key: SealedKey,
    #[serde(rename = "ciphertext")]
    ciphertext: String,
}

fn bad(what: &str) -> NodeError {
    NodeError::Invalid(what.to_owned())
}

/// Encrypt `plaintext` so only `recipient` can read it. The result is text
/// (JSON with base64).
pub fn encrypt_for(recipient: &NodeId, plaintext: &[u8]) -> Result<String, NodeError> {
    let key = SymmetricKey::generate();
    let sealed = SealedKey::seal(&key, recipient, CONTEXT)
        .map_err(|_| bad("that NodeId cannot receive encrypted data"))?;
    let envelope = Envelope {
        to: *recipient,
        key: sealed,
        ciphertext: BASE64.encode(&key.seal(plaintext, CONTEXT)),
    };
    serde_json::to_string(&envelope).map_err(|e| NodeError::Internal(e.to_string()))
}

/// The SSHSIG namespace of user signatures (`polykey keys sign`), the one
/// `ssh-keygen -Y sign -n file` uses; commits are signed in
/// [`sshsig::GIT_NAMESPACE`].
pub const USER_SIGNATURE_NAMESPACE: &str = sshsig::FILE_NAMESPACE;

/// Verify an SSH `signature` by `signer` over `message` in the namespace
/// `file`, armored (as [`Node::sign_file`] makes) or unarmored (the base64
/// between the armor lines, on one line: see [`sshsig::sign_unarmored`]). `Ok(false)` when it does not match the file
/// or was made by another node; an error when the text is no such signature
/// at all (a bare Ed25519 signature, a commit signature).
pub fn verify(signer: &NodeId, message: &[u8], signature: &str) -> Result<bool, NodeError> {
    match sshsig::verify_armored_or_unarmored(signature, USER_SIGNATURE_NAMESPACE, message) {
        Ok(by) => Ok(by == *signer),
        Err(SshSigError::WrongSigner | SshSigError::Signature(_)) => Ok(false),
        Err(SshSigError::Malformed) => Err(bad(
            "not an SSH signature: `polykey keys sign` writes one \
             (-----BEGIN SSH SIGNATURE-----), as `ssh-keygen -Y sign -n file` does",
        )),
        Err(SshSigError::TooLong) => Err(bad("the signature is too long to be an SSH signature")),
        Err(SshSigError::WrongNamespace { found }) => Err(NodeError::Invalid(format!(
            "this SSH signature was made in the namespace \"{found}\" (\"git\" is a commit), \
             not \"{USER_SIGNATURE_NAMESPACE}\": it is not a `polykey keys sign` signature"
        ))),
        Err(SshSigError::Unsupported(what)) => Err(NodeError::Invalid(format!(
            "unsupported SSH signature ({what}); Polykey signatures are ssh-ed25519 with sha512"
        ))),
    }
}

impl Node {
    /// Decrypt what [`encrypt_for`] made for this node.
    pub async fn decrypt(&self, envelope: String) -> Result<Zeroizing<Vec<u8>>, NodeError> {
        self.with_vaults(move |s| {
            let envelope: Envelope =
                serde_json::from_str(envelope.trim()).map_err(|_| bad("not encrypted data"))?;
            if envelope.to != s.keys.node_id() {
                return Err(bad("this was encrypted for another node"));
            }
            let key = envelope
                .key
                .open(&s.keys, CONTEXT)
                .map_err(|_| bad("the data was altered or is not for this node"))?;
            let ciphertext = BASE64
                .decode(envelope.ciphertext.as_bytes())
                .map_err(|_| bad("not encrypted data"))?;
            let plain = key
                .open(&ciphertext, CONTEXT)
                .map_err(|_| bad("the data was altered"))?;
            Ok(plain)
        })
        .await
    }

    /// Sign a file's bytes as the user: an armored SSH signature in the
    /// namespace `file`, which `ssh-keygen -Y verify -n file` checks against
    /// [`sshsig::ssh_public_key`] of this NodeId.
    pub async fn sign_file(&self, message: Vec<u8>) -> Result<String, NodeError> {
        self.with_vaults(move |s| Ok(sshsig::sign(&s.keys, USER_SIGNATURE_NAMESPACE, &message)))
            .await
    }

    /// The name the CLI and the client API call: the same armored SSH
    /// signature as [`Node::sign_file`]. It no longer returns a bare Ed25519
    /// signature (base64): that made the root key an oracle for claim
    /// signatures.
    pub async fn sign_base64(&self, message: Vec<u8>) -> Result<String, NodeError> {
        self.sign_file(message).await
    }
}
