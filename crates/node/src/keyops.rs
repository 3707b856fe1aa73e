//! The node's keys for `polykey keys`: encrypt to any node (X25519 sealed
//! key + XChaCha20-Poly1305), decrypt with this node's key, sign and verify
//! with Ed25519.

use data_encoding::BASE64;
use polykey_keys::{NodeId, SealedKey, Signature, SymmetricKey};
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

/// Verify a base64 Ed25519 `signature` by `signer` over `message`.
pub fn verify(signer: &NodeId, message: &[u8], signature: &str) -> Result<bool, NodeError> {
    let bytes = BASE64
        .decode(signature.trim().as_bytes())
        .map_err(|_| bad("the signature is not base64"))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| bad("a signature is 64 bytes"))?;
    Ok(polykey_keys::root::verify(signer, message, &Signature(bytes)).is_ok())
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

    /// Sign `message`; the base64 Ed25519 signature.
    pub async fn sign_base64(&self, message: Vec<u8>) -> Result<String, NodeError> {
        Ok(BASE64.encode(&self.sign(message).await?.0))
    }
}
