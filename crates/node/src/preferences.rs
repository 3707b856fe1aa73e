//! Preferences: how long until auto-lock and clipboard clearing, the
//! quick-access shortcut, the tray. Not secret, so they live in plain
//! `preferences.json` beside the key file and are readable while locked.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::NodeError;

/// The shortcut that opens quick access unless the user picks another.
pub const DEFAULT_SHORTCUT: &str = "CommandOrControl+Shift+Space";
/// The k-anonymity range API the breach check asks (Have I Been Pwned's
/// Pwned Passwords) unless the user names another.
pub const DEFAULT_BREACH_ENDPOINT: &str = "https://api.pwnedpasswords.com/range/";

/// The user's preferences. Missing fields take their defaults, so a file
/// from an older version still loads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct Preferences {
    /// Lock after this many idle seconds; 0 never locks on its own.
    pub auto_lock_secs: u32,
    /// Clear a copied secret from the clipboard after this many seconds.
    pub clipboard_clear_secs: u32,
    /// The global shortcut for quick access (Tauri's accelerator syntax,
    /// e.g. `CommandOrControl+Shift+Space`); empty for none.
    pub shortcut: String,
    /// Show the system tray icon.
    pub tray: bool,
    /// Check passwords against known breaches when asked (off until the
    /// user turns it on: it asks a service on the internet).
    pub breach_check: bool,
    /// Where the breach check asks: a range API taking the first five hex
    /// characters of a SHA-1 after this prefix. https, or http to this
    /// computer only.
    pub breach_endpoint: String,
}

/// Whether `endpoint` may be asked: https, or plain http to this computer
/// (a service of one's own), at most 200 characters.
pub fn breach_endpoint_ok(endpoint: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return false;
    };
    endpoint.len() <= 200
        && !url.cannot_be_a_base()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && (url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)))
}

/// Whether the URL's host is this computer.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a breach endpoint is a service on this computer.
pub fn breach_endpoint_is_loopback(endpoint: &str) -> bool {
    reqwest::Url::parse(endpoint).is_ok_and(|url| is_loopback(&url))
}

/// The address asking `endpoint` for the range of `prefix` (5 hex
/// characters): the prefix is the last part of the endpoint's path (a `/`
/// added when it has none), never part of its host; `None` when the
/// endpoint is not one [`breach_endpoint_ok`] allows or the result leaves
/// its scheme, host or port.
pub fn breach_range_url(endpoint: &str, prefix: &str) -> Option<reqwest::Url> {
    if !breach_endpoint_ok(endpoint)
        || prefix.len() != 5
        || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let mut base = reqwest::Url::parse(endpoint).ok()?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    let url = base.join(prefix).ok()?;
    let same = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default();
    (same && breach_endpoint_ok(url.as_str())).then_some(url)
}

/// Seconds from an environment variable, for tests that cannot wait minutes.
/// A test's shorter default from the environment; debug builds only, so
/// nothing in a user's environment can stretch or shorten a release's.
fn env_secs(name: &str) -> Option<u32> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var(name).ok()?.parse().ok()
}

impl Default for Preferences {
    /// 10 minutes, 30 seconds, Ctrl+Shift+Space, tray on.
    /// `POLYKEY_AUTO_LOCK_SECS` and `POLYKEY_CLIPBOARD_CLEAR_SECS` change the
    /// first two defaults in debug builds (tests use a few seconds); saved
    /// preferences win.
    fn default() -> Self {
        Self {
            auto_lock_secs: env_secs("POLYKEY_AUTO_LOCK_SECS").unwrap_or(600),
            clipboard_clear_secs: env_secs("POLYKEY_CLIPBOARD_CLEAR_SECS").unwrap_or(30),
            shortcut: DEFAULT_SHORTCUT.to_owned(),
            tray: true,
            breach_check: false,
            breach_endpoint: DEFAULT_BREACH_ENDPOINT.to_owned(),
        }
    }
}

impl Preferences {
    /// These preferences brought within [`Preferences::check`]'s bounds, for
    /// a file read from disk: an edited `preferences.json` cannot keep a
    /// copied secret on the clipboard for days or lock after 3 seconds.
    pub(crate) fn within_bounds(mut self) -> Self {
        if self.auto_lock_secs != 0 {
            self.auto_lock_secs = self.auto_lock_secs.clamp(30, 86_400);
        }
        self.clipboard_clear_secs = self.clipboard_clear_secs.clamp(5, 600);
        if self.shortcut.len() > 64 || self.shortcut.chars().any(char::is_control) {
            DEFAULT_SHORTCUT.clone_into(&mut self.shortcut);
        }
        if !breach_endpoint_ok(&self.breach_endpoint) {
            DEFAULT_BREACH_ENDPOINT.clone_into(&mut self.breach_endpoint);
        }
        self
    }

    /// The bounds a user may choose within.
    pub(crate) fn check(&self) -> Result<(), NodeError> {
        if self.auto_lock_secs != 0 && !(30..=86_400).contains(&self.auto_lock_secs) {
            return Err(NodeError::InvalidPreference(
                "auto-lock must be off or between 30 seconds and 24 hours",
            ));
        }
        if !(5..=600).contains(&self.clipboard_clear_secs) {
            return Err(NodeError::InvalidPreference(
                "the clipboard must be cleared after 5 seconds to 10 minutes",
            ));
        }
        if self.shortcut.len() > 64 || self.shortcut.chars().any(char::is_control) {
            return Err(NodeError::InvalidPreference(
                "that is not a keyboard shortcut",
            ));
        }
        if !breach_endpoint_ok(&self.breach_endpoint) {
            return Err(NodeError::InvalidPreference(
                "the breach check address must start with https:// (or http:// to this computer)",
            ));
        }
        Ok(())
    }
}
