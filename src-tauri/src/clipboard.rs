//! Copying secrets: the clipboard is cleared after a while if it still holds
//! what we put there, so a copied password does not linger.

use std::time::Duration;

use polykey_node::api::{ApiError, ErrorCode};
use tauri::{AppHandle, Runtime};
use tauri_plugin_clipboard_manager::ClipboardExt;
use zeroize::Zeroizing;

/// How long a copied secret stays on the clipboard: `$POLYKEY_CLIPBOARD_CLEAR_SECS`
/// (tests use a short one), else 30 s.
pub fn clear_after() -> Duration {
    let secs = std::env::var("POLYKEY_CLIPBOARD_CLEAR_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn clipboard_error(error: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: ErrorCode::Io,
        message: format!("the clipboard is unavailable: {error}"),
    }
}

/// Put `text` on the clipboard and clear it after [`clear_after`] unless
/// something else was copied meanwhile.
pub fn copy_secret<R: Runtime>(
    app: &AppHandle<R>,
    text: Zeroizing<String>,
) -> Result<u64, ApiError> {
    app.clipboard()
        .write_text(text.as_str())
        .map_err(clipboard_error)?;
    let app = app.clone();
    let delay = clear_after();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(delay).await;
        let still_ours = app
            .clipboard()
            .read_text()
            .map(|current| Zeroizing::new(current) == text)
            .unwrap_or(false);
        if still_ours {
            let _ = app.clipboard().clear();
        }
    });
    Ok(delay.as_secs())
}
