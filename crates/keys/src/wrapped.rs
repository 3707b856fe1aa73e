use zeroize::Zeroizing;

use crate::aead::SymmetricKey;
use crate::kdf::{KdfError, KdfParams};
use crate::node_id::NodeId;
use crate::root::RootKeypair;
use crate::secret::Password;

/// Current version of the wrapped root key format.
pub const FORMAT_VERSION: u32 = 1;
const ASSOCIATED_DATA_PREFIX: &[u8] = b"polykey/root-key/v1:";

/// The root private key sealed under a password-derived key.
///
/// This is what a node stores on disk: the public NodeId (so a locked node can
/// say who it is), the Argon2id parameters, and the sealed Ed25519 seed bound
/// to that NodeId as associated data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedRootKey {
    /// Format version, currently 1.
    pub version: u32,
    /// The public identity whose private key is sealed here.
    pub node_id: NodeId,
    /// How the key-encryption key is derived from the password.
    pub kdf: KdfParams,
    /// `nonce || XChaCha20-Poly1305(seed) || tag`, base64.
    #[serde(with = "base64")]
    pub sealed_seed: Vec<u8>,
}

/// Why a wrapped root key could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnwrapError {
    /// The password (or key-encryption key) does not open the key.
    #[error("wrong password")]
    WrongPassword,
    /// The stored parameters cannot be used.
    #[error(transparent)]
    Kdf(#[from] KdfError),
    /// The file opened but holds a key for a different NodeId, or a newer format.
    #[error("the key file is damaged or from a newer version of Polykey")]
    Corrupt,
}

impl WrappedRootKey {
    /// Seal `keys` under `password` with the given KDF parameters.
    pub fn wrap(keys: &RootKeypair, password: &Password, kdf: KdfParams) -> Result<Self, KdfError> {
        let kek = kdf.derive(password)?;
        Ok(Self::wrap_with_kek(keys, &kek, kdf))
    }

    /// Seal `keys` under an already derived key-encryption key.
    pub fn wrap_with_kek(keys: &RootKeypair, kek: &SymmetricKey, kdf: KdfParams) -> Self {
        let node_id = keys.node_id();
        let sealed_seed = kek.seal(keys.expose_seed().as_ref(), &associated_data(&node_id));
        Self {
            version: FORMAT_VERSION,
            node_id,
            kdf,
            sealed_seed,
        }
    }

    /// Derive the key-encryption key for `password` with the stored parameters.
    pub fn derive_kek(&self, password: &Password) -> Result<SymmetricKey, KdfError> {
        self.kdf.derive(password)
    }

    /// Open with `password`.
    pub fn unwrap(&self, password: &Password) -> Result<RootKeypair, UnwrapError> {
        let kek = self.derive_kek(password)?;
        self.unwrap_with_kek(&kek)
    }

    /// Open with an already derived key-encryption key.
    pub fn unwrap_with_kek(&self, kek: &SymmetricKey) -> Result<RootKeypair, UnwrapError> {
        if self.version != FORMAT_VERSION {
            return Err(UnwrapError::Corrupt);
        }
        let seed = kek
            .open(&self.sealed_seed, &associated_data(&self.node_id))
            .map_err(|_| UnwrapError::WrongPassword)?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.as_slice()
                .try_into()
                .map_err(|_| UnwrapError::Corrupt)?,
        );
        let keys = RootKeypair::from_seed(&seed);
        if keys.node_id() != self.node_id {
            return Err(UnwrapError::Corrupt);
        }
        Ok(keys)
    }
}

fn associated_data(node_id: &NodeId) -> Vec<u8> {
    [ASSOCIATED_DATA_PREFIX, node_id.as_bytes()].concat()
}

/// Serde helper: bytes as standard base64 text.
pub(crate) mod base64 {
    use data_encoding::BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped() -> (RootKeypair, WrappedRootKey) {
        let keys = RootKeypair::from_seed(&[1; 32]);
        let wrapped =
            WrappedRootKey::wrap(&keys, &"hunter2".into(), KdfParams::fast_for_tests()).unwrap();
        (keys, wrapped)
    }

    #[test]
    fn right_password_opens_wrong_one_does_not() {
        let (keys, wrapped) = wrapped();
        assert_eq!(
            wrapped.unwrap(&"hunter2".into()).unwrap().node_id(),
            keys.node_id()
        );
        assert_eq!(
            wrapped.unwrap(&"hunter3".into()).unwrap_err(),
            UnwrapError::WrongPassword
        );
    }

    #[test]
    fn swapping_in_another_node_id_is_detected() {
        let (_, mut wrapped) = wrapped();
        wrapped.node_id = RootKeypair::from_seed(&[2; 32]).node_id();
        assert_eq!(
            wrapped.unwrap(&"hunter2".into()).unwrap_err(),
            UnwrapError::WrongPassword
        );
    }

    #[test]
    fn stored_form_round_trips_and_hides_the_seed() {
        let (_, wrapped) = wrapped();
        let json = serde_json::to_string(&wrapped).unwrap();
        assert!(json.contains("\"argon2id\""));
        let back: WrappedRootKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wrapped);
        assert!(!json.contains(&data_encoding::BASE64.encode(&[1u8; 32])));
    }

    #[test]
    fn newer_format_is_reported_as_corrupt() {
        let (_, mut wrapped) = wrapped();
        wrapped.version = 99;
        assert_eq!(
            wrapped.unwrap(&"hunter2".into()).unwrap_err(),
            UnwrapError::Corrupt
        );
    }
}
