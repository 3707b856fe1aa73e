use zeroize::Zeroizing;

use crate::aead::SymmetricKey;
use crate::kdf::{KdfError, KdfFloor, KdfParams, FLOOR};
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
    /// Seal `keys` under `password` with the given KDF parameters, which must
    /// be at least the [`FLOOR`] in effect.
    pub fn wrap(keys: &RootKeypair, password: &Password, kdf: KdfParams) -> Result<Self, KdfError> {
        let kek = kdf.derive(password)?;
        Self::wrap_with_kek(keys, &kek, kdf)
    }

    /// Seal `keys` under an already derived key-encryption key; `kdf` (what
    /// is stored) must be at least the [`FLOOR`] in effect.
    pub fn wrap_with_kek(
        keys: &RootKeypair,
        kek: &SymmetricKey,
        kdf: KdfParams,
    ) -> Result<Self, KdfError> {
        kdf.check(FLOOR)?;
        let node_id = keys.node_id();
        let sealed_seed = kek.seal(keys.expose_seed().as_ref(), &associated_data(&node_id));
        Ok(Self {
            version: FORMAT_VERSION,
            node_id,
            kdf,
            sealed_seed,
        })
    }

    /// Derive the key-encryption key for `password` with the stored
    /// parameters, refusing them below the [`FLOOR`] in effect.
    pub fn derive_kek(&self, password: &Password) -> Result<SymmetricKey, KdfError> {
        self.kdf.derive(password)
    }

    /// Open with `password`; stored parameters below the [`FLOOR`] in effect
    /// are refused before any work.
    pub fn unwrap(&self, password: &Password) -> Result<RootKeypair, UnwrapError> {
        self.unwrap_with_floor(password, FLOOR)
    }

    /// Open with `password`, refusing stored parameters below `floor`.
    pub fn unwrap_with_floor(
        &self,
        password: &Password,
        floor: KdfFloor,
    ) -> Result<RootKeypair, UnwrapError> {
        let kek = self.kdf.derive_with_floor(password, floor)?;
        self.open_seed(&kek)
    }

    /// Open with an already derived key-encryption key (from the OS
    /// keyring); a file whose stored parameters are below the [`FLOOR`] in
    /// effect is refused all the same.
    pub fn unwrap_with_kek(&self, kek: &SymmetricKey) -> Result<RootKeypair, UnwrapError> {
        self.kdf.check(FLOOR)?;
        self.open_seed(kek)
    }

    fn open_seed(&self, kek: &SymmetricKey) -> Result<RootKeypair, UnwrapError> {
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

    /// A key file as it could be stored by hand (or by an older build): the
    /// seed sealed under a key derived with `kdf`, whatever its cost.
    fn stored_with(kdf: KdfParams) -> (RootKeypair, String) {
        let keys = RootKeypair::from_seed(&[1; 32]);
        let params =
            argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32)).unwrap();
        let mut kek = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(b"hunter2", &kdf.salt, &mut kek)
            .unwrap();
        let kek = SymmetricKey::from_bytes(kek);
        let wrapped = WrappedRootKey {
            version: FORMAT_VERSION,
            node_id: keys.node_id(),
            sealed_seed: kek.seal(
                keys.expose_seed().as_ref(),
                &associated_data(&keys.node_id()),
            ),
            kdf,
        };
        (keys, serde_json::to_string(&wrapped).unwrap())
    }

    #[test]
    fn a_stored_file_below_the_floor_is_refused_when_read() {
        let mut weak = KdfParams::fast_for_tests();
        weak.memory_kib = 8;
        let (_, json) = stored_with(weak);
        let stored: WrappedRootKey = serde_json::from_str(&json).unwrap();
        let err = stored.unwrap(&"hunter2".into()).unwrap_err();
        assert!(
            matches!(
                err,
                UnwrapError::Kdf(KdfError::BelowFloor { memory_kib: 8, .. })
            ),
            "{err:?}"
        );
        // The keyring path (a key already derived) refuses it too.
        let kek = SymmetricKey::from_bytes([0; 32]);
        assert!(matches!(
            stored.unwrap_with_kek(&kek),
            Err(UnwrapError::Kdf(KdfError::BelowFloor { .. }))
        ));
    }

    #[test]
    fn a_test_profile_file_is_refused_under_the_release_floor() {
        let (keys, json) = stored_with(KdfParams::fast_for_tests());
        let stored: WrappedRootKey = serde_json::from_str(&json).unwrap();
        assert!(matches!(
            stored.unwrap_with_floor(&"hunter2".into(), crate::kdf::RELEASE_FLOOR),
            Err(UnwrapError::Kdf(KdfError::BelowFloor {
                memory_kib: 256,
                iterations: 1,
                min_memory_kib: 65536,
                min_iterations: 3,
            }))
        ));
        // Debug builds (these tests) still read it under their own floor.
        if cfg!(debug_assertions) {
            assert_eq!(
                stored.unwrap(&"hunter2".into()).unwrap().node_id(),
                keys.node_id()
            );
        }
    }

    #[test]
    fn parameters_below_the_floor_are_never_written() {
        let keys = RootKeypair::from_seed(&[1; 32]);
        let mut weak = KdfParams::fast_for_tests();
        weak.memory_kib = 8;
        assert!(matches!(
            WrappedRootKey::wrap(&keys, &"hunter2".into(), weak.clone()),
            Err(KdfError::BelowFloor { .. })
        ));
        let kek = SymmetricKey::from_bytes([0; 32]);
        assert!(matches!(
            WrappedRootKey::wrap_with_kek(&keys, &kek, weak),
            Err(KdfError::BelowFloor { .. })
        ));
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
