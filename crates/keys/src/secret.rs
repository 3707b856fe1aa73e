use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// Secret bytes of any length: zeroized on drop, `<redacted>` in Debug.
///
/// There is deliberately no `Display`, `Serialize` or `Clone` impl; the bytes
/// are reachable only through [`SecretBytes::expose_secret`].
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Take ownership of `bytes`; they are zeroized when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Borrow the secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Number of secret bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no secret bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

/// A password typed by the user: zeroized on drop, `<redacted>` in Debug.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Take ownership of `password`; it is zeroized when this value drops.
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    /// Borrow the password text.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self::new(password.to_owned())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Zeroizing already clears the buffer; clearing the length as well
        // keeps a dangling view from ever reading stale data.
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let bytes = SecretBytes::new(b"topsecret-bytes".to_vec());
        let password = Password::from("correct horse battery staple");
        let shown = format!("{bytes:?} {password:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(!shown.contains("horse"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
