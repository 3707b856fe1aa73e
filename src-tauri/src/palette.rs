//! Quick access: a global shortcut opens a small palette window to find a
//! secret in any vault and copy its main field without the main window.
//! The window (and its web process) is created on first use, not at start,
//! so an app that never uses quick access does not pay for it; afterwards
//! it is hidden and shown.

use std::sync::Arc;

use polykey_node::api::{ApiError, ErrorCode};
use polykey_node::{Node, Preferences};
use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

use crate::clipboard::{clear_after, Clipboard};

/// The palette window's label.
pub const PALETTE_WINDOW: &str = "quick";
/// Sent to the palette each time it opens, so it starts afresh.
pub const OPENED_EVENT: &str = "palette-opened";

/// The global-shortcut plugin, wired to toggle the palette.
pub fn shortcut_plugin<R: Runtime>() -> TauriPlugin<R> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state() == ShortcutState::Pressed {
                toggle(app);
            }
        })
        .build()
}

fn shortcut_error(message: String) -> ApiError {
    ApiError {
        code: ErrorCode::BadPreference,
        message,
    }
}

/// Make `text` (empty for none) the one global shortcut.
pub fn register_shortcut<R: Runtime>(app: &AppHandle<R>, text: &str) -> Result<(), ApiError> {
    let shortcut = match text.trim() {
        "" => None,
        text => Some(
            text.parse::<Shortcut>()
                .map_err(|_| shortcut_error(format!("'{text}' is not a keyboard shortcut")))?,
        ),
    };
    let shortcuts = app.global_shortcut();
    let _ = shortcuts.unregister_all();
    if let Some(shortcut) = shortcut {
        shortcuts.register(shortcut).map_err(|e| {
            shortcut_error(format!(
                "the shortcut cannot be used (another app may hold it): {e}"
            ))
        })?;
    }
    Ok(())
}

/// Grab the shortcut the preferences name, once per run, on a thread of
/// its own. Called when a page has loaded: the grab runs on the main
/// thread and waits there for the X11 hot-key thread (50–100 ms), and a
/// wait of 50 ms or more on the main thread while WebKit starts its web
/// process delayed the first screen by half a second (desktop bench, cold
/// start to the unlock screen: about 850 ms with the grab in setup). A
/// shortcut another app holds is not fatal: Settings shows the error when
/// the user picks one.
pub fn grab_shortcut<R: Runtime>(app: &AppHandle<R>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static GRABBED: AtomicBool = AtomicBool::new(false);
    if GRABBED.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    std::thread::spawn(move || {
        let shortcut = app.state::<Node>().preferences().shortcut;
        let _ = register_shortcut(&app, &shortcut);
    });
}

/// Open the palette, or close it if it is open.
pub fn toggle<R: Runtime>(app: &AppHandle<R>) {
    match app.get_webview_window(PALETTE_WINDOW) {
        Some(window) if window.is_visible().unwrap_or(false) => {
            let _ = window.hide();
        }
        _ => open(app),
    }
}

/// Open the palette in the middle of the screen, focused.
pub fn open<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(PALETTE_WINDOW) {
        let _ = window.center();
        let _ = window.show();
        let _ = window.set_focus();
        let _ = app.emit_to(PALETTE_WINDOW, OPENED_EVENT, ());
        return;
    }
    // First use: a new window starts afresh by itself.
    let _ = WebviewWindowBuilder::new(app, PALETTE_WINDOW, WebviewUrl::App("index.html".into()))
        .title("Polykey quick access")
        .inner_size(560.0, 380.0)
        .resizable(false)
        .decorations(false)
        .always_on_top(true)
        .skip_taskbar(true)
        .center()
        .focused(true)
        .build();
}

/// Close the palette.
pub fn hide<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(PALETTE_WINDOW) {
        let _ = window.hide();
    }
}

/// Copy a secret's main field and close the palette.
pub async fn copy<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
    clipboard: &Arc<Clipboard>,
    vault: String,
    path: String,
) -> Result<u64, ApiError> {
    // A person picked an entry in the palette: that counts for auto-lock.
    node.touch();
    let value = node.quick_copy_value(vault, path).await?;
    let seconds = clipboard.copy_secret(value, clear_after(node))?;
    hide(app);
    Ok(seconds)
}

/// Save new preferences and apply them: the shortcut first (it may be
/// refused), then the rest; the tray appears or goes.
pub async fn apply_preferences<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
    preferences: Preferences,
) -> Result<(), ApiError> {
    let old = node.preferences();
    if preferences.shortcut != old.shortcut {
        register_shortcut(app, &preferences.shortcut)?;
    }
    if let Err(error) = node.set_preferences(preferences).await {
        let _ = register_shortcut(app, &old.shortcut);
        return Err(error.into());
    }
    crate::tray::apply(app, node);
    Ok(())
}
