//! Generating passwords and passphrases, and estimating how strong one is.

use zeroize::Zeroizing;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const SYMBOLS: &str = "!@#$%^&*()-_=+[]{};:,.<>/?~";
/// Characters easily confused when read aloud or copied by hand.
const AMBIGUOUS: &str = "Il1O0o";

/// What a generated password may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordRules {
    /// Number of characters, 4 to 128.
    pub length: usize,
    /// Include a–z.
    pub lowercase: bool,
    /// Include A–Z.
    pub uppercase: bool,
    /// Include 0–9.
    pub digits: bool,
    /// Include punctuation.
    pub symbols: bool,
    /// Leave out look-alike characters (I, l, 1, O, 0, o).
    pub avoid_ambiguous: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            length: 20,
            lowercase: true,
            uppercase: true,
            digits: true,
            symbols: true,
            avoid_ambiguous: false,
        }
    }
}

/// Why rules could not be met.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    /// Length out of range.
    #[error("length must be between {0} and {1}")]
    Length(usize, usize),
    /// No character class chosen.
    #[error("choose at least one kind of character")]
    NoClasses,
}

/// A uniformly random index below `bound` (rejection sampling, no modulo bias).
fn random_below(bound: usize) -> usize {
    let bound = bound as u32;
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let mut bytes = [0u8; 4];
        polykey_keys::random_bytes(&mut bytes);
        let value = u32::from_le_bytes(bytes);
        if value < zone {
            return (value % bound) as usize;
        }
    }
}

/// A random password following `rules`, with at least one character of each
/// chosen kind.
pub fn password(rules: &PasswordRules) -> Result<Zeroizing<String>, GenerateError> {
    if !(4..=128).contains(&rules.length) {
        return Err(GenerateError::Length(4, 128));
    }
    let classes: Vec<Vec<char>> = [
        (rules.lowercase, LOWER),
        (rules.uppercase, UPPER),
        (rules.digits, DIGITS),
        (rules.symbols, SYMBOLS),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, set)| {
        set.chars()
            .filter(|c| !(rules.avoid_ambiguous && AMBIGUOUS.contains(*c)))
            .collect()
    })
    .collect();
    if classes.is_empty() {
        return Err(GenerateError::NoClasses);
    }
    let pool: Vec<char> = classes.concat();
    let mut chars: Vec<char> = classes
        .iter()
        .map(|class| class[random_below(class.len())])
        .collect();
    while chars.len() < rules.length {
        chars.push(pool[random_below(pool.len())]);
    }
    // Fisher–Yates, so the guaranteed characters are not always first.
    for i in (1..chars.len()).rev() {
        chars.swap(i, random_below(i + 1));
    }
    let out = Zeroizing::new(chars.iter().collect());
    zeroize::Zeroize::zeroize(&mut chars);
    Ok(out)
}

/// A passphrase of `words` words (3 to 20) from the 2,048-word BIP39 list
/// (11 bits each), joined by `separator`.
pub fn passphrase(words: usize, separator: &str) -> Result<Zeroizing<String>, GenerateError> {
    if !(3..=20).contains(&words) {
        return Err(GenerateError::Length(3, 20));
    }
    let list = bip39::Language::English.word_list();
    let chosen: Vec<&str> = (0..words).map(|_| list[random_below(list.len())]).collect();
    Ok(Zeroizing::new(chosen.join(separator)))
}

/// How hard a password is to guess.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Strength {
    /// Estimated entropy in bits.
    pub bits: f64,
    /// 0 (very weak) to 4 (very strong).
    pub score: u8,
}

const COMMON: &[&str] = &[
    "password", "123456", "12345678", "qwerty", "letmein", "welcome", "admin", "iloveyou",
    "monkey", "dragon", "football", "baseball", "abc123", "111111", "sunshine", "princess",
    "master", "login", "passw0rd", "trustno1", "shadow", "superman", "hello", "freedom",
    "whatever", "qazwsx", "654321",
];

/// Estimate a password's strength: the character pool it draws from times
/// its length, discounted for repeats, runs and common passwords. A rough
/// guide for a meter, not a guarantee.
pub fn strength(password: &str) -> Strength {
    let chars: Vec<char> = password.chars().collect();
    if chars.is_empty() {
        return Strength {
            bits: 0.0,
            score: 0,
        };
    }
    let lower = password.to_lowercase();
    if COMMON
        .iter()
        .any(|c| lower.contains(c) && c.len() * 2 >= chars.len())
    {
        return Strength {
            bits: 5.0,
            score: 0,
        };
    }
    let mut pool = 0u32;
    if chars.iter().any(char::is_ascii_lowercase) {
        pool += 26
    }
    if chars.iter().any(char::is_ascii_uppercase) {
        pool += 26
    }
    if chars.iter().any(char::is_ascii_digit) {
        pool += 10
    }
    if chars.iter().any(|c| c.is_ascii_punctuation() || *c == ' ') {
        pool += 33
    }
    if chars.iter().any(|c| !c.is_ascii()) {
        pool += 100
    }
    // Characters that repeat or continue a run (aaa, abc, 123) add little.
    let mut effective = 1.0;
    for pair in chars.windows(2) {
        let step = pair[1] as i64 - pair[0] as i64;
        effective += if step == 0 || step.abs() == 1 {
            0.25
        } else {
            1.0
        };
    }
    let bits = effective * f64::from(pool.max(1)).log2();
    let score = match bits {
        b if b < 28.0 => 0,
        b if b < 36.0 => 1,
        b if b < 60.0 => 2,
        b if b < 80.0 => 3,
        _ => 4,
    };
    Strength { bits, score }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_the_rules_and_differ() {
        let rules = PasswordRules {
            length: 32,
            ..PasswordRules::default()
        };
        let a = password(&rules).unwrap();
        let b = password(&rules).unwrap();
        assert_eq!(a.chars().count(), 32);
        assert_ne!(*a, *b);
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| SYMBOLS.contains(c)));

        let digits_only = PasswordRules {
            length: 12,
            lowercase: false,
            uppercase: false,
            symbols: false,
            avoid_ambiguous: true,
            ..rules
        };
        let pin = password(&digits_only).unwrap();
        assert!(
            pin.chars()
                .all(|c| c.is_ascii_digit() && c != '0' && c != '1'),
            "{}",
            *pin
        );
        let none = PasswordRules {
            lowercase: false,
            uppercase: false,
            digits: false,
            symbols: false,
            ..rules
        };
        assert_eq!(password(&none), Err(GenerateError::NoClasses));
        assert_eq!(
            password(&PasswordRules { length: 2, ..rules }),
            Err(GenerateError::Length(4, 128))
        );
    }

    #[test]
    fn passphrases_use_the_word_list() {
        let phrase = passphrase(6, "-").unwrap();
        let words: Vec<&str> = phrase.split('-').collect();
        assert_eq!(words.len(), 6);
        let list = bip39::Language::English.word_list();
        assert!(words.iter().all(|w| list.contains(w)));
        assert!(passphrase(2, " ").is_err());
    }

    #[test]
    fn strength_ranks_weak_below_strong() {
        assert_eq!(strength("").score, 0);
        assert_eq!(strength("password1").score, 0);
        assert_eq!(strength("aaaaaaaaaaaa").score, 0);
        assert!(strength("Tr0ub4dor&3").score >= 2);
        let generated = password(&PasswordRules::default()).unwrap();
        assert_eq!(strength(&generated).score, 4);
        assert!(strength("correct horse battery staple").bits > strength("correcthorse").bits);
    }
}
