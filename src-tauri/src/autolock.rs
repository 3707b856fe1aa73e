//! Auto-lock: the node locks itself after a quiet spell and the window is
//! told, so it drops what it shows and returns to the unlock screen.

use std::time::Duration;

use polykey_node::Node;
use tauri::{AppHandle, Emitter, Runtime};

/// The event the UI listens for.
pub const LOCKED_EVENT: &str = "node-locked";

/// Idle time before locking: `$POLYKEY_AUTO_LOCK_SECS` (tests use a short
/// one), else 10 minutes.
pub fn idle_timeout() -> Duration {
    let secs = std::env::var("POLYKEY_AUTO_LOCK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Check for idleness for as long as the app runs.
pub fn spawn<R: Runtime>(app: AppHandle<R>, node: Node) {
    let timeout = idle_timeout();
    let tick = (timeout / 10).clamp(Duration::from_millis(250), Duration::from_secs(5));
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            if let Ok(true) = node.lock_if_idle(timeout).await {
                let _ = app.emit(LOCKED_EVENT, ());
            }
        }
    });
}
