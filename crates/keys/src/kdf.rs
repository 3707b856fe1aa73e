use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::aead::{SymmetricKey, KEY_LEN};
use crate::secret::Password;

/// Upper bounds accepted from a stored file, so a corrupt or hostile file
/// cannot make unlocking allocate unbounded memory or spin for hours.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// Memory cost of the default profile: 64 MiB.
pub const DEFAULT_MEMORY_KIB: u32 = 64 * 1024;
/// Passes of the default profile.
pub const DEFAULT_ITERATIONS: u32 = 3;
/// Memory cost of the fast test profile: 256 KiB.
pub const FAST_MEMORY_KIB: u32 = 256;
/// Passes of the fast test profile.
pub const FAST_ITERATIONS: u32 = 1;
/// The shortest salt read or written (the profiles make 16 bytes).
pub const MIN_SALT_LEN: usize = 16;

/// The weakest Argon2id cost read from or written to a key file: a file
/// below it is refused, so a weakened file (a test switch left on, a file
/// planted by someone who wants the password cheap to guess) never unlocks
/// quietly and is never written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfFloor {
    /// Least memory cost in KiB.
    pub memory_kib: u32,
    /// Least number of passes.
    pub iterations: u32,
}

/// The floor of release builds: the default profile (64 MiB, 3 passes).
pub const RELEASE_FLOOR: KdfFloor = floor_for(false);

/// The floor in effect in this build: [`RELEASE_FLOOR`], lowered to the fast
/// test profile only in builds with debug assertions (tests, debug builds),
/// never in a release build.
pub const FLOOR: KdfFloor = floor_for(cfg!(debug_assertions));

/// The floor for a build with or without debug assertions.
pub const fn floor_for(debug_assertions: bool) -> KdfFloor {
    if debug_assertions {
        KdfFloor {
            memory_kib: FAST_MEMORY_KIB,
            iterations: FAST_ITERATIONS,
        }
    } else {
        KdfFloor {
            memory_kib: DEFAULT_MEMORY_KIB,
            iterations: DEFAULT_ITERATIONS,
        }
    }
}

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
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum KdfError {
    /// The stored parameters are outside what this version accepts.
    #[error("unsupported key-derivation parameters ({0})")]
    Unsupported(&'static str),
    /// The parameters are weaker than the floor in effect.
    #[error(
        "the password protection is weaker than this version accepts: Argon2id with \
         {memory_kib} KiB and {iterations} passes, at least {min_memory_kib} KiB and \
         {min_iterations} passes are required"
    )]
    BelowFloor {
        /// The parameters' memory cost in KiB.
        memory_kib: u32,
        /// The parameters' passes.
        iterations: u32,
        /// The floor's memory cost in KiB.
        min_memory_kib: u32,
        /// The floor's passes.
        min_iterations: u32,
    },
}

impl KdfParams {
    /// The default profile: Argon2id, 64 MiB, 3 passes, 1 lane, fresh salt.
    pub fn default_profile() -> Self {
        Self::with_cost(DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, 1)
    }

    /// A cheap profile for tests only: it keeps the format and code path but
    /// offers no real protection against guessing. Below [`RELEASE_FLOOR`],
    /// so a release build refuses to write or read a key file with it.
    pub fn fast_for_tests() -> Self {
        Self::with_cost(FAST_MEMORY_KIB, FAST_ITERATIONS, 1)
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

    /// Check that this version can use these parameters and that they are
    /// at least `floor`; nothing is derived.
    pub fn check(&self, floor: KdfFloor) -> Result<(), KdfError> {
        if self.algorithm != "argon2id" {
            return Err(KdfError::Unsupported("algorithm"));
        }
        if self.memory_kib > MAX_MEMORY_KIB
            || self.iterations > MAX_ITERATIONS
            || self.parallelism > MAX_PARALLELISM
        {
            return Err(KdfError::Unsupported("cost too high"));
        }
        if self.memory_kib < floor.memory_kib || self.iterations < floor.iterations {
            return Err(KdfError::BelowFloor {
                memory_kib: self.memory_kib,
                iterations: self.iterations,
                min_memory_kib: floor.memory_kib,
                min_iterations: floor.iterations,
            });
        }
        if self.parallelism == 0 {
            return Err(KdfError::Unsupported("parallelism"));
        }
        if self.salt.len() < MIN_SALT_LEN {
            return Err(KdfError::Unsupported("salt too short"));
        }
        Ok(())
    }

    /// Derive the key-encryption key for `password`, refusing parameters
    /// below the [`FLOOR`] in effect.
    pub fn derive(&self, password: &Password) -> Result<SymmetricKey, KdfError> {
        self.derive_with_floor(password, FLOOR)
    }

    /// Derive the key-encryption key for `password`, refusing parameters
    /// below `floor`.
    pub fn derive_with_floor(
        &self,
        password: &Password,
        floor: KdfFloor,
    ) -> Result<SymmetricKey, KdfError> {
        self.check(floor)?;
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
    fn the_release_floor_is_the_default_profile() {
        let default = KdfParams::default_profile();
        assert_eq!(
            RELEASE_FLOOR,
            KdfFloor {
                memory_kib: default.memory_kib,
                iterations: default.iterations,
            }
        );
        assert_eq!(RELEASE_FLOOR, floor_for(false));
        assert_eq!(default.check(RELEASE_FLOOR), Ok(()));
        // Only a build with debug assertions lowers it, to the test profile.
        let fast = KdfParams::fast_for_tests();
        assert_eq!(
            floor_for(true),
            KdfFloor {
                memory_kib: fast.memory_kib,
                iterations: fast.iterations,
            }
        );
        assert_eq!(FLOOR, floor_for(cfg!(debug_assertions)));
    }

    #[test]
    fn parameters_below_the_release_floor_are_refused() {
        let fast = KdfParams::fast_for_tests();
        let refused = KdfError::BelowFloor {
            memory_kib: 256,
            iterations: 1,
            min_memory_kib: 65536,
            min_iterations: 3,
        };
        assert_eq!(fast.check(RELEASE_FLOOR), Err(refused.clone()));
        assert!(matches!(
            fast.derive_with_floor(&"pw".into(), RELEASE_FLOOR),
            Err(e) if e == refused
        ));
        let message = refused.to_string();
        assert!(message.contains("65536 KiB") && message.contains("3 passes"));
        // One dimension short is enough to refuse.
        let mut one_pass = KdfParams::default_profile();
        one_pass.iterations = 2;
        assert!(matches!(
            one_pass.check(RELEASE_FLOOR),
            Err(KdfError::BelowFloor { .. })
        ));
        let mut less_memory = KdfParams::default_profile();
        less_memory.memory_kib = 64 * 1024 - 1;
        assert!(matches!(
            less_memory.check(RELEASE_FLOOR),
            Err(KdfError::BelowFloor { .. })
        ));
    }

    #[test]
    fn parameters_below_the_floor_in_effect_are_refused_even_in_tests() {
        let mut weak = KdfParams::fast_for_tests();
        weak.memory_kib = 8;
        assert!(matches!(
            weak.derive(&"pw".into()),
            Err(KdfError::BelowFloor { memory_kib: 8, .. })
        ));
        let mut short_salt = KdfParams::fast_for_tests();
        short_salt.salt.truncate(8);
        assert_eq!(
            short_salt.derive(&"pw".into()).err(),
            Some(KdfError::Unsupported("salt too short"))
        );
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
