use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::root::RootKeypair;

/// Number of words in a new recovery code: 24, as the original Polykey
/// makes them (`generateRecoveryCode(24)` in its KeyRing).
pub const WORD_COUNT: usize = CodeLength::TwentyFour.words();

/// The lengths a recovery code may have, as in the original Polykey: 12
/// words (128 bits of entropy) or 24 words (256 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeLength {
    /// 12 words, 128 bits of entropy.
    Twelve,
    /// 24 words, 256 bits of entropy: what new nodes get.
    TwentyFour,
}

impl CodeLength {
    /// Number of words.
    pub const fn words(self) -> usize {
        match self {
            Self::Twelve => 12,
            Self::TwentyFour => 24,
        }
    }

    const fn entropy_bytes(self) -> usize {
        match self {
            Self::Twelve => 16,
            Self::TwentyFour => 32,
        }
    }

    fn from_words(count: usize) -> Option<Self> {
        match count {
            12 => Some(Self::Twelve),
            24 => Some(Self::TwentyFour),
            _ => None,
        }
    }
}

/// A BIP39 recovery code of 12 or 24 words: the one secret that restores a
/// node.
///
/// Its BIP39 seed (PBKDF2-HMAC-SHA512 of the words, empty passphrase), cut to
/// the first 32 bytes, is the Ed25519 seed of the root keypair, for both
/// lengths, as in the original Polykey (`generateDeterministicKeyPair`).
/// Zeroized on drop; Debug is redacted.
pub struct RecoveryCode(bip39::Mnemonic);

/// Why text is not a recovery code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecoveryCodeError {
    /// The code has the wrong number of words.
    #[error("a recovery code has 12 or 24 words, this one has {0}")]
    WordCount(usize),
    /// A word is not in the BIP39 English word list. The word itself is not
    /// echoed: it is part of a secret.
    #[error("word {0} of the recovery code is not a recovery word; check its spelling")]
    UnknownWord(usize),
    /// The words are valid but the checksum does not match.
    #[error("the recovery code's checksum does not match; a word is wrong or out of order")]
    Checksum,
}

impl RecoveryCode {
    /// A fresh random recovery code of [`WORD_COUNT`] (24) words, 256 bits
    /// of entropy.
    pub fn generate() -> Self {
        Self::generate_with_length(CodeLength::TwentyFour)
    }

    /// A fresh random recovery code of the given length.
    pub fn generate_with_length(length: CodeLength) -> Self {
        let mut entropy = Zeroizing::new([0u8; 32]);
        let entropy = &mut entropy[..length.entropy_bytes()];
        crate::random_bytes(entropy);
        match bip39::Mnemonic::from_entropy(entropy) {
            Ok(mnemonic) => Self(mnemonic),
            Err(_) => unreachable!("16 and 32 bytes are valid BIP39 entropy lengths"),
        }
    }

    /// How many words this code has.
    pub fn length(&self) -> CodeLength {
        if self.0.word_count() == 12 {
            CodeLength::Twelve
        } else {
            CodeLength::TwentyFour
        }
    }

    /// The words, space separated. This is the one place the code is shown.
    pub fn expose_secret(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.to_string())
    }

    /// The root keypair this code derives.
    pub fn root_keypair(&self) -> RootKeypair {
        let seed = Zeroizing::new(self.0.to_seed(""));
        let mut ed_seed = Zeroizing::new([0u8; 32]);
        ed_seed.copy_from_slice(&seed[..32]);
        RootKeypair::from_seed(&ed_seed)
    }
}

impl FromStr for RecoveryCode {
    type Err = RecoveryCodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Written straight into one wiped buffer (words lowercased one by
        // one would each leave a copy in freed memory); room enough that
        // it never grows and moves.
        let mut normalized = Zeroizing::new(String::with_capacity(text.len() * 3 + 1));
        for word in text.split_whitespace() {
            if !normalized.is_empty() {
                normalized.push(' ');
            }
            normalized.extend(word.chars().flat_map(char::to_lowercase));
        }
        let count = normalized.split(' ').filter(|w| !w.is_empty()).count();
        // BIP39 also has 15, 18 and 21 words; the original Polykey makes and
        // documents 12 and 24 only, so only those are recovery codes.
        if CodeLength::from_words(count).is_none() {
            return Err(RecoveryCodeError::WordCount(count));
        }
        bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized)
            .map(Self)
            .map_err(|e| match e {
                bip39::Error::UnknownWord(index) => RecoveryCodeError::UnknownWord(index + 1),
                bip39::Error::BadWordCount(n) => RecoveryCodeError::WordCount(n),
                _ => RecoveryCodeError::Checksum,
            })
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A committed test vector: this code must always give this NodeId. It
    /// was cross-checked with an independent implementation (Python hashlib
    /// PBKDF2 + PyNaCl Ed25519) when it was written.
    pub const VECTOR_CODE: &str =
        "abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon art";

    /// The 12-word code of zero entropy; its NodeId is in `tests/vectors.rs`.
    pub const VECTOR_CODE_12: &str = "abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon about";

    #[test]
    fn generated_codes_have_24_words_and_differ() {
        let a = RecoveryCode::generate();
        let b = RecoveryCode::generate();
        assert_eq!(a.expose_secret().split(' ').count(), 24);
        assert_eq!(a.length(), CodeLength::TwentyFour);
        assert_ne!(*a.expose_secret(), *b.expose_secret());
    }

    #[test]
    fn twelve_word_codes_are_generated_parsed_and_kept() {
        let code = RecoveryCode::generate_with_length(CodeLength::Twelve);
        let words = code.expose_secret();
        assert_eq!(words.split(' ').count(), 12);
        let again: RecoveryCode = words.parse().unwrap();
        assert_eq!(again.length(), CodeLength::Twelve);
        assert_eq!(*again.expose_secret(), *words);
        assert_eq!(
            again.root_keypair().node_id(),
            code.root_keypair().node_id()
        );
        let vector: RecoveryCode = VECTOR_CODE_12.parse().unwrap();
        assert_eq!(vector.length(), CodeLength::Twelve);
    }

    #[test]
    fn only_12_or_24_words_are_a_recovery_code() {
        // 15, 18 and 21 words are BIP39 lengths, but no Polykey makes them.
        let fifteen = "abandon ".repeat(14) + "ability";
        for (text, count) in [
            ("abandon ".repeat(11), 11),
            (fifteen, 15),
            ("abandon ".repeat(23), 23),
            ("abandon ".repeat(25), 25),
        ] {
            let err = text.parse::<RecoveryCode>().unwrap_err();
            assert_eq!(err, RecoveryCodeError::WordCount(count));
            assert!(err.to_string().contains("12 or 24 words"), "{err}");
        }
    }

    #[test]
    fn a_wrong_checksum_word_is_refused_in_both_lengths() {
        for good in [VECTOR_CODE_12, VECTOR_CODE] {
            let last = good.rsplit(' ').next().unwrap();
            let bad = format!("{} abandon", good.strip_suffix(last).unwrap().trim_end());
            let err = bad.parse::<RecoveryCode>().unwrap_err();
            assert_eq!(err, RecoveryCodeError::Checksum);
            assert!(err.to_string().contains("checksum"), "{err}");
            assert!(!err.to_string().contains("abandon"));
        }
    }

    #[test]
    fn same_code_gives_same_node_id() {
        let code: RecoveryCode = VECTOR_CODE.parse().unwrap();
        let again: RecoveryCode = VECTOR_CODE.to_uppercase().parse().unwrap();
        assert_eq!(
            code.root_keypair().node_id(),
            again.root_keypair().node_id()
        );
    }

    #[test]
    fn parse_errors_are_distinct_and_do_not_echo_words() {
        assert_eq!(
            "abandon art".parse::<RecoveryCode>().unwrap_err(),
            RecoveryCodeError::WordCount(2)
        );
        let typo = VECTOR_CODE.replacen("abandon", "abandn", 1);
        let err = typo.parse::<RecoveryCode>().unwrap_err();
        assert_eq!(err, RecoveryCodeError::UnknownWord(1));
        assert!(!err.to_string().contains("abandn"));
        let swapped = VECTOR_CODE.replace("art", "zoo");
        assert_eq!(
            swapped.parse::<RecoveryCode>().unwrap_err(),
            RecoveryCodeError::Checksum
        );
    }

    #[test]
    fn debug_is_redacted() {
        let code: RecoveryCode = VECTOR_CODE.parse().unwrap();
        assert!(!format!("{code:?}").contains("abandon"));
    }
}
