//! Auto-lock: the node locks itself after a quiet spell (the preference,
//! read on every check so a change applies at once) and the windows are
//! told, so they drop what they show and return to the unlock screen.

use std::time::Duration;

use polykey_node::Node;
use tauri::{AppHandle, Emitter, Runtime};

/// The event the UI listens for.
pub const LOCKED_EVENT: &str = "node-locked";

/// Check for idleness for as long as the app runs.
pub fn spawn<R: Runtime>(app: AppHandle<R>, node: Node) {
    tauri::async_runtime::spawn(async move {
        loop {
            let secs = node.preferences().auto_lock_secs;
            let timeout = Duration::from_secs(u64::from(secs));
            let tick = (timeout / 10).clamp(Duration::from_millis(250), Duration::from_secs(5));
            tokio::time::sleep(tick).await;
            if secs > 0 {
                if let Ok(true) = node.lock_if_idle(timeout).await {
                    let _ = app.emit(LOCKED_EVENT, ());
                }
            }
        }
    });
}
