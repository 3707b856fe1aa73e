use std::fmt;

use zeroize::Zeroizing;

/// An OAuth access token: it lets its holder act as the account. Zeroized
/// when dropped; Debug prints `<redacted>`; read only through
/// [`AccessToken::expose_secret`].
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// Wrap a token (as read back from the node's encrypted store).
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    /// The token itself, to send to its provider or store encrypted.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// A device flow's device code: with the app's client id it fetches the
/// token once the user has approved, so it is kept as a secret too.
pub struct DeviceCode(Zeroizing<String>);

impl DeviceCode {
    /// Wrap a device code.
    pub fn new(code: String) -> Self {
        Self(Zeroizing::new(code))
    }

    /// The code itself, to send back to the provider when polling.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCode(<redacted>)")
    }
}
