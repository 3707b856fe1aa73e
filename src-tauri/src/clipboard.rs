//! Copying secrets: the text is marked for clipboard managers to keep out of
//! their history (KDE's `x-kde-passwordManagerHint` on Linux, the history
//! and cloud exclusions on Windows and macOS), and cleared after a while if
//! the clipboard still holds it, so a copied password does not linger.

use std::sync::Mutex;
use std::time::Duration;

use polykey_node::api::{ApiError, ErrorCode};
use zeroize::Zeroizing;

fn clipboard_error(error: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: ErrorCode::Io,
        message: format!("the clipboard is unavailable: {error}"),
    }
}

/// What pairing codes start with (cleared once the pairing ends).
const PAIRING_PREFIX: &str = "polykey-pair:";

/// What the app keeps of the secret it copied last: a digest under a key
/// random for each run, never the text, so that neither the app nor a
/// clear-after timer still waiting holds the secret once it left the
/// clipboard (a timer used to keep its copy until it fired, after a lock
/// too). The key is in the same memory: whoever reads it can still test
/// guesses of a weak password against the digest, not read the password.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Copied {
    digest: [u8; 32],
    pairing: bool,
}

/// The app's clipboard. One instance lives as long as the app: on X11 the
/// copied text is served from it.
pub struct Clipboard {
    inner: Mutex<Option<arboard::Clipboard>>,
    /// The secret copied last, until it is cleared or replaced.
    last: Mutex<Option<Copied>>,
    key: [u8; 32],
}

impl Default for Clipboard {
    fn default() -> Self {
        let mut key = [0u8; 32];
        polykey_keys::random_bytes(&mut key);
        Self {
            inner: Mutex::default(),
            last: Mutex::default(),
            key,
        }
    }
}

impl Clipboard {
    /// A clipboard that connects on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn copied(&self, text: &str) -> Copied {
        Copied {
            digest: blake3::keyed_hash(&self.key, text.as_bytes()).into(),
            pairing: text.starts_with(PAIRING_PREFIX),
        }
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
    ) -> Result<T, ApiError> {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            *guard = Some(arboard::Clipboard::new().map_err(clipboard_error)?);
        }
        match guard.as_mut() {
            Some(clipboard) => work(clipboard).map_err(clipboard_error),
            None => Err(clipboard_error("not connected")),
        }
    }

    /// Put `text` on the clipboard, hidden from clipboard history, and
    /// clear it after `clear_after` unless something else was copied
    /// meanwhile. Returns the delay in seconds.
    pub fn copy_secret(
        self: &std::sync::Arc<Self>,
        text: Zeroizing<String>,
        clear_after: Duration,
    ) -> Result<u64, ApiError> {
        self.with(|c| set_sensitive(c, text.as_str()))?;
        let copied = self.copied(&text);
        drop(text);
        *self.last() = Some(copied);
        let this = std::sync::Arc::clone(self);
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(clear_after).await;
            this.clear_when_holding(copied);
        });
        Ok(clear_after.as_secs())
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Copied>> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Clear the clipboard if it holds what `copied` was taken of.
    fn clear_when_holding(&self, copied: Copied) {
        let _ = self.with(|c| {
            let still_ours = c
                .get_text()
                .map(|current| self.copied(&Zeroizing::new(current)) == copied)
                .unwrap_or(false);
            if still_ours {
                c.clear()?;
            }
            Ok(())
        });
    }

    /// Clear the clipboard now if it still holds the secret copied last
    /// (the node locked, or the app quits): what the person copied since
    /// from elsewhere is left alone.
    pub fn clear_if_ours(&self) {
        self.clear_last(|_| true);
    }

    /// Clear the clipboard now if it still holds the pairing code copied
    /// last (the pairing ended: the code admits no one any more).
    pub fn clear_pairing_code(&self) {
        self.clear_last(|copied| copied.pairing);
    }

    fn clear_last(&self, which: impl Fn(&Copied) -> bool) {
        let ours = {
            let mut last = self.last();
            if !last.as_ref().is_some_and(&which) {
                return;
            }
            last.take()
        };
        if let Some(ours) = ours {
            self.clear_when_holding(ours);
        }
    }
}

#[cfg(target_os = "linux")]
fn set_sensitive(clipboard: &mut arboard::Clipboard, text: &str) -> Result<(), arboard::Error> {
    use arboard::SetExtLinux;
    clipboard.set().exclude_from_history().text(text)
}

#[cfg(target_os = "windows")]
fn set_sensitive(clipboard: &mut arboard::Clipboard, text: &str) -> Result<(), arboard::Error> {
    use arboard::SetExtWindows;
    clipboard
        .set()
        .exclude_from_history()
        .exclude_from_cloud()
        .exclude_from_monitoring()
        .text(text)
}

#[cfg(target_os = "macos")]
fn set_sensitive(clipboard: &mut arboard::Clipboard, text: &str) -> Result<(), arboard::Error> {
    use arboard::SetExtApple;
    clipboard.set().exclude_from_history().text(text)
}

#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
fn set_sensitive(clipboard: &mut arboard::Clipboard, text: &str) -> Result<(), arboard::Error> {
    clipboard.set_text(text)
}

/// How long a copied secret stays on the clipboard, from the preferences.
pub fn clear_after(node: &polykey_node::Node) -> Duration {
    Duration::from_secs(u64::from(node.preferences().clipboard_clear_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_of_a_copied_secret_tells_it_apart_but_is_not_it() {
        let clipboard = Clipboard::new();
        let kept = clipboard.copied("hunter2");
        assert!(kept == clipboard.copied("hunter2"));
        assert!(kept != clipboard.copied("hunter3"));
        assert!(!kept.digest.windows(7).any(|w| w == b"hunter2"));
        assert!(!kept.pairing && clipboard.copied("polykey-pair:abc").pairing);
        // Another run's digest of the same text differs (its key is
        // random): no table of common passwords looks it up.
        assert!(kept != Clipboard::new().copied("hunter2"));
    }
}
