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
        // In one pass (see `wipe`), before Zeroizing's own pass over
        // what is then an empty buffer.
        wipe(&mut self.0);
    }
}

/// Plaintext in a buffer from `start` on: what opening sealed bytes where
/// they lie leaves (see [`crate::SymmetricKey::open_plain`]), so that a
/// nonce, a second layer's nonce or a header can be passed over without
/// moving every byte after it (a 10 MiB object opened under two keys and
/// its kind byte taken off was moved three times). Wiped with [`wipe`]
/// when dropped; `<n bytes>` in Debug.
pub struct Plain {
    buffer: Vec<u8>,
    start: usize,
}

impl Plain {
    /// All of `buffer`.
    pub fn new(buffer: Vec<u8>) -> Self {
        Self { buffer, start: 0 }
    }

    /// Pass over the first `n` bytes (all of them if there are fewer).
    pub fn advance(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buffer.len());
    }

    /// Drop the bytes from `len` on (none if there are fewer).
    pub fn truncate(&mut self, len: usize) {
        self.buffer.truncate(self.start.saturating_add(len));
    }

    /// The bytes as a vector of their own: moved to the front of the same
    /// buffer (one move, whatever was passed over), which wipes on drop.
    pub fn into_vec(mut self) -> Zeroizing<Vec<u8>> {
        let mut buffer = Zeroizing::new(std::mem::take(&mut self.buffer));
        buffer.drain(..self.start);
        buffer
    }
}

impl std::ops::Deref for Plain {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[self.start..]
    }
}

impl std::ops::DerefMut for Plain {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[self.start..]
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        wipe(&mut self.buffer);
    }
}

impl fmt::Debug for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plain(<{} bytes>)", self.len())
    }
}

/// Wipe `bytes` and give its memory back: the whole allocation zeroed
/// with `fill` (behind an optimisation barrier, so it is not elided),
/// then freed. `Zeroizing<Vec<u8>>` zeroes on drop through
/// `Vec<u8>::zeroize`, which writes the bytes in use one volatile store at
/// a time (3.1 ms for 10 MiB on the 2-core machine, against 0.4 ms this
/// way); a clone of a long history drops gigabytes of rebuilt directories.
/// Call it on a large buffer before it drops.
pub fn wipe(bytes: &mut Vec<u8>) {
    zero_allocation(bytes);
    *bytes = Vec::new();
}

/// Zero all of `bytes`' allocation, its length and capacity kept.
fn zero_allocation(bytes: &mut Vec<u8>) {
    // `[u8]::zeroize` is one `fill` behind an optimisation barrier, and so
    // is the spare capacity's.
    bytes.as_mut_slice().zeroize();
    bytes.spare_capacity_mut().zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes_pass_over_a_prefix_without_moving_and_keep_the_rest() {
        let mut plain = Plain::new((0u8..100).collect());
        let at = plain.as_ptr();
        plain.advance(10);
        assert_eq!(plain[0], 10);
        assert_eq!(plain.len(), 90);
        assert_eq!(plain.as_ptr(), at.wrapping_add(10), "moved");
        plain.truncate(5);
        assert_eq!(&plain[..], &[10, 11, 12, 13, 14]);
        plain.advance(1000);
        assert!(plain.is_empty());
        let mut plain = Plain::new((0u8..20).collect());
        plain.advance(3);
        plain.truncate(100);
        assert_eq!(plain.into_vec().as_slice(), (3u8..20).collect::<Vec<_>>());
        assert_eq!(format!("{:?}", Plain::new(vec![42; 7])), "Plain(<7 bytes>)");
    }

    #[test]
    fn wiping_zeroes_the_bytes_and_frees_them() {
        let mut bytes = Vec::with_capacity(4096);
        bytes.extend(std::iter::repeat_n(0xA5u8, 3000));
        let capacity = bytes.capacity();
        zero_allocation(&mut bytes);
        assert_eq!(bytes.len(), 3000);
        assert_eq!(bytes.capacity(), capacity, "the same allocation");
        assert!(bytes.iter().all(|&b| b == 0), "a byte survived the wipe");

        let mut bytes = vec![0x5Au8; 1 << 20];
        wipe(&mut bytes);
        assert!(bytes.is_empty());
        assert_eq!(bytes.capacity(), 0, "the allocation is given back");
    }

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
