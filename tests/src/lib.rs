//! Shared harness for Polykey's cross-crate tests: locating the workspace and
//! the built desktop app, driving that app through tauri-driver and
//! WebKitWebDriver under a virtual X display, and running many nodes in
//! their own processes under faults.
//!
//! It holds no product code; everything here exists to test the real parts.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Many nodes in their own processes, under dropped connections and kills.
pub mod cluster;
/// Driving the real desktop app through WebDriver.
pub mod gui;

use std::path::PathBuf;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
