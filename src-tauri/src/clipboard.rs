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

/// The app's clipboard. One instance lives as long as the app: on X11 the
/// copied text is served from it.
#[derive(Default)]
pub struct Clipboard {
    inner: Mutex<Option<arboard::Clipboard>>,
    /// The secret copied last, until it is cleared or replaced.
    last: Mutex<Option<Zeroizing<String>>>,
}

impl Clipboard {
    /// A clipboard that connects on first use.
    pub fn new() -> Self {
        Self::default()
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
        *self.last() = Some(text.clone());
        let this = std::sync::Arc::clone(self);
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(clear_after).await;
            let _ = this.with(|c| {
                let still_ours = c
                    .get_text()
                    .map(|current| Zeroizing::new(current) == text)
                    .unwrap_or(false);
                if still_ours {
                    c.clear()?;
                }
                Ok(())
            });
        });
        Ok(clear_after.as_secs())
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Zeroizing<String>>> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Clear the clipboard now if it still holds the secret copied last
    /// (the node locked, or the app quits): what the person copied since
    /// from elsewhere is left alone.
    pub fn clear_if_ours(&self) {
        self.clear_if(|_| true);
    }

    /// Clear the clipboard now if it still holds the secret copied last and
    /// `which` says that secret should go.
    pub fn clear_if(&self, which: impl Fn(&str) -> bool) {
        let ours = {
            let mut last = self.last();
            if !last.as_ref().is_some_and(|text| which(text.as_str())) {
                return;
            }
            last.take()
        };
        let Some(ours) = ours else {
            return;
        };
        let _ = self.with(|c| {
            let still_ours = c
                .get_text()
                .map(|current| Zeroizing::new(current) == ours)
                .unwrap_or(false);
            if still_ours {
                c.clear()?;
            }
            Ok(())
        });
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
