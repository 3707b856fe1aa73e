//! Time-based one-time passwords (RFC 6238) from `otpauth://` URIs or bare
//! base32 secrets, as authenticator apps show them.

use hmac::{Hmac, Mac};

/// Why a TOTP setting was rejected. Never echoes the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    /// The secret is not base32.
    #[error("the TOTP secret is not valid base32")]
    BadSecret,
    /// The URI is not an `otpauth://totp/` URI or has bad parameters.
    #[error("invalid TOTP setting: {0}")]
    BadParameter(&'static str),
}

/// The HMAC hash a TOTP uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpAlgorithm {
    /// HMAC-SHA1, the default nearly everywhere.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// A TOTP generator.
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    secret: Vec<u8>,
    /// Hash algorithm.
    pub algorithm: TotpAlgorithm,
    /// Number of digits (6 to 8).
    pub digits: u32,
    /// Time step in seconds.
    pub period: u64,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Totp({:?}, {} digits, {} s, <redacted>)",
            self.algorithm, self.digits, self.period
        )
    }
}

impl Drop for Totp {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

fn decode_base32(text: &str) -> Result<Vec<u8>, TotpError> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let unpadded = cleaned.trim_end_matches('=');
    let secret = data_encoding::BASE32_NOPAD
        .decode(unpadded.as_bytes())
        .map_err(|_| TotpError::BadSecret)?;
    if secret.is_empty() {
        return Err(TotpError::BadSecret);
    }
    Ok(secret)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Totp {
    /// A TOTP with raw secret bytes and explicit parameters.
    pub fn new(
        secret: Vec<u8>,
        algorithm: TotpAlgorithm,
        digits: u32,
        period: u64,
    ) -> Result<Self, TotpError> {
        if !(6..=8).contains(&digits) {
            return Err(TotpError::BadParameter("digits must be 6, 7 or 8"));
        }
        if period == 0 || period > 3600 {
            return Err(TotpError::BadParameter("period must be 1 to 3600 seconds"));
        }
        if secret.is_empty() {
            return Err(TotpError::BadSecret);
        }
        Ok(Self {
            secret,
            algorithm,
            digits,
            period,
        })
    }

    /// Parse an `otpauth://totp/…?secret=…` URI or a bare base32 secret.
    pub fn parse(text: &str) -> Result<Self, TotpError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("otpauth://") else {
            return Self::new(decode_base32(text)?, TotpAlgorithm::Sha1, 6, 30);
        };
        let rest = rest.strip_prefix("totp/").ok_or(TotpError::BadParameter(
            "only otpauth://totp/ URIs are supported",
        ))?;
        let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
        let (mut secret, mut algorithm, mut digits, mut period) =
            (None, TotpAlgorithm::Sha1, 6, 30);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key.to_ascii_lowercase().as_str() {
                "secret" => secret = Some(decode_base32(&value)?),
                "algorithm" => {
                    algorithm = match value.to_ascii_uppercase().as_str() {
                        "SHA1" => TotpAlgorithm::Sha1,
                        "SHA256" => TotpAlgorithm::Sha256,
                        "SHA512" => TotpAlgorithm::Sha512,
                        _ => {
                            return Err(TotpError::BadParameter(
                                "algorithm must be SHA1, SHA256 or SHA512",
                            ))
                        }
                    }
                }
                "digits" => {
                    digits = value
                        .parse()
                        .map_err(|_| TotpError::BadParameter("digits is not a number"))?
                }
                "period" => {
                    period = value
                        .parse()
                        .map_err(|_| TotpError::BadParameter("period is not a number"))?
                }
                _ => {}
            }
        }
        Self::new(
            secret.ok_or(TotpError::BadParameter("the URI has no secret"))?,
            algorithm,
            digits,
            period,
        )
    }

    /// The code for Unix time `time` (seconds).
    pub fn code_at(&self, time: u64) -> String {
        let counter = (time / self.period).to_be_bytes();
        let digest = match self.algorithm {
            TotpAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(&self.secret, &counter),
            TotpAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(&self.secret, &counter),
            TotpAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(&self.secret, &counter),
        };
        // RFC 4226 dynamic truncation.
        let offset = usize::from(digest[digest.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        let code = u64::from(binary) % 10u64.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// Seconds until the code for `time` expires.
    pub fn seconds_left(&self, time: u64) -> u64 {
        self.period - time % self.period
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the test vectors, 8 digits, for each algorithm.
    #[test]
    fn rfc_6238_vectors() {
        let sha1 = Totp::new(b"12345678901234567890".to_vec(), TotpAlgorithm::Sha1, 8, 30).unwrap();
        let sha256 = Totp::new(
            b"12345678901234567890123456789012".to_vec(),
            TotpAlgorithm::Sha256,
            8,
            30,
        )
        .unwrap();
        let sha512 = Totp::new(
            b"1234567890123456789012345678901234567890123456789012345678901234".to_vec(),
            TotpAlgorithm::Sha512,
            8,
            30,
        )
        .unwrap();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, a, b, c) in vectors {
            assert_eq!(sha1.code_at(time), a, "SHA1 at {time}");
            assert_eq!(sha256.code_at(time), b, "SHA256 at {time}");
            assert_eq!(sha512.code_at(time), c, "SHA512 at {time}");
        }
    }

    #[test]
    fn parses_uris_and_bare_secrets() {
        // "12345678901234567890" in base32.
        let base32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let uri = format!(
            "otpauth://totp/Example:alice%40example.com?secret={base32}&issuer=Example&digits=8"
        );
        let totp = Totp::parse(&uri).unwrap();
        assert_eq!(
            (totp.digits, totp.period, totp.algorithm),
            (8, 30, TotpAlgorithm::Sha1)
        );
        assert_eq!(totp.code_at(59), "94287082");
        let bare = Totp::parse(&base32.to_lowercase()).unwrap();
        assert_eq!(bare.code_at(59), "287082");
        assert_eq!(bare.seconds_left(59), 1);
        assert_eq!(Totp::parse("not base32 !!"), Err(TotpError::BadSecret));
        assert!(Totp::parse("otpauth://hotp/x?secret=GEZA").is_err());
        assert!(Totp::parse(&format!("otpauth://totp/x?secret={base32}&digits=12")).is_err());
        assert!(!format!("{totp:?}").contains("GEZ"));
    }
}
