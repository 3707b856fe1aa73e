use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::aead::{SymmetricKey, KEY_LEN};
use crate::secret::Password;

/// Upper bounds accepted from a stored file, so a corrupt or hostile file
/// cannot make unlocking allocate unbounded memory or spin for hours.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// Argon2id parameters, stored beside the ciphertext so they can change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Always `"argon2id"`; named so the format can grow.
    pub algorithm: String,
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism.
    pub parallelism: u32,
    /// Random salt, base64 in the stored form.
    #[serde(with = "crate::wrapped::base64")]
    pub salt: Vec<u8>,
}

/// Why a key could not be derived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KdfError {
    /// The stored parameters are outside what this version accepts.
    #[error("unsupported key-derivation parameters ({0})")]
    Unsupported(&'static str),
}

impl KdfParams {
    /// The default profile: Argon2id, 64 MiB, 3 passes, 1 lane, fresh salt.
    pub fn default_profile() -> Self {
        Self::with_cost(64 * 1024, 3, 1)
    }

    /// A cheap profile for tests only: it keeps the format and code path but
    /// offers no real protection against guessing.
    pub fn fast_for_tests() -> Self {
        Self::with_cost(256, 1, 1)
    }

    fn with_cost(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        let mut salt = vec![0u8; 16];
        crate::random_bytes(&mut salt);
        Self {
            algorithm: "argon2id".into(),
            memory_kib,
            iterations,
            parallelism,
            salt,
        }
    }

    /// Derive the key-encryption key for `password`.
    pub fn derive(&self, password: &Password) -> Result<SymmetricKey, KdfError> {
        if self.algorithm != "argon2id" {
            return Err(KdfError::Unsupported("algorithm"));
        }
        if self.memory_kib > MAX_MEMORY_KIB
            || self.iterations > MAX_ITERATIONS
            || self.parallelism > MAX_PARALLELISM
        {
            return Err(KdfError::Unsupported("cost too high"));
        }
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|_| KdfError::Unsupported("cost out of range"))?;
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(
                password.expose_secret().as_bytes(),
                &self.salt,
                out.as_mut(),
            )
            .map_err(|_| KdfError::Unsupported("salt length"))?;
        Ok(SymmetricKey::from_bytes(*out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_password_and_salt_give_same_key() {
        let params = KdfParams::fast_for_tests();
        let a = params.derive(&"pw".into()).unwrap();
        let b = params.derive(&"pw".into()).unwrap();
        let c = params.derive(&"pw2".into()).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), c.expose_secret());
    }

    #[test]
    fn default_profile_matches_the_design() {
        let params = KdfParams::default_profile();
        assert_eq!(
            (params.memory_kib, params.iterations, params.parallelism),
            (65536, 3, 1)
        );
        assert_eq!(params.salt.len(), 16);
    }

    #[test]
    fn hostile_parameters_are_refused() {
        let mut params = KdfParams::fast_for_tests();
        params.memory_kib = u32::MAX;
        assert!(params.derive(&"pw".into()).is_err());
        let mut params = KdfParams::fast_for_tests();
        params.algorithm = "md5".into();
        assert!(params.derive(&"pw".into()).is_err());
        let mut params = KdfParams::fast_for_tests();
        params.salt.clear();
        assert!(params.derive(&"pw".into()).is_err());
    }
}
